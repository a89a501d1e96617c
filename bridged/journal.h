/* The daemon's durable state at work (docs/state.md): the state database
 * (store.h) opened at start-up, the journal on the path of every
 * money-moving call, reconciliation of the calls whose outcome is UNKNOWN,
 * the GetOperation / ListOperations RPCs, and the customer sessions read
 * back at start-up. Everything here runs on the loop's thread; the disk is
 * the store's worker's.
 *
 * A money-moving call (method row with SNAP_EP_MONEY):
 *   send_attempt -> journal_attempt: the intent (or, for a new attempt of a
 *     journaled call, its new X-EXTERNAL-ID) is written and fsync'd; then
 *     call_store_done(c, true) sends it. A partner reference journaled
 *     already is answered from the journal (call_store_done(c, false)),
 *     except a NOT_DONE one, which is sent again (store_journal_reissue).
 *   finish -> journal_outcome: the outcome is written; the reply is queued
 *     only once it is durable (call_store_done). */
#ifndef DOKU_BRIDGED_JOURNAL_H
#define DOKU_BRIDGED_JOURNAL_H

#include <stdio.h>

#include "bridge.h"
#include "sealed.h"
#include "store.h"

#define JOURNAL_KEY_NAME "state.key"   /* the generated key, in state_dir */
#define JOURNAL_RECONCILE_PARALLEL 8u  /* status queries in flight at once */
#define JOURNAL_RECONCILE_BATCH 32u    /* UNKNOWN rows read per scan */
#define JOURNAL_RECONCILE_TIMEOUT_MS 15000u /* deadline of one status query */
#define JOURNAL_RETRY_MS 5000u         /* after a failed scan of the journal */
#define JOURNAL_LIST_MAX 500u          /* ListOperations page_size cap (proto) */
#define JOURNAL_PRUNE_BATCH 1000u      /* retention: rows deleted per transaction */
#define JOURNAL_PRUNE_EVERY_MS (60u * 60u * 1000u) /* retention: one pass an hour */
#define JOURNAL_ERR_MAX (STORE_ERR_MAX + SEALED_ERR_MAX)

struct call;
typedef struct journal journal;

/* Open the state of cfg (state_dir, the key of state_key_file or
 * <state_dir>/state.key, generated on first start) and read the customer
 * sessions back into b->tokens, running the loop until they are in (before
 * anything is served). On success b->journal is set. On failure err says
 * why in one line (a corrupt or unreadable database, a wrong key) and the
 * daemon must not start. 0 or -1. */
int journal_open(struct bridge *b, char err[JOURNAL_ERR_MAX]);

/* Start reconciling the rows left UNKNOWN (at start-up: also the ones a
 * stopped daemon left PENDING), and the retention passes: one now, then one
 * every JOURNAL_PRUNE_EVERY_MS, each deleting the settled rows older than
 * [bridge] journal_retention_days of the configuration current then. */
void journal_start(struct bridge *b);

/* Stop reconciling (no new status queries; the ones in flight end with
 * their calls), then close the store once its queued requests are done.
 * b->journal becomes NULL. */
void journal_close(struct bridge *b);

/* For call.c. A new attempt of c (c->external_id and c->ts are set): 1 when
 * a store request was started (call_store_done follows), 0 when nothing
 * is journaled (not money-moving, or journal = off), or a negative
 * STORE_ERR_* (the request must not be sent). */
int journal_attempt(struct call *c);

/* c ends with c->code / c->outcome: record its outcome. 0: the store has
 * it, call_store_done follows; else the reply goes out without waiting. */
int journal_outcome(struct call *c);

/* A static text for a journal_attempt error. */
const char *journal_strerror(int err);

/* The METHOD_JOURNAL handlers (methods.h). */
int journal_get_operation(struct call *c);
int journal_list_operations(struct call *c);

#endif
