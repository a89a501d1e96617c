/* dokuctl: call doku-bridged from the command line.
 *
 *   dokuctl [OPTIONS] COMMAND [JSON|-]
 *
 * Every RPC of doku.wallet.v1.Wallet is a command, named in kebab-case from
 * the service descriptor (no list of commands here). The request is proto3
 * JSON with DOKU's field names, read strictly by the SNAP core's JSON mapping;
 * the reply message is printed by the same mapping. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dokubridge.h"
#include "snap_arena.h"
#include "snap_buf.h"
#include "snap_endpoint.h"
#include "snap_err.h"
#include "snap_json.h"

/* Exit statuses (documented in --help). */
enum {
	EXIT_OK = 0,          /* the call succeeded */
	EXIT_ERROR = 1,       /* the call failed and did not happen */
	EXIT_USAGE = 2,       /* bad options, unknown command, bad JSON */
	EXIT_UNKNOWN = 3,     /* the outcome is unknown: it may have happened */
	EXIT_UNREACHABLE = 4, /* doku-bridged cannot be reached */
};

#define ARENA_MAX (16u * 1024u * 1024u)     /* memory for the parsed request */
#define OUTPUT_MAX (16u * 1024u * 1024u)    /* JSON text of the reply */
#define HELP_DEPTH_MAX 16                   /* nesting shown by COMMAND --help */
#define HELP_NAME_COL 34                    /* column of the type in COMMAND --help */

static const char *prog = "dokuctl";

static void usage_line(FILE *out)
{
	fprintf(out, "usage: %s [--socket PATH] [--profile NAME] [--customer REF] [--timeout MS]\n"
		     "               [--verbose] COMMAND [JSON|-]\n"
		     "       %s COMMAND --help\n", prog, prog);
}

static void help(void)
{
	const ProtobufCServiceDescriptor *svc = DOKUBRIDGE_SERVICE;
	char kebab[DOKUBRIDGE_METHOD_MAX + 1];

	usage_line(stdout);
	printf("\nCall doku-bridged, the DOKU SNAP credential holder. The request is JSON in\n"
	       "proto3 form with DOKU's field names, given as an argument, or on standard input\n"
	       "('-', or no argument; no argument on a terminal is the empty request {}). The\n"
	       "reply message is printed as JSON on standard output; the status and the SNAP\n"
	       "facts of the exchange go to standard error when the call fails (always with\n"
	       "--verbose).\n\n"
	       "options:\n"
	       "  -s, --socket PATH    the daemon's socket (default: $%s, else %s)\n"
	       "  -p, --profile NAME   credential profile (default: the daemon's \"default\")\n"
	       "  -c, --customer REF   customer session, for customer commands and\n"
	       "                       open-customer-session / close-customer-session\n"
	       "  -t, --timeout MS     deadline of the call (default 0: the daemon's default)\n"
	       "  -v, --verbose        print the status and SNAP facts on success too\n"
	       "  -h, --help           this text; COMMAND --help lists the command's fields\n"
	       "  -V, --version        print the version\n\n"
	       "commands:\n",
	       DOKUBRIDGE_SOCKET_ENV, DOKUBRIDGE_DEFAULT_SOCKET);
	for (unsigned i = 0; i < svc->n_methods; i++) {
		const snap_endpoint *ep = snap_endpoint_by_name(svc->methods[i].name);

		if (dokubridge_method_kebab(&svc->methods[i], kebab, sizeof kebab) < 0)
			continue;
		printf("  %-24s %s%s\n", kebab, ep ? ep->path : "(handled by the daemon)",
		       ep && ep->auth == SNAP_AUTH_B2B_CUSTOMER ? "  [--customer]" : "");
	}
	printf("\nexit status:\n"
	       "  %d  OK\n"
	       "  %d  the call failed, and did not happen (the daemon's status is on stderr)\n"
	       "  %d  usage: bad option, unknown command, request JSON that does not fit\n"
	       "  %d  the outcome is unknown: the operation MAY have happened (a timeout, a lost\n"
	       "     connection, DOKU's 202/504): ask the matching status command, do not resend\n"
	       "  %d  doku-bridged cannot be reached (not running, or the socket refuses us)\n",
	       EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_UNKNOWN, EXIT_UNREACHABLE);
}

/* ---- COMMAND --help: the fields of the request, from the descriptor --------- */

static const char *type_name(const ProtobufCFieldDescriptor *f)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING: return "string";
	case PROTOBUF_C_TYPE_BOOL: return "bool";
	case PROTOBUF_C_TYPE_BYTES: return "bytes (base64)";
	case PROTOBUF_C_TYPE_ENUM: return "enum";
	case PROTOBUF_C_TYPE_MESSAGE: return "object";
	case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_SFIXED64:
		return "integer (as a string)";
	case PROTOBUF_C_TYPE_FLOAT: case PROTOBUF_C_TYPE_DOUBLE: return "number";
	default: return "integer";
	}
}

