/* snap_buf: growth, the NUL after the content, max enforced (buffer left
 * unchanged), printf, arena-backed buffers. */
#include "test_util.h"

#include "snap_buf.h"
#include "snap_err.h"

static void test_append_grow(void **state)
{
	snap_buf b;

	(void)state;
	snap_buf_init(&b, NULL, 1u << 20);
	assert_null(b.data);
	for (int i = 0; i < 10000; i++)
		assert_int_equal(snap_buf_append(&b, "abc", 3), SNAP_OK);
	assert_int_equal(b.len, 30000);
	assert_int_equal(b.data[b.len], '\0');
	assert_memory_equal(b.data + 29997, "abc", 3);
	assert_int_equal(snap_buf_append(&b, NULL, 0), SNAP_OK);
	snap_buf_clear(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.data, "");
	snap_buf_free(&b);
	assert_null(b.data);
	snap_buf_free(&b);
}

static void test_max_enforced(void **state)
{
	snap_buf b;

	(void)state;
	snap_buf_init(&b, NULL, 10);
	assert_int_equal(snap_buf_append_str(&b, "0123456789"), SNAP_OK);
	assert_int_equal(snap_buf_append(&b, "x", 1), SNAP_ERR_TOO_BIG);
	assert_string_equal(b.data, "0123456789");
	snap_buf_clear(&b);
	assert_int_equal(snap_buf_append_str(&b, "01234"), SNAP_OK);
	assert_int_equal(snap_buf_append_str(&b, "567890"), SNAP_ERR_TOO_BIG);
	assert_string_equal(b.data, "01234");
	assert_int_equal(snap_buf_printf(&b, "%s", "abcdef"), SNAP_ERR_TOO_BIG);
	assert_string_equal(b.data, "01234");
	assert_int_equal(b.len, 5);
	assert_int_equal(snap_buf_printf(&b, "%d", 56789), SNAP_OK);
	assert_string_equal(b.data, "0123456789");
	assert_int_equal(snap_buf_append(&b, "x", SIZE_MAX), SNAP_ERR_TOO_BIG);
	snap_buf_free(&b);

	snap_buf_init(&b, NULL, 0);
	assert_int_equal(snap_buf_append(&b, "x", 1), SNAP_ERR_TOO_BIG);
	assert_int_equal(snap_buf_append(&b, "", 0), SNAP_OK);
	assert_string_equal(b.data, "");
	snap_buf_free(&b);
}

static void test_printf_long(void **state)
{
	snap_buf b;
	char big[1000];

	(void)state;
	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	snap_buf_init(&b, NULL, 1u << 16);
	assert_int_equal(snap_buf_printf(&b, "<%s|%d>", big, 42), SNAP_OK);
	assert_int_equal(b.len, 999 + 5);
	assert_int_equal(b.data[0], '<');
	assert_string_equal(b.data + 1000, "|42>");
	snap_buf_free(&b);
}

static void test_arena_backed(void **state)
{
	snap_arena a;
	snap_buf b;

	(void)state;
	snap_arena_init(&a, 1u << 20);
	snap_buf_init(&b, &a, 1u << 19);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(snap_buf_printf(&b, "%04d,", i), SNAP_OK);
	assert_int_equal(b.len, 5000);
	assert_memory_equal(b.data, "0000,0001,", 10);
	snap_buf_free(&b); /* forgets; the arena owns the memory */
	snap_arena_free(&a);

	/* The arena's limit ends the growth with NOMEM. */
	snap_arena_init(&a, 2 * SNAP_ARENA_CHUNK);
	snap_buf_init(&b, &a, 1u << 20);
	int rc = SNAP_OK;
	for (int i = 0; i < 100000 && rc == SNAP_OK; i++)
		rc = snap_buf_append(&b, "0123456789", 10);
	assert_int_equal(rc, SNAP_ERR_NOMEM);
	assert_int_equal(b.data[b.len], '\0');
	snap_arena_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_append_grow),
		cmocka_unit_test(test_max_enforced),
		cmocka_unit_test(test_printf_long),
		cmocka_unit_test(test_arena_backed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
