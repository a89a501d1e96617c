"""dokubridge: the Python client of doku-bridged, the DOKU SNAP credential holder.

    import dokubridge
    with dokubridge.Client() as c:                      # $DOKU_BRIDGE_SOCKET or the default
        r = c.get_balance(partner_reference_no="r1", customer_ref="cust-1", timeout=10)
        print(r.account_info.amount.value)

One method per RPC of doku.wallet.v1.Wallet (get_balance, top_up, ...), made
from the service descriptor; the messages are dokubridge.wallet.<Name>.
dokubridge.aio.AsyncClient is the asyncio client. Failures raise
DokuBridgeError subclasses (InvalidArgument, DeadlineExceeded, Unavailable,
...), which carry the SNAP facts; OutcomeUnknown marks "it may have happened".
"""
from ._proto_api import (DEFAULT_SOCKET, FRAME_MAX_DEFAULT, METHODS, SOCKET_ENV, Code, Method,
                         Outcome, bridge, kebab, method, wallet)
from ._common import Result
from .errors import *  # noqa: F401,F403 - the typed errors
from .errors import DokuBridgeError, OutcomeUnknown, error_class
from .client import Client
from . import aio
from .aio import AsyncClient

__version__ = "0.1.0"

__all__ = ["Client", "AsyncClient", "aio", "Result", "Code", "Outcome", "Method", "METHODS",
           "method", "kebab", "wallet", "bridge", "DEFAULT_SOCKET", "SOCKET_ENV",
           "FRAME_MAX_DEFAULT", "DokuBridgeError", "OutcomeUnknown", "error_class"] + [
    n for n in dir() if n[:1].isupper() and isinstance(globals()[n], type)
    and issubclass(globals()[n], Exception)]
