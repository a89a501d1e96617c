/* gRPC server reflection from the compiled-in descriptors (grpc_reflect.h). */
#include "grpc_reflect.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doku/bridge/v1/bridge.pb-c.h"
#include "doku_descriptors.h"
#include "google/protobuf/descriptor.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "grpc/reflection/v1alpha/reflection.pb-c.h"

#define CODE(x) DOKU__BRIDGE__V1__CODE__##x
#define REQ(x) GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_##x
#define RESP(x) GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_##x
#define FILES_MAX 32u         /* files of the descriptor set */
#define SERVICES_MAX 64u      /* services listed */
#define EXTENSIONS_MAX 256u   /* extension numbers of one type */

typedef Google__Protobuf__FileDescriptorProto FileDesc;
typedef Google__Protobuf__DescriptorProto MsgDesc;
typedef Google__Protobuf__EnumDescriptorProto EnumDesc;
typedef Google__Protobuf__FieldDescriptorProto FieldDesc;

/* The descriptor set, each file's bytes as protoc wrote them, and decoded. */
struct files {
	size_t n;
	ProtobufCBinaryData raw[FILES_MAX];
	FileDesc *fd[FILES_MAX];
};

static const char *str(const char *s)
{
	return s != NULL ? s : "";
}

/* ---- the descriptor set --------------------------------------------------------------- */

/* A varint at p[*i..n); false when malformed or over 32 bits. */
static bool varint32(const uint8_t *p, size_t n, size_t *i, uint32_t *v)
{
	uint64_t x = 0;

	for (unsigned shift = 0; shift < 35; shift += 7) {
		if (*i >= n)
			return false;
		x |= (uint64_t)(p[*i] & 0x7fu) << shift;
		if ((p[(*i)++] & 0x80u) == 0) {
			if (x > UINT32_MAX)
				return false;
			*v = (uint32_t)x;
			return true;
		}
	}
	return false;
}

static void files_free(struct files *f)
{
	for (size_t i = 0; i < f->n; i++)
		if (f->fd[i] != NULL)
			google__protobuf__file_descriptor_proto__free_unpacked(f->fd[i], NULL);
	f->n = 0;
}

/* FileDescriptorSet { repeated FileDescriptorProto file = 1; }: each file's
 * bytes (what reflection sends, unchanged), decoded. false: out of memory
 * or a set that is not one (a build gone wrong). */
static bool files_load(struct files *f)
{
	const uint8_t *p = doku_descriptors;
	size_t n = doku_descriptors_len, i = 0;

	f->n = 0;
	while (i < n) {
		uint32_t tag, len;

		if (f->n == FILES_MAX || !varint32(p, n, &i, &tag) || tag != (1u << 3 | 2u) ||
		    !varint32(p, n, &i, &len) || len > n - i)
			goto bad;
		f->raw[f->n].data = (uint8_t *)(uintptr_t)(p + i);
		f->raw[f->n].len = len;
		f->fd[f->n] = google__protobuf__file_descriptor_proto__unpack(NULL, len, p + i);
		if (f->fd[f->n] == NULL)
			goto bad;
		f->n++;
		i += len;
	}
	return true;
bad:
	files_free(f);
	return false;
}

static int file_named(const struct files *f, const char *name)
{
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(str(f->fd[i]->name), name) == 0)
			return (int)i;
	return -1;
}

/* ---- symbols ---------------------------------------------------------------------------- */

/* sym begins with name: what follows it (NUL, or '.' and more), else NULL. */
static const char *after(const char *sym, const char *name)
{
	size_t n = strlen(str(name));

	if (n == 0 || strncmp(sym, name, n) != 0 || (sym[n] != '\0' && sym[n] != '.'))
		return NULL;
	return sym + n;
}

/* rel, relative to a scope, names enum e or one of its values (which are
 * the enum's siblings, in protobuf's scoping). */
static bool in_enum(const EnumDesc *e, const char *rel)
{
	if (strcmp(rel, str(e->name)) == 0)
		return true;
	for (size_t i = 0; i < e->n_value; i++)
		if (strcmp(rel, str(e->value[i]->name)) == 0)
			return true;
	return false;
}

/* rel, relative to the message's scope, names message m or something in it;
 * message_only: m itself or a message nested in it. */
