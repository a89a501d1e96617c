/* Fixed-size counters and their Prometheus text. */
#include "metrics.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "bridge.h"
#include "doku/bridge/v1/bridge.pb-c.h"
#include "list.h"
#include "log.h"
#include "methods.h"
#include "outcome.h"
#include "server.h"
#include "snap_err.h"
#include "tokens.h"
#include "upstream.h"

#ifndef DOKU_VERSION
#define DOKU_VERSION "0.0.0"
#endif

#define SLOTS (METHODS_MAX + 1)       /* method rows, then "unknown" */
#define SLOT_UNKNOWN METHODS_MAX
#define CODES 17                      /* gRPC codes OK .. UNAUTHENTICATED */
#define OUTCOMES 4                    /* UNSPECIFIED, DONE, NOT_DONE, UNKNOWN */
#define HTTP_MIN 100
#define HTTP_MAX 599
#define UP_FAILURES 6                 /* -enum up_status, 1 .. 6 */
#define TOKEN_RESULTS 3               /* ok, refused, failed */
#define PROFILE_NAME_MAX 64

/* Upper bounds of the latency buckets, in microseconds. */
static const uint64_t bucket_us[METRICS_BUCKETS] = {
	1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000, 10000000, 30000000, 60000000,
};

struct hist {
	uint64_t buckets[METRICS_BUCKETS + 1]; /* per bucket (not cumulative); last: +Inf */
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
	uint64_t n[METRICS_TOKEN_KINDS][TOKEN_RESULTS];
};

static struct {
	uint64_t calls[SLOTS][CODES][OUTCOMES];
	struct hist latency[SLOTS];
	uint64_t http[HTTP_MAX - HTTP_MIN + 1];
	uint64_t http_other;
	uint64_t up_failures[UP_FAILURES + 1];
	uint64_t up_stale_retries;
	struct snap_row snap[METRICS_SNAP_MAX];
	unsigned nsnap;
	uint64_t snap_other;
	struct token_row tokens[METRICS_PROFILES_MAX + 1]; /* the last: "other" */
} m;

static const char *const up_failure_names[UP_FAILURES + 1] = {
	"-", "connect", "timeout", "io", "too_big", "internal", "cancelled",
};

static const char *const token_kind_names[METRICS_TOKEN_KINDS] = { "b2b", "open", "refresh" };
static const char *const token_result_names[TOKEN_RESULTS] = { "ok", "refused", "failed" };

void metrics_reset(void)
{
	memset(&m, 0, sizeof(m));
}

/* ---- hooks --------------------------------------------------------------------------- */

void metrics_call(int method_index, int code, int outcome, uint64_t duration_us)
{
	unsigned slot = method_index >= 0 && method_index < METHODS_MAX ? (unsigned)method_index
									  : SLOT_UNKNOWN;
	struct hist *h = &m.latency[slot];
	unsigned k = 0;

	if (code < 0 || code >= CODES)
		code = DOKU__BRIDGE__V1__CODE__UNKNOWN;
	if (outcome < 0 || outcome >= OUTCOMES)
		outcome = 0;
	m.calls[slot][code][outcome]++;
	while (k < METRICS_BUCKETS && duration_us > bucket_us[k])
		k++;
	h->buckets[k]++;
	h->count++;
	h->sum_us += duration_us;
}

void metrics_upstream(int status, long http)
{
	if (status != UP_OK) {
		unsigned f = status < 0 && -status <= UP_FAILURES ? (unsigned)-status : UP_FAILURES;

		m.up_failures[f]++;
		return;
	}
	if (http >= HTTP_MIN && http <= HTTP_MAX)
		m.http[http - HTTP_MIN]++;
	else
		m.http_other++;
}

void metrics_upstream_retry(void)
{
	m.up_stale_retries++;
}

void metrics_snap_code(int http, int case_code)
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
	if (m.nsnap == METRICS_SNAP_MAX) {
		m.snap_other++;
		return;
	}
	m.snap[m.nsnap].http = (uint16_t)http;
	m.snap[m.nsnap].case_code = (uint8_t)case_code;
	m.snap[m.nsnap].n = 1;
	m.nsnap++;
}

