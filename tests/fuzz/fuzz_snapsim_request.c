/* libFuzzer: doku-snapsim's handling of SNAP requests (checks.c): headers,
 * X-TIMESTAMP, client, signatures, tokens, X-EXTERNAL-ID, body, required
 * fields and formats, then the world's operation and the answer.
 *
 * sim_snap_handle has no I/O, so the harness plays server.c's part
 * (req_process) with an in-memory header table instead of libmicrohttpd.
 *
 * Input: up to REQS_MAX requests, separated by a line "===", run in order
 * against one world. Each request is:
 *   byte 0  low 5 bits: the endpoint (modulo snap_endpoint_count); high 3
 *           bits: a fault acted before it (FAULTS[], sim_snap_fault_before)
 *   byte 1  FIX_* bits: headers the harness makes right instead of taking
 *           them from the input (so that a request can get past the clock
 *           and the signatures to the checks behind them)
 *   then "Name: value" header lines, an empty line, and the body.
 * With FIX_VARS, "@ACCOUNT@", "@LINK@", "@PHONE@" and "@REFRESH@" in the
 * body become the values of the session the harness opened, "@NOW@" and
 * "@HOURAGO@" timestamps.
 *
 * Before each input the world is reset and, through sim_snap_handle itself,
 * given a B2B token, an active account bound to the partner, a customer
 * session and a top-up (setup() below); a step that fails aborts, so the
 * harness cannot silently stop reaching the world. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "checks.h"
#include "config.h"
#include "fuzz.h"
#include "snap_err.h"
#include "snap_sign.h"
#include "snap_time.h"
#include "world.h"

#ifndef DOKU_VECTORS_DIR
#error "DOKU_VECTORS_DIR: the directory of doku_sdk_test_priv.pem and doku_sdk_test_pub.pem"
#endif

#define REQS_MAX 4
#define HEADERS_MAX 32
#define SEPARATOR "\n===\n"
#define CLIENT_ID "BRN-FUZZ-0000000000001"
#define SECRET "fuzz-client-secret"
#define PHONE "081234567890"
#define PIN "123456"
#define VALUE_MAX 256

enum {
	FIX_CONTENT_TYPE = 1u << 0,
	FIX_TIMESTAMP = 1u << 1,
	FIX_CLIENT = 1u << 2,    /* X-CLIENT-KEY and X-PARTNER-ID */
	FIX_EXTERNAL_ID = 1u << 3,
	FIX_AUTH = 1u << 4,      /* Authorization: the B2B token */
	FIX_CUSTOMER = 1u << 5,  /* Authorization-Customer: the customer token */
	FIX_SIGNATURE = 1u << 6,
	FIX_VARS = 1u << 7,
	FIX_ALL = 0xffu,
};

static const enum sim_fault_kind FAULTS[8] = {
	SIM_FAULT_NONE, SIM_FAULT_NONE, SIM_FAULT_NONE, SIM_FAULT_NONE, SIM_FAULT_NONE,
	SIM_FAULT_REVOKE_B2B, SIM_FAULT_EXPIRE_CUSTOMER, SIM_FAULT_REVOKE_CUSTOMER,
};

static sim_config config;
static world *w;
static bool verbose; /* DOKU_FUZZ_VERBOSE=1: print every answer (to check seeds) */
static snap_rsa *partner_key; /* the partner's private key, for token signatures */

/* The session opened by setup(). */
static struct {
	char b2b[VALUE_MAX], customer[VALUE_MAX], refresh[VALUE_MAX];
	char account[VALUE_MAX], link[VALUE_MAX];
	char now[SNAP_TIMESTAMP_LEN + 1], hour_ago[SNAP_TIMESTAMP_LEN + 1];
} s;

/* One request as the server hands it to checks.c. */
struct request {
	unsigned fix;
	unsigned seq;                       /* for X-EXTERNAL-ID */
	const snap_endpoint *ep;
	const char *body;
	size_t body_len;
	const char *names[HEADERS_MAX], *values[HEADERS_MAX];
	unsigned nheaders;
	/* the fixed values */
	char timestamp[SNAP_TIMESTAMP_LEN + 1];
	char external_id[24];
	char auth[VALUE_MAX + 8], customer[VALUE_MAX + 8];
	char signature[SNAP_RSA_SIG_B64_MAX];
};

