/* The strict checks of one SNAP request, in DOKU's order. */
#include "checks.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "doku/wallet/v1/wallet.pb-c.h"
#include "snap_err.h"
#include "snap_extid.h"
#include "snap_json.h"
#include "snap_sign.h"
#include "snap_time.h"

#define BEARER "Bearer "
#define JSON_TYPE "application/json"
#define WALK_DEPTH_MAX 8
#define MSG_OK_TOKEN "Successful"
#define MSG_OK_SERVICE "Request has been processed successfully"

void sim_exchange_init(sim_exchange *ex)
{
	memset(ex, 0, sizeof(*ex));
	snap_arena_init(&ex->arena, SIM_ARENA_LIMIT);
	snap_buf_init(&ex->answer, &ex->arena, SIM_ANSWER_MAX);
}

void sim_exchange_free(sim_exchange *ex)
{
	snap_buf_free(&ex->answer);
	snap_arena_free(&ex->arena);
}

static void copy_trunc(char *dst, size_t dstsz, const char *src, size_t len)
{
	if (len >= dstsz)
		len = dstsz - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

/* Set the code and status of an answer (without writing its body). */
static void set_outcome(sim_exchange *ex, int http, int case_code, enum sim_verdict verdict)
{
	snap_code code;
	int service = ex->ep != NULL ? ex->ep->service_code : 0;

	ex->http = http;
	ex->verdict = verdict;
	if (snap_code_make(http, service, case_code, &code) == 0)
		memcpy(ex->code, code.text, sizeof(ex->code));
	else
		snprintf(ex->code, sizeof(ex->code), "5000001");
}

/* The bare minimum when even encoding fails (out of memory). */
static void answer_fallback(sim_exchange *ex)
{
	static const char body[] = "{\"responseCode\":\"5000001\",\"responseMessage\":\"Internal Server Error\"}";

	ex->http = 500;
	snprintf(ex->code, sizeof(ex->code), "5000001");
	ex->verdict = SIM_V_INTERNAL;
	snap_buf_clear(&ex->answer);
	if (snap_buf_append(&ex->answer, body, sizeof(body) - 1) != 0)
		ex->answer.len = 0;
}

void sim_snap_error(sim_exchange *ex, int http, int case_code, enum sim_verdict verdict,
		    const char *fmt, ...)
{
	Doku__Wallet__V1__ErrorResponse err = DOKU__WALLET__V1__ERROR_RESPONSE__INIT;
	char message[SIM_MESSAGE_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	set_outcome(ex, http, case_code, verdict);
	err.response_code = ex->code;
	err.response_message = message;
	snap_buf_clear(&ex->answer);
	if (snap_json_encode(&err.base, 0, &ex->answer) != 0)
		answer_fallback(ex);
}

static void set_detail(sim_exchange *ex, const char *text)
{
	copy_trunc(ex->detail, sizeof(ex->detail), text, strlen(text));
}

/* ---- headers ------------------------------------------------------------ */

/* The header's value, or NULL. Values over SIM_HEADER_MAX are reported as
 * ill-formed by the callers through *too_long. */
static const char *header(sim_exchange *ex, const char *name)
{
	return ex->header(ex->header_ctx, name);
}

/* Missing -> 400xx02, present -> the value. */
static const char *need_header(sim_exchange *ex, const char *name)
{
	const char *v = header(ex, name);

	if (v == NULL || v[0] == '\0') {
		sim_snap_error(ex, 400, 2, SIM_V_MISSING_HEADER, "Invalid Mandatory Field {%s}", name);
		set_detail(ex, name);
		return NULL;
	}
	if (strlen(v) > SIM_HEADER_MAX) {
		sim_snap_error(ex, 400, 1, SIM_V_BAD_HEADER, "Invalid Field Format {%s}", name);
		set_detail(ex, name);
		return NULL;
	}
	return v;
}

static void bad_header(sim_exchange *ex, const char *name)
{
	sim_snap_error(ex, 400, 1, SIM_V_BAD_HEADER, "Invalid Field Format {%s}", name);
	set_detail(ex, name);
}

static bool content_type_ok(const char *v)
{
	size_t n = strlen(JSON_TYPE);

	while (*v == ' ')
		v++;
	if (strncasecmp(v, JSON_TYPE, n) != 0)
		return false;
	v += n;
	while (*v == ' ')
		v++;
	return *v == '\0' || *v == ';';
}

/* "Bearer <token>": the token, or NULL. */
static const char *bearer_token(const char *v)
{
	size_t n = strlen(BEARER);

	if (strncasecmp(v, BEARER, n) != 0 || v[n] == '\0')
		return NULL;
	for (const char *p = v + n; *p != '\0'; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
			return NULL;
	return v + n;
}

struct common_headers {
	const char *timestamp;
	const char *signature;
	time_t when;
};

/* Content-Type, X-TIMESTAMP and X-SIGNATURE: false when refused. */
static bool check_common_headers(sim_exchange *ex, struct common_headers *h)
{
	const char *ct = need_header(ex, "Content-Type");

	if (ct == NULL)
		return false;
	if (!content_type_ok(ct)) {
		bad_header(ex, "Content-Type");
		return false;
	}
	h->timestamp = need_header(ex, "X-TIMESTAMP");
	if (h->timestamp == NULL)
		return false;
	if (snap_time_parse(h->timestamp, strlen(h->timestamp), &h->when) != 0) {
		bad_header(ex, "X-TIMESTAMP");
		return false;
	}
	h->signature = need_header(ex, "X-SIGNATURE");
	return h->signature != NULL;
}

/* X-TIMESTAMP within the skew window of the real clock. */
static bool check_fresh(sim_exchange *ex, world *w, time_t when)
{
	long skew = world_clock_skew(w);
	time_t now = time(NULL);
	long long diff = (long long)now - (long long)when;

	if (diff > skew || -diff > skew) {
		sim_snap_error(ex, 401, 0, SIM_V_STALE_TIMESTAMP,
			       "Unauthorized. X-TIMESTAMP is %lld s away from the server's clock (at most %ld)",
			       diff < 0 ? -diff : diff, skew);
		set_detail(ex, "X-TIMESTAMP");
		return false;
	}
	return true;
}

static sim_partner *find_partner(sim_exchange *ex, sim_config *config, const char *id,
				 const char *header_name)
{
	sim_partner *p = sim_config_partner(config, id, strlen(id));

	copy_trunc(ex->client_id, sizeof(ex->client_id), id, strlen(id));
	if (p == NULL) {
		sim_snap_error(ex, 401, 0, SIM_V_UNKNOWN_CLIENT, "Unauthorized. Unknown %s",
			       header_name);
		set_detail(ex, header_name);
	}
	return p;
}

/* ---- body --------------------------------------------------------------- */

/* The first string field longer than SIM_FIELD_MAX, as a JSON path in field. */
static bool fields_too_long(const ProtobufCMessage *msg, char *field, size_t fieldsz, int depth)
{
	const ProtobufCMessageDescriptor *d = msg->descriptor;
	char name[SNAP_JSON_NAME_MAX];

	if (depth > WALK_DEPTH_MAX)
		return false;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *p = (const char *)msg + f->offset;
		size_t count = 1;

		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			count = *(const size_t *)((const char *)msg + f->quantifier_offset);
			p = *(const char *const *)p;
		}
		for (size_t k = 0; k < count; k++) {
			const void *item = f->label == PROTOBUF_C_LABEL_REPEATED ?
				(const void *)(p + k * sizeof(void *)) : (const void *)p;

			if (f->type == PROTOBUF_C_TYPE_STRING) {
				const char *s = *(const char *const *)item;

				if (s != NULL && strlen(s) > SIM_FIELD_MAX) {
					if (snap_json_field_name(f, name, sizeof(name)) != 0)
						name[0] = '\0';
					snprintf(field, fieldsz, "%s", name);
					return true;
				}
			} else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
				const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)item;

				if (sub != NULL && fields_too_long(sub, field, fieldsz, depth + 1))
					return true;
			}
		}
	}
	return false;
}

