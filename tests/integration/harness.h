/* The integration harness of doku-bridged: throwaway credentials, the
 * simulator (doku-snapsim over real TLS), the recording tap in front of it,
 * and the daemon, each started for real and synchronised on readiness (the
 * simulator's "ready" line, the daemon's READY=1 on our own NOTIFY_SOCKET),
 * never on sleeps. Every wait is bounded (H_WAIT_MS).
 *
 * Every reply a test receives goes through h_call (or h_record), and
 * h_teardown proves that no byte run of the client secret, the private key
 * or any token seen by the tap appears in a reply or in the daemon's log. */
#ifndef DOKU_ITEST_HARNESS_H
#define DOKU_ITEST_HARNESS_H

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <sys/types.h>
#include <cmocka.h>
#include <jansson.h>

#include "dokubridge.h"
#include "tap.h"

#define H_WAIT_MS 30000 /* bound of every wait */

typedef struct h_env {
	char dir[PATH_MAX];       /* private temporary directory */
	char sock[PATH_MAX];      /* the daemon's socket */
	char conf[PATH_MAX];
	char log[PATH_MAX];       /* the daemon's stderr (appended across restarts) */
	char client_id[128];
	char sim_https[64];       /* 127.0.0.1:PORT */
	char sim_control[64];
	bool direct;              /* the daemon talks to the simulator without the tap */
	pid_t sim_pid, daemon_pid;
	int notify_fd;
	tap *tap;
	unsigned sim_idle_timeout_s; /* set before h_setup: the simulator's --idle-timeout (0: its own) */
	const char *daemon_bin;   /* the daemon's binary (NULL: the one built with the tests) */
	bool second;              /* set up by h_setup_second */
} h_env;

/* Credentials, simulator, tap (none when e->direct is set before, or
 * $DOKU_IT_DIRECT is set); on PostgreSQL (h_state_pg) a fresh database
 * (h_pg_new_db) for this environment's daemon. */
void h_setup(h_env *e);

/* The backend of the state of the daemons h_setup and h_write_config make, by
 * $DOKU_IT_STATE: unset, "" or "sqlite": SQLite in state_dir (false);
 * "postgres" (ctest's <test>_pg runs, inside tests/tools/pg_run.sh): the
 * fleet's [bridge] lines (h_pg_bridge: verify-full TLS, the role's password
 * file, the shared key h_fleet_key), one daemon on a database of its own
 * (true). Fails the test on another value, or on postgres outside pg_run.sh. */
bool h_state_pg(void);
/* In a test case about the SQLite file itself (its bytes, its -wal, its name):
 * on PostgreSQL print "skipped on PostgreSQL: <why>" and skip the case. */
void h_sqlite_only(const char *why);
/* A second daemon's environment beside first's (to compare two binaries):
 * the same simulator (or tap) and credentials, its own directory first->dir/name
 * (socket, configuration, state, log, NOTIFY_SOCKET). Set e->daemon_bin
 * before h_daemon_start for another binary. h_teardown(e) stops its daemon
 * and scans its log; the simulator, the tap and the directory stay first's:
 * tear e down before first. */
void h_setup_second(h_env *e, const h_env *first, const char *name);
/* Write the configuration ([bridge] lines and more sections appended) and
 * start the daemon (under the words of $DOKU_IT_DAEMON_WRAPPER when set, e.g.
 * valgrind); returns once it said READY=1. */
void h_daemon_start(h_env *e, const char *bridge_extra, const char *sections);
/* Rewrite the configuration (for a reload). On PostgreSQL (h_state_pg) the
 * [bridge] lines of h_pg_bridge come first, unless bridge_extra names a
 * state_backend of its own (a fleet's daemon, or a test that chooses). */
void h_write_config(h_env *e, const char *bridge_extra, const char *sections);
/* Send sig to the daemon. */
void h_daemon_signal(h_env *e, int sig);
/* Spawn the daemon on e's configuration as h_daemon_start does (NOTIFY_SOCKET,
 * stderr to e->log), without waiting: its pid (not stored in e). */
pid_t h_daemon_spawn(h_env *e);
/* Wait for a notification containing what (e.g. "READY=1"); false on timeout. */
bool h_wait_notify(h_env *e, const char *what);
/* Wait for the daemon to exit; its exit status (or -1 if it was killed/timed out). */
int h_daemon_wait(h_env *e);
/* Stop everything, scan for leaked secrets, remove the directory. */
void h_teardown(h_env *e);
/* After a failed test: SIGKILL the daemon and the simulator if still running. */
void h_kill(h_env *e);

/* One HTTP request (body: JSON, or NULL for none) within H_WAIT_MS: the status;
 * *answer (malloc'd, NUL-terminated) when answer is not NULL, the Content-Type
 * into ctype[ctsz] when ctype is not NULL. */
