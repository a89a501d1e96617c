/* log.c: redaction of secrets in every form, and the one line per call. */
#include "daemon_test.h"

#include <ctype.h>
#include <fcntl.h>
#include <strings.h>

#include "log.h"

static void redact(const char *in, const char *want)
{
	char out[LOG_LINE_MAX];

	log_redact(in, strlen(in), out, sizeof(out));
	if (strcmp(out, want) != 0)
		fprintf(stderr, "in:   %s\nout:  %s\nwant: %s\n", in, out, want);
	assert_string_equal(out, want);
}

static void test_headers(void **state)
{
	(void)state;
	redact("Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.x.y", "Authorization: [redacted]");
	redact("Authorization-Customer: Bearer abc\nX-PARTNER-ID: BRN-1",
	       "Authorization-Customer: [redacted]\nX-PARTNER-ID: BRN-1");
	redact("X-SIGNATURE: De+3/CasST47NCHx3SDDrc6c==", "X-SIGNATURE: [redacted]");
	redact("X-EXTERNAL-ID: 12345", "X-EXTERNAL-ID: 12345");
}

static void test_json(void **state)
{
	(void)state;
	redact("{\"accessToken\":\"tok-123\",\"expiresIn\":\"900\"}",
	       "{\"accessToken\":\"[redacted]\",\"expiresIn\":\"900\"}");
	redact("{\"otp\":\"123456\",\"refreshToken\" : \"r\\\"x\",\"authCode\":\"ac\"}",
	       "{\"otp\":\"[redacted]\",\"refreshToken\" : \"[redacted]\",\"authCode\":\"[redacted]\"}");
	redact("{\"clientSecret\":42,\"name\":\"Budi\"}", "{\"clientSecret\":[redacted],\"name\":\"Budi\"}");
	redact("{\"partnerReferenceNo\":\"p1\"}", "{\"partnerReferenceNo\":\"p1\"}");
}

static void test_words(void **state)
{
	(void)state;
	redact("token=abc method=GetBalance", "token=[redacted] method=GetBalance");
	redact("sent bearer QWERTY now", "sent bearer [redacted] now");
	redact("method=OpenCustomerSession ext_id=1", "method=OpenCustomerSession ext_id=1");
}

static void test_truncation(void **state)
{
	char out[8];

	(void)state;
	assert_int_equal(log_redact("0123456789", 10, out, sizeof(out)), 7);
	assert_string_equal(out, "0123456");
}

/* ---- the redactor against its first version -------------------------------------------- */

/* The redactor as first written (a byte at a time, strstr for every word):
 * the faster one must give the same output for any input. */
static const char *const ref_words[] = {
	"authorization", "signature", "token", "secret", "otp", "password",
	"authcode", "auth_code", "privatekey", "private_key", "credential", NULL,
};

static bool ref_key_char(char ch)
{
	return isalnum((unsigned char)ch) || ch == '_' || ch == '-';
}

static bool ref_sensitive(const char *k, size_t n)
{
	char low[64 + 1];

	if (n > 64)
		n = 64;
	for (size_t i = 0; i < n; i++)
		low[i] = (char)tolower((unsigned char)k[i]);
	low[n] = '\0';
	for (const char *const *s = ref_words; *s != NULL; s++)
		if (strstr(low, *s) != NULL)
			return true;
	return false;
}

static void ref_put(char *out, size_t *o, size_t cap, const char *s, size_t n)
{
	if (*o + 1 >= cap)
		return;
	if (n > cap - 1 - *o)
		n = cap - 1 - *o;
	memcpy(out + *o, s, n);
	*o += n;
}

