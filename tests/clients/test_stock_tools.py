#!/usr/bin/python3
"""test_stock_tools.py buf|node: stock gRPC tools against the real daemon and
sandbox (run inside tests/tools/harness.py), with nothing of doku-bridge but
the socket.

  buf   `buf curl --unix-socket ... --protocol grpc --http2-prior-knowledge`
        with server reflection and no proto files: list the services, call
        grpc.health.v1.Health/Check and Wallet/Health, onboard a customer
        (every call through buf curl, JSON in and out), GetBalance with the
        SNAP facts in its trailers (-v), a refusal's status.
  node  docs/clients.md's Node example (clients/grpc/balance_grpc.js, npm's
        @grpc/grpc-js and @grpc/proto-loader) on a customer onboarded with
        buf curl; and its refusal for a session that does not exist.

Environment: harness.py's, and DOKU_SOURCE_DIR (the tree: tests/node's npm
tools, proto/, clients/grpc/)."""
import json
import os
import random
import subprocess
import sys
import urllib.request

SRC = os.environ["DOKU_SOURCE_DIR"]
SOCKET = os.environ["DOKU_BRIDGE_SOCKET"]
CONTROL = "http://%s/control/" % os.environ["DOKU_SNAPSIM_CONTROL"]
NODE_MODULES = os.path.join(SRC, "tests", "node", "node_modules")
BUF = os.path.join(NODE_MODULES, ".bin", "buf")
URL = "http://localhost"
PIN = "123456"
TIMEOUT = 60