static const char *string_field(const ProtobufCMessage *msg, const char *name)
{
	const ProtobufCFieldDescriptor *f =
		protobuf_c_message_descriptor_get_field_by_name(msg->descriptor, name);

	if (f == NULL || f->type != PROTOBUF_C_TYPE_STRING || f->label == PROTOBUF_C_LABEL_REPEATED)
		return NULL;
	return *(char *const *)((const char *)msg + f->offset);
}

/* partnerReferenceNo (or the original one) of a decoded request, for the log. */
static void note_partner_ref(sim_exchange *ex, const ProtobufCMessage *msg)
{
	const char *ref = string_field(msg, "partner_reference_no");

	if (ref == NULL || ref[0] == '\0')
		ref = string_field(msg, "original_partner_reference_no");
	if (ref != NULL)
		copy_trunc(ex->partner_ref, sizeof(ex->partner_ref), ref, strlen(ref));
}

struct decoded {
	ProtobufCMessage *msg;       /* NULL when the body is not JSON of the message */
	char json_err[SNAP_JSON_ERR_MAX];
	int validate_rc;             /* snap_validate's result */
	char field[SNAP_FIELD_PATH_MAX];
	bool too_long;               /* a string over SIM_FIELD_MAX, named in field */
};

/* Decode and validate the body (no lock needed); the outcome is reported
 * later, at its place in the order of checks. */
