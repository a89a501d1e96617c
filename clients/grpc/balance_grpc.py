#!/usr/bin/python3
"""balance_grpc: a customer's DOKU wallet balance through doku-bridged with
stock gRPC (grpcio), no doku-bridge library: stubs from wallet.proto by
    protoc -I proto --python_out=. --grpc_python_out=. \
      --plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin doku/wallet/v1/wallet.proto

    balance_grpc.py CUSTOMER_REF PARTNER_REFERENCE_NO

The socket is $DOKU_BRIDGE_SOCKET, or /run/doku-bridge/bridge.sock. The
customer session CUSTOMER_REF must have been opened (OpenCustomerSession).
"""
import os
import sys

import grpc

from doku.wallet.v1 import wallet_pb2, wallet_pb2_grpc


def main(customer_ref, partner_ref):
    socket = os.environ.get("DOKU_BRIDGE_SOCKET", "/run/doku-bridge/bridge.sock")
    with grpc.insecure_channel("unix:" + socket) as channel:
        wallet = wallet_pb2_grpc.WalletStub(channel)
        try:
            r, call = wallet.GetBalance.with_call(
                wallet_pb2.GetBalanceRequest(partner_reference_no=partner_ref),
                metadata=[("x-doku-customer-ref", customer_ref)],  # and x-doku-profile
                timeout=10)                                          # grpc-timeout: the deadline
            facts = dict(call.trailing_metadata())
        except grpc.RpcError as e:
            facts = dict(e.trailing_metadata() or ())
            # x-doku-outcome: DONE, NOT_DONE, or UNKNOWN (it may have happened: ask
            # the status method with the same partner reference, never resend)
            print("balance: %s %s (responseCode %s, outcome %s)"
                  % (e.code().name, e.details(), facts.get("x-doku-response-code", "-"),
                     facts.get("x-doku-outcome", "-")), file=sys.stderr)
            return 3 if facts.get("x-doku-outcome") == "UNKNOWN" else 1
        print("%s: %s %s (X-EXTERNAL-ID %s, outcome %s)"
              % (r.name, r.account_info.amount.value, r.account_info.amount.currency,
                 facts["x-doku-external-id"], facts["x-doku-outcome"]))
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print("usage: balance_grpc.py CUSTOMER_REF PARTNER_REFERENCE_NO", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
