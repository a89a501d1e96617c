/* libFuzzer: requests typed by people (dokuctl's input path): the strict
 * JSON decoder for each Wallet request message, then what follows in
 * dokuctl and the daemon (protobuf packing, snap_validate, the SNAP body).
 *
 * Input: one byte picking the method of doku.wallet.v1.Wallet (modulo their
 * number), then the JSON. */
#include <string.h>

#include "doku/wallet/v1/wallet.pb-c.h"
#include "fuzz.h"
#include "snap_endpoint.h"
#include "snap_err.h"
#include "snap_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const ProtobufCServiceDescriptor *svc = &doku__wallet__v1__wallet__descriptor;
	const ProtobufCMethodDescriptor *md;
	const snap_endpoint *ep;
	char err[SNAP_JSON_ERR_MAX], field[SNAP_FIELD_PATH_MAX];
	ProtobufCMessage *msg = NULL;
	snap_arena a;
	int rc;

	if (size < 1)
		return 0;
	md = &svc->methods[data[0] % svc->n_methods];
	snap_arena_init(&a, FUZZ_ARENA_LIMIT);
	rc = snap_json_decode(md->input, (const char *)data + 1, size - 1, SNAP_JSON_STRICT, &a, &msg,
			      err, sizeof(err));
	FUZZ_CHECK((rc == 0) == (msg != NULL), "result %d with message %p", rc, (void *)msg);
	FUZZ_CHECK(rc != SNAP_ERR_JSON || err[0] != '\0', "a strict refusal without a reason");
	if (msg != NULL) {
		ep = snap_endpoint_by_name(md->name);
		if (ep != NULL) {
			FUZZ_CHECK(ep->request == md->input, "%s: endpoint and service disagree", md->name);
			rc = snap_validate(ep, msg, field);
			FUZZ_CHECK(rc == 0 || rc == SNAP_ERR_MISSING || rc == SNAP_ERR_FORMAT,
				   "snap_validate: %d", rc);
			FUZZ_CHECK(rc == 0 || field[0] != '\0', "a refusal without a field");
		}
		fuzz_json_roundtrip(msg, 0, &a);
	}
	snap_arena_free(&a);
	return 0;
}
