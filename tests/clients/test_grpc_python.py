"""Stock gRPC (Debian's python3-grpcio) against doku-bridged and doku-snapsim.

Run under tests/tools/harness.py, which starts both and sets DOKU_BRIDGE_SOCKET,
DOKU_SNAPSIM_CONTROL, DOKU_TEST_CLIENT_ID and DOKU_TEST_DIR; DOKU_PROTO_DIR is
the contract's proto/. The stubs are generated here, by protoc with Debian's
grpc_python_plugin, from the contract as users would generate them: no
doku-bridge library is used. Every call goes over the daemon's one Unix
socket, beside the native protocol.
"""
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
import urllib.request

import grpc
import pytest
from google.protobuf import json_format

PROTO = os.environ["DOKU_PROTO_DIR"]
SOCKET = os.environ["DOKU_BRIDGE_SOCKET"]
CONTROL = "http://%s/control/" % os.environ["DOKU_SNAPSIM_CONTROL"]
MERCHANT = os.environ["DOKU_TEST_CLIENT_ID"]
STUBS = os.path.join(os.environ["DOKU_TEST_DIR"], "grpc-stubs")
EXAMPLE = os.path.join(PROTO, "..", "clients", "grpc", "balance_grpc.py")
PIN = "246810"
WAIT = 20.0  # seconds for a condition the test waits on


def _stubs():
    """protoc + grpc_python_plugin: wallet.proto, and health.proto under another
    module path (its proto package stays grpc.health.v1; a module path grpc/...
    would be shadowed by the grpc package itself)."""
    shutil.rmtree(STUBS, ignore_errors=True)
    health = os.path.join(STUBS, "src", "dokutest_health")
    os.makedirs(health)
    shutil.copy(os.path.join(PROTO, "grpc", "health", "v1", "health.proto"), health)
    subprocess.run(["protoc", "-I", PROTO, "-I", os.path.join(STUBS, "src"),
                    "--python_out=" + STUBS, "--grpc_python_out=" + STUBS,
                    "--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin",
                    "doku/wallet/v1/wallet.proto", "dokutest_health/health.proto"],
                   check=True, timeout=60)
    sys.path.insert(0, STUBS)


_stubs()
from doku.wallet.v1 import wallet_pb2 as pb, wallet_pb2_grpc  # noqa: E402
from dokutest_health import health_pb2, health_pb2_grpc  # noqa: E402


