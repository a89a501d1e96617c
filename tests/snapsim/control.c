/* The control API of doku-snapsim. */
#include "control.h"

#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"
#include "snap_buf.h"

#define ERR_TEXT_MAX 256
#define PREFIX "/control/"
#define LOG_OUT_MAX (64u * 1024u * 1024u) /* largest log answer */

struct ctl_req {
	snap_buf body;  /* malloc-backed, at most SIM_CONTROL_BODY_MAX */
	size_t seen;    /* body bytes received, kept or not */
	bool too_big;
};

/* One control answer: an HTTP status and a body (JSON unless ndjson). */
struct ctl_out {
	unsigned status;
	json_t *json;        /* owned */
	char *raw;           /* owned (malloc), used instead of json when set */
	size_t raw_len;
	const char *type;
};

static void out_json(struct ctl_out *o, unsigned status, json_t *json)
{
	o->status = json != NULL ? status : 500;
	o->json = json != NULL ? json : json_pack("{s:s}", "error", "out of memory");
}

static void out_error(struct ctl_out *o, unsigned status, const char *text)
{
	o->status = status;
	o->json = json_pack("{s:s}", "error", text);
}

/* The HTTP status of a negative code of the world. */
static unsigned status_of(int rc)
{
	switch (rc) {
	case SIM_ERR_INVALID:
		return 400;
	case SIM_ERR_NOT_FOUND:
		return 404;
	case SIM_ERR_EXISTS:
		return 409;
	case SIM_ERR_REFUSED:
		return 403;
	case SIM_ERR_FULL:
		return 507;
	default:
		return 500;
	}
}

static const char *arg(struct MHD_Connection *conn, const char *name)
{
	return MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);
}

/* A string member of obj, or NULL. */
static const char *member(const json_t *obj, const char *name)
{
	return json_string_value(json_object_get(obj, name));
}

static bool parse_ulong(const char *text, unsigned long long *out)
{
	char *end;

	if (text == NULL || *text < '0' || *text > '9')
		return false;
	errno = 0;
	*out = strtoull(text, &end, 10);
	return errno == 0 && *end == '\0';
}

/* ---- calls -------------------------------------------------------------- */

static void ctl_health(sim_app *app, struct ctl_out *o)
{
	out_json(o, 200, json_pack("{s:b,s:s,s:s,s:I}", "ok", 1, "https", app->https_addr,
				   "control", app->control_addr,
				   "partners", (json_int_t)app->config->partner_count));
}

static void ctl_settings(sim_app *app, const char *method, const json_t *in, struct ctl_out *o)
{
	char err[ERR_TEXT_MAX];
	int rc;

	if (strcmp(method, "POST") == 0) {
		rc = world_ctl_set_settings(app->world, in, err, sizeof(err));
		if (rc != 0) {
			out_error(o, status_of(rc), err);
			return;
		}
	}
	out_json(o, 200, world_ctl_settings(app->world));
}

static void ctl_clock(sim_app *app, const char *method, const json_t *in, struct ctl_out *o)
{
	char err[ERR_TEXT_MAX];
	json_t *adv;
	int rc;

	if (strcmp(method, "POST") == 0) {
		adv = json_object_get(in, "advanceSeconds");
		if (!json_is_integer(adv)) {
			out_error(o, 400, "advanceSeconds: an integer");
			return;
		}
		rc = world_ctl_advance_clock(app->world, (long)json_integer_value(adv), err,
					     sizeof(err));
		if (rc != 0) {
			out_error(o, status_of(rc), err);
			return;
		}
	}
	out_json(o, 200, world_ctl_clock(app->world));
}

static void ctl_pin(sim_app *app, const json_t *in, struct ctl_out *o)
{
	char err[ERR_TEXT_MAX];
	json_t *res = NULL;
	int rc = world_ctl_set_pin(app->world, member(in, "phoneNo"), member(in, "token"),
				   member(in, "pin"), &res, err, sizeof(err));

	if (rc != 0)
		out_error(o, status_of(rc), err);
	else
		out_json(o, 200, res);
}

static void ctl_binding(sim_app *app, const json_t *in, bool approve, struct ctl_out *o)
{
	char err[ERR_TEXT_MAX];
	json_t *res = NULL;
	int rc = world_ctl_decide_binding(app->world, member(in, "linkId"), member(in, "phoneNo"),
					  member(in, "pin"), approve, &res, err, sizeof(err));

	if (rc != 0)
		out_error(o, status_of(rc), err);
	else
		out_json(o, 200, res);
}

