"""The dokubridge package against the real doku-bridged and doku-snapsim.

Needs $DOKU_BRIDGED, $DOKU_SNAPSIM, $DOKU_MKCREDS (the binaries and
tests/tools/mkcreds.sh) and $DOKU_HARNESS_DIR (tests/tools, for harness.py);
ctest sets them. Skipped when they are not set.
"""
import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest

import dokubridge
from dokubridge import Code, Outcome, wallet

NEEDED = ("DOKU_BRIDGED", "DOKU_SNAPSIM", "DOKU_MKCREDS", "DOKU_HARNESS_DIR")
pytestmark = pytest.mark.skipif(not all(os.environ.get(v) for v in NEEDED),
                                reason="needs the daemon and the sandbox (run through ctest)")
MANY = 1000
PIN = "123456"
TIMEOUT = 20.0  # seconds, for every call here


def _bridge():
    sys.path.insert(0, os.environ["DOKU_HARNESS_DIR"])
    import harness  # noqa: E402 - found through $DOKU_HARNESS_DIR
    return harness.Bridge(os.environ["DOKU_BRIDGED"], os.environ["DOKU_SNAPSIM"],
                          os.environ["DOKU_MKCREDS"])


@pytest.fixture(scope="module")
def bridge():
    b = _bridge()
    try:
        b.start()
        yield b
    except Exception:
        b.dump_logs()
        raise
    finally:
        b.stop()
        b.cleanup()


class Control:
    def __init__(self, addr):
        self.base = "http://%s/control/" % addr

    def __call__(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=20) as r:
            return json.loads(r.read() or b"null")


@pytest.fixture
def ctl(bridge):
    c = Control(bridge.control)
    yield c
    c("DELETE", "faults")


def _times():
    fmt = "%Y-%m-%dT%H:%M:%S+00:00"
    return (time.strftime(fmt, time.gmtime(time.time() + 3600)),
            time.strftime(fmt, time.gmtime(time.time() - 86400)))


async def life_of_a_customer(call, ctl, tag, phone, client_id):
    """Every RPC, in order, through call(method_name, **kwargs) -> response."""
    ref = "cust-" + tag
    amount = lambda v: wallet.Amount(value=v, currency="IDR")  # noqa: E731
    assert (await call("health")).version
    r = await call("create_account", partner_reference_no=tag + "-create", name="Dewi",
                   phone_no=phone, email="dewi-%s@example.id" % tag,
                   redirect_url="https://m.example/pin")
    otp = ctl("GET", "otps?phoneNo=" + phone)[-1]["otp"]
    v = await call("verify_otp", original_partner_reference_no=tag + "-create",
                   original_reference_no=r.reference_no, otp=otp)
    assert v.phone_no == phone
    ctl("POST", "pin", {"phoneNo": phone, "pin": PIN})
    b = await call("bind_account", partner_reference_no=tag + "-bind",
                   redirect_url="https://m.example/bound")
    ctl("POST", "bindings/approve", {"linkId": b.link_id, "phoneNo": phone, "pin": PIN})
    i = await call("inquire_account", partner_reference_no=tag + "-bind")
    account = i.account_no
    s = await call("open_customer_session", auth_code=i.additional_info.auth_code,
                   customer_ref=ref)
    assert s.access_token_expiry_time
    bal = await call("get_balance", partner_reference_no=tag + "-bal", customer_ref=ref)
    assert bal.account_info.amount.value == "0.00"
    await call("top_up", partner_reference_no=tag + "-topup", customer_number=account,
               amount=amount("70000.00"), session_id="s", notes="n", customer_ref=ref)
    # the top-up's X-EXTERNAL-ID comes with the Result: use invoke for the facts
    return ref, account, b.link_id


