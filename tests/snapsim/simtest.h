/* Test helpers for doku-snapsim: throwaway credentials, the simulator as a
 * child process (synchronised on its ready line), a SNAP client that signs
 * with the SNAP core over real TLS (verification on, the test CA), and the
 * control API. Used by the cmocka tests and the benchmark. */
#ifndef DOKU_SNAPSIM_SIMTEST_H
#define DOKU_SNAPSIM_SIMTEST_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <curl/curl.h>
#include <jansson.h>

#include "snap_sign.h"

/* The paths of the DOKU Wallet SNAP endpoints. */
#define P_TOKEN_B2B "/authorization/v1/access-token/b2b"
#define P_TOKEN_B2B2C "/authorization/v1/access-token/b2b2c"
#define P_CREATE "/snap-adapter/b2b/v1.0/registration-account-creation"
#define P_VERIFY_OTP "/snap-adapter/b2b/v1.0/otp-verification"
#define P_BIND "/snap-adapter/b2b/v1.0/registration-account-binding"
#define P_INQUIRE "/snap-adapter/b2b/v1.0/registration-account-inquiry"
#define P_UNBIND "/snap-adapter/b2b/v1.0/registration-account-unbinding"
#define P_BALANCE "/snap-adapter/b2b2c/v1.0/balance-inquiry"
#define P_BANK_INQUIRY "/snap-adapter/b2b2c/v1.0/emoney/bank-account-inquiry"
#define P_TRANSFER "/snap-adapter/b2b2c/v1.0/emoney/transfer-bank"
#define P_TOPUP "/snap-adapter/b2b2c/v1.0/emoney/topup"
#define P_TOPUP_STATUS "/snap-adapter/b2b2c/v1.0/emoney/topup-status"
#define P_PURCHASE "/snap-adapter/b2b2c/v1.0/debit/payment-host-to-host"
#define P_PURCHASE_STATUS "/snap-adapter/b2b2c/v1.0/debit/status"
#define P_CANCEL "/snap-adapter/b2b2c/v1.0/debit/cancel"
#define P_REFUND "/snap-adapter/b2b2c/v1.0/debit/refund"
#define P_HISTORY "/snap-adapter/b2b2c/v1.0/transaction-history-list"
#define P_HISTORY_DETAIL "/snap-adapter/b2b2c/v1.0/transaction-history-detail"

#define SIMTEST_READY_TIMEOUT_MS 60000 /* ASan builds start slowly */
#define SIMTEST_STOP_TIMEOUT_MS 30000
#define SIMTEST_HTTP_TIMEOUT_S 30
#define SIMTEST_ADDR_MAX 64
#define SIMTEST_TOKEN_MAX 256
#define SIMTEST_BODY_MAX (32u * 1024u * 1024u) /* answers kept at most */

typedef struct simtest_proc {
	pid_t pid;
	int out_fd;                          /* the child's stdout */
	char https[SIMTEST_ADDR_MAX];        /* "127.0.0.1:PORT" from the ready line */
	char control[SIMTEST_ADDR_MAX];
	char creds[PATH_MAX];                /* the credentials directory */
} simtest_proc;

/* A new directory of throwaway credentials (tests/tools/mkcreds.sh). 0 or -1. */
int simtest_make_creds(char dir[PATH_MAX]);
void simtest_remove_creds(const char *dir);

/* Start doku-snapsim on 127.0.0.1:0 (both listeners) with the partner of
 * creds and the extra arguments (NULL-terminated list, may be NULL); wait
 * for its ready line. 0, or -1 when it did not become ready in time. */
int simtest_start(simtest_proc *p, const char *creds, const char *const *extra);

/* Start with an exact argument list (argv[0] excluded, NULL-terminated)
 * and return the exit status once it ends by itself (for bad arguments).
 * -1 on timeout. */
int simtest_run_expect_exit(const char *const *args, char *err_out, size_t err_len);

/* SIGTERM, then wait: the exit status (0 for a clean exit), 128+signal when
 * killed by a signal, -1 on timeout (it is then killed). */
int simtest_stop(simtest_proc *p);

/* The port of an "ADDR:PORT" text. */
int simtest_port(const char *addr);

