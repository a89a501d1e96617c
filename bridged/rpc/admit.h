/* Admission of a call: the envelope decoded, the ACL asked, the method,
 * profile and customer ref resolved, the request message decoded and
 * validated, the deadline computed. Pure: no I/O, no clock, no state but
 * what it is handed; everything it returns lives in the arena it is given.
 * The checks run in this order, the first failure decides (docs/protocol.md):
 * ACL knows the peer; the method exists; its profile exists; the ACL allows
 * method and profile; the customer ref is well formed; the message decodes;
 * the required fields are set and well formed. */
#ifndef DOKU_RPC_ADMIT_H
#define DOKU_RPC_ADMIT_H

#include <stdbool.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

#include "config.h"
#include "doku/bridge/v1/bridge.pb-c.h"
#include "methods.h"
#include "snap_arena.h"

#define ADMIT_STATUS_MAX 384          /* the Reply's status_message */
#define ADMIT_LOG_NAME_MAX 96         /* an unknown method name, as logged */

/* What admission decided. */
typedef struct admission {
	int code;                     /* 0 (OK: run it) or the doku.bridge.v1.Code to answer */
	char status[ADMIT_STATUS_MAX];/* code != 0: why */
	const method *m;              /* NULL: unknown method (or refused before the lookup) */
	char log_name[ADMIT_LOG_NAME_MAX]; /* the method as the log names it when m is NULL */
	const profile *prof;          /* the call's profile; NULL when the method uses none */
	const char *customer_ref;     /* customer methods: the ref; else "" */
	ProtobufCMessage *req;        /* the request message (arena) */
	const char *partner_ref;      /* the request's partner reference; NULL when none */
	uint32_t timeout_ms;          /* the deadline, capped by max_timeout_ms */
} admission;

/* Decode the envelope of frame[0..len) into arena. NULL: malformed. */
Doku__Bridge__V1__Call *admit_envelope(snap_arena *arena, const uint8_t *frame, uint32_t len);

/* Admit env, sent by peer, under cfg. Fills *out; out->code says the verdict. */
void admit(snap_arena *arena, const Doku__Bridge__V1__Call *env, const peer *peer,
	   const config *cfg, admission *out);

#endif