static const char *input_header(const struct request *r, const char *name)
{
	for (unsigned i = 0; i < r->nheaders; i++)
		if (strcasecmp(r->names[i], name) == 0)
			return r->values[i];
	return NULL;
}

/* checks.c's view of the headers: the fixed ones, else the input's. */
static const char *header(void *ctx, const char *name)
{
	struct request *r = ctx;
	bool token_ep = r->ep->auth == SNAP_AUTH_TOKEN;

	if ((r->fix & FIX_CONTENT_TYPE) && strcasecmp(name, "Content-Type") == 0)
		return "application/json";
	if ((r->fix & FIX_TIMESTAMP) && strcasecmp(name, "X-TIMESTAMP") == 0)
		return r->timestamp;
	if ((r->fix & FIX_CLIENT) &&
	    strcasecmp(name, token_ep ? "X-CLIENT-KEY" : "X-PARTNER-ID") == 0)
		return CLIENT_ID;
	if ((r->fix & FIX_EXTERNAL_ID) && strcasecmp(name, "X-EXTERNAL-ID") == 0)
		return r->external_id;
	if ((r->fix & FIX_AUTH) && strcasecmp(name, "Authorization") == 0)
		return r->auth;
	if ((r->fix & FIX_CUSTOMER) && strcasecmp(name, "Authorization-Customer") == 0)
		return r->customer;
	if ((r->fix & FIX_SIGNATURE) && strcasecmp(name, "X-SIGNATURE") == 0)
		return r->signature;
	return input_header(r, name);
}

/* The token signature of CLIENT_ID|ts; RSA is slow, so one per timestamp. */
static const char *token_signature(const char *ts)
{
	static char cached_ts[SNAP_TIMESTAMP_LEN + 1], sig[SNAP_RSA_SIG_B64_MAX];

	if (strcmp(ts, cached_ts) != 0) {
		if (snap_sign_token(partner_key, CLIENT_ID, ts, sig, sizeof(sig)) != 0)
			abort();
		snprintf(cached_ts, sizeof(cached_ts), "%s", ts);
	}
	return sig;
}

static void fix_headers(struct request *r)
{
	const char *ts, *auth;

	if (snap_time_format(time(NULL), r->timestamp) != 0)
		abort();
	snprintf(r->external_id, sizeof(r->external_id), "%u", 90000000u + r->seq);
	snprintf(r->auth, sizeof(r->auth), "Bearer %s", s.b2b);
	snprintf(r->customer, sizeof(r->customer), "Bearer %s", s.customer);
	if (!(r->fix & FIX_SIGNATURE))
		return;
	/* sign what checks.c will see, whichever headers are fixed */
	r->fix &= ~(unsigned)FIX_SIGNATURE;
	ts = header(r, "X-TIMESTAMP");
	auth = header(r, "Authorization");
	r->fix |= FIX_SIGNATURE;
	if (ts == NULL)
		ts = "";
	if (r->ep->auth == SNAP_AUTH_TOKEN) {
		/* only a fresh timestamp gets that far: sign no other */
		snprintf(r->signature, sizeof(r->signature), "%s",
			 strcmp(ts, r->timestamp) == 0 ? token_signature(ts) : "");
		return;
	}
	if (auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0)
		auth += 7;
	if (snap_sign_service(SECRET, strlen(SECRET), "POST", r->ep->path, auth != NULL ? auth : "",
			      r->body, r->body_len, ts, r->signature) != 0)
		r->signature[0] = '\0';
}