def ctl(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(CONTROL + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=20) as r:
        return json.loads(r.read() or b"null")


def msg(cls, js):
    """A request from DOKU's JSON (the proto's json names are DOKU's keys)."""
    return json_format.ParseDict(js, cls())


def js(m):
    return json_format.MessageToDict(m)


@pytest.fixture(scope="module")
def channel():
    ch = grpc.insecure_channel("unix:" + SOCKET)
    yield ch
    ch.close()


@pytest.fixture(scope="module")
def wallet(channel):
    return wallet_pb2_grpc.WalletStub(channel)


def call(rpc, req, ref=None, profile=None, timeout=30):
    """One unary call: (response, trailing metadata as a dict)."""
    md = []
    if ref is not None:
        md.append(("x-doku-customer-ref", ref))
    if profile is not None:
        md.append(("x-doku-profile", profile))
    r, c = rpc.with_call(req, metadata=md, timeout=timeout)
    return r, dict(c.trailing_metadata())


def failed(rpc, req, code, ref=None, profile=None, timeout=30):
    """A call that must fail with code: its RpcError and trailing metadata."""
    md = [("x-doku-customer-ref", ref)] if ref is not None else []
    if profile is not None:
        md.append(("x-doku-profile", profile))
    with pytest.raises(grpc.RpcError) as ei:
        rpc(req, metadata=md, timeout=timeout)
    e = ei.value
    assert e.code() == code, (e.code(), e.details())
    return e, dict(e.trailing_metadata() or ())


def metric(wallet, method, code):
    """doku_bridge_calls_total of method and code, summed over outcomes."""
    text = wallet.Metrics(pb.MetricsRequest(), timeout=10).text
    n = 0
    for line in text.splitlines():
        if line.startswith("doku_bridge_calls_total{") and 'method="%s"' % method in line \
                and 'code="%s"' % code in line:
            n += int(float(line.rsplit(" ", 1)[1]))
    return n


def wait_for(cond, what):
    deadline = time.monotonic() + WAIT
    while not cond():
        assert time.monotonic() < deadline, "not within %.0f s: %s" % (WAIT, what)
        time.sleep(0.02)  # polling a condition, bounded; not a synchronisation by delay


def new_customer(wallet, run, ref):
    """Create, verify, set the PIN, bind, approve, inquire, open session ref: (account, link, phone)."""
    phone = "0812%08d" % random.randrange(10 ** 8)
    r, _ = call(wallet.CreateAccount, msg(pb.CreateAccountRequest, {
        "partnerReferenceNo": "reg-" + run, "name": "Budi Santoso", "phoneNo": phone,
        "email": "budi.%s@example.com" % run, "redirectUrl": "https://shop.example/pin"}))
    otp = ctl("GET", "otps?phoneNo=" + phone)[0]["otp"]
    call(wallet.VerifyOtp, msg(pb.VerifyOtpRequest, {
        "originalPartnerReferenceNo": "reg-" + run, "originalReferenceNo": r.reference_no,
        "otp": otp}))
    account = ctl("POST", "pin", {"phoneNo": phone, "pin": PIN})["accountId"]
    r, _ = call(wallet.BindAccount, msg(pb.BindAccountRequest, {
        "partnerReferenceNo": "bind-" + run, "redirectUrl": "https://shop.example/bound",
        "successParams": {"accountId": phone}}))
    link = r.link_id
    ctl("POST", "bindings/approve", {"linkId": link, "pin": PIN})
    r, _ = call(wallet.InquireAccount, msg(pb.InquireAccountRequest, {
        "partnerReferenceNo": "bind-" + run}))
    call(wallet.OpenCustomerSession, pb.OpenCustomerSessionRequest(
        auth_code=r.additional_info.auth_code), ref=ref)
    return account, link, phone


def test_wallet_flow(wallet):
    """The main job (scripts/wallet-flow.sh), every step over stock gRPC."""
    run = "g%d" % random.randrange(10 ** 9)
    ref = "budi-" + run
    account, link, phone = new_customer(wallet, run, ref)

    r, t = call(wallet.GetBalance, msg(pb.GetBalanceRequest, {"partnerReferenceNo": "bal1-" + run}),
                ref=ref)
    start = float(r.account_info.amount.value)
    assert t["x-doku-outcome"] == "DONE" and t["x-doku-http-status"] == "200"
    assert t["x-doku-response-code"] == "2001100" and t["x-doku-external-id"]
    assert t["x-doku-partner-reference-no"] == "bal1-" + run

    r, t = call(wallet.TopUp, msg(pb.TopUpRequest, {
        "partnerReferenceNo": "top-" + run, "customerNumber": account,
        "amount": {"value": "150000.00", "currency": "IDR"}, "sessionId": "web-" + run,
        "notes": "welcome credit"}), ref=ref)
    assert t["x-doku-outcome"] == "DONE" and t["x-doku-response-code"].startswith("200")
    top_ext = t["x-doku-external-id"]

    purchase_time = time.strftime("%Y-%m-%dT%H:%M:%S+07:00", time.gmtime(time.time() + 7 * 3600))
    r, t = call(wallet.Purchase, msg(pb.PurchaseRequest, {
        "partnerReferenceNo": "inv-" + run, "chargeToken": "DOKU",
        "amount": {"value": "42500.00", "currency": "IDR"},
        "urlParam": {"url": "https://shop.example/paid", "type": "PAY_RETURN",
                     "isDeepLink": "N", "merchantId": MERCHANT}}), ref=ref)
    assert t["x-doku-outcome"] in ("DONE", "UNKNOWN")
    ctl("POST", "purchases/approve", {"partnerReferenceNo": "inv-" + run, "pin": PIN})
    r, t = call(wallet.GetPurchaseStatus, msg(pb.GetPurchaseStatusRequest, {
        "partnerReferenceNo": "inv-" + run, "serviceCode": "54",
        "transactionDate": purchase_time}), ref=ref)
    assert r.latest_transaction_status == "00", js(r)

    r, t = call(wallet.RefundPurchase, msg(pb.RefundPurchaseRequest, {
        "originalPartnerReferenceNo": "inv-" + run, "reason": "one item out of stock",
        "partnerRefundNo": "rf-" + run, "refundAmount": {"value": "12500.00", "currency": "IDR"}}),
        ref=ref)
    assert t["x-doku-outcome"] == "DONE" and t["x-doku-partner-reference-no"] == "rf-" + run

    today = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 7 * 3600))
    r, _ = call(wallet.ListTransactions, msg(pb.ListTransactionsRequest, {
        "partnerReferenceNo": "hist-" + run, "fromDateTime": today + "T00:00:00+07:00",
        "toDateTime": today + "T23:59:59+07:00", "pageSize": "10", "pageNumber": "0"}), ref=ref)
    assert len(r.detail_data) >= 3, js(r)
    call(wallet.GetTransaction, msg(pb.GetTransactionRequest, {"partnerReferenceNo": "inv-" + run}),
         ref=ref)
    r, _ = call(wallet.InquireBankAccount, msg(pb.InquireBankAccountRequest, {
        "partnerReferenceNo": "bank-" + run, "customerNumber": account,
        "amount": {"value": "50000.00", "currency": "IDR"},
        "beneficiaryAccountNumber": "1234567891", "additionalInfo": {"bankCode": "014"}}), ref=ref)
    assert r.beneficiary_account_name
    call(wallet.TransferToBank, msg(pb.TransferToBankRequest, {
        "partnerReferenceNo": "xfer-" + run, "customerNumber": account, "accountType": "SAVINGS",
        "beneficiaryAccountNumber": "1234567891", "beneficiaryBankCode": "014",
        "amount": {"value": "50000.00", "currency": "IDR"}}), ref=ref)
    r, _ = call(wallet.GetBalance, msg(pb.GetBalanceRequest, {"partnerReferenceNo": "bal3-" + run}),
                ref=ref)
    assert float(r.account_info.amount.value) == start + 150000 - 42500 + 12500 - 50000

    # the journal saw the money calls: GetOperation by partner reference
    r, _ = call(wallet.GetOperation, pb.GetOperationRequest(partner_reference_no="top-" + run))
    assert r.operation.external_id == top_ext and r.operation.method == "TopUp"

    # the documentation's example (docs/clients.md) on the same session
    p = subprocess.run([sys.executable, EXAMPLE, ref, "bal-doc-" + run], capture_output=True,
                       timeout=60, env=dict(os.environ, PYTHONPATH=STUBS))
    assert p.returncode == 0, p.stderr.decode()
    assert "outcome DONE" in p.stdout.decode(), p.stdout.decode()

    r, t = call(wallet.UnbindAccount, msg(pb.UnbindAccountRequest, {
        "partnerReferenceNo": "unbind-" + run, "linkId": link, "merchantId": MERCHANT}))
    otp = ctl("GET", "otps?phoneNo=" + phone)[0]["otp"]
    call(wallet.VerifyOtp, msg(pb.VerifyOtpRequest, {
        "originalPartnerReferenceNo": "unbind-" + run, "originalReferenceNo": r.reference_no,
        "otp": otp}))
    r, _ = call(wallet.CloseCustomerSession, pb.CloseCustomerSessionRequest(), ref=ref)
    assert r.closed
    r, t = call(wallet.Health, pb.HealthRequest())
    assert r.version and r.calls_served > 0 and t["x-doku-outcome"] == "DONE"


