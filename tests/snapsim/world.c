/* The simulated DOKU Wallet. */
#include "world.h"
#include "simmap.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doku/wallet/v1/wallet.pb-c.h"
#include "snap_json.h"
#include "snap_time.h"

/* Capacities of the world (a full world answers 429 until reset). */
#define ACCOUNTS_MAX 100000u
#define OTPS_MAX 200000u
#define BINDINGS_MAX 100000u
#define SESSIONS_MAX 200000u
#define TXNS_MAX 200000u        /* about 500 bytes each */
#define KEYS_MAX 4000000u
#define EXTIDS_PER_DAY_MAX 4000000u
#define CTL_LIST_MAX 10000u /* entries a control listing returns at most */

/* Field formats */
#define REF_MAX 64          /* partnerReferenceNo, partnerRefundNo, linkId ... */
#define NAME_LEN_MAX 128
#define EMAIL_LEN_MAX 128
#define PHONE_DIGITS_MIN 8
#define PHONE_DIGITS_MAX 15
#define URL_LEN_MAX 512
#define TEXT_LEN_MAX 256    /* notes, reason ... */
#define REMARK_MAX 128      /* remark kept with a transaction */
#define BANK_ACCOUNT_MIN 6
#define BANK_ACCOUNT_MAX 20
#define PAGE_SIZE_MAX 100
#define PAGE_NUMBER_MAX 100000
#define HISTORY_RANGE_MAX (31L * 24 * 3600)

/* Generated values */
#define TOKEN_LEN 64
#define AUTH_CODE_LEN 64
#define UUID_LEN 36
#define LINK_ID_LEN 24
#define ACCOUNT_ID_LEN 10
#define OTP_LEN 6
#define PIN_LEN 6
#define APPROVAL_LEN 6
#define BANK_REF_LEN 12
#define REF_ID_LEN 22
#define WEB_TOKEN_LEN 40
#define OTP_ATTEMPTS_MAX 3

/* Money, in cents of IDR */
#define MERCHANT_FLOAT_CENTS 100000000000LL /* 1,000,000,000.00 per partner at start */
#define TXN_AMOUNT_MAX_CENTS 1000000000LL   /* 10,000,000.00 per transaction */
#define BALANCE_MAX_CENTS 2000000000LL      /* 20,000,000.00 per account */

#define JAKARTA_OFFSET_S (7L * 3600)
#define DAY_S 86400L
#define NONE UINT32_MAX
#define KEY_MAX (24 + REF_MAX)
#define FMT_MAX 1024

#define DESC(n) doku__wallet__v1__##n##__descriptor

typedef Doku__Wallet__V1__Amount pb_amount;

