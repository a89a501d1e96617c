/* The request log of doku-snapsim and its counters.
 *
 * Every HTTPS request ends as one entry in a bounded ring (the oldest entry
 * is overwritten when it is full), read back as JSON lines through the
 * control API. Counters (requests per endpoint, per HTTP status, per
 * verdict, faults applied, HTTPS connections) live beside it. Thread-safe. */
#ifndef DOKU_SNAPSIM_SIMLOG_H
#define DOKU_SNAPSIM_SIMLOG_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "faults.h"
#include "sim.h"
#include "snap_buf.h"

#define SIM_LOG_CAPACITY 200000u  /* entries kept */
#define SIM_LOG_READ_MAX 20000u   /* entries one read returns at most */
#define SIM_LOG_METHOD_MAX 8
#define SIM_LOG_PATH_MAX 80
#define SIM_LOG_EXTID_MAX 40
#define SIM_LOG_REF_MAX 64
#define SIM_LOG_DETAIL_MAX 64
#define SIM_LOG_ENDPOINTS_MAX 32  /* endpoint table rows counted one by one */
#define SIM_LOG_STATUS_MAX 600    /* HTTP statuses 0..599 */

/* What the simulator concluded about a request; one per check. */
enum sim_verdict {
	SIM_V_OK = 0,
	SIM_V_METHOD,             /* not POST */
	SIM_V_NOT_FOUND,          /* no such endpoint */
	SIM_V_TOO_LARGE,          /* body over SIM_BODY_MAX */
	SIM_V_TOO_SLOW,           /* body not complete within SIM_REQUEST_DEADLINE_S */
	SIM_V_MISSING_HEADER,
	SIM_V_BAD_HEADER,
	SIM_V_STALE_TIMESTAMP,
	SIM_V_UNKNOWN_CLIENT,
	SIM_V_BAD_TOKEN_SIGNATURE, /* RSA signature of a token request */
	SIM_V_BAD_SIGNATURE,       /* HMAC signature of a service call */
	SIM_V_B2B_TOKEN,
	SIM_V_CUSTOMER_TOKEN,
	SIM_V_DUPLICATE_EXTERNAL_ID,
	SIM_V_BAD_JSON,
	SIM_V_DUPLICATE_REFERENCE,
	SIM_V_MISSING_FIELD,
	SIM_V_BAD_FIELD,
	SIM_V_REFUSED,             /* a business refusal of the world (403, 404, ...) */
	SIM_V_FULL,                /* a capacity limit of the world */
	SIM_V_INTERNAL,
	SIM_V_FAULT,               /* answered by an injected fault without processing */
	SIM_V_CLIENT_GONE,         /* the client went away (or went silent) before an answer */
	SIM_V_COUNT
};

const char *sim_verdict_name(enum sim_verdict v);

typedef struct sim_log_entry {
	uint64_t seq;                /* assigned by sim_log_add, from 1 */
	int64_t time_ms;             /* wall clock, ms since the epoch */
	uint32_t micros;             /* time spent handling it */
	uint16_t http;               /* HTTP status answered; 0: connection dropped */
	uint8_t verdict;             /* enum sim_verdict */
	uint8_t fault;               /* enum sim_fault_kind applied */
	uint8_t fault_applied_op;    /* the operation was processed before the fault */
	char method[SIM_LOG_METHOD_MAX + 1];
	char path[SIM_LOG_PATH_MAX + 1];
	char client_id[SIM_CLIENT_ID_MAX + 1];
	char external_id[SIM_LOG_EXTID_MAX + 1];
	char partner_ref[SIM_LOG_REF_MAX + 1];
	char code[8];                /* responseCode; "" when none */
	char detail[SIM_LOG_DETAIL_MAX + 1]; /* e.g. the offending field */
} sim_log_entry;

typedef struct sim_log_filter {
	uint64_t since;          /* entries with seq > since */
	size_t limit;            /* at most this many (<= SIM_LOG_READ_MAX) */
	const char *path;        /* NULL: any */
	const char *client_id;   /* NULL: any */
	const char *verdict;     /* NULL: any */
	int http;                /* 0: any */
} sim_log_filter;

/* What happened to an HTTPS connection (sim_log_connection). */
enum sim_conn_event {
	SIM_CONN_OPENED,
	SIM_CONN_CLOSED,      /* closed for any other reason (the client, an error, a stop) */
	SIM_CONN_IDLE_CLOSED, /* closed by the server: silent for the idle timeout, no request in progress */
};

typedef struct sim_log {
	pthread_mutex_t lock;
	sim_log_entry *ring;     /* capacity entries */
	size_t capacity;
	uint64_t next_seq;
	bool echo;               /* also print each entry to stderr */
	uint64_t requests;
	uint64_t by_endpoint[SIM_LOG_ENDPOINTS_MAX + 1]; /* last: other paths */
	uint64_t by_status[SIM_LOG_STATUS_MAX];
	uint64_t by_verdict[SIM_V_COUNT];
	uint64_t faults;
	uint64_t conn_opened;
	uint64_t conn_closed;      /* every close, idle ones included */
	uint64_t conn_idle_closed;
} sim_log;

/* 0 or SIM_ERR_NOMEM. */
int sim_log_init(sim_log *l, size_t capacity, bool echo);
void sim_log_free(sim_log *l);

/* Record e (its seq is assigned); endpoint is the row index in
 * snap_endpoints, or -1 for other paths. */
void sim_log_add(sim_log *l, sim_log_entry *e, int endpoint);

/* Count an HTTPS connection event. */
void sim_log_connection(sim_log *l, enum sim_conn_event ev);

/* Append the entries f selects to out, one JSON object per line. 0 or a
 * snap_buf error. */
int sim_log_render(sim_log *l, const sim_log_filter *f, snap_buf *out);

/* The counters as a new JSON object (caller's reference); NULL on ENOMEM. */
json_t *sim_log_counters(sim_log *l);

/* Forget every entry and zero the counters. */
void sim_log_reset(sim_log *l);

#endif
