/* Reconciliation at work (docs/state.md): the journal's rows whose outcome
 * is UNKNOWN (at start-up also the PENDING ones a stopped daemon left) are
 * asked about with their status RPC, as internal calls (call.h), at most
 * RECONCILE_PARALLEL at once, each row when it is due (state/reconcile.h's
 * rules and backoff); what DOKU says is journaled. */
#ifndef DOKU_RPC_RECONCILER_H
#define DOKU_RPC_RECONCILER_H

struct bridge;

#define RECONCILE_PARALLEL 8u            /* status queries in flight at once */
#define RECONCILE_BATCH 32u              /* UNKNOWN rows read per scan */
#define RECONCILE_QUERY_TIMEOUT_MS 15000u /* deadline of one status query */
#define RECONCILE_RETRY_MS 5000u         /* after a failed scan of the journal */
#define RECONCILE_FLEET_SCAN_MS 5000u    /* a fleet's: scan this often for rows a dead daemon left */

typedef struct reconciler reconciler;

/* A reconciler for b's journal (b->journal open); it hooks
 * b->unknown_recorded. 0 or -1 (out of memory). *out: reconciler_close. */
int reconciler_new(struct bridge *b, reconciler **out);

/* Start scanning (after start-up). */
void reconciler_start(reconciler *r);

/* No new status queries; the memory goes when the last one in flight has
 * ended (its calls are aborted at shutdown). NULL is a no-op. */
void reconciler_close(reconciler *r);

#endif
