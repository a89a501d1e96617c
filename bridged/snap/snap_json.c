/* Descriptor-driven JSON <-> protobuf-c mapping.
 *
 * The encoder writes straight into a snap_buf. The decoder parses with
 * jansson and walks the tree guided by the message descriptor, allocating
 * every byte of the result from the caller's arena. */
#include "snap_json.h"
#include "snap_err.h"

#include <errno.h>
#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NUM_TEXT_MAX 40            /* text of any number we print */
#define DOUBLE_PREC_MAX 17         /* digits that round-trip any double */
#define FLOAT_PREC_MAX 9           /* digits that round-trip any float */
#define INTEGRAL_REAL_MAX 1e17     /* integral reals below this print without exponent */
#define PRETTY_INDENT 2
#define B64_CHUNK 64               /* base64 characters buffered before an append */
#define INT_REAL_MAX 9e18         /* integral reals accepted for integers */
#define FLOAT_ROUND_MAX 0x1.ffffffp+127 /* reals below this round to a finite float */
#define DEC_SKIP 1                 /* a value that cannot be placed (not an error) */

/* ---- names and presence --------------------------------------------------- */

int snap_json_field_name(const ProtobufCFieldDescriptor *field, char *out, size_t outsz)
{
	size_t n = 0;
	bool up = false;

	if (outsz == 0)
		return SNAP_ERR_TOO_BIG;
	for (const char *p = field->name; *p != '\0'; p++) {
		if (*p == '_') {
			up = true;
			continue;
		}
		if (n + 1 >= outsz) {
			out[0] = '\0';
			return SNAP_ERR_TOO_BIG;
		}
		out[n++] = up && *p >= 'a' && *p <= 'z' ? (char)(*p - 'a' + 'A') : *p;
		up = false;
	}
	out[n] = '\0';
	return SNAP_OK;
}

static const void *field_ptr(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f)
{
	return (const char *)msg + f->offset;
}

static size_t field_count(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f)
{
	return *(const size_t *)((const char *)msg + f->quantifier_offset);
}

/* Whether a scalar field has a has_ flag (proto2 optional, proto3 optional). */
static bool has_flag(const ProtobufCFieldDescriptor *f)
{
	return f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset != 0 &&
	       (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) == 0 &&
	       f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE;
}

static bool value_nonzero(const ProtobufCFieldDescriptor *f, const void *p)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)p;

		return s != NULL && s[0] != '\0';
	}
	case PROTOBUF_C_TYPE_MESSAGE:
		return *(void *const *)p != NULL;
	case PROTOBUF_C_TYPE_BYTES:
		return ((const ProtobufCBinaryData *)p)->len > 0;
	case PROTOBUF_C_TYPE_BOOL:
		return *(const protobuf_c_boolean *)p != 0;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return *(const uint64_t *)p != 0;
	case PROTOBUF_C_TYPE_FLOAT:
		return *(const float *)p != 0.0f;
	case PROTOBUF_C_TYPE_DOUBLE:
		return *(const double *)p != 0.0;
	default: /* 32-bit integers and enums */
		return *(const uint32_t *)p != 0;
	}
}

int snap_json_field_present(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f)
{
	const char *q = (const char *)msg + f->quantifier_offset;
	const void *p = field_ptr(msg, f);

	if (f->label == PROTOBUF_C_LABEL_REPEATED)
		return field_count(msg, f) > 0;
	if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0)
		return *(const uint32_t *)q == f->id;
	if (has_flag(f))
		return *(const protobuf_c_boolean *)q != 0;
	if (f->label == PROTOBUF_C_LABEL_REQUIRED)
		return f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE
			       ? *(void *const *)p != NULL
			       : 1;
	if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type == PROTOBUF_C_TYPE_STRING) {
		/* proto2: set unless NULL or the default (what protobuf-c packs) */
		const char *s = *(char *const *)p;

		return s != NULL && s != (const char *)f->default_value;
	}
	return value_nonzero(f, p);
}