/* X-TIMESTAMP as given: what parses formats (as Jakarta time) and parses back the same. */
static void check_timestamp(const char *v)
{
	char text[SNAP_TIMESTAMP_LEN + 1];
	time_t t, again;

	if (v == NULL || snap_time_parse(v, strlen(v), &t) != 0 || snap_time_format(t, text) != 0)
		return;
	FUZZ_CHECK(snap_time_parse(text, strlen(text), &again) == 0 && again == t,
		   "%s -> %s does not read back", v, text);
}

/* Run r the way server.c's req_process does; the answer stays in ex. */
static void handle(struct request *r, enum sim_fault_kind fault, sim_exchange *ex)
{
	sim_exchange early;

	fix_headers(r);
	check_timestamp(input_header(r, "X-TIMESTAMP"));
	sim_exchange_init(ex);
	ex->ep = r->ep;
	ex->body = r->body;
	ex->body_len = r->body_len;
	ex->header = header;
	ex->header_ctx = r;
	if (fault != SIM_FAULT_NONE)
		sim_snap_fault_before(&config, w, ex, fault);
	sim_snap_handle(&config, w, ex);
	if (verbose)
		fprintf(stderr, "%s -> %d %.*s\n", r->ep->name, ex->http, (int)ex->answer.len,
			ex->answer.data);
	FUZZ_CHECK(ex->http >= 200 && ex->http < 600, "HTTP status %d", ex->http);
	FUZZ_CHECK(strlen(ex->code) == SNAP_CODE_LEN, "responseCode \"%s\"", ex->code);
	FUZZ_CHECK(ex->answer.len > 0 && ex->answer.data[0] == '{', "no JSON answer");

	/* what a request answered early (404, 405, 413) or by a fault goes through */
	sim_exchange_init(&early);
	early.ep = r->ep;
	early.body = r->body;
	early.body_len = r->body_len;
	early.header = header;
	early.header_ctx = r;
	sim_snap_describe(&early);
	sim_exchange_free(&early);
}

/* ---- the session of every input ---------------------------------------------- */

/* A string at a dotted path of the JSON answer into out; aborts when absent. */
static void answer_field(const sim_exchange *ex, const char *path, char *out, size_t outsz)
{
	char key[64];
	json_t *root = json_loadb(ex->answer.data, ex->answer.len, 0, NULL), *v = root;
	const char *p = path;

	while (v != NULL && *p != '\0') {
		size_t n = strcspn(p, ".");

		snprintf(key, sizeof(key), "%.*s", (int)n, p);
		v = json_object_get(v, key);
		p += n + (p[n] == '.');
	}
	if (!json_is_string(v)) {
		fprintf(stderr, "setup: no %s in %.*s\n", path, (int)ex->answer.len, ex->answer.data);
		abort();
	}
	snprintf(out, outsz, "%s", json_string_value(v));
	json_decref(root);
}

static unsigned setup_seq;

/* One setup request with every header fixed; must answer 200. */
static void call(const char *endpoint, const char *body, sim_exchange *ex)
{
	struct request r = { .fix = FIX_ALL, .seq = 1000u + setup_seq++, .body = body,
			     .body_len = strlen(body) };

	r.ep = snap_endpoint_by_name(endpoint);
	if (r.ep == NULL)
		abort();
	handle(&r, SIM_FAULT_NONE, ex);
	if (ex->http != 200) {
		fprintf(stderr, "setup: %s answered %d %.*s\n", endpoint, ex->http,
			(int)ex->answer.len, ex->answer.data);
		abort();
	}
}

