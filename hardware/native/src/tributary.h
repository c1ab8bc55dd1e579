/* Tributary's native hot path: CRC-32C, MD5 of partition keys, frame scanning.
 * The TypeScript fallback (../fallback.ts) is the reference; results must match it byte for byte. */
#ifndef TRIBUTARY_H
#define TRIBUTARY_H

#include <stddef.h>
#include <stdint.h>

/* CRC-32C (Castagnoli), reflected, init and final XOR 0xFFFFFFFF; `crc` is a previous result (0 to start). */
uint32_t trib_crc32c(uint32_t crc, const uint8_t *data, size_t len);
/* Which implementation trib_crc32c uses: "sse4.2", "armv8-crc" or "table". */
const char *trib_crc32c_impl(void);
void trib_crc32c_init(void);

/* MD5 of `len` bytes into out[16]. */
void trib_md5(const uint8_t *data, size_t len, uint8_t out[16]);

/* Log-record scan (layout in shared/logframe.ts). Walks [start, end) verifying each record; writes
 * the start of each good record to positions (at most max_positions) and returns how many it wrote.
 * *stop_at receives the byte position just past the last good record; *stop the reason:
 * 0 = end, 1 = torn (incomplete), 2 = damaged. expected < 0 disables the offset check. */
size_t trib_scan_log(const uint8_t *buf, size_t start, size_t end, int64_t expected,
                     uint32_t *positions, size_t max_positions, size_t *stop_at, int *stop);

#endif
