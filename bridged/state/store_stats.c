/* What the store and its backends count (store_counters, store_backend.h),
 * and the fleet's beat and death times: shared by store.c and the backends,
 * in a file of their own so that neither calls the other back. */
#include "store_backend.h"

void store_counters_rtt(store_counters *c, uint64_t us)
{
	uint_least64_t max;

	if (c == NULL)
		return;
	atomic_fetch_add(&c->round_trips, 1);
	atomic_fetch_add(&c->rtt_us_sum, us);
	max = atomic_load(&c->rtt_us_max);
	while (us > max && !atomic_compare_exchange_weak(&c->rtt_us_max, &max, us))
		;
}

static unsigned fleet_beat_ms, fleet_dead_ms; /* tests only: store_fleet_times_set */

unsigned store_fleet_beat_ms(void)
{
	return fleet_beat_ms != 0 ? fleet_beat_ms : STORE_BEAT_MS;
}

unsigned store_fleet_dead_ms(void)
{
	return fleet_dead_ms != 0 ? fleet_dead_ms : STORE_DEAD_MS;
}

void store_fleet_times_set(unsigned beat_ms, unsigned dead_ms)
{
	fleet_beat_ms = beat_ms;
	fleet_dead_ms = dead_ms;
}