static void decode_body(sim_exchange *ex, struct decoded *d)
{
	int rc;

	memset(d, 0, sizeof(*d));
	rc = snap_json_decode(ex->ep->request, ex->body, ex->body_len, 0, &ex->arena, &d->msg,
			      d->json_err, sizeof(d->json_err));
	if (rc != 0) {
		d->msg = NULL;
		if (d->json_err[0] == '\0')
			snprintf(d->json_err, sizeof(d->json_err), "%s", snap_strerror(rc));
		return;
	}
	note_partner_ref(ex, d->msg);
	d->validate_rc = snap_validate(ex->ep, d->msg, d->field);
	if (d->validate_rc == 0)
		d->too_long = fields_too_long(d->msg, d->field, sizeof(d->field), 0);
}

/* Report a decode / validation failure; false when there is one. */
static bool body_ok(sim_exchange *ex, const struct decoded *d)
{
	if (d->msg == NULL) {
		sim_snap_error(ex, 400, 0, SIM_V_BAD_JSON, "Bad Request. %s", d->json_err);
		set_detail(ex, d->json_err);
		return false;
	}
	return true;
}

static bool fields_ok(sim_exchange *ex, const struct decoded *d)
{
	if (d->validate_rc == SNAP_ERR_MISSING) {
		sim_snap_error(ex, 400, 2, SIM_V_MISSING_FIELD, "Invalid Mandatory Field {%s}", d->field);
		set_detail(ex, d->field);
		return false;
	}
	if (d->validate_rc != 0 || d->too_long) {
		sim_snap_error(ex, 400, 1, SIM_V_BAD_FIELD, "Invalid Field Format {%s}", d->field);
		set_detail(ex, d->field);
		return false;
	}
	return true;
}

/* ---- the operation ------------------------------------------------------ */

static void set_string_field(ProtobufCMessage *msg, const char *name, char *value)
{
	const ProtobufCFieldDescriptor *f =
		protobuf_c_message_descriptor_get_field_by_name(msg->descriptor, name);

	if (f != NULL && f->type == PROTOBUF_C_TYPE_STRING && f->label != PROTOBUF_C_LABEL_REPEATED)
		*(char **)((char *)msg + f->offset) = value;
}

/* Run the world's operation (lock held) and turn its outcome into an answer
 * (the success body is encoded later, outside the lock). */
static bool run_operation(sim_exchange *ex, world *w, world_call *call)
{
	int rc = world_run(w, call);

	if (rc == SIM_ERR_REFUSED) {
		sim_snap_error(ex, call->refusal.http, call->refusal.case_code,
			       call->refusal.http == 400 ? SIM_V_BAD_FIELD : SIM_V_REFUSED, "%s",
			       call->refusal.message);
		set_detail(ex, call->refusal.message);
		return false;
	}
	if (rc == SIM_ERR_FULL) {
		sim_snap_error(ex, 429, 0, SIM_V_FULL,
			       "Too Many Requests. The simulator's world is full: reset it");
		return false;
	}
	if (rc != 0 || call->resp == NULL) {
		sim_snap_error(ex, 500, 1, SIM_V_INTERNAL, "Internal Server Error");
		return false;
	}
	return true;
}