static void setup(void)
{
	char body[1024], ref[VALUE_MAX], otp[32], token[VALUE_MAX], auth_code[VALUE_MAX];
	char err[128];
	sim_exchange ex;
	json_t *j = NULL;

	world_ctl_reset(w);
	memset(&s, 0, sizeof(s));
	setup_seq = 0;
	call("AccessTokenB2B", "{\"grantType\":\"client_credentials\"}", &ex);
	answer_field(&ex, "accessToken", s.b2b, sizeof(s.b2b));
	sim_exchange_free(&ex);

	call("CreateAccount",
	     "{\"partnerReferenceNo\":\"fz-reg\",\"name\":\"Siti Rahayu\",\"phoneNo\":\"" PHONE "\","
	     "\"email\":\"siti@example.com\",\"redirectUrl\":\"https://merchant.example/pin\"}", &ex);
	answer_field(&ex, "referenceNo", ref, sizeof(ref));
	sim_exchange_free(&ex);
	j = world_ctl_otps(w, PHONE);
	if (!json_is_string(json_object_get(json_array_get(j, 0), "otp")))
		abort();
	snprintf(otp, sizeof(otp), "%s", json_string_value(json_object_get(json_array_get(j, 0), "otp")));
	json_decref(j);
	snprintf(body, sizeof(body),
		 "{\"originalPartnerReferenceNo\":\"fz-reg\",\"originalReferenceNo\":\"%s\",\"otp\":\"%s\"}",
		 ref, otp);
	call("VerifyOtp", body, &ex);
	answer_field(&ex, "qparams.token", token, sizeof(token));
	sim_exchange_free(&ex);
	if (world_ctl_set_pin(w, NULL, token, PIN, &j, err, sizeof(err)) != 0) {
		fprintf(stderr, "setup: PIN: %s\n", err);
		abort();
	}
	snprintf(s.account, sizeof(s.account), "%s", json_string_value(json_object_get(j, "accountId")));
	json_decref(j);

	/* bindings are approved at once (auto_approve_bindings) */
	snprintf(body, sizeof(body),
		 "{\"partnerReferenceNo\":\"fz-bind\",\"redirectUrl\":\"https://merchant.example/bound\","
		 "\"successParams\":{\"accountId\":\"%s\"}}", s.account);
	call("BindAccount", body, &ex);
	answer_field(&ex, "linkId", s.link, sizeof(s.link));
	answer_field(&ex, "additionalInfo.authCode", auth_code, sizeof(auth_code));
	sim_exchange_free(&ex);
	snprintf(body, sizeof(body), "{\"grantType\":\"authorization_code\",\"authCode\":\"%s\"}",
		 auth_code);
	call("AccessTokenB2B2C", body, &ex);
	answer_field(&ex, "accessToken", s.customer, sizeof(s.customer));
	answer_field(&ex, "refreshToken", s.refresh, sizeof(s.refresh));
	sim_exchange_free(&ex);

	snprintf(body, sizeof(body),
		 "{\"partnerReferenceNo\":\"fz-topup\",\"customerNumber\":\"%s\",\"amount\":"
		 "{\"value\":\"1000000.00\",\"currency\":\"IDR\"},\"sessionId\":\"fz-session\","
		 "\"notes\":\"fuzz top up\"}", s.account);
	call("TopUp", body, &ex);
	sim_exchange_free(&ex);
	if (snap_time_format(time(NULL), s.now) != 0 ||
	    snap_time_format(time(NULL) - 3600, s.hour_ago) != 0)
		abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char dir[] = "/tmp/doku-fuzz-snapsim-XXXXXX", secret_file[64], err[SIM_CONFIG_ERR_MAX];
	static char pem[SNAP_PEM_MAX];
	size_t len;
	FILE *f;

	(void)argc;
	(void)argv;
	verbose = getenv("DOKU_FUZZ_VERBOSE") != NULL;
	/* the partner: a secret file (removed at once) and the test key pair */
	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(secret_file, sizeof(secret_file), "%s/secret", dir);
	f = fopen(secret_file, "w");
	if (f == NULL || fputs(SECRET, f) < 0 || fclose(f) != 0)
		abort();
	sim_config_init(&config);
	config.settings.auto_approve_bindings = true;
	config.settings.auto_approve_purchases = true;
	if (sim_config_add_partner(&config, CLIENT_ID, secret_file,
				   DOKU_VECTORS_DIR "/doku_sdk_test_pub.pem", err, sizeof(err)) != 0) {
		fprintf(stderr, "partner: %s\n", err);
		abort();
	}
	unlink(secret_file);
	rmdir(dir);
	f = fopen(DOKU_VECTORS_DIR "/doku_sdk_test_priv.pem", "r");
	if (f == NULL)
		abort();
	len = fread(pem, 1, sizeof(pem), f);
	fclose(f);
	if (snap_rsa_load_private_pem(pem, len, &partner_key) != 0)
		abort();
	if (world_new(&config, 42, &w) != 0)
		abort();
	world_set_base_url(w, "https://127.0.0.1:8443");
	return 0;
}

