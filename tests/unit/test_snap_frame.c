/* snap_frame: header layout, flags, the size cap. */
#include "test_util.h"

#include "snap_err.h"
#include "snap_frame.h"

static void test_header_roundtrip(void **state)
{
	static const uint32_t lens[] = { 0, 1, 255, 256, 65536, SNAP_FRAME_MAX_DEFAULT, UINT32_MAX };
	uint8_t h[SNAP_FRAME_HEADER];
	uint32_t len;

	(void)state;
	snap_frame_header_write(h, 0x01020304u);
	assert_memory_equal(h, "\x00\x01\x02\x03\x04", 5);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		snap_frame_header_write(h, lens[i]);
		assert_int_equal(h[0], 0);
		assert_int_equal(snap_frame_header_read(h, UINT32_MAX, &len), SNAP_OK);
		assert_int_equal(len, lens[i]);
	}
}

static void test_header_refused(void **state)
{
	uint8_t h[SNAP_FRAME_HEADER];
	uint32_t len = 77;

	(void)state;
	snap_frame_header_write(h, 10);
	for (int flags = 1; flags < 256; flags++) {
		h[0] = (uint8_t)flags;
		assert_int_equal(snap_frame_header_read(h, SNAP_FRAME_MAX_DEFAULT, &len),
				 SNAP_ERR_INVALID);
	}
	assert_int_equal(len, 77);
	snap_frame_header_write(h, SNAP_FRAME_MAX_DEFAULT + 1);
	assert_int_equal(snap_frame_header_read(h, SNAP_FRAME_MAX_DEFAULT, &len), SNAP_ERR_TOO_BIG);
	snap_frame_header_write(h, SNAP_FRAME_MAX_DEFAULT);
	assert_int_equal(snap_frame_header_read(h, SNAP_FRAME_MAX_DEFAULT, &len), SNAP_OK);
	assert_int_equal(len, SNAP_FRAME_MAX_DEFAULT);
	memcpy(h, "\x00\xff\xff\xff\xff", 5);
	assert_int_equal(snap_frame_header_read(h, SNAP_FRAME_MAX_DEFAULT, &len), SNAP_ERR_TOO_BIG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_roundtrip),
		cmocka_unit_test(test_header_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
