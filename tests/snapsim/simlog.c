/* The request log ring and the counters. */
#include "simlog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snap_endpoint.h"
#include "snap_time.h"

#define LINE_MAX_BYTES 2048 /* one rendered entry at most */

static const char *const verdict_names[SIM_V_COUNT] = {
	[SIM_V_OK] = "ok",
	[SIM_V_METHOD] = "method_not_allowed",
	[SIM_V_NOT_FOUND] = "no_such_endpoint",
	[SIM_V_TOO_LARGE] = "body_too_large",
	[SIM_V_TOO_SLOW] = "body_too_slow",
	[SIM_V_MISSING_HEADER] = "missing_header",
	[SIM_V_BAD_HEADER] = "bad_header",
	[SIM_V_STALE_TIMESTAMP] = "stale_timestamp",
	[SIM_V_UNKNOWN_CLIENT] = "unknown_client",
	[SIM_V_BAD_TOKEN_SIGNATURE] = "bad_token_signature",
	[SIM_V_BAD_SIGNATURE] = "bad_signature",
	[SIM_V_B2B_TOKEN] = "invalid_b2b_token",
	[SIM_V_CUSTOMER_TOKEN] = "invalid_customer_token",
	[SIM_V_DUPLICATE_EXTERNAL_ID] = "duplicate_external_id",
	[SIM_V_BAD_JSON] = "bad_json",
	[SIM_V_DUPLICATE_REFERENCE] = "duplicate_partner_reference",
	[SIM_V_MISSING_FIELD] = "missing_field",
	[SIM_V_BAD_FIELD] = "bad_field",
	[SIM_V_REFUSED] = "refused",
	[SIM_V_FULL] = "world_full",
	[SIM_V_INTERNAL] = "internal_error",
	[SIM_V_FAULT] = "fault",
	[SIM_V_CLIENT_GONE] = "client_gone",
};

const char *sim_verdict_name(enum sim_verdict v)
{
	if ((int)v < 0 || v >= SIM_V_COUNT)
		return "unknown";
	return verdict_names[v];
}

int sim_log_init(sim_log *l, size_t capacity, bool echo)
{
	memset(l, 0, sizeof(*l));
	if (capacity == 0)
		return SIM_ERR_INVALID;
	/* calloc: pages are only touched as the ring fills */
	l->ring = calloc(capacity, sizeof(*l->ring));
	if (l->ring == NULL)
		return SIM_ERR_NOMEM;
	if (pthread_mutex_init(&l->lock, NULL) != 0) {
		free(l->ring);
		l->ring = NULL;
		return SIM_ERR_NOMEM;
	}
	l->capacity = capacity;
	l->next_seq = 1;
	l->echo = echo;
	return SIM_OK;
}

void sim_log_free(sim_log *l)
{
	if (l->ring == NULL)
		return;
	pthread_mutex_destroy(&l->lock);
	free(l->ring);
	l->ring = NULL;
}

/* Append s as the body of a JSON string: quotes, backslashes and control
 * characters escaped, bytes >= 0x80 as \u00XX so that any input gives valid JSON. */
static void put_escaped(char *out, size_t outsz, size_t *pos, const char *s)
{
	for (; *s != '\0' && *pos + 8 < outsz; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			out[(*pos)++] = '\\';
			out[(*pos)++] = (char)c;
		} else if (c < 0x20 || c >= 0x7f) {
			*pos += (size_t)snprintf(out + *pos, outsz - *pos, "\\u%04x", c);
		} else {
			out[(*pos)++] = (char)c;
		}
	}
	out[*pos] = '\0';
}

static void put_raw(char *out, size_t outsz, size_t *pos, const char *s)
{
	int n = snprintf(out + *pos, outsz - *pos, "%s", s);

	if (n > 0)
		*pos += (size_t)n < outsz - *pos ? (size_t)n : outsz - *pos - 1;
}

static void put_field(char *out, size_t outsz, size_t *pos, const char *name, const char *val)
{
	put_raw(out, outsz, pos, ",\"");
	put_raw(out, outsz, pos, name);
	put_raw(out, outsz, pos, "\":\"");
	put_escaped(out, outsz, pos, val);
	put_raw(out, outsz, pos, "\"");
}

