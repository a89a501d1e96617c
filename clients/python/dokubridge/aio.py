"""The asyncio client: many calls in flight on one connection.

    async with dokubridge.aio.AsyncClient() as c:
        results = await asyncio.gather(*(c.get_balance(partner_reference_no="r%d" % i,
                                                       customer_ref="cust-1")
                                         for i in range(100)))

Calls are matched to replies by id, in completion order. Deadlines are sent to
the daemon and enforced here too (DeadlineExceeded, outcome unknown);
cancelling the awaiting task sends the daemon a cancel frame. Use a client
from one event loop.
"""
import asyncio
import errno
import itertools

from ._common import (add_methods, call_bytes, cancel_bytes, local_result, prepare,
                      result_from_reply)
from ._proto_api import (DEADLINE_GRACE, FRAME_HEADER, FRAME_MAX_DEFAULT, Code, Outcome, bridge,
                         frame, frame_length, socket_path)

IN_FLIGHT_DEFAULT = 4096


class AsyncClient:
    """An asyncio client of doku-bridged (arguments as dokubridge.Client, plus
    max_in_flight: calls in flight at once; more wait for a free slot)."""

    def __init__(self, socket_path=None, *, timeout=None, profile=None,
                 max_frame=FRAME_MAX_DEFAULT, max_in_flight=IN_FLIGHT_DEFAULT):
        self.socket_path = socket_path_of(socket_path)
        self.timeout = timeout
        self.profile = profile
        self.max_frame = max_frame
        self.max_in_flight = max_in_flight
        self._reader = None
        self._writer = None
        self._reader_task = None
        self._pending = {}
        self._ids = itertools.count(1)
        self._connect_lock = None
        self._slots = None

    # ---- connection -------------------------------------------------------------

    @property
    def connected(self):
        return self._writer is not None

    async def connect(self):
        """(Re)connect; raises Unavailable or PermissionDenied (local)."""
        await self._close(Code.UNAVAILABLE, "the connection was replaced")
        try:
            self._reader, self._writer = await asyncio.open_unix_connection(self.socket_path)
        except OSError as e:
            code = (Code.PERMISSION_DENIED if e.errno in (errno.EACCES, errno.EPERM)
                    else Code.UNAVAILABLE)
            raise local_result(code, "cannot connect to doku-bridged at %s: %s"
                               % (self.socket_path, e.strerror or e),
                               Outcome.OUTCOME_NOT_DONE).error() from None
        self._reader_task = asyncio.ensure_future(self._read_loop(self._reader))

    async def _ensure(self):
        if self._connect_lock is None:
            self._connect_lock = asyncio.Lock()
            self._slots = asyncio.Semaphore(self.max_in_flight)
        if self._writer is None:
            async with self._connect_lock:
                if self._writer is None:
                    await self.connect()

    async def close(self):
        """Close; calls in flight fail with Cancelled (local)."""
        await self._close(Code.CANCELLED, "the client was closed")

    async def _close(self, code, message):
        writer, task = self._writer, self._reader_task
        self._writer = self._reader = self._reader_task = None
        self._fail_all(code, message)
        if task is not None:
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass

    def _fail_all(self, code, message):
        pending, self._pending = self._pending, {}
        for call_id, (fut, p) in pending.items():
            if not fut.done():
                fut.set_result(local_result(code, message, Outcome.OUTCOME_UNKNOWN, p.path,
                                            call_id))

    async def __aenter__(self):
        await self._ensure()
        return self

    async def __aexit__(self, *exc):
        await self.close()

    async def _read_loop(self, reader):
        code, message = Code.UNAVAILABLE, "doku-bridged closed the connection"
        try:
            while True:
                n = frame_length(await reader.readexactly(FRAME_HEADER), self.max_frame)
                reply = bridge.Reply.FromString(await reader.readexactly(n))
                entry = self._pending.pop(reply.id, None)
                if entry is None:
                    continue  # a late reply to a call that met its deadline or was cancelled
                fut, p = entry
                if not fut.done():
                    fut.set_result(result_from_reply(reply, p))
        except asyncio.IncompleteReadError:
            pass
        except ValueError as e:
            code, message = Code.INTERNAL, str(e)
        except OverflowError as e:
            code, message = Code.RESOURCE_EXHAUSTED, str(e)
        except OSError as e:
            message = "connection to doku-bridged lost (%s)" % e
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - an unparsable Reply
            code, message = Code.INTERNAL, "bad reply from doku-bridged: %s" % e
        # the connection is gone: every call on it fails; the next call reconnects
        if self._reader is reader:
            writer = self._writer
            self._writer = self._reader = self._reader_task = None
            if writer is not None:
                writer.close()
        self._fail_all(code, message)

    # ---- calls ------------------------------------------------------------------

    async def invoke(self, method, request=None, /, *, timeout=None, profile=None,
                     customer_ref=None, raw=False, **fields):
        """Call method and return its Result (raises only InvalidArgument for
        bad arguments, and asyncio.CancelledError when the task is cancelled)."""
        try:
            p = prepare(method, request, fields, timeout, profile, customer_ref, self.timeout,
                        self.profile, raw=raw)
        except (ValueError, TypeError) as e:
            raise local_result(Code.INVALID_ARGUMENT, str(e), Outcome.OUTCOME_NOT_DONE,
                               str(method)).error() from None
        try:
            await self._ensure()
        except Exception as e:  # noqa: BLE001 - the typed local error
            return local_result(e.code, e.status_message, Outcome.OUTCOME_NOT_DONE, p.path)
        async with self._slots:
            return await self._invoke(p)

    async def _invoke(self, p):
        loop = asyncio.get_running_loop()
        call_id = next(self._ids)
        body = call_bytes(call_id, p)
        if len(body) > self.max_frame:
            return local_result(Code.RESOURCE_EXHAUSTED, "request over the %d-byte frame cap"
                                % self.max_frame, Outcome.OUTCOME_NOT_DONE, p.path, call_id)
        writer = self._writer
        if writer is None:
            return local_result(Code.UNAVAILABLE, "not connected to doku-bridged",
                                Outcome.OUTCOME_NOT_DONE, p.path, call_id)
        fut = loop.create_future()
        self._pending[call_id] = (fut, p)
        try:
            writer.write(frame(body))
            await writer.drain()
            if p.timeout_ms:
                return await asyncio.wait_for(asyncio.shield(fut),
                                              p.timeout_ms / 1000.0 + DEADLINE_GRACE)
            return await fut
        except asyncio.TimeoutError:
            self._cancel(call_id)
            return local_result(Code.DEADLINE_EXCEEDED,
                                "deadline exceeded before doku-bridged answered",
                                Outcome.OUTCOME_UNKNOWN, p.path, call_id)
        except asyncio.CancelledError:
            self._cancel(call_id)
            raise
        except OSError as e:
            self._pending.pop(call_id, None)
            return local_result(Code.UNAVAILABLE, "connection to doku-bridged lost (%s)" % e,
                                Outcome.OUTCOME_UNKNOWN, p.path, call_id)

    def _cancel(self, call_id):
        """Forget the call and tell the daemon (best effort)."""
        if self._pending.pop(call_id, None) is not None and self._writer is not None:
            try:
                self._writer.write(frame(cancel_bytes(call_id)))
            except (OSError, RuntimeError):
                pass

    @property
    def in_flight(self):
        return len(self._pending)

    async def call(self, method, request=None, /, *, timeout=None, profile=None,
                   customer_ref=None, **fields):
        """Call method; return the response message or raise a DokuBridgeError."""
        r = await self.invoke(method, request, timeout=timeout, profile=profile,
                              customer_ref=customer_ref, **fields)
        return r.unwrap()

    async def call_raw(self, method, data, *, timeout=None, profile=None, customer_ref=None):
        r = await self.invoke(method, data, timeout=timeout, profile=profile,
                              customer_ref=customer_ref, raw=True)
        return r.unwrap()


def socket_path_of(path):
    return socket_path(path)


def _make(m):
    async def rpc(self, request=None, /, *, timeout=None, profile=None, customer_ref=None,
                  **fields):
        r = await self.invoke(m.name, request, timeout=timeout, profile=profile,
                              customer_ref=customer_ref, **fields)
        return r.unwrap()
    return rpc


add_methods(AsyncClient, _make)
