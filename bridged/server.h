/* The listening socket: its directory and permissions, accept, the cap on
 * connections, and the timers every connection shares (timeouts sweep,
 * deferred resumption). */
#ifndef DOKU_BRIDGED_SERVER_H
#define DOKU_BRIDGED_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "bridge.h"
#include "list.h"

#define SERVER_BACKLOG 128
#define SERVER_DIR_MODE 0750
#define SERVER_SOCKET_MODE 0660
#define SERVER_SWEEP_MIN_MS 10u    /* finest timeout sweep period */
#define SERVER_SWEEP_MAX_MS 1000u  /* coarsest */
#define SERVER_LISTEN_FD 3         /* SD_LISTEN_FDS_START: socket activation */

typedef struct server {
	struct bridge *b;
	uv_pipe_t listener;
	bool listening;
	bool inherited;              /* systemd's socket (LISTEN_FDS): never unlinked */
	char *path;                  /* the socket's path, unlinked at stop */
	uv_timer_t sweep;            /* idle, half-sent and stalled connections */
	uv_idle_t resume;            /* deferred work of connections (below) */
	struct list_node resume_list;
	struct list_node conns;
	unsigned nconns;
	uint64_t next_number;        /* connection numbers, for the log */
	uint64_t refused;            /* connections refused at the cap */
	unsigned handles;            /* uv handles of the server not yet closed */
	bool closing;
} server;

/* Listen on the socket systemd passed (socket activation: LISTEN_PID is
 * us, fd 3), or else create the socket's directory (0750) and the socket
 * (0660, group [bridge] socket_group); start the sweep. 0 or a negative
 * errno (logged). *out belongs to the caller: server_close. */
int server_start(struct bridge *b, server **out);

/* Stop accepting and remove the socket file (SIGTERM). */
void server_stop_accepting(server *s);

/* New limits from a reloaded configuration take effect. */
void server_reconfigure(server *s);

/* Draining: connections stop reading new calls and close once their calls
 * are answered and their replies written. */
void server_drain(server *s);

/* Close every connection (calls still in flight are aborted or detached)
 * and the server's handles; the memory goes once libuv closed them. */
void server_close(server *s);

unsigned server_connections(const server *s);

/* Connection accounting (conn.c): a connection counts as a handle of the
 * server until libuv closed it, so the server outlives its connections. */
void server_conn_opened(server *s);
void server_conn_closed(server *s);

/* Run the deferred work of server.resume_list on the next loop turn (conn.c). */
void server_wake(server *s);

#endif