long h_http(const char *method, const char *url, const char *body, char **answer, char *ctype,
	    size_t ctsz);
/* The simulator's control API: the body (malloc'd, NUL-terminated); *status
 * the HTTP status when not NULL. */
char *h_ctl(h_env *e, const char *method, const char *path, const char *body, long *status);
/* A counter of GET /control/counters: group "tokens" / "byEndpoint" / ...,
 * or group NULL for a top-level number. */
long h_counter(h_env *e, const char *group, const char *key);
/* Entries of the simulator's log for path (and partnerReferenceNo ref when not NULL). */
unsigned h_sim_requests(h_env *e, const char *path, const char *ref);
/* The X-EXTERNAL-ID of the last request the simulator logged for path and
 * ref, into out[64] ("" when none). */
void h_sim_external_id(h_env *e, const char *path, const char *ref, char out[64]);
/* Arm a fault (JSON of POST /control/faults). */
void h_fault(h_env *e, const char *json);
/* Whether any armed fault is still to be taken (GET /control/faults not empty). */
bool h_faults_armed(h_env *e);
/* Stop the simulator with sig (SIGKILL: a crash) and start a new one on the
 * same HTTPS and control addresses (a new, empty world); returns once it is ready. */
void h_sim_restart(h_env *e, int sig);

/* Small helpers the tests share. */
uint64_t h_now_ms(void); /* CLOCK_MONOTONIC in milliseconds */
/* a->value = value, a->currency = "IDR" (value not copied). */
void h_amount(Doku__Wallet__V1__Amount *a, const char *value);
/* A JSON object's string member ("" when absent or not a string) and integer one (0). */
const char *h_json_str(const json_t *o, const char *key);
long long h_json_num(const json_t *o, const char *key);

/* doku-bridged --export-journal on e's configuration, each line parsed (a JSON
 * object, no duplicate key): an array (caller frees with json_decref). */
json_t *h_export_journal(h_env *e);
/* The row of rows for (method, partner reference), or NULL. */
json_t *h_journal_row(json_t *rows, const char *method, const char *ref);

/* poll(2) for a client: the events c wants, and the client events of revents. */
short h_poll_events(dokubridge_client *c);
unsigned h_client_events(short revents);

/* A client on the daemon's socket (connected). */
dokubridge_client *h_client(h_env *e);
/* A typed call by name whose reply is recorded for the leak scan. */
/* h_call that must succeed (req is a message struct, not a pointer). */
#define OK_CALL(c, cust, m, req, resp, res)                                              \
	do {                                                                              \
		int rc_ = h_call(c, cust, m, &(req).base, (ProtobufCMessage **)(resp), res); \
		if (rc_ != 0)                                                             \
			fprintf(stderr, "%s: %s: %s\n", m, dokubridge_code_name((res)->code), \
				(res)->message);                                          \
		assert_int_equal(rc_, 0);                                                 \
	} while (0)

int h_call(dokubridge_client *c, const char *customer, const char *method,
	   const ProtobufCMessage *req, ProtobufCMessage **resp, dokubridge_result *res);
/* Record bytes that came from the daemon. */
void h_record(const void *p, size_t n);
void h_record_result(const dokubridge_result *res);

/* A customer taken through creation, OTP, PIN, binding and approval, with
 * a session opened under ref. */
typedef struct h_customer {
	char phone[32];
	char account_no[64];
	char link_id[128];
	char auth_code[256];
	char ref[65];
} h_customer;

void h_customer_new(h_env *e, dokubridge_client *c, const char *ref, h_customer *out);

/* A raw connection to the daemon's socket (blocking fd). */
int h_raw_connect(h_env *e);
/* Read one frame (flags, len, body into a malloc'd buffer) within H_WAIT_MS.
 * 0, or -1 on EOF / error / timeout. */
int h_raw_read_frame(int fd, uint8_t *flags, uint8_t **body, uint32_t *len);
/* Whether the peer closed fd (EOF within H_WAIT_MS). */
bool h_raw_eof(int fd);

/* Write all of p[0..n) to fd. */
void h_send_all(int fd, const void *p, size_t n);
/* A frame (flags, len, body) into out; its length. */
size_t h_frame(uint8_t *out, uint8_t flags, const void *body, uint32_t len);
/* The frame of a Call of method with msg (may be NULL) and customer (may be NULL). */
size_t h_call_frame(uint8_t *out, size_t outsz, uint64_t id, const char *method,
		    const ProtobufCMessage *msg, const char *customer);

/* Whether the peer closed fd within H_WAIT_MS, without reading from it. */
bool h_raw_hup(int fd);

/* A unique reference for this process ("prefix-<pid>-<n>"). */
const char *h_ref(const char *prefix);

/* Many calls at once: per calls on each of the n clients, all started
 * before any completes, driven with poll(2) until every one completed.
 * make(i) gives the request of call i (serialized at once, so it may reuse
 * one message); progress (may be NULL) runs after each completion. */
