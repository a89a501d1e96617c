/* Fixed-size counters and their Prometheus text. */
#include "counters.h"

#include <stdio.h>
#include <string.h>

#include "snap_err.h"

#ifndef DOKU_VERSION
#define DOKU_VERSION "0.0.0"
#endif

#define SLOTS (COUNTERS_METHODS_MAX + 1) /* method rows, then "unknown" */
#define SLOT_UNKNOWN COUNTERS_METHODS_MAX
#define CODES COUNTERS_CODES
#define OUTCOMES COUNTERS_OUTCOMES
#define HTTP_MIN 100
#define HTTP_MAX 599
#define UP_FAILURES (COUNTERS_UP_FAILURES - 1)
#define TOKEN_RESULTS COUNTERS_TOKEN_RESULTS
#define PROFILE_NAME_MAX 64

/* Upper bounds of the latency buckets, in microseconds. */
static const uint64_t bucket_us[COUNTERS_BUCKETS] = {
	1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000, 10000000, 30000000, 60000000,
};

struct hist {
	uint64_t buckets[COUNTERS_BUCKETS + 1]; /* per bucket (not cumulative); last: +Inf */
	uint64_t count;
	uint64_t sum_us;
};

struct snap_row {
	uint16_t http;
	uint8_t case_code;
	uint64_t n;
};

struct token_row {
	char name[PROFILE_NAME_MAX + 1];    /* "" when unused */
	uint64_t n[COUNTERS_TOKEN_KINDS][TOKEN_RESULTS];
};

static struct {
	uint64_t calls[SLOTS][CODES][OUTCOMES];
	struct hist latency[SLOTS];
	uint64_t http[HTTP_MAX - HTTP_MIN + 1];
	uint64_t http_other;
	uint64_t up_failures[UP_FAILURES + 1];
	uint64_t up_stale_retries;
	struct snap_row snap[COUNTERS_SNAP_MAX];
	unsigned nsnap;
	uint64_t snap_other;
	struct token_row tokens[COUNTERS_PROFILES_MAX + 1]; /* the last: "other" */
	uint64_t fleet_waits, fleet_wait_us, fleet_leases; /* the fleet's B2B token */
} m;

static const char *const up_failure_names[UP_FAILURES + 1] = {
	"-", "connect", "timeout", "io", "too_big", "internal", "cancelled",
};

static const char *const token_kind_names[COUNTERS_TOKEN_KINDS] = { "b2b", "open", "refresh" };
static const char *const token_result_names[TOKEN_RESULTS] = { "ok", "refused", "failed" };

void counters_reset(void)
{
	memset(&m, 0, sizeof(m));
}

/* ---- hooks --------------------------------------------------------------------------- */

void counters_call(int method_index, int code, int outcome, uint64_t duration_us)
{
	unsigned slot = method_index >= 0 && method_index < COUNTERS_METHODS_MAX ?
		(unsigned)method_index : SLOT_UNKNOWN;
	struct hist *h = &m.latency[slot];
	unsigned k = 0;

	if (code < 0 || code >= CODES)
		code = COUNTERS_CODE_UNKNOWN;
	if (outcome < 0 || outcome >= OUTCOMES)
		outcome = 0;
	m.calls[slot][code][outcome]++;
	while (k < COUNTERS_BUCKETS && duration_us > bucket_us[k])
		k++;
	h->buckets[k]++;
	h->count++;
	h->sum_us += duration_us;
}

void counters_upstream(unsigned failure, long http)
{
	if (failure != COUNTERS_UP_ANSWERED) {
		m.up_failures[failure <= UP_FAILURES ? failure : UP_FAILURES]++;
		return;
	}
	if (http >= HTTP_MIN && http <= HTTP_MAX)
		m.http[http - HTTP_MIN]++;
	else
		m.http_other++;
}

void counters_upstream_retry(void)
{
	m.up_stale_retries++;
}

void counters_snap_code(int http, int case_code)
{
	if (http < HTTP_MIN || http > HTTP_MAX || case_code < 0 || case_code > 99) {
		m.snap_other++;
		return;
	}
	for (unsigned i = 0; i < m.nsnap; i++)
		if (m.snap[i].http == http && m.snap[i].case_code == case_code) {
			m.snap[i].n++;
			return;
		}
	if (m.nsnap == COUNTERS_SNAP_MAX) {
		m.snap_other++;
		return;
	}
	m.snap[m.nsnap].http = (uint16_t)http;
	m.snap[m.nsnap].case_code = (uint8_t)case_code;
	m.snap[m.nsnap].n = 1;
	m.nsnap++;
}

