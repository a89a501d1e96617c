/* grpc.health.v1.Health, as served over HTTP/2 beside the Wallet
 * (rpc/grpc.c): which path is which, and Check's answer. The service and
 * method names come from the descriptor of proto/grpc/health/v1/health.proto.
 * Pure: the caller says whether the daemon serves. */
#ifndef DOKU_RPC_GRPC_HEALTH_H
#define DOKU_RPC_GRPC_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GRPC_HEALTH_REQUEST_MAX 512u  /* a HealthCheckRequest: one service name */
#define GRPC_HEALTH_RESPONSE_MAX 16u  /* a packed HealthCheckResponse */
#define GRPC_HEALTH_WHY_MAX 160u

enum grpc_health_rpc { GRPC_HEALTH_NONE = 0, GRPC_HEALTH_CHECK, GRPC_HEALTH_WATCH };

/* The Health RPC of a :path ("/grpc.health.v1.Health/Check"), or NONE. */
enum grpc_health_rpc grpc_health_rpc_of(const char *path);

/* Check (watch false), or Watch's first answer (watch true), of the
 * request msg[0..len) on a daemon that serves (serving) or drains. Returns a
 * doku.bridge.v1.Code: OK with the packed HealthCheckResponse in out[0..*n)
 * (out: GRPC_HEALTH_RESPONSE_MAX bytes), else the reason in why
 * (GRPC_HEALTH_WHY_MAX bytes): INVALID_ARGUMENT for a request that does not
 * decode; for a service other than "" and the Wallet's, Check's NOT_FOUND
 * (Watch answers SERVICE_UNKNOWN). */
int grpc_health_answer(bool serving, bool watch, const uint8_t *msg, size_t len, uint8_t *out,
		       size_t *n, char *why);

/* Watch's update when the daemon starts draining: NOT_SERVING, packed into
 * out (GRPC_HEALTH_RESPONSE_MAX bytes); its length. */
size_t grpc_health_not_serving(uint8_t *out);

#endif
