/* The methods of doku.wallet.v1.Wallet: names, lookups, and the typed
 * functions generated from DOKUBRIDGE_WALLET_RPCS. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* The library's enums are the contract's. */
_Static_assert(DOKUBRIDGE_UNAUTHENTICATED == (int)DOKU__BRIDGE__V1__CODE__UNAUTHENTICATED &&
		       DOKUBRIDGE_UNAVAILABLE == (int)DOKU__BRIDGE__V1__CODE__UNAVAILABLE &&
		       DOKUBRIDGE_CODE_COUNT == (int)DOKU__BRIDGE__V1__CODE__UNAUTHENTICATED + 1,
	       "dokubridge_code follows doku.bridge.v1.Code");
_Static_assert(DOKUBRIDGE_OUTCOME_UNKNOWN == (int)DOKU__BRIDGE__V1__OUTCOME__OUTCOME_UNKNOWN &&
		       DOKUBRIDGE_OUTCOME_NOT_DONE == (int)DOKU__BRIDGE__V1__OUTCOME__OUTCOME_NOT_DONE,
	       "dokubridge_outcome follows doku.bridge.v1.Outcome");

static const char *const code_names[DOKUBRIDGE_CODE_COUNT] = {
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
	"NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
	"FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
	"INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
};

static const char *const outcome_names[] = {
	"OUTCOME_UNSPECIFIED", "OUTCOME_DONE", "OUTCOME_NOT_DONE", "OUTCOME_UNKNOWN",
};

const char *dokubridge_code_name(int code)
{
	if (code < 0 || code >= DOKUBRIDGE_CODE_COUNT)
		return "?";
	return code_names[code];
}

const char *dokubridge_outcome_name(int outcome)
{
	if (outcome < 0 || (size_t)outcome >= sizeof outcome_names / sizeof outcome_names[0])
		return "?";
	return outcome_names[outcome];
}

void dokubridge__copy(char *dst, size_t dstsz, const char *s)
{
	size_t n;

	if (dstsz == 0)
		return;
	n = s ? strlen(s) : 0;
	if (n >= dstsz) {
		n = dstsz - 1;
		/* do not cut a UTF-8 sequence: back up over continuation bytes */
		while (n > 0 && ((unsigned char)s[n] & 0xC0u) == 0x80u)
			n--;
	}
	if (n)
		memcpy(dst, s, n);
	dst[n] = '\0';
}

int dokubridge__fail(dokubridge_result *res, dokubridge_code code,
		     dokubridge_outcome outcome, const char *fmt, ...)
{
	va_list ap;

	if (res) {
		memset(res, 0, sizeof *res);
		res->code = code;
		res->outcome = outcome;
		res->local = true;
		va_start(ap, fmt);
		vsnprintf(res->message, sizeof res->message, fmt, ap);
		va_end(ap);
	}
	return -(int)code;
}

int dokubridge_method_kebab(const ProtobufCMethodDescriptor *m, char *out, size_t outsz)
{
	size_t n = 0;

	if (!m || !out || outsz == 0)
		return -DOKUBRIDGE_INVALID_ARGUMENT;
	for (const char *p = m->name; *p; p++) {
		if (isupper((unsigned char)*p) && p != m->name) {
			if (n + 1 >= outsz)
				goto too_long;
			out[n++] = '-';
		}
		if (n + 1 >= outsz)
			goto too_long;
		out[n++] = (char)tolower((unsigned char)*p);
	}
	out[n] = '\0';
	return 0;
too_long:
	out[0] = '\0';
	return -DOKUBRIDGE_OUT_OF_RANGE;
}

int dokubridge_method_path(const ProtobufCMethodDescriptor *m, char *out, size_t outsz)
{
	int n;

	if (!m || !out || outsz == 0)
		return -DOKUBRIDGE_INVALID_ARGUMENT;
	n = snprintf(out, outsz, "/%s/%s", DOKUBRIDGE_SERVICE->name, m->name);
	if (n < 0 || (size_t)n >= outsz) {
		out[0] = '\0';
		return -DOKUBRIDGE_OUT_OF_RANGE;
	}
	return 0;
}