void metrics_token(const char *prof, enum metrics_token_kind kind, int status)
{
	struct token_row *row = &m.tokens[METRICS_PROFILES_MAX];
	unsigned result = status == 0 ? 0 : status == TOK_ERR_REFUSED ? 1 : 2;

	if ((unsigned)kind >= METRICS_TOKEN_KINDS)
		return;
	if (prof != NULL && strlen(prof) <= PROFILE_NAME_MAX) {
		for (unsigned i = 0; i < METRICS_PROFILES_MAX; i++) {
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

static const char *slot_name(unsigned slot)
{
	const method *me = slot < SLOT_UNKNOWN ? methods_at(slot) : NULL;

	return me != NULL ? me->name : "unknown";
}

static const char *outcome_label(int outcome)
{
	return outcome == 0 ? "UNSPECIFIED" : outcome_name(outcome);
}

static int render_calls(snap_buf *out)
{
	int rc = family(out, "doku_bridge_calls_total", "counter",
			"Calls answered, by method, gRPC code and outcome.");

	for (unsigned s = 0; s < SLOTS; s++)
		for (int c = 0; c < CODES; c++)
			for (int o = 0; o < OUTCOMES; o++)
				if (m.calls[s][c][o] != 0)
					PUT("doku_bridge_calls_total{method=\"%s\",code=\"%s\",outcome=\"%s\"} %llu\n",
					    slot_name(s), outcome_code_name(c), outcome_label(o),
					    (unsigned long long)m.calls[s][c][o]);
	if (rc == 0)
		rc = family(out, "doku_bridge_call_duration_seconds", "histogram",
			    "Time from a call's frame to its reply, by method.");
	for (unsigned s = 0; s < SLOTS && rc == 0; s++) {
		const struct hist *h = &m.latency[s];
		uint64_t cum = 0;

		if (h->count == 0)
			continue;
		for (unsigned k = 0; k < METRICS_BUCKETS; k++) {
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

	for (unsigned i = 0; i <= METRICS_PROFILES_MAX; i++) {
		const struct token_row *r = &m.tokens[i];
		const char *name = i == METRICS_PROFILES_MAX ? "other" : r->name;

		for (unsigned k = 0; k < METRICS_TOKEN_KINDS; k++)
			for (unsigned x = 0; x < TOKEN_RESULTS; x++)
				if (r->n[k][x] != 0)
					PUT("doku_bridge_token_requests_total{profile=\"%s\",kind=\"%s\",result=\"%s\"} %llu\n",
					    name, token_kind_names[k], token_result_names[x],
					    (unsigned long long)r->n[k][x]);
	}
	return rc;
}

int metrics_render(const struct bridge *b, unsigned own_calls, snap_buf *out)
{
	const server *s = b->srv;
	unsigned in_flight = b->calls_in_flight > own_calls ? b->calls_in_flight - own_calls : 0;
	int rc = 0;

	PUT("# HELP doku_bridge_build_info The daemon's version.\n"
	    "# TYPE doku_bridge_build_info gauge\n"
	    "doku_bridge_build_info{version=\"%s\"} 1\n", DOKU_VERSION);
	PUT("# HELP doku_bridge_uptime_seconds Seconds since the daemon started.\n"
	    "# TYPE doku_bridge_uptime_seconds gauge\n"
	    "doku_bridge_uptime_seconds %llu\n",
	    (unsigned long long)((uv_now(b->loop) - b->started_ms) / 1000u));
	PUT("# HELP doku_bridge_connections Caller connections open.\n"
	    "# TYPE doku_bridge_connections gauge\n"
	    "doku_bridge_connections %u\n", server_connections(s));
	PUT("# HELP doku_bridge_connections_accepted_total Caller connections accepted.\n"
	    "# TYPE doku_bridge_connections_accepted_total counter\n"
	    "doku_bridge_connections_accepted_total %llu\n",
	    (unsigned long long)(s != NULL ? s->next_number : 0));
	PUT("# HELP doku_bridge_connections_refused_total Caller connections closed at once (max_connections).\n"
	    "# TYPE doku_bridge_connections_refused_total counter\n"
	    "doku_bridge_connections_refused_total %llu\n",
	    (unsigned long long)(s != NULL ? s->refused : 0));
	PUT("# HELP doku_bridge_calls_in_flight Calls being served (detached ones included).\n"
	    "# TYPE doku_bridge_calls_in_flight gauge\n"
	    "doku_bridge_calls_in_flight %u\n", in_flight);
	if (rc == 0)
		rc = render_calls(out);
	if (rc == 0)
		rc = render_upstream(out);
	if (rc == 0)
		rc = render_tokens(out);
	return rc;
}

/* ---- the HTTP endpoint ----------------------------------------------------------------- */

#define HTTP_HEAD_MAX 256

struct mh_conn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_write_t wreq;
	struct list_node node;      /* in mh.conns */
	char req[METRICS_HTTP_REQ_MAX];
	size_t len;
	char head[HTTP_HEAD_MAX];
	snap_buf body;
	unsigned handles;           /* not yet closed */
	bool closing;
};

static struct {
	struct bridge *b;
	uv_tcp_t listener;
	bool open;
	unsigned nconns;
	struct list_node conns;
} mh;

bool metrics_listen_valid(const char *addr, void *sa)
{
	struct sockaddr_storage ss;
	char host[METRICS_LISTEN_MAX];
	const char *colon = addr != NULL ? strrchr(addr, ':') : NULL;
	char *end;
	unsigned long port;
	size_t n;

	if (colon == NULL || strlen(addr) >= METRICS_LISTEN_MAX)
		return false;
	port = strtoul(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || port == 0 || port > 65535)
		return false;
	n = (size_t)(colon - addr);
	memset(&ss, 0, sizeof(ss));
	if (n > 2 && addr[0] == '[' && addr[n - 1] == ']') {
		memcpy(host, addr + 1, n - 2);
		host[n - 2] = '\0';
		if (uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)&ss) != 0 ||
		    !IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&ss)->sin6_addr))
			return false;
	} else {
		memcpy(host, addr, n);
		host[n] = '\0';
		if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)&ss) != 0 ||
		    (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) != 127)
			return false;
	}
	if (sa != NULL)
		memcpy(sa, &ss, sizeof(ss));
	return true;
}

