/* gRPC server reflection (grpc.reflection.v1 and v1alpha,
 * ServerReflectionInfo), as served over HTTP/2 beside the Wallet
 * (rpc/grpc.c): which path is which, and the answer to one request of the
 * stream. The answers come from the descriptors compiled into the daemon:
 * doku_descriptors, the FileDescriptorSet protoc wrote at build time of every
 * file of proto/ (proto/CMakeLists.txt), read with descriptor.proto's
 * protobuf-c code; nothing is written by hand.
 *
 * list_services: every service of those files; file_by_filename and
 * file_containing_symbol (a package-qualified service, method, message,
 * field, oneof, enum, enum value or extension): the file with its transitive
 * dependencies; file_containing_extension and all_extension_numbers_of_type:
 * the extensions those files declare (none today: NOT_FOUND for the first,
 * the known message type with no numbers for the second). What is not found
 * is an error_response (NOT_FOUND) in the stream, as gRPC's servers answer.
 * The two versions share their messages' wire format: one answer serves both.
 *
 * Pure: no state between calls; each answer is allocated for the caller. */
#ifndef DOKU_RPC_GRPC_REFLECT_H
#define DOKU_RPC_GRPC_REFLECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GRPC_REFLECT_REQUEST_MAX 4096u     /* one ServerReflectionRequest */
#define GRPC_REFLECT_QUEUE_MAX (1024u * 1024u) /* answers queued unread on one stream */
#define GRPC_REFLECT_WHY_MAX 160u
#define GRPC_REFLECT_NAME_MAX 512u         /* a full name compared (longer: not found) */

/* ServerReflectionInfo of either version at this :path. */
bool grpc_reflect_path(const char *path);

/* The answer to the ServerReflectionRequest msg[0..len). Returns a
 * doku.bridge.v1.Code: OK with the packed ServerReflectionResponse in *out
 * (malloc'd, the caller frees it) of *n bytes, possibly an error_response;
 * INVALID_ARGUMENT when msg does not decode, RESOURCE_EXHAUSTED when out of
 * memory: then the reason in why (GRPC_REFLECT_WHY_MAX bytes) and the stream
 * should end with it. */
int grpc_reflect_answer(const uint8_t *msg, size_t len, uint8_t **out, size_t *n, char *why);

#endif
