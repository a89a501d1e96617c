/* secrets.c: protected memory and secret files read as ssh reads keys. */
#include <jansson.h>
#include <stdlib.h>
#include "daemon_test.h"

#include "secrets.h"

static void test_new_free(void **state)
{
	secret *s[200];

	(void)state;
	for (int i = 0; i < 200; i++) {
		char text[64];
		int n = snprintf(text, sizeof(text), "secret-%d", i);

		assert_int_equal(secret_new(text, (size_t)n, &s[i]), 0);
		assert_int_equal(s[i]->len, (size_t)n);
		assert_string_equal((const char *)s[i]->data, text);
	}
	for (int i = 0; i < 200; i++)
		secret_free(s[i]);
	/* a large one gets its own mapping */
	{
		static char big[SECRET_MAX];
		secret *b;

		memset(big, 'k', sizeof(big));
		assert_int_equal(secret_new(big, sizeof(big), &b), 0);
		assert_int_equal(b->data[SECRET_MAX - 1], 'k');
		assert_int_equal(b->data[SECRET_MAX], '\0');
		secret_free(b);
		assert_int_equal(secret_new(big, SECRET_MAX + 1, &b), -EINVAL);
		assert_null(b);
	}
	secret_free(NULL);
}

static void test_files(void **state)
{
	char dir[PATH_MAX], path[PATH_MAX], err[SECRET_ERR_MAX];
	secret *s = NULL;

	(void)state;
	dt_tmpdir(dir);
	dt_write(dir, "ok", "SK-abc\r\n", 0600, path);
	assert_int_equal(secret_read_file(path, 64, true, &s, err), 0);
	assert_string_equal((const char *)s->data, "SK-abc");
	secret_free(s);
	assert_int_equal(secret_read_file(path, 64, false, &s, err), 0);
	assert_int_equal(s->len, 8);
	secret_free(s);

	dt_write(dir, "group-readable", "SK", 0640, path);
	assert_int_equal(secret_read_file(path, 64, true, &s, err), -EPERM);
	assert_null(s);
	assert_non_null(strstr(err, "too open"));
	assert_null(strstr(err, "SK")); /* never the content */

	dt_write(dir, "world-readable", "SK", 0604, path);
	assert_int_equal(secret_read_file(path, 64, true, &s, err), -EPERM);

	dt_write(dir, "empty", "\n", 0600, path);
	assert_int_equal(secret_read_file(path, 64, true, &s, err), -EINVAL);

	dt_write(dir, "big", "0123456789", 0600, path);
	assert_int_equal(secret_read_file(path, 4, true, &s, err), -EFBIG);

	assert_int_equal(secret_read_file(dir, 64, true, &s, err), -EINVAL); /* a directory */
	dt_join(path, dir, "none");
	assert_int_equal(secret_read_file(path, 64, true, &s, err), -ENOENT);
	dt_rmdir(dir);
}

static void test_harden(void **state)
{
	json_malloc_t m = NULL;
	json_free_t f = NULL;
	json_t *j;

	(void)state;
	assert_int_equal(secrets_harden(), 0);
	/* jansson now frees through the wiping free, and still works */
	json_get_alloc_funcs(&m, &f);
	assert_ptr_equal(m, malloc);
	assert_ptr_not_equal(f, free);
	j = json_loads("{\"accessToken\":\"eyJhbGciOiJSUzI1NiJ9.secret\"}", 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "accessToken")),
			    "eyJhbGciOiJSUzI1NiJ9.secret");
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_free),
		cmocka_unit_test(test_files),
		cmocka_unit_test(test_harden),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
