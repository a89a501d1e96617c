/* libFuzzer: a client's byte stream as doku-bridged reads it.
 *
 * Frames are split off the stream with snap_frame_header_read (the default
 * cap), as io/conn.c does; each body goes to a per-call arena with the
 * call's cap (rpc/call.h), and through the daemon's own admission
 * (rpc/admit.c): admit_envelope, then, for a call that is not a cancel,
 * admit() under a configuration with two profiles and no ACL (the fuzzer
 * runs as root or as the daemon's own user: admitted). An admitted SNAP
 * request's body is encoded as the call does before its tokens. A truncated
 * last frame is dropped, as at EOF. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "admit.h"
#include "call.h"
#include "doku/bridge/v1/bridge.pb-c.h"
#include "fuzz.h"
#include "methods.h"
#include "snap_err.h"
#include "snap_frame.h"
#include "snap_json.h"

#define FRAME_CAP SNAP_FRAME_MAX_DEFAULT

static config *cfg;
static peer self;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char path[] = "/tmp/fuzz_frame_XXXXXX";
	static const char text[] =
		"[profile.default]\nbase_url = https://h\nclient_id = a\n"
		"client_secret_file = s\nprivate_key_file = k\n"
		"[profile.other]\nbase_url = https://h\nclient_id = b\n"
		"client_secret_file = s\nprivate_key_file = k\n";
	config_diag diag;
	int fd;

	(void)argc;
	(void)argv;
	if (methods_init() != 0)
		abort();
	fd = mkstemp(path);
	if (fd < 0 || write(fd, text, sizeof(text) - 1) != (ssize_t)(sizeof(text) - 1))
		abort();
	close(fd);
	memset(&diag, 0, sizeof(diag));
	if (config_load(path, 0, &cfg, &diag) != 0)
		abort();
	unlink(path);
	self.uid = geteuid();
	self.gid = getegid();
	self.pid = getpid();
	return 0;
}

/* What the call does with an admitted request before its tokens. */
static void encode(const admission *a, snap_arena *arena)
{
	snap_buf body;
	int rc;

	if (a->m->kind != METHOD_SNAP)
		return;
	snap_buf_init(&body, arena, (size_t)FRAME_CAP * 2u);
	rc = snap_json_encode(a->req, 0, &body);
	/* a string that is not UTF-8 is refused, nothing else */
	FUZZ_CHECK(rc == 0 || rc == SNAP_ERR_JSON || rc == SNAP_ERR_NOMEM, "snap_json_encode: %d", rc);
}

/* One frame's body: the session's decoding and admit(). */
static void one_call(const uint8_t *frame, uint32_t len)
{
	Doku__Bridge__V1__Call *env;
	admission a;
	snap_arena arena;
	uint8_t *body;

	snap_arena_init(&arena, (size_t)FRAME_CAP * 4u + CALL_ARENA_EXTRA);
	body = snap_arena_alloc(&arena, len > 0 ? len : 1);
	FUZZ_CHECK(body != NULL, "no arena for a frame under the cap");
	memcpy(body, frame, len);
	env = admit_envelope(&arena, body, len);
	if (env == NULL || env->cancel)
		goto out;
	FUZZ_CHECK(env->method != NULL && env->profile != NULL && env->customer_ref != NULL,
		   "unpacked strings are never NULL");
	admit(&arena, env, &self, cfg, &a);
	FUZZ_CHECK(a.code >= 0 && a.code <= 16, "admit: code %d", a.code);
	FUZZ_CHECK(a.code != 0 || a.status[0] == '\0', "admitted with a status: %s", a.status);
	FUZZ_CHECK(a.code == 0 || a.status[0] != '\0', "refused (%d) without a reason", a.code);
	if (a.code != 0)
		goto out;
	FUZZ_CHECK(a.m != NULL && a.req != NULL, "admitted without a method or request");
	FUZZ_CHECK(!a.m->uses_profile || a.prof != NULL, "%s admitted without its profile",
		   a.m->name);
	FUZZ_CHECK(!a.m->customer || a.customer_ref[0] != '\0', "%s admitted without a customer ref",
		   a.m->name);
	FUZZ_CHECK(a.timeout_ms > 0 && a.timeout_ms <= cfg->max_timeout_ms, "timeout %u",
		   a.timeout_ms);
	encode(&a, &arena);
out:
	snap_arena_free(&arena);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t len;

	while (size >= SNAP_FRAME_HEADER) {
		if (snap_frame_header_read(data, FRAME_CAP, &len) != 0)
			return 0; /* the connection is closed with an error reply */
		data += SNAP_FRAME_HEADER;
		size -= SNAP_FRAME_HEADER;
		if (len > size)
			return 0;
		one_call(data, len);
		data += len;
		size -= len;
	}
	return 0;
}