def test_unknown_outcome_in_trailers(wallet):
    """DOKU does the top-up and answers 504: UNKNOWN, with the facts to reconcile."""
    run = "u%d" % random.randrange(10 ** 9)
    ref = "rina-" + run
    account, _, _ = new_customer(wallet, run, ref)
    ctl("POST", "faults", {"path": "/snap-adapter/b2b2c/v1.0/emoney/topup", "kind": "http504",
                           "apply": True, "count": 1})
    try:
        e, t = failed(wallet.TopUp, msg(pb.TopUpRequest, {
            "partnerReferenceNo": "top504-" + run, "customerNumber": account,
            "amount": {"value": "1000.00", "currency": "IDR"}, "sessionId": "s-" + run, "notes": "n"}),
            grpc.StatusCode.DEADLINE_EXCEEDED,
            ref=ref)
    finally:
        ctl("DELETE", "faults")
    assert t["x-doku-outcome"] == "UNKNOWN"
    assert t["x-doku-http-status"] == "504" and t["x-doku-response-code"].startswith("504")
    assert t["x-doku-partner-reference-no"] == "top504-" + run and t["x-doku-external-id"]
    assert "GetTopUpStatus" in e.details() and "GetTopUpStatus" in t["x-doku-detail"]
    # the same reference again is not sent again: answered from the journal (UNKNOWN
    # until the daemon's reconciliation settles it, then DONE), with the first external id
    again = msg(pb.TopUpRequest, {
        "partnerReferenceNo": "top504-" + run, "customerNumber": account,
        "amount": {"value": "1000.00", "currency": "IDR"}, "sessionId": "s-" + run, "notes": "n"})
    try:
        _, t2 = call(wallet.TopUp, again, ref=ref)
        assert t2["x-doku-outcome"] == "DONE"
    except grpc.RpcError as e2:
        assert e2.code() == grpc.StatusCode.UNAVAILABLE, e2.details()
        t2 = dict(e2.trailing_metadata())
        assert t2["x-doku-outcome"] == "UNKNOWN"
    assert "not sent again" in t2["x-doku-detail"]
    r, _ = call(wallet.GetOperation, pb.GetOperationRequest(partner_reference_no="top504-" + run))
    assert r.operation.external_id == t["x-doku-external-id"]


