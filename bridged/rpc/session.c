/* A connection's calls. */
#include "session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admit.h"
#include "bridge.h"
#include "call.h"
#include "doku/bridge/v1/bridge.pb-c.h"
#include "grpc.h"
#include "reply.h"

#define CODE(x) DOKU__BRIDGE__V1__CODE__##x

struct session {
	struct bridge *b;
	conn *conn;
	struct list_node calls;     /* struct link, of the calls in flight */
};

/* A call of the session, in the call's arena. */
struct link {
	struct list_node node;      /* in session.calls; unlinked: a call answered without joining */
	struct session *s;
	call *call;
	uint64_t id;
};

static void *on_open(conn *c, void *data)
{
	struct session *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->b = data;
	s->conn = c;
	list_init(&s->calls);
	return s;
}

static uint8_t *on_frame_begin(void *user, uint32_t len, void **frame)
{
	struct session *s = user;
	uint8_t *buf;

	*frame = call_new(s->b, len, &buf);
	return *frame != NULL ? buf : NULL;
}

static struct link *find(struct session *s, uint64_t id)
{
	for (struct list_node *n = s->calls.next; n != &s->calls; n = n->next) {
		struct link *l = list_entry(n, struct link, node);

		if (l->id == id)
			return l;
	}
	return NULL;
}

/* The call ended: its reply goes out, and the connection may read again. */
static void on_call_done(call *c, void *data)
{
	struct link *l = data;
	struct session *s = l->s;
	reply_facts f;

	call_result(c, &f);
	/* queue the reply first: releasing the last call of a draining or finished
	 * connection closes it once its output is written */
	(void)reply_send(s->conn, &f, call_arena(c));
	if (list_linked(&l->node))
		list_del(&l->node);
	conn_release(s->conn);
}

/* The link of call c (id) in its arena, holding a call on the connection;
 * joined: in the session's calls (else answered at once without joining). */
static struct link *link_call(struct session *s, call *c, uint64_t id, bool joined)
{
	struct link *l = snap_arena_alloc(call_arena(c), sizeof(*l));

	if (l == NULL)
		return NULL;
	l->s = s;
	l->call = c;
	l->id = id;
	list_node_init(&l->node);
	if (joined)
		list_add_tail(&s->calls, &l->node);
	conn_hold(s->conn);
	return l;
}

/* A call answered at once, without joining the session's calls (its id is unreadable or taken). */
static void refuse(struct session *s, call *c, uint64_t id, const char *log_name, int code,
		   const char *status)
{
	struct link *l = link_call(s, c, id, false);
	const peer *pr = conn_peer(s->conn);
	admission a;

	if (l == NULL) {
		call_discard(c);
		return;
	}
	memset(&a, 0, sizeof(a));
	a.code = code;
	a.customer_ref = "";
	snprintf(a.status, sizeof(a.status), "%s", status);
	snprintf(a.log_name, sizeof(a.log_name), "%s", log_name);
	call_start(c, &a, id, pr->uid, conn_number(s->conn), on_call_done, l);
}

static void on_frame_end(void *user, void *frame)
{
	struct session *s = user;
	call *c = frame;
	const peer *pr = conn_peer(s->conn);
	Doku__Bridge__V1__Call *env;
	struct link *l, *target;
	const uint8_t *bytes;
	uint32_t len;
	admission a;
	char why[96];

	bytes = call_frame(c, &len);
	env = admit_envelope(call_arena(c), bytes, len);
	if (env == NULL) {
		/* the envelope is unreadable, so is its id: answer id 0 */
		refuse(s, c, 0, "-", CODE(INVALID_ARGUMENT), "malformed Call envelope");
		return;
	}
	if (env->cancel) {
		target = find(s, env->id);
		call_discard(c);
		if (target != NULL)
			call_abort(target->call, CODE(CANCELLED), "cancelled by the caller");
		return;
	}
	if (find(s, env->id) != NULL) {
		char name[ADMIT_LOG_NAME_MAX];

		snprintf(name, sizeof(name), "%.64s", env->method);
		snprintf(why, sizeof(why), "id %llu is already in flight on this connection",
			 (unsigned long long)env->id);
		refuse(s, c, env->id, name, CODE(INVALID_ARGUMENT), why);
		return;
	}
	l = link_call(s, c, env->id, true);
	if (l == NULL) {
		call_discard(c);
		return;
	}
	admit(call_arena(c), env, pr, s->b->cfg, &a);
	call_start(c, &a, env->id, pr->uid, conn_number(s->conn), on_call_done, l);
}

static void on_frame_drop(void *user, void *frame)
{
	(void)user;
	call_discard(frame);
}

static void on_error(void *user, enum conn_error err, const char *msg)
{
	struct session *s = user;

	(void)reply_stream_error(s->conn, err, msg);
}

/* The connection closes: its calls lose their caller. */
static void on_close(void *user)
{
	struct session *s = user;

	while (!list_empty(&s->calls)) {
		struct link *l = list_entry(s->calls.next, struct link, node);

		list_del(&l->node);
		call_detach(l->call); /* may end the call (and free l) */
	}
	free(s);
}

static void on_gone(void *data)
{
	struct bridge *b = data;

	if (b->drain_check != NULL)
		b->drain_check(b);
}

const conn_ops session_conn_ops = {
	.open = on_open,
	.frame_begin = on_frame_begin,
	.frame_end = on_frame_end,
	.frame_drop = on_frame_drop,
	.error = on_error,
	.close = on_close,
	.gone = on_gone,
	.h2_open = grpc_open,     /* the same socket serves stock gRPC (rpc/grpc.c) */
	.h2 = &grpc_h2_ops,
};
