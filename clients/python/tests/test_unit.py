"""Unit tests of the dokubridge package against a fake daemon (no SNAP, no TLS)."""
import asyncio
import os
import pickle
import socket
import tempfile

import pytest

import dokubridge
from dokubridge import Code, Outcome, bridge, wallet

from fake_daemon import FakeDaemon

MANY = 1000


@pytest.fixture
def fake(request):
    mode = getattr(request, "param", "answer")
    f = FakeDaemon(*mode) if isinstance(mode, tuple) else FakeDaemon(mode)
    yield f
    f.stop()


# ---- methods, codes, errors ------------------------------------------------------

def test_one_method_per_rpc():
    rpcs = [m.name for m in wallet.DESCRIPTOR.services_by_name["Wallet"].methods]
    assert len(rpcs) == 22
    assert [m.name for m in dokubridge.METHODS] == rpcs
    for m in dokubridge.METHODS:
        for cls in (dokubridge.Client, dokubridge.AsyncClient):
            f = getattr(cls, m.python_name)
            assert m.path in f.__doc__
        assert dokubridge.method(m.name) is m
        assert dokubridge.method(m.path) is m
        assert dokubridge.method(dokubridge.kebab(m.name)) is m
        assert dokubridge.method(m.python_name) is m
    assert asyncio.iscoroutinefunction(dokubridge.AsyncClient.get_balance)
    assert dokubridge.kebab("GetTopUpStatus") == "get-top-up-status"
    assert dokubridge.method("get_top_up_status").request_class is wallet.GetTopUpStatusRequest
    assert dokubridge.method("Nope") is None


def test_codes_are_the_contracts():
    assert Code.UNAVAILABLE == bridge.UNAVAILABLE == 14
    assert Outcome.OUTCOME_UNKNOWN == bridge.OUTCOME_UNKNOWN == 3
    assert len(Code) == 17


def test_error_classes():
    e = dokubridge.error_class(Code.DEADLINE_EXCEEDED, Outcome.OUTCOME_UNKNOWN)(
        Code.DEADLINE_EXCEEDED, "slow", outcome=Outcome.OUTCOME_UNKNOWN, response_code="5040000")
    assert isinstance(e, dokubridge.DeadlineExceeded)
    assert isinstance(e, dokubridge.OutcomeUnknown)
    assert isinstance(e, dokubridge.DokuBridgeError)
    assert e.outcome_unknown and e.code_name == "DEADLINE_EXCEEDED"
    assert "5040000" in str(e) and "may have happened" in str(e)
    e2 = pickle.loads(pickle.dumps(e))
    assert type(e2) is type(e) and e2.response_code == "5040000"
    plain = dokubridge.error_class(Code.NOT_FOUND, Outcome.OUTCOME_NOT_DONE)
    assert plain is dokubridge.NotFound
    assert not issubclass(plain, dokubridge.OutcomeUnknown)
    assert dokubridge.Cancelled is not asyncio.CancelledError


# ---- local errors -------------------------------------------------------------------

def test_daemon_down_is_unavailable(monkeypatch):
    monkeypatch.setenv("DOKU_BRIDGE_SOCKET", "/nonexistent/doku-bridge.sock")
    c = dokubridge.Client()
    assert c.socket_path == "/nonexistent/doku-bridge.sock"
    with pytest.raises(dokubridge.Unavailable) as ei:
        c.health()
    assert ei.value.local and ei.value.outcome == Outcome.OUTCOME_NOT_DONE
    assert "/nonexistent/doku-bridge.sock" in str(ei.value)
    r = c.invoke("Health")
    assert r.code == Code.UNAVAILABLE and r.local


def test_default_socket(monkeypatch):
    monkeypatch.delenv("DOKU_BRIDGE_SOCKET", raising=False)
    assert dokubridge.Client().socket_path == dokubridge.DEFAULT_SOCKET == \
        "/run/doku-bridge/bridge.sock"


def test_refused_socket_is_unavailable():
    d = tempfile.mkdtemp()
    path = os.path.join(d, "s")
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.close()
    try:
        with pytest.raises(dokubridge.Unavailable):
            dokubridge.Client(path).health()
        with pytest.raises(dokubridge.Unavailable):
            asyncio.run(dokubridge.AsyncClient(path).health())
    finally:
        os.unlink(path)
        os.rmdir(d)


def test_bad_arguments(fake):
    c = dokubridge.Client(fake.path)
    with pytest.raises(dokubridge.InvalidArgument):
        c.call("Nope")
    with pytest.raises(dokubridge.InvalidArgument):
        c.get_balance(wallet.GetTransactionRequest())
    with pytest.raises(dokubridge.InvalidArgument):
        c.get_balance(no_such_field="x")
    with pytest.raises(dokubridge.InvalidArgument) as ei:
        c.get_balance(partner_reference_no="x", customer_ref="no spaces")
    assert "customer_ref" in str(ei.value)
    with pytest.raises(dokubridge.InvalidArgument):
        c.get_balance(partner_reference_no="x", timeout=-1)
    assert fake.calls == []  # nothing went out
    c.close()