typedef struct h_burst {
	unsigned total, done, ok;
	unsigned codes[DOKUBRIDGE_CODE_COUNT];
	unsigned outcomes[4];
	uint64_t max_ms;                 /* slowest call */
} h_burst;

void h_burst_run(dokubridge_client **cs, unsigned n, unsigned per, const char *method,
		 const char *customer, const ProtobufCMessage *(*make)(unsigned i, void *arg),
		 void (*progress)(unsigned done, void *arg), void *arg, h_burst *out);

/* Wait until the simulator's log holds at least n entries for path/ref
 * (entries are written when the simulator answers). false on timeout. */
bool h_wait_sim_requests(h_env *e, const char *path, const char *ref, unsigned n);

/* ---- a fleet of daemons on PostgreSQL (tests/tools/pg_run.sh) --------------------------
 * pg_run.sh runs the test inside a throwaway cluster (pg_virtualenv) and exports
 * DOKU_TEST_PG_CONNINFO (the daemons' role, no password), DOKU_TEST_PG_PASSWORD_FILE,
 * DOKU_TEST_PG_CA (the server's CA: sslmode=verify-full) and the superuser's
 * PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE. */

/* Whether the test runs inside pg_run.sh. Moves the superuser's libpq variables
 * (PGHOST, PGUSER, PGPASSWORD, ...) out of the environment, kept for h_pg_sql
 * only: no daemon or tool the test starts inherits them, so each connects with
 * what its configuration says (the role, the password file, TLS). */
bool h_pg_init(void);
/* A fresh database for the next fleet: a copy (CREATE DATABASE ... TEMPLATE, as
 * the superuser) of the empty one pg_run.sh made, with its owner and grants, so
 * that each test starts on an empty database with its own state key. From now on
 * h_pg_conninfo and h_pg_bridge name it. */
void h_pg_new_db(void);
/* The current database's name (pg_run.sh's until h_pg_new_db). Static storage. */
const char *h_pg_dbname(void);
/* The daemons' role (the user of $DOKU_TEST_PG_CONNINFO). Static storage. */
const char *h_pg_role(void);
/* The daemons' conninfo: $DOKU_TEST_PG_CONNINFO with sslmode=verify-full and
 * sslrootcert=$DOKU_TEST_PG_CA when pg_run.sh gave a CA, and the current
 * database. Static storage. */
const char *h_pg_conninfo(void);
/* The [bridge] lines of a fleet daemon of e's simulator into out: state_backend =
 * postgres, state_postgres (h_pg_conninfo), state_postgres_password_file, and
 * state_key_file = the fleet's key (h_fleet_key), then extra (may be NULL). */
void h_pg_bridge(const h_env *e, const char *extra, char *out, size_t outsz);
/* The sealing key every daemon of e's simulator shares (creds/fleet.key: 64 hex
 * digits, 0600, made on first use) into path[PATH_MAX]. */
void h_fleet_key(const h_env *e, char path[PATH_MAX]);
/* psql -c sql as the superuser on database db (NULL: the current one): its exit
 * status; its stdout (unaligned, tuples only; malloc'd) into *out when not NULL.
 * Bounded by H_WAIT_MS. */
int h_pg_sql(const char *db, const char *sql, char **out);
/* Stop (fast: connections cut) or start the test's cluster (pg_ctlcluster
 * $PGVERSION ${DOKU_TEST_PG_CLUSTER:-regress}); returns when done. */
void h_pg_stop(void);
void h_pg_start(void);

/* doku-bridged --config e->conf ARGS... (args NULL-terminated), bounded by
 * H_WAIT_MS: its exit status; stdout and stderr (malloc'd, recorded for the
 * leak scan) into *out and *err when not NULL. */
int h_tool(h_env *e, const char *const *args, char **out, char **err);
/* A sample of e's daemon's Metrics ("name" or "name{labels}" exactly as rendered,
 * labels NULL for none); 0 when absent. Fails the test on a malformed text. */
double h_metric(h_env *e, const char *name, const char *labels);

/* A fleet: fl[0] set up by h_setup (set fl[0].direct before, as for h_setup),
 * fl[1..n) by h_setup_second beside it ("d1", "d2", ...); the n daemons started
 * at once on PostgreSQL (h_pg_bridge with extra), as a fleet's pods start, and
 * waited for (READY=1 each). Skips the test when not inside pg_run.sh. */
#define H_FLEET_MAX 8
void h_fleet_start(h_env *fl, unsigned n, const char *extra);
/* h_teardown of fl[n-1] .. fl[0]; h_kill of each (after a failed test). */
void h_fleet_teardown(h_env *fl, unsigned n);
void h_fleet_kill(h_env *fl, unsigned n);

#endif