const ProtobufCMethodDescriptor *dokubridge_method_lookup(const char *name)
{
	const ProtobufCServiceDescriptor *svc = DOKUBRIDGE_SERVICE;
	size_t svclen = strlen(svc->name);
	char kebab[DOKUBRIDGE_METHOD_MAX + 1];

	if (!name || !*name)
		return NULL;
	/* "/doku.wallet.v1.Wallet/GetBalance" */
	if (name[0] == '/') {
		if (strncmp(name + 1, svc->name, svclen) != 0 || name[1 + svclen] != '/')
			return NULL;
		name += svclen + 2;
	}
	/* "GetBalance" */
	for (unsigned i = 0; i < svc->n_methods; i++)
		if (strcmp(svc->methods[i].name, name) == 0)
			return &svc->methods[i];
	/* "get-balance" */
	for (unsigned i = 0; i < svc->n_methods; i++)
		if (dokubridge_method_kebab(&svc->methods[i], kebab, sizeof kebab) == 0 &&
		    strcmp(kebab, name) == 0)
			return &svc->methods[i];
	return NULL;
}

/* A full method path: "/" then a dotted service name, "/" and a method name,
 * in printable ASCII without spaces. */
static bool is_method_path(const char *s)
{
	const char *slash;

	if (s[0] != '/' || strlen(s) > DOKUBRIDGE_METHOD_MAX)
		return false;
	slash = strchr(s + 1, '/');
	if (!slash || slash == s + 1 || slash[1] == '\0' || strchr(slash + 1, '/'))
		return false;
	for (const char *p = s; *p; p++)
		if (*p <= ' ' || *p > '~')
			return false;
	return true;
}

int dokubridge__resolve(const char *name, bool allow_unknown,
			const ProtobufCMethodDescriptor **m,
			char path[DOKUBRIDGE_METHOD_MAX + 1], dokubridge_result *res)
{
	*m = dokubridge_method_lookup(name);
	if (*m)
		return dokubridge_method_path(*m, path, DOKUBRIDGE_METHOD_MAX + 1) == 0
			       ? 0
			       : dokubridge__fail(res, DOKUBRIDGE_INTERNAL, DOKUBRIDGE_OUTCOME_NOT_DONE,
						  "method path too long");
	if (allow_unknown && name && is_method_path(name)) {
		dokubridge__copy(path, DOKUBRIDGE_METHOD_MAX + 1, name);
		return 0;
	}
	return dokubridge__fail(res, DOKUBRIDGE_INVALID_ARGUMENT, DOKUBRIDGE_OUTCOME_NOT_DONE,
				"unknown method \"%.*s\"", DOKUBRIDGE_METHOD_MAX, name ? name : "");
}

/* One blocking and one asynchronous function per RPC, from the X-list. The
 * method is looked up by name in the service descriptor (so a renamed RPC
 * fails loudly in the unit test, not silently here). */
#define DOKUBRIDGE_DEFINE_RPC_(snake, Camel)                                                  \
	int dokubridge_##snake(dokubridge_client *c, const dokubridge_call_opts *opts,        \
			       const Doku__Wallet__V1__##Camel##Request *req,                  \
			       Doku__Wallet__V1__##Camel##Response **resp, dokubridge_result *res) \
	{                                                                                     \
		ProtobufCMessage *m = NULL;                                                   \
		int rc = dokubridge_call(c, opts, #Camel, req ? &req->base : NULL,            \
					 resp ? &m : NULL, res);                              \
		if (resp)                                                                     \
			*resp = (Doku__Wallet__V1__##Camel##Response *)m;                     \
		return rc;                                                                    \
	}                                                                                     \
	int dokubridge_##snake##_start(dokubridge_client *c, const dokubridge_call_opts *opts, \
				       const Doku__Wallet__V1__##Camel##Request *req,          \
				       dokubridge_done_fn done, void *arg, uint64_t *call_id,  \
				       dokubridge_result *res)                                 \
	{                                                                                     \
		return dokubridge_start(c, opts, #Camel, req ? &req->base : NULL, done, arg,  \
					call_id, res);                                        \
	}
DOKUBRIDGE_WALLET_RPCS(DOKUBRIDGE_DEFINE_RPC_)
#undef DOKUBRIDGE_DEFINE_RPC_