static bool in_message(const MsgDesc *m, const char *rel, bool message_only)
{
	const char *t = after(rel, m->name);

	if (t == NULL)
		return false;
	if (*t == '\0')
		return true;
	t++;
	for (size_t i = 0; i < m->n_nested_type; i++)
		if (in_message(m->nested_type[i], t, message_only))
			return true;
	if (message_only)
		return false;
	for (size_t i = 0; i < m->n_field; i++)
		if (strcmp(t, str(m->field[i]->name)) == 0)
			return true;
	for (size_t i = 0; i < m->n_oneof_decl; i++)
		if (strcmp(t, str(m->oneof_decl[i]->name)) == 0)
			return true;
	for (size_t i = 0; i < m->n_extension; i++)
		if (strcmp(t, str(m->extension[i]->name)) == 0)
			return true;
	for (size_t i = 0; i < m->n_enum_type; i++)
		if (in_enum(m->enum_type[i], t))
			return true;
	return false;
}

/* The symbol relative to file fd's package, or NULL when outside it. */
static const char *in_package(const FileDesc *fd, const char *sym)
{
	const char *t;

	if (str(fd->package)[0] == '\0')
		return sym;
	t = after(sym, fd->package);
	return t != NULL && *t == '.' ? t + 1 : NULL;
}

static bool file_declares(const FileDesc *fd, const char *sym, bool message_only)
{
	const char *rel = in_package(fd, sym);

	if (rel == NULL)
		return false;
	for (size_t i = 0; i < fd->n_message_type; i++)
		if (in_message(fd->message_type[i], rel, message_only))
			return true;
	if (message_only)
		return false;
	for (size_t i = 0; i < fd->n_enum_type; i++)
		if (in_enum(fd->enum_type[i], rel))
			return true;
	for (size_t i = 0; i < fd->n_extension; i++)
		if (strcmp(rel, str(fd->extension[i]->name)) == 0)
			return true;
	for (size_t i = 0; i < fd->n_service; i++) {
		const Google__Protobuf__ServiceDescriptorProto *s = fd->service[i];
		const char *t = after(rel, s->name);

		if (t == NULL)
			continue;
		if (*t == '\0')
			return true;
		for (size_t k = 0; k < s->n_method; k++)
			if (strcmp(t + 1, str(s->method[k]->name)) == 0)
				return true;
	}
	return false;
}

static int file_declaring(const struct files *f, const char *sym, bool message_only)
{
	if (strlen(sym) > GRPC_REFLECT_NAME_MAX)
		return -1;
	for (size_t i = 0; i < f->n; i++)
		if (file_declares(f->fd[i], sym, message_only))
			return (int)i;
	return -1;
}

/* ---- extensions ------------------------------------------------------------------------- */

/* Calls visit for every extension of type (a full name, no leading dot)
 * in the set; stops when it returns true. The file of the one it stopped
 * at, else -1. */
typedef bool (*ext_visit)(const FieldDesc *x, void *arg);

static bool extends(const FieldDesc *x, const char *type)
{
	const char *e = str(x->extendee);

	return e[0] == '.' && strcmp(e + 1, type) == 0;
}

static bool visit_msg_exts(const MsgDesc *m, const char *type, ext_visit v, void *arg)
{
	for (size_t i = 0; i < m->n_extension; i++)
		if (extends(m->extension[i], type) && v(m->extension[i], arg))
			return true;
	for (size_t i = 0; i < m->n_nested_type; i++)
		if (visit_msg_exts(m->nested_type[i], type, v, arg))
			return true;
	return false;
}

static int visit_exts(const struct files *f, const char *type, ext_visit v, void *arg)
{
	for (size_t i = 0; i < f->n; i++) {
		const FileDesc *fd = f->fd[i];

		for (size_t k = 0; k < fd->n_extension; k++)
			if (extends(fd->extension[k], type) && v(fd->extension[k], arg))
				return (int)i;
		for (size_t k = 0; k < fd->n_message_type; k++)
			if (visit_msg_exts(fd->message_type[k], type, v, arg))
				return (int)i;
	}
	return -1;
}

static bool ext_is(const FieldDesc *x, void *arg)
{
	return x->number == *(const int32_t *)arg;
}

struct ext_numbers {
	int32_t n[EXTENSIONS_MAX];
	size_t count;
};

static bool ext_collect(const FieldDesc *x, void *arg)
{
	struct ext_numbers *e = arg;

	if (e->count < EXTENSIONS_MAX)
		e->n[e->count++] = x->number;
	return false;
}

