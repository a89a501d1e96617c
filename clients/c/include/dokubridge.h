/* libdokubridge: the C client of doku-bridged, the DOKU SNAP credential holder.
 *
 * A client holds one connection to the daemon's Unix socket and carries many
 * calls on it at once (the wire protocol of docs/protocol.md: frames of
 * 1 flags byte 0 + 4-byte big-endian length + protobuf; Call out, Reply in).
 *
 *   dokubridge_client *c;
 *   dokubridge_result res;
 *   Doku__Wallet__V1__GetBalanceRequest req = DOKU__WALLET__V1__GET_BALANCE_REQUEST__INIT;
 *   Doku__Wallet__V1__GetBalanceResponse *resp = NULL;
 *   dokubridge_call_opts opts = { .customer_ref = "cust-42", .timeout_ms = 5000 };
 *
 *   dokubridge_new(NULL, &c);                 // socket: $DOKU_BRIDGE_SOCKET or the default
 *   req.partner_reference_no = "ref-1";
 *   if (dokubridge_get_balance(c, &opts, &req, &resp, &res) == 0)
 *           printf("%s\n", resp->account_info->amount->value);
 *   else
 *           fprintf(stderr, "%s: %s\n", dokubridge_code_name(res.code), res.message);
 *   dokubridge_message_free(resp);             // NULL is fine; resp may be set on errors too
 *   dokubridge_free(c);
 *
 * CONVENTIONS
 * - Every int-returning function returns 0 on success or a negative number:
 *   the negated gRPC status code (-DOKUBRIDGE_UNAVAILABLE, ...). The same code,
 *   with a message and the SNAP facts, is in the dokubridge_result when one is
 *   given (res may always be NULL).
 * - Local failures use gRPC codes too, with res->local set: the daemon cannot
 *   be reached (UNAVAILABLE; PERMISSION_DENIED when the socket refuses us),
 *   the local deadline passed (DEADLINE_EXCEEDED), a bad argument
 *   (INVALID_ARGUMENT), out of memory or a local limit (RESOURCE_EXHAUSTED), the
 *   daemon broke the protocol (INTERNAL) or sent an oversized frame
 *   (RESOURCE_EXHAUSTED), the call was cancelled or the client freed
 *   (CANCELLED).
 * - Outcome: res->outcome says whether the operation happened at DOKU. A local
 *   failure before the request could reach the daemon is OUTCOME_NOT_DONE; one
 *   after it may have (the deadline passed, the connection broke) is
 *   OUTCOME_UNKNOWN: ask the matching status method, never resend a
 *   money-moving call with a new partner reference.
 *
 * OWNERSHIP
 * - Response messages are allocated by protobuf-c's default allocator (malloc)
 *   and owned by the caller: free them with dokubridge_message_free() (or the
 *   generated *__free_unpacked(msg, NULL)). On OK a response is always
 *   handed over (zero bytes are the empty message). On an error it is handed
 *   over when the daemon's Reply carried one: always free a non-NULL
 *   response, also after an error.
 * - Serialized responses (the _raw functions) are malloc'd: free() them.
 * - dokubridge_result is plain storage with fixed-size, NUL-terminated,
 *   truncated-if-longer strings: nothing to free.
 * - Request messages, options and their strings are only read during the
 *   function call that takes them (they are serialized at once): the caller
 *   keeps ownership and may free them as soon as the function returns.
 *
 * THREADS
 * - A client is NOT thread-safe: use each client from one thread at a time
 *   (one client per thread is the intended shape). The library has no global
 *   state: different clients may be used from different threads at once.
 * - Callbacks run on the thread that called dokubridge_process / _poll / a
 *   blocking call, from inside that call.
 *
 * SIGNALS: writes use MSG_NOSIGNAL; the library never raises SIGPIPE and never
 * installs signal handlers.
 */
#ifndef DOKUBRIDGE_H
#define DOKUBRIDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "doku/bridge/v1/bridge.pb-c.h"
#include "doku/wallet/v1/wallet.pb-c.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define DOKUBRIDGE_API __attribute__((visibility("default")))
#else
#define DOKUBRIDGE_API
#endif