static void mh_handle_closed(uv_handle_t *h)
{
	struct mh_conn *c = h->data;

	if (--c->handles > 0)
		return;
	snap_buf_free(&c->body);
	free(c);
}

static void mh_close(struct mh_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	list_del(&c->node);
	mh.nconns--;
	uv_timer_stop(&c->timer);
	uv_close((uv_handle_t *)&c->timer, mh_handle_closed);
	uv_close((uv_handle_t *)&c->tcp, mh_handle_closed);
}

static void mh_on_timeout(uv_timer_t *t)
{
	mh_close(t->data);
}

static void mh_on_written(uv_write_t *w, int status)
{
	(void)status;
	mh_close(w->data);
}

static void mh_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct mh_conn *c = h->data;

	(void)suggested;
	buf->base = c->req + c->len;
	buf->len = sizeof(c->req) - 1 - c->len;
}

/* Answer status with body (NULL: a one-line reason). */
static void mh_answer(struct mh_conn *c, int status, const char *reason, const char *extra)
{
	uv_buf_t bufs[2];
	const char *body = c->body.data != NULL ? c->body.data : reason;
	size_t blen = c->body.data != NULL ? c->body.len : strlen(reason);
	int n;

	uv_read_stop((uv_stream_t *)&c->tcp);
	n = snprintf(c->head, sizeof(c->head),
		     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%sConnection: close\r\n\r\n",
		     status, reason,
		     c->body.data != NULL ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain",
		     blen, extra);
	if (n < 0 || (size_t)n >= sizeof(c->head)) {
		mh_close(c);
		return;
	}
	bufs[0] = uv_buf_init(c->head, (unsigned)n);
	bufs[1] = uv_buf_init((char *)body, (unsigned)blen);
	c->wreq.data = c;
	if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, bufs, 2, mh_on_written) != 0)
		mh_close(c);
}