/* Whether the encoder writes field f of msg. */
static bool field_wanted(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f,
			 unsigned flags)
{
	if (snap_json_field_present(msg, f))
		return true;
	if ((flags & SNAP_JSON_EMIT_DEFAULTS) == 0 || f->label == PROTOBUF_C_LABEL_REPEATED ||
	    (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0 || has_flag(f) ||
	    f->type == PROTOBUF_C_TYPE_MESSAGE)
		return false;
	return f->type != PROTOBUF_C_TYPE_STRING || *(char *const *)field_ptr(msg, f) != NULL;
}

/* ---- numbers as text ------------------------------------------------------- */

/* Decimal digits of v (with a '-' when neg) into buf; returns the start. */
static char *u64_text(uint64_t v, bool neg, char buf[NUM_TEXT_MAX])
{
	char *p = buf + NUM_TEXT_MAX - 1;

	*p = '\0';
	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	if (neg)
		*--p = '-';
	return p;
}

static char *i64_text(int64_t v, char buf[NUM_TEXT_MAX])
{
	return v < 0 ? u64_text((uint64_t)0 - (uint64_t)v, true, buf)
		     : u64_text((uint64_t)v, false, buf);
}

/* The shortest text that reads back as v (as a float when single); integral
 * values of reasonable size are written without exponent. v is finite. */
static size_t real_text(double v, bool single, char buf[NUM_TEXT_MAX])
{
	int n = 0;

	/* "-0" would read back as the integer 0: keep the sign with a real literal */
	if (v == 0.0 && signbit(v))
		return (size_t)snprintf(buf, NUM_TEXT_MAX, "-0.0");
	if (v > -INTEGRAL_REAL_MAX && v < INTEGRAL_REAL_MAX && v == (double)(int64_t)v)
		return (size_t)snprintf(buf, NUM_TEXT_MAX, "%.0f", v);
	for (int prec = 1; prec <= DOUBLE_PREC_MAX; prec++) {
		n = snprintf(buf, NUM_TEXT_MAX, "%.*g", prec, v);
		if (single ? strtof(buf, NULL) == (float)v : strtod(buf, NULL) == v)
			break;
		if (single && prec == FLOAT_PREC_MAX)
			break;
	}
	return (size_t)n;
}

/* ---- encoder --------------------------------------------------------------- */

struct enc {
	snap_buf *out;
	unsigned flags;
};

static int put(struct enc *e, const char *s, size_t n)
{
	return snap_buf_append(e->out, s, n);
}

static int put_str(struct enc *e, const char *s)
{
	return snap_buf_append(e->out, s, strlen(s));
}

static int put_newline(struct enc *e, int level)
{
	static const char spaces[] = "                                ";
	size_t n = (size_t)level * PRETTY_INDENT;
	int rc;

	if ((e->flags & SNAP_JSON_PRETTY) == 0)
		return SNAP_OK;
	rc = put(e, "\n", 1);
	while (rc == 0 && n > 0) {
		size_t k = n < sizeof(spaces) - 1 ? n : sizeof(spaces) - 1;

		rc = put(e, spaces, k);
		n -= k;
	}
	return rc;
}

/* Length of the valid UTF-8 sequence at s[0..n) (s[0] >= 0x80), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xBF;
	size_t len;

	if (c >= 0xC2 && c <= 0xDF)
		len = 2;
	else if (c >= 0xE0 && c <= 0xEF)
		len = 3;
	else if (c >= 0xF0 && c <= 0xF4)
		len = 4;
	else
		return 0;
	if (c == 0xE0)
		lo = 0xA0; /* overlong */
	else if (c == 0xED)
		hi = 0x9F; /* surrogates */
	else if (c == 0xF0)
		lo = 0x90; /* overlong */
	else if (c == 0xF4)
		hi = 0x8F; /* over U+10FFFF */
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0;
	return len;
}

/* s[0..n) as a JSON string: only '"', '\\' and control characters escaped. */
static int put_json_string(struct enc *e, const char *str, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, run = 0;
	char esc[6];
	int rc;

	rc = put(e, "\"", 1);
	while (rc == 0 && i < n) {
		unsigned char c = s[i];
		size_t k;

		if (c >= 0x80) {
			k = utf8_len(s + i, n - i);
			if (k == 0)
				return SNAP_ERR_JSON;
			i += k;
			continue;
		}
		if (c >= 0x20 && c != '"' && c != '\\') {
			i++;
			continue;
		}
		rc = put(e, str + run, i - run);
		if (rc != 0)
			return rc;
		esc[0] = '\\';
		k = 2;
		switch (c) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		default:
			memcpy(esc + 1, "u00", 3);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			k = 6;
		}
		rc = put(e, esc, k);
		run = ++i;
	}
	if (rc == 0)
		rc = put(e, str + run, i - run);
	if (rc == 0)
		rc = put(e, "\"", 1);
	return rc;
}

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int put_base64(struct enc *e, const uint8_t *p, size_t n)
{
	char chunk[B64_CHUNK];
	size_t k = 0;
	int rc = put(e, "\"", 1);

	for (size_t i = 0; rc == 0 && i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;

		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		chunk[k++] = b64_alphabet[v >> 18 & 63];
		chunk[k++] = b64_alphabet[v >> 12 & 63];
		chunk[k++] = i + 1 < n ? b64_alphabet[v >> 6 & 63] : '=';
		chunk[k++] = i + 2 < n ? b64_alphabet[v & 63] : '=';
		if (k == sizeof(chunk)) {
			rc = put(e, chunk, k);
			k = 0;
		}
	}
	if (rc == 0)
		rc = put(e, chunk, k);
	if (rc == 0)
		rc = put(e, "\"", 1);
	return rc;
}

