/* The counters' names and the daemon's gauges. */
#include "exposition.h"

#include "bridge.h"
#include "outcome.h"
#include "server.h"

static const counters_labels labels = {
	.code_name = outcome_code_name,
	.outcome_name = outcome_name,
};

int exposition_render(const struct bridge *b, unsigned own_calls, snap_buf *out)
{
	counters_gauges g = { 0 };

	g.uptime_s = (uv_now(b->loop) - b->started_ms) / 1000u;
	g.connections = server_connections(b->srv);
	server_counts(b->srv, &g.accepted, &g.refused);
	g.calls_in_flight = b->calls_in_flight > own_calls ? b->calls_in_flight - own_calls : 0;
	return counters_render(&g, &labels, out);
}