/* One entry as a JSON line (with '\n') into out; returns its length. */
static size_t render_entry(const sim_log_entry *e, char out[LINE_MAX_BYTES])
{
	char ts[SNAP_TIMESTAMP_LEN + 1];
	char when[SNAP_TIMESTAMP_LEN + 8];
	char num[96];
	size_t pos = 0;
	time_t sec = (time_t)(e->time_ms / 1000);

	if (snap_time_format(sec, ts) != 0)
		snprintf(ts, sizeof(ts), "1970-01-01T07:00:00+07:00");
	/* "YYYY-MM-DDTHH:MM:SS" + ".mmm" + "+07:00" */
	snprintf(when, sizeof(when), "%.19s.%03d%s", ts, (int)(e->time_ms % 1000), ts + 19);
	snprintf(num, sizeof(num), "{\"seq\":%llu", (unsigned long long)e->seq);
	put_raw(out, LINE_MAX_BYTES, &pos, num);
	put_field(out, LINE_MAX_BYTES, &pos, "time", when);
	put_field(out, LINE_MAX_BYTES, &pos, "clientId", e->client_id);
	put_field(out, LINE_MAX_BYTES, &pos, "method", e->method);
	put_field(out, LINE_MAX_BYTES, &pos, "path", e->path);
	put_field(out, LINE_MAX_BYTES, &pos, "externalId", e->external_id);
	put_field(out, LINE_MAX_BYTES, &pos, "partnerReferenceNo", e->partner_ref);
	snprintf(num, sizeof(num), ",\"httpStatus\":%u", (unsigned)e->http);
	put_raw(out, LINE_MAX_BYTES, &pos, num);
	put_field(out, LINE_MAX_BYTES, &pos, "responseCode", e->code);
	put_field(out, LINE_MAX_BYTES, &pos, "verdict", sim_verdict_name((enum sim_verdict)e->verdict));
	put_field(out, LINE_MAX_BYTES, &pos, "detail", e->detail);
	put_field(out, LINE_MAX_BYTES, &pos, "fault", sim_fault_kind_name((enum sim_fault_kind)e->fault));
	snprintf(num, sizeof(num), ",\"faultAfterOperation\":%s,\"micros\":%u}\n",
		 e->fault_applied_op ? "true" : "false", (unsigned)e->micros);
	put_raw(out, LINE_MAX_BYTES, &pos, num);
	return pos;
}

void sim_log_add(sim_log *l, sim_log_entry *e, int endpoint)
{
	char line[LINE_MAX_BYTES];
	bool echo;

	pthread_mutex_lock(&l->lock);
	e->seq = l->next_seq++;
	l->ring[(e->seq - 1) % l->capacity] = *e;
	l->requests++;
	if (endpoint >= 0 && endpoint < SIM_LOG_ENDPOINTS_MAX)
		l->by_endpoint[endpoint]++;
	else
		l->by_endpoint[SIM_LOG_ENDPOINTS_MAX]++;
	if (e->http < SIM_LOG_STATUS_MAX)
		l->by_status[e->http]++;
	if (e->verdict < SIM_V_COUNT)
		l->by_verdict[e->verdict]++;
	if (e->fault != SIM_FAULT_NONE)
		l->faults++;
	echo = l->echo;
	pthread_mutex_unlock(&l->lock);
	if (echo) {
		size_t n = render_entry(e, line);

		fprintf(stderr, "doku-snapsim: %.*s", (int)n, line);
	}
}

static bool entry_selected(const sim_log_entry *e, const sim_log_filter *f)
{
	if (e->seq <= f->since)
		return false;
	if (f->path != NULL && strcmp(e->path, f->path) != 0)
		return false;
	if (f->client_id != NULL && strcmp(e->client_id, f->client_id) != 0)
		return false;
	if (f->verdict != NULL && strcmp(sim_verdict_name((enum sim_verdict)e->verdict), f->verdict) != 0)
		return false;
	if (f->http != 0 && e->http != f->http)
		return false;
	return true;
}