static int put_real(struct enc *e, double v, bool single)
{
	char buf[NUM_TEXT_MAX];

	if (isnan(v))
		return put_str(e, "\"NaN\"");
	if (isinf(v))
		return put_str(e, v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
	return put(e, buf, real_text(v, single, buf));
}

static int put_quoted(struct enc *e, const char *text)
{
	int rc = put(e, "\"", 1);

	if (rc == 0)
		rc = put_str(e, text);
	if (rc == 0)
		rc = put(e, "\"", 1);
	return rc;
}

/* "name": with the field's JSON name (an ASCII identifier: nothing to escape). */
static int put_key(struct enc *e, const ProtobufCFieldDescriptor *f, bool pretty)
{
	char key[SNAP_JSON_NAME_MAX + 4];
	size_t n;

	if (snap_json_field_name(f, key + 1, SNAP_JSON_NAME_MAX) != 0)
		return SNAP_ERR_JSON;
	key[0] = '"';
	n = strlen(key);
	key[n++] = '"';
	key[n++] = ':';
	if (pretty)
		key[n++] = ' ';
	return put(e, key, n);
}

static int enc_message(struct enc *e, const ProtobufCMessage *msg, int depth);

/* One value of field f stored at p. */
static int enc_value(struct enc *e, const ProtobufCFieldDescriptor *f, const void *p, int depth)
{
	char buf[NUM_TEXT_MAX];

	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		return put_str(e, i64_text(*(const int32_t *)p, buf));
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		return put_str(e, u64_text(*(const uint32_t *)p, false, buf));
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		return put_quoted(e, i64_text(*(const int64_t *)p, buf));
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return put_quoted(e, u64_text(*(const uint64_t *)p, false, buf));
	case PROTOBUF_C_TYPE_FLOAT:
		return put_real(e, *(const float *)p, true);
	case PROTOBUF_C_TYPE_DOUBLE:
		return put_real(e, *(const double *)p, false);
	case PROTOBUF_C_TYPE_BOOL:
		return put_str(e, *(const protobuf_c_boolean *)p ? "true" : "false");
	case PROTOBUF_C_TYPE_ENUM: {
		int v = *(const int *)p;
		const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, v);

		return ev != NULL ? put_quoted(e, ev->name) : put_str(e, i64_text(v, buf));
	}
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)p;

		return put_json_string(e, s != NULL ? s : "", s != NULL ? strlen(s) : 0);
	}
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *b = p;

		return put_base64(e, b->data, b->len);
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *m = *(ProtobufCMessage *const *)p;

		return m != NULL ? enc_message(e, m, depth + 1) : put(e, "{}", 2);
	}
	}
	return SNAP_ERR_JSON;
}

static size_t type_size(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return sizeof(uint64_t);
	case PROTOBUF_C_TYPE_DOUBLE:
		return sizeof(double);
	case PROTOBUF_C_TYPE_FLOAT:
		return sizeof(float);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_ENUM:
		return sizeof(int);
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(ProtobufCMessage *);
	default:
		return sizeof(uint32_t);
	}
}

static int enc_repeated(struct enc *e, const ProtobufCMessage *msg,
			const ProtobufCFieldDescriptor *f, int depth)
{
	const char *arr = *(char *const *)field_ptr(msg, f);
	size_t n = field_count(msg, f), sz = type_size(f->type);
	int rc = put(e, "[", 1);

	for (size_t i = 0; rc == 0 && i < n; i++) {
		if (i > 0)
			rc = put(e, ",", 1);
		if (rc == 0)
			rc = put_newline(e, depth + 2);
		if (rc == 0)
			rc = enc_value(e, f, arr + i * sz, depth + 1);
	}
	if (rc == 0)
		rc = put_newline(e, depth + 1);
	if (rc == 0)
		rc = put(e, "]", 1);
	return rc;
}

static int enc_message(struct enc *e, const ProtobufCMessage *msg, int depth)
{
	const ProtobufCMessageDescriptor *d = msg->descriptor;
	const bool pretty = (e->flags & SNAP_JSON_PRETTY) != 0;
	bool first = true;
	int rc;

	if (depth >= SNAP_JSON_MAX_DEPTH)
		return SNAP_ERR_JSON;
	rc = put(e, "{", 1);
	for (unsigned i = 0; rc == 0 && i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];

		if (!field_wanted(msg, f, e->flags))
			continue;
		if (!first)
			rc = put(e, ",", 1);
		if (rc == 0)
			rc = put_newline(e, depth + 1);
		if (rc == 0)
			rc = put_key(e, f, pretty);
		if (rc == 0)
			rc = f->label == PROTOBUF_C_LABEL_REPEATED
				     ? enc_repeated(e, msg, f, depth)
				     : enc_value(e, f, field_ptr(msg, f), depth);
		first = false;
	}
	if (rc == 0 && !first)
		rc = put_newline(e, depth);
	if (rc == 0)
		rc = put(e, "}", 1);
	return rc;
}