/* 1: path is required itself; 2: a field under it is; 0: neither. */
static int required_kind(const snap_endpoint *ep, const char *path)
{
	size_t n = strlen(path);
	int kind = 0;

	if (!ep || !ep->required)
		return 0;
	for (const char *const *r = ep->required; *r; r++) {
		if (strcmp(*r, path) == 0)
			return 1;
		if (strncmp(*r, path, n) == 0 && (*r)[n] == '.')
			kind = 2;
	}
	return kind;
}

static void print_fields(const ProtobufCMessageDescriptor *d, const snap_endpoint *ep,
			 const char *prefix, int depth)
{
	if (depth >= HELP_DEPTH_MAX)
		return;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		char name[SNAP_JSON_NAME_MAX], path[SNAP_FIELD_PATH_MAX];
		int n, req, col;

		if (snap_json_field_name(f, name, sizeof name) != 0)
			continue;
		n = snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", name);
		if (n < 0 || (size_t)n >= sizeof path)
			continue;
		req = ep ? required_kind(ep, path) : 0;
		col = HELP_NAME_COL - 2 * depth - (int)strlen(name);
		printf("  %*s%s%*s %s%s%s\n", 2 * depth, "", name, col > 0 ? col : 1, "",
		       f->label == PROTOBUF_C_LABEL_REPEATED ? "list of " : "", type_name(f),
		       req == 1 ? "  REQUIRED" : req == 2 ? "  (required parts)" : "");
		if (f->type == PROTOBUF_C_TYPE_MESSAGE)
			print_fields(f->descriptor, ep, path, depth + 1);
	}
}

static void command_help(const ProtobufCMethodDescriptor *m)
{
	const snap_endpoint *ep = snap_endpoint_by_name(m->name);
	char kebab[DOKUBRIDGE_METHOD_MAX + 1] = "";

	dokubridge_method_kebab(m, kebab, sizeof kebab);
	printf("usage: %s [OPTIONS] %s [JSON|-]\n\n", prog, kebab);
	printf("RPC /%s/%s\n", DOKUBRIDGE_SERVICE->name, m->name);
	if (ep)
		printf("SNAP POST %s (service %02d)%s%s\n", ep->path, ep->service_code,
		       ep->auth == SNAP_AUTH_B2B_CUSTOMER ? ", a customer method: needs --customer" : "",
		       ep->flags & SNAP_EP_MONEY ? ", MOVES MONEY" : "");
	else
		printf("handled by the daemon itself (no required fields are known to dokuctl)\n");
	if (ep && ep->status_rpc)
		printf("its outcome, when unknown, is told by: %s\n", ep->status_rpc);
	printf("\nrequest %s (JSON names; REQUIRED fields are checked by the daemon):\n",
	       m->input->name);
	if (m->input->n_fields == 0)
		printf("  (no fields: {})\n");
	print_fields(m->input, ep, "", 0);
	printf("\nreply %s:\n", m->output->name);
	print_fields(m->output, NULL, "", 0);
}

/* ---- the call ---------------------------------------------------------------- */

/* Read all of stdin up to SNAP_JSON_MAX_INPUT bytes into buf. 0 or -1. */
static int read_stdin(snap_buf *buf)
{
	char chunk[8192];
	size_t n;

	while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0)
		if (snap_buf_append(buf, chunk, n) != 0) {
			fprintf(stderr, "%s: the request is over %u bytes\n", prog,
				(unsigned)SNAP_JSON_MAX_INPUT);
			return -1;
		}
	if (ferror(stdin)) {
		fprintf(stderr, "%s: reading standard input: %s\n", prog, strerror(errno));
		return -1;
	}
	return 0;
}

static bool blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
			return false;
	return true;
}

static void print_status(const char *method, const dokubridge_result *res)
{
	fprintf(stderr, "%s: %s: %s%s%s\n", prog, method, dokubridge_code_name(res->code),
		res->message[0] ? ": " : "", res->message);
	if (res->http_status)
		fprintf(stderr, "  httpStatus:         %u\n", (unsigned)res->http_status);
	if (res->response_code[0])
		fprintf(stderr, "  responseCode:       %s\n", res->response_code);
	if (res->response_message[0])
		fprintf(stderr, "  responseMessage:    %s\n", res->response_message);
	if (res->external_id[0])
		fprintf(stderr, "  externalId:         %s\n", res->external_id);
	if (res->partner_reference_no[0])
		fprintf(stderr, "  partnerReferenceNo: %s\n", res->partner_reference_no);
	fprintf(stderr, "  outcome:            %s%s\n", dokubridge_outcome_name(res->outcome),
		res->outcome == DOKUBRIDGE_OUTCOME_UNKNOWN
			? " (it may have happened: ask the status method, do not resend)" : "");
}

