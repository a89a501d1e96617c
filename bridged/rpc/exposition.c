/* The counters' names and the daemon's gauges. */
#include "exposition.h"

#include "bridge.h"
#include "journal.h"
#include "reply.h"
#include "server.h"
#include "store.h"
#include "tokens.h"

static const counters_labels labels = {
	.code_name = reply_code_name,
	.outcome_name = reply_outcome_name,
};

int exposition_render(const struct bridge *b, unsigned own_calls, snap_buf *out)
{
	counters_gauges g = { 0 };

	g.uptime_s = (uv_now(b->loop) - b->started_ms) / 1000u;
	g.connections = server_connections(b->srv);
	server_counts(b->srv, &g.accepted, &g.refused);
	g.calls_in_flight = b->calls_in_flight > own_calls ? b->calls_in_flight - own_calls : 0;
	if (b->journal != NULL && store_shared(journal_store(b->journal))) {
		store_stats st;

		store_get_stats(journal_store(b->journal), &st);
		g.db.shared = true;
		g.db.connected = st.connected;
		g.db.round_trips = st.round_trips;
		g.db.errors = st.errors;
		g.db.reconnects = st.reconnects;
		g.db.rtt_us_sum = st.rtt_us_sum;
		g.db.rtt_us_max = st.rtt_us_max;
		g.db.rows_claimed = st.rows_claimed;
		g.db.orphans_adopted = st.orphans_adopted;
		g.db.leases_held = b->tokens != NULL ? tokens_leases_held(b->tokens) : 0;
	}
	return counters_render(&g, &labels, out);
}
