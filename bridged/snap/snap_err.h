/* Status codes of the SNAP core: 0 for success, a negative SNAP_ERR_* otherwise. */
#ifndef DOKU_SNAP_ERR_H
#define DOKU_SNAP_ERR_H

enum snap_err {
	SNAP_OK = 0,
	SNAP_ERR_NOMEM = -1,    /* allocation failed or an arena/buffer limit was reached */
	SNAP_ERR_INVALID = -2,  /* malformed input (bad format, bad length, bad argument) */
	SNAP_ERR_TOO_BIG = -3,  /* input over a hard limit */
	SNAP_ERR_CRYPTO = -4,   /* the crypto library failed */
	SNAP_ERR_KEY = -5,      /* not a usable key (bad PEM, wrong kind of key) */
	SNAP_ERR_VERIFY = -6,   /* a signature did not verify */
	SNAP_ERR_JSON = -7,     /* malformed JSON, or JSON that does not fit the message */
	SNAP_ERR_MISSING = -8,  /* a required field is missing */
	SNAP_ERR_FORMAT = -9,   /* a field has the wrong format */
	SNAP_ERR_NOT_FOUND = -10,
};

/* A static, human-readable name for a status code. */
const char *snap_strerror(int err);

#endif