#define DOKUBRIDGE_VERSION "0.1.0"

/* ---- Hard limits and defaults --------------------------------------------- */

#define DOKUBRIDGE_DEFAULT_SOCKET "/run/doku-bridge/bridge.sock"
#define DOKUBRIDGE_SOCKET_ENV "DOKU_BRIDGE_SOCKET"   /* overrides the default path */
#define DOKUBRIDGE_SOCKET_PATH_MAX 108               /* sun_path, with the NUL */
#define DOKUBRIDGE_FRAME_MAX_DEFAULT (4u * 1024u * 1024u) /* cap on a received frame */
#define DOKUBRIDGE_FRAME_MAX_LIMIT (64u * 1024u * 1024u)  /* largest cap one may configure */
#define DOKUBRIDGE_IN_FLIGHT_DEFAULT 4096u           /* calls in flight on one client */
#define DOKUBRIDGE_IN_FLIGHT_LIMIT 65536u            /* largest value one may configure */
#define DOKUBRIDGE_OUTBUF_MAX (64u * 1024u * 1024u)  /* bytes queued for sending */
#define DOKUBRIDGE_DEADLINE_GRACE_MS 200u /* the local deadline backs the daemon's up by this */
#define DOKUBRIDGE_METHOD_MAX 128   /* longest method name ("/doku.wallet.v1.Wallet/GetBalance") */
#define DOKUBRIDGE_PROFILE_MAX 64   /* longest profile name */
#define DOKUBRIDGE_CUSTOMER_REF_MAX 64 /* longest customer_ref ([A-Za-z0-9._-]{1,64}) */

/* Sizes of the strings of dokubridge_result, NUL included; longer values are truncated. */
#define DOKUBRIDGE_MESSAGE_MAX 512
#define DOKUBRIDGE_RESPONSE_CODE_MAX 16
#define DOKUBRIDGE_RESPONSE_MESSAGE_MAX 256
#define DOKUBRIDGE_EXTERNAL_ID_MAX 64
#define DOKUBRIDGE_PARTNER_REF_MAX 128

/* ---- Status codes and outcomes -------------------------------------------- */

/* gRPC status codes, with gRPC's meanings (the values of doku.bridge.v1.Code). */
typedef enum dokubridge_code {
	DOKUBRIDGE_OK = 0,
	DOKUBRIDGE_CANCELLED = 1,
	DOKUBRIDGE_UNKNOWN = 2,
	DOKUBRIDGE_INVALID_ARGUMENT = 3,
	DOKUBRIDGE_DEADLINE_EXCEEDED = 4,
	DOKUBRIDGE_NOT_FOUND = 5,
	DOKUBRIDGE_ALREADY_EXISTS = 6,
	DOKUBRIDGE_PERMISSION_DENIED = 7,
	DOKUBRIDGE_RESOURCE_EXHAUSTED = 8,
	DOKUBRIDGE_FAILED_PRECONDITION = 9,
	DOKUBRIDGE_ABORTED = 10,
	DOKUBRIDGE_OUT_OF_RANGE = 11,
	DOKUBRIDGE_UNIMPLEMENTED = 12,
	DOKUBRIDGE_INTERNAL = 13,
	DOKUBRIDGE_UNAVAILABLE = 14,
	DOKUBRIDGE_DATA_LOSS = 15,
	DOKUBRIDGE_UNAUTHENTICATED = 16,
} dokubridge_code;

#define DOKUBRIDGE_CODE_COUNT 17

/* Whether the operation took place at DOKU (the values of doku.bridge.v1.Outcome). */
typedef enum dokubridge_outcome {
	DOKUBRIDGE_OUTCOME_UNSPECIFIED = 0,
	DOKUBRIDGE_OUTCOME_DONE = 1,     /* it happened */
	DOKUBRIDGE_OUTCOME_NOT_DONE = 2, /* it did not happen */
	DOKUBRIDGE_OUTCOME_UNKNOWN = 3,  /* it may have happened: ask the status method */
} dokubridge_outcome;

