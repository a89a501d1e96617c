#!/usr/bin/env python3
"""Write the seed corpora and dictionaries of the fuzz targets (tests/fuzz).

    python3 tests/fuzz/mkcorpus.py [REFERENCE]

REFERENCE is DOKU's Wallet SNAP page (default: ../shared/reference/
doku-wallet-snap-api.txt next to the repository); its sample request and
response bodies are the JSON seeds. Seeds are the files named seed-*; the
regression inputs (regress-*) are never touched. Only the standard library.
"""
import json
import os
import re
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(HERE, "corpus")
WALLET_PROTO = os.path.join(ROOT, "proto/doku/wallet/v1/wallet.proto")
DEFAULT_REFERENCE = os.path.join(ROOT, "../shared/reference/doku-wallet-snap-api.txt")

# bridged/snap/snap_endpoint.c, in table order (the first byte of fuzz_json_response)
ENDPOINTS = [
    ("AccessTokenB2B", "/authorization/v1/access-token/b2b"),
    ("AccessTokenB2B2C", "/authorization/v1/access-token/b2b2c"),
    ("CreateAccount", "/snap-adapter/b2b/v1.0/registration-account-creation"),
    ("VerifyOtp", "/snap-adapter/b2b/v1.0/otp-verification"),
    ("BindAccount", "/snap-adapter/b2b/v1.0/registration-account-binding"),
    ("InquireAccount", "/snap-adapter/b2b/v1.0/registration-account-inquiry"),
    ("UnbindAccount", "/snap-adapter/b2b/v1.0/registration-account-unbinding"),
    ("GetBalance", "/snap-adapter/b2b2c/v1.0/balance-inquiry"),
    ("InquireBankAccount", "/snap-adapter/b2b2c/v1.0/emoney/bank-account-inquiry"),
    ("TransferToBank", "/snap-adapter/b2b2c/v1.0/emoney/transfer-bank"),
    ("TopUp", "/snap-adapter/b2b2c/v1.0/emoney/topup"),
    ("GetTopUpStatus", "/snap-adapter/b2b2c/v1.0/emoney/topup-status"),
    ("Purchase", "/snap-adapter/b2b2c/v1.0/debit/payment-host-to-host"),
    ("GetPurchaseStatus", "/snap-adapter/b2b2c/v1.0/debit/status"),
    ("CancelPurchase", "/snap-adapter/b2b2c/v1.0/debit/cancel"),
    ("RefundPurchase", "/snap-adapter/b2b2c/v1.0/debit/refund"),
    ("ListTransactions", "/snap-adapter/b2b2c/v1.0/transaction-history-list"),
    ("GetTransaction", "/snap-adapter/b2b2c/v1.0/transaction-history-detail"),
]
ALL_TYPES_ROW = len(ENDPOINTS)  # fuzz_json_response: doku.test.v1.AllTypes


def camel(name):
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def parse_proto(path):
    """messages {name: [(field, type, number, repeated)]} and the service's methods."""
    text = re.sub(r"//[^\n]*", "", open(path).read())
    messages, methods = {}, []
    for m in re.finditer(r"message (\w+) \{(.*?)\n\}", text, re.S):
        fields = []
        for f in re.finditer(r"(repeated\s+)?([\w.]+)\s+(\w+)\s*=\s*(\d+);", m.group(2)):
            fields.append((f.group(3), f.group(2), int(f.group(4)), bool(f.group(1))))
        messages[m.group(1)] = fields
    for m in re.finditer(r"rpc (\w+)\((\w+)\) returns \((\w+)\)", text):
        methods.append(m.groups())
    return messages, methods


def reference_samples(path):
    """{endpoint path: (request text, response text)} from the reference page."""
    lines = open(path, encoding="utf-8").read().split("\n")
    samples = {}

    def block(i):  # the JSON object starting at the first "{" line from i
        while lines[i] != "{":
            i += 1
        j = i
        while lines[j] != "}":
            j += 1
        return "\n".join(lines[i:j + 1]), j + 1

    for i, line in enumerate(lines):
        m = re.match(r"POST (/\S+) HTTP/1\.1$", line)
        if m:
            req, k = block(i)
            resp, _ = block(k)
            samples[m.group(1)] = (req, resp)
    return samples


def compact(text):
    try:
        return json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)
    except ValueError:
        return text  # keep DOKU's sample as it is: a seed need not be valid


