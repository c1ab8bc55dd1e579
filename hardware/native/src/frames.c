/* Log-record scanning (shared/logframe.ts): lengths are checked against the bytes present before
 * anything is read through them; every record's CRC-32C is verified. */
#include "tributary.h"

#define LOG_HEADER_SIZE 64
#define LOG_MAX_FRAME (2u * 1024u * 1024u)
#define LOG_CRC_START 8

static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

size_t trib_scan_log(const uint8_t *buf, size_t start, size_t end, int64_t expected,
                     uint32_t *positions, size_t max_positions, size_t *stop_at, int *stop) {
  size_t at = start, count = 0;
  int64_t next = expected;
  while (at < end) {
    if (end - at < LOG_HEADER_SIZE) { *stop = 1; break; }
    uint32_t length = rd32(buf + at);
    if (length < LOG_HEADER_SIZE || length > LOG_MAX_FRAME) { *stop = 2; break; }
    if (end - at < length) { *stop = 1; break; }
    uint32_t crc = trib_crc32c(0, buf + at + LOG_CRC_START, length - LOG_CRC_START);
    if (crc != rd32(buf + at + 4)) { *stop = 2; break; }
    /* offset: u64 little-endian, kept below 2^53 by the writer */
    uint64_t offset = (uint64_t)rd32(buf + at + 8) | (uint64_t)rd32(buf + at + 12) << 32;
    if (next >= 0 && (int64_t)offset != next) { *stop = 2; break; }
    next = (int64_t)offset + 1;
    if (count == max_positions) { *stop = 0; *stop_at = at; return count; }
    positions[count++] = (uint32_t)at;
    at += length;
  }
  if (at >= end) *stop = 0;
  *stop_at = at;
  return count;
}
