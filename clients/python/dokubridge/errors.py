"""Typed errors: one class per gRPC status code, each carrying the SNAP facts.

    try:
        client.top_up(req, customer_ref="c1")
    except dokubridge.OutcomeUnknown as e:    # it may have happened: ask get_top_up_status
        ...
    except dokubridge.InvalidArgument as e:   # e.status_message names the field
        ...
    except dokubridge.DokuBridgeError as e:   # anything else; e.code, e.response_code, ...
        ...

An error whose outcome is OUTCOME_UNKNOWN is an instance of both its code's
class and OutcomeUnknown.
"""
from ._proto_api import Code, Outcome


class DokuBridgeError(Exception):
    """A call that did not end OK.

    code: Code; status_message: str; local: True when made by this library
    (no Reply arrived); http_status, response_code, response_message,
    external_id, partner_reference_no: the SNAP facts of the Reply; outcome:
    Outcome; response: the response message when the Reply carried one, else
    None; call_id: the Call's id on its connection.
    """

    code = Code.UNKNOWN

    def __init__(self, code, status_message="", *, local=False, http_status=0,
                 response_code="", response_message="", external_id="",
                 partner_reference_no="", outcome=Outcome.OUTCOME_UNSPECIFIED,
                 response=None, call_id=0, method=""):
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
        super().__init__(str(self))

    @property
    def code_name(self):
        return getattr(self.code, "name", str(self.code))

    @property
    def outcome_unknown(self):
        return self.outcome == Outcome.OUTCOME_UNKNOWN

    def __str__(self):
        s = "%s%s%s" % (self.code_name, ": " if self.status_message else "", self.status_message)
        if self.response_code:
            s += " (responseCode %s%s%s)" % (self.response_code,
                                              " " if self.response_message else "",
                                              self.response_message)
        if self.outcome_unknown:
            s += " [outcome unknown: it may have happened]"
        return s

    def __reduce__(self):
        return (_rebuild, (self.code, self.status_message, self.__dict__))


class OutcomeUnknown(DokuBridgeError):
    """Marker: the operation may have happened at DOKU. Ask the matching status
    method; never resend a money-moving call under a new reference."""


def _rebuild(code, status_message, state):
    e = error_class(code, state.get("outcome"))(code, status_message)
    e.__dict__.update(state)
    return e


_CODE_CLASSES = {}
for _c in Code:
    if _c == Code.OK:
        continue
    _name = "".join(p.capitalize() for p in _c.name.split("_"))
    if _name == "Cancelled":
        _doc = "CANCELLED (not asyncio.CancelledError)"
    else:
        _doc = _c.name
    _CODE_CLASSES[_c] = type(_name, (DokuBridgeError,), {"__doc__": _doc, "code": _c,
                                                          "__module__": __name__})
    globals()[_name] = _CODE_CLASSES[_c]

_UNKNOWN_CLASSES = {}


def error_class(code, outcome=None):
    """The class for a code (and OutcomeUnknown as well when outcome says so)."""
    base = _CODE_CLASSES.get(code, DokuBridgeError)
    if outcome != Outcome.OUTCOME_UNKNOWN:
        return base
    cls = _UNKNOWN_CLASSES.get(base)
    if cls is None:
        cls = type(base.__name__ + "OutcomeUnknown", (base, OutcomeUnknown),
                   {"__doc__": base.__doc__ + ", outcome unknown", "__module__": __name__})
        _UNKNOWN_CLASSES[base] = cls
    return cls


def make_error(code, status_message="", **facts):
    return error_class(code, facts.get("outcome"))(code, status_message, **facts)


__all__ = ["DokuBridgeError", "OutcomeUnknown", "error_class", "make_error"] + [
    cls.__name__ for cls in _CODE_CLASSES.values()]