def test_deadline(wallet):
    """grpc-timeout is the call's deadline: the call ends at it, in the daemon too.

    The daemon's timer and the client's own (which resets the stream) lapse at
    the same moment, the client's a transit earlier: the daemon counts the call
    DEADLINE_EXCEEDED or CANCELLED, whichever came first, long before DOKU's
    delayed answer. (test_rpc_grpc checks the daemon's own answer.)"""
    def stopped():
        return (metric(wallet, "InquireAccount", "DEADLINE_EXCEEDED") +
                metric(wallet, "InquireAccount", "CANCELLED"))

    before = stopped()
    ctl("POST", "faults", {"path": "/snap-adapter/b2b/v1.0/registration-account-inquiry",
                           "kind": "delay", "delayMs": 8000, "count": 1})
    t0 = time.monotonic()
    try:
        failed(wallet.InquireAccount, pb.InquireAccountRequest(partner_reference_no="dl-1"),
               grpc.StatusCode.DEADLINE_EXCEEDED, timeout=0.5)
        assert time.monotonic() - t0 < 3
        wait_for(lambda: stopped() == before + 1, "the daemon stops the call")
        assert time.monotonic() - t0 < 6  # not DOKU's answer after 8 s
    finally:
        ctl("DELETE", "faults")


def test_cancel(wallet, channel):
    """A cancelled call (RST_STREAM) is stopped in the daemon; the channel goes on."""
    before = metric(wallet, "InquireAccount", "CANCELLED")
    ctl("POST", "faults", {"path": "/snap-adapter/b2b/v1.0/registration-account-inquiry",
                           "kind": "delay", "delayMs": 10000, "count": -1})
    try:
        fut = wallet.InquireAccount.future(pb.InquireAccountRequest(partner_reference_no="cx-1"),
                                           timeout=30)
        # it reached DOKU: the fault fired
        wait_for(lambda: any(f["fired"] for f in ctl("GET", "faults")), "the request at DOKU")
        assert fut.cancel()
        with pytest.raises(grpc.FutureCancelledError):
            fut.result()
        wait_for(lambda: metric(wallet, "InquireAccount", "CANCELLED") == before + 1,
                 "the daemon counts the call CANCELLED")
    finally:
        ctl("DELETE", "faults")
    r, _ = call(wallet.Health, pb.HealthRequest())
    assert r.version