int snap_json_encode(const ProtobufCMessage *msg, unsigned flags, snap_buf *out)
{
	struct enc e = { out, flags };
	size_t len0 = out->len;
	int rc;

	if (msg == NULL)
		return SNAP_ERR_INVALID;
	rc = enc_message(&e, msg, 0);
	if (rc != 0) {
		/* Leave out as it was: no half-written document. */
		out->len = len0;
		if (out->data != NULL)
			out->data[len0] = '\0';
	}
	return rc;
}

/* ---- decoder --------------------------------------------------------------- */

struct dec {
	snap_arena *arena;
	unsigned flags;
	char *err;
	size_t errlen;
	char path[SNAP_JSON_ERR_MAX]; /* dotted path of the key being decoded */
	size_t plen;
};

static bool strict(const struct dec *d)
{
	return (d->flags & SNAP_JSON_STRICT) != 0;
}

static int dec_fail(struct dec *d, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int dec_fail(struct dec *d, int rc, const char *fmt, ...)
{
	va_list ap;

	if (d->err != NULL && d->errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(d->err, d->errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* Append ".key" (or "[i]" for an index) to the path; returns the old length. */
static size_t path_push(struct dec *d, const char *key, long index)
{
	size_t old = d->plen, room = sizeof(d->path) - d->plen;
	int n;

	if (index >= 0)
		n = snprintf(d->path + d->plen, room, "[%ld]", index);
	else
		n = snprintf(d->path + d->plen, room, "%s%s", d->plen > 0 ? "." : "",
			     key != NULL ? key : "");
	if (n > 0)
		d->plen += (size_t)n < room ? (size_t)n : room - 1;
	return old;
}

static void path_pop(struct dec *d, size_t old)
{
	d->plen = old;
	d->path[old] = '\0';
}

/* Whether the nesting of JSON text s[0..n) stays within max levels. */
static bool depth_ok(const char *s, size_t n, int max)
{
	bool in_str = false;
	int depth = 0;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = false;
		} else if (c == '"') {
			in_str = true;
		} else if (c == '{' || c == '[') {
			if (++depth > max)
				return false;
		} else if (c == '}' || c == ']') {
			depth--;
		}
	}
	return true;
}

/* Parse s[0..n); an integer too big for jansson makes a retry reading every
 * integer as a real. */
static json_t *load(const char *s, size_t n, json_error_t *jerr)
{
	json_t *root = json_loadb(s, n, JSON_DECODE_ANY, jerr);

	if (root == NULL && json_error_code(jerr) == json_error_numeric_overflow)
		root = json_loadb(s, n, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, jerr);
	return root;
}

static bool ascii_ieq(const char *a, const char *b)
{
	for (; *a != '\0' && *b != '\0'; a++, b++) {
		char x = *a >= 'A' && *a <= 'Z' ? (char)(*a - 'A' + 'a') : *a;
		char y = *b >= 'A' && *b <= 'Z' ? (char)(*b - 'A' + 'a') : *b;

		if (x != y)
			return false;
	}
	return *a == *b;
}

static char ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Whether key is the JSON name of the field called name, ignoring ASCII case:
 * ascii_ieq(snap_json_field_name(name), key) without writing the name out
 * (underscores dropped; the upper case after one does not matter here),
 * false as well when snap_json_field_name would refuse the name as too long. */
static bool json_name_ieq(const char *name, const char *key)
{
	size_t n = 0;

	for (const char *p = name; *p != '\0'; p++) {
		if (*p == '_')
			continue;
		if (++n >= SNAP_JSON_NAME_MAX || ascii_lower(*p) != ascii_lower(*key))
			return false;
		key++;
	}
	return *key == '\0';
}

/* The field whose JSON name (or proto name) is key, ignoring ASCII case. */
static const ProtobufCFieldDescriptor *find_field(const ProtobufCMessageDescriptor *desc,
						  const char *key)
{
	for (unsigned i = 0; i < desc->n_fields; i++)
		if (json_name_ieq(desc->fields[i].name, key))
			return &desc->fields[i];
	for (unsigned i = 0; i < desc->n_fields; i++)
		if (ascii_ieq(desc->fields[i].name, key))
			return &desc->fields[i];
	return NULL;
}

/* Text of a JSON number (integer or real) into buf. */
static size_t number_text(const json_t *v, char buf[NUM_TEXT_MAX], const char **start)
{
	if (json_is_integer(v)) {
		*start = i64_text(json_integer_value(v), buf);
		return strlen(*start);
	}
	*start = buf;
	return real_text(json_real_value(v), false, buf);
}

/* Whether s is a plain decimal number: -?digits[.digits][e[+-]digits]. */
static bool number_syntax(const char *s)
{
	const char *p = s;

	if (*p == '-')
		p++;
	if (*p < '0' || *p > '9')
		return false;
	while (*p >= '0' && *p <= '9')
		p++;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (*p < '0' || *p > '9')
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	return *p == '\0';
}

/* A JSON value as a double: a number, or a string holding one (or "NaN",
 * "Infinity", "-Infinity"). */
static bool get_real(const json_t *v, double *out)
{
	const char *s;

	if (json_is_number(v)) {
		*out = json_number_value(v);
		return true;
	}
	if (!json_is_string(v))
		return false;
	s = json_string_value(v);
	if (strcmp(s, "NaN") == 0) {
		*out = (double)NAN;
		return true;
	}
	if (strcmp(s, "Infinity") == 0 || strcmp(s, "-Infinity") == 0) {
		*out = s[0] == '-' ? -(double)INFINITY : (double)INFINITY;
		return true;
	}
	if (!number_syntax(s))
		return false;
	errno = 0;
	*out = strtod(s, NULL);
	return errno != ERANGE || (*out > -1.0 && *out < 1.0);
}

/* A JSON value as an integer in [min, max] (signed) or [0, umax] (unsigned):
 * an integer, an integral real, or a string holding either. */
static bool get_int(const json_t *v, bool is_signed, int64_t min, int64_t max, uint64_t umax,
		    uint64_t *out)
{
	double r;
	int64_t i;

	if (json_is_integer(v)) {
		i = json_integer_value(v);
		if (is_signed ? i < min || i > max : i < 0 || (uint64_t)i > umax)
			return false;
		*out = (uint64_t)i;
		return true;
	}
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		char *end;

		errno = 0;
		if (is_signed && ((s[0] >= '0' && s[0] <= '9') || s[0] == '-')) {
			i = strtoll(s, &end, 10);
			if (*end == '\0' && errno == 0) {
				if (i < min || i > max)
					return false;
				*out = (uint64_t)i;
				return true;
			}
		} else if (!is_signed && s[0] >= '0' && s[0] <= '9') {
			unsigned long long u = strtoull(s, &end, 10);

			if (*end == '\0' && errno == 0) {
				if (u > umax)
					return false;
				*out = u;
				return true;
			}
		}
	}
	/* An integral real (1e2, "100.0"); doubles hold integers exactly up to 2^53. */
	if (!get_real(v, &r) || !(r >= -INT_REAL_MAX && r <= INT_REAL_MAX) ||
	    r != (double)(int64_t)r)
		return false;
	i = (int64_t)r;
	if (is_signed ? i < min || i > max : i < 0 || (uint64_t)i > umax)
		return false;
	*out = (uint64_t)i;
	return true;
}

static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

/* Standard or URL-safe base64, padding optional, into the arena. */
static int get_bytes(struct dec *d, const char *s, size_t n, ProtobufCBinaryData *out)
{
	uint8_t *p;
	size_t k = 0;
	uint32_t acc = 0;
	int bits = 0;

	while (n > 0 && s[n - 1] == '=')
		n--;
	if (n % 4 == 1)
		return DEC_SKIP;
	p = snap_arena_alloc(d->arena, n / 4 * 3 + 3);
	if (p == NULL)
		return SNAP_ERR_NOMEM;
	for (size_t i = 0; i < n; i++) {
		int v = b64_value(s[i]);

		if (v < 0)
			return DEC_SKIP;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			p[k++] = (uint8_t)(acc >> bits);
		}
	}
	out->data = k > 0 ? p : NULL;
	out->len = k;
	return SNAP_OK;
}