async def customer_money(call, invoke, ctl, tag, ref, account, link_id, client_id):
    now, yesterday = _times()
    amount = lambda v: wallet.Amount(value=v, currency="IDR")  # noqa: E731
    res = await invoke("top_up", partner_reference_no=tag + "-topup2", customer_number=account,
                       amount=amount("1000.00"), session_id="s", notes="n", customer_ref=ref)
    assert res.ok and res.external_id and res.outcome == Outcome.OUTCOME_DONE
    st = await call("get_top_up_status", original_partner_reference_no=tag + "-topup2",
                    original_external_id=res.external_id, service_code="38", customer_ref=ref)
    assert st.latest_transaction_status == "00"
    bi = await call("inquire_bank_account", partner_reference_no=tag + "-binq",
                    customer_number=account, beneficiary_account_number="5550001231",
                    customer_ref=ref)
    await call("transfer_to_bank", partner_reference_no=tag + "-xfer", customer_number=account,
               account_type="SAVINGS", beneficiary_account_number="5550001231",
               beneficiary_bank_code=bi.beneficiary_bank_code, amount=amount("500.00"),
               customer_ref=ref)
    for p in ("-buy1", "-buy2"):
        await call("purchase", partner_reference_no=tag + p, charge_token="DOKU",
                   amount=amount("300.00"), customer_ref=ref)
    ctl("POST", "purchases/approve", {"partnerReferenceNo": tag + "-buy1", "pin": PIN})
    ps = await call("get_purchase_status", partner_reference_no=tag + "-buy1", service_code="54",
                    transaction_date=now, customer_ref=ref)
    assert ps.latest_transaction_status == "00"
    await call("refund_purchase", original_partner_reference_no=tag + "-buy1", reason="r",
               partner_refund_no=tag + "-refund", customer_ref=ref)
    await call("cancel_purchase", original_partner_reference_no=tag + "-buy2", reason="r",
               customer_ref=ref)
    h = await call("list_transactions", partner_reference_no=tag + "-list",
                   from_date_time=yesterday, to_date_time=now, page_size="50", page_number="0",
                   customer_ref=ref)
    assert len(h.detail_data) >= 5
    t = await call("get_transaction", partner_reference_no=tag + "-xfer", customer_ref=ref)
    assert t.type == "SEND_MONEY" and t.amount.value == "500.00"
    op = await call("get_operation", partner_reference_no=tag + "-xfer")
    assert op.operation.method == "TransferToBank"
    assert op.operation.state == wallet.OPERATION_STATE_DONE
    ops = await call("list_operations", customer_ref=ref)
    assert len(ops.operations) >= 5 and ops.operations[0].created_at
    c = await call("close_customer_session", customer_ref=ref)
    assert c.closed
    with pytest.raises(dokubridge.DokuBridgeError):  # the session is gone
        await call("get_balance", partner_reference_no=tag + "-bal2", customer_ref=ref)
    u = await call("unbind_account", partner_reference_no=tag + "-unbind", link_id=link_id,
                   merchant_id=client_id)
    assert u.unlink_result == "inProgress"


def test_every_rpc_sync(bridge, ctl):
    with dokubridge.Client(bridge.socket, timeout=TIMEOUT) as c:
        async def call(name, /, **kw):
            return getattr(c, name)(**kw)

        async def invoke(name, /, **kw):
            return c.invoke(name, **kw)

        async def main():
            ref, account, link = await life_of_a_customer(call, ctl, "pys", "081377770001",
                                                         bridge.client_id)
            await customer_money(call, invoke, ctl, "pys", ref, account, link, bridge.client_id)
        asyncio.run(main())


def test_every_rpc_asyncio(bridge, ctl):
    async def main():
        async with dokubridge.AsyncClient(bridge.socket, timeout=TIMEOUT) as c:
            async def call(name, /, **kw):
                return await getattr(c, name)(**kw)

            ref, account, link = await life_of_a_customer(call, ctl, "pya", "081377770002",
                                                         bridge.client_id)
            await customer_money(call, c.invoke, ctl, "pya", ref, account, link,
                                 bridge.client_id)
    asyncio.run(main())


def test_asyncio_many_in_flight(bridge, ctl):
    async def main():
        async with dokubridge.AsyncClient(bridge.socket, timeout=60) as c:
            ref, account, _ = await life_of_a_customer(
                lambda n, /, **kw: getattr(c, n)(**kw), ctl, "pym", "081377770003",
                bridge.client_id)
            calls = []
            for i in range(MANY):
                kind = i % 3
                if kind == 0:
                    calls.append(c.get_balance(partner_reference_no="pym-b%d" % i,
                                               customer_ref=ref))
                elif kind == 1:
                    calls.append(c.top_up(partner_reference_no="pym-t%d" % i,
                                          customer_number=account, amount=wallet.Amount(
                                              value="1.00", currency="IDR"),
                                          session_id="s", notes="n", customer_ref=ref))
                else:
                    calls.append(c.health())
            tasks = [asyncio.ensure_future(x) for x in calls]
            await asyncio.sleep(0)
            peak = c.in_flight
            results = await asyncio.gather(*tasks)
            return peak, results, c.in_flight

    peak, results, left = asyncio.run(main())
    assert len(results) == MANY and left == 0
    assert peak > MANY // 2  # most of them were in flight at once, on one connection
    assert all(r is not None for r in results)


