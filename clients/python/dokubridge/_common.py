"""What the synchronous and the asyncio client share: building Calls, reading
Replies into Results, and the per-RPC methods generated from the descriptor."""
import math
import re

from ._proto_api import (CUSTOMER_REF_RE, PROFILE_MAX, Code, Outcome, bridge, method)
from .errors import make_error

METHOD_PATH_RE = re.compile(r"/[!-.0-~]+/[!-.0-~]+\Z")  # printable, no spaces, two parts
CALL_OPTIONS = ("timeout", "profile", "customer_ref")


class Result:
    """The status of one call, the SNAP facts of its Reply, and its response.

    code: Code; status_message: str; local: True when made by this library;
    http_status, response_code, response_message, external_id,
    partner_reference_no; outcome: Outcome; response: the response message
    (always on OK; on errors when the Reply carried one), or the raw bytes for
    raw calls; call_id; method: the method's wire path.
    """

    __slots__ = ("code", "status_message", "local", "http_status", "response_code",
                 "response_message", "external_id", "partner_reference_no", "outcome",
                 "response", "call_id", "method")

    def __init__(self, code, status_message="", *, local=False, http_status=0, response_code="",
                 response_message="", external_id="", partner_reference_no="",
                 outcome=Outcome.OUTCOME_UNSPECIFIED, response=None, call_id=0, method=""):
        self.code = Code(code) if code in Code._value2member_map_ else code
        self.status_message = status_message
        self.local = local
        self.http_status = http_status
        self.response_code = response_code
        self.response_message = response_message
        self.external_id = external_id
        self.partner_reference_no = partner_reference_no
        self.outcome = Outcome(outcome) if outcome in Outcome._value2member_map_ else outcome
        self.response = response
        self.call_id = call_id
        self.method = method

    @property
    def ok(self):
        return self.code == Code.OK

    def error(self):
        """The DokuBridgeError of a failed call (None when OK)."""
        if self.ok:
            return None
        return make_error(self.code, self.status_message, local=self.local,
                          http_status=self.http_status, response_code=self.response_code,
                          response_message=self.response_message,
                          external_id=self.external_id,
                          partner_reference_no=self.partner_reference_no,
                          outcome=self.outcome, response=self.response,
                          call_id=self.call_id, method=self.method)

    def unwrap(self):
        """The response when OK; raise the typed error otherwise."""
        if not self.ok:
            raise self.error()
        return self.response

    def __repr__(self):
        return "<Result %s %s outcome=%s>" % (getattr(self.code, "name", self.code),
                                              self.method, getattr(self.outcome, "name",
                                                                   self.outcome))


def local_result(code, message, outcome, method_path="", call_id=0):
    return Result(code, message, local=True, outcome=outcome, method=method_path,
                  call_id=call_id)


class Prepared:
    """A call ready to go: its wire path, serialized request, options, and the
    class of its response (None for raw calls)."""

    __slots__ = ("path", "data", "timeout_ms", "profile", "customer_ref", "response_class")


def _timeout_ms(timeout):
    if timeout is None or timeout == 0:
        return 0
    if timeout < 0 or math.isnan(timeout):
        raise ValueError("timeout: must be a positive number of seconds")
    return max(1, min(int(math.ceil(timeout * 1000)), 0xFFFFFFFF))


def prepare(name, request, fields, timeout, profile, customer_ref, default_timeout,
            default_profile, raw=False):
    """Check and serialize a call; raises ValueError/TypeError for bad input."""
    p = Prepared()
    m = method(name)
    if raw:
        if m is None:
            if not isinstance(name, str) or not METHOD_PATH_RE.match(name) or len(name) > 128:
                raise ValueError("unknown method %r" % (name,))
            p.path = name
        else:
            p.path = m.path
        if not isinstance(request, (bytes, bytearray, memoryview)):
            raise TypeError("a raw call takes the serialized request as bytes")
        p.data = bytes(request)
        p.response_class = None
    else:
        if m is None:
            raise ValueError("unknown method %r" % (name,))
        p.path = m.path
        cls = m.request_class
        if request is None:
            request = cls(**fields)
        elif isinstance(request, dict):
            request = cls(**request, **fields)
        elif fields:
            raise TypeError("give either a request message or its fields, not both")
        if request.DESCRIPTOR.full_name != cls.DESCRIPTOR.full_name:
            raise TypeError("%s takes a %s, not a %s" % (m.name, cls.DESCRIPTOR.full_name,
                                                          request.DESCRIPTOR.full_name))
        p.data = request.SerializeToString()
        p.response_class = m.response_class
    p.timeout_ms = _timeout_ms(timeout if timeout is not None else default_timeout)
    p.profile = profile if profile is not None else (default_profile or "")
    if len(p.profile.encode()) > PROFILE_MAX:
        raise ValueError("profile: longer than %d bytes" % PROFILE_MAX)
    p.customer_ref = customer_ref or ""
    if customer_ref is not None and not CUSTOMER_REF_RE.match(customer_ref):
        raise ValueError("customer_ref: must match [A-Za-z0-9._-]{1,64}")
    return p


def call_bytes(call_id, p):
    return bridge.Call(id=call_id, method=p.path, message=p.data, timeout_ms=p.timeout_ms,
                       profile=p.profile, customer_ref=p.customer_ref).SerializeToString()


def cancel_bytes(call_id):
    return bridge.Call(id=call_id, cancel=True).SerializeToString()


def result_from_reply(reply, p):
    """A Result from a Reply to the call p."""
    code = reply.code
    response = None
    status_message = reply.status_message
    if p.response_class is None:
        response = bytes(reply.message)
    elif reply.message or code == Code.OK:
        try:
            response = p.response_class.FromString(reply.message)
        except Exception:  # noqa: BLE001 - any decode error of the daemon's bytes
            if code == Code.OK:
                code = Code.INTERNAL
                status_message = "the daemon's response message does not parse"
    return Result(code, status_message, local=False, http_status=reply.http_status,
                  response_code=reply.response_code, response_message=reply.response_message,
                  external_id=reply.external_id, partner_reference_no=reply.partner_reference_no,
                  outcome=reply.outcome, response=response, call_id=reply.id, method=p.path)


def method_doc(m):
    return ("%s(request=None, /, *, timeout=None, profile=None, customer_ref=None, **fields)\n\n"
            "RPC %s: takes a wallet.%s (or its fields as keywords), returns a wallet.%s.\n"
            "Raises a DokuBridgeError subclass when the status is not OK."
            % (m.python_name, m.path, m.request_class.DESCRIPTOR.name,
               m.response_class.DESCRIPTOR.name))


def add_methods(cls, make):
    """Give cls one method per RPC, make(method) building each."""
    from ._proto_api import METHODS
    for m in METHODS:
        f = make(m)
        f.__name__ = m.python_name
        f.__qualname__ = "%s.%s" % (cls.__name__, m.python_name)
        f.__doc__ = method_doc(m)
        setattr(cls, m.python_name, f)
    return cls


__all__ = ["Result", "prepare", "call_bytes", "cancel_bytes", "result_from_reply",
           "local_result", "add_methods"]