static void mh_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct mh_conn *c = s->data;
	char *eol;

	(void)buf;
	if (nread < 0) {
		mh_close(c);
		return;
	}
	c->len += (size_t)nread;
	c->req[c->len] = '\0';
	if (strstr(c->req, "\r\n\r\n") == NULL && strstr(c->req, "\n\n") == NULL) {
		if (c->len + 1 >= sizeof(c->req))
			mh_answer(c, 431, "Request Header Fields Too Large", "");
		return;
	}
	eol = strpbrk(c->req, "\r\n");
	*eol = '\0';
	if (strncmp(c->req, "GET ", 4) != 0) {
		mh_answer(c, 405, "Method Not Allowed", "Allow: GET\r\n");
		return;
	}
	if (strncmp(c->req + 4, "/metrics ", 9) != 0 && strncmp(c->req + 4, "/metrics?", 9) != 0) {
		mh_answer(c, 404, "Not Found", "");
		return;
	}
	snap_buf_init(&c->body, NULL, METRICS_TEXT_MAX);
	if (metrics_render(mh.b, 0, &c->body) != 0 || c->body.data == NULL) {
		snap_buf_free(&c->body);
		mh_answer(c, 500, "Internal Server Error", "");
		return;
	}
	mh_answer(c, 200, "OK", "");
}

static void mh_refused_closed(uv_handle_t *h)
{
	free(h);
}

static void mh_on_connection(uv_stream_t *l, int status)
{
	struct mh_conn *c;

	if (status < 0)
		return;
	if (mh.nconns >= METRICS_HTTP_CONNS_MAX) {
		uv_tcp_t *tmp = malloc(sizeof(*tmp));

		if (tmp == NULL || uv_tcp_init(l->loop, tmp) != 0) {
			free(tmp);
			return;
		}
		(void)uv_accept(l, (uv_stream_t *)tmp);
		uv_close((uv_handle_t *)tmp, mh_refused_closed);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return;
	snap_buf_init(&c->body, NULL, METRICS_TEXT_MAX);
	uv_tcp_init(l->loop, &c->tcp);
	uv_timer_init(l->loop, &c->timer);
	c->tcp.data = c;
	c->timer.data = c;
	c->handles = 2;
	list_add_tail(&mh.conns, &c->node);
	mh.nconns++;
	if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0 ||
	    uv_timer_start(&c->timer, mh_on_timeout, METRICS_HTTP_TIMEOUT_MS, 0) != 0 ||
	    uv_read_start((uv_stream_t *)&c->tcp, mh_alloc, mh_on_read) != 0)
		mh_close(c);
}

static void mh_listener_closed(uv_handle_t *h)
{
	(void)h;
}

int metrics_http_start(struct bridge *b, const char *addr)
{
	struct sockaddr_storage ss;
	int rc;

	if (mh.open || !metrics_listen_valid(addr, &ss))
		return -EINVAL;
	mh.b = b;
	list_init(&mh.conns);
	rc = uv_tcp_init(b->loop, &mh.listener);
	if (rc != 0)
		return rc;
	mh.open = true;
	rc = uv_tcp_bind(&mh.listener, (const struct sockaddr *)&ss, 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&mh.listener, METRICS_HTTP_CONNS_MAX, mh_on_connection);
	if (rc != 0) {
		log_msg(LOG_LVL_ERROR, "metrics_listen %s: %s", addr, uv_strerror(rc));
		metrics_http_stop();
		return rc;
	}
	log_msg(LOG_LVL_INFO, "metrics served on http://%s/metrics", addr);
	return 0;
}

void metrics_http_stop(void)
{
	if (!mh.open)
		return;
	mh.open = false;
	while (!list_empty(&mh.conns))
		mh_close(list_entry(mh.conns.next, struct mh_conn, node));
	uv_close((uv_handle_t *)&mh.listener, mh_listener_closed);
}