def test_example_runs(bridge):
    """examples/balance.py, against the session test_asyncio_many_in_flight left open."""
    example = os.path.join(os.path.dirname(__file__), "..", "examples", "balance.py")
    p = subprocess.run([sys.executable, example, "cust-pym", "pyx-1"], capture_output=True,
                       timeout=60, env=dict(os.environ, DOKU_BRIDGE_SOCKET=bridge.socket))
    assert p.returncode == 0, p.stderr
    lines = p.stdout.decode().splitlines()
    assert lines[0].startswith("Dewi: ") and lines[0].endswith(" IDR")
    assert len([l for l in lines if l.startswith("asyncio: ")]) == 3


def test_errors(bridge, ctl):
    c = dokubridge.Client(bridge.socket, timeout=TIMEOUT)
    with pytest.raises(dokubridge.InvalidArgument) as ei:
        c.create_account(partner_reference_no="pye-1", name="No Phone",
                         email="np@example.id", redirect_url="https://m.example/r")
    assert "phoneNo" in ei.value.status_message and not ei.value.local
    assert ei.value.outcome == Outcome.OUTCOME_NOT_DONE
    with pytest.raises(dokubridge.PermissionDenied) as ei:
        c.get_balance(partner_reference_no="pye-2", customer_ref="x", profile="restricted")
    assert not ei.value.local
    with pytest.raises(dokubridge.Unimplemented):
        c.call_raw("/doku.wallet.v1.Wallet/NoSuchMethod", b"")
    # DOKU answers 504 after doing it: OutcomeUnknown, with the facts to reconcile
    ctl("POST", "faults", {"path": "/snap-adapter/b2b/v1.0/registration-account-creation",
                           "kind": "http504", "apply": True})
    with pytest.raises(dokubridge.OutcomeUnknown) as ei:
        c.create_account(partner_reference_no="pye-504", name="Rina", phone_no="081377770009",
                         email="rina@example.id", redirect_url="https://m.example/r")
    e = ei.value
    assert e.http_status == 504 and e.external_id and e.partner_reference_no == "pye-504"
    assert e.response_code.startswith("504")
    # a deadline DOKU cannot meet: the daemon's own DEADLINE_EXCEEDED
    ctl("POST", "faults", {"path": "/snap-adapter/b2b/v1.0/registration-account-inquiry",
                           "kind": "delay", "delayMs": 5000})
    t0 = time.monotonic()
    with pytest.raises(dokubridge.DeadlineExceeded) as ei:
        c.inquire_account(partner_reference_no="pye-x", timeout=0.3)
    assert time.monotonic() - t0 < 3 and not ei.value.local

    async def cancelled():
        async with dokubridge.AsyncClient(bridge.socket) as ac:
            ctl("POST", "faults", {"path": "/snap-adapter/b2b/v1.0/registration-account-inquiry",
                                   "kind": "delay", "delayMs": 5000})
            task = asyncio.ensure_future(ac.inquire_account(partner_reference_no="pye-y"))
            await asyncio.sleep(0.1)  # let it go out; the outcome does not depend on it
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert ac.in_flight == 0
            assert (await ac.health()).version  # the connection still works
    asyncio.run(asyncio.wait_for(cancelled(), 30))
    c.close()


def test_daemon_down():
    b = _bridge()
    try:
        b.start()
        c = dokubridge.Client(b.socket)
        assert c.health().version
        b.stop_daemon()
        with pytest.raises(dokubridge.Unavailable) as ei:
            c.health()
        assert ei.value.local
        with pytest.raises(dokubridge.Unavailable) as ei:  # reconnecting fails too
            c.health()
        assert ei.value.outcome == Outcome.OUTCOME_NOT_DONE
        with pytest.raises(dokubridge.Unavailable):
            asyncio.run(dokubridge.AsyncClient(b.socket).health())
        assert Code.UNAVAILABLE == ei.value.code
    finally:
        b.stop()
        b.cleanup()
