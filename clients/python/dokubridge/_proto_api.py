"""The contract's messages and the method table, from the service descriptor.

Nothing here is written per RPC: every method of doku.wallet.v1.Wallet is read
from the generated descriptor, with its request and response classes.
"""
import enum
import os
import re
import struct

try:
    from ._proto.doku.bridge.v1 import bridge_pb2 as bridge
    from ._proto.doku.wallet.v1 import wallet_pb2 as wallet
except ImportError as e:  # pragma: no cover - a broken install
    raise ImportError("dokubridge: the generated protobuf modules are missing; "
                      "install the package with pip (setup.py runs protoc)") from e

DEFAULT_SOCKET = "/run/doku-bridge/bridge.sock"
SOCKET_ENV = "DOKU_BRIDGE_SOCKET"
FRAME_HEADER = 5                    # 1 flags byte (0) + 4-byte big-endian length
FRAME_MAX_DEFAULT = 4 * 1024 * 1024  # cap on a received frame
# The local deadline backs up the daemon's by this much, so that the daemon's
# own DEADLINE_EXCEEDED, which carries the SNAP facts, arrives first.
DEADLINE_GRACE = 0.2
CUSTOMER_REF_RE = re.compile(r"[A-Za-z0-9._-]{1,64}\Z")
PROFILE_MAX = 64

SERVICE = wallet.DESCRIPTOR.services_by_name["Wallet"]

# gRPC status codes and outcomes, from the contract's enums.
Code = enum.IntEnum("Code", [(v.name, v.number) for v in bridge.Code.DESCRIPTOR.values])
Outcome = enum.IntEnum("Outcome", [(v.name, v.number) for v in bridge.Outcome.DESCRIPTOR.values])


def socket_path(path=None):
    """The socket to use: path, else $DOKU_BRIDGE_SOCKET, else the default."""
    return path or os.environ.get(SOCKET_ENV) or DEFAULT_SOCKET


def snake(name):
    """GetTopUpStatus -> get_top_up_status."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def kebab(name):
    """GetTopUpStatus -> get-top-up-status."""
    return snake(name).replace("_", "-")


class Method:
    """One RPC of the Wallet service."""

    __slots__ = ("name", "path", "python_name", "request_class", "response_class")

    def __init__(self, md):
        self.name = md.name
        self.path = "/%s/%s" % (SERVICE.full_name, md.name)
        self.python_name = snake(md.name)
        self.request_class = getattr(wallet, md.input_type.name)
        self.response_class = getattr(wallet, md.output_type.name)

    def __repr__(self):
        return "<Method %s>" % self.path


METHODS = tuple(Method(md) for md in SERVICE.methods)
_BY_NAME = {}
for _m in METHODS:
    for _key in (_m.name, _m.path, _m.python_name, kebab(_m.name)):
        _BY_NAME[_key] = _m


def method(name):
    """The Method named "GetBalance", "/doku.wallet.v1.Wallet/GetBalance",
    "get_balance" or "get-balance"; None when there is none."""
    return _BY_NAME.get(name)


def frame(message_bytes):
    """A frame: flags 0, big-endian length, the bytes."""
    return struct.pack(">BI", 0, len(message_bytes)) + message_bytes


def frame_length(header, max_frame):
    """The length a 5-byte header announces; raises ValueError for a flags byte
    other than 0, OverflowError for a length over max_frame."""
    flags, n = struct.unpack(">BI", header)
    if flags != 0:
        raise ValueError("protocol error: the daemon sent a frame with flags byte %d" % flags)
    if n > max_frame:
        raise OverflowError("the daemon sent a frame of %d bytes, over the %d-byte cap"
                            % (n, max_frame))
    return n
