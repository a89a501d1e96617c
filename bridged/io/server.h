/* The listening socket: its directory and permissions, accept, the cap on
 * connections, and the timers every connection shares (timeouts sweep,
 * deferred resumption). */
#ifndef DOKU_IO_SERVER_H
#define DOKU_IO_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "conn.h"

#define SERVER_BACKLOG 128
#define SERVER_DIR_MODE 0750
#define SERVER_SOCKET_MODE 0660
#define SERVER_SWEEP_MIN_MS 10u    /* finest timeout sweep period */
#define SERVER_SWEEP_MAX_MS 1000u  /* coarsest */
#define SERVER_LISTEN_FD 3         /* SD_LISTEN_FDS_START: socket activation */

typedef struct server server;

/* Listen on the socket systemd passed (socket activation: LISTEN_PID is
 * us, fd 3), or else create the socket's directory (0750) and the socket
 * (0660, group [bridge] socket_group of cfg); start the sweep. Every
 * accepted connection is handed to ops (conn.h) with ops_data. cfg is
 * borrowed until server_reconfigure replaces it. 0 or a negative errno
 * (logged). *out belongs to the caller: server_close. */
int server_start(uv_loop_t *loop, const config *cfg, const conn_ops *ops, void *ops_data,
		 server **out);

/* Stop accepting and remove the socket file (SIGTERM). */
void server_stop_accepting(server *s);

/* New limits from a reloaded configuration take effect (cfg borrowed). */
void server_reconfigure(server *s, const config *cfg);

/* Draining: connections stop reading new calls and close once their calls
 * are answered and their replies written. */
void server_drain(server *s);

/* Close every connection (calls still in flight are aborted or detached)
 * and the server's handles; the memory goes once libuv closed them. */
void server_close(server *s);

/* Connections open now, accepted and refused (max_connections) since start. */
unsigned server_connections(const server *s);
void server_counts(const server *s, uint64_t *accepted, uint64_t *refused);

#endif
