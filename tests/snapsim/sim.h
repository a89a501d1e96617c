/* doku-snapsim: limits and status codes shared by its modules.
 *
 * The simulator is split by concern:
 *   main.c      command line, start-up, signals, shutdown
 *   server.c    HTTP/TLS plumbing (libmicrohttpd), delays, request bodies
 *   checks.c    the strict checks of one SNAP request, in DOKU's order
 *   world.c     the simulated DOKU Wallet: tokens, accounts, bindings, money
 *   control.c   the plain-HTTP control API
 *   faults.c    injected faults
 *   simlog.c    the request log ring and the counters
 *   partners.c  merchants (client id, secret, public key) and the config file
 *   simmap.c    hash tables */
#ifndef DOKU_SNAPSIM_SIM_H
#define DOKU_SNAPSIM_SIM_H

#include <stdbool.h>
#include <stddef.h>

enum sim_err {
	SIM_OK = 0,
	SIM_ERR_NOMEM = -1,     /* allocation failed */
	SIM_ERR_INVALID = -2,   /* bad argument or input */
	SIM_ERR_IO = -3,        /* a file or socket could not be used */
	SIM_ERR_FULL = -4,      /* a hard capacity limit was reached */
	SIM_ERR_REFUSED = -5,   /* the world refuses the operation (see its refusal) */
	SIM_ERR_EXISTS = -6,    /* already there */
	SIM_ERR_NOT_FOUND = -7, /* no such thing */
};

/* HTTP side */
#define SIM_BODY_MAX (64u * 1024u)           /* request bodies above this: 413 */
#define SIM_BODY_DISCARD_MAX (1024u * 1024u) /* undeclared bodies above this: connection closed */
#define SIM_BODY_LINGER_MAX (16u * 1024u * 1024u) /* a refused body declared up to this is read
						      and thrown away before the answer */
#define SIM_BODY_LINGER_S 10                 /* ... and must arrive within this (else closed) */
#define SIM_CONN_MEMORY (32u * 1024u)        /* per connection; request line + headers must fit (else 431) */
#define SIM_CONN_MAX 1024                    /* simultaneous connections per listener */
#define SIM_IDLE_TIMEOUT_DEFAULT 10          /* seconds a connection may stay silent */
#define SIM_REQUEST_DEADLINE_S 30            /* a request body must be complete within this */
#define SIM_THREADS_DEFAULT 2                /* HTTPS worker threads */
#define SIM_THREADS_MAX 64
#define SIM_DELAY_MAX_MS 600000              /* longest injected delay */
#define SIM_CONTROL_BODY_MAX (64u * 1024u)   /* control API request bodies */

/* Per request */
#define SIM_ARENA_LIMIT (4u * 1024u * 1024u) /* decoded request + answer message */
#define SIM_ANSWER_MAX (1024u * 1024u)       /* largest JSON answer */
#define SIM_MESSAGE_MAX 200                  /* responseMessage */
#define SIM_HEADER_MAX 4096                  /* longest header value looked at */
#define SIM_FIELD_MAX 512                    /* longest string field of any request body */

/* Identity */
#define SIM_CLIENT_ID_MAX 64  /* client id (X-CLIENT-KEY / X-PARTNER-ID) */
#define SIM_SECRET_MAX 512    /* client secret bytes */
#define SIM_PARTNERS_MAX 16   /* merchants configured at once */
#define SIM_ADDR_MAX 64       /* "127.0.0.1:8443" */
#define SIM_URL_MAX 128       /* the simulator's own https base URL */
#define SIM_ENDPOINTS_TABLE_MAX 32 /* rows of snap_endpoints the simulator can serve */

/* Tunables of the world, set by the config file and the control API. */
typedef struct sim_settings {
	long b2b_token_ttl;      /* seconds a B2B token lives without use (sliding) */
	long customer_token_ttl; /* seconds a B2B2C access token lives without use (sliding) */
	long refresh_token_ttl;  /* seconds a refresh token lives */
	long otp_ttl;            /* seconds an OTP can be verified */
	long clock_skew;         /* X-TIMESTAMP may be this far from now, either way */
	bool auto_approve_bindings;  /* bindings are approved as soon as made */
	bool auto_approve_purchases; /* purchases are paid as soon as made */
} sim_settings;

#define SIM_TTL_MAX (400L * 24 * 3600) /* longest lifetime a setting accepts */

#define SIM_SETTINGS_DEFAULT { 900, 900, 15L * 24 * 3600, 300, 900, false, false }

#endif
