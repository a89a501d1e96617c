/* The daemon's one error space: its internal functions return 0 or a
 * negative DOKU_ERR_*, and each value names one failure only.
 *
 * The first members ARE the SNAP core's codes (snap_err.h), so a snap_*
 * result passes through unchanged; the daemon's own failures follow, apart
 * from them (-11 .. -31 are left to the SNAP core). The enums of the modules
 * (enum sealed_err, store_err, up_status, tok_err) are named subsets of this
 * one: their members are aliases of DOKU_ERR_* values. Codes of the RPC
 * protocol (doku.bridge.v1.Code) appear only at the RPC edge (rpc/call.c,
 * rpc/reply.c, rpc/admit.c, rpc/local.c), converted from these. */
#ifndef DOKU_BASE_DOKU_ERR_H
#define DOKU_BASE_DOKU_ERR_H

#include "snap_err.h"

enum doku_err {
	DOKU_OK = 0,
	/* the SNAP core's codes, unchanged */
	DOKU_ERR_NOMEM = SNAP_ERR_NOMEM,         /* out of memory, or over a memory limit */
	DOKU_ERR_INVALID = SNAP_ERR_INVALID,     /* bad argument, malformed input */
	DOKU_ERR_TOO_BIG = SNAP_ERR_TOO_BIG,     /* over a size limit */
	DOKU_ERR_CRYPTO = SNAP_ERR_CRYPTO,       /* the crypto library failed */
	DOKU_ERR_KEY = SNAP_ERR_KEY,             /* not a usable key (PEM, kind of key) */
	DOKU_ERR_VERIFY = SNAP_ERR_VERIFY,       /* a signature did not verify */
	DOKU_ERR_JSON = SNAP_ERR_JSON,           /* malformed JSON, or not the message's */
	DOKU_ERR_MISSING = SNAP_ERR_MISSING,     /* a required field is missing */
	DOKU_ERR_FORMAT = SNAP_ERR_FORMAT,       /* a field has the wrong format */
	DOKU_ERR_NOT_FOUND = SNAP_ERR_NOT_FOUND,
	/* the daemon's own */
	DOKU_ERR_IO = -32,          /* a file, database or connection could not be read or written */
	DOKU_ERR_CORRUPT = -33,     /* stored data (the database, a row) is malformed */
	DOKU_ERR_VERSION = -34,     /* not our format, or a newer version of it */
	DOKU_ERR_WRONG_KEY = -35,   /* the sealing key is not the one the data was sealed with */
	DOKU_ERR_LOCKED = -36,      /* another process holds the state directory */
	DOKU_ERR_EXISTS = -37,      /* already recorded (the journal's key) */
	DOKU_ERR_DUPLICATE = -38,   /* an identifier that must be unique is taken (X-EXTERNAL-ID) */
	DOKU_ERR_STATE = -39,       /* not allowed in the current state */
	DOKU_ERR_SEALED = -40,      /* a stored sealed token does not open */
	DOKU_ERR_NO_KEY = -41,      /* no sealing key: sessions are not stored */
	DOKU_ERR_CLOSED = -42,      /* closing: no new requests */
	DOKU_ERR_BUSY = -43,        /* too many requests queued */
	DOKU_ERR_AUTH = -44,        /* a sealed value does not authenticate: wrong key, or changed */
	DOKU_ERR_KEYFILE = -45,     /* key file missing, unreadable, refused or malformed */
	DOKU_ERR_UNAVAILABLE = -46, /* DOKU could not be reached, or failed (5xx) */
	DOKU_ERR_REFUSED = -47,     /* DOKU refused the request (4xx) */
	DOKU_ERR_NO_SESSION = -48,  /* no such customer session, or it expired */
	DOKU_ERR_LIMIT = -49,       /* a configured maximum is reached (max_customer_sessions) */
	DOKU_ERR_TIMEOUT = -50,     /* a deadline passed */
	DOKU_ERR_CONNECT = -51,     /* failed before the request was sent */
	DOKU_ERR_CANCELLED = -52,   /* cancelled */
	DOKU_ERR_INTERNAL = -53,    /* a library refused, or a bug */
};

/* No two members share a value: doku_strerror's switch has a case for each
 * (a duplicate does not compile), and tests/unit/daemon/test_daemon_err.c
 * walks every value down to DOKU_ERR_LOWEST. */
#define DOKU_ERR_LOWEST DOKU_ERR_INTERNAL

/* A static, human-readable text of err: "ok" for 0, "unknown error" for a
 * value that is not an enum doku_err. */
const char *doku_strerror(int err);

#endif
