/* balance: ask doku-bridged for a customer's DOKU wallet balance.
 *
 *   balance CUSTOMER_REF PARTNER_REFERENCE_NO
 *
 * The socket is $DOKU_BRIDGE_SOCKET, or /run/doku-bridge/bridge.sock. The
 * customer session CUSTOMER_REF must have been opened before (OpenCustomerSession).
 * Build: cc balance.c $(pkg-config --cflags --libs dokubridge) */
#include <stdio.h>
#include <stdlib.h>

#include <dokubridge.h>

int main(int argc, char **argv)
{
	Doku__Wallet__V1__GetBalanceRequest req = DOKU__WALLET__V1__GET_BALANCE_REQUEST__INIT;
	Doku__Wallet__V1__GetBalanceResponse *resp = NULL;
	dokubridge_call_opts opts = {0};
	dokubridge_client *client = NULL;
	dokubridge_result res;
	int rc, status = EXIT_FAILURE;

	if (argc != 3) {
		fprintf(stderr, "usage: %s CUSTOMER_REF PARTNER_REFERENCE_NO\n", argv[0]);
		return 2;
	}
	if (dokubridge_new(NULL, &client) < 0) {
		fprintf(stderr, "balance: cannot create the client\n");
		return EXIT_FAILURE;
	}
	opts.customer_ref = argv[1];
	opts.timeout_ms = 10000;
	req.partner_reference_no = argv[2];

	rc = dokubridge_get_balance(client, &opts, &req, &resp, &res);
	if (rc == 0) {
		const Doku__Wallet__V1__AccountInfo *info = resp->account_info;

		printf("%s: %s %s\n", resp->name,
		       info && info->amount ? info->amount->value : "?",
		       info && info->amount ? info->amount->currency : "");
		status = EXIT_SUCCESS;
	} else {
		fprintf(stderr, "balance: %s: %s (responseCode %s, outcome %s)\n",
			dokubridge_code_name(res.code), res.message,
			res.response_code[0] ? res.response_code : "-",
			dokubridge_outcome_name(res.outcome));
	}
	dokubridge_message_free(resp); /* set on errors too, when the daemon sent a message */
	dokubridge_free(client);
	return status;
}