static int dec_object(struct dec *d, const ProtobufCMessageDescriptor *desc, const json_t *obj,
		      int depth, ProtobufCMessage **out);

/* A message from a string holding a JSON object (DOKU's stringified additionalInfo). */
static int dec_stringified(struct dec *d, const ProtobufCMessageDescriptor *desc,
			   const json_t *v, int depth, ProtobufCMessage **out)
{
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	json_error_t jerr;
	json_t *root;
	int rc;

	if (n == 0 || s[0] != '{' || !depth_ok(s, n, SNAP_JSON_MAX_DEPTH - depth - 1))
		return DEC_SKIP;
	root = load(s, n, &jerr);
	if (root == NULL || !json_is_object(root)) {
		json_decref(root);
		return DEC_SKIP;
	}
	rc = dec_object(d, desc, root, depth + 1, out);
	json_decref(root);
	return rc;
}

/* One value v of field f into dst (a singular field or an array element).
 * 0, DEC_SKIP when it cannot be placed, or a negative error. */
static int dec_value(struct dec *d, const ProtobufCFieldDescriptor *f, const json_t *v,
		     void *dst, int depth)
{
	char buf[NUM_TEXT_MAX];
	const char *text;
	uint64_t u;
	double r;
	size_t n;

	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING:
		if (json_is_string(v)) {
			text = json_string_value(v);
			n = json_string_length(v);
		} else if (json_is_number(v) && !strict(d)) {
			n = number_text(v, buf, &text);
		} else {
			return DEC_SKIP;
		}
		*(char **)dst = snap_arena_strndup(d->arena, text, n);
		return *(char **)dst != NULL ? SNAP_OK : SNAP_ERR_NOMEM;
	case PROTOBUF_C_TYPE_BYTES:
		if (!json_is_string(v))
			return DEC_SKIP;
		return get_bytes(d, json_string_value(v), json_string_length(v), dst);
	case PROTOBUF_C_TYPE_BOOL:
		if (json_is_boolean(v))
			*(protobuf_c_boolean *)dst = json_is_true(v);
		else if (json_is_string(v) && strcmp(json_string_value(v), "true") == 0)
			*(protobuf_c_boolean *)dst = 1;
		else if (json_is_string(v) && strcmp(json_string_value(v), "false") == 0)
			*(protobuf_c_boolean *)dst = 0;
		else if (json_is_integer(v) && !strict(d))
			*(protobuf_c_boolean *)dst = json_integer_value(v) != 0;
		else
			return DEC_SKIP;
		return SNAP_OK;
	case PROTOBUF_C_TYPE_ENUM:
		if (json_is_string(v)) {
			const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value_by_name(
				f->descriptor, json_string_value(v));

			if (ev != NULL) {
				*(int *)dst = ev->value;
				return SNAP_OK;
			}
		}
		if (!get_int(v, true, INT32_MIN, INT32_MAX, 0, &u))
			return DEC_SKIP;
		*(int *)dst = (int)(int64_t)u;
		return SNAP_OK;
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		if (!get_int(v, true, INT32_MIN, INT32_MAX, 0, &u))
			return DEC_SKIP;
		*(int32_t *)dst = (int32_t)(int64_t)u;
		return SNAP_OK;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		if (!get_int(v, false, 0, 0, UINT32_MAX, &u))
			return DEC_SKIP;
		*(uint32_t *)dst = (uint32_t)u;
		return SNAP_OK;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		if (!get_int(v, true, INT64_MIN, INT64_MAX, 0, &u))
			return DEC_SKIP;
		*(int64_t *)dst = (int64_t)u;
		return SNAP_OK;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		if (!get_int(v, false, 0, 0, UINT64_MAX, &u))
			return DEC_SKIP;
		*(uint64_t *)dst = u;
		return SNAP_OK;
	case PROTOBUF_C_TYPE_FLOAT:
		/* a real that rounds to FLT_MAX is one: the shortest text of FLT_MAX
		 * ("3.4028235e+38") is above FLT_MAX as a double */
		if (!get_real(v, &r) || (isfinite(r) && !(fabs(r) < FLOAT_ROUND_MAX)))
			return DEC_SKIP;
		if (isfinite(r) && fabs(r) > FLT_MAX)
			r = copysign(FLT_MAX, r);
		*(float *)dst = (float)r;
		return SNAP_OK;
	case PROTOBUF_C_TYPE_DOUBLE:
		if (!get_real(v, &r))
			return DEC_SKIP;
		*(double *)dst = r;
		return SNAP_OK;
	case PROTOBUF_C_TYPE_MESSAGE:
		if (json_is_object(v))
			return dec_object(d, f->descriptor, v, depth + 1, dst);
		if (json_is_string(v) && !strict(d))
			return dec_stringified(d, f->descriptor, v, depth, dst);
		return DEC_SKIP;
	}
	return DEC_SKIP;
}

