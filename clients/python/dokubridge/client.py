"""The synchronous client: one connection, one call at a time.

    with dokubridge.Client() as c:
        balance = c.get_balance(partner_reference_no="r1", customer_ref="cust-1", timeout=10)

A Client may be shared between threads: its calls are serialized by a lock.
For many calls in flight at once use dokubridge.aio.AsyncClient.
"""
import errno
import socket
import threading
import time

from ._common import (Result, add_methods, call_bytes, cancel_bytes, local_result, prepare,
                      result_from_reply)
from ._proto_api import (DEADLINE_GRACE, FRAME_HEADER, FRAME_MAX_DEFAULT, Code, Outcome, bridge,
                         frame, frame_length, socket_path)

RECV_CHUNK = 64 * 1024


class Client:
    """A blocking client of doku-bridged.

    socket_path: the daemon's socket (default: $DOKU_BRIDGE_SOCKET, else
    /run/doku-bridge/bridge.sock). timeout: default deadline of calls in
    seconds (None: the daemon's default; the daemon gets it as timeout_ms and
    the client enforces it too). profile: default credential profile.
    max_frame: cap on a received frame. The connection is made on first use.
    """

    def __init__(self, socket_path=None, *, timeout=None, profile=None,
                 max_frame=FRAME_MAX_DEFAULT):
        self.socket_path = socket_path_of(socket_path)
        self.timeout = timeout
        self.profile = profile
        self.max_frame = max_frame
        self._sock = None
        self._buf = bytearray()
        self._next_id = 1
        self._lock = threading.Lock()

    # ---- connection -------------------------------------------------------------

    def connect(self):
        """(Re)connect; raises Unavailable or PermissionDenied (local)."""
        with self._lock:
            self._connect()

    def _connect(self):
        self._drop()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(self.socket_path)
        except OSError as e:
            s.close()
            code = (Code.PERMISSION_DENIED if e.errno in (errno.EACCES, errno.EPERM)
                    else Code.UNAVAILABLE)
            raise local_result(code, "cannot connect to doku-bridged at %s: %s"
                               % (self.socket_path, e.strerror or e),
                               Outcome.OUTCOME_NOT_DONE).error() from None
        self._sock = s

    def _drop(self):
        if self._sock is not None:
            self._sock.close()
        self._sock = None
        self._buf = bytearray()

    @property
    def connected(self):
        return self._sock is not None

    def close(self):
        with self._lock:
            self._drop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- calls ------------------------------------------------------------------

    def invoke(self, method, request=None, /, *, timeout=None, profile=None, customer_ref=None,
               raw=False, **fields):
        """Call method and return its Result (raises only for bad arguments,
        as InvalidArgument). raw=True: request is bytes and Result.response too."""
        try:
            p = prepare(method, request, fields, timeout, profile, customer_ref, self.timeout,
                        self.profile, raw=raw)
        except (ValueError, TypeError) as e:
            raise local_result(Code.INVALID_ARGUMENT, str(e), Outcome.OUTCOME_NOT_DONE,
                               str(method)).error() from None
        with self._lock:
            return self._invoke(p)

    def call(self, method, request=None, /, *, timeout=None, profile=None, customer_ref=None,
             **fields):
        """Call method; return the response message or raise a DokuBridgeError."""
        return self.invoke(method, request, timeout=timeout, profile=profile,
                           customer_ref=customer_ref, **fields).unwrap()

    def call_raw(self, method, data, *, timeout=None, profile=None, customer_ref=None):
        """Call with serialized bytes; return the serialized response or raise.
        method may be any full "/pkg.Service/Method" path."""
        return self.invoke(method, data, timeout=timeout, profile=profile,
                           customer_ref=customer_ref, raw=True).unwrap()

    def _invoke(self, p):
        deadline = (time.monotonic() + p.timeout_ms / 1000.0 + DEADLINE_GRACE
                    if p.timeout_ms else None)
        call_id = self._next_id
        self._next_id += 1
        data = frame(call_bytes(call_id, p))
        if len(data) - FRAME_HEADER > self.max_frame:
            return local_result(Code.RESOURCE_EXHAUSTED, "request over the %d-byte frame cap"
                                % self.max_frame, Outcome.OUTCOME_NOT_DONE, p.path, call_id)
        if self._sock is None:
            try:
                self._connect()
            except Exception as e:  # the typed local error
                return _as_result(e, p.path, call_id)
        sent = False
        try:
            self._sock.settimeout(_remaining(deadline))
            self._sock.sendall(data)
            sent = True
            while True:
                body = self._read_frame(deadline)
                reply = bridge.Reply.FromString(body)
                if reply.id == call_id:
                    return result_from_reply(reply, p)
                # a late reply to an earlier call that met its local deadline: drop it
        except socket.timeout:
            if sent:
                self._send_cancel(call_id)
            return local_result(Code.DEADLINE_EXCEEDED,
                                "deadline exceeded before doku-bridged answered",
                                Outcome.OUTCOME_UNKNOWN if sent else Outcome.OUTCOME_NOT_DONE,
                                p.path, call_id)
        except _ProtocolError as e:
            self._drop()
            return local_result(e.code, str(e), Outcome.OUTCOME_UNKNOWN, p.path, call_id)
        except OSError as e:
            self._drop()
            return local_result(Code.UNAVAILABLE, "connection to doku-bridged lost (%s)" % e,
                                Outcome.OUTCOME_UNKNOWN, p.path, call_id)
        except Exception as e:  # noqa: BLE001 - an unparsable Reply
            self._drop()
            return local_result(Code.INTERNAL, "bad reply from doku-bridged: %s" % e,
                                Outcome.OUTCOME_UNKNOWN, p.path, call_id)

    def _send_cancel(self, call_id):
        try:
            self._sock.settimeout(1.0)
            self._sock.sendall(frame(cancel_bytes(call_id)))
        except OSError:
            self._drop()

    def _read_frame(self, deadline):
        """The next frame's body; bytes already read stay buffered across a timeout."""
        need = FRAME_HEADER
        n = None
        while True:
            if n is None and len(self._buf) >= FRAME_HEADER:
                try:
                    n = frame_length(bytes(self._buf[:FRAME_HEADER]), self.max_frame)
                except ValueError as e:
                    raise _ProtocolError(Code.INTERNAL, str(e)) from None
                except OverflowError as e:
                    raise _ProtocolError(Code.RESOURCE_EXHAUSTED, str(e)) from None
                need = FRAME_HEADER + n
            if n is not None and len(self._buf) >= need:
                body = bytes(self._buf[FRAME_HEADER:need])
                del self._buf[:need]
                return body
            self._sock.settimeout(_remaining(deadline))
            chunk = self._sock.recv(max(RECV_CHUNK, need - len(self._buf)))
            if not chunk:
                raise _ProtocolError(Code.UNAVAILABLE, "doku-bridged closed the connection")
            self._buf += chunk


class _ProtocolError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def _remaining(deadline):
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    if left <= 0:
        raise socket.timeout()
    return left


def socket_path_of(path):
    return socket_path(path)


def _as_result(err, path, call_id):
    return Result(err.code, err.status_message, local=True, outcome=err.outcome, method=path,
                  call_id=call_id)


def _make(m):
    def rpc(self, request=None, /, *, timeout=None, profile=None, customer_ref=None, **fields):
        return self.invoke(m.name, request, timeout=timeout, profile=profile,
                           customer_ref=customer_ref, **fields).unwrap()
    return rpc


add_methods(Client, _make)
