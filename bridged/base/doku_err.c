/* The texts of the daemon's error space. */
#include "doku_err.h"

/* One case per member: two members of one value would be a duplicate case,
 * which does not compile. */
const char *doku_strerror(int err)
{
	switch ((enum doku_err)err) {
	case DOKU_OK: return "ok";
	case DOKU_ERR_NOMEM:
	case DOKU_ERR_INVALID:
	case DOKU_ERR_TOO_BIG:
	case DOKU_ERR_CRYPTO:
	case DOKU_ERR_KEY:
	case DOKU_ERR_VERIFY:
	case DOKU_ERR_JSON:
	case DOKU_ERR_MISSING:
	case DOKU_ERR_FORMAT:
	case DOKU_ERR_NOT_FOUND:
		return snap_strerror(err); /* the SNAP core's own texts */
	case DOKU_ERR_IO: return "I/O error";
	case DOKU_ERR_CORRUPT: return "data corrupt";
	case DOKU_ERR_VERSION: return "not of a known format version";
	case DOKU_ERR_WRONG_KEY: return "the sealing key does not match";
	case DOKU_ERR_LOCKED: return "locked by another process";
	case DOKU_ERR_EXISTS: return "already exists";
	case DOKU_ERR_DUPLICATE: return "duplicate identifier";
	case DOKU_ERR_STATE: return "not allowed in the current state";
	case DOKU_ERR_SEALED: return "sealed token does not open";
	case DOKU_ERR_NO_KEY: return "no sealing key";
	case DOKU_ERR_CLOSED: return "closing";
	case DOKU_ERR_BUSY: return "too many requests queued";
	case DOKU_ERR_AUTH: return "does not authenticate: wrong key, or tampered";
	case DOKU_ERR_KEYFILE: return "unusable key file";
	case DOKU_ERR_UNAVAILABLE: return "DOKU unavailable";
	case DOKU_ERR_REFUSED: return "refused by DOKU";
	case DOKU_ERR_NO_SESSION: return "no such customer session";
	case DOKU_ERR_LIMIT: return "limit reached";
	case DOKU_ERR_TIMEOUT: return "timed out";
	case DOKU_ERR_CONNECT: return "cannot connect";
	case DOKU_ERR_CANCELLED: return "cancelled";
	case DOKU_ERR_INTERNAL: return "internal error";
	}
	return "unknown error";
}
