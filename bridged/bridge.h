/* The daemon's shared state: one per process, owned by main.c. Every module
 * on the path of a call reaches the loop, the current configuration, the
 * upstream, the tokens and the counters through it. */
#ifndef DOKU_BRIDGED_BRIDGE_H
#define DOKU_BRIDGED_BRIDGE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "list.h"
#include "tokens.h"
#include "upstream.h"

struct server;
struct journal;

struct bridge {
	uv_loop_t *loop;
	config *cfg;             /* the current configuration (one reference) */
	upstream *up;
	tokens *tokens;
	struct server *srv;
	struct journal *journal;  /* the durable state: store, journal, reconciler (journal.h) */
	uint64_t started_ms;     /* uv_now() at start-up */
	uint64_t calls_served;   /* calls answered (or finished without their caller) */
	uint64_t calls_failed;   /* ... with a code other than OK */
	unsigned calls_in_flight;
	struct list_node calls;  /* every call in flight, detached ones included */
	bool draining;           /* SIGTERM: no new calls */
	void (*drain_check)(struct bridge *b); /* main's hook: a call or connection ended; may be NULL */
};

#endif