/* ---- the answer --------------------------------------------------------------------------- */

/* Everything one answer points into; freed after packing. */
struct answer {
	struct files files;
	Grpc__Reflection__V1__ServerReflectionResponse resp;
	Grpc__Reflection__V1__FileDescriptorResponse fdr;
	ProtobufCBinaryData fdr_files[FILES_MAX];
	Grpc__Reflection__V1__ListServiceResponse lsr;
	Grpc__Reflection__V1__ServiceResponse svc[SERVICES_MAX];
	Grpc__Reflection__V1__ServiceResponse *svcp[SERVICES_MAX];
	char svc_name[SERVICES_MAX][GRPC_REFLECT_NAME_MAX + 1];
	Grpc__Reflection__V1__ExtensionNumberResponse enr;
	struct ext_numbers ext;
	Grpc__Reflection__V1__ErrorResponse err;
	char err_msg[GRPC_REFLECT_WHY_MAX];
};

/* "<kind> not found: <what>" */
static void not_found(struct answer *a, const char *kind, const char *what)
{
	snprintf(a->err_msg, sizeof(a->err_msg), "%s not found: %.64s", kind, what);
	a->err.error_code = CODE(NOT_FOUND);
	a->err.error_message = a->err_msg;
	a->resp.message_response_case = RESP(ERROR_RESPONSE);
	a->resp.error_response = &a->err;
}

/* File i, then each of its dependencies not sent yet, depth first. */
static void add_file(struct answer *a, int i, bool *sent)
{
	const FileDesc *fd = a->files.fd[i];

	if (sent[i])
		return;
	sent[i] = true;
	a->fdr_files[a->fdr.n_file_descriptor_proto++] = a->files.raw[i];
	for (size_t k = 0; k < fd->n_dependency; k++) {
		int d = file_named(&a->files, str(fd->dependency[k]));

		if (d >= 0)
			add_file(a, d, sent);
	}
}

static void file_answer(struct answer *a, int i)
{
	bool sent[FILES_MAX] = { false };

	a->fdr.file_descriptor_proto = a->fdr_files;
	add_file(a, i, sent);
	a->resp.message_response_case = RESP(FILE_DESCRIPTOR_RESPONSE);
	a->resp.file_descriptor_response = &a->fdr;
}

static void list_services(struct answer *a)
{
	size_t n = 0;

	for (size_t i = 0; i < a->files.n; i++) {
		const FileDesc *fd = a->files.fd[i];

		for (size_t k = 0; k < fd->n_service && n < SERVICES_MAX; k++) {
			grpc__reflection__v1__service_response__init(&a->svc[n]);
			snprintf(a->svc_name[n], sizeof(a->svc_name[n]), "%s%s%s", str(fd->package),
				 str(fd->package)[0] != '\0' ? "." : "", str(fd->service[k]->name));
			a->svc[n].name = a->svc_name[n];
			a->svcp[n] = &a->svc[n];
			n++;
		}
	}
	a->lsr.n_service = n;
	a->lsr.service = a->svcp;
	a->resp.message_response_case = RESP(LIST_SERVICES_RESPONSE);
	a->resp.list_services_response = &a->lsr;
}