static void ctl_purchase(sim_app *app, const json_t *in, bool approve, struct ctl_out *o)
{
	char err[ERR_TEXT_MAX];
	json_t *res = NULL;
	int rc = world_ctl_decide_purchase(app->world, member(in, "clientId"),
					   member(in, "partnerReferenceNo"),
					   member(in, "referenceNo"), member(in, "pin"), approve,
					   &res, err, sizeof(err));

	if (rc != 0)
		out_error(o, status_of(rc), err);
	else
		out_json(o, 200, res);
}

static void ctl_tokens(sim_app *app, const json_t *in, struct ctl_out *o)
{
	char err[ERR_TEXT_MAX];
	long count = 0;
	int rc = world_ctl_tokens(app->world, member(in, "action"), member(in, "kind"),
				  member(in, "clientId"), &count, err, sizeof(err));

	if (rc != 0)
		out_error(o, status_of(rc), err);
	else
		out_json(o, 200, json_pack("{s:I}", "tokens", (json_int_t)count));
}

static json_t *fault_json(const sim_fault *f)
{
	return json_pack("{s:I,s:s,s:s,s:I,s:I,s:b,s:I}", "id", (json_int_t)f->id, "path", f->path,
			 "kind", sim_fault_kind_name(f->kind), "remaining", (json_int_t)f->remaining,
			 "delayMs", (json_int_t)f->delay_ms, "apply", f->apply,
			 "fired", (json_int_t)f->fired);
}

static void ctl_faults_list(sim_app *app, struct ctl_out *o)
{
	sim_fault items[SIM_FAULTS_MAX];
	size_t n = sim_faults_list(app->faults, items, SIM_FAULTS_MAX);
	json_t *list = json_array();

	for (size_t i = 0; list != NULL && i < n; i++)
		json_array_append_new(list, fault_json(&items[i]));
	out_json(o, 200, list);
}

static void ctl_faults_add(sim_app *app, const json_t *in, struct ctl_out *o)
{
	sim_fault f;
	const char *path = member(in, "path");
	const char *kind = member(in, "kind");
	json_t *count = json_object_get(in, "count");
	json_t *delay = json_object_get(in, "delayMs");
	json_t *apply = json_object_get(in, "apply");
	int rc;

	memset(&f, 0, sizeof(f));
	if (path == NULL)
		path = "*";
	if (strlen(path) > SIM_FAULT_PATH_MAX) {
		out_error(o, 400, "path: too long");
		return;
	}
	snprintf(f.path, sizeof(f.path), "%s", path);
	f.kind = sim_fault_kind_by_name(kind);
	if (f.kind == SIM_FAULT_NONE) {
		out_error(o, 400, "kind: delay, http500, http503, http504, inprogress, drop, "
				  "revoke_b2b, expire_customer or revoke_customer");
		return;
	}
	f.remaining = 1;
	if (count != NULL && !json_is_integer(count)) {
		out_error(o, 400, "count: an integer (-1: until cleared)");
		return;
	}
	if (count != NULL)
		f.remaining = (long)json_integer_value(count);
	if (delay != NULL && !json_is_integer(delay)) {
		out_error(o, 400, "delayMs: an integer");
		return;
	}
	if (delay != NULL)
		f.delay_ms = (long)json_integer_value(delay);
	if (apply != NULL && !json_is_boolean(apply)) {
		out_error(o, 400, "apply: true or false");
		return;
	}
	f.apply = apply != NULL && json_is_true(apply);
	if (f.kind == SIM_FAULT_DELAY && f.delay_ms == 0) {
		out_error(o, 400, "delayMs: a delay fault needs one");
		return;
	}
	rc = sim_faults_add(app->faults, &f);
	if (rc == SIM_ERR_FULL)
		out_error(o, 507, "too many faults armed");
	else if (rc != 0)
		out_error(o, 400, "count: -1 or more than 0; delayMs: 0..600000");
	else
		out_json(o, 201, fault_json(&f));
}