void counters_token(const char *prof, enum counters_token_kind kind,
		    enum counters_token_result result)
{
	struct token_row *row = &m.tokens[COUNTERS_PROFILES_MAX];

	if ((unsigned)kind >= COUNTERS_TOKEN_KINDS || (unsigned)result >= TOKEN_RESULTS)
		return;
	if (prof != NULL && strlen(prof) <= PROFILE_NAME_MAX) {
		for (unsigned i = 0; i < COUNTERS_PROFILES_MAX; i++) {
			struct token_row *r = &m.tokens[i];

			if (r->name[0] == '\0') {
				memcpy(r->name, prof, strlen(prof) + 1);
				row = r;
				break;
			}
			if (strcmp(r->name, prof) == 0) {
				row = r;
				break;
			}
		}
	}
	row->n[kind][result]++;
}

void counters_fleet_wait(uint64_t duration_us)
{
	m.fleet_waits++;
	m.fleet_wait_us += duration_us;
}

void counters_fleet_lease(void)
{
	m.fleet_leases++;
}

/* ---- rendering ----------------------------------------------------------------------- */


#define PUT(...)                                                   \
	do {                                                       \
		if (rc == 0)                                       \
			rc = snap_buf_printf(out, __VA_ARGS__);    \
	} while (0)