static const char ALNUM[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
static const char B64CHARS[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char DIGITS[] = "0123456789";
static const char HEX[] = "0123456789abcdef";

/* ---- records ------------------------------------------------------------ */

enum account_state { ACC_OTP_PENDING, ACC_PIN_PENDING, ACC_ACTIVE };
static const char *const account_state_names[] = { "OTP_PENDING", "PIN_PENDING", "ACTIVE" };

struct account {
	enum account_state state;
	char account_id[ACCOUNT_ID_LEN + 1]; /* DOKU id, once active */
	char name[NAME_LEN_MAX + 1];
	char phone[PHONE_DIGITS_MAX + 1];
	char email[EMAIL_LEN_MAX + 1];
	char pin[PIN_LEN + 1];
	char pin_token[TOKEN_LEN + 1];       /* create-PIN web view token */
	uint32_t otp;                        /* the creation OTP in force */
	int64_t balance;
	time_t created;
};

enum otp_purpose { OTP_CREATION, OTP_UNBINDING };
enum otp_state { OTP_WAITING, OTP_USED, OTP_BLOCKED, OTP_SUPERSEDED };

struct otp {
	enum otp_purpose purpose;
	enum otp_state state;
	int partner;
	uint32_t account;
	uint32_t binding;                    /* OTP_UNBINDING */
	char partner_ref[REF_MAX + 1];
	char reference_no[UUID_LEN + 1];
	char code[OTP_LEN + 1];
	time_t expires;
	int failures;
};

enum binding_state { BIND_PENDING, BIND_ACTIVE, BIND_REJECTED, BIND_UNBINDING, BIND_UNBOUND };
static const char *const binding_state_names[] = { "PENDING", "ACTIVE", "REJECTED", "UNBINDING",
						   "UNBOUND" };

struct binding {
	enum binding_state state;
	int partner;
	uint32_t account;                    /* NONE until the customer is known */
	uint32_t unbind_otp;                 /* NONE, or the unbinding OTP in force */
	char link_id[LINK_ID_LEN + 1];
	char partner_ref[REF_MAX + 1];
	char reference_no[UUID_LEN + 1];
	char auth_code[AUTH_CODE_LEN + 1];   /* "" when none is outstanding */
	time_t created;
};

struct session {
	int partner;
	uint32_t binding;
	bool revoked;
	char access[TOKEN_LEN + 1];
	time_t access_expires;
	char refresh[TOKEN_LEN + 1];
	time_t refresh_expires;
};

enum txn_type { TXN_PAYMENT, TXN_TOPUP, TXN_SEND_MONEY, TXN_REFUND };
static const char *const txn_type_names[] = { "PAYMENT", "TOPUP", "SEND_MONEY", "REFUND" };
enum txn_status { TS_PENDING, TS_SUCCESS, TS_FAILED, TS_CANCELLED, TS_REFUNDED };
static const char *const txn_status_names[] = { "PENDING", "SUCCESS", "FAILED", "CANCELLED",
						 "REFUNDED" };
/* latestTransactionStatus of SNAP status inquiries */
static const char *const txn_status_codes[] = { "03", "00", "06", "05", "04" };

struct txn {
	enum txn_type type;
	enum txn_status status;
	int partner;
	uint32_t account;
	uint32_t original;                   /* TXN_REFUND: the payment */
	int64_t amount;
	int64_t refunded;                    /* TXN_PAYMENT: refunded so far */
	char partner_ref[REF_MAX + 1];       /* partnerReferenceNo (partnerRefundNo for refunds) */
	char reference_no[UUID_LEN + 1];
	char external_id[SIM_IDSET_DIGITS_MAX + 1];
	char approval_code[APPROVAL_LEN + 1];
	char ref_id[REF_ID_LEN + 1];
	char counterpart[REF_MAX + 1];       /* beneficiary account, top-up session id, refund no */
	char bank_code[8];
	char bank_ref[BANK_REF_LEN + 1];
	char remark[REMARK_MAX + 1];
	time_t created;
	time_t paid;
	time_t closed;                       /* cancelled or failed */
};

struct vec {
	void *items;
	size_t count, cap, max, size;
};

struct rng {
	uint64_t s[4];
};

struct b2b_state {
	char token[TOKEN_LEN + 1];           /* "" when none */
	time_t expires;
};

typedef int (*op_fn)(world *w, world_call *c);

struct op {
	const char *name;        /* snap_endpoint.name */
	op_fn run;
	const char *key_field;   /* proto name of the idempotency key, or NULL */
};

struct world {
	pthread_mutex_t lock;
	sim_config *config;
	sim_settings settings;
	atomic_long clock_skew;  /* copy of settings.clock_skew, read without the lock */
	atomic_long clock_offset;
	uint64_t seed;
	struct rng rng;
	char base_url[SIM_URL_MAX];
	const struct op *ops[SIM_ENDPOINTS_TABLE_MAX];
	struct b2b_state b2b[SIM_PARTNERS_MAX];
	int64_t merchant_balance[SIM_PARTNERS_MAX];
	struct vec accounts, otps, bindings, sessions, txns;
	sim_map keys;            /* "partner|service|reference" -> record */
	sim_map phones, account_ids, emails, links, auth_codes, access, refresh;
	sim_idset extids;
	long extid_day;
	uint64_t b2b_issued, b2b2c_issued, refreshed;
};

#define ACC(w, i) (&((struct account *)(w)->accounts.items)[i])
#define OTP(w, i) (&((struct otp *)(w)->otps.items)[i])
#define BND(w, i) (&((struct binding *)(w)->bindings.items)[i])
#define SES(w, i) (&((struct session *)(w)->sessions.items)[i])
#define TXN(w, i) (&((struct txn *)(w)->txns.items)[i])

/* ---- small tools -------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static void rng_seed(struct rng *r, uint64_t seed)
{
	uint64_t x = seed;

	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* xoshiro256** */
static uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

static uint64_t rng_below(struct rng *r, uint64_t n)
{
	uint64_t limit = UINT64_MAX - UINT64_MAX % n;
	uint64_t v;

	do
		v = rng_next(r);
	while (v >= limit);
	return v % n;
}

/* n characters of alphabet into out, NUL-terminated. */
static void rng_text(struct rng *r, char *out, size_t n, const char *alphabet)
{
	size_t k = strlen(alphabet);

	for (size_t i = 0; i < n; i++)
		out[i] = alphabet[rng_below(r, k)];
	out[n] = '\0';
}

static void rng_uuid(struct rng *r, char out[UUID_LEN + 1])
{
	size_t j = 0;

	for (size_t i = 0; i < 32; i++) {
		if (i == 8 || i == 12 || i == 16 || i == 20)
			out[j++] = '-';
		if (i == 12)
			out[j++] = '4';
		else if (i == 16)
			out[j++] = HEX[8 + rng_below(r, 4)];
		else
			out[j++] = HEX[rng_below(r, 16)];
	}
	out[j] = '\0';
}

static void copy_str(char *dst, size_t dstsz, const char *src)
{
	snprintf(dst, dstsz, "%s", src != NULL ? src : "");
}

static bool ct_equal(const char *a, size_t alen, const char *b, size_t blen)
{
	unsigned char diff = 0;

	if (alen != blen)
		return false;
	for (size_t i = 0; i < alen; i++)
		diff |= (unsigned char)(a[i] ^ b[i]);
	return diff == 0;
}

static void vec_init(struct vec *v, size_t size, size_t max)
{
	memset(v, 0, sizeof(*v));
	v->size = size;
	v->max = max;
}

/* Append a zeroed item; its index goes to *index. Pointers into the vector
 * are invalid afterwards. */
static int vec_push(struct vec *v, uint32_t *index)
{
	if (v->count == v->max)
		return SIM_ERR_FULL;
	if (v->count == v->cap) {
		size_t cap = v->cap != 0 ? v->cap * 2 : 64;
		void *p;

		if (cap > v->max)
			cap = v->max;
		p = realloc(v->items, cap * v->size);
		if (p == NULL)
			return SIM_ERR_NOMEM;
		v->items = p;
		v->cap = cap;
	}
	memset((char *)v->items + v->count * v->size, 0, v->size);
	*index = (uint32_t)v->count++;
	return SIM_OK;
}

static void vec_clear(struct vec *v)
{
	free(v->items);
	v->items = NULL;
	v->count = 0;
	v->cap = 0;
}

static void key_of(char out[KEY_MAX], int partner, int service, const char *ref)
{
	snprintf(out, KEY_MAX, "%d|%02d|%s", partner, service, ref);
}

static bool key_get(world *w, int partner, int service, const char *ref, uint32_t *index)
{
	char key[KEY_MAX];

	if (strlen(ref) > REF_MAX)
		return false;
	key_of(key, partner, service, ref);
	return sim_map_get(&w->keys, key, index) == 0;
}

static int key_put(world *w, int partner, int service, const char *ref, uint32_t index)
{
	char key[KEY_MAX];

	key_of(key, partner, service, ref);
	return sim_map_put(&w->keys, key, index);
}

/* ---- answers ------------------------------------------------------------ */

struct build {
	snap_arena *arena;
	int rc;
};

static char *b_str(struct build *b, const char *s)
{
	char *p = snap_arena_strndup(b->arena, s, strlen(s));

	if (p == NULL) {
		b->rc = SIM_ERR_NOMEM;
		return (char *)protobuf_c_empty_string;
	}
	return p;
}

static char *b_fmt(struct build *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static char *b_fmt(struct build *b, const char *fmt, ...)
{
	char text[FMT_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(text)) {
		b->rc = SIM_ERR_NOMEM;
		return (char *)protobuf_c_empty_string;
	}
	return b_str(b, text);
}

static char *b_time(struct build *b, time_t t)
{
	char ts[SNAP_TIMESTAMP_LEN + 1];

	if (snap_time_format(t, ts) != 0)
		ts[0] = '\0';
	return b_str(b, ts);
}

static void *b_msg(struct build *b, const ProtobufCMessageDescriptor *d)
{
	void *m = snap_arena_alloc(b->arena, d->sizeof_message);

	if (m == NULL) {
		b->rc = SIM_ERR_NOMEM;
		return NULL;
	}
	protobuf_c_message_init(d, m);
	return m;
}

static pb_amount *b_amount(struct build *b, int64_t cents)
{
	pb_amount *a = b_msg(b, &DESC(amount));

	if (a == NULL)
		return NULL;
	a->value = b_fmt(b, "%lld.%02lld", (long long)(cents / 100), (long long)(cents % 100));
	a->currency = b_str(b, "IDR");
	return a;
}

static char *money_text(char out[32], int64_t cents)
{
	snprintf(out, 32, "%lld.%02lld", (long long)(cents / 100), (long long)(cents % 100));
	return out;
}

static int refuse(world_call *c, int http, int case_code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int refuse(world_call *c, int http, int case_code, const char *fmt, ...)
{
	va_list ap;

	c->refusal.http = http;
	c->refusal.case_code = case_code;
	va_start(ap, fmt);
	vsnprintf(c->refusal.message, sizeof(c->refusal.message), fmt, ap);
	va_end(ap);
	return SIM_ERR_REFUSED;
}

static int bad_format(world_call *c, const char *field)
{
	return refuse(c, 400, 1, "Invalid Field Format {%s}", field);
}

/* ---- field formats ------------------------------------------------------ */

static bool ref_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > REF_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

static bool digits_ok(const char *s, size_t min, size_t max)
{
	size_t n = strlen(s);

	if (n < min || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* 1..max bytes, no control characters. */
static bool text_ok(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < ' ' || s[i] == 0x7f)
			return false;
	return true;
}

static bool email_ok(const char *s)
{
	const char *at = strchr(s, '@');

	if (!text_ok(s, EMAIL_LEN_MAX) || strchr(s, ' ') != NULL || at == NULL || at == s ||
	    strchr(at + 1, '@') != NULL)
		return false;
	return strchr(at + 1, '.') != NULL && at[1] != '.' && s[strlen(s) - 1] != '.';
}

static bool url_ok(const char *s)
{
	return text_ok(s, URL_LEN_MAX) && strchr(s, ' ') == NULL &&
	       ((strncmp(s, "https://", 8) == 0 && s[8] != '\0') ||
		(strncmp(s, "http://", 7) == 0 && s[7] != '\0'));
}

/* A validated Amount as cents; refuses other currencies and non-positive or
 * too large values. */
static int amount_of(world_call *c, const pb_amount *a, const char *field, int64_t *cents)
{
	const char *s = a->value;
	int64_t v = 0;
	char name[64];

	for (; *s >= '0' && *s <= '9'; s++)
		v = v * 10 + (*s - '0');
	if (*s == '.' && s[1] != '\0' && s[2] != '\0')
		v = v * 100 + (s[1] - '0') * 10 + (s[2] - '0');
	if (strcmp(a->currency, "IDR") != 0) {
		snprintf(name, sizeof(name), "%s.currency", field);
		return bad_format(c, name);
	}
	if (v <= 0)
		return refuse(c, 404, 13, "Invalid Amount");
	if (v > TXN_AMOUNT_MAX_CENTS)
		return refuse(c, 403, 2, "Exceeds Transaction Amount Limit");
	*cents = v;
	return SIM_OK;
}

/* ---- the clock ---------------------------------------------------------- */

time_t world_now(world *w)
{
	return time(NULL) + (time_t)atomic_load_explicit(&w->clock_offset, memory_order_relaxed);
}

long world_clock_skew(world *w)
{
	return atomic_load_explicit(&w->clock_skew, memory_order_relaxed);
}

/* ---- lookups ------------------------------------------------------------ */

/* The account named by a DOKU id, a phone number or an e-mail address. */
static uint32_t account_find(world *w, const char *who)
{
	uint32_t i;

	if (sim_map_get(&w->account_ids, who, &i) == 0 || sim_map_get(&w->phones, who, &i) == 0 ||
	    sim_map_get(&w->emails, who, &i) == 0)
		return i;
	return NONE;
}

static bool customer_number_ok(const struct account *a, const char *s)
{
	return strcmp(s, a->account_id) == 0 || strcmp(s, a->phone) == 0;
}

/* The live binding (ACTIVE or UNBINDING) of an account with a partner. */
static uint32_t live_binding(world *w, uint32_t account, int partner)
{
	for (size_t i = w->bindings.count; i-- > 0;) {
		struct binding *b = BND(w, i);

		if (b->account == account && b->partner == partner &&
		    (b->state == BIND_ACTIVE || b->state == BIND_UNBINDING))
			return (uint32_t)i;
	}
	return NONE;
}

static uint32_t session_account(world *w, int session)
{
	return BND(w, SES(w, session)->binding)->account;
}

/* ---- state changes ------------------------------------------------------ */

static int new_token(world *w, sim_map *map, uint32_t value, char out[TOKEN_LEN + 1])
{
	uint32_t seen;

	do
		rng_text(&w->rng, out, TOKEN_LEN, ALNUM);
	while (sim_map_get(map, out, &seen) == 0);
	return sim_map_put(map, out, value);
}

static int give_auth_code(world *w, uint32_t binding)
{
	struct binding *b = BND(w, binding);
	uint32_t seen;

	if (b->auth_code[0] != '\0')
		sim_map_del(&w->auth_codes, b->auth_code);
	do
		rng_text(&w->rng, b->auth_code, AUTH_CODE_LEN, B64CHARS);
	while (sim_map_get(&w->auth_codes, b->auth_code, &seen) == 0);
	return sim_map_put(&w->auth_codes, b->auth_code, binding);
}

static int approve_binding(world *w, uint32_t binding)
{
	BND(w, binding)->state = BIND_ACTIVE;
	return give_auth_code(w, binding);
}

static void revoke_session(world *w, uint32_t s)
{
	struct session *ses = SES(w, s);

	if (ses->revoked)
		return;
	ses->revoked = true;
	sim_map_del(&w->access, ses->access);
	sim_map_del(&w->refresh, ses->refresh);
}

static void unbind(world *w, uint32_t binding)
{
	struct binding *b = BND(w, binding);

	b->state = BIND_UNBOUND;
	if (b->auth_code[0] != '\0') {
		sim_map_del(&w->auth_codes, b->auth_code);
		b->auth_code[0] = '\0';
	}
	for (size_t i = 0; i < w->sessions.count; i++)
		if (SES(w, i)->binding == binding)
			revoke_session(w, (uint32_t)i);
}

/* The customer pays a pending purchase: SUCCESS, or FAILED when the
 * balance does not cover it. */
static void pay_purchase(world *w, uint32_t t)
{
	struct txn *x = TXN(w, t);
	struct account *a = ACC(w, x->account);
	time_t now = world_now(w);

	if (a->balance < x->amount) {
		x->status = TS_FAILED;
		x->closed = now;
		copy_str(x->remark, sizeof(x->remark), "Insufficient Funds");
		return;
	}
	a->balance -= x->amount;
	w->merchant_balance[x->partner] += x->amount;
	x->status = TS_SUCCESS;
	x->paid = now;
	rng_text(&w->rng, x->approval_code, APPROVAL_LEN, DIGITS);
}

static int new_txn(world *w, world_call *c, enum txn_type type, const char *partner_ref,
		   uint32_t account, int64_t amount, uint32_t *index)
{
	struct txn *x;
	int rc = vec_push(&w->txns, index);

	if (rc != 0)
		return rc;
	x = TXN(w, *index);
	x->type = type;
	x->status = TS_SUCCESS;
	x->partner = c->partner->index;
	x->account = account;
	x->original = NONE;
	x->amount = amount;
	copy_str(x->partner_ref, sizeof(x->partner_ref), partner_ref);
	copy_str(x->external_id, sizeof(x->external_id), c->external_id);
	rng_uuid(&w->rng, x->reference_no);
	rng_text(&w->rng, x->ref_id, REF_ID_LEN, ALNUM);
	x->created = world_now(w);
	return key_put(w, c->partner->index, c->ep->service_code, partner_ref, *index);
}

/* ---- token endpoints ---------------------------------------------------- */

static int op_token_b2b(world *w, world_call *c)
{
	const Doku__Wallet__V1__AccessTokenRequest *rq = (const void *)c->req;
	Doku__Wallet__V1__AccessTokenResponse *r;
	struct b2b_state *st = &w->b2b[c->partner->index];
	struct build b = { c->arena, 0 };

	if (strcmp(rq->grant_type, "client_credentials") != 0)
		return bad_format(c, "grantType");
	r = b_msg(&b, &DESC(access_token_response));
	if (r == NULL)
		return b.rc;
	/* only the newest token of a client is valid */
	rng_text(&w->rng, st->token, TOKEN_LEN, ALNUM);
	st->expires = world_now(w) + w->settings.b2b_token_ttl;
	w->b2b_issued++;
	r->access_token = b_str(&b, st->token);
	r->token_type = b_str(&b, "Bearer");
	r->expires_in = b_fmt(&b, "%ld", w->settings.b2b_token_ttl);
	c->resp = &r->base;
	return b.rc;
}

static int open_session(world *w, world_call *c, uint32_t binding, uint32_t *index)
{
	struct session *s;
	time_t now = world_now(w);
	int rc = vec_push(&w->sessions, index);

	if (rc != 0)
		return rc;
	s = SES(w, *index);
	s->partner = c->partner->index;
	s->binding = binding;
	s->access_expires = now + w->settings.customer_token_ttl;
	s->refresh_expires = now + w->settings.refresh_token_ttl;
	rc = new_token(w, &w->access, *index, s->access);
	if (rc == 0)
		rc = new_token(w, &w->refresh, *index, s->refresh);
	return rc;
}

static int op_token_b2b2c(world *w, world_call *c)
{
	const Doku__Wallet__V1__AccessTokenRequest *rq = (const void *)c->req;
	Doku__Wallet__V1__AccessTokenResponse *r;
	struct build b = { c->arena, 0 };
	time_t now = world_now(w);
	uint32_t idx, s;
	struct session *ses;
	int rc;

	if (strcmp(rq->grant_type, "authorization_code") == 0) {
		if (rq->auth_code[0] == '\0')
			return refuse(c, 400, 2, "Invalid Mandatory Field {authCode}");
		if (sim_map_get(&w->auth_codes, rq->auth_code, &idx) != 0 ||
		    BND(w, idx)->partner != c->partner->index || BND(w, idx)->state != BIND_ACTIVE)
			return refuse(c, 401, 0, "Unauthorized. Invalid authCode");
		rc = open_session(w, c, idx, &s);
		if (rc != 0)
			return rc;
		/* an authCode serves once; inquiry shows the next one */
		rc = give_auth_code(w, idx);
		if (rc != 0)
			return rc;
		w->b2b2c_issued++;
	} else if (strcmp(rq->grant_type, "refresh_token") == 0) {
		if (rq->refresh_token[0] == '\0')
			return refuse(c, 400, 2, "Invalid Mandatory Field {refreshToken}");
		if (sim_map_get(&w->refresh, rq->refresh_token, &s) != 0 ||
		    SES(w, s)->partner != c->partner->index || SES(w, s)->revoked ||
		    SES(w, s)->refresh_expires < now)
			return refuse(c, 401, 2, "Invalid Customer Token");
		ses = SES(w, s);
		sim_map_del(&w->access, ses->access);
		rc = new_token(w, &w->access, s, ses->access);
		if (rc != 0)
			return rc;
		ses->access_expires = now + w->settings.customer_token_ttl;
		w->refreshed++;
	} else {
		return bad_format(c, "grantType");
	}
	ses = SES(w, s);
	r = b_msg(&b, &DESC(access_token_response));
	if (r == NULL)
		return b.rc;
	r->access_token = b_str(&b, ses->access);
	r->token_type = b_str(&b, "Bearer");
	r->access_token_expiry_time = b_time(&b, ses->access_expires);
	r->refresh_token = b_str(&b, ses->refresh);
	r->refresh_token_expiry_time = b_time(&b, ses->refresh_expires);
	c->resp = &r->base;
	return b.rc;
}

/* ---- registration (B2B) ------------------------------------------------- */

static int new_otp(world *w, world_call *c, enum otp_purpose purpose, uint32_t account,
		   uint32_t binding, const char *partner_ref, uint32_t *index)
{
	struct otp *o;
	int rc = vec_push(&w->otps, index);

	if (rc != 0)
		return rc;
	o = OTP(w, *index);
	o->purpose = purpose;
	o->state = OTP_WAITING;
	o->partner = c->partner->index;
	o->account = account;
	o->binding = binding;
	copy_str(o->partner_ref, sizeof(o->partner_ref), partner_ref);
	rng_uuid(&w->rng, o->reference_no);
	rng_text(&w->rng, o->code, OTP_LEN, DIGITS);
	o->expires = world_now(w) + w->settings.otp_ttl;
	return key_put(w, c->partner->index, c->ep->service_code, partner_ref, *index);
}

static int op_create_account(world *w, world_call *c)
{
	const Doku__Wallet__V1__CreateAccountRequest *rq = (const void *)c->req;
	Doku__Wallet__V1__CreateAccountResponse *r;
	struct build b = { c->arena, 0 };
	uint32_t acc, other, o;
	struct account *a;
	int rc;

	if (!ref_ok(rq->partner_reference_no))
		return bad_format(c, "partnerReferenceNo");
	if (!text_ok(rq->name, NAME_LEN_MAX))
		return bad_format(c, "name");
	if (!digits_ok(rq->phone_no, PHONE_DIGITS_MIN, PHONE_DIGITS_MAX))
		return bad_format(c, "phoneNo");
	if (!email_ok(rq->email))
		return bad_format(c, "email");
	if (!url_ok(rq->redirect_url))
		return bad_format(c, "redirectUrl");
	if (sim_map_get(&w->phones, rq->phone_no, &acc) == 0) {
		if (ACC(w, acc)->state == ACC_ACTIVE)
			return refuse(c, 403, 1, "Feature Not Allowed. phoneNo already registered");
	} else {
		acc = NONE;
	}
	if (sim_map_get(&w->emails, rq->email, &other) == 0 && other != acc &&
	    ACC(w, other)->state == ACC_ACTIVE)
		return refuse(c, 403, 1, "Feature Not Allowed. email already registered");
	if (acc == NONE) {
		rc = vec_push(&w->accounts, &acc);
		if (rc != 0)
			return rc;
		a = ACC(w, acc);
		copy_str(a->phone, sizeof(a->phone), rq->phone_no);
		a->otp = NONE;
		a->created = world_now(w);
		rc = sim_map_put(&w->phones, a->phone, acc);
		if (rc != 0)
			return rc;
	}
	a = ACC(w, acc);
	if (a->otp != NONE && OTP(w, a->otp)->state == OTP_WAITING)
		OTP(w, a->otp)->state = OTP_SUPERSEDED;
	if (a->email[0] != '\0' && strcmp(a->email, rq->email) != 0 &&
	    sim_map_get(&w->emails, a->email, &other) == 0 && other == acc)
		sim_map_del(&w->emails, a->email);
	a->state = ACC_OTP_PENDING;
	copy_str(a->name, sizeof(a->name), rq->name);
	copy_str(a->email, sizeof(a->email), rq->email);
	rc = sim_map_put(&w->emails, a->email, acc);
	if (rc != 0)
		return rc;
	rc = new_otp(w, c, OTP_CREATION, acc, NONE, rq->partner_reference_no, &o);
	if (rc != 0)
		return rc;
	ACC(w, acc)->otp = o;
	r = b_msg(&b, &DESC(create_account_response));
	if (r == NULL)
		return b.rc;
	r->reference_no = b_str(&b, OTP(w, o)->reference_no);
	r->partner_reference_no = b_str(&b, rq->partner_reference_no);
	c->resp = &r->base;
	return b.rc;
}

static Doku__Wallet__V1__DeviceInfo *b_device(struct build *b,
					      const Doku__Wallet__V1__DeviceInfo *in)
{
	Doku__Wallet__V1__DeviceInfo *d;

	if (in == NULL)
		return NULL;
	d = b_msg(b, &DESC(device_info));
	if (d == NULL)
		return NULL;
	d->device_id = b_str(b, in->device_id);
	d->channel = b_str(b, in->channel);
	return d;
}

static int op_verify_otp(world *w, world_call *c)
{
	const Doku__Wallet__V1__VerifyOtpRequest *rq = (const void *)c->req;
	Doku__Wallet__V1__VerifyOtpResponse *r;
	struct build b = { c->arena, 0 };
	const snap_endpoint *creation = snap_endpoint_by_name("CreateAccount");
	const snap_endpoint *unbinding = snap_endpoint_by_name("UnbindAccount");
	const char *pref = rq->original_partner_reference_no;
	uint32_t o = NONE;
	struct otp *ot;
	struct account *a;
	uint32_t found;

	if (creation != NULL && key_get(w, c->partner->index, creation->service_code, pref, &found))
		o = found;
	if (o == NONE && unbinding != NULL &&
	    key_get(w, c->partner->index, unbinding->service_code, pref, &found))
		o = found;
	if (o == NONE || strcmp(OTP(w, o)->reference_no, rq->original_reference_no) != 0)
		return refuse(c, 404, 1, "Transaction Not Found");
	ot = OTP(w, o);
	if (ot->state == OTP_BLOCKED)
		return refuse(c, 403, 11, "OTP Blocked");
	if (ot->state == OTP_SUPERSEDED || world_now(w) > ot->expires)
		return refuse(c, 403, 12, "OTP Lifetime Expired");
	if (ot->state == OTP_USED)
		return refuse(c, 404, 15, "Invalid OTP. Already used");
	if (!digits_ok(rq->otp, OTP_LEN, OTP_LEN) || strcmp(rq->otp, ot->code) != 0) {
		if (++ot->failures >= OTP_ATTEMPTS_MAX) {
			ot->state = OTP_BLOCKED;
			return refuse(c, 403, 11, "OTP Blocked");
		}
		return refuse(c, 404, 15, "Invalid OTP");
	}
	ot->state = OTP_USED;
	a = ACC(w, ot->account);
	r = b_msg(&b, &DESC(verify_otp_response));
	if (r == NULL)
		return b.rc;
	r->original_partner_reference_no = b_str(&b, ot->partner_ref);
	r->original_reference_no = b_str(&b, ot->reference_no);
	r->email = b_str(&b, a->email);
	r->phone_no = b_str(&b, a->phone);
	r->send_otp_flag = b_str(&b, "YES");
	r->additional_info = b_device(&b, rq->additional_info);
	if (ot->purpose == OTP_CREATION) {
		a->state = ACC_PIN_PENDING;
		rng_text(&w->rng, a->pin_token, TOKEN_LEN, ALNUM);
		r->qparamsurl = b_fmt(&b, "%s/snap-adapter-webview/create-pin", w->base_url);
		r->qparams = b_msg(&b, &DESC(verify_otp_qparams));
		if (r->qparams != NULL)
			r->qparams->token = b_str(&b, a->pin_token);
	} else {
		unbind(w, ot->binding);
	}
	c->resp = &r->base;
	return b.rc;
}

static int op_bind_account(world *w, world_call *c)
{
	const Doku__Wallet__V1__BindAccountRequest *rq = (const void *)c->req;
	Doku__Wallet__V1__BindAccountResponse *r;
	struct build b = { c->arena, 0 };
	uint32_t acc = NONE, bi, seen;
	struct binding *bd;
	int rc;

	if (!ref_ok(rq->partner_reference_no))
		return bad_format(c, "partnerReferenceNo");
	if (!url_ok(rq->redirect_url))
		return bad_format(c, "redirectUrl");
	if (rq->success_params != NULL && rq->success_params->account_id[0] != '\0') {
		acc = account_find(w, rq->success_params->account_id);
		if (acc == NONE)
			return refuse(c, 404, 11, "Invalid Account");
		if (ACC(w, acc)->state != ACC_ACTIVE)
			return refuse(c, 403, 18, "Inactive Account");
		if (live_binding(w, acc, c->partner->index) != NONE)
			return refuse(c, 403, 1, "Feature Not Allowed. Account already bound");
	}
	rc = vec_push(&w->bindings, &bi);
	if (rc != 0)
		return rc;
	bd = BND(w, bi);
	bd->state = BIND_PENDING;
	bd->partner = c->partner->index;
	bd->account = acc;
	bd->unbind_otp = NONE;
	bd->created = world_now(w);
	copy_str(bd->partner_ref, sizeof(bd->partner_ref), rq->partner_reference_no);
	rng_uuid(&w->rng, bd->reference_no);
	do
		rng_text(&w->rng, bd->link_id, LINK_ID_LEN, ALNUM);
	while (sim_map_get(&w->links, bd->link_id, &seen) == 0);
	rc = sim_map_put(&w->links, bd->link_id, bi);
	if (rc == 0)
		rc = key_put(w, c->partner->index, c->ep->service_code, rq->partner_reference_no, bi);
	if (rc == 0 && acc != NONE && w->settings.auto_approve_bindings)
		rc = approve_binding(w, bi);
	if (rc != 0)
		return rc;
	bd = BND(w, bi);
	r = b_msg(&b, &DESC(bind_account_response));
	if (r == NULL)
		return b.rc;
	r->reference_no = b_str(&b, bd->reference_no);
	r->partner_reference_no = b_str(&b, bd->partner_ref);
	r->link_id = b_str(&b, bd->link_id);
	{
		char token[WEB_TOKEN_LEN + 1];

		rng_text(&w->rng, token, WEB_TOKEN_LEN, ALNUM);
		r->next_action = b_fmt(&b, "%s/snap-adapter-webview/account-binding?token=%s",
				       w->base_url, token);
	}
	r->redirect_url = b_str(&b, rq->redirect_url);
	if (acc != NONE) {
		r->user_info = b_msg(&b, &DESC(bind_user_info));
		if (r->user_info != NULL)
			r->user_info->public_user_id = b_str(&b, ACC(w, acc)->account_id);
	}
	if (bd->state == BIND_ACTIVE) {
		r->additional_info = b_msg(&b, &DESC(bind_additional_info));
		if (r->additional_info != NULL)
			r->additional_info->auth_code = b_str(&b, bd->auth_code);
	}
	c->resp = &r->base;
	return b.rc;
}

static int op_inquire_account(world *w, world_call *c)
{
	const Doku__Wallet__V1__InquireAccountRequest *rq = (const void *)c->req;
	Doku__Wallet__V1__InquireAccountResponse *r;
	const snap_endpoint *binding_ep = snap_endpoint_by_name("BindAccount");
	struct build b = { c->arena, 0 };
	uint32_t bi = NONE, found;
	struct binding *bd;
	char reference[UUID_LEN + 1];

	if (!ref_ok(rq->partner_reference_no))
		return bad_format(c, "partnerReferenceNo");
	if (binding_ep != NULL && key_get(w, c->partner->index, binding_ep->service_code,
					  rq->partner_reference_no, &found))
		bi = found;
	if (bi == NONE && rq->additional_info != NULL && rq->additional_info->account_id[0] != '\0') {
		uint32_t acc = account_find(w, rq->additional_info->account_id);

		if (acc != NONE) {
			for (size_t i = w->bindings.count; i-- > 0;) {
				if (BND(w, i)->account == acc &&
				    BND(w, i)->partner == c->partner->index) {
					bi = (uint32_t)i;
					break;
				}
			}
		}
	}
	if (bi == NONE)
		return refuse(c, 404, 11, "Invalid Account");
	bd = BND(w, bi);
	rng_uuid(&w->rng, reference);
	r = b_msg(&b, &DESC(inquire_account_response));
	if (r == NULL)
		return b.rc;
	r->reference_no = b_str(&b, reference);
	r->partner_reference_no = b_str(&b, rq->partner_reference_no);
	if (bd->account != NONE)
		r->account_no = b_str(&b, ACC(w, bd->account)->account_id);
	r->additional_info = b_msg(&b, &DESC(inquire_account_result));
	if (r->additional_info == NULL)
		return b.rc;
	r->additional_info->link_id = b_str(&b, bd->link_id);
	r->additional_info->remarks = b_str(&b, binding_state_names[bd->state]);
	if (bd->state == BIND_ACTIVE)
		r->additional_info->auth_code = b_str(&b, bd->auth_code);
	r->additional_info->merchant_id = b_str(&b, c->partner->client_id);
	c->resp = &r->base;
	return b.rc;
}

static int op_unbind_account(world *w, world_call *c)
{
	const Doku__Wallet__V1__UnbindAccountRequest *rq = (const void *)c->req;
	Doku__Wallet__V1__UnbindAccountResponse *r;
	struct build b = { c->arena, 0 };
	uint32_t bi, o;
	struct binding *bd;
	int rc;

	if (!ref_ok(rq->partner_reference_no))
		return bad_format(c, "partnerReferenceNo");
	if (!ref_ok(rq->link_id))
		return bad_format(c, "linkId");
	if (strcmp(rq->merchant_id, c->partner->client_id) != 0)
		return refuse(c, 404, 8, "Invalid Merchant");
	if (sim_map_get(&w->links, rq->link_id, &bi) != 0 || BND(w, bi)->partner != c->partner->index)
		return refuse(c, 404, 11, "Invalid Account. Unknown linkId");
	bd = BND(w, bi);
	if (bd->state != BIND_ACTIVE && bd->state != BIND_UNBINDING)
		return refuse(c, 404, 11, "Invalid Account. Not bound");
	if (bd->unbind_otp != NONE && OTP(w, bd->unbind_otp)->state == OTP_WAITING)
		OTP(w, bd->unbind_otp)->state = OTP_SUPERSEDED;
	rc = new_otp(w, c, OTP_UNBINDING, bd->account, bi, rq->partner_reference_no, &o);
	if (rc != 0)
		return rc;
	bd = BND(w, bi);
	bd->unbind_otp = o;
	bd->state = BIND_UNBINDING;
	r = b_msg(&b, &DESC(unbind_account_response));
	if (r == NULL)
		return b.rc;
	r->reference_no = b_str(&b, OTP(w, o)->reference_no);
	r->partner_reference_no = b_str(&b, rq->partner_reference_no);
	r->merchant_id = b_str(&b, c->partner->client_id);
	r->link_id = b_str(&b, bd->link_id);
	r->unlink_result = b_str(&b, "inProgress");
	if (rq->additional_info != NULL) {
		r->additional_info = b_msg(&b, &DESC(unbind_info));
		if (r->additional_info != NULL) {
			r->additional_info->device_id = b_str(&b, rq->additional_info->device_id);
			r->additional_info->channel = b_str(&b, rq->additional_info->channel);
			r->additional_info->phone_no = b_str(&b, rq->additional_info->phone_no);
		}
	}
	c->resp = &r->base;
	return b.rc;
}

/* ---- customer endpoints (B2B2C) ----------------------------------------- */

static int op_get_balance(world *w, world_call *c)
{
	const Doku__Wallet__V1__GetBalanceRequest *rq = (const void *)c->req;
	Doku__Wallet__V1__GetBalanceResponse *r;
	struct build b = { c->arena, 0 };
	struct account *a = ACC(w, session_account(w, c->session));
	char reference[UUID_LEN + 1];

	if (!ref_ok(rq->partner_reference_no))
		return bad_format(c, "partnerReferenceNo");
	rng_uuid(&w->rng, reference);
	r = b_msg(&b, &DESC(get_balance_response));
	if (r == NULL)
		return b.rc;
	r->reference_no = b_str(&b, reference);
	r->partner_reference_no = b_str(&b, rq->partner_reference_no);
	r->account_no = b_str(&b, a->account_id);
	r->name = b_str(&b, a->name);
	r->account_info = b_msg(&b, &DESC(account_info));
	if (r->account_info == NULL)
		return b.rc;
	r->account_info->balance_type = b_str(&b, "Cash");
	r->account_info->amount = b_amount(&b, a->balance);
	c->resp = &r->base;
	return b.rc;
}

/* The simulated bank directory: account numbers ending in 000 do not exist;
 * every other one has a name derived from its digits. */
static const char *bank_account_name(const char *number)
{
	static const char *const names[] = { "ANDI WIJAYA", "SITI RAHAYU", "BUDI SANTOSO",
					     "DEWI LESTARI", "AGUS PRATAMA", "RINA KUSUMA",
					     "HENDRA GUNAWAN", "MAYA SARI" };
	size_t n = strlen(number);
	uint64_t h = 1469598103934665603ull;

	if (n >= 3 && strcmp(number + n - 3, "000") == 0)
		return NULL;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)number[i]) * 1099511628211ull;
	return names[h % (sizeof(names) / sizeof(names[0]))];
}

#define BANK_CODE_DEFAULT "014"

static int op_inquire_bank_account(world *w, world_call *c)
{
	const Doku__Wallet__V1__InquireBankAccountRequest *rq = (const void *)c->req;
	Doku__Wallet__V1__InquireBankAccountResponse *r;
	struct build b = { c->arena, 0 };
	struct account *a = ACC(w, session_account(w, c->session));
	const char *bank = BANK_CODE_DEFAULT;
	const char *holder;
	char reference[UUID_LEN + 1];
	int64_t cents = 0;
	int rc;

	if (!ref_ok(rq->partner_reference_no))
		return bad_format(c, "partnerReferenceNo");
	if (!customer_number_ok(a, rq->customer_number))
		return refuse(c, 404, 11, "Invalid Account {customerNumber}");
	if (!digits_ok(rq->beneficiary_account_number, BANK_ACCOUNT_MIN, BANK_ACCOUNT_MAX))
		return bad_format(c, "beneficiaryAccountNumber");
	if (rq->additional_info != NULL && rq->additional_info->bank_code[0] != '\0') {
		if (!digits_ok(rq->additional_info->bank_code, 3, 3))
			return bad_format(c, "additionalInfo.bankCode");
		bank = rq->additional_info->bank_code;
	}
	if (rq->amount != NULL) {
		rc = amount_of(c, rq->amount, "amount", &cents);
		if (rc != 0)
			return rc;
	}
	holder = bank_account_name(rq->beneficiary_account_number);
	if (holder == NULL)
		return refuse(c, 404, 11, "Invalid Account {beneficiaryAccountNumber}");
	rng_uuid(&w->rng, reference);
	r = b_msg(&b, &DESC(inquire_bank_account_response));
	if (r == NULL)
		return b.rc;
	r->reference_no = b_str(&b, reference);
	r->partner_reference_no = b_str(&b, rq->partner_reference_no);
	r->beneficiary_account_number = b_str(&b, rq->beneficiary_account_number);
	r->beneficiary_account_name = b_str(&b, holder);
	r->beneficiary_bank_code = b_str(&b, bank);
	if (rq->amount != NULL)
		r->amount = b_amount(&b, cents);
	c->resp = &r->base;
	return b.rc;
}

static int op_transfer_to_bank(world *w, world_call *c)
{
	const Doku__Wallet__V1__TransferToBankRequest *rq = (const void *)c->req;
	Doku__Wallet__V1__TransferToBankResponse *r;
	struct build b = { c->arena, 0 };
	uint32_t acc = session_account(w, c->session), t;
	struct txn *x;
	int64_t cents;
	int rc;

	if (!ref_ok(rq->partner_reference_no))
		return bad_format(c, "partnerReferenceNo");
	if (!customer_number_ok(ACC(w, acc), rq->customer_number))
		return refuse(c, 404, 11, "Invalid Account {customerNumber}");
	if (!text_ok(rq->account_type, REF_MAX))
		return bad_format(c, "accountType");
	if (!digits_ok(rq->beneficiary_account_number, BANK_ACCOUNT_MIN, BANK_ACCOUNT_MAX))
		return bad_format(c, "beneficiaryAccountNumber");
	if (!digits_ok(rq->beneficiary_bank_code, 3, 3))
		return bad_format(c, "beneficiaryBankCode");
	rc = amount_of(c, rq->amount, "amount", &cents);
	if (rc != 0)
		return rc;
	if (bank_account_name(rq->beneficiary_account_number) == NULL)
		return refuse(c, 404, 11, "Invalid Account {beneficiaryAccountNumber}");
	if (ACC(w, acc)->balance < cents)
		return refuse(c, 403, 14, "Insufficient Funds");
	rc = new_txn(w, c, TXN_SEND_MONEY, rq->partner_reference_no, acc, cents, &t);
	if (rc != 0)
		return rc;
	ACC(w, acc)->balance -= cents;
	x = TXN(w, t);
	x->paid = x->created;
	copy_str(x->counterpart, sizeof(x->counterpart), rq->beneficiary_account_number);
	copy_str(x->bank_code, sizeof(x->bank_code), rq->beneficiary_bank_code);
	copy_str(x->remark, sizeof(x->remark), "Transfer Cash Wallet To Bank Account");
	rng_text(&w->rng, x->bank_ref, BANK_REF_LEN, DIGITS);
	r = b_msg(&b, &DESC(transfer_to_bank_response));
	if (r == NULL)
		return b.rc;
	r->reference_no = b_str(&b, x->reference_no);
	r->partner_reference_no = b_str(&b, x->partner_ref);
	r->transaction_date = b_time(&b, x->created);
	r->reference_number = b_str(&b, x->bank_ref);
	c->resp = &r->base;
	return b.rc;
}

static int op_top_up(world *w, world_call *c)
{
	const Doku__Wallet__V1__TopUpRequest *rq = (const void *)c->req;
	Doku__Wallet__V1__TopUpResponse *r;
	struct build b = { c->arena, 0 };
	uint32_t acc = session_account(w, c->session), t;
	struct txn *x;
	int64_t cents;
	int rc;

	if (!ref_ok(rq->partner_reference_no))
		return bad_format(c, "partnerReferenceNo");
	if (!customer_number_ok(ACC(w, acc), rq->customer_number))
		return refuse(c, 404, 11, "Invalid Account {customerNumber}");
	rc = amount_of(c, rq->amount, "amount", &cents);
	if (rc != 0)
		return rc;
	if (!text_ok(rq->session_id, REF_MAX))
		return bad_format(c, "sessionId");
	if (!text_ok(rq->notes, TEXT_LEN_MAX))
		return bad_format(c, "notes");
	if (w->merchant_balance[c->partner->index] < cents)
		return refuse(c, 403, 14, "Insufficient Funds. Merchant balance");
	if (ACC(w, acc)->balance + cents > BALANCE_MAX_CENTS)
		return refuse(c, 403, 2, "Exceeds Transaction Amount Limit. Balance limit");
	rc = new_txn(w, c, TXN_TOPUP, rq->partner_reference_no, acc, cents, &t);
	if (rc != 0)
		return rc;
	ACC(w, acc)->balance += cents;
	w->merchant_balance[c->partner->index] -= cents;
	x = TXN(w, t);
	x->paid = x->created;
	copy_str(x->counterpart, sizeof(x->counterpart), rq->session_id);
	copy_str(x->remark, sizeof(x->remark), rq->notes);
	rng_text(&w->rng, x->approval_code, APPROVAL_LEN, DIGITS);
	r = b_msg(&b, &DESC(top_up_response));
	if (r == NULL)
		return b.rc;
	r->reference_no = b_str(&b, x->reference_no);
	r->partner_reference_no = b_str(&b, x->partner_ref);
	r->session_id = b_str(&b, rq->session_id);
	r->customer_number = b_str(&b, rq->customer_number);
	c->resp = &r->base;
	return b.rc;
}

/* A transaction of the caller's account named by partner reference and the
 * service code of the operation that made it; NONE when there is none. */
static uint32_t own_txn(world *w, world_call *c, const char *op_name, const char *ref)
{
	const snap_endpoint *ep = snap_endpoint_by_name(op_name);
	uint32_t t;

	if (ep == NULL || !key_get(w, c->partner->index, ep->service_code, ref, &t))
		return NONE;
	if (TXN(w, t)->account != session_account(w, c->session))
		return NONE;
	return t;
}

static int op_top_up_status(world *w, world_call *c)
{
	const Doku__Wallet__V1__GetTopUpStatusRequest *rq = (const void *)c->req;
	Doku__Wallet__V1__GetTopUpStatusResponse *r;
	struct build b = { c->arena, 0 };
	const snap_endpoint *topup = snap_endpoint_by_name("TopUp");
	char expected[4];
	uint32_t t;
	struct txn *x;

	snprintf(expected, sizeof(expected), "%02d", topup != NULL ? topup->service_code : 38);
	if (strcmp(rq->service_code, expected) != 0)
		return bad_format(c, "serviceCode");
	t = own_txn(w, c, "TopUp", rq->original_partner_reference_no);
	if (t == NONE || strcmp(TXN(w, t)->external_id, rq->original_external_id) != 0 ||
	    (rq->original_reference_no[0] != '\0' &&
	     strcmp(TXN(w, t)->reference_no, rq->original_reference_no) != 0))
		return refuse(c, 404, 1, "Transaction Not Found");
	x = TXN(w, t);
	r = b_msg(&b, &DESC(get_top_up_status_response));
	if (r == NULL)
		return b.rc;
	r->original_partner_reference_no = b_str(&b, x->partner_ref);
	r->original_reference_no = b_str(&b, x->reference_no);
	r->original_external_id = b_str(&b, x->external_id);
	r->service_code = b_str(&b, expected);
	r->amount = b_amount(&b, x->amount);
	r->latest_transaction_status = b_str(&b, txn_status_codes[x->status]);
	r->transaction_status_desc = b_str(&b, txn_status_names[x->status]);
	r->additional_info = b_msg(&b, &DESC(top_up_status_info));
	if (r->additional_info == NULL)
		return b.rc;
	if (rq->additional_info != NULL) {
		r->additional_info->device_id = b_str(&b, rq->additional_info->device_id);
		r->additional_info->channel = b_str(&b, rq->additional_info->channel);
	}
	r->additional_info->approval_code = b_str(&b, x->approval_code);
	c->resp = &r->base;
	return b.rc;
}

static int op_purchase(world *w, world_call *c)
{
	const Doku__Wallet__V1__PurchaseRequest *rq = (const void *)c->req;
	Doku__Wallet__V1__PurchaseResponse *r;
	struct build b = { c->arena, 0 };
	uint32_t acc = session_account(w, c->session), t;
	char token[WEB_TOKEN_LEN + 1];
	struct txn *x;
	int64_t cents;
	int rc;

	if (!ref_ok(rq->partner_reference_no))
		return bad_format(c, "partnerReferenceNo");
	if (!text_ok(rq->charge_token, REF_MAX))
		return bad_format(c, "chargeToken");
	rc = amount_of(c, rq->amount, "amount", &cents);
	if (rc != 0)
		return rc;
	if (rq->url_param != NULL) {
		if (rq->url_param->url[0] != '\0' && !url_ok(rq->url_param->url))
			return bad_format(c, "urlParam.url");
		if (rq->url_param->is_deep_link[0] != '\0' &&
		    strcmp(rq->url_param->is_deep_link, "Y") != 0 &&
		    strcmp(rq->url_param->is_deep_link, "N") != 0)
			return bad_format(c, "urlParam.isDeepLink");
	}
	if (ACC(w, acc)->balance < cents)
		return refuse(c, 403, 14, "Insufficient Funds");
	rc = new_txn(w, c, TXN_PAYMENT, rq->partner_reference_no, acc, cents, &t);
	if (rc != 0)
		return rc;
	x = TXN(w, t);
	x->status = TS_PENDING;
	snprintf(x->remark, sizeof(x->remark), "Payment to %s", c->partner->client_id);
	if (w->settings.auto_approve_purchases)
		pay_purchase(w, t);
	rng_text(&w->rng, token, WEB_TOKEN_LEN, ALNUM);
	r = b_msg(&b, &DESC(purchase_response));
	if (r == NULL)
		return b.rc;
	r->reference_no = b_str(&b, x->reference_no);
	r->partner_reference_no = b_str(&b, x->partner_ref);
	r->web_redirect_url = b_fmt(&b, "%s/snap-adapter-webview/direct-debit?token=%s",
				    w->base_url, token);
	r->additional_info = b_msg(&b, &DESC(purchase_result));
	if (r->additional_info != NULL)
		r->additional_info->doku_id = b_str(&b, ACC(w, acc)->account_id);
	c->resp = &r->base;
	return b.rc;
}

static int purchase_service_code(void)
{
	const snap_endpoint *ep = snap_endpoint_by_name("Purchase");

	return ep != NULL ? ep->service_code : 0;
}

static int op_purchase_status(world *w, world_call *c)
{
	const Doku__Wallet__V1__GetPurchaseStatusRequest *rq = (const void *)c->req;
	Doku__Wallet__V1__GetPurchaseStatusResponse *r;
	struct build b = { c->arena, 0 };
	char purchase_code[4];
	time_t when;
	uint32_t t;
	struct txn *x;
	int rc;

	/* the Purchase's service code ("54"), or "17", which DOKU's own sample sends */
	snprintf(purchase_code, sizeof(purchase_code), "%02d", purchase_service_code());
	if (strcmp(rq->service_code, purchase_code) != 0 && strcmp(rq->service_code, "17") != 0)
		return bad_format(c, "serviceCode");
	if (snap_time_parse(rq->transaction_date, strlen(rq->transaction_date), &when) != 0)
		return bad_format(c, "transactionDate");
	t = own_txn(w, c, "Purchase", rq->partner_reference_no);
	if (t == NONE)
		return refuse(c, 404, 1, "Transaction Not Found");
	x = TXN(w, t);
	if (rq->amount != NULL) {
		int64_t cents;

		rc = amount_of(c, rq->amount, "amount", &cents);
		if (rc != 0)
			return rc;
		if (cents != x->amount)
			return refuse(c, 404, 13, "Invalid Amount");
	}
	r = b_msg(&b, &DESC(get_purchase_status_response));
	if (r == NULL)
		return b.rc;
	r->original_reference_no = b_str(&b, x->reference_no);
	r->original_partner_reference_no = b_str(&b, x->partner_ref);
	r->approval_code = b_str(&b, x->approval_code);
	r->service_code = b_str(&b, rq->service_code);
	r->latest_transaction_status = b_str(&b, txn_status_codes[x->status]);
	r->transaction_status_desc = b_str(&b, txn_status_names[x->status]);
	r->original_response_code = b_fmt(&b, "200%02d00", purchase_service_code());
	r->original_response_message = b_str(&b, "Request has been processed successfully");
	r->trans_amount = b_amount(&b, x->amount);
	if (x->paid != 0)
		r->paid_time = b_time(&b, x->paid);
	c->resp = &r->base;
	return b.rc;
}

static int op_cancel_purchase(world *w, world_call *c)
{
	const Doku__Wallet__V1__CancelPurchaseRequest *rq = (const void *)c->req;
	Doku__Wallet__V1__CancelPurchaseResponse *r;
	struct build b = { c->arena, 0 };
	uint32_t t;
	struct txn *x;

	if (!text_ok(rq->reason, TEXT_LEN_MAX))
		return bad_format(c, "reason");
	t = own_txn(w, c, "Purchase", rq->original_partner_reference_no);
	if (t == NONE)
		return refuse(c, 404, 1, "Transaction Not Found");
	x = TXN(w, t);
	if (x->status == TS_CANCELLED)
		return refuse(c, 404, 4, "Transaction Cancelled");
	if (x->status == TS_SUCCESS && x->refunded == 0) {
		/* a reversal: the money goes back */
		ACC(w, x->account)->balance += x->amount;
		w->merchant_balance[x->partner] -= x->amount;
	} else if (x->status != TS_PENDING) {
		return refuse(c, 404, 0, "Invalid Transaction Status");
	}
	x->status = TS_CANCELLED;
	x->closed = world_now(w);
	r = b_msg(&b, &DESC(cancel_purchase_response));
	if (r == NULL)
		return b.rc;
	r->original_reference_no = b_str(&b, x->reference_no);
	r->original_partner_reference_no = b_str(&b, x->partner_ref);
	r->cancel_time = b_time(&b, x->closed);
	r->transaction_date = b_time(&b, x->created);
	c->resp = &r->base;
	return b.rc;
}

static int op_refund_purchase(world *w, world_call *c)
{
	const Doku__Wallet__V1__RefundPurchaseRequest *rq = (const void *)c->req;
	Doku__Wallet__V1__RefundPurchaseResponse *r;
	struct build b = { c->arena, 0 };
	uint32_t p, t;
	struct txn *pay, *x;
	int64_t cents, remaining;
	int rc;

	if (!text_ok(rq->reason, TEXT_LEN_MAX))
		return bad_format(c, "reason");
	if (!ref_ok(rq->partner_refund_no))
		return bad_format(c, "partnerRefundNo");
	p = own_txn(w, c, "Purchase", rq->original_partner_reference_no);
	if (p == NONE)
		return refuse(c, 404, 1, "Transaction Not Found");
	pay = TXN(w, p);
	if (pay->status != TS_SUCCESS)
		return refuse(c, 404, 0, "Invalid Transaction Status");
	remaining = pay->amount - pay->refunded;
	cents = remaining;
	if (rq->refund_amount != NULL) {
		rc = amount_of(c, rq->refund_amount, "refundAmount", &cents);
		if (rc != 0)
			return rc;
		if (cents > remaining)
			return refuse(c, 404, 13, "Invalid Amount. More than what remains to refund");
	}
	if (w->merchant_balance[pay->partner] < cents)
		return refuse(c, 403, 14, "Insufficient Funds. Merchant balance");
	rc = new_txn(w, c, TXN_REFUND, rq->partner_refund_no, pay->account, cents, &t);
	if (rc != 0)
		return rc;
	pay = TXN(w, p);
	x = TXN(w, t);
	x->original = p;
	x->paid = x->created;
	rng_text(&w->rng, x->counterpart, BANK_REF_LEN, DIGITS);
	snprintf(x->remark, sizeof(x->remark), "Refund of %s", pay->partner_ref);
	pay->refunded += cents;
	if (pay->refunded == pay->amount)
		pay->status = TS_REFUNDED;
	ACC(w, pay->account)->balance += cents;
	w->merchant_balance[pay->partner] -= cents;
	r = b_msg(&b, &DESC(refund_purchase_response));
	if (r == NULL)
		return b.rc;
	r->original_reference_no = b_str(&b, pay->reference_no);
	r->original_partner_reference_no = b_str(&b, pay->partner_ref);
	r->refund_no = b_str(&b, x->counterpart);
	r->partner_refund_no = b_str(&b, x->partner_ref);
	r->refund_time = b_time(&b, x->created);
	r->refund_amount = b_amount(&b, cents);
	c->resp = &r->base;
	return b.rc;
}

static const char *history_status(const struct txn *x)
{
	if (x->type == TXN_PAYMENT)
		return txn_status_names[x->status];
	return "SUCCESS";
}

static Doku__Wallet__V1__HistoryItem *b_history_item(struct build *b, world *w, uint32_t t)
{
	const struct txn *x = TXN(w, t);
	Doku__Wallet__V1__HistoryItem *it = b_msg(b, &DESC(history_item));

	if (it == NULL)
		return NULL;
	it->date_time = b_time(b, x->created);
	it->amount = b_amount(b, x->amount);
	it->remark = b_str(b, x->remark);
	it->status = b_str(b, history_status(x));
	it->type = b_str(b, txn_type_names[x->type]);
	it->reference_no = b_str(b, x->reference_no);
	it->partner_reference_no = b_str(b, x->partner_ref);
	it->additional_info = b_msg(b, &DESC(history_item_info));
	if (it->additional_info != NULL) {
		it->additional_info->ref_id = b_str(b, x->ref_id);
		it->additional_info->transaction_id = b_fmt(b, "%u", t + 1);
	}
	return it;
}

static int op_list_transactions(world *w, world_call *c)
{
	const Doku__Wallet__V1__ListTransactionsRequest *rq = (const void *)c->req;
	Doku__Wallet__V1__ListTransactionsResponse *r;
	struct build b = { c->arena, 0 };
	uint32_t acc = session_account(w, c->session);
	time_t from, to;
	long size, page, skip;

	if (!ref_ok(rq->partner_reference_no))
		return bad_format(c, "partnerReferenceNo");
	if (snap_time_parse(rq->from_date_time, strlen(rq->from_date_time), &from) != 0)
		return bad_format(c, "fromDateTime");
	if (snap_time_parse(rq->to_date_time, strlen(rq->to_date_time), &to) != 0 || to < from ||
	    to - from > HISTORY_RANGE_MAX)
		return bad_format(c, "toDateTime");
	if (!digits_ok(rq->page_size, 1, 3) || (size = atol(rq->page_size)) < 1 || size > PAGE_SIZE_MAX)
		return bad_format(c, "pageSize");
	if (!digits_ok(rq->page_number, 1, 6) || (page = atol(rq->page_number)) > PAGE_NUMBER_MAX)
		return bad_format(c, "pageNumber");
	r = b_msg(&b, &DESC(list_transactions_response));
	if (r == NULL)
		return b.rc;
	r->detail_data = snap_arena_alloc(c->arena, (size_t)size * sizeof(*r->detail_data));
	if (r->detail_data == NULL)
		return SIM_ERR_NOMEM;
	skip = page * size;
	/* newest first */
	for (size_t i = w->txns.count; i-- > 0 && r->n_detail_data < (size_t)size;) {
		const struct txn *x = TXN(w, i);

		if (x->account != acc || x->created < from || x->created > to)
			continue;
		if (skip > 0) {
			skip--;
			continue;
		}
		r->detail_data[r->n_detail_data] = b_history_item(&b, w, (uint32_t)i);
		if (r->detail_data[r->n_detail_data] == NULL)
			return b.rc;
		r->n_detail_data++;
	}
	c->resp = &r->base;
	return b.rc;
}

static int op_get_transaction(world *w, world_call *c)
{
	static const char *const makers[] = { "Purchase", "TopUp", "TransferToBank",
					      "RefundPurchase" };
	const Doku__Wallet__V1__GetTransactionRequest *rq = (const void *)c->req;
	Doku__Wallet__V1__GetTransactionResponse *r;
	struct build b = { c->arena, 0 };
	uint32_t t = NONE;
	const struct txn *x;

	for (size_t i = 0; i < sizeof(makers) / sizeof(makers[0]) && t == NONE; i++)
		t = own_txn(w, c, makers[i], rq->partner_reference_no);
	if (t == NONE)
		return refuse(c, 404, 1, "Transaction Not Found");
	x = TXN(w, t);
	r = b_msg(&b, &DESC(get_transaction_response));
	if (r == NULL)
		return b.rc;
	r->reference_no = b_str(&b, x->reference_no);
	r->partner_reference_no = b_str(&b, x->partner_ref);
	r->amount = b_amount(&b, x->amount);
	r->date_time = b_time(&b, x->created);
	r->remark = b_str(&b, x->remark);
	r->status = b_str(&b, history_status(x));
	r->type = b_str(&b, txn_type_names[x->type]);
	c->resp = &r->base;
	return b.rc;
}

/* One row per endpoint of the table (matched by name at start-up). */
static const struct op ops[] = {
	{ "AccessTokenB2B", op_token_b2b, NULL },
	{ "AccessTokenB2B2C", op_token_b2b2c, NULL },
	{ "CreateAccount", op_create_account, "partner_reference_no" },
	{ "VerifyOtp", op_verify_otp, NULL },
	{ "BindAccount", op_bind_account, "partner_reference_no" },
	{ "InquireAccount", op_inquire_account, NULL },
	{ "UnbindAccount", op_unbind_account, "partner_reference_no" },
	{ "GetBalance", op_get_balance, NULL },
	{ "InquireBankAccount", op_inquire_bank_account, NULL },
	{ "TransferToBank", op_transfer_to_bank, "partner_reference_no" },
	{ "TopUp", op_top_up, "partner_reference_no" },
	{ "GetTopUpStatus", op_top_up_status, NULL },
	{ "Purchase", op_purchase, "partner_reference_no" },
	{ "GetPurchaseStatus", op_purchase_status, NULL },
	{ "CancelPurchase", op_cancel_purchase, NULL },
	{ "RefundPurchase", op_refund_purchase, "partner_refund_no" },
	{ "ListTransactions", op_list_transactions, NULL },
	{ "GetTransaction", op_get_transaction, NULL },
};

/* ---- life --------------------------------------------------------------- */

static void world_clear(world *w)
{
	vec_clear(&w->accounts);
	vec_clear(&w->otps);
	vec_clear(&w->bindings);
	vec_clear(&w->sessions);
	vec_clear(&w->txns);
	sim_map_clear(&w->keys);
	sim_map_clear(&w->phones);
	sim_map_clear(&w->account_ids);
	sim_map_clear(&w->emails);
	sim_map_clear(&w->links);
	sim_map_clear(&w->auth_codes);
	sim_map_clear(&w->access);
	sim_map_clear(&w->refresh);
	sim_idset_clear(&w->extids);
	w->extid_day = 0;
	memset(w->b2b, 0, sizeof(w->b2b));
	for (size_t i = 0; i < SIM_PARTNERS_MAX; i++)
		w->merchant_balance[i] = MERCHANT_FLOAT_CENTS;
	w->b2b_issued = w->b2b2c_issued = w->refreshed = 0;
}

int world_new(sim_config *config, uint64_t seed, world **out)
{
	world *w;

	*out = NULL;
	if (snap_endpoint_count > SIM_ENDPOINTS_TABLE_MAX)
		return SIM_ERR_INVALID;
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return SIM_ERR_NOMEM;
	/* every endpoint of the table must have its operation */
	for (size_t i = 0; i < snap_endpoint_count; i++) {
		for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++)
			if (strcmp(ops[k].name, snap_endpoints[i].name) == 0)
				w->ops[i] = &ops[k];
		if (w->ops[i] == NULL) {
			fprintf(stderr, "doku-snapsim: no operation for endpoint %s\n",
				snap_endpoints[i].name);
			free(w);
			return SIM_ERR_INVALID;
		}
	}
	if (pthread_mutex_init(&w->lock, NULL) != 0) {
		free(w);
		return SIM_ERR_NOMEM;
	}
	w->config = config;
	w->settings = config->settings;
	atomic_init(&w->clock_skew, config->settings.clock_skew);
	atomic_init(&w->clock_offset, 0);
	w->seed = seed;
	rng_seed(&w->rng, seed);
	copy_str(w->base_url, sizeof(w->base_url), "https://127.0.0.1");
	vec_init(&w->accounts, sizeof(struct account), ACCOUNTS_MAX);
	vec_init(&w->otps, sizeof(struct otp), OTPS_MAX);
	vec_init(&w->bindings, sizeof(struct binding), BINDINGS_MAX);
	vec_init(&w->sessions, sizeof(struct session), SESSIONS_MAX);
	vec_init(&w->txns, sizeof(struct txn), TXNS_MAX);
	sim_map_init(&w->keys, KEYS_MAX);
	sim_map_init(&w->phones, ACCOUNTS_MAX);
	sim_map_init(&w->account_ids, ACCOUNTS_MAX);
	sim_map_init(&w->emails, ACCOUNTS_MAX);
	sim_map_init(&w->links, BINDINGS_MAX);
	sim_map_init(&w->auth_codes, BINDINGS_MAX);
	sim_map_init(&w->access, SESSIONS_MAX);
	sim_map_init(&w->refresh, SESSIONS_MAX);
	sim_idset_init(&w->extids, EXTIDS_PER_DAY_MAX);
	world_clear(w);
	*out = w;
	return SIM_OK;
}

void world_free(world *w)
{
	if (w == NULL)
		return;
	world_clear(w);
	pthread_mutex_destroy(&w->lock);
	explicit_bzero(w, sizeof(*w));
	free(w);
}

void world_set_base_url(world *w, const char *url)
{
	world_lock(w);
	copy_str(w->base_url, sizeof(w->base_url), url);
	world_unlock(w);
}

void world_lock(world *w)
{
	pthread_mutex_lock(&w->lock);
}

void world_unlock(world *w)
{
	pthread_mutex_unlock(&w->lock);
}

/* ---- request path ------------------------------------------------------- */

bool world_b2b_check(world *w, sim_partner *p, const char *token, size_t len)
{
	struct b2b_state *st = &w->b2b[p->index];
	time_t now = world_now(w);

	if (st->token[0] == '\0' || !ct_equal(st->token, strlen(st->token), token, len) ||
	    now > st->expires)
		return false;
	st->expires = now + w->settings.b2b_token_ttl;
	return true;
}

int world_customer_check(world *w, sim_partner *p, const char *token, size_t len)
{
	char key[TOKEN_LEN + 1];
	time_t now = world_now(w);
	struct session *s;
	enum binding_state bs;
	uint32_t i;

	if (len != TOKEN_LEN)
		return -1;
	memcpy(key, token, len);
	key[len] = '\0';
	if (sim_map_get(&w->access, key, &i) != 0)
		return -1;
	s = SES(w, i);
	bs = BND(w, s->binding)->state;
	if (s->partner != p->index || s->revoked || now > s->access_expires ||
	    (bs != BIND_ACTIVE && bs != BIND_UNBINDING))
		return -1;
	s->access_expires = now + w->settings.customer_token_ttl;
	return (int)i;
}

int world_extid_claim(world *w, sim_partner *p, const char *id, size_t len)
{
	long day = (long)((world_now(w) + JAKARTA_OFFSET_S) / DAY_S);

	if (day != w->extid_day) {
		sim_idset_clear(&w->extids);
		w->extid_day = day;
	}
	return sim_idset_add(&w->extids, (unsigned)p->index, id, len);
}

bool world_duplicate(world *w, sim_partner *p, const snap_endpoint *ep,
		     const ProtobufCMessage *req, const char **field)
{
	const struct op *op = w->ops[ep - snap_endpoints];
	const ProtobufCFieldDescriptor *f;
	const char *ref;
	uint32_t seen;

	if (op == NULL || op->key_field == NULL)
		return false;
	f = protobuf_c_message_descriptor_get_field_by_name(req->descriptor, op->key_field);
	if (f == NULL || f->type != PROTOBUF_C_TYPE_STRING)
		return false;
	ref = *(char *const *)((const char *)req + f->offset);
	if (ref == NULL || ref[0] == '\0' || !key_get(w, p->index, ep->service_code, ref, &seen))
		return false;
	*field = strcmp(op->key_field, "partner_refund_no") == 0 ? "partnerRefundNo" :
								   "partnerReferenceNo";
	return true;
}

int world_run(world *w, world_call *c)
{
	const struct op *op = w->ops[c->ep - snap_endpoints];

	c->resp = NULL;
	memset(&c->refusal, 0, sizeof(c->refusal));
	return op->run(w, c);
}

void world_revoke_b2b(world *w, sim_partner *p)
{
	w->b2b[p->index].token[0] = '\0';
}

void world_fault_customer(world *w, sim_partner *p, const char *token, size_t len, bool revoke)
{
	char key[TOKEN_LEN + 1];
	uint32_t i;

	if (len != TOKEN_LEN)
		return;
	memcpy(key, token, len);
	key[len] = '\0';
	if (sim_map_get(&w->access, key, &i) != 0 || SES(w, i)->partner != p->index)
		return;
	if (revoke)
		revoke_session(w, i);
	else
		SES(w, i)->access_expires = world_now(w) - 1;
}

/* ---- control API -------------------------------------------------------- */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static json_t *time_json(time_t t)
{
	char ts[SNAP_TIMESTAMP_LEN + 1];

	if (t == 0 || snap_time_format(t, ts) != 0)
		return json_null();
	return json_string(ts);
}

static json_t *money_json(int64_t cents)
{
	char text[32];

	return json_string(money_text(text, cents));
}

json_t *world_ctl_settings(world *w)
{
	json_t *o;

	world_lock(w);
	o = json_pack("{s:I,s:I,s:I,s:I,s:I,s:b,s:b}",
		      "b2bTokenTtl", (json_int_t)w->settings.b2b_token_ttl,
		      "customerTokenTtl", (json_int_t)w->settings.customer_token_ttl,
		      "refreshTokenTtl", (json_int_t)w->settings.refresh_token_ttl,
		      "otpTtl", (json_int_t)w->settings.otp_ttl,
		      "clockSkew", (json_int_t)w->settings.clock_skew,
		      "autoApproveBindings", w->settings.auto_approve_bindings,
		      "autoApprovePurchases", w->settings.auto_approve_purchases);
	world_unlock(w);
	return o;
}

int world_ctl_set_settings(world *w, const json_t *changes, char *err, size_t errlen)
{
	static const struct {
		const char *json;
		size_t offset;
		bool is_bool;
	} fields[] = {
		{ "b2bTokenTtl", offsetof(sim_settings, b2b_token_ttl), false },
		{ "customerTokenTtl", offsetof(sim_settings, customer_token_ttl), false },
		{ "refreshTokenTtl", offsetof(sim_settings, refresh_token_ttl), false },
		{ "otpTtl", offsetof(sim_settings, otp_ttl), false },
		{ "clockSkew", offsetof(sim_settings, clock_skew), false },
		{ "autoApproveBindings", offsetof(sim_settings, auto_approve_bindings), true },
		{ "autoApprovePurchases", offsetof(sim_settings, auto_approve_purchases), true },
	};
	const char *key;
	json_t *value;
	sim_settings next;
	int rc;

	if (!json_is_object(changes)) {
		set_err(err, errlen, "expected a JSON object");
		return SIM_ERR_INVALID;
	}
	world_lock(w);
	next = w->settings;
	json_object_foreach((json_t *)changes, key, value) {
		size_t i;

		for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
			if (strcmp(fields[i].json, key) == 0)
				break;
		if (i == sizeof(fields) / sizeof(fields[0])) {
			set_err(err, errlen, "unknown setting %s", key);
			rc = SIM_ERR_INVALID;
			goto out;
		}
		if (fields[i].is_bool && json_is_boolean(value)) {
			*(bool *)((char *)&next + fields[i].offset) = json_is_true(value);
		} else if (!fields[i].is_bool && json_is_integer(value)) {
			*(long *)((char *)&next + fields[i].offset) = (long)json_integer_value(value);
		} else {
			set_err(err, errlen, "%s: expected %s", key,
				fields[i].is_bool ? "true or false" : "an integer");
			rc = SIM_ERR_INVALID;
			goto out;
		}
	}
	rc = sim_settings_check(&next, err, errlen);
	if (rc == 0) {
		w->settings = next;
		atomic_store(&w->clock_skew, next.clock_skew);
	}
out:
	world_unlock(w);
	return rc;
}

json_t *world_ctl_clock(world *w)
{
	time_t now = world_now(w);

	return json_pack("{s:o,s:I,s:I}", "now", time_json(now), "offsetSeconds",
			 (json_int_t)atomic_load(&w->clock_offset), "epochSeconds", (json_int_t)now);
}

int world_ctl_advance_clock(world *w, long seconds, char *err, size_t errlen)
{
	long next = atomic_load(&w->clock_offset) + seconds;

	if (next > SIM_TTL_MAX || next < -SIM_TTL_MAX) {
		set_err(err, errlen, "the clock offset must stay within +-%ld seconds", SIM_TTL_MAX);
		return SIM_ERR_INVALID;
	}
	atomic_fetch_add(&w->clock_offset, seconds);
	return SIM_OK;
}

json_t *world_ctl_otps(world *w, const char *phone)
{
	json_t *list = json_array();

	if (list == NULL)
		return NULL;
	world_lock(w);
	for (size_t i = 0; i < w->otps.count; i++) {
		const struct otp *o = OTP(w, i);
		const struct account *a = ACC(w, o->account);

		if (o->state != OTP_WAITING || (phone != NULL && strcmp(phone, a->phone) != 0))
			continue;
		json_array_append_new(list, json_pack(
			"{s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:i}",
			"purpose", o->purpose == OTP_CREATION ? "account-creation" : "unbinding",
			"phoneNo", a->phone, "otp", o->code,
			"clientId", w->config->partners[o->partner].client_id,
			"partnerReferenceNo", o->partner_ref, "referenceNo", o->reference_no,
			"expiresAt", time_json(o->expires), "failures", o->failures));
	}
	world_unlock(w);
	return list;
}

static bool pin_ok(const char *pin)
{
	return pin != NULL && digits_ok(pin, PIN_LEN, PIN_LEN);
}

int world_ctl_set_pin(world *w, const char *phone, const char *token, const char *pin,
		      json_t **out, char *err, size_t errlen)
{
	uint32_t acc = NONE, seen;
	struct account *a;
	int rc;

	*out = NULL;
	if (!pin_ok(pin)) {
		set_err(err, errlen, "pin: %d digits", PIN_LEN);
		return SIM_ERR_INVALID;
	}
	world_lock(w);
	if (phone != NULL) {
		if (sim_map_get(&w->phones, phone, &acc) != 0)
			acc = NONE;
	} else if (token != NULL) {
		for (size_t i = 0; i < w->accounts.count; i++)
			if (ACC(w, i)->pin_token[0] != '\0' && strcmp(ACC(w, i)->pin_token, token) == 0)
				acc = (uint32_t)i;
	}
	if (acc == NONE) {
		set_err(err, errlen, "no such account (give phoneNo or the create-PIN token)");
		rc = SIM_ERR_NOT_FOUND;
		goto out;
	}
	a = ACC(w, acc);
	if (a->state != ACC_PIN_PENDING) {
		set_err(err, errlen, "the account is %s, not waiting for a PIN",
			account_state_names[a->state]);
		rc = SIM_ERR_EXISTS;
		goto out;
	}
	copy_str(a->pin, sizeof(a->pin), pin);
	a->pin_token[0] = '\0';
	do
		rng_text(&w->rng, a->account_id, ACCOUNT_ID_LEN, DIGITS);
	while (a->account_id[0] == '0' || sim_map_get(&w->account_ids, a->account_id, &seen) == 0);
	rc = sim_map_put(&w->account_ids, a->account_id, acc);
	if (rc != 0) {
		a->account_id[0] = '\0';
		set_err(err, errlen, "the world is full");
		goto out;
	}
	a->state = ACC_ACTIVE;
	*out = json_pack("{s:s,s:s,s:s}", "accountId", a->account_id, "phoneNo", a->phone,
			 "state", account_state_names[a->state]);
out:
	world_unlock(w);
	return rc;
}

int world_ctl_decide_binding(world *w, const char *link_id, const char *phone,
			     const char *pin, bool approve, json_t **out, char *err,
			     size_t errlen)
{
	uint32_t bi, acc;
	struct binding *bd;
	int rc = SIM_OK;

	*out = NULL;
	world_lock(w);
	if (link_id == NULL || sim_map_get(&w->links, link_id, &bi) != 0) {
		set_err(err, errlen, "no such linkId");
		rc = SIM_ERR_NOT_FOUND;
		goto out;
	}
	bd = BND(w, bi);
	if (bd->state != BIND_PENDING) {
		set_err(err, errlen, "the binding is %s, not PENDING", binding_state_names[bd->state]);
		rc = SIM_ERR_EXISTS;
		goto out;
	}
	acc = bd->account;
	if (approve && acc == NONE) {
		if (phone == NULL || (acc = account_find(w, phone)) == NONE ||
		    ACC(w, acc)->state != ACC_ACTIVE) {
			set_err(err, errlen, "the binding names no account: give the phoneNo of an active one");
			rc = SIM_ERR_NOT_FOUND;
			goto out;
		}
		if (live_binding(w, acc, bd->partner) != NONE) {
			set_err(err, errlen, "that account is already bound to this partner");
			rc = SIM_ERR_EXISTS;
			goto out;
		}
	}
	if (approve && (!pin_ok(pin) || strcmp(pin, ACC(w, acc)->pin) != 0)) {
		set_err(err, errlen, "wrong PIN");
		rc = SIM_ERR_REFUSED;
		goto out;
	}
	if (approve) {
		bd->account = acc;
		rc = approve_binding(w, bi);
		if (rc != 0) {
			set_err(err, errlen, "the world is full");
			goto out;
		}
	} else {
		bd->state = BIND_REJECTED;
	}
	bd = BND(w, bi);
	*out = json_pack("{s:s,s:s,s:s,s:s}", "linkId", bd->link_id,
			 "state", binding_state_names[bd->state],
			 "accountId", bd->account != NONE ? ACC(w, bd->account)->account_id : "",
			 "authCode", bd->auth_code);
out:
	world_unlock(w);
	return rc;
}

int world_ctl_decide_purchase(world *w, const char *client_id, const char *partner_ref,
			      const char *reference_no, const char *pin, bool approve,
			      json_t **out, char *err, size_t errlen)
{
	uint32_t t = NONE;
	struct txn *x;
	int rc = SIM_OK;

	*out = NULL;
	world_lock(w);
	for (size_t i = 0; i < w->txns.count && t == NONE; i++) {
		x = TXN(w, i);
		if (x->type != TXN_PAYMENT)
			continue;
		if (reference_no != NULL && strcmp(x->reference_no, reference_no) == 0)
			t = (uint32_t)i;
		else if (reference_no == NULL && partner_ref != NULL &&
			 strcmp(x->partner_ref, partner_ref) == 0 &&
			 (client_id == NULL ||
			  strcmp(w->config->partners[x->partner].client_id, client_id) == 0))
			t = (uint32_t)i;
	}
	if (t == NONE) {
		set_err(err, errlen, "no such purchase (give referenceNo or partnerReferenceNo)");
		rc = SIM_ERR_NOT_FOUND;
		goto out;
	}
	x = TXN(w, t);
	if (x->status != TS_PENDING) {
		set_err(err, errlen, "the purchase is %s, not PENDING", txn_status_names[x->status]);
		rc = SIM_ERR_EXISTS;
		goto out;
	}
	if (approve) {
		if (!pin_ok(pin) || strcmp(pin, ACC(w, x->account)->pin) != 0) {
			set_err(err, errlen, "wrong PIN");
			rc = SIM_ERR_REFUSED;
			goto out;
		}
		pay_purchase(w, t);
	} else {
		x->status = TS_FAILED;
		x->closed = world_now(w);
		copy_str(x->remark, sizeof(x->remark), "Rejected by the customer");
	}
	*out = json_pack("{s:s,s:s,s:s,s:s}", "referenceNo", x->reference_no,
			 "partnerReferenceNo", x->partner_ref, "status", txn_status_names[x->status],
			 "remark", x->remark);
out:
	world_unlock(w);
	return rc;
}

json_t *world_ctl_accounts(world *w)
{
	json_t *list = json_array();

	if (list == NULL)
		return NULL;
	world_lock(w);
	for (size_t i = 0; i < w->accounts.count && i < CTL_LIST_MAX; i++) {
		const struct account *a = ACC(w, i);

		json_array_append_new(list, json_pack(
			"{s:s,s:s,s:s,s:s,s:s,s:o}", "accountId", a->account_id, "phoneNo", a->phone,
			"name", a->name, "email", a->email, "state", account_state_names[a->state],
			"balance", money_json(a->balance)));
	}
	world_unlock(w);
	return list;
}

json_t *world_ctl_bindings(world *w)
{
	json_t *list = json_array();

	if (list == NULL)
		return NULL;
	world_lock(w);
	for (size_t i = 0; i < w->bindings.count && i < CTL_LIST_MAX; i++) {
		const struct binding *b = BND(w, i);

		json_array_append_new(list, json_pack(
			"{s:s,s:s,s:s,s:s,s:s,s:s}", "linkId", b->link_id,
			"clientId", w->config->partners[b->partner].client_id,
			"state", binding_state_names[b->state],
			"accountId", b->account != NONE ? ACC(w, b->account)->account_id : "",
			"partnerReferenceNo", b->partner_ref, "authCode", b->auth_code));
	}
	world_unlock(w);
	return list;
}

json_t *world_ctl_transactions(world *w, const char *type, const char *status)
{
	json_t *list = json_array();
	size_t n = 0;

	if (list == NULL)
		return NULL;
	world_lock(w);
	for (size_t i = 0; i < w->txns.count && n < CTL_LIST_MAX; i++) {
		const struct txn *x = TXN(w, i);

		if ((type != NULL && strcmp(type, txn_type_names[x->type]) != 0) ||
		    (status != NULL && strcmp(status, txn_status_names[x->status]) != 0))
			continue;
		json_array_append_new(list, json_pack(
			"{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:o,s:o,s:o}",
			"type", txn_type_names[x->type], "status", txn_status_names[x->status],
			"clientId", w->config->partners[x->partner].client_id,
			"accountId", ACC(w, x->account)->account_id,
			"partnerReferenceNo", x->partner_ref, "referenceNo", x->reference_no,
			"externalId", x->external_id, "amount", money_json(x->amount),
			"refunded", money_json(x->refunded), "created", time_json(x->created),
			"paid", time_json(x->paid)));
		n++;
	}
	world_unlock(w);
	return list;
}

int world_ctl_tokens(world *w, const char *action, const char *kind, const char *client_id,
		     long *count, char *err, size_t errlen)
{
	bool revoke, b2b, customer;
	int partner = -1;
	time_t now;

	*count = 0;
	if (action == NULL || (strcmp(action, "revoke") != 0 && strcmp(action, "expire") != 0)) {
		set_err(err, errlen, "action: \"revoke\" or \"expire\"");
		return SIM_ERR_INVALID;
	}
	if (kind == NULL || (strcmp(kind, "b2b") != 0 && strcmp(kind, "customer") != 0 &&
			     strcmp(kind, "all") != 0)) {
		set_err(err, errlen, "kind: \"b2b\", \"customer\" or \"all\"");
		return SIM_ERR_INVALID;
	}
	if (client_id != NULL) {
		sim_partner *p = sim_config_partner(w->config, client_id, strlen(client_id));

		if (p == NULL) {
			set_err(err, errlen, "no such clientId");
			return SIM_ERR_NOT_FOUND;
		}
		partner = p->index;
	}
	revoke = strcmp(action, "revoke") == 0;
	b2b = strcmp(kind, "customer") != 0;
	customer = strcmp(kind, "b2b") != 0;
	world_lock(w);
	now = world_now(w);
	for (size_t i = 0; b2b && i < w->config->partner_count; i++) {
		struct b2b_state *st = &w->b2b[i];

		if ((partner >= 0 && (int)i != partner) || st->token[0] == '\0')
			continue;
		if (revoke)
			st->token[0] = '\0';
		else
			st->expires = now - 1;
		(*count)++;
	}
	for (size_t i = 0; customer && i < w->sessions.count; i++) {
		struct session *s = SES(w, i);

		if ((partner >= 0 && s->partner != partner) || s->revoked)
			continue;
		if (revoke)
			revoke_session(w, (uint32_t)i);
		else
			s->access_expires = now - 1;
		(*count)++;
	}
	world_unlock(w);
	return SIM_OK;
}

json_t *world_ctl_counters(world *w)
{
	json_t *o;

	world_lock(w);
	o = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "b2b", (json_int_t)w->b2b_issued,
		      "b2b2c", (json_int_t)w->b2b2c_issued, "refreshed", (json_int_t)w->refreshed,
		      "accounts", (json_int_t)w->accounts.count,
		      "bindings", (json_int_t)w->bindings.count,
		      "sessions", (json_int_t)w->sessions.count,
		      "transactions", (json_int_t)w->txns.count);
	world_unlock(w);
	return o;
}

void world_ctl_reset(world *w)
{
	world_lock(w);
	world_clear(w);
	w->settings = w->config->settings;
	atomic_store(&w->clock_skew, w->settings.clock_skew);
	atomic_store(&w->clock_offset, 0);
	rng_seed(&w->rng, w->seed);
	world_unlock(w);
}