/* "OK", "DEADLINE_EXCEEDED", ...; "?" for an out-of-range value. Static strings. */
DOKUBRIDGE_API const char *dokubridge_code_name(int code);
/* "OUTCOME_DONE", ...; "?" for an out-of-range value. Static strings. */
DOKUBRIDGE_API const char *dokubridge_outcome_name(int outcome);

/* The status of one call and the SNAP facts of its Reply. */
typedef struct dokubridge_result {
	dokubridge_code code;                  /* gRPC status */
	char message[DOKUBRIDGE_MESSAGE_MAX];  /* human-readable status message ("" on OK) */
	bool local;                            /* true: made by the library, no Reply arrived */
	uint64_t call_id;                      /* the Call's id on its connection (0: never started) */
	/* The SNAP facts of the Reply (empty for daemon-local methods and local failures). */
	uint32_t http_status;                  /* HTTP status of DOKU's answer; 0 if none */
	char response_code[DOKUBRIDGE_RESPONSE_CODE_MAX];       /* DOKU's responseCode, e.g. "2001100" */
	char response_message[DOKUBRIDGE_RESPONSE_MESSAGE_MAX]; /* DOKU's responseMessage */
	char external_id[DOKUBRIDGE_EXTERNAL_ID_MAX];           /* the X-EXTERNAL-ID the daemon sent */
	char partner_reference_no[DOKUBRIDGE_PARTNER_REF_MAX];  /* the request's partner reference */
	dokubridge_outcome outcome;            /* did the operation happen? */
} dokubridge_result;

/* ---- Client ---------------------------------------------------------------- */

typedef struct dokubridge_client dokubridge_client;

/* Options of a client; zero (or a NULL pointer to it) means the default. */
typedef struct dokubridge_config {
	const char *socket_path;     /* NULL: $DOKU_BRIDGE_SOCKET, else DOKUBRIDGE_DEFAULT_SOCKET */
	uint32_t max_frame;          /* cap on received frames; 0: DOKUBRIDGE_FRAME_MAX_DEFAULT */
	uint32_t max_in_flight;      /* calls in flight at once; 0: DOKUBRIDGE_IN_FLIGHT_DEFAULT */
	uint32_t default_timeout_ms; /* deadline of calls whose opts say 0;
					0: none (the daemon's default) */
	const char *default_profile; /* profile of calls whose opts say NULL; NULL: the daemon's default */
} dokubridge_config;

/* Create a client (copies cfg and its strings; cfg may be NULL). Does no I/O:
 * blocking calls connect on first use, or call dokubridge_connect().
 * 0, -DOKUBRIDGE_INVALID_ARGUMENT (a path too long, a limit out of range) or
 * -DOKUBRIDGE_RESOURCE_EXHAUSTED. *out is NULL on error. Free with dokubridge_free. */
DOKUBRIDGE_API int dokubridge_new(const dokubridge_config *cfg, dokubridge_client **out);

/* (Re)connect to the daemon, blocking (a Unix socket connects at once). A
 * connection still held is closed first; calls in flight on it complete with
 * UNAVAILABLE. The new connection's fd is non-blocking and close-on-exec.
 * 0, -DOKUBRIDGE_UNAVAILABLE (no daemon: no socket, refused, ...) or
 * -DOKUBRIDGE_PERMISSION_DENIED (the socket's permissions refuse us). */
DOKUBRIDGE_API int dokubridge_connect(dokubridge_client *c, dokubridge_result *res);

/* true while the connection is up (after a successful connect and before a
 * failure of the connection). */
DOKUBRIDGE_API bool dokubridge_connected(const dokubridge_client *c);

/* The socket path this client uses (owned by the client). */
DOKUBRIDGE_API const char *dokubridge_socket_path(const dokubridge_client *c);