static int family(snap_buf *out, const char *name, const char *type, const char *help)
{
	int rc = 0;

	PUT("# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
	return rc;
}

static const char *method_names[COUNTERS_METHODS_MAX];

void counters_name_method(unsigned index, const char *name)
{
	if (index < COUNTERS_METHODS_MAX)
		method_names[index] = name;
}

static const char *slot_name(unsigned slot)
{
	const char *name = slot < SLOT_UNKNOWN ? method_names[slot] : NULL;

	return name != NULL ? name : "unknown";
}

static const char *outcome_label(const counters_labels *l, int outcome)
{
	return outcome == 0 ? "UNSPECIFIED" : l->outcome_name(outcome);
}

static int render_calls(const counters_labels *l, snap_buf *out)
{
	int rc = family(out, "doku_bridge_calls_total", "counter",
			"Calls answered, by method, gRPC code and outcome.");

	for (unsigned s = 0; s < SLOTS; s++)
		for (int c = 0; c < CODES; c++)
			for (int o = 0; o < OUTCOMES; o++)
				if (m.calls[s][c][o] != 0)
					PUT("doku_bridge_calls_total{method=\"%s\",code=\"%s\",outcome=\"%s\"} %llu\n",
					    slot_name(s), l->code_name(c), outcome_label(l, o),
					    (unsigned long long)m.calls[s][c][o]);
	if (rc == 0)
		rc = family(out, "doku_bridge_call_duration_seconds", "histogram",
			    "Time from a call's frame to its reply, by method.");
	for (unsigned s = 0; s < SLOTS && rc == 0; s++) {
		const struct hist *h = &m.latency[s];
		uint64_t cum = 0;

		if (h->count == 0)
			continue;
		for (unsigned k = 0; k < COUNTERS_BUCKETS; k++) {
			cum += h->buckets[k];
			PUT("doku_bridge_call_duration_seconds_bucket{method=\"%s\",le=\"%g\"} %llu\n",
			    slot_name(s), (double)bucket_us[k] / 1e6, (unsigned long long)cum);
		}
		PUT("doku_bridge_call_duration_seconds_bucket{method=\"%s\",le=\"+Inf\"} %llu\n",
		    slot_name(s), (unsigned long long)h->count);
		PUT("doku_bridge_call_duration_seconds_sum{method=\"%s\"} %llu.%06llu\n", slot_name(s),
		    (unsigned long long)(h->sum_us / 1000000u), (unsigned long long)(h->sum_us % 1000000u));
		PUT("doku_bridge_call_duration_seconds_count{method=\"%s\"} %llu\n", slot_name(s),
		    (unsigned long long)h->count);
	}
	return rc;
}

static int render_upstream(snap_buf *out)
{
	int rc = family(out, "doku_bridge_upstream_responses_total", "counter",
			"HTTP answers from DOKU (calls and token requests), by HTTP status.");

	for (unsigned i = 0; i <= HTTP_MAX - HTTP_MIN; i++)
		if (m.http[i] != 0)
			PUT("doku_bridge_upstream_responses_total{http=\"%u\"} %llu\n", i + HTTP_MIN,
			    (unsigned long long)m.http[i]);
	if (m.http_other != 0)
		PUT("doku_bridge_upstream_responses_total{http=\"other\"} %llu\n",
		    (unsigned long long)m.http_other);
	if (rc == 0)
		rc = family(out, "doku_bridge_upstream_failures_total", "counter",
			    "HTTP exchanges with DOKU that got no answer, by reason.");
	for (unsigned i = 1; i <= UP_FAILURES; i++)
		if (m.up_failures[i] != 0)
			PUT("doku_bridge_upstream_failures_total{reason=\"%s\"} %llu\n", up_failure_names[i],
			    (unsigned long long)m.up_failures[i]);
	if (rc == 0)
		rc = family(out, "doku_bridge_upstream_retries_total", "counter",
			    "Requests sent again on a fresh connection, by reason.");
	PUT("doku_bridge_upstream_retries_total{reason=\"stale_connection\"} %llu\n",
	    (unsigned long long)m.up_stale_retries);
	if (rc == 0)
		rc = family(out, "doku_bridge_snap_responses_total", "counter",
			    "SNAP responseCodes of DOKU's answers to calls, by HTTP part and case code.");
	for (unsigned i = 0; i < m.nsnap; i++)
		PUT("doku_bridge_snap_responses_total{http=\"%u\",case=\"%02u\"} %llu\n",
		    (unsigned)m.snap[i].http, (unsigned)m.snap[i].case_code, (unsigned long long)m.snap[i].n);
	if (m.snap_other != 0)
		PUT("doku_bridge_snap_responses_total{http=\"other\",case=\"other\"} %llu\n",
		    (unsigned long long)m.snap_other);
	return rc;
}

static int render_tokens(snap_buf *out)
{
	int rc = family(out, "doku_bridge_token_requests_total", "counter",
			"Token requests to DOKU (B2B fetches, customer session opens and refreshes), by result.");

	for (unsigned i = 0; i <= COUNTERS_PROFILES_MAX; i++) {
		const struct token_row *r = &m.tokens[i];
		const char *name = i == COUNTERS_PROFILES_MAX ? "other" : r->name;

		for (unsigned k = 0; k < COUNTERS_TOKEN_KINDS; k++)
			for (unsigned x = 0; x < TOKEN_RESULTS; x++)
				if (r->n[k][x] != 0)
					PUT("doku_bridge_token_requests_total{profile=\"%s\",kind=\"%s\",result=\"%s\"} %llu\n",
					    name, token_kind_names[k], token_result_names[x],
					    (unsigned long long)r->n[k][x]);
	}
	return rc;
}

static int render_db(const counters_db *db, snap_buf *out)
{
	int rc = 0;

	if (!db->shared)
		return 0;
	PUT("# HELP doku_bridge_fleet_db_up Whether the fleet's PostgreSQL connection is up.\n"
	    "# TYPE doku_bridge_fleet_db_up gauge\n"
	    "doku_bridge_fleet_db_up %d\n"
	    "# HELP doku_bridge_fleet_db_round_trips_total Statements sent to the fleet's database.\n"
	    "# TYPE doku_bridge_fleet_db_round_trips_total counter\n"
	    "doku_bridge_fleet_db_round_trips_total %llu\n"
	    "# HELP doku_bridge_fleet_db_round_trip_seconds_total Time spent in those round trips.\n"
	    "# TYPE doku_bridge_fleet_db_round_trip_seconds_total counter\n"
	    "doku_bridge_fleet_db_round_trip_seconds_total %.6f\n"
	    "# HELP doku_bridge_fleet_db_round_trip_max_seconds The longest round trip.\n"
	    "# TYPE doku_bridge_fleet_db_round_trip_max_seconds gauge\n"
	    "doku_bridge_fleet_db_round_trip_max_seconds %.6f\n",
	    db->connected ? 1 : 0, (unsigned long long)db->round_trips,
	    (double)db->rtt_us_sum / 1e6, (double)db->rtt_us_max / 1e6);
	PUT("# HELP doku_bridge_fleet_db_errors_total Requests the fleet's database failed.\n"
	    "# TYPE doku_bridge_fleet_db_errors_total counter\n"
	    "doku_bridge_fleet_db_errors_total %llu\n"
	    "# HELP doku_bridge_fleet_db_reconnects_total Connections made again after a loss.\n"
	    "# TYPE doku_bridge_fleet_db_reconnects_total counter\n"
	    "doku_bridge_fleet_db_reconnects_total %llu\n"
	    "# HELP doku_bridge_fleet_lease_held B2B token leases this daemon holds.\n"
	    "# TYPE doku_bridge_fleet_lease_held gauge\n"
	    "doku_bridge_fleet_lease_held %u\n"
	    "# HELP doku_bridge_fleet_leases_total B2B token leases this daemon took (a token request each).\n"
	    "# TYPE doku_bridge_fleet_leases_total counter\n"
	    "doku_bridge_fleet_leases_total %llu\n",
	    (unsigned long long)db->errors, (unsigned long long)db->reconnects, db->leases_held,
	    (unsigned long long)m.fleet_leases);
	PUT("# HELP doku_bridge_fleet_token_waits_total Waits for the B2B token another daemon fetched.\n"
	    "# TYPE doku_bridge_fleet_token_waits_total counter\n"
	    "doku_bridge_fleet_token_waits_total %llu\n"
	    "# HELP doku_bridge_fleet_token_wait_seconds_total Time spent in those waits.\n"
	    "# TYPE doku_bridge_fleet_token_wait_seconds_total counter\n"
	    "doku_bridge_fleet_token_wait_seconds_total %.6f\n"
	    "# HELP doku_bridge_fleet_rows_claimed_total Journal rows claimed for reconciliation.\n"
	    "# TYPE doku_bridge_fleet_rows_claimed_total counter\n"
	    "doku_bridge_fleet_rows_claimed_total %llu\n"
	    "# HELP doku_bridge_fleet_orphans_adopted_total PENDING rows of dead daemons made UNKNOWN.\n"
	    "# TYPE doku_bridge_fleet_orphans_adopted_total counter\n"
	    "doku_bridge_fleet_orphans_adopted_total %llu\n",
	    (unsigned long long)m.fleet_waits, (double)m.fleet_wait_us / 1e6,
	    (unsigned long long)db->rows_claimed, (unsigned long long)db->orphans_adopted);
	return rc;
}

int counters_render(const counters_gauges *g, const counters_labels *l, snap_buf *out)
{
	int rc = 0;

	PUT("# HELP doku_bridge_build_info The daemon's version.\n"
	    "# TYPE doku_bridge_build_info gauge\n"
	    "doku_bridge_build_info{version=\"%s\"} 1\n", DOKU_VERSION);
	PUT("# HELP doku_bridge_uptime_seconds Seconds since the daemon started.\n"
	    "# TYPE doku_bridge_uptime_seconds gauge\n"
	    "doku_bridge_uptime_seconds %llu\n", (unsigned long long)g->uptime_s);
	PUT("# HELP doku_bridge_connections Caller connections open.\n"
	    "# TYPE doku_bridge_connections gauge\n"
	    "doku_bridge_connections %u\n", g->connections);
	PUT("# HELP doku_bridge_connections_accepted_total Caller connections accepted.\n"
	    "# TYPE doku_bridge_connections_accepted_total counter\n"
	    "doku_bridge_connections_accepted_total %llu\n", (unsigned long long)g->accepted);
	PUT("# HELP doku_bridge_connections_refused_total Caller connections closed at once (max_connections).\n"
	    "# TYPE doku_bridge_connections_refused_total counter\n"
	    "doku_bridge_connections_refused_total %llu\n", (unsigned long long)g->refused);
	PUT("# HELP doku_bridge_calls_in_flight Callers' calls being served (detached ones included; not the reconciler's queries).\n"
	    "# TYPE doku_bridge_calls_in_flight gauge\n"
	    "doku_bridge_calls_in_flight %u\n", g->calls_in_flight);
	if (rc == 0)
		rc = render_calls(l, out);
	if (rc == 0)
		rc = render_upstream(out);
	if (rc == 0)
		rc = render_tokens(out);
	if (rc == 0)
		rc = render_db(&g->db, out);
	return rc;
}
