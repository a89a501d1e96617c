#!/usr/bin/python3
"""balance: ask doku-bridged for a customer's DOKU wallet balance, synchronously
and then with asyncio (many calls in flight on one connection).

    balance.py CUSTOMER_REF PARTNER_REFERENCE_NO

The socket is $DOKU_BRIDGE_SOCKET, or /run/doku-bridge/bridge.sock. The
customer session CUSTOMER_REF must have been opened before
(open_customer_session).
"""
import asyncio
import sys

import dokubridge


def main(customer_ref, partner_ref):
    with dokubridge.Client(timeout=10) as client:
        try:
            r = client.get_balance(partner_reference_no=partner_ref, customer_ref=customer_ref)
        except dokubridge.OutcomeUnknown as e:  # cannot happen for a balance; shown for the shape
            print("may have happened: ask the status method (%s)" % e, file=sys.stderr)
            return 3
        except dokubridge.DokuBridgeError as e:
            print("balance: %s (responseCode %s, outcome %s)"
                  % (e, e.response_code or "-", e.outcome.name), file=sys.stderr)
            return 1
        print("%s: %s %s" % (r.name, r.account_info.amount.value, r.account_info.amount.currency))

    async def three_at_once():
        async with dokubridge.AsyncClient(timeout=10) as client:
            return await asyncio.gather(*(
                client.get_balance(partner_reference_no="%s-%d" % (partner_ref, i),
                                   customer_ref=customer_ref)
                for i in range(3)))

    for r in asyncio.run(three_at_once()):
        print("asyncio: %s" % r.account_info.amount.value)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print("usage: balance.py CUSTOMER_REF PARTNER_REFERENCE_NO", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
