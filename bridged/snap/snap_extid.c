/* X-EXTERNAL-ID: Jakarta time (14) + random process prefix (12) + counter (10). */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/random.h>

#include "snap_extid.h"
#include "snap_err.h"
#include "snap_time.h"

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#define EXTID_TIME_DIGITS 14
#define EXTID_PREFIX_DIGITS 12
#define EXTID_COUNTER_DIGITS 10
#define EXTID_PREFIX_MOD 1000000000000ull /* 10^12 */
#define EXTID_COUNTER_MOD 10000000000ull  /* 10^10 */

_Static_assert(EXTID_TIME_DIGITS + EXTID_PREFIX_DIGITS + EXTID_COUNTER_DIGITS == SNAP_EXTID_MAX,
	       "an external id is 36 digits");

/* The prefix plus one, 0 until init: one atomic word tells both. */
static atomic_uint_least64_t extid_prefix;
static atomic_uint_least64_t extid_counter;

int snap_extid_init(void)
{
	/* Rejection sampling: the largest multiple of 10^12 that fits in 64 bits. */
	const uint64_t lim = UINT64_MAX - UINT64_MAX % EXTID_PREFIX_MOD;
	WC_RNG rng;
	uint64_t v;
	int rc = SNAP_ERR_CRYPTO;

	if (wc_InitRng(&rng) != 0)
		return SNAP_ERR_CRYPTO;
	do {
		if (wc_RNG_GenerateBlock(&rng, (byte *)&v, sizeof(v)) != 0)
			goto out;
	} while (v >= lim);
	atomic_store(&extid_prefix, v % EXTID_PREFIX_MOD + 1);
	rc = SNAP_OK;
out:
	wc_FreeRng(&rng);
	return rc;
}

static void put_u64(char *p, uint64_t v, int n)
{
	while (n-- > 0) {
		p[n] = (char)('0' + v % 10);
		v /= 10;
	}
}

int snap_extid_next(char out[SNAP_EXTID_MAX + 1])
{
	char ts[SNAP_TIMESTAMP_LEN + 1];
	uint64_t prefix = atomic_load(&extid_prefix);
	uint64_t n;

	if (prefix == 0)
		return SNAP_ERR_INVALID;
	n = atomic_fetch_add(&extid_counter, 1) % EXTID_COUNTER_MOD;
	if (snap_time_format(time(NULL), ts) != 0)
		return SNAP_ERR_INVALID;
	/* "YYYY-MM-DDTHH:MM:SS+07:00" -> "YYYYMMDDHHMMSS" */
	memcpy(out, ts, 4);
	memcpy(out + 4, ts + 5, 2);
	memcpy(out + 6, ts + 8, 2);
	memcpy(out + 8, ts + 11, 2);
	memcpy(out + 10, ts + 14, 2);
	memcpy(out + 12, ts + 17, 2);
	put_u64(out + EXTID_TIME_DIGITS, prefix - 1, EXTID_PREFIX_DIGITS);
	put_u64(out + EXTID_TIME_DIGITS + EXTID_PREFIX_DIGITS, n, EXTID_COUNTER_DIGITS);
	out[SNAP_EXTID_MAX] = '\0';
	return SNAP_OK;
}

bool snap_extid_valid(const char *s, size_t len)
{
	if (s == NULL || len == 0 || len > SNAP_EXTID_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}