static int dec_repeated(struct dec *d, ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f,
			const json_t *v, int depth)
{
	const bool is_array = json_is_array(v);
	size_t n = is_array ? json_array_size(v) : 1, sz = type_size(f->type), k = 0;
	char *arr;
	int rc;

	if (!is_array && strict(d))
		return DEC_SKIP;
	if (n == 0)
		return SNAP_OK;
	arr = snap_arena_alloc(d->arena, n * sz);
	if (arr == NULL)
		return SNAP_ERR_NOMEM;
	for (size_t i = 0; i < n; i++) {
		const json_t *el = is_array ? json_array_get(v, i) : v;
		size_t old;

		if (json_is_null(el))
			continue;
		old = path_push(d, NULL, (long)i);
		rc = dec_value(d, f, el, arr + k * sz, depth);
		if (rc == DEC_SKIP && strict(d))
			return dec_fail(d, SNAP_ERR_JSON, "key '%s': value of the wrong kind",
					d->path);
		path_pop(d, old);
		if (rc < 0)
			return rc;
		if (rc == 0)
			k++;
	}
	*(size_t *)((char *)msg + f->quantifier_offset) = k;
	*(char **)((char *)msg + f->offset) = k > 0 ? arr : NULL;
	return SNAP_OK;
}

static int dec_field(struct dec *d, ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f,
		     const json_t *v, int depth)
{
	char *q = (char *)msg + f->quantifier_offset;
	int rc;

	if (json_is_null(v))
		return SNAP_OK;
	if (f->label == PROTOBUF_C_LABEL_REPEATED)
		return dec_repeated(d, msg, f, v, depth);
	if (f->type == PROTOBUF_C_TYPE_MESSAGE && json_is_array(v)) {
		if (strict(d))
			return DEC_SKIP;
		v = json_array_get(v, 0);
		if (v == NULL || json_is_null(v))
			return SNAP_OK;
	}
	rc = dec_value(d, f, v, (char *)msg + f->offset, depth);
	if (rc != 0)
		return rc;
	if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0)
		*(uint32_t *)q = f->id;
	else if (has_flag(f))
		*(protobuf_c_boolean *)q = 1;
	return SNAP_OK;
}