static void ctl_faults_delete(sim_app *app, const char *rest, struct ctl_out *o)
{
	unsigned long long id;

	if (rest[0] == '\0') {
		sim_faults_clear(app->faults);
		out_json(o, 200, json_pack("{s:b}", "cleared", 1));
		return;
	}
	if (!parse_ulong(rest, &id) || id > UINT32_MAX ||
	    sim_faults_remove(app->faults, (uint32_t)id) != 0) {
		out_error(o, 404, "no such fault");
		return;
	}
	out_json(o, 200, json_pack("{s:I}", "removed", (json_int_t)id));
}

static void ctl_log(sim_app *app, struct MHD_Connection *conn, struct ctl_out *o)
{
	sim_log_filter f;
	snap_buf buf;
	unsigned long long n;
	const char *v;

	memset(&f, 0, sizeof(f));
	if ((v = arg(conn, "since")) != NULL) {
		if (!parse_ulong(v, &n)) {
			out_error(o, 400, "since: a sequence number");
			return;
		}
		f.since = n;
	}
	if ((v = arg(conn, "limit")) != NULL) {
		if (!parse_ulong(v, &n) || n == 0) {
			out_error(o, 400, "limit: a positive number");
			return;
		}
		f.limit = n > SIM_LOG_READ_MAX ? SIM_LOG_READ_MAX : (size_t)n;
	}
	if ((v = arg(conn, "status")) != NULL) {
		if (!parse_ulong(v, &n) || n > 599) {
			out_error(o, 400, "status: an HTTP status");
			return;
		}
		f.http = (int)n;
	}
	f.path = arg(conn, "path");
	f.client_id = arg(conn, "clientId");
	f.verdict = arg(conn, "verdict");
	snap_buf_init(&buf, NULL, LOG_OUT_MAX);
	if (sim_log_render(app->log, &f, &buf) != 0) {
		snap_buf_free(&buf);
		out_error(o, 500, "out of memory");
		return;
	}
	o->status = 200;
	o->type = "application/x-ndjson";
	o->raw_len = buf.len;
	o->raw = malloc(buf.len + 1);
	if (o->raw == NULL) {
		snap_buf_free(&buf);
		out_error(o, 500, "out of memory");
		return;
	}
	if (buf.len > 0)
		memcpy(o->raw, buf.data, buf.len);
	snap_buf_free(&buf);
}

static void ctl_counters(sim_app *app, struct ctl_out *o)
{
	json_t *root = sim_log_counters(app->log);

	if (root != NULL)
		json_object_set_new(root, "tokens", world_ctl_counters(app->world));
	out_json(o, 200, root);
}

static void ctl_reset(sim_app *app, struct ctl_out *o)
{
	world_ctl_reset(app->world);
	sim_faults_clear(app->faults);
	sim_log_reset(app->log);
	out_json(o, 200, json_pack("{s:b}", "reset", 1));
}

/* Route one call. in is the parsed body (a JSON object; {} when empty). */
static void route(sim_app *app, struct MHD_Connection *conn, const char *method,
		  const char *url, const json_t *in, struct ctl_out *o)
{
	const char *call = url + strlen(PREFIX);
	bool get = strcmp(method, "GET") == 0;
	bool post = strcmp(method, "POST") == 0;
	bool del = strcmp(method, "DELETE") == 0;

	if (strncmp(url, PREFIX, strlen(PREFIX)) != 0) {
		out_error(o, 404, "no such control call");
	} else if (strcmp(call, "health") == 0 && get) {
		ctl_health(app, o);
	} else if (strcmp(call, "settings") == 0 && (get || post)) {
		ctl_settings(app, method, in, o);
	} else if (strcmp(call, "clock") == 0 && (get || post)) {
		ctl_clock(app, method, in, o);
	} else if (strcmp(call, "otps") == 0 && get) {
		out_json(o, 200, world_ctl_otps(app->world, arg(conn, "phoneNo")));
	} else if (strcmp(call, "pin") == 0 && post) {
		ctl_pin(app, in, o);
	} else if (strcmp(call, "accounts") == 0 && get) {
		out_json(o, 200, world_ctl_accounts(app->world));
	} else if (strcmp(call, "bindings") == 0 && get) {
		out_json(o, 200, world_ctl_bindings(app->world));
	} else if (strcmp(call, "bindings/approve") == 0 && post) {
		ctl_binding(app, in, true, o);
	} else if (strcmp(call, "bindings/reject") == 0 && post) {
		ctl_binding(app, in, false, o);
	} else if (strcmp(call, "transactions") == 0 && get) {
		out_json(o, 200, world_ctl_transactions(app->world, arg(conn, "type"),
							arg(conn, "status")));
	} else if (strcmp(call, "purchases/approve") == 0 && post) {
		ctl_purchase(app, in, true, o);
	} else if (strcmp(call, "purchases/reject") == 0 && post) {
		ctl_purchase(app, in, false, o);
	} else if (strcmp(call, "tokens") == 0 && post) {
		ctl_tokens(app, in, o);
	} else if (strcmp(call, "faults") == 0 && get) {
		ctl_faults_list(app, o);
	} else if (strcmp(call, "faults") == 0 && post) {
		ctl_faults_add(app, in, o);
	} else if (strcmp(call, "faults") == 0 && del) {
		ctl_faults_delete(app, "", o);
	} else if (strncmp(call, "faults/", 7) == 0 && del) {
		ctl_faults_delete(app, call + 7, o);
	} else if (strcmp(call, "log") == 0 && get) {
		ctl_log(app, conn, o);
	} else if (strcmp(call, "counters") == 0 && get) {
		ctl_counters(app, o);
	} else if (strcmp(call, "reset") == 0 && post) {
		ctl_reset(app, o);
	} else {
		out_error(o, get || post || del ? 404 : 405, "no such control call");
	}
}

