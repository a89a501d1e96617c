/* log.c: redaction of secrets in every form, and the one line per call. */
#include "daemon_test.h"

#include <fcntl.h>

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

/* log_call writes one line, escapes control characters, masks secrets. */
static void test_call_line(void **state)
{
	char dir[PATH_MAX], path[PATH_MAX], buf[4096];
	struct log_call lc = {
		.uid = 1000, .conn = 3, .id = 7, .method = "Purchase", .profile = "default",
		.external_id = "2024", .http = 504, .response_code = "5045400",
		.duration_us = 1234567, .outcome = "UNKNOWN", .code = "DEADLINE_EXCEEDED",
		.message = "bad\nline token: secret-value",
	};
	int fd, saved;
	ssize_t n;

	(void)state;
	dt_tmpdir(dir);
	dt_join(path, dir, "log");
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	log_setup(LOG_LVL_INFO);
	log_call(&lc);
	log_msg(LOG_LVL_DEBUG, "not shown");
	dup2(saved, STDERR_FILENO);
	close(saved);
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	dt_rmdir(dir);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_headers),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_words),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_call_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
