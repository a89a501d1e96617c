#!/usr/bin/python3
"""dokuctl against the real doku-bridged and doku-snapsim (run under harness.py).

    test_dokuctl.py DOKUCTL

Every command in one customer's life, the help texts, and the exit statuses:
0 OK, 1 error, 2 usage, 3 outcome unknown, 4 daemon unreachable.
"""
import json
import os
import subprocess
import sys
import time
import urllib.request

DOKUCTL = sys.argv[1]
CONTROL = "http://%s/control/" % os.environ["DOKU_SNAPSIM_CONTROL"]
CLIENT_ID = os.environ["DOKU_TEST_CLIENT_ID"]
CALL_TIMEOUT = 60  # seconds for one dokuctl run
PIN = "123456"
FAILURES = []


def ctl(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(CONTROL + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=20) as r:
        return json.loads(r.read() or b"null")


def run(*args, stdin=None, customer=None, expect=0):
    """dokuctl args...; returns (stdout JSON or text, stderr); checks the exit status."""
    cmd = [DOKUCTL] + (["--customer", customer] if customer else []) + list(args)
    p = subprocess.run(cmd, input=stdin.encode() if stdin is not None else None,
                       stdin=None if stdin is not None else subprocess.DEVNULL,
                       capture_output=True, timeout=CALL_TIMEOUT)
    out, err = p.stdout.decode(), p.stderr.decode()
    if p.returncode != expect:
        FAILURES.append("%s: exit %d, expected %d\n%s%s" % (" ".join(args[:2]), p.returncode,
                                                             expect, out, err))
    try:
        return json.loads(out) if out.strip() else None, err
    except ValueError:
        return out, err


def check(cond, what):
    if not cond:
        FAILURES.append(what)


def fact(stderr, name):
    for line in stderr.splitlines():
        if line.strip().startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    return ""


def test_help():
    out, _ = run("--help")
    section = out.split("\ncommands:\n", 1)[1].split("\n\n", 1)[0]
    commands = [l.split()[0] for l in section.splitlines() if l.strip()]
    check(len(commands) == 22, "--help lists %d commands: %r" % (len(commands), commands))
    for c in ("get-balance", "open-customer-session", "get-top-up-status", "health"):
        check(c in commands, "--help lacks %s" % c)
    check("exit status" in out and "  3  " in out and "  4  " in out, "--help lacks exit codes")
    out, _ = run("transfer-to-bank", "--help")
    check("partnerReferenceNo" in out and "REQUIRED" in out, "command help lacks fields")
    lines = [l for l in out.splitlines() if l.strip().startswith("value")]
    check(lines and "REQUIRED" in lines[0], "amount.value not marked required")
    check("beneficiaryBankCode" in out and "referenceNo" in out, "nested fields missing")


def test_usage_errors():
    run(expect=2)
    run("no-such-command", expect=2)
    run("health", "{not json", expect=2)
    run("get-balance", '{"partnerReferenceNo": 1}', expect=2)   # strict: wrong kind
    run("get-balance", '{"bogus": "x"}', expect=2)             # strict: unknown key
    run("--timeout", "soon", "health", expect=2)
    run("health", "{}", "extra", expect=2)


def test_every_command():
    phone, ref = "081299887766", "cust-ctl"
    r, _ = run("create-account", json.dumps({
        "partnerReferenceNo": "ctl-create", "name": "Siti", "phoneNo": phone,
        "email": "siti@example.id", "redirectUrl": "https://m.example/pin"}))
    otp = [o for o in ctl("GET", "otps?phoneNo=" + phone)][-1]["otp"]
    run("verify-otp", "-", stdin=json.dumps({
        "originalPartnerReferenceNo": "ctl-create", "originalReferenceNo": r["referenceNo"],
        "otp": otp}))
    ctl("POST", "pin", {"phoneNo": phone, "pin": PIN})
    r, _ = run("bind-account", json.dumps({"partnerReferenceNo": "ctl-bind",
                                           "redirectUrl": "https://m.example/bound"}))
    link = r["linkId"]
    ctl("POST", "bindings/approve", {"linkId": link, "phoneNo": phone, "pin": PIN})
    r, _ = run("inquire-account", stdin=json.dumps({"partnerReferenceNo": "ctl-bind"}))
    account, auth = r["accountNo"], r["additionalInfo"]["authCode"]
    r, _ = run("open-customer-session", json.dumps({"authCode": auth}), customer=ref)
    check(r and r.get("accessTokenExpiryTime"), "open-customer-session: no expiry")
    r, _ = run("get-balance", '{"partnerReferenceNo":"ctl-bal"}', customer=ref)
    check(r["accountInfo"]["amount"]["value"] == "0.00", "balance not 0.00: %r" % r)
    amount = {"value": "50000.00", "currency": "IDR"}
    r, err = run("--verbose", "top-up", json.dumps({
        "partnerReferenceNo": "ctl-topup", "customerNumber": account, "amount": amount,
        "sessionId": "s1", "notes": "n"}), customer=ref)
    extid = fact(err, "externalId")
    check(extid and "OUTCOME_DONE" in err, "--verbose lacks the facts: %s" % err)
    r, _ = run("get-top-up-status", json.dumps({
        "originalPartnerReferenceNo": "ctl-topup", "originalExternalId": extid,
        "serviceCode": "38"}), customer=ref)
    check(r["latestTransactionStatus"] == "00", "top-up status %r" % r)
    r, _ = run("inquire-bank-account", json.dumps({
        "partnerReferenceNo": "ctl-binq", "customerNumber": account,
        "beneficiaryAccountNumber": "9876543211"}), customer=ref)
    run("transfer-to-bank", json.dumps({
        "partnerReferenceNo": "ctl-xfer", "customerNumber": account, "accountType": "SAVINGS",
        "beneficiaryAccountNumber": "9876543211",
        "beneficiaryBankCode": r["beneficiaryBankCode"],
        "amount": {"value": "1000.00", "currency": "IDR"}}), customer=ref)
    for p in ("ctl-buy-1", "ctl-buy-2"):
        run("purchase", json.dumps({"partnerReferenceNo": p, "chargeToken": "DOKU",
                                    "amount": {"value": "2000.00", "currency": "IDR"}}),
            customer=ref)
    ctl("POST", "purchases/approve", {"partnerReferenceNo": "ctl-buy-1", "pin": PIN})
    now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + 3600))
    yesterday = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() - 86400))
    r, _ = run("get-purchase-status", json.dumps({
        "partnerReferenceNo": "ctl-buy-1", "serviceCode": "54", "transactionDate": now}),
        customer=ref)
    check(r["latestTransactionStatus"] == "00", "purchase status %r" % r)
    run("refund-purchase", json.dumps({"originalPartnerReferenceNo": "ctl-buy-1",
                                       "reason": "r", "partnerRefundNo": "ctl-refund"}),
        customer=ref)
    run("cancel-purchase", json.dumps({"originalPartnerReferenceNo": "ctl-buy-2",
                                       "reason": "r"}), customer=ref)
    r, _ = run("list-transactions", json.dumps({
        "partnerReferenceNo": "ctl-list", "fromDateTime": yesterday, "toDateTime": now,
        "pageSize": "20", "pageNumber": "0"}), customer=ref)
    check(len(r.get("detailData", [])) >= 4, "history: %r" % r)
    r, _ = run("get-transaction", '{"partnerReferenceNo":"ctl-xfer"}', customer=ref)
    check(r["type"] == "SEND_MONEY", "transaction %r" % r)
    # the journal: one operation by partner reference, the customer's by ListOperations
    r, _ = run("get-operation", '{"partnerReferenceNo":"ctl-xfer"}')
    check(r["operation"]["method"] == "TransferToBank"
          and r["operation"]["state"] == "OPERATION_STATE_DONE", "get-operation: %r" % r)
    r, _ = run("list-operations", json.dumps({"customerRef": ref}))
    check(len(r.get("operations", [])) >= 5, "list-operations: %r" % r)
    r, _ = run("close-customer-session", customer=ref)
    check(r == {"closed": True}, "close-customer-session: %r" % r)
    run("unbind-account", json.dumps({"partnerReferenceNo": "ctl-unbind", "linkId": link,
                                      "merchantId": CLIENT_ID}))
    r, _ = run("health")
    check(r["version"] and r["profiles"], "health: %r" % r)
    return account


