/* libFuzzer: a ServerReflectionRequest as a reflection stream of
 * doku-bridged hands it to rpc/grpc_reflect.c (at most
 * GRPC_REFLECT_REQUEST_MAX bytes): decoded, answered from the compiled-in
 * descriptors.
 *
 * Invariants: the answer is OK with a ServerReflectionResponse that decodes
 * and answers the request (its original_request is the request decoded, one
 * of message_response is set), or INVALID_ARGUMENT (the request does not
 * decode) with its reason; nothing leaks (LeakSanitizer). */
#include <string.h>

#include "doku/bridge/v1/bridge.pb-c.h"
#include "fuzz.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "grpc_reflect.h"

#define RESP(x) GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_##x

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Grpc__Reflection__V1__ServerReflectionResponse *r;
	char why[GRPC_REFLECT_WHY_MAX];
	uint8_t *out;
	size_t n;
	int code;

	if (size > GRPC_REFLECT_REQUEST_MAX)
		return 0;
	code = grpc_reflect_answer(data, size, &out, &n, why);
	if (code != DOKU__BRIDGE__V1__CODE__OK) {
		FUZZ_CHECK(code == DOKU__BRIDGE__V1__CODE__INVALID_ARGUMENT, "code %d", code);
		FUZZ_CHECK(out == NULL && why[0] != '\0', "a refusal with an answer");
		return 0;
	}
	r = grpc__reflection__v1__server_reflection_response__unpack(NULL, n, out);
	FUZZ_CHECK(r != NULL, "the answer does not decode");
	FUZZ_CHECK(r->original_request != NULL, "no original_request");
	FUZZ_CHECK(r->message_response_case >= RESP(FILE_DESCRIPTOR_RESPONSE) &&
			   r->message_response_case <= RESP(ERROR_RESPONSE),
		   "no message_response");
	grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
	free(out);
	return 0;
}
