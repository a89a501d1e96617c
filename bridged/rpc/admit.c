/* Admission: decode, ACL, validate, deadline. */
#include "admit.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "snap_err.h"
#include "snap_json.h"
#include "tokens.h"

#define CODE(x) DOKU__BRIDGE__V1__CODE__##x

__attribute__((format(printf, 3, 4)))
static void refuse(admission *a, int code, const char *fmt, ...)
{
	va_list ap;

	a->code = code;
	va_start(ap, fmt);
	vsnprintf(a->status, sizeof(a->status), fmt, ap);
	va_end(ap);
}

Doku__Bridge__V1__Call *admit_envelope(snap_arena *arena, const uint8_t *frame, uint32_t len)
{
	return doku__bridge__v1__call__unpack(&arena->pb, len, frame);
}

/* A non-SNAP row's required string field that is unset; NULL when none is. */
static const ProtobufCFieldDescriptor *missing_field(const method *m, const ProtobufCMessage *req)
{
	for (const char *const *f = m->required; f != NULL && *f != NULL; f++) {
		const ProtobufCFieldDescriptor *fd =
			protobuf_c_message_descriptor_get_field_by_name(m->input, *f);

		if (fd != NULL && methods_string_field(req, fd) == NULL)
			return fd;
	}
	return NULL;
}

/* The message's checks: SNAP rows by the endpoint's rules, others by their fields. */
static void validate(admission *a)
{
	const method *m = a->m;
	char field[SNAP_FIELD_PATH_MAX];
	int rc;

	if (m->kind == METHOD_SNAP) {
		rc = snap_validate(m->ep, a->req, field);
		if (rc == SNAP_ERR_MISSING)
			refuse(a, CODE(INVALID_ARGUMENT), "missing required field: %s", field);
		else if (rc != 0)
			refuse(a, CODE(INVALID_ARGUMENT), "invalid field: %s", field[0] ? field : "message");
		return;
	}
	const ProtobufCFieldDescriptor *fd = missing_field(m, a->req);

	if (fd != NULL) {
		char name[SNAP_JSON_NAME_MAX];

		if (snap_json_field_name(fd, name, sizeof(name)) != 0)
			snprintf(name, sizeof(name), "%s", fd->name);
		refuse(a, CODE(INVALID_ARGUMENT), "missing required field: %s", name);
	}
}

void admit(snap_arena *arena, const Doku__Bridge__V1__Call *env, const peer *pr,
	   const config *cfg, admission *a)
{
	const method *m = methods_find(env->method, strlen(env->method));

	memset(a, 0, sizeof(*a));
	a->customer_ref = "";
	snprintf(a->log_name, sizeof(a->log_name), "%.64s", env->method);
	if (!config_acl_knows(cfg, pr)) {
		a->m = m;
		refuse(a, CODE(PERMISSION_DENIED), "uid %lu may not use this daemon",
		       (unsigned long)pr->uid);
		return;
	}
	if (m == NULL) {
		refuse(a, CODE(UNIMPLEMENTED), "unknown method \"%.64s\"", env->method);
		return;
	}
	a->m = m;
	if (m->uses_profile) {
		a->prof = config_profile(cfg, env->profile);
		if (a->prof == NULL) {
			refuse(a, CODE(INVALID_ARGUMENT), "profile: no profile \"%.64s\"",
			       env->profile[0] ? env->profile : CONFIG_DEFAULT_PROFILE);
			return;
		}
	}
	if (!config_acl_allows(cfg, pr, m->index, a->prof != NULL ? (int)a->prof->index : -1)) {
		refuse(a, CODE(PERMISSION_DENIED), "uid %lu may not call %s%s%s",
		       (unsigned long)pr->uid, m->name, a->prof != NULL ? " with profile " : "",
		       a->prof != NULL ? a->prof->name : "");
		return;
	}
	if (m->customer) {
		if (!tokens_ref_valid(env->customer_ref)) {
			refuse(a, CODE(INVALID_ARGUMENT), "customer_ref: %s",
			       env->customer_ref[0] ? "expected [A-Za-z0-9._-]{1,64}" :
						      "missing required field");
			return;
		}
		a->customer_ref = env->customer_ref;
	}
	a->req = protobuf_c_message_unpack(m->input, &arena->pb, env->message.len, env->message.data);
	if (a->req == NULL) {
		refuse(a, CODE(INVALID_ARGUMENT), "message: not a valid %s", m->input->name);
		return;
	}
	a->partner_ref = methods_string_field(a->req, m->ref_field);
	validate(a);
	if (a->code != 0)
		return;
	a->timeout_ms = env->timeout_ms != 0 ? env->timeout_ms : cfg->default_timeout_ms;
	if (a->timeout_ms > cfg->max_timeout_ms)
		a->timeout_ms = cfg->max_timeout_ms;
}
