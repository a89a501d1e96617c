/* snap_arena: alignment, the hard limit, large blocks, reuse after reset. */
#include "test_util.h"

#include <stdalign.h>

#include "snap_arena.h"

static void test_alloc_aligned_and_distinct(void **state)
{
	snap_arena a;
	char *prev = NULL;

	(void)state;
	snap_arena_init(&a, 1u << 20);
	assert_int_equal(a.used, 0);
	for (size_t i = 0; i < 1000; i++) {
		char *p = snap_arena_alloc(&a, i % 37);

		assert_non_null(p);
		assert_int_equal((uintptr_t)p % alignof(max_align_t), 0);
		assert_ptr_not_equal(p, prev);
		memset(p, 0xAB, i % 37);
		prev = p;
	}
	assert_true(a.used > 0 && a.used <= a.limit);
	snap_arena_free(&a);
	assert_int_equal(a.used, 0);
	assert_null(a.head);
}

static void test_limit_returns_null(void **state)
{
	snap_arena a;
	size_t got = 0;

	(void)state;
	snap_arena_init(&a, 3 * SNAP_ARENA_CHUNK);
	while (snap_arena_alloc(&a, 100) != NULL)
		got += 100;
	assert_true(got > 0);
	assert_true(a.used <= 3 * SNAP_ARENA_CHUNK);
	assert_null(snap_arena_alloc(&a, 100));
	assert_null(snap_arena_alloc(&a, SIZE_MAX));
	assert_null(snap_arena_alloc(&a, SIZE_MAX - 8));
	assert_null(snap_arena_strndup(&a, "x", SIZE_MAX));
	/* After a reset the whole limit is available again. */
	snap_arena_reset(&a);
	assert_non_null(snap_arena_alloc(&a, 2 * SNAP_ARENA_CHUNK));
	assert_null(snap_arena_alloc(&a, 2 * SNAP_ARENA_CHUNK));
	snap_arena_free(&a);

	/* A limit below one chunk still serves what fits, and no more. */
	snap_arena_init(&a, 100);
	assert_null(snap_arena_alloc(&a, 10));
	assert_null(snap_arena_alloc(&a, 200));
	snap_arena_free(&a);
}

static void test_large_block_keeps_head(void **state)
{
	snap_arena a;
	char *small1, *big, *small2;

	(void)state;
	snap_arena_init(&a, 1u << 20);
	small1 = snap_arena_alloc(&a, 16);
	big = snap_arena_alloc(&a, 3 * SNAP_ARENA_CHUNK);
	small2 = snap_arena_alloc(&a, 16);
	assert_non_null(small1);
	assert_non_null(big);
	assert_non_null(small2);
	/* The small allocations continue in the first chunk. */
	assert_true(small2 > small1 && small2 - small1 < (ptrdiff_t)SNAP_ARENA_CHUNK);
	memset(big, 1, 3 * SNAP_ARENA_CHUNK);
	snap_arena_free(&a);
}

static void test_strndup_and_allocator(void **state)
{
	snap_arena a;
	ProtobufCAllocator *pa;
	char *s;
	void *p;

	(void)state;
	snap_arena_init(&a, 1u << 16);
	s = snap_arena_strndup(&a, "hello world", 5);
	assert_string_equal(s, "hello");
	s = snap_arena_strndup(&a, NULL, 0);
	assert_string_equal(s, "");
	pa = snap_arena_allocator(&a);
	p = pa->alloc(pa->allocator_data, 64);
	assert_non_null(p);
	pa->free(pa->allocator_data, p); /* a no-op */
	assert_non_null(pa->alloc(pa->allocator_data, 0));
	snap_arena_reset(&a);
	snap_arena_reset(&a);
	snap_arena_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alloc_aligned_and_distinct),
		cmocka_unit_test(test_limit_returns_null),
		cmocka_unit_test(test_large_block_keeps_head),
		cmocka_unit_test(test_strndup_and_allocator),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