/* Close the connection and free the client. Every call still in flight
 * completes first, its callback run with CANCELLED (local, OUTCOME_UNKNOWN
 * when it was sent). Must not be called from inside a callback of c. NULL is fine. */
DOKUBRIDGE_API void dokubridge_free(dokubridge_client *c);

/* Free a response message (protobuf-c's default allocator). NULL is fine. */
DOKUBRIDGE_API void dokubridge_message_free(void *msg);

/* ---- Per-call options ------------------------------------------------------ */

typedef struct dokubridge_call_opts {
	uint32_t timeout_ms;      /* deadline: sent to the daemon, which answers
				     DEADLINE_EXCEEDED itself (with the SNAP facts: the
				     external id to reconcile with); enforced locally
				     too, DOKUBRIDGE_DEADLINE_GRACE_MS later, in case the
				     daemon cannot answer (then res->local is set).
				     0: the client's default_timeout_ms */
	const char *profile;      /* credential profile; NULL: the client's default_profile */
	const char *customer_ref; /* customer session, for customer methods; NULL: none */
} dokubridge_call_opts;

/* ---- Methods of the service doku.wallet.v1.Wallet --------------------------- */

/* The service descriptor, the source of every method name and type. */
#define DOKUBRIDGE_SERVICE (&doku__wallet__v1__wallet__descriptor)

/* Find a method of the Wallet service by its name in any of three forms:
 * "GetBalance", "/doku.wallet.v1.Wallet/GetBalance" or "get-balance".
 * NULL when there is none. */
DOKUBRIDGE_API const ProtobufCMethodDescriptor *dokubridge_method_lookup(const char *name);

/* The kebab-case command name of a method ("GetTopUpStatus" -> "get-top-up-status")
 * into out[outsz]. 0 or -DOKUBRIDGE_OUT_OF_RANGE when it does not fit. */
DOKUBRIDGE_API int dokubridge_method_kebab(const ProtobufCMethodDescriptor *m, char *out,
					   size_t outsz);

/* The wire name of a method ("/doku.wallet.v1.Wallet/GetBalance") into
 * out[outsz]. 0 or -DOKUBRIDGE_OUT_OF_RANGE. */
DOKUBRIDGE_API int dokubridge_method_path(const ProtobufCMethodDescriptor *m, char *out,
					  size_t outsz);

/* ---- Blocking calls ---------------------------------------------------------
 * Connect first if the client is not connected. Block until the reply, the
 * deadline or a failure. Other asynchronous calls of the same client progress
 * meanwhile and their callbacks may run from inside the blocking call. */

/* Generic call by name (any form dokubridge_method_lookup accepts) with a
 * message of the method's input type. *resp (may be NULL to discard it) gets
 * the response message of the method's output type, or NULL. */
DOKUBRIDGE_API int dokubridge_call(dokubridge_client *c, const dokubridge_call_opts *opts,
				   const char *method, const ProtobufCMessage *req,
				   ProtobufCMessage **resp, dokubridge_result *res);

/* Generic call with serialized messages. method is a name dokubridge_method_lookup
 * accepts, or any full name "/package.Service/Method", sent as is (the daemon
 * answers UNIMPLEMENTED if it does not know it). *resp (malloc'd, free() it)
 * and *resp_len get the serialized response, or NULL and 0. resp may be NULL. */
DOKUBRIDGE_API int dokubridge_call_raw(dokubridge_client *c, const dokubridge_call_opts *opts,
				       const char *method, const uint8_t *req, size_t req_len,
				       uint8_t **resp, size_t *resp_len, dokubridge_result *res);

