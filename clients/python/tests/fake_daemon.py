"""A scripted stand-in for doku-bridged on a Unix socket, served by a thread:
speaks the frame protocol and answers Calls as its mode says (unit tests)."""
import os
import socket
import struct
import tempfile
import threading

from dokubridge import bridge, wallet

IO_TIMEOUT = 20.0  # the fake gives up on a silent peer after this


class FakeDaemon:
    """modes: answer (GetBalance gets a balance, others an echo), reverse
    (hold `batch` calls, answer last-first), silent (never answer; answer a
    cancel CANCELLED), bad_flags, huge, close (after the first call)."""

    def __init__(self, mode="answer", batch=0):
        self.mode = mode
        self.batch = batch
        self.dir = tempfile.mkdtemp(prefix="dokubridge-py-test-")
        self.path = os.path.join(self.dir, "bridge.sock")
        self.calls = []
        self.cancels = []
        self.errors = []
        self._lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._lsock.bind(self.path)
        self._lsock.listen(8)
        self._lsock.settimeout(IO_TIMEOUT)
        self._conns = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while True:
            try:
                conn, _ = self._lsock.accept()
            except OSError:
                return
            conn.settimeout(IO_TIMEOUT)
            self._conns.append(conn)
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            t.start()

    @staticmethod
    def _read_exact(conn, n):
        buf = b""
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    @staticmethod
    def _send(conn, reply):
        data = reply.SerializeToString()
        conn.sendall(struct.pack(">BI", 0, len(data)) + data)

    def _answer(self, conn, call):
        r = bridge.Reply(id=call.id, code=bridge.OK, outcome=bridge.OUTCOME_DONE)
        if call.method == "/doku.wallet.v1.Wallet/GetBalance":
            q = wallet.GetBalanceRequest.FromString(call.message)
            b = wallet.GetBalanceResponse(
                response_code="2001100", response_message="Successful", name="Budi",
                partner_reference_no=q.partner_reference_no,
                account_info=wallet.AccountInfo(balance_type="Cash", amount=wallet.Amount(
                    value="10000.00", currency="IDR")))
            r.message = b.SerializeToString()
            r.http_status = 200
            r.response_code = "2001100"
            r.response_message = "Successful"
            r.external_id = "41807553358950093184"
            r.partner_reference_no = q.partner_reference_no
        elif call.method.startswith("/doku.wallet.v1.Wallet/Nope"):
            r.code = bridge.UNIMPLEMENTED
            r.status_message = "unknown method"
            r.outcome = bridge.OUTCOME_NOT_DONE
        else:
            r.message = call.message
        self._send(conn, r)

    def _serve(self, conn):
        held = []
        try:
            while True:
                flags, n = struct.unpack(">BI", self._read_exact(conn, 5))
                if flags != 0:
                    self.errors.append("flags %d" % flags)
                    return
                call = bridge.Call.FromString(self._read_exact(conn, n))
                if call.cancel:
                    self.cancels.append(call.id)
                else:
                    self.calls.append(call)
                if self.mode == "answer" and not call.cancel:
                    self._answer(conn, call)
                elif self.mode == "reverse" and not call.cancel:
                    held.append(call)
                    if len(held) == self.batch:
                        for c in reversed(held):
                            self._answer(conn, c)
                        held = []
                elif self.mode == "silent" and call.cancel:
                    self._send(conn, bridge.Reply(id=call.id, code=bridge.CANCELLED,
                                                  status_message="cancelled by the client",
                                                  outcome=bridge.OUTCOME_NOT_DONE))
                elif self.mode == "bad_flags":
                    conn.sendall(b"\x01\x00\x00\x00\x02\x08\x01")
                elif self.mode == "huge":
                    conn.sendall(struct.pack(">BI", 0, 1 << 30))
                elif self.mode == "close":
                    return
        except (EOFError, OSError):
            pass
        finally:
            conn.close()

    def stop(self):
        try:
            self._lsock.shutdown(socket.SHUT_RDWR)  # wakes the accept() of the thread
        except OSError:
            pass
        self._lsock.close()
        for c in self._conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(IO_TIMEOUT)
        try:
            os.unlink(self.path)
        except OSError:
            pass
        os.rmdir(self.dir)
