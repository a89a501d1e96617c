/* The daemon's shared state: one per process, owned by daemon/main.c. The
 * RPC layer reaches the loop, the current configuration, the upstream, the
 * tokens, the journal and the counts through it. */
#ifndef DOKU_RPC_BRIDGE_H
#define DOKU_RPC_BRIDGE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "journal.h"
#include "list.h"
#include "server.h"
#include "tokens.h"
#include "upstream.h"

struct reconciler;

struct bridge {
	uv_loop_t *loop;
	config *cfg;             /* the current configuration (one reference) */
	upstream *up;
	tokens *tokens;
	server *srv;
	journal *journal;        /* the durable state (state/journal.h); NULL before it opens */
	struct reconciler *rec;  /* reconciliation of UNKNOWN rows (reconciler.h) */
	uint64_t started_ms;     /* uv_now() at start-up */
	uint64_t calls_served;   /* calls answered (or finished without their caller) */
	uint64_t calls_failed;   /* ... with a code other than OK */
	unsigned calls_in_flight; /* callers' calls being served, detached ones included */
	unsigned internal_in_flight; /* the daemon's own calls (the reconciler's queries) */
	struct list_node calls;  /* every call in flight, detached and internal ones included (call.c) */
	bool draining;           /* SIGTERM: no new calls */
	void (*drain_check)(struct bridge *b); /* main's hook: a call or connection ended; may be NULL */
	void (*unknown_recorded)(struct bridge *b); /* the reconciler's: an UNKNOWN outcome was journaled */
};

#endif
