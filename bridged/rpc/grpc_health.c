/* grpc.health.v1.Health's Check. */
#include "grpc_health.h"

#include <stdio.h>
#include <string.h>

#include "doku/bridge/v1/bridge.pb-c.h"
#include "doku/wallet/v1/wallet.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"

#define CODE(x) DOKU__BRIDGE__V1__CODE__##x
#define STATUS(x) GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__##x

/* "/grpc.health.v1.Health/<method>" is path's method of the service */
static bool is_method(const char *path, const char *method)
{
	const char *svc = grpc__health__v1__health__descriptor.name;
	size_t n = strlen(svc);

	return path[0] == '/' && strncmp(path + 1, svc, n) == 0 && path[1 + n] == '/' &&
	       strcmp(path + 2 + n, method) == 0;
}

enum grpc_health_rpc grpc_health_rpc_of(const char *path)
{
	const ProtobufCServiceDescriptor *d = &grpc__health__v1__health__descriptor;

	for (unsigned i = 0; i < d->n_methods; i++) {
		if (!is_method(path, d->methods[i].name))
			continue;
		if (d->methods[i].input == &grpc__health__v1__health_check_request__descriptor &&
		    strcmp(d->methods[i].name, "Check") == 0)
			return GRPC_HEALTH_CHECK;
		return GRPC_HEALTH_WATCH;
	}
	return GRPC_HEALTH_NONE;
}

int grpc_health_answer(bool serving, bool watch, const uint8_t *msg, size_t len, uint8_t *out,
		       size_t *n, char *why)
{
	Grpc__Health__V1__HealthCheckRequest *req;
	Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
	int code = CODE(OK);

	*n = 0;
	req = grpc__health__v1__health_check_request__unpack(NULL, len, msg);
	if (req == NULL) {
		snprintf(why, GRPC_HEALTH_WHY_MAX, "message: not a valid %s",
			 grpc__health__v1__health_check_request__descriptor.name);
		return CODE(INVALID_ARGUMENT);
	}
	resp.status = serving ? STATUS(SERVING) : STATUS(NOT_SERVING);
	if (req->service[0] != '\0' &&
	    strcmp(req->service, doku__wallet__v1__wallet__descriptor.name) != 0) {
		resp.status = STATUS(SERVICE_UNKNOWN);
		if (!watch) {
			snprintf(why, GRPC_HEALTH_WHY_MAX, "unknown service \"%.64s\"", req->service);
			code = CODE(NOT_FOUND);
			goto out;
		}
	}
	*n = grpc__health__v1__health_check_response__pack(&resp, out);
out:
	grpc__health__v1__health_check_request__free_unpacked(req, NULL);
	return code;
}

size_t grpc_health_not_serving(uint8_t *out)
{
	Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;

	resp.status = STATUS(NOT_SERVING);
	return grpc__health__v1__health_check_response__pack(&resp, out);
}
