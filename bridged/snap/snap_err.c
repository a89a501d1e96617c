/* Names of the SNAP core's status codes. */
#include "snap_err.h"

const char *snap_strerror(int err)
{
	switch (err) {
	case SNAP_OK: return "ok";
	case SNAP_ERR_NOMEM: return "out of memory or over a memory limit";
	case SNAP_ERR_INVALID: return "invalid input";
	case SNAP_ERR_TOO_BIG: return "input over a size limit";
	case SNAP_ERR_CRYPTO: return "crypto library failure";
	case SNAP_ERR_KEY: return "not a usable key";
	case SNAP_ERR_VERIFY: return "signature does not verify";
	case SNAP_ERR_JSON: return "bad JSON";
	case SNAP_ERR_MISSING: return "required field missing";
	case SNAP_ERR_FORMAT: return "field has the wrong format";
	case SNAP_ERR_NOT_FOUND: return "not found";
	default: return "unknown error";
	}
}