static int dec_object(struct dec *d, const ProtobufCMessageDescriptor *desc, const json_t *obj,
		      int depth, ProtobufCMessage **out)
{
	ProtobufCMessage *msg;
	const char *key;
	json_t *v;
	int rc;

	if (depth >= SNAP_JSON_MAX_DEPTH)
		return dec_fail(d, SNAP_ERR_JSON, "key '%s': nested deeper than %d", d->path,
				SNAP_JSON_MAX_DEPTH);
	msg = snap_arena_alloc(d->arena, desc->sizeof_message);
	if (msg == NULL)
		return dec_fail(d, SNAP_ERR_NOMEM, "out of memory");
	protobuf_c_message_init(desc, msg);
	json_object_foreach((json_t *)obj, key, v) {
		const ProtobufCFieldDescriptor *f = find_field(desc, key);
		size_t old = path_push(d, key, -1);

		if (f == NULL) {
			if (strict(d))
				return dec_fail(d, SNAP_ERR_JSON, "unknown key '%s'", d->path);
			path_pop(d, old);
			continue;
		}
		rc = dec_field(d, msg, f, v, depth);
		if (rc == DEC_SKIP && strict(d))
			return dec_fail(d, SNAP_ERR_JSON, "key '%s': value of the wrong kind",
					d->path);
		if (rc < 0)
			return rc == SNAP_ERR_NOMEM ? dec_fail(d, rc, "out of memory") : rc;
		path_pop(d, old);
	}
	*out = msg;
	return SNAP_OK;
}

/* ---- the fast path of tolerant decoding ------------------------------------------------------
 *
 * DOKU's answers are mostly objects of plain strings: they are decoded here
 * straight into the arena's message, without jansson's tree (its parse, its
 * allocations and their wiping were most of an answer's cost). Only a text
 * whose every part is plain is taken: objects, keys and string values of
 * printable ASCII without escapes, every key naming a field of the message
 * (singular, string or message, each at most once), nothing else. Anything
 * else (an escape, a number, null, an array, an unknown or repeated key, a
 * stringified object...) leaves the whole text to the general path below,
 * which would give the same message for the texts taken here: for them
 * jansson's object iterates in the text's order, dec_field sets what
 * fast_object sets, and the arena sees the same allocations in the same
 * order. Two passes: the first only checks (allocates nothing), the second
 * decodes and can only fail for memory, as the general path would at the
 * same allocation. */

#define FAST_KEY_MAX 128 /* longer keys take the general path */

struct fast {
	const char *p, *end;
	snap_arena *arena;       /* NULL: the checking pass */
};

static void fast_ws(struct fast *f)
{
	while (f->p < f->end && (*f->p == ' ' || *f->p == '\t' || *f->p == '\n' || *f->p == '\r'))
		f->p++;
}

static bool fast_char(struct fast *f, char c)
{
	fast_ws(f);
	if (f->p >= f->end || *f->p != c)
		return false;
	f->p++;
	return true;
}

/* A string of printable ASCII without escapes: its bytes (unquoted). */
static bool fast_string(struct fast *f, const char **s, size_t *n)
{
	const char *q;

	if (!fast_char(f, '"'))
		return false;
	for (q = f->p; q < f->end && *q != '"'; q++)
		if ((unsigned char)*q < 0x20 || (unsigned char)*q > 0x7e || *q == '\\')
			return false;
	if (q >= f->end)
		return false;
	*s = f->p;
	*n = (size_t)(q - f->p);
	f->p = q + 1;
	return true;
}

/* 1: decoded (or, checking, decodable); 0: not for the fast path; or a
 * negative error (memory, decoding pass only). */
