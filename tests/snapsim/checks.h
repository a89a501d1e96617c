/* The strict checks of one SNAP request, in DOKU's order, and its answer.
 *
 * Service calls: headers present and well formed (400xx02 / 400xx01),
 * X-TIMESTAMP fresh (401xx00), X-PARTNER-ID known (401xx00), HMAC signature
 * over the exact bytes received (401xx00), B2B token the newest and alive
 * (401xx01), customer token alive (401xx02), X-EXTERNAL-ID unused today
 * (409xx00), body is JSON (400xx00), partnerReferenceNo unused (409xx01),
 * mandatory fields (400xx02) and formats (400xx01), then the world's rules.
 * Token requests: headers, X-TIMESTAMP, X-CLIENT-KEY, RSA signature
 * (401xx00), body, grant.
 *
 * No I/O: the server gives the request's bytes and a way to read headers. */
#ifndef DOKU_SNAPSIM_CHECKS_H
#define DOKU_SNAPSIM_CHECKS_H

#include <stddef.h>

#include "config.h"
#include "faults.h"
#include "sim.h"
#include "simlog.h"
#include "snap_arena.h"
#include "snap_buf.h"
#include "snap_code.h"
#include "snap_endpoint.h"
#include "world.h"

/* A request header's value (NUL-terminated), or NULL when absent. */
typedef const char *(*sim_header_fn)(void *ctx, const char *name);

/* One request and its answer. The server owns it; every byte of the answer
 * lives in its arena until sim_exchange_free. */
typedef struct sim_exchange {
	/* in */
	const snap_endpoint *ep;       /* the endpoint of the path, NULL when none */
	const char *body;
	size_t body_len;
	sim_header_fn header;
	void *header_ctx;
	/* out */
	int http;                      /* HTTP status of the answer */
	enum sim_verdict verdict;
	char code[SNAP_CODE_LEN + 1];  /* responseCode */
	char detail[SIM_LOG_DETAIL_MAX + 1];
	char client_id[SIM_CLIENT_ID_MAX + 1];
	char partner_ref[SIM_LOG_REF_MAX + 1];
	snap_buf answer;               /* JSON body */
	snap_arena arena;
} sim_exchange;

void sim_exchange_init(sim_exchange *ex);
void sim_exchange_free(sim_exchange *ex);

/* Check and carry out a request to ex->ep (not NULL): always leaves an
 * answer (a success or a SNAP refusal) in ex. */
void sim_snap_handle(sim_config *config, world *w, sim_exchange *ex);

/* Replace the answer with a SNAP error: HTTP status http, responseCode
 * http + ex->ep's service code (00 without one) + case_code. */
void sim_snap_error(sim_exchange *ex, int http, int case_code, enum sim_verdict verdict,
		    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Fill the log facts of a request that is not processed (answered early or
 * by a fault): client id from its header, partnerReferenceNo from its body
 * when that body is JSON. No check is made. */
void sim_snap_describe(sim_exchange *ex);

/* Carry out the part of a fault that acts on the world before the request
 * is processed (revoke_b2b, expire_customer, revoke_customer), for the
 * partner and customer token the request names. */
void sim_snap_fault_before(sim_config *config, world *w, sim_exchange *ex,
			   enum sim_fault_kind kind);

#endif
