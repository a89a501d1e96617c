/* The frame of doku-bridge's wire protocol (gRPC's length-prefixed message):
 * 1 flags byte (must be 0), a 4-byte big-endian length N, N bytes of protobuf. */
#ifndef DOKU_SNAP_FRAME_H
#define DOKU_SNAP_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define SNAP_FRAME_HEADER 5u
#define SNAP_FRAME_MAX_DEFAULT (4u * 1024u * 1024u) /* default cap on N */

/* Write the header of a frame of len bytes into hdr. */
void snap_frame_header_write(uint8_t hdr[SNAP_FRAME_HEADER], uint32_t len);

/* Read a header: 0 and *len, SNAP_ERR_INVALID for a flags byte other than 0,
 * SNAP_ERR_TOO_BIG for a length over max (check before allocating anything). */
int snap_frame_header_read(const uint8_t hdr[SNAP_FRAME_HEADER], uint32_t max, uint32_t *len);

#endif