/* ---- Asynchronous calls -----------------------------------------------------
 * Many calls in flight on one connection, driven by any event loop (or by
 * dokubridge_poll). The library owns no loop and has no loop dependency:
 *
 *   fd = dokubridge_fd(c)           watch it for dokubridge_interest(c)
 *   t  = dokubridge_timeout(c)      ms until the nearest deadline (-1: none)
 *   dokubridge_process(c, revents)  when the fd is ready or the timer fires
 *
 * Re-read dokubridge_interest() and dokubridge_timeout() after every
 * dokubridge_process() and after starting or cancelling a call, and re-arm
 * the watcher (with libuv: uv_poll_start with the new events, uv_timer_start
 * with the new timeout). The fd stays open and unchanged until
 * dokubridge_connect() or dokubridge_free(): after a connection failure the
 * interest drops to 0 and dokubridge_connected() is false; stop watching then
 * (before reconnecting, since the fd number changes). Asynchronous starts do
 * not connect: connect first.
 *
 * Every started call completes exactly once: its callback runs with the
 * result, from inside dokubridge_process/_poll/a blocking call/cancel/free,
 * never from inside the start function (a start that fails returns the error
 * and runs no callback). A callback may start and cancel calls, but must not
 * free the client. */

#define DOKUBRIDGE_WANT_READ 1u
#define DOKUBRIDGE_WANT_WRITE 2u

/* Completion of a call started with a message. resp is the response message
 * (of the method's output type), handed over to the callback: it must free it
 * with dokubridge_message_free (NULL when the Reply carried none). res lives
 * only during the callback. */
typedef void (*dokubridge_done_fn)(dokubridge_client *c, void *arg,
				   const dokubridge_result *res, ProtobufCMessage *resp);

/* Completion of a call started with serialized bytes. data[0..len) is the
 * serialized response (NULL, 0 when none), valid only during the callback. */
typedef void (*dokubridge_raw_done_fn)(dokubridge_client *c, void *arg,
				       const dokubridge_result *res,
				       const uint8_t *data, size_t len);

/* Start a call; *call_id (may be NULL) gets its id, for dokubridge_cancel.
 * 0, or a negative code with res filled: INVALID_ARGUMENT (unknown method,
 * request of the wrong type, bad option), UNAVAILABLE (not connected),
 * RESOURCE_EXHAUSTED (max_in_flight calls in flight, or the send queue full,
 * or the request over the frame cap). */
DOKUBRIDGE_API int dokubridge_start(dokubridge_client *c, const dokubridge_call_opts *opts,
				    const char *method, const ProtobufCMessage *req,
				    dokubridge_done_fn done, void *arg, uint64_t *call_id,
				    dokubridge_result *res);

DOKUBRIDGE_API int dokubridge_start_raw(dokubridge_client *c, const dokubridge_call_opts *opts,
					const char *method, const uint8_t *req, size_t req_len,
					dokubridge_raw_done_fn done, void *arg, uint64_t *call_id,
					dokubridge_result *res);

/* Cancel a call in flight: sends Call{id, cancel=true} to the daemon, which
 * answers the call CANCELLED with its outcome (the callback runs then, or at
 * the call's deadline). A call whose request was not yet sent completes at
 * once, locally, CANCELLED with OUTCOME_NOT_DONE (its callback runs from
 * inside dokubridge_cancel). 0, or -DOKUBRIDGE_NOT_FOUND (no such call in flight). */
DOKUBRIDGE_API int dokubridge_cancel(dokubridge_client *c, uint64_t call_id);

/* The connection's fd; -1 when there is none. */
DOKUBRIDGE_API int dokubridge_fd(const dokubridge_client *c);

/* DOKUBRIDGE_WANT_READ | DOKUBRIDGE_WANT_WRITE the loop should watch for; 0
 * when not connected. */
DOKUBRIDGE_API unsigned dokubridge_interest(const dokubridge_client *c);

/* Milliseconds until the nearest deadline of a call in flight (0: one has
 * passed: call dokubridge_process), -1 when no call has a deadline. */
DOKUBRIDGE_API int dokubridge_timeout(const dokubridge_client *c);

/* Do the work the fd's readiness allows (revents: DOKUBRIDGE_WANT_* bits, 0
 * for a timer), complete calls whose Reply arrived or whose deadline passed,
 * running their callbacks. Never blocks. 0, or a negative code when the
 * connection failed (the calls in flight have then completed with it). */