# ---- protobuf, by hand (the wire format of the fields wallet.proto uses) ----------

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number, wire, payload):
    key = varint(number << 3 | wire)
    if wire == 0:
        return key + varint(payload)
    return key + varint(len(payload)) + payload


def encode(messages, name, obj):
    """obj (JSON names) as message name; unknown keys are dropped."""
    out = b""
    for fname, ftype, number, repeated in messages[name]:
        value = obj.get(camel(fname), obj.get(fname))
        if value is None:
            continue
        for v in value if repeated and isinstance(value, list) else [value]:
            if ftype in messages:
                if isinstance(v, dict):
                    out += field(number, 2, encode(messages, ftype, v))
            elif ftype == "string":
                out += field(number, 2, str(v).encode())
            elif ftype == "bool":
                out += field(number, 0, 1 if v else 0)
            elif ftype in ("int32", "int64", "uint32", "uint64"):
                out += field(number, 0, int(v) & (2**64 - 1))
    return out


def call_frame(call_id, method, message=b"", profile="", customer_ref="", timeout_ms=0,
               cancel=False):
    body = field(1, 0, call_id) if call_id else b""
    body += field(2, 2, method.encode()) if method else b""
    body += field(3, 2, message) if message else b""
    body += field(4, 0, timeout_ms) if timeout_ms else b""
    body += field(5, 2, profile.encode()) if profile else b""
    body += field(6, 2, customer_ref.encode()) if customer_ref else b""
    body += field(7, 0, 1) if cancel else b""
    return b"\x00" + struct.pack(">I", len(body)) + body


# ---- the corpora -------------------------------------------------------------------

def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def clear_seeds():
    for target in os.listdir(CORPUS) if os.path.isdir(CORPUS) else []:
        for name in os.listdir(os.path.join(CORPUS, target)):
            if name.startswith("seed-"):
                os.remove(os.path.join(CORPUS, target, name))


# DOKU's looseness (bridged/snap/snap_json.h, tolerant decoding): numbers for
# strings, capitalised keys, a stringified additionalInfo, a list for a message,
# nulls, unknown keys.
LOOSE_RESPONSES = {
    "GetBalance": '{"responseCode":"2001100","responseMessage":"Successful","ReferenceNo":1234,'
                  '"accountInfo":[{"balanceType":"Cash","amount":{"value":1095086.98,"currency":"IDR"}}],'
                  '"unknown":{"deep":[1,2,3]},"name":null}',
    "InquireAccount": '{"responseCode":"2000800","additionalInfo":"{\\"linkId\\":\\"L1\\",\\"authCode\\":\\"a\\"}",'
                      '"accountNo":17139626343}',
    "ListTransactions": '{"responseCode":"2001200","detailData":{"amount":{"value":"1.00"}}}',
}