static void respond_to(struct answer *a, const Grpc__Reflection__V1__ServerReflectionRequest *q)
{
	int i;

	switch (q->message_request_case) {
	case REQ(FILE_BY_FILENAME):
		i = file_named(&a->files, q->file_by_filename);
		if (i >= 0)
			file_answer(a, i);
		else
			not_found(a, "file", q->file_by_filename);
		break;
	case REQ(FILE_CONTAINING_SYMBOL):
		i = file_declaring(&a->files, q->file_containing_symbol, false);
		if (i >= 0)
			file_answer(a, i);
		else
			not_found(a, "symbol", q->file_containing_symbol);
		break;
	case REQ(FILE_CONTAINING_EXTENSION): {
		const Grpc__Reflection__V1__ExtensionRequest *x = q->file_containing_extension;
		int32_t num = x->extension_number;

		i = strlen(x->containing_type) > GRPC_REFLECT_NAME_MAX
			    ? -1 : visit_exts(&a->files, x->containing_type, ext_is, &num);
		if (i >= 0)
			file_answer(a, i);
		else
			not_found(a, "extension", x->containing_type);
		break;
	}
	case REQ(ALL_EXTENSION_NUMBERS_OF_TYPE):
		if (file_declaring(&a->files, q->all_extension_numbers_of_type, true) < 0) {
			not_found(a, "message type", q->all_extension_numbers_of_type);
			break;
		}
		(void)visit_exts(&a->files, q->all_extension_numbers_of_type, ext_collect, &a->ext);
		a->enr.base_type_name = q->all_extension_numbers_of_type;
		a->enr.n_extension_number = a->ext.count;
		a->enr.extension_number = a->ext.n;
		a->resp.message_response_case = RESP(ALL_EXTENSION_NUMBERS_RESPONSE);
		a->resp.all_extension_numbers_response = &a->enr;
		break;
	case REQ(LIST_SERVICES):
		list_services(a);
		break;
	default:
		snprintf(a->err_msg, sizeof(a->err_msg), "the request sets none of message_request");
		a->err.error_code = CODE(INVALID_ARGUMENT);
		a->err.error_message = a->err_msg;
		a->resp.message_response_case = RESP(ERROR_RESPONSE);
		a->resp.error_response = &a->err;
		break;
	}
}

bool grpc_reflect_path(const char *path)
{
	const ProtobufCServiceDescriptor *d[] = { &grpc__reflection__v1__server_reflection__descriptor,
						  &grpc__reflection__v1alpha__server_reflection__descriptor };

	if (path[0] != '/')
		return false;
	for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++) {
		size_t n = strlen(d[i]->name);

		if (strncmp(path + 1, d[i]->name, n) == 0 && path[1 + n] == '/' &&
		    strcmp(path + 2 + n, d[i]->methods[0].name) == 0)
			return true;
	}
	return false;
}

int grpc_reflect_answer(const uint8_t *msg, size_t len, uint8_t **out, size_t *n, char *why)
{
	Grpc__Reflection__V1__ServerReflectionRequest *q;
	struct answer *a;
	int code = CODE(OK);

	*out = NULL;
	*n = 0;
	q = grpc__reflection__v1__server_reflection_request__unpack(NULL, len, msg);
	if (q == NULL) {
		snprintf(why, GRPC_REFLECT_WHY_MAX, "message: not a valid %s",
			 grpc__reflection__v1__server_reflection_request__descriptor.name);
		return CODE(INVALID_ARGUMENT);
	}
	/* a field numbered 0 (protobuf-c keeps it as unknown) would be echoed in
	 * original_request and make the answer undecodable (found by fuzz_grpc_reflect) */
	for (size_t i = 0; i < q->base.n_unknown_fields; i++) {
		if (q->base.unknown_fields[i].tag == 0) {
			grpc__reflection__v1__server_reflection_request__free_unpacked(q, NULL);
			snprintf(why, GRPC_REFLECT_WHY_MAX, "message: not a valid %s (field number 0)",
				 grpc__reflection__v1__server_reflection_request__descriptor.name);
			return CODE(INVALID_ARGUMENT);
		}
	}
	a = calloc(1, sizeof(*a));
	if (a == NULL || !files_load(&a->files)) {
		snprintf(why, GRPC_REFLECT_WHY_MAX, "out of memory for the descriptors");
		code = CODE(RESOURCE_EXHAUSTED);
		goto out;
	}
	grpc__reflection__v1__server_reflection_response__init(&a->resp);
	grpc__reflection__v1__file_descriptor_response__init(&a->fdr);
	grpc__reflection__v1__list_service_response__init(&a->lsr);
	grpc__reflection__v1__extension_number_response__init(&a->enr);
	grpc__reflection__v1__error_response__init(&a->err);
	a->resp.valid_host = q->host;
	a->resp.original_request = q;
	respond_to(a, q);
	*n = grpc__reflection__v1__server_reflection_response__get_packed_size(&a->resp);
	*out = malloc(*n > 0 ? *n : 1);
	if (*out == NULL) {
		*n = 0;
		snprintf(why, GRPC_REFLECT_WHY_MAX, "out of memory");
		code = CODE(RESOURCE_EXHAUSTED);
	} else {
		(void)grpc__reflection__v1__server_reflection_response__pack(&a->resp, *out);
	}
	files_free(&a->files);
out:
	free(a);
	grpc__reflection__v1__server_reflection_request__free_unpacked(q, NULL);
	return code;
}