int sim_log_render(sim_log *l, const sim_log_filter *f, snap_buf *out)
{
	char line[LINE_MAX_BYTES];
	size_t limit = f->limit == 0 || f->limit > SIM_LOG_READ_MAX ? SIM_LOG_READ_MAX : f->limit;
	size_t emitted = 0;
	uint64_t first, last;
	int rc = SIM_OK;

	pthread_mutex_lock(&l->lock);
	last = l->next_seq; /* exclusive */
	first = last > l->capacity ? last - l->capacity : 1;
	if (f->since + 1 > first)
		first = f->since + 1;
	for (uint64_t seq = first; seq < last && emitted < limit; seq++) {
		const sim_log_entry *e = &l->ring[(seq - 1) % l->capacity];

		if (!entry_selected(e, f))
			continue;
		rc = snap_buf_append(out, line, render_entry(e, line));
		if (rc != 0)
			break;
		emitted++;
	}
	pthread_mutex_unlock(&l->lock);
	return rc;
}

void sim_log_connection(sim_log *l, enum sim_conn_event ev)
{
	pthread_mutex_lock(&l->lock);
	if (ev == SIM_CONN_OPENED) {
		l->conn_opened++;
	} else {
		l->conn_closed++;
		if (ev == SIM_CONN_IDLE_CLOSED)
			l->conn_idle_closed++;
	}
	pthread_mutex_unlock(&l->lock);
}

json_t *sim_log_counters(sim_log *l)
{
	json_t *root = json_object();
	json_t *eps = json_object();
	json_t *status = json_object();
	json_t *verdicts = json_object();
	json_t *conns = json_object();
	char key[16];

	if (root == NULL || eps == NULL || status == NULL || verdicts == NULL || conns == NULL)
		goto fail;
	pthread_mutex_lock(&l->lock);
	json_object_set_new(root, "requests", json_integer((json_int_t)l->requests));
	for (size_t i = 0; i < snap_endpoint_count && i < SIM_LOG_ENDPOINTS_MAX; i++)
		json_object_set_new(eps, snap_endpoints[i].path,
				    json_integer((json_int_t)l->by_endpoint[i]));
	json_object_set_new(eps, "other", json_integer((json_int_t)l->by_endpoint[SIM_LOG_ENDPOINTS_MAX]));
	for (int s = 0; s < SIM_LOG_STATUS_MAX; s++) {
		if (l->by_status[s] == 0)
			continue;
		snprintf(key, sizeof(key), "%d", s);
		json_object_set_new(status, key, json_integer((json_int_t)l->by_status[s]));
	}
	for (int v = 0; v < SIM_V_COUNT; v++)
		if (l->by_verdict[v] != 0)
			json_object_set_new(verdicts, verdict_names[v],
					    json_integer((json_int_t)l->by_verdict[v]));
	json_object_set_new(root, "faultsApplied", json_integer((json_int_t)l->faults));
	json_object_set_new(root, "logEntries",
			    json_integer((json_int_t)(l->next_seq - 1 < l->capacity ?
						      l->next_seq - 1 : l->capacity)));
	json_object_set_new(root, "lastSeq", json_integer((json_int_t)(l->next_seq - 1)));
	json_object_set_new(conns, "opened", json_integer((json_int_t)l->conn_opened));
	json_object_set_new(conns, "closed", json_integer((json_int_t)l->conn_closed));
	json_object_set_new(conns, "idleClosed", json_integer((json_int_t)l->conn_idle_closed));
	pthread_mutex_unlock(&l->lock);
	json_object_set_new(root, "byEndpoint", eps);
	json_object_set_new(root, "byStatus", status);
	json_object_set_new(root, "byVerdict", verdicts);
	json_object_set_new(root, "connections", conns);
	return root;
fail:
	json_decref(root);
	json_decref(eps);
	json_decref(status);
	json_decref(verdicts);
	json_decref(conns);
	return NULL;
}

void sim_log_reset(sim_log *l)
{
	pthread_mutex_lock(&l->lock);
	l->next_seq = 1; /* older entries are out of every seq range from now on */
	l->requests = 0;
	memset(l->by_endpoint, 0, sizeof(l->by_endpoint));
	memset(l->by_status, 0, sizeof(l->by_status));
	memset(l->by_verdict, 0, sizeof(l->by_verdict));
	l->faults = 0;
	pthread_mutex_unlock(&l->lock);
}
