/* Reconciliation: the pure logic (no I/O) of learning from DOKU's status RPCs
 * whether a money-moving request that may have happened did happen.
 *
 * The money rule of each money-moving RPC (reconcile_rule, held by its row of
 * the RPC table, rpc/methods.c) says which request field is its journal
 * key, how to fill the request of its status RPC (snap_endpoint.status_rpc)
 * from the journal row, which fields of the answer must name the same
 * transaction, and what each latestTransactionStatus means for it:
 *
 *              00 success  01/02/03 pending  04 refunded  05 cancelled  06 failed
 *   Purchase, TopUp, TransferToBank:
 *              DONE        UNKNOWN           DONE         NOT_DONE      NOT_DONE
 *   CancelPurchase (status of the purchase):
 *              NOT_DONE    UNKNOWN           NOT_DONE     DONE          NOT_DONE
 *   RefundPurchase (its own transaction, by partnerRefundNo):
 *              DONE        UNKNOWN           DONE         NOT_DONE      NOT_DONE
 *
 * GetTransaction answers a status name ("SUCCESS", "PENDING", ...), read as
 * the matching code. "Not found" (404xx01, or status 07) is NOT_DONE once
 * RECONCILE_SETTLE_MS have passed since the intent, UNKNOWN before. Any
 * other answer (no answer, 5xx, 202, a token refusal, an answer naming
 * another transaction, a status not in the table) leaves it UNKNOWN: ask
 * again after reconcile_backoff_ms. */
#ifndef DOKU_STATE_RECONCILE_H
#define DOKU_STATE_RECONCILE_H

#include <stdbool.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

#include "snap_arena.h"
#include "snap_endpoint.h"
#include "store.h"

#define RECONCILE_BACKOFF_BASE_MS 1000u   /* the first delay */
#define RECONCILE_BACKOFF_MAX_MS 300000u  /* the cap: 5 minutes */
#define RECONCILE_BACKOFF_AGE_DIV 2u      /* the delay is at most half the row's age */
#define RECONCILE_SETTLE_MS 60000         /* "not found" sooner than this after the intent is not trusted */
#define RECONCILE_DETAIL_MAX STORE_DETAIL_MAX

/* Where a value of a status request (or of an answer to check) comes from. */
enum reconcile_src {
	RECONCILE_SRC_NONE,          /* the end of a list */
	RECONCILE_SRC_KEY,           /* row.partner_reference_no */
	RECONCILE_SRC_ORIGINAL,      /* row.original_reference_no */
	RECONCILE_SRC_EXTERNAL_ID,   /* row.external_id */
	RECONCILE_SRC_TIME,          /* row.request_time */
	RECONCILE_SRC_ORIGINAL_TIME, /* the original row's request_time, else row's */
	RECONCILE_SRC_SERVICE,       /* the two-digit service code of the rule's endpoint */
	RECONCILE_SRC_ORIGINAL_SERVICE, /* ... of the original's endpoint */
	RECONCILE_SRC_CONST,         /* arg */
};

#define RECONCILE_PARAMS_MAX 3
#define RECONCILE_ECHOES_MAX 2

typedef struct reconcile_field {
	const char *field;           /* a string field (proto name) */
	enum reconcile_src src;
	const char *arg;             /* RECONCILE_SRC_CONST */
} reconcile_field;

/* The money rule of one money-moving RPC: held by its row of the RPC table
 * (rpc/methods.c), which fills the endpoints at start-up. */
typedef struct reconcile_rule {
	const char *key_field;       /* request fields: the idempotency key, */
	const char *original_field;  /* the purchase it refers to (or NULL), */
	const char *amount_field;    /* its Amount (or NULL) */
	const char *original_method; /* the RPC whose row the original field names (or NULL) */
	reconcile_field params[RECONCILE_PARAMS_MAX]; /* the status request */
	reconcile_field echoes[RECONCILE_ECHOES_MAX]; /* answer fields that, when set, must match */
	const char *verdict;         /* by status 00..06: 'D' DONE, 'N' NOT_DONE, 'U' UNKNOWN */
	/* resolved by the RPC table */
	const snap_endpoint *ep;          /* the money-moving endpoint */
	const snap_endpoint *original_ep; /* original_method's endpoint, or NULL */
	const snap_endpoint *status_ep;   /* its status RPC's endpoint */
	const char *status_field;         /* the status answer's transaction status field */
} reconcile_rule;

/* The lookup of a money-moving method's rule by name (NULL: the method does
 * not move money), handed in once by the RPC layer (methods_init): the rows
 * of the journal name their method. */
void reconcile_rule_lookup(const reconcile_rule *(*rule_of)(const char *method));

/* The journal fields of a money-moving request; pointers into its message
 * ("" when the request has none): the RPC table reads them (methods_keys). */
typedef struct reconcile_keys {
	const char *partner_reference_no;  /* the idempotency key: partnerReferenceNo,
					      partnerRefundNo (Refund), or the purchase's
					      originalPartnerReferenceNo (Cancel) */
	const char *original_reference_no; /* Cancel/Refund: the purchase's partnerReferenceNo */
	const char *amount_value;
	const char *amount_currency;
} reconcile_keys;

/* The request field (proto name) that is the idempotency key of method's
 * requests; NULL when method does not move money. */
const char *reconcile_key_field(const char *method);

/* The RPC whose journal row a request of method refers to by its original
 * reference (CancelPurchase, RefundPurchase: "Purchase"); NULL when none. */
const char *reconcile_original_method(const char *method);

/* Whether reconcile_request for method's rows reads the journal row of the
 * purchase they refer to (CancelPurchase: its transactionDate). */
bool reconcile_needs_original(const char *method);

/* The status endpoint that tells the outcome of method's requests; NULL when
 * method does not move money. */
const snap_endpoint *reconcile_status_endpoint(const char *method);

/* Build, from arena, the status request for row: *ep its endpoint, *out a
 * message of type (*ep)->request. original: the journal row of the purchase
 * a Cancel/Refund row refers to, whose request_time is the transactionDate;
 * NULL: row's own is used. 0, SNAP_ERR_INVALID (not a money-moving method),
 * SNAP_ERR_MISSING (row lacks a field the request needs), SNAP_ERR_NOMEM. */
int reconcile_request(const store_row *row, const store_row *original, snap_arena *arena,
		      const snap_endpoint **ep, ProtobufCMessage **out);

/* DOKU's answer to a status request. */
typedef struct reconcile_answer {
	unsigned http;               /* HTTP status; 0: no answer arrived */
	const char *response_code;   /* its responseCode; NULL when none */
	const ProtobufCMessage *msg; /* the decoded answer (the status endpoint's
					response type); NULL when none */
} reconcile_answer;

/* What answer a says about row's request: STORE_DONE, STORE_NOT_DONE, or
 * STORE_UNKNOWN (ask again later). detail (NULL: not wanted) gets one line
 * saying why. now_ms: the current time, for the settle time of "not found". */
enum store_state reconcile_read(const store_row *row, const reconcile_answer *a, int64_t now_ms,
				char detail[RECONCILE_DETAIL_MAX + 1]);

/* The delay before the next status query of a row age_ms old (since its
 * intent): d = age / RECONCILE_BACKOFF_AGE_DIV within [1 s, 5 min], jittered
 * into [d/2, d] by rnd (any 32-bit random value). It follows the row's age,
 * not how many queries it has had: the delays grow geometrically (each query
 * comes at 1.25 to 1.5 times the age of the one before), and neither early
 * "not found" answers nor restarts push a row far into the future. */
uint32_t reconcile_backoff_ms(int64_t age_ms, uint32_t rnd);

#endif
