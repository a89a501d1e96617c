/* One call's life: decode -> ACL -> validate -> tokens -> sign -> upstream
 * -> map the answer -> reply; the outcome rules (docs/protocol.md).
 *
 * A call is one state machine with one owner (itself): created by its
 * connection when a frame header arrives, it frees itself once its reply is
 * queued (or, when its caller left, once it is over). All of its memory but
 * the struct comes from its arena, freed (and wiped) in one go. */
#ifndef DOKU_BRIDGED_CALL_H
#define DOKU_BRIDGED_CALL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <protobuf-c/protobuf-c.h>
#include <uv.h>

#include "bridge.h"
#include "config.h"
#include "list.h"
#include "methods.h"
#include "snap_arena.h"
#include "snap_buf.h"
#include "snap_extid.h"
#include "snap_time.h"
#include "tokens.h"
#include "upstream.h"

#define CALL_ARENA_EXTRA (2u * 1024u * 1024u) /* arena cap beyond 4 x the frame cap */
#define CALL_STATUS_MAX 384                   /* the Reply's status_message */
#define CALL_LOG_NAME_MAX 96                  /* an unknown method name, as logged */

struct conn;

enum call_state {
	CALL_READING,         /* the frame is still arriving */
	CALL_WAIT_B2B,        /* queued on the B2B token */
	CALL_WAIT_CUSTOMER,   /* queued on the customer token */
	CALL_WAIT_OPEN,       /* queued on the session-opening token request */
	CALL_UPSTREAM,        /* the request is with DOKU */
	CALL_STORE_INTENT,    /* money: the intent (or a new attempt) is being journaled */
	CALL_STORE_OUTCOME,   /* money: the outcome is being journaled; the reply waits */
	CALL_STORE_LOCAL,     /* METHOD_JOURNAL: the handler's store request is in flight */
	CALL_DONE,
};

struct call {
	struct list_node conn_node;  /* in the connection's calls while attached */
	struct list_node all_node;   /* in bridge.calls while in flight */
	struct bridge *b;
	struct conn *conn;           /* NULL once the caller is gone */
	snap_arena arena;
	uint8_t *frame;              /* the Call's bytes (arena) */
	uint32_t frame_len;
	enum call_state state;
	uint64_t id;
	uint64_t start_us;
	uint64_t deadline_ms;        /* uv_now() clock */
	uv_timer_t timer;
	bool timer_init;
	/* who and what */
	uid_t uid;
	uint64_t conn_no;
	const method *m;
	char log_name[CALL_LOG_NAME_MAX];
	config *cfg;                 /* one reference while in flight */
	const profile *prof;
	tok_profile *tp;
	char ref[TOK_REF_MAX + 1];
	ProtobufCMessage *req;
	const char *partner_ref;
	snap_buf body;
	/* tokens and attempts */
	tok_wait wait;
	unsigned b2b_gen, cust_gen;
	bool b2b_retried, cust_retried;
	unsigned retries;
	up_req up;
	bool sent;                   /* the last attempt may have reached DOKU */
	char external_id[SNAP_EXTID_MAX + 1];
	/* the reply */
	int code, outcome;
	char status[CALL_STATUS_MAX];
	unsigned http;
	char response_code[16];
	const char *response_message;
	ProtobufCMessage *resp;
	bool detached;
	/* the journal (journal.c): money-moving calls, METHOD_JOURNAL rows */
	char ts[SNAP_TIMESTAMP_LEN + 1]; /* the X-TIMESTAMP of the attempt */
	bool need_extid;             /* the next attempt takes a new X-EXTERNAL-ID */
	int64_t journal_id;          /* the call's journal row; 0: none */
	bool recorded;               /* its outcome is durable */
	int abort_code;              /* an abort that came while the store worked (0: none) */
	bool parked;                 /* out of bridge.calls (still counted) while the store works */
	void (*internal_done)(struct call *c); /* an internal call's end (no connection) */
	void *internal_data;
};

/* A new call for a frame of len bytes arriving on conn; *frame gets the
 * buffer (len bytes, in the call's arena) the connection fills. NULL when
 * out of memory. */
struct call *call_new(struct bridge *b, struct conn *conn, uint32_t len, uint8_t **frame);

/* The frame is complete: run the call. A cancel frame cancels its target and
 * frees itself without a reply. */
void call_start(struct call *c);

/* An internal call (reconciliation's status queries): no connection, no
 * ACL. call_internal_new gives the call (its arena for the request); then
 * call_internal_start sends req (a message of m->input in the call's arena)
 * as customer ref of profile p. done runs once at the end, with the answer in
 * c->code, c->outcome, c->http, c->response_code and c->resp, before the
 * call is freed. NULL when out of memory. */
struct call *call_internal_new(struct bridge *b, void (*done)(struct call *c), void *data);
void call_internal_start(struct call *c, const method *m, const profile *p, const char *ref,
			 ProtobufCMessage *req, uint32_t timeout_ms);

/* journal.c's store request for the call finished (on the loop):
 * CALL_STORE_INTENT: send (send true) or answer with what c holds; CALL_STORE_OUTCOME:
 * reply; CALL_STORE_LOCAL: answer with c->code (0: OK) and c->resp. */
void call_store_done(struct call *c, bool send);

/* Free a call whose frame never completed. */
void call_discard(struct call *c);

/* The caller is gone (the connection closes). A money-moving request already
 * sent runs to its end and its outcome is logged; anything else stops. The
 * connection has already unlinked the call. */
void call_detach(struct call *c);

/* Stop a call in flight now and answer it with code (CANCELLED, DEADLINE_EXCEEDED,
 * UNAVAILABLE at shutdown). The outcome says whether the request may have gone out. */
void call_abort(struct call *c, int code, const char *why);

#endif