typedef struct simtest_reply {
	long http;        /* 0: no HTTP answer (see curl_rc) */
	int curl_rc;      /* CURLcode of the transfer */
	char *body;       /* NUL-terminated, malloc */
	size_t len;
	json_t *json;     /* the body parsed, or NULL */
	const char *code; /* responseCode, or "" */
	double seconds;   /* total time of the transfer */
} simtest_reply;

void simtest_reply_free(simtest_reply *r);

/* A field of the reply's JSON by dotted path ("additionalInfo.authCode");
 * "" when absent. */
const char *simtest_field(const simtest_reply *r, const char *path);

typedef struct simtest_client {
	CURL *curl;                          /* keep-alive */
	char base[SIMTEST_ADDR_MAX + 16];    /* "https://127.0.0.1:PORT" */
	char ca[PATH_MAX];
	char client_id[128];
	unsigned char secret[512];
	size_t secret_len;
	snap_rsa *key;
	char b2b[SIMTEST_TOKEN_MAX];
	char customer[SIMTEST_TOKEN_MAX];
	char refresh[SIMTEST_TOKEN_MAX];
} simtest_client;

/* A client of the simulator p with the partner credentials of p->creds. */
int simtest_client_init(simtest_client *c, const simtest_proc *p);
void simtest_client_free(simtest_client *c);

/* Knobs to make a request wrong in one way. */
typedef struct simtest_opts {
	const char *omit;            /* leave this header out */
	const char *set_name;        /* set this header ... */
	const char *set_value;       /* ... to this value */
	const char *timestamp;       /* X-TIMESTAMP to send and sign */
	const char *external_id;     /* X-EXTERNAL-ID */
	const char *b2b_token;       /* instead of c->b2b */
	const char *customer_token;  /* instead of c->customer */
	const char *sign_body;       /* sign these bytes, send the body */
	bool bad_signature;          /* corrupt the signature */
	const char *method;          /* instead of POST */
	bool expect_100;             /* let curl send Expect: 100-continue */
	const char *secret;          /* sign with this secret instead */
	bool fresh_connection;       /* a new connection, closed afterwards (no
					curl retry of a dropped reused one) */
} simtest_opts;

/* An RSA-signed token request. 0 when an HTTP answer came (any status). */
int simtest_token(simtest_client *c, const char *path, const char *body,
		  const simtest_opts *o, simtest_reply *out);

/* An HMAC-signed service call (customer token added on b2b2c paths). */
int simtest_call(simtest_client *c, const char *path, const char *body,
		 const simtest_opts *o, simtest_reply *out);

/* Fetch a B2B token into c->b2b. 0 or -1. */
int simtest_b2b(simtest_client *c);

/* A control API call; *out (may be NULL) gets the parsed JSON answer.
 * Returns the HTTP status, or -1. */
long simtest_ctl(const simtest_proc *p, const char *method, const char *path, const char *body,
		 json_t **out);

/* A control API GET returning raw text (malloc) into *text. */
long simtest_ctl_text(const simtest_proc *p, const char *path, char **text);

/* Unique references for this process. */
void simtest_ref(char *out, size_t n, const char *prefix);
void simtest_phone(char *out, size_t n);

#define SIMTEST_PIN "123456"

typedef struct simtest_customer {
	char phone[32];
	char account_id[32];
	char link_id[64];
	char bind_ref[80];
	char auth_code[128];
} simtest_customer;

/* A new active account: create it, read and verify the OTP, set the PIN
 * (SIMTEST_PIN). Fills phone and account_id. 0 or -1. */
int simtest_new_account(simtest_client *c, const simtest_proc *p, simtest_customer *cu);

/* The whole road to a customer token: create an account, read and verify
 * the OTP, set the PIN, bind (successParams.accountId = phone), approve the
 * binding, read the authCode with an account inquiry and exchange it. The
 * client's customer and refresh tokens are set. 0 or -1 (with a message on
 * stderr). */
int simtest_open_customer(simtest_client *c, const simtest_proc *p, simtest_customer *cu);

/* Top up the customer's account by amount ("50000.00"). 0 or -1. */
int simtest_top_up(simtest_client *c, const simtest_customer *cu, const char *amount);

#endif