static size_t ref_value_end(const char *in, size_t len, size_t j, bool header)
{
	if (j < len && in[j] == '"') {
		for (j++; j < len && in[j] != '"'; j++)
			if (in[j] == '\\' && j + 1 < len)
				j++;
		return j < len ? j + 1 : len;
	}
	if (header) {
		while (j < len && in[j] != '\n' && in[j] != '\r')
			j++;
		return j;
	}
	while (j < len && !isspace((unsigned char)in[j]) && in[j] != ',' && in[j] != '}' &&
	       in[j] != ';' && in[j] != '&')
		j++;
	return j;
}

static size_t ref_redact(const char *in, size_t len, char *out, size_t cap)
{
	size_t i = 0, o = 0;

	while (i < len) {
		size_t k = i, j;
		bool quoted, header;

		if (!ref_key_char(in[i]) || (i > 0 && ref_key_char(in[i - 1]))) {
			ref_put(out, &o, cap, in + i, 1);
			i++;
			continue;
		}
		while (k < len && ref_key_char(in[k]))
			k++;
		if (k - i == 6 && strncasecmp(in + i, "bearer", 6) == 0 && k < len && in[k] == ' ') {
			j = k + 1;
			ref_put(out, &o, cap, in + i, j - i);
			ref_put(out, &o, cap, LOG_REDACTED, strlen(LOG_REDACTED));
			i = ref_value_end(in, len, j, false);
			continue;
		}
		quoted = i > 0 && in[i - 1] == '"' && k < len && in[k] == '"';
		j = quoted ? k + 1 : k;
		while (j < len && in[j] == ' ')
			j++;
		if (j >= len || (in[j] != ':' && in[j] != '=') || !ref_sensitive(in + i, k - i)) {
			ref_put(out, &o, cap, in + i, k - i);
			i = k;
			continue;
		}
		header = in[j] == ':' && !quoted;
		j++;
		while (j < len && in[j] == ' ')
			j++;
		ref_put(out, &o, cap, in + i, j - i);
		if (j < len && in[j] == '"')
			ref_put(out, &o, cap, "\"" LOG_REDACTED "\"", strlen(LOG_REDACTED) + 2);
		else
			ref_put(out, &o, cap, LOG_REDACTED, strlen(LOG_REDACTED));
		i = ref_value_end(in, len, j, header);
	}
	out[o] = '\0';
	return o;
}

/* Random texts of keys (sensitive or not), separators, quotes, Bearer,
 * through both, at several output sizes. */
static void test_redact_reference(void **state)
{
	static const char *const parts[] = {
		"token", "Token", "x_auth_code", "accessTOKEN", "otp", "Otp", "uid", "ext_id",
		"method", "bearer", "Bearer", "BEARER", "password", "privateKey", "credentials",
		"signatureX", "a-b", "=", ":", " ", "  ", "\"", "\\", ",", "}", "{", ";", "&", "\n",
		"\r", "9", "abc", "value", "-", "_", "\t", "é", "sign", "ature", "sec", "ret",
	};
	char in[512], a[LOG_LINE_MAX], b[LOG_LINE_MAX];
	unsigned seed = 12345;

	(void)state;
	for (int t = 0; t < 20000; t++) {
		size_t n = 0, cap, ra, rb;
		int k = (int)(seed % 40);

		for (int i = 0; i < k; i++) {
			const char *p;

			seed = seed * 1103515245u + 12345u;
			p = parts[(seed >> 8) % (sizeof(parts) / sizeof(parts[0]))];
			if (n + strlen(p) >= sizeof(in))
				break;
			memcpy(in + n, p, strlen(p));
			n += strlen(p);
		}
		seed = seed * 1103515245u + 12345u;
		cap = (seed >> 4) % 4 == 0 ? 1 + (seed >> 8) % 64 : sizeof(a);
		ra = log_redact(in, n, a, cap);
		rb = ref_redact(in, n, b, cap);
		if (ra != rb || memcmp(a, b, ra + 1) != 0)
			fprintf(stderr, "in: %.*s\nnew: %s\nref: %s\n", (int)n, in, a, b);
		assert_int_equal(ra, rb);
		assert_memory_equal(a, b, ra + 1);
	}
}