static void encode_success(sim_exchange *ex, ProtobufCMessage *resp)
{
	set_outcome(ex, 200, 0, SIM_V_OK);
	set_string_field(resp, "response_code", ex->code);
	set_string_field(resp, "response_message",
			 (char *)(ex->ep->auth == SNAP_AUTH_TOKEN ? MSG_OK_TOKEN : MSG_OK_SERVICE));
	snap_buf_clear(&ex->answer);
	if (snap_json_encode(resp, 0, &ex->answer) != 0)
		answer_fallback(ex);
}

static void handle_token(sim_config *config, world *w, sim_exchange *ex)
{
	struct common_headers h;
	struct decoded d;
	world_call call;
	const char *client;
	sim_partner *p;
	bool ok;

	if (!check_common_headers(ex, &h))
		return;
	client = need_header(ex, "X-CLIENT-KEY");
	if (client == NULL)
		return;
	if (!check_fresh(ex, w, h.when))
		return;
	p = find_partner(ex, config, client, "X-CLIENT-KEY");
	if (p == NULL)
		return;
	if (sim_partner_verify_token(p, h.timestamp, h.signature, strlen(h.signature)) != 0) {
		sim_snap_error(ex, 401, 0, SIM_V_BAD_TOKEN_SIGNATURE, "Unauthorized. Invalid signature");
		set_detail(ex, "X-SIGNATURE");
		return;
	}
	decode_body(ex, &d);
	if (!body_ok(ex, &d) || !fields_ok(ex, &d))
		return;
	memset(&call, 0, sizeof(call));
	call.ep = ex->ep;
	call.partner = p;
	call.session = -1;
	call.req = d.msg;
	call.external_id = "";
	call.arena = &ex->arena;
	world_lock(w);
	ok = run_operation(ex, w, &call);
	world_unlock(w);
	if (ok)
		encode_success(ex, call.resp);
}

