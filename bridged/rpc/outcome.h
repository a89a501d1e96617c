/* The Reply's status and outcome for one exchange with DOKU (docs/protocol.md).
 *
 * The outcome is a fact, never a guess: DONE only for DOKU's 2xx00 answer,
 * NOT_DONE when the request certainly did not take effect (never sent, or
 * refused with a 4xx), UNKNOWN otherwise (sent and no answer, 202, 5xx, an
 * answer that cannot be read). Pure functions. */
#ifndef DOKU_RPC_OUTCOME_H
#define DOKU_RPC_OUTCOME_H

#include <stdbool.h>

#include "snap_code.h"

struct outcome_in {
	int transport;        /* enum up_status of the last attempt (UP_OK: DOKU answered) */
	bool sent;            /* the last attempt may have reached DOKU */
	unsigned http;        /* HTTP status of the answer */
	const snap_code *rc;  /* its responseCode; NULL when it had none */
};

struct outcome_out {
	int code;             /* doku.bridge.v1.Code */
	int outcome;          /* doku.bridge.v1.Outcome */
};

void outcome_map(const struct outcome_in *in, struct outcome_out *out);

/* The gRPC code for an HTTP status class of a SNAP answer (4xx, 5xx). */
int outcome_code_for_http(int http);

/* "OK" ... "UNAUTHENTICATED"; "?" when out of range. */
const char *outcome_code_name(int code);

/* "DONE", "NOT_DONE", "UNKNOWN", "-". */
const char *outcome_name(int outcome);

#endif