/* What log_call(lc) writes on stderr at LOG_LVL_INFO (then, with debug_too,
 * a debug line that must not show) into buf: its length, or -1. */
static ssize_t logged(const struct log_call *lc, bool debug_too, char *buf, size_t cap)
{
	char dir[PATH_MAX], path[PATH_MAX];
	int fd, saved;
	ssize_t n;

	dt_tmpdir(dir);
	dt_join(path, dir, "log");
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	log_setup(LOG_LVL_INFO);
	log_call(lc);
	if (debug_too)
		log_msg(LOG_LVL_DEBUG, "not shown");
	dup2(saved, STDERR_FILENO);
	close(saved);
	n = pread(fd, buf, cap - 1, 0);
	close(fd);
	dt_rmdir(dir);
	return n;
}

/* log_call writes one line, escapes control characters, masks secrets. */
static void test_call_line(void **state)
{
	char buf[4096];
	struct log_call lc = {
		.uid = 1000, .conn = 3, .id = 7, .method = "Purchase", .profile = "default",
		.external_id = "2024", .http = 504, .response_code = "5045400",
		.duration_us = 1234567, .outcome = "UNKNOWN", .code = "DEADLINE_EXCEEDED",
		.message = "bad\nline token: secret-value",
	};
	ssize_t n;

	(void)state;
	n = logged(&lc, true, buf, sizeof(buf));
	assert_true(n > 0);
	buf[n] = '\0';
	fprintf(stderr, "%s", buf);
	assert_non_null(strstr(buf, " warning call uid=1000 conn=3 id=7 method=Purchase profile=default "
				    "ext_id=2024 http=504 rc=5045400 ms=1234.567 outcome=UNKNOWN "
				    "code=DEADLINE_EXCEEDED"));
	assert_non_null(strstr(buf, "bad\\x0aline"));
	assert_null(strstr(buf, "secret-value"));
	assert_null(strstr(buf, "not shown"));
	assert_non_null(strchr(buf, '\n'));
	assert_ptr_equal(strchr(buf, '\n'), buf + n - 1); /* exactly one line */
}

/* The whole line, byte for byte after its time: empty fields as "-", the
 * milliseconds with three digits, detached, no msg when there is none. */
static void test_call_line_exact(void **state)
{
	char buf[4096];
	struct log_call lc = {
		.uid = 0, .conn = 18446744073709551615ull, .id = 0, .method = "GetBalance",
		.profile = "", .external_id = NULL, .http = 0, .response_code = "",
		.duration_us = 5, .outcome = "DONE", .code = "OK", .retries = 2, .detached = true,
	};
	const char *want = " info call uid=0 conn=18446744073709551615 id=0 method=GetBalance "
			   "profile=- ext_id=- http=0 rc=- ms=0.005 outcome=DONE code=OK retries=2 "
			   "detached=1\n";
	ssize_t n;

	(void)state;
	n = logged(&lc, false, buf, sizeof(buf));
	assert_true(n > 24);
	buf[n] = '\0';
	fprintf(stderr, "%s", buf);
	/* 2026-01-01T10:00:00.123Z */
	for (int i = 0; i < 24; i++) {
		if (i == 4 || i == 7)
			assert_int_equal(buf[i], '-');
		else if (i == 10)
			assert_int_equal(buf[i], 'T');
		else if (i == 13 || i == 16)
			assert_int_equal(buf[i], ':');
		else if (i == 19)
			assert_int_equal(buf[i], '.');
		else if (i == 23)
			assert_int_equal(buf[i], 'Z');
		else
			assert_true(buf[i] >= '0' && buf[i] <= '9');
	}
	assert_string_equal(buf + 24, want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_headers),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_words),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_call_line),
		cmocka_unit_test(test_call_line_exact),
		cmocka_unit_test(test_redact_reference),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