static enum MHD_Result send_out(struct MHD_Connection *conn, struct ctl_out *o)
{
	struct MHD_Response *resp;
	enum MHD_Result ok;
	char *text = o->raw;
	size_t len = o->raw_len;

	if (text == NULL) {
		text = o->json != NULL ? json_dumps(o->json, JSON_COMPACT) : NULL;
		if (text == NULL) {
			json_decref(o->json);
			return MHD_NO;
		}
		len = strlen(text);
		o->type = "application/json";
	}
	json_decref(o->json);
	o->json = NULL;
	o->raw = NULL;
	resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, o->type);
	ok = MHD_queue_response(conn, o->status, resp);
	MHD_destroy_response(resp);
	return ok;
}

static bool peer_is_loopback(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	struct sockaddr_storage ss;

	if (ci == NULL || ci->client_addr == NULL)
		return false;
	memset(&ss, 0, sizeof(ss));
	memcpy(&ss, ci->client_addr,
	       ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
							  sizeof(struct sockaddr_in));
	return sim_addr_is_loopback(&ss);
}

enum MHD_Result sim_control_access(void *cls, struct MHD_Connection *conn, const char *url,
				   const char *method, const char *version,
				   const char *upload_data, size_t *upload_data_size,
				   void **con_cls)
{
	sim_app *app = cls;
	struct ctl_req *r = *con_cls;
	struct ctl_out o = { 0, NULL, NULL, 0, "application/json" };
	json_t *in = NULL;
	json_error_t jerr;

	(void)version;
	if (r == NULL) {
		r = calloc(1, sizeof(*r));
		if (r == NULL)
			return MHD_NO;
		snap_buf_init(&r->body, NULL, SIM_CONTROL_BODY_MAX);
		*con_cls = r;
		if (!peer_is_loopback(conn)) {
			out_error(&o, 403, "loopback only");
			return send_out(conn, &o);
		}
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		r->seen += *upload_data_size;
		if (r->seen > SIM_BODY_DISCARD_MAX)
			return MHD_NO; /* no answer can be queued mid-upload: close */
		if (!r->too_big && snap_buf_append(&r->body, upload_data, *upload_data_size) != 0)
			r->too_big = true;
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (r->too_big) {
		out_error(&o, 413, "body too large");
		return send_out(conn, &o);
	}
	if (r->body.len > 0) {
		in = json_loadb(r->body.data, r->body.len, 0, &jerr);
		if (!json_is_object(in)) {
			json_decref(in);
			out_error(&o, 400, "the body must be a JSON object");
			return send_out(conn, &o);
		}
	} else {
		in = json_object();
	}
	route(app, conn, method, url, in, &o);
	json_decref(in);
	return send_out(conn, &o);
}

void sim_control_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			   enum MHD_RequestTerminationCode toe)
{
	struct ctl_req *r = *con_cls;

	(void)cls;
	(void)conn;
	(void)toe;
	if (r == NULL)
		return;
	snap_buf_free(&r->body);
	free(r);
	*con_cls = NULL;
}