static int exit_status(int rc, const dokubridge_result *res)
{
	if (rc == 0)
		return EXIT_OK;
	if (res->outcome == DOKUBRIDGE_OUTCOME_UNKNOWN)
		return EXIT_UNKNOWN;
	if (res->local && (res->code == DOKUBRIDGE_UNAVAILABLE ||
			   res->code == DOKUBRIDGE_PERMISSION_DENIED))
		return EXIT_UNREACHABLE;
	return EXIT_ERROR;
}

static bool parse_u32(const char *s, uint32_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"socket", required_argument, NULL, 's'},
		{"profile", required_argument, NULL, 'p'},
		{"customer", required_argument, NULL, 'c'},
		{"timeout", required_argument, NULL, 't'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	dokubridge_config cfg = {0};
	dokubridge_call_opts opts = {0};
	dokubridge_client *client = NULL;
	dokubridge_result res;
	const ProtobufCMethodDescriptor *m;
	ProtobufCMessage *req = NULL, *resp = NULL;
	snap_arena arena;
	snap_buf in, out;
	char err[SNAP_JSON_ERR_MAX];
	const char *json = NULL;
	size_t json_len = 0;
	bool verbose = false;
	int opt, rc, status = EXIT_USAGE;

	snap_arena_init(&arena, ARENA_MAX);
	snap_buf_init(&in, NULL, SNAP_JSON_MAX_INPUT);
	snap_buf_init(&out, NULL, OUTPUT_MAX);

	while ((opt = getopt_long(argc, argv, "+s:p:c:t:vhV", longopts, NULL)) != -1) {
		switch (opt) {
		case 's': cfg.socket_path = optarg; break;
		case 'p': opts.profile = optarg; break;
		case 'c': opts.customer_ref = optarg; break;
		case 't':
			if (!parse_u32(optarg, &opts.timeout_ms)) {
				fprintf(stderr, "%s: --timeout: not a number of milliseconds: %s\n",
					prog, optarg);
				goto out;
			}
			break;
		case 'v': verbose = true; break;
		case 'h': help(); status = EXIT_OK; goto out;
		case 'V': printf("dokuctl %s\n", DOKUBRIDGE_VERSION); status = EXIT_OK; goto out;
		default: usage_line(stderr); goto out;
		}
	}
	if (optind >= argc) {
		usage_line(stderr);
		fprintf(stderr, "%s --help lists the commands\n", prog);
		goto out;
	}
	m = dokubridge_method_lookup(argv[optind]);
	if (!m) {
		fprintf(stderr, "%s: unknown command \"%s\" (%s --help lists them)\n", prog,
			argv[optind], prog);
		goto out;
	}
	optind++;
	if (optind < argc && (strcmp(argv[optind], "--help") == 0 || strcmp(argv[optind], "-h") == 0)) {
		command_help(m);
		status = EXIT_OK;
		goto out;
	}
	if (argc - optind > 1) {
		usage_line(stderr);
		goto out;
	}

	/* the request: an argument, '-' or stdin; nothing on a terminal is {} */
	if (optind < argc && strcmp(argv[optind], "-") != 0) {
		json = argv[optind];
		json_len = strlen(json);
	} else if (optind < argc || !isatty(STDIN_FILENO)) {
		if (read_stdin(&in) < 0)
			goto out;
		json = in.data ? in.data : "";
		json_len = in.len;
	}
	if (!json || blank(json, json_len)) {
		json = "{}";
		json_len = 2;
	}
	rc = snap_json_decode(m->input, json, json_len, SNAP_JSON_STRICT, &arena, &req, err,
			      sizeof err);
	if (rc != 0) {
		fprintf(stderr, "%s: %s: the request does not fit %s: %s\n", prog, m->name,
			m->input->name, rc == SNAP_ERR_JSON ? err : snap_strerror(rc));
		goto out;
	}

	if (dokubridge_new(&cfg, &client) < 0) {
		fprintf(stderr, "%s: bad client options (socket path too long?)\n", prog);
		goto out;
	}
	rc = dokubridge_call(client, &opts, m->name, req, &resp, &res);
	if (resp) {
		int erc = snap_json_encode(resp, SNAP_JSON_PRETTY, &out);

		if (erc == 0 && snap_buf_append(&out, "\n", 1) == 0)
			fwrite(out.data, 1, out.len, stdout);
		else
			fprintf(stderr, "%s: cannot print the reply: %s\n", prog, snap_strerror(erc));
	}
	if (rc != 0 || verbose)
		print_status(m->name, &res);
	status = exit_status(rc, &res);
	if (fflush(stdout) != 0 && status == EXIT_OK)
		status = EXIT_ERROR;
out:
	dokubridge_message_free(resp);
	dokubridge_free(client);
	snap_buf_free(&out);
	snap_buf_free(&in);
	snap_arena_free(&arena);
	return status;
}
