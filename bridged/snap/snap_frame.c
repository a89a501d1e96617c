/* gRPC-style frame headers: flags (0) + 4-byte big-endian length. */
#include "snap_frame.h"
#include "snap_err.h"

void snap_frame_header_write(uint8_t hdr[SNAP_FRAME_HEADER], uint32_t len)
{
	hdr[0] = 0;
	hdr[1] = (uint8_t)(len >> 24);
	hdr[2] = (uint8_t)(len >> 16);
	hdr[3] = (uint8_t)(len >> 8);
	hdr[4] = (uint8_t)len;
}

int snap_frame_header_read(const uint8_t hdr[SNAP_FRAME_HEADER], uint32_t max, uint32_t *len)
{
	uint32_t n;

	if (hdr[0] != 0)
		return SNAP_ERR_INVALID;
	n = (uint32_t)hdr[1] << 24 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 8 | hdr[4];
	if (n > max)
		return SNAP_ERR_TOO_BIG;
	*len = n;
	return SNAP_OK;
}
