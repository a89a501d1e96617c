/* A scripted stand-in for doku-bridged on a Unix socket, run on a thread of
 * the test: it speaks the frame protocol and answers Calls as its mode says.
 * For unit tests of libdokubridge (no SNAP, no TLS). */
#ifndef FAKE_DAEMON_H
#define FAKE_DAEMON_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dokubridge.h"

#define FAKE_MAX_CALLS 4096
#define FAKE_IO_TIMEOUT_S 20 /* the fake gives up on a silent peer after this */

enum fake_mode {
	FAKE_ANSWER,        /* answer each Call at once (GetBalance: a balance; others: echo) */
	FAKE_REVERSE,       /* wait for batch Calls, answer them in reverse order */
	FAKE_SILENT,        /* never answer; answer a cancel frame CANCELLED/NOT_DONE */
	FAKE_BAD_FLAGS,     /* answer the first Call with a frame whose flags byte is 1 */
	FAKE_HUGE,          /* answer the first Call with a header announcing 1 GiB */
	FAKE_CLOSE,         /* close the connection after reading the first Call */
	FAKE_LATE,          /* answer each Call after the next one arrives (late replies) */
};

struct fake_daemon {
	char dir[64];
	char path[108];
	int lfd;
	pthread_t thread;
	enum fake_mode mode;
	size_t batch;                /* FAKE_REVERSE */
	/* what the fake saw (read after fake_stop, or under lock) */
	pthread_mutex_t lock;
	size_t n_calls;              /* Calls other than cancel frames */
	size_t n_cancels;
	uint64_t cancel_ids[FAKE_MAX_CALLS];
	uint32_t last_timeout_ms;
	char last_method[DOKUBRIDGE_METHOD_MAX + 1];
	char last_profile[DOKUBRIDGE_PROFILE_MAX + 1];
	char last_customer_ref[DOKUBRIDGE_CUSTOMER_REF_MAX + 1];
	int error;                   /* protocol errors the fake met */
};

/* Listen on a fresh socket in a private temp dir and serve one connection on
 * a thread. 0 or -1. */
int fake_start(struct fake_daemon *f, enum fake_mode mode);

/* Wait for the serving thread (the client must have closed its side, or the
 * mode closes itself) and remove the socket and dir. */
void fake_stop(struct fake_daemon *f);

#endif