def test_errors(account):
    _, err = run("create-account", '{"partnerReferenceNo":"x"}', expect=1)
    check("INVALID_ARGUMENT" in err and "name" in err, "invalid argument: %s" % err)
    _, err = run("-p", "restricted", "get-balance", '{"partnerReferenceNo":"x"}',
                 customer="cust-ctl", expect=1)
    check("PERMISSION_DENIED" in err, "permission denied: %s" % err)
    # a session that is not open: refused, not done
    run("get-balance", '{"partnerReferenceNo":"x"}', customer="never-opened", expect=1)
    # DOKU answers 504 after doing it: "may have happened", exit 3
    ctl("POST", "faults", {"path": "/snap-adapter/b2b/v1.0/registration-account-creation",
                           "kind": "http504", "apply": True})
    _, err = run("create-account", json.dumps({
        "partnerReferenceNo": "ctl-504", "name": "Agus", "phoneNo": "081211112222",
        "email": "agus@example.id", "redirectUrl": "https://m.example/pin"}), expect=3)
    check("OUTCOME_UNKNOWN" in err and fact(err, "externalId"), "504: %s" % err)
    # a deadline the daemon cannot keep
    ctl("POST", "faults", {"path": "/snap-adapter/b2b/v1.0/registration-account-inquiry",
                           "kind": "delay", "delayMs": 5000})
    p = subprocess.run([DOKUCTL, "--timeout", "300", "inquire-account",
                        '{"partnerReferenceNo":"ctl-bind"}'], capture_output=True,
                       stdin=subprocess.DEVNULL, timeout=CALL_TIMEOUT)
    check(p.returncode in (1, 3) and b"DEADLINE_EXCEEDED" in p.stderr,
          "deadline: exit %d %s" % (p.returncode, p.stderr))
    ctl("DELETE", "faults")
    # no daemon there
    _, err = run("--socket", "/nonexistent/bridge.sock", "health", expect=4)
    check("UNAVAILABLE" in err, "unreachable: %s" % err)


def main():
    test_help()
    test_usage_errors()
    account = test_every_command()
    test_errors(account)
    for f in FAILURES:
        print("FAIL: " + f, file=sys.stderr)
    print("dokuctl: %d failures" % len(FAILURES))
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