# Requests the simulator accepts in the session the harness opens (FIX_VARS;
# its top-up went out with X-EXTERNAL-ID 90001005).
SNAPSIM_BODIES = {
    "AccessTokenB2B": '{"grantType":"client_credentials"}',
    "AccessTokenB2B2C": '{"grantType":"refresh_token","refreshToken":"@REFRESH@"}',
    "CreateAccount": '{"partnerReferenceNo":"fz-reg-2","name":"Budi","phoneNo":"081298765432",'
                     '"email":"budi@example.com","redirectUrl":"https://merchant.example/pin"}',
    "VerifyOtp": '{"originalPartnerReferenceNo":"fz-reg","originalReferenceNo":"x","otp":"123456",'
                 '"additionalInfo":{"deviceId":"d","channel":"mobile"}}',
    "BindAccount": '{"partnerReferenceNo":"fz-bind-2","redirectUrl":"https://merchant.example/bound"}',
    "InquireAccount": '{"partnerReferenceNo":"fz-bind","additionalInfo":{"accountId":"@ACCOUNT@"}}',
    "UnbindAccount": '{"partnerReferenceNo":"fz-unbind","linkId":"@LINK@",'
                     '"merchantId":"BRN-FUZZ-0000000000001","additionalInfo":{"channel":"mobilephone",'
                     '"phoneNo":"@PHONE@"}}',
    "GetBalance": '{"partnerReferenceNo":"fz-balance"}',
    "InquireBankAccount": '{"partnerReferenceNo":"fz-inq","customerNumber":"@ACCOUNT@","amount":'
                          '{"value":"25000.00","currency":"IDR"},"beneficiaryAccountNumber":"8880001234",'
                          '"additionalInfo":{"bankCode":"014"}}',
    "TransferToBank": '{"partnerReferenceNo":"fz-transfer","customerNumber":"@ACCOUNT@",'
                      '"accountType":"SAVINGS","beneficiaryAccountNumber":"8880001234",'
                      '"beneficiaryBankCode":"014","amount":{"value":"25000.00","currency":"IDR"}}',
    "TopUp": '{"partnerReferenceNo":"fz-topup-2","customerNumber":"@ACCOUNT@","amount":'
             '{"value":"100.00","currency":"IDR"},"sessionId":"s","notes":"n",'
             '"additionalInfo":{"deviceId":"d","channel":"web"}}',
    "GetTopUpStatus": '{"originalPartnerReferenceNo":"fz-topup","originalExternalId":"90001005",'
                      '"serviceCode":"38"}',
    "Purchase": '{"partnerReferenceNo":"fz-buy","chargeToken":"DOKU","amount":{"value":"5000.00",'
                '"currency":"IDR"},"urlParam":{"url":"https://m.example/paid","type":"PAY_RETURN",'
                '"isDeepLink":"N"},"additionalInfo":{"basket":[{"name":"Kopi","price":"5000.00",'
                '"quantity":"1"}]}}',
    "GetPurchaseStatus": '{"partnerReferenceNo":"fz-buy","serviceCode":"54","transactionDate":"@NOW@"}',
    "CancelPurchase": '{"originalPartnerReferenceNo":"fz-buy","reason":"changed my mind"}',
    "RefundPurchase": '{"originalPartnerReferenceNo":"fz-buy","reason":"returned",'
                      '"partnerRefundNo":"fz-refund","refundAmount":{"value":"1000.00","currency":"IDR"}}',
    "ListTransactions": '{"partnerReferenceNo":"fz-hist","fromDateTime":"@HOURAGO@",'
                        '"toDateTime":"@NOW@","pageSize":"3","pageNumber":"0"}',
    "GetTransaction": '{"partnerReferenceNo":"fz-topup"}',
}

ALL_TYPES = ('{"s":"x\\u00e9\\n","b":"AAEC/w==","flag":true,"i32":-5,"si32":"-6","sf32":7,'
             '"u32":"8","f32":9,"i64":"-9007199254740993","si64":"1","sf64":-2,'
             '"u64":"18446744073709551615","f64":"3","fl":1.5,"db":"NaN","color":"BLUE",'
             '"inner":{"name":"n","n":1},"rS":["a","b"],"rB":["AA"],"rFlag":[true],'
             '"rI32":[1,-1],"rFl":[0.1,"Infinity"],"rDb":[1e300],"rColor":["RED",2,-3],'
             '"rInner":[{"name":"m"}],"cInner":{"n":2}}')