static int fast_object(struct fast *f, const ProtobufCMessageDescriptor *desc, int depth,
		       ProtobufCMessage **out)
{
	ProtobufCMessage *msg = NULL;
	uint64_t seen = 0;

	if (depth >= SNAP_JSON_MAX_DEPTH || desc->n_fields > 64 || !fast_char(f, '{'))
		return 0;
	if (f->arena != NULL) {
		msg = snap_arena_alloc(f->arena, desc->sizeof_message);
		if (msg == NULL)
			return SNAP_ERR_NOMEM;
		protobuf_c_message_init(desc, msg);
	}
	if (fast_char(f, '}'))
		goto done;
	for (;;) {
		const ProtobufCFieldDescriptor *fd;
		char key[FAST_KEY_MAX + 1];
		const char *s;
		size_t n, i;
		int rc;

		if (!fast_string(f, &s, &n) || n > FAST_KEY_MAX || !fast_char(f, ':'))
			return 0;
		memcpy(key, s, n);
		key[n] = '\0';
		fd = find_field(desc, key);
		if (fd == NULL || fd->label == PROTOBUF_C_LABEL_REPEATED)
			return 0;
		i = (size_t)(fd - desc->fields);
		if ((seen & (UINT64_C(1) << i)) != 0)
			return 0;
		seen |= UINT64_C(1) << i;
		if (fd->type == PROTOBUF_C_TYPE_STRING) {
			if (!fast_string(f, &s, &n))
				return 0;
			if (msg != NULL) {
				char *v = snap_arena_strndup(f->arena, s, n);

				if (v == NULL)
					return SNAP_ERR_NOMEM;
				*(char **)(void *)((char *)msg + fd->offset) = v;
			}
		} else if (fd->type == PROTOBUF_C_TYPE_MESSAGE) {
			rc = fast_object(f, fd->descriptor, depth + 1,
					 msg != NULL ? (ProtobufCMessage **)(void *)((char *)msg + fd->offset)
						     : NULL);
			if (rc <= 0)
				return rc;
		} else {
			return 0;
		}
		if (msg != NULL && (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0)
			*(uint32_t *)(void *)((char *)msg + fd->quantifier_offset) = fd->id;
		if (fast_char(f, ','))
			continue;
		if (fast_char(f, '}'))
			break;
		return 0;
	}
done:
	if (out != NULL)
		*out = msg;
	return 1;
}

/* The fast path: 1 and *out, 0 (take the general path), or SNAP_ERR_NOMEM. */
static int fast_decode(const ProtobufCMessageDescriptor *desc, const char *json, size_t len,
		       snap_arena *arena, ProtobufCMessage **out)
{
	struct fast f = { json, json + len, NULL };
	int rc = fast_object(&f, desc, 0, NULL);

	fast_ws(&f);
	if (rc <= 0 || f.p != f.end)
		return 0;
	f.p = json;
	f.arena = arena;
	return fast_object(&f, desc, 0, out);
}

int snap_json_decode(const ProtobufCMessageDescriptor *desc, const char *json, size_t len,
		     unsigned flags, snap_arena *arena, ProtobufCMessage **out, char *err,
		     size_t errlen)
{
	struct dec d = { .arena = arena, .flags = flags, .err = err, .errlen = errlen };
	json_error_t jerr;
	json_t *root = NULL;
	int rc;

	*out = NULL;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (desc == NULL || arena == NULL || (json == NULL && len > 0))
		return dec_fail(&d, SNAP_ERR_JSON, "no input");
	if (len > SNAP_JSON_MAX_INPUT)
		return dec_fail(&d, SNAP_ERR_TOO_BIG, "input over %u bytes", SNAP_JSON_MAX_INPUT);
	if (!depth_ok(json, len, SNAP_JSON_MAX_DEPTH))
		return dec_fail(&d, SNAP_ERR_JSON, "nested deeper than %d", SNAP_JSON_MAX_DEPTH);
	if (!strict(&d) && (flags & SNAP_JSON_GENERAL) == 0 && json != NULL && len > 0) {
		rc = fast_decode(desc, json, len, arena, out);
		if (rc == SNAP_ERR_NOMEM)
			return dec_fail(&d, rc, "out of memory");
		if (rc == 1)
			return SNAP_OK;
	}
	root = load(json != NULL ? json : "", len, &jerr);
	if (root == NULL)
		return dec_fail(&d, SNAP_ERR_JSON, "invalid JSON at line %d column %d: %s",
				jerr.line, jerr.column, jerr.text);
	if (!json_is_object(root)) {
		rc = dec_fail(&d, SNAP_ERR_JSON, "the top level is not an object");
		goto out;
	}
	rc = dec_object(&d, desc, root, 0, out);
out:
	json_decref(root);
	if (rc != 0)
		*out = NULL;
	return rc;
}
