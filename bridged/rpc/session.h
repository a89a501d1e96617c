/* A caller's connection, as the RPC layer sees it: its calls in flight
 * (ids unique among them, the per-connection cap, cancels), the frames the
 * connection hands up (io/conn.h's conn_ops), and the replies it sends
 * down. A connection's end detaches its calls: a money-moving request
 * already sent runs to its end, anything else stops. */
#ifndef DOKU_RPC_SESSION_H
#define DOKU_RPC_SESSION_H

#include "conn.h"

struct bridge;

/* The conn_ops of the daemon's socket; their data is the bridge. */
extern const conn_ops session_conn_ops;

#endif