DOKUBRIDGE_API int dokubridge_process(dokubridge_client *c, unsigned revents);

/* A minimal loop of its own: wait with poll(2) up to timeout_ms (-1: no limit)
 * but not past the nearest call deadline, then dokubridge_process. 0, or
 * negative as dokubridge_process (-DOKUBRIDGE_UNAVAILABLE when not connected). */
DOKUBRIDGE_API int dokubridge_poll(dokubridge_client *c, int timeout_ms);

/* Calls in flight (started and not yet completed). */
DOKUBRIDGE_API size_t dokubridge_in_flight(const dokubridge_client *c);

/* ---- One typed function per Wallet RPC --------------------------------------
 * DOKUBRIDGE_WALLET_RPCS(X) calls X(snake_name, CamelName) for every RPC of
 * doku.wallet.v1.Wallet, in the service's order. For each it declares
 *
 *   int dokubridge_<snake>(dokubridge_client *c, const dokubridge_call_opts *opts,
 *                          const Doku__Wallet__V1__<Camel>Request *req,
 *                          Doku__Wallet__V1__<Camel>Response **resp,
 *                          dokubridge_result *res);
 *       blocking, as dokubridge_call (resp may be NULL; free *resp when set)
 *
 *   int dokubridge_<snake>_start(dokubridge_client *c, const dokubridge_call_opts *opts,
 *                                const Doku__Wallet__V1__<Camel>Request *req,
 *                                dokubridge_done_fn done, void *arg,
 *                                uint64_t *call_id, dokubridge_result *res);
 *       asynchronous, as dokubridge_start (the callback's resp is a
 *       Doku__Wallet__V1__<Camel>Response *)
 *
 * e.g. dokubridge_get_balance / dokubridge_get_balance_start. A unit test
 * checks this list against the service descriptor. */
#define DOKUBRIDGE_WALLET_RPCS(X)                          \
	X(create_account, CreateAccount)                   \
	X(verify_otp, VerifyOtp)                           \
	X(bind_account, BindAccount)                       \
	X(inquire_account, InquireAccount)                 \
	X(unbind_account, UnbindAccount)                   \
	X(get_balance, GetBalance)                         \
	X(inquire_bank_account, InquireBankAccount)        \
	X(transfer_to_bank, TransferToBank)                \
	X(top_up, TopUp)                                   \
	X(get_top_up_status, GetTopUpStatus)               \
	X(purchase, Purchase)                              \
	X(get_purchase_status, GetPurchaseStatus)          \
	X(cancel_purchase, CancelPurchase)                 \
	X(refund_purchase, RefundPurchase)                 \
	X(list_transactions, ListTransactions)             \
	X(get_transaction, GetTransaction)                 \
	X(open_customer_session, OpenCustomerSession)      \
	X(close_customer_session, CloseCustomerSession)    \
	X(health, Health)                                  \
	X(get_operation, GetOperation)                     \
	X(list_operations, ListOperations)                 \
	X(metrics, Metrics)

#define DOKUBRIDGE_DECLARE_RPC_(snake, Camel)                                          \
	DOKUBRIDGE_API int dokubridge_##snake(dokubridge_client *c,                    \
					      const dokubridge_call_opts *opts,        \
					      const Doku__Wallet__V1__##Camel##Request *req, \
					      Doku__Wallet__V1__##Camel##Response **resp, \
					      dokubridge_result *res);                 \
	DOKUBRIDGE_API int dokubridge_##snake##_start(dokubridge_client *c,            \
						      const dokubridge_call_opts *opts, \
						      const Doku__Wallet__V1__##Camel##Request *req, \
						      dokubridge_done_fn done, void *arg,  \
						      uint64_t *call_id,                   \
						      dokubridge_result *res);
DOKUBRIDGE_WALLET_RPCS(DOKUBRIDGE_DECLARE_RPC_)
#undef DOKUBRIDGE_DECLARE_RPC_

#ifdef __cplusplus
}
#endif

#endif /* DOKUBRIDGE_H */
