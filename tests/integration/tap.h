/* A recording HTTPS reverse proxy between doku-bridged and doku-snapsim.
 *
 * It forwards every request unchanged (one fresh upstream connection per
 * request, so it never re-sends anything itself) and answers with the
 * simulator's status and body; when the simulator drops a connection it
 * drops the daemon's. On the way it records every token that crosses it:
 * the Bearer values of Authorization and Authorization-Customer, and the
 * accessToken / refreshToken of token answers. The tests then prove that no
 * recorded token ever shows in a reply or a log line. */
#ifndef DOKU_ITEST_TAP_H
#define DOKU_ITEST_TAP_H

#include <stddef.h>

typedef struct tap tap;

/* Listen on 127.0.0.1:0 with cert/key (PEM files), forward to
 * https://upstream (host:port) trusting ca. NULL on failure. */
tap *tap_start(const char *cert, const char *key, const char *ca, const char *upstream);
unsigned tap_port(const tap *t);

/* The tokens seen so far: calls fn for each (under the tap's lock). */
void tap_tokens(tap *t, void (*fn)(const char *token, void *arg), void *arg);
size_t tap_token_count(tap *t);

/* Requests received completely so far (before they are forwarded). */
unsigned long tap_received(tap *t);

void tap_stop(tap *t);

#endif
