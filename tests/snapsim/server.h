/* The listeners of doku-snapsim: HTTPS (libmicrohttpd + GnuTLS, a pool of
 * epoll threads) for the SNAP endpoints, plain HTTP for the control API.
 *
 * The HTTPS side reads a request, takes a fault if one is armed for its
 * path, runs the checks (checks.c), holds the answer for an injected delay
 * (the connection is suspended, a timer thread resumes it), logs it and
 * answers. Bodies above SIM_BODY_MAX get 413, headers above SIM_CONN_MEMORY
 * 431, a silent connection is closed after the idle timeout, a body not
 * complete within SIM_REQUEST_DEADLINE_S closes the connection. A request
 * refused before its body is read (404, 405, 413) is answered after the
 * body has been read and thrown away (up to SIM_BODY_LINGER_MAX declared,
 * SIM_BODY_DISCARD_MAX undeclared, within SIM_BODY_LINGER_S), so that a
 * client still writing it gets the answer rather than a reset. */
#ifndef DOKU_SNAPSIM_SERVER_H
#define DOKU_SNAPSIM_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "app.h"

typedef struct sim_server sim_server;

typedef struct sim_server_opts {
	struct sockaddr_storage https_addr;
	socklen_t https_addr_len;
	struct sockaddr_storage control_addr;
	socklen_t control_addr_len;
	const char *cert_pem;    /* NUL-terminated PEM of the TLS certificate (chain) */
	const char *key_pem;     /* NUL-terminated PEM of its private key */
	unsigned threads;        /* HTTPS worker threads, 1..SIM_THREADS_MAX */
	unsigned idle_timeout;   /* seconds */
	bool verbose;            /* libmicrohttpd's own messages to stderr */
} sim_server_opts;

/* Parse "HOST:PORT" (HOST an IPv4 address, "[IPv6]" or "localhost"; PORT
 * 0..65535, 0 picks a free port). 0 or SIM_ERR_INVALID. */
int sim_addr_parse(const char *text, struct sockaddr_storage *out, socklen_t *len);

/* Whether the address is a loopback one (127.0.0.0/8 or ::1). */
bool sim_addr_is_loopback(const struct sockaddr_storage *addr);

/* Bind both listeners and start serving; the bound addresses are written to
 * app->https_addr / app->control_addr. app must outlive the server. 0 or a
 * negative code with err[errlen] saying why. *out is the caller's: stop it
 * with sim_server_stop. */
int sim_server_start(const sim_server_opts *opts, sim_app *app, sim_server **out, char *err,
		     size_t errlen);

/* Release every held connection, stop both listeners, free the server. */
void sim_server_stop(sim_server *s);

#endif