static void handle_service(sim_config *config, world *w, sim_exchange *ex)
{
	bool customer = ex->ep->auth == SNAP_AUTH_B2B_CUSTOMER;
	const char *partner_id, *ext_id, *auth, *b2b_token, *cust_token = NULL;
	struct common_headers h;
	struct decoded d;
	world_call call;
	const char *dup_field = NULL;
	sim_partner *p;
	bool ok = false;
	int rc;

	/* 1. headers present and well formed */
	if (!check_common_headers(ex, &h))
		return;
	partner_id = need_header(ex, "X-PARTNER-ID");
	if (partner_id == NULL)
		return;
	ext_id = need_header(ex, "X-EXTERNAL-ID");
	if (ext_id == NULL)
		return;
	if (!snap_extid_valid(ext_id, strlen(ext_id))) {
		bad_header(ex, "X-EXTERNAL-ID");
		return;
	}
	auth = need_header(ex, "Authorization");
	if (auth == NULL)
		return;
	b2b_token = bearer_token(auth);
	if (b2b_token == NULL) {
		bad_header(ex, "Authorization");
		return;
	}
	if (customer) {
		const char *v = need_header(ex, "Authorization-Customer");

		if (v == NULL)
			return;
		cust_token = bearer_token(v);
		if (cust_token == NULL) {
			bad_header(ex, "Authorization-Customer");
			return;
		}
	}
	/* 2. X-TIMESTAMP fresh */
	if (!check_fresh(ex, w, h.when))
		return;
	/* 3. the partner */
	p = find_partner(ex, config, partner_id, "X-PARTNER-ID");
	if (p == NULL)
		return;
	/* 4. the HMAC signature over the exact bytes received */
	if (snap_verify_service(p->secret, p->secret_len, "POST", ex->ep->path, b2b_token, ex->body,
				ex->body_len, h.timestamp, h.signature, strlen(h.signature)) != 0) {
		sim_snap_error(ex, 401, 0, SIM_V_BAD_SIGNATURE, "Unauthorized. Invalid signature");
		set_detail(ex, "X-SIGNATURE");
		return;
	}
	decode_body(ex, &d);
	memset(&call, 0, sizeof(call));
	world_lock(w);
	/* 5. the B2B token: only the newest one, sliding expiry */
	if (!world_b2b_check(w, p, b2b_token, strlen(b2b_token))) {
		sim_snap_error(ex, 401, 1, SIM_V_B2B_TOKEN, "Invalid Token (B2B)");
		goto out;
	}
	/* 6. the customer token */
	call.session = -1;
	if (customer) {
		call.session = world_customer_check(w, p, cust_token, strlen(cust_token));
		if (call.session < 0) {
			sim_snap_error(ex, 401, 2, SIM_V_CUSTOMER_TOKEN, "Invalid Customer Token");
			goto out;
		}
	}
	/* 7. X-EXTERNAL-ID unique per client per day */
	rc = world_extid_claim(w, p, ext_id, strlen(ext_id));
	if (rc == SIM_ERR_EXISTS) {
		sim_snap_error(ex, 409, 0, SIM_V_DUPLICATE_EXTERNAL_ID, "Conflict");
		set_detail(ex, "X-EXTERNAL-ID");
		goto out;
	}
	if (rc != 0) {
		sim_snap_error(ex, 429, 0, SIM_V_FULL,
			       "Too Many Requests. Too many X-EXTERNAL-IDs today: reset the simulator");
		goto out;
	}
	/* 8. the body, its idempotency key, its fields */
	if (!body_ok(ex, &d))
		goto out;
	if (world_duplicate(w, p, ex->ep, d.msg, &dup_field)) {
		sim_snap_error(ex, 409, 1, SIM_V_DUPLICATE_REFERENCE, "Duplicate %s", dup_field);
		set_detail(ex, dup_field);
		goto out;
	}
	if (!fields_ok(ex, &d))
		goto out;
	/* 9. the world */
	call.ep = ex->ep;
	call.partner = p;
	call.req = d.msg;
	call.external_id = ext_id;
	call.arena = &ex->arena;
	ok = run_operation(ex, w, &call);
out:
	world_unlock(w);
	if (ok)
		encode_success(ex, call.resp);
}

void sim_snap_handle(sim_config *config, world *w, sim_exchange *ex)
{
	ex->http = 0;
	if (ex->ep->auth == SNAP_AUTH_TOKEN)
		handle_token(config, w, ex);
	else
		handle_service(config, w, ex);
}

void sim_snap_describe(sim_exchange *ex)
{
	const char *id = header(ex, ex->ep != NULL && ex->ep->auth == SNAP_AUTH_TOKEN ?
				"X-CLIENT-KEY" : "X-PARTNER-ID");
	ProtobufCMessage *msg = NULL;

	if (id != NULL)
		copy_trunc(ex->client_id, sizeof(ex->client_id), id, strlen(id));
	if (ex->ep == NULL || ex->body == NULL || ex->body_len == 0)
		return;
	if (snap_json_decode(ex->ep->request, ex->body, ex->body_len, 0, &ex->arena, &msg, NULL,
			     0) == 0 && msg != NULL)
		note_partner_ref(ex, msg);
}

void sim_snap_fault_before(sim_config *config, world *w, sim_exchange *ex,
			   enum sim_fault_kind kind)
{
	const char *id = header(ex, ex->ep != NULL && ex->ep->auth == SNAP_AUTH_TOKEN ?
				"X-CLIENT-KEY" : "X-PARTNER-ID");
	const char *cust = header(ex, "Authorization-Customer");
	sim_partner *p;

	if (id == NULL || (p = sim_config_partner(config, id, strlen(id))) == NULL)
		return;
	world_lock(w);
	if (kind == SIM_FAULT_REVOKE_B2B) {
		world_revoke_b2b(w, p);
	} else if ((kind == SIM_FAULT_EXPIRE_CUSTOMER || kind == SIM_FAULT_REVOKE_CUSTOMER) &&
		   cust != NULL && bearer_token(cust) != NULL) {
		const char *t = bearer_token(cust);

		world_fault_customer(w, p, t, strlen(t), kind == SIM_FAULT_REVOKE_CUSTOMER);
	}
	world_unlock(w);
}