def ctl(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(CONTROL + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
        return json.loads(r.read() or b"null")


def buf_curl(path, body=None, ref=None, verbose=False, ok=True, extra=()):
    """buf curl's (exit status, stdout, stderr) for one call of path (no proto files)."""
    cmd = [BUF, "curl", "--unix-socket", SOCKET, "--protocol", "grpc",
           "--http2-prior-knowledge", "--timeout", "30s"] + list(extra)
    if ref is not None:
        cmd += ["-H", "x-doku-customer-ref: " + ref]
    if verbose:
        cmd.append("-v")
    if body is not None:
        cmd += ["-d", json.dumps(body)]
    cmd.append(URL + path)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT)
    if ok and p.returncode != 0:
        raise AssertionError("%s: exit %d\n%s%s" % (" ".join(cmd), p.returncode, p.stdout, p.stderr))
    return p.returncode, p.stdout, p.stderr


def wallet(method, body, ref=None):
    return json.loads(buf_curl("/doku.wallet.v1.Wallet/" + method, body, ref)[1])


def trailers(stderr):
    """buf curl -v's response trailers and headers ("buf: < (#N) Name: value"), lower-cased names."""
    out = {}
    for line in stderr.splitlines():
        if line.startswith("buf: < ") and ": " in line[7:]:
            name, value = line.split(") ", 1)[1].split(": ", 1)
            out[name.lower()] = value
    return out


def new_customer(run, ref):
    """Create, verify, set the PIN, bind, approve, inquire, open session ref: the phone."""
    phone = "0812%08d" % random.randrange(10 ** 8)
    r = wallet("CreateAccount", {"partnerReferenceNo": "reg-" + run, "name": "Budi Santoso",
                                 "phoneNo": phone, "email": "budi.%s@example.com" % run,
                                 "redirectUrl": "https://shop.example/pin"})
    assert r["responseCode"] == "2000600", r
    otp = ctl("GET", "otps?phoneNo=" + phone)[0]["otp"]
    wallet("VerifyOtp", {"originalPartnerReferenceNo": "reg-" + run,
                         "originalReferenceNo": r["referenceNo"], "otp": otp})
    ctl("POST", "pin", {"phoneNo": phone, "pin": PIN})
    r = wallet("BindAccount", {"partnerReferenceNo": "bind-" + run,
                               "redirectUrl": "https://shop.example/bound",
                               "successParams": {"accountId": phone}})
    ctl("POST", "bindings/approve", {"linkId": r["linkId"], "pin": PIN})
    r = wallet("InquireAccount", {"partnerReferenceNo": "bind-" + run})
    r = wallet("OpenCustomerSession", {"authCode": r["additionalInfo"]["authCode"]}, ref=ref)
    assert r["responseCode"] == "2007400", r
    return phone


def test_buf():
    run = "buf%06d" % random.randrange(10 ** 6)
    # reflection: the services, and a method's description, with no proto files
    _, out, _ = buf_curl("", extra=["--list-services"])
    assert out.split() == ["doku.wallet.v1.Wallet", "grpc.health.v1.Health",
                           "grpc.reflection.v1.ServerReflection",
                           "grpc.reflection.v1alpha.ServerReflection"], out
    _, out, _ = buf_curl("", extra=["--list-methods"])
    assert "doku.wallet.v1.Wallet/GetBalance" in out.split(), out
    _, out, _ = buf_curl("/grpc.health.v1.Health/Check", {})
    assert json.loads(out) == {"status": "SERVING"}, out
    _, out, _ = buf_curl("/grpc.health.v1.Health/Check", {"service": "doku.wallet.v1.Wallet"})
    assert json.loads(out) == {"status": "SERVING"}, out
    _, out, err = buf_curl("/doku.wallet.v1.Wallet/Health", {}, verbose=True)
    assert json.loads(out)["version"], out
    assert trailers(err)["x-doku-outcome"] == "DONE", err
    # a customer, every call through buf curl, then the balance and its SNAP facts
    ref = "cust-" + run
    new_customer(run, ref)
    _, out, err = buf_curl("/doku.wallet.v1.Wallet/GetBalance",
                           {"partnerReferenceNo": "bal-" + run}, ref=ref, verbose=True)
    r = json.loads(out)
    assert r["responseCode"] == "2001100", r
    assert r["accountInfo"]["amount"]["currency"] == "IDR", r
    t = trailers(err)
    assert t["grpc-status"] == "0", err
    assert t["x-doku-outcome"] == "DONE", err
    assert t["x-doku-response-code"] == "2001100", err
    assert t["x-doku-partner-reference-no"] == "bal-" + run, err
    assert t["x-doku-external-id"], err
    # a refusal: its gRPC status, as JSON, and the facts
    rc, out, err = buf_curl("/doku.wallet.v1.Wallet/GetBalance", {"partnerReferenceNo": "bal-x"},
                            ref="nobody-" + run, verbose=True, ok=False)
    assert rc != 0
    assert '"code": "failed_precondition"' in err, err  # buf curl's error, as JSON
    assert trailers(err)["x-doku-outcome"] == "NOT_DONE", err
    print("buf curl: services listed, Health and GetBalance called through reflection")


def test_node():
    run = "node%06d" % random.randrange(10 ** 6)
    ref = "cust-" + run
    new_customer(run, ref)
    env = dict(os.environ, NODE_PATH=NODE_MODULES, DOKU_PROTO_DIR=os.path.join(SRC, "proto"))
    example = os.path.join(SRC, "clients", "grpc", "balance_grpc.js")
    p = subprocess.run(["node", example, ref, "bal-" + run], capture_output=True, text=True,
                       env=env, timeout=TIMEOUT)
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    assert p.stdout.startswith("Budi Santoso: ") and " IDR (X-EXTERNAL-ID " in p.stdout, p.stdout
    assert p.stdout.rstrip().endswith("outcome DONE)"), p.stdout
    p = subprocess.run(["node", example, "nobody-" + run, "bal-" + run], capture_output=True,
                       text=True, env=env, timeout=TIMEOUT)
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert "balance: FAILED_PRECONDITION" in p.stderr and "outcome NOT_DONE" in p.stderr, p.stderr
    print("node: docs/clients.md's example ran: " + p.stderr.strip())


if __name__ == "__main__":
    {"buf": test_buf, "node": test_node}[sys.argv[1]]()