# ---- round trips ----------------------------------------------------------------------

def test_sync_round_trip(fake):
    with dokubridge.Client(fake.path, profile="shop2") as c:
        r = c.get_balance(partner_reference_no="ref-1", customer_ref="cust-1", timeout=5)
        assert r.name == "Budi" and r.account_info.amount.value == "10000.00"
        res = c.invoke("get-balance", wallet.GetBalanceRequest(partner_reference_no="ref-2"))
        assert res.ok and res.http_status == 200 and res.response_code == "2001100"
        assert res.external_id == "41807553358950093184"
        assert res.partner_reference_no == "ref-2"
        assert res.outcome == Outcome.OUTCOME_DONE and not res.local
        # dict and message forms
        echo = c.get_transaction({"partner_reference_no": "p"})
        assert isinstance(echo, wallet.GetTransactionResponse) and echo.response_code == "p"
        assert c.call_raw("/doku.wallet.v1.Wallet/GetTransaction", b"\x0a\x01z") == b"\x0a\x01z"
        with pytest.raises(dokubridge.Unimplemented) as ei:
            c.call_raw("/doku.wallet.v1.Wallet/Nope", b"")
        assert not ei.value.local
        assert isinstance(c.health(), wallet.HealthResponse)  # empty OK message
    first = fake.calls[0]
    assert first.method == "/doku.wallet.v1.Wallet/GetBalance"
    assert first.timeout_ms == 5000 and first.profile == "shop2"
    assert first.customer_ref == "cust-1"
    assert fake.calls[1].timeout_ms == 0 and fake.calls[1].customer_ref == ""


@pytest.mark.parametrize("fake", ["silent"], indirect=True)
def test_sync_deadline(fake):
    with dokubridge.Client(fake.path) as c:
        with pytest.raises(dokubridge.DeadlineExceeded) as ei:
            c.health(timeout=0.05)
        e = ei.value
        assert isinstance(e, dokubridge.OutcomeUnknown) and e.local
        # the daemon was told: a cancel frame; its late CANCELLED answer is
        # dropped by the next call, which times out in turn
        with pytest.raises(dokubridge.DeadlineExceeded):
            c.health(timeout=0.2)
    assert fake.calls[0].timeout_ms == 50
    assert 1 in fake.cancels


@pytest.mark.parametrize("fake", ["bad_flags", "huge", "close"], indirect=True)
def test_protocol_failures(fake):
    expected = {"bad_flags": dokubridge.Internal, "huge": dokubridge.ResourceExhausted,
                "close": dokubridge.Unavailable}[fake.mode]
    c = dokubridge.Client(fake.path, max_frame=1024)
    with pytest.raises(expected) as ei:
        c.top_up(partner_reference_no="x")
    assert ei.value.local and isinstance(ei.value, dokubridge.OutcomeUnknown)
    assert not c.connected
    with pytest.raises(expected):
        asyncio.run(dokubridge.AsyncClient(fake.path, max_frame=1024).top_up(
            partner_reference_no="y"))


# ---- asyncio ----------------------------------------------------------------------------

@pytest.mark.parametrize("fake", [("reverse", MANY)], indirect=True)
def test_async_many_in_flight(fake):
    async def main():
        async with dokubridge.AsyncClient(fake.path) as c:
            calls = [c.get_balance(partner_reference_no="r%d" % i, customer_ref="c",
                                   timeout=20) for i in range(MANY)]
            return await asyncio.gather(*calls), c.in_flight

    results, left = asyncio.run(main())
    assert [r.partner_reference_no for r in results] == ["r%d" % i for i in range(MANY)]
    assert left == 0
    assert len(fake.calls) == MANY


@pytest.mark.parametrize("fake", ["silent"], indirect=True)
def test_async_deadline_and_cancel(fake):
    async def main():
        async with dokubridge.AsyncClient(fake.path) as c:
            with pytest.raises(dokubridge.DeadlineExceeded) as ei:
                await c.health(timeout=0.05)
            assert isinstance(ei.value, dokubridge.OutcomeUnknown)
            task = asyncio.ensure_future(c.purchase(partner_reference_no="p"))
            while len(fake.calls) < 2:
                await asyncio.sleep(0.01)  # until the fake has the call (bounded by pytest)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert c.in_flight == 0
            while len(fake.cancels) < 2:
                await asyncio.sleep(0.01)

    asyncio.run(asyncio.wait_for(main(), 20))
    assert fake.cancels == [1, 2]


def test_async_round_trip_and_close(fake):
    async def main():
        c = dokubridge.AsyncClient(fake.path, timeout=5)
        r = await c.get_balance(partner_reference_no="a", customer_ref="x")
        res = await c.invoke("GetBalance", partner_reference_no="b")
        await c.close()
        assert not c.connected
        r2 = await c.get_balance(partner_reference_no="c")  # reconnects
        await c.close()
        return r, res, r2

    r, res, r2 = asyncio.run(main())
    assert r.partner_reference_no == "a" and res.response_code == "2001100"
    assert r2.partner_reference_no == "c"
    assert fake.calls[0].timeout_ms == 5000