/* ---- one input ------------------------------------------------------------------ */

/* body with the session's values in place of @NAME@ (FIX_VARS), in out. */
static size_t substitute(const char *body, size_t len, char *out, size_t outsz)
{
	const struct { const char *name, *value; } vars[] = {
		{ "@ACCOUNT@", s.account }, { "@LINK@", s.link },
		{ "@PHONE@", PHONE }, { "@REFRESH@", s.refresh },
		{ "@NOW@", s.now }, { "@HOURAGO@", s.hour_ago },
	};
	size_t n = 0;

	for (size_t i = 0; i < len;) {
		const char *value = NULL;
		size_t vlen = 1, skip = 1;

		for (size_t k = 0; k < sizeof(vars) / sizeof(vars[0]) && body[i] == '@'; k++) {
			size_t nlen = strlen(vars[k].name);

			if (len - i >= nlen && memcmp(body + i, vars[k].name, nlen) == 0) {
				value = vars[k].value;
				vlen = strlen(value);
				skip = nlen;
			}
		}
		if (n + vlen > outsz)
			break;
		memcpy(out + n, value != NULL ? value : body + i, vlen);
		n += vlen;
		i += skip;
	}
	return n;
}

/* Split "Name: value" lines (up to an empty line) into r; text is modified. */
static char *parse_headers(struct request *r, char *text, char *end)
{
	while (text < end) {
		char *nl = memchr(text, '\n', (size_t)(end - text));
		char *line_end = nl != NULL ? nl : end, *colon, *v, *e;

		if (line_end == text)
			return nl != NULL ? nl + 1 : end;
		*line_end = '\0';
		colon = strchr(text, ':');
		if (colon != NULL && r->nheaders < HEADERS_MAX) {
			*colon = '\0';
			for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
				;
			for (e = v + strlen(v); e > v && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'); e--)
				;
			*e = '\0';
			r->names[r->nheaders] = text;
			r->values[r->nheaders++] = v;
		}
		text = nl != NULL ? nl + 1 : end;
	}
	return end;
}

static void one_request(char *text, size_t len, unsigned seq)
{
	struct request r = { .seq = seq };
	static char buf[2 * SIM_BODY_MAX];
	sim_exchange ex;
	char *start, *body;

	if (len < 2)
		return;
	r.ep = &snap_endpoints[((unsigned char)text[0] & 0x1fu) % snap_endpoint_count];
	r.fix = (unsigned char)text[1];
	start = parse_headers(&r, text + 2, text + len);
	r.body_len = (size_t)(text + len - start);
	if (r.fix & FIX_VARS) {
		r.body_len = substitute(start, r.body_len, buf, sizeof(buf));
		start = buf;
	}
	if (r.body_len > SIM_BODY_MAX)
		return; /* server.c answers 413 without reading it */
	/* a buffer of the body's exact size, so that ASan sees any overread */
	body = malloc(r.body_len > 0 ? r.body_len : 1);
	if (body == NULL)
		return;
	memcpy(body, start, r.body_len);
	r.body = body;
	handle(&r, FAULTS[(unsigned char)text[0] >> 5], &ex);
	sim_exchange_free(&ex);
	free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size + 1), *p, *end;
	unsigned n = 0;

	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	setup();
	for (p = copy, end = copy + size; p < end && n < REQS_MAX; n++) {
		char *sep = memmem(p, (size_t)(end - p), SEPARATOR, strlen(SEPARATOR));
		char *stop = sep != NULL ? sep : end;

		one_request(p, (size_t)(stop - p), n);
		p = sep != NULL ? sep + strlen(SEPARATOR) : end;
	}
	free(copy);
	return 0;
}