def test_unknown_method(channel, wallet):
    for path in ("/doku.wallet.v1.Wallet/NoSuchMethod", "/no.such.Service/Call"):
        rpc = channel.unary_unary(path, request_serializer=lambda b: b,
                                  response_deserializer=lambda b: b)
        with pytest.raises(grpc.RpcError) as ei:
            rpc(b"", timeout=10)
        assert ei.value.code() == grpc.StatusCode.UNIMPLEMENTED, ei.value.details()
        assert "unknown method" in ei.value.details()
    assert call(wallet.Health, pb.HealthRequest())[0].version  # the channel still works


def test_refused_counted(wallet):
    """A request refused before it became a call (here a compressed one:
    UNIMPLEMENTED) counts as a failed call, as a native frame refused at
    admission does: doku_bridge_calls_total{method="unknown"}."""
    before = metric(wallet, "unknown", "UNIMPLEMENTED")
    with pytest.raises(grpc.RpcError) as ei:
        wallet.Health(pb.HealthRequest(), timeout=10, compression=grpc.Compression.Gzip)
    assert ei.value.code() == grpc.StatusCode.UNIMPLEMENTED, ei.value.details()
    assert metric(wallet, "unknown", "UNIMPLEMENTED") == before + 1


def test_envelope_metadata(wallet):
    """x-doku-profile and x-doku-customer-ref are the envelope: admission judges them."""
    e, t = failed(wallet.GetBalance, pb.GetBalanceRequest(partner_reference_no="p-1"),
                  grpc.StatusCode.PERMISSION_DENIED, ref="x", profile="restricted")
    assert "restricted" in e.details() and t["x-doku-outcome"] == "NOT_DONE"
    e, _ = failed(wallet.GetBalance, pb.GetBalanceRequest(partner_reference_no="p-2"),
                  grpc.StatusCode.INVALID_ARGUMENT)
    assert "customer_ref" in e.details()
    e, _ = failed(wallet.GetBalance, pb.GetBalanceRequest(partner_reference_no="p-3"),
                  grpc.StatusCode.INVALID_ARGUMENT, ref="x", profile="nope")
    assert "profile" in e.details()
    e, _ = failed(wallet.GetBalance, pb.GetBalanceRequest(partner_reference_no="p-4"),
                  grpc.StatusCode.FAILED_PRECONDITION, ref="nobody-here")
    assert "OpenCustomerSession" in e.details()
    e, t = failed(wallet.CreateAccount, pb.CreateAccountRequest(partner_reference_no="p-5"),
                  grpc.StatusCode.INVALID_ARGUMENT)
    assert "missing required field" in e.details() and t["x-doku-outcome"] == "NOT_DONE"


def test_health_check(channel):
    h = health_pb2_grpc.HealthStub(channel)
    ok = health_pb2.HealthCheckResponse.SERVING
    assert h.Check(health_pb2.HealthCheckRequest(), timeout=10).status == ok
    assert h.Check(health_pb2.HealthCheckRequest(service="doku.wallet.v1.Wallet"),
                   timeout=10).status == ok
    with pytest.raises(grpc.RpcError) as ei:
        h.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=10)
    assert ei.value.code() == grpc.StatusCode.NOT_FOUND
    # Watch: the status at once, on a stream that stays open (until a drain or a cancel)
    watch = h.Watch(health_pb2.HealthCheckRequest(service="doku.wallet.v1.Wallet"), timeout=30)
    assert next(watch).status == ok
    watch.cancel()
    unknown = h.Watch(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=30)
    assert next(unknown).status == health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
    unknown.cancel()
    assert h.Check(health_pb2.HealthCheckRequest(), timeout=10).status == ok


def test_many_in_flight(wallet):
    """Calls multiplexed on one channel, as many as the daemon's streams allow."""
    futs = [wallet.Health.future(pb.HealthRequest(), timeout=30) for _ in range(200)]
    assert all(f.result().version for f in futs)