# ---- HTTP/2, by hand (RFC 9113 frames, RFC 7541 literal fields) -----------------------

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def h2_frame(ftype, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", stream) + payload


def hpack_literal(name, value):
    """A literal field without indexing, new name, no Huffman (lengths < 127)."""
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


def h2_request(stream, path, message, extra=(), end=True, prefix_flags=0):
    fields = [(b":method", b"POST"), (b":scheme", b"http"), (b":authority", b"localhost"),
              (b":path", path.encode()), (b"content-type", b"application/grpc"),
              (b"te", b"trailers")] + list(extra)
    block = b"".join(hpack_literal(n, v) for n, v in fields)
    body = bytes([prefix_flags]) + struct.pack(">I", len(message)) + message
    return (h2_frame(1, 0x4, stream, block) +                      # HEADERS, END_HEADERS
            h2_frame(0, 0x1 if end else 0, stream, body))          # DATA


def h2_seeds(messages):
    """fuzz_h2: byte 0 (bit 0: preface prepended; bits 1-3: chunk size), then frames."""
    settings = h2_frame(4, 0, 0, b"")
    ack = h2_frame(4, 1, 0, b"")
    health = field(1, 2, b"doku.wallet.v1.Wallet")
    balance = encode(messages, "GetBalanceRequest", {"partnerReferenceNo": "fz-balance"})
    write("fuzz_h2", "check", bytes([1 | 7 << 1]) + settings + ack +
          h2_request(1, "/grpc.health.v1.Health/Check", health))
    write("fuzz_h2", "check-preface", bytes([7 << 1]) + H2_PREFACE + settings +
          h2_request(1, "/grpc.health.v1.Health/Check", b""))
    write("fuzz_h2", "streams", bytes([1 | 3 << 1]) + settings + b"".join(
        h2_request(i, "/doku.wallet.v1.Wallet/GetBalance", balance,
                   [(b"x-doku-customer-ref", b"c1"), (b"grpc-timeout", b"100m")])
        for i in (1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23)))
    write("fuzz_h2", "split", bytes([1 | 0 << 1]) + settings +
          h2_request(1, "/doku.wallet.v1.Wallet/Health", b"", end=False) +
          h2_frame(0, 1, 1, b"") + h2_frame(3, 0, 1, struct.pack(">I", 8)))
    write("fuzz_h2", "controls", bytes([1 | 5 << 1]) + settings +
          h2_frame(6, 0, 0, b"12345678") +                                   # PING
          h2_frame(8, 0, 0, struct.pack(">I", 1 << 20)) +                    # WINDOW_UPDATE
          h2_frame(4, 0, 0, struct.pack(">HI", 4, 1 << 16)) +                # SETTINGS
          h2_request(1, "/grpc.health.v1.Health/Check", health, end=False, prefix_flags=1) +
          h2_frame(3, 0, 1, struct.pack(">I", 8)) +                          # RST_STREAM
          h2_frame(7, 0, 0, struct.pack(">II", 0, 0)))                       # GOAWAY


def reflect_seeds():
    """fuzz_grpc_reflect: one ServerReflectionRequest of each kind."""
    host = field(1, 2, b"localhost")
    write("fuzz_grpc_reflect", "list", host + field(7, 2, b"*"))
    write("fuzz_grpc_reflect", "file", host + field(3, 2, b"doku/wallet/v1/wallet.proto"))
    write("fuzz_grpc_reflect", "symbol", field(4, 2, b"doku.wallet.v1.Wallet.GetBalance"))
    write("fuzz_grpc_reflect", "symbol-enum", field(4, 2, b"grpc.health.v1.HealthCheckResponse.SERVING"))
    write("fuzz_grpc_reflect", "extension",
          field(5, 2, field(1, 2, b"doku.wallet.v1.Amount") + bytes([0x10, 0x64])))
    write("fuzz_grpc_reflect", "extension-numbers", field(6, 2, b"doku.bridge.v1.Call"))
    write("fuzz_grpc_reflect", "none", host)


def main():
    reference = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_REFERENCE
    messages, methods = parse_proto(WALLET_PROTO)
    samples = reference_samples(reference)
    requests = {}
    clear_seeds()

    # fuzz_json_response: row byte + a response (and the request) of each endpoint
    for row, (name, path) in enumerate(ENDPOINTS):
        req, resp = samples[path]
        requests[name] = compact(req)
        write("fuzz_json_response", "%02d-%s-response" % (row, name), bytes([row]) + compact(resp).encode())
        write("fuzz_json_response", "%02d-%s-request" % (row, name), bytes([row]) + requests[name].encode())
        if name in LOOSE_RESPONSES:
            write("fuzz_json_response", "%02d-%s-loose" % (row, name),
                  bytes([row | 0x60]) + LOOSE_RESPONSES[name].encode())
    write("fuzz_json_response", "%02d-AllTypes" % ALL_TYPES_ROW, bytes([ALL_TYPES_ROW]) + ALL_TYPES.encode())

    # fuzz_json_strict: method byte + the request of each Wallet method
    extra = {"OpenCustomerSession": '{"authCode":"cfb5de1a-6a40-40e0-8549-0634bcaed8ed"}',
             "GetOperation": '{"partnerReferenceNo":"INV-1","method":"Purchase"}',
             "ListOperations": '{"customerRef":"cust-1","state":"OPERATION_STATE_DONE","pageSize":10}'}
    for rpc, _, _ in methods:  # the daemon-local methods without a SNAP sample
        requests.setdefault(rpc, extra.get(rpc, "{}"))
    for i, (rpc, _, _) in enumerate(methods):
        write("fuzz_json_strict", "%02d-%s" % (i, rpc), bytes([i]) + requests[rpc].encode())
    write("fuzz_json_strict", "07-TransferToBank-unknown-key", bytes([7]) + b'{"amount":{"value":"1.00","cents":1}}')

    # fuzz_frame_envelope: client streams of Call frames
    method_input = {rpc: inp for rpc, inp, _ in methods}
    full = "/doku.wallet.v1.Wallet/"
    stream = b""
    for i, (rpc, _, _) in enumerate(methods):
        obj = json.loads(requests[rpc])
        msg = encode(messages, method_input[rpc], obj)
        frame = call_frame(i + 1, full + rpc, msg, "default", "cust-1", 5000)
        write("fuzz_frame_envelope", "%02d-%s" % (i, rpc), frame)
        stream += frame
    write("fuzz_frame_envelope", "stream-every-method", stream)
    write("fuzz_frame_envelope", "cancel", call_frame(1, full + "GetBalance", cancel=True))
    write("fuzz_frame_envelope", "unknown-method", call_frame(9, "/doku.wallet.v1.Wallet/Nope"))
    write("fuzz_frame_envelope", "empty-frame", b"\x00\x00\x00\x00\x00")
    write("fuzz_frame_envelope", "bad-customer-ref", call_frame(3, full + "GetBalance", b"", "", "bad ref!"))

    # fuzz_config
    write("fuzz_config", "design", open(os.path.join(ROOT, "packaging/doku-bridged.conf")).read()
          .replace("; client_id = ", "client_id = "))
    write("fuzz_config", "full",
          "[bridge]\nsocket = /run/doku-bridge/bridge.sock\nstate_dir = /var/lib/doku-bridge\n"
          "socket_group = 0\nlog_level = debug\nmax_frame_bytes = 1048576\nmax_connections = 16\n"
          "max_calls_per_connection = 8\ndefault_timeout_ms = 1000\nmax_timeout_ms = 2000\n"
          "idle_timeout_ms = 10\nio_timeout_ms = 10\ndrain_timeout_ms = 0\n"
          "max_customer_sessions = 5\nupstream_connections = 2\nstate_key_file = state.key\n"
          "journal = on\nmetrics_listen = [::1]:9464\n\n"
          "[profile.default]\nbase_url = https://api-sandbox.doku.com/\n"
          "client_id = BRN-0221-1693209567392\nchannel_id = H2H\n"
          "client_secret_file = /etc/doku-bridge/client-secret\nprivate_key_file = key.pem\n"
          "ca_file =\n\n[profile.second]\nbase_url = https://127.0.0.1:8443\nclient_id = BRN-2\n"
          "client_secret_file = s2\nprivate_key_file = k2\n\n"
          "[client.app]\nuids = 1000, root\ngids = 27\nmethods = GetBalance TopUp Health\n"
          "profiles = default\n\n[client.ops]\nuids = 0\nmethods = *\nprofiles = *\n")
    write("fuzz_config", "fleet",
          "[bridge]\nsocket = /run/doku-bridge/bridge.sock\nstate_dir = /var/lib/doku-bridge\n"
          "state_backend = postgres\nstate_postgres = host=db.internal dbname=doku user=doku "
          "sslmode=verify-full\nstate_postgres_password_file = /run/secrets/db-password\n"
          "state_key_file = /run/secrets/state.key\njournal_retention_days = 30\n\n"
          "[profile.default]\nbase_url = https://api-sandbox.doku.com\nclient_id = BRN-1\n"
          "client_secret_file = s\nprivate_key_file = k\n\n[client.app]\nuids = 1000\n"
          "methods = *\nprofiles = *\n")
    write("fuzz_config", "errors",
          "key = outside\n[bridge\n[nope]\n[profile.bad name]\n[profile.p]\nbase_url = http://x\n"
          "base_url = https://dup\n[client.c]\nuids = nobody-here\nmethods = Nope\nprofiles = p, q\n"
          "[bridge]\nmax_frame_bytes = 99999999999\nsocket = relative\n = x\n")

    # fuzz_snapsim_request: endpoint byte, fix byte (0xff: all), headers, body
    session = []
    for row, (name, _) in enumerate(ENDPOINTS):
        req = bytes([row, 0xFF]) + b"\n" + SNAPSIM_BODIES[name].encode()
        write("fuzz_snapsim_request", "%02d-%s" % (row, name), req)
        if name in ("Purchase", "GetPurchaseStatus", "RefundPurchase", "CancelPurchase"):
            session.append(req)
    session[2:] = session[3], session[2]  # refund, then cancel
    write("fuzz_snapsim_request", "session-purchase", b"\n===\n".join(session))
    write("fuzz_snapsim_request", "session-unbind",
          bytes([6, 0xFF]) + b"\n" + SNAPSIM_BODIES["UnbindAccount"].encode() + b"\n===\n" +
          bytes([3, 0xFF]) + b'\n{"originalPartnerReferenceNo":"fz-unbind","originalReferenceNo":"x","otp":"000000"}')
    write("fuzz_snapsim_request", "explicit-headers",
          bytes([7, 0x40]) + b"Content-Type: application/json\nX-TIMESTAMP: 2024-01-01T10:00:00+07:00\n"
          b"X-PARTNER-ID: BRN-FUZZ-0000000000001\nX-EXTERNAL-ID: 123\nAuthorization: Bearer x\n"
          b"Authorization-Customer: Bearer y\n\n" + requests["GetBalance"].encode())
    write("fuzz_snapsim_request", "fault-revoke-b2b", bytes([7 | 5 << 5, 0xFF]) + b"\n" + requests["GetBalance"].encode())

    h2_seeds(messages)
    reflect_seeds()

    # dictionaries: every JSON name of wallet.proto, and the targets' own words
    names = sorted({camel(f[0]) for fields in messages.values() for f in fields})
    json_words = ['"%s"' % n for n in names] + ['"{"', '"}"', '"["', '"]"', '":"', '","', '"null"',
                                                '"true"', '"false"', '"\\\\u0000"', '"NaN"',
                                                '"Infinity"', '"1e308"', '"IDR"', '"10000.00"']
    for target in ("fuzz_json_response", "fuzz_json_strict"):
        with open(os.path.join(HERE, target + ".dict"), "w") as f:
            f.write("# generated by mkcorpus.py\n")
            f.write("".join('kw%d="%s"\n' % (i, w.replace('"', '\\"')) for i, w in enumerate(json_words)))
    words = (["Content-Type", "X-TIMESTAMP", "X-SIGNATURE", "X-CLIENT-KEY", "X-PARTNER-ID",
              "X-EXTERNAL-ID", "Authorization", "Authorization-Customer", "Bearer ", "application/json",
              "\\x0a===\\x0a", "@ACCOUNT@", "@LINK@", "@PHONE@", "@REFRESH@", "@NOW@", "@HOURAGO@",
              "2024-01-01T10:00:00+07:00"] + names)
    with open(os.path.join(HERE, "fuzz_snapsim_request.dict"), "w") as f:
        f.write("# generated by mkcorpus.py\n")
        f.write("".join('kw%d="%s"\n' % (i, w) for i, w in enumerate(words)))
    conf = ["[bridge]", "[profile.", "[client.", "socket", "state_dir", "socket_group", "log_level",
            "max_frame_bytes", "max_connections", "max_calls_per_connection", "default_timeout_ms",
            "max_timeout_ms", "idle_timeout_ms", "io_timeout_ms", "drain_timeout_ms",
            "max_customer_sessions", "upstream_connections", "base_url", "client_id", "channel_id",
            "client_secret_file", "private_key_file", "ca_file", "uids", "gids", "methods",
            "profiles", "https://", " = ", "\\x0a", "state_key_file", "journal", "on", "off",
            "metrics_listen", "127.0.0.1:9464", "[::1]:", "journal_retention_days",
            "state_backend", "sqlite", "postgres", "state_postgres",
            "state_postgres_password_file", "host=db.internal dbname=doku user=doku sslmode=verify-full"
            ] + [m[0] for m in methods]
    with open(os.path.join(HERE, "fuzz_config.dict"), "w") as f:
        f.write("# generated by mkcorpus.py\n")
        f.write("".join('kw%d="%s"\n' % (i, w) for i, w in enumerate(conf)))
    with open(os.path.join(HERE, "fuzz_h2.dict"), "w") as f:
        f.write("# generated by mkcorpus.py\n")
        words = ["PRI * HTTP/2.0\\x0d\\x0a\\x0d\\x0aSM\\x0d\\x0a\\x0d\\x0a", ":method", "POST",
                 ":path", ":scheme", ":authority", "content-type", "application/grpc", "te",
                 "trailers", "grpc-timeout", "grpc-encoding", "identity", "x-doku-profile",
                 "x-doku-customer-ref", "/grpc.health.v1.Health/Check",
                 "/doku.wallet.v1.Wallet/Health", "\\x00\\x00\\x00\\x04\\x01\\x00\\x00\\x00\\x00"]
        f.write("".join('kw%d="%s"\n' % (i, w) for i, w in enumerate(words)))
    with open(os.path.join(HERE, "fuzz_frame_envelope.dict"), "w") as f:
        f.write("# generated by mkcorpus.py\n")
        f.write("".join('kw%d="%s%s"\n' % (i, full, m[0]) for i, m in enumerate(methods)))


if __name__ == "__main__":
    main()
