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

/* Device batch frames (layout in shared/frame.ts). Results are TRIB_OK or one of the frame error
 * kinds below, which the JavaScript side turns into a FrameError with the fallback's message. */
enum {
  TRIB_OK = 0,
  TRIB_FRAME_TRUNCATED = 1,
  TRIB_FRAME_TOO_LARGE = 2,
  TRIB_FRAME_BAD_MAGIC = 3,
  TRIB_FRAME_BAD_VERSION = 4,
  TRIB_FRAME_BAD_FIELD = 5,
  TRIB_FRAME_BAD_CHECKSUM = 6,
};
/* Per record, TRIB_BATCH_STRIDE u32 fields: key position, key length, data position, data length,
 * flags (| TRIB_KEY_VALID_UTF8 when the key is valid UTF-8), explicit hash key position (0: none). */
#define TRIB_BATCH_STRIDE 6
#define TRIB_KEY_VALID_UTF8 0x100u
/* Verifies the header and checksum; on success *count is the record count (already bounded by len). */
int trib_batch_count(const uint8_t *buf, size_t len, uint32_t *count);
/* Walks and verifies the n records, filling fields (n * STRIDE) and times (n). */
int trib_scan_batch(const uint8_t *buf, size_t len, uint32_t n, uint32_t *fields, double *times);
/* MD5 of each key (or its explicit hash key) and the slot of the shard whose range holds it;
 * bounds are n_bounds >= 1 ascending 16-byte big-endian starting hash keys. */
void trib_hash_route(const uint8_t *buf, const uint32_t *fields, uint32_t n,
                     const uint8_t *bounds, uint32_t n_bounds, uint16_t *slots);
size_t trib_log_batch_size(const uint32_t *fields, const uint32_t *indices, uint32_t n_indices, size_t device_len);
/* Encodes the chosen records of a batch as log records (shared/logframe.ts) from first_offset on;
 * positions (may be NULL) receives where each starts. Returns the bytes written. */
size_t trib_encode_log_batch(uint8_t *out, const uint8_t *frame, const uint32_t *fields, const double *times,
                             const uint32_t *indices, uint32_t n_indices, uint64_t first_offset, double arrival_ms,
                             const uint8_t *device, size_t device_len, uint32_t *positions);
/* Batch encoding: records are put one after another from byte 32, then the header is sealed
 * (magic, version, lengths, identity, count and the CRC-32C of the body). hash_key may be NULL. */
size_t trib_put_batch_record(uint8_t *at, uint32_t flags, const uint8_t *key, uint32_t key_len, const uint8_t *data,
                             uint32_t data_len, double time, const uint8_t *hash_key);
void trib_seal_batch(uint8_t *frame, size_t len, uint64_t epoch, uint64_t sequence, uint32_t count);

/* Decodes n ranges [ranges[2i], ranges[2i+1]) of src, each canonical padded base64 (a multiple of
 * 4, the standard alphabet, at most two '=' at the end, no stray bits in the last digit), one after
 * another into out. Returns the bytes written, or -(i+1) when range i is not canonical base64 or
 * out has no room for it. */
/* Fills the decoding tables; called once when the addon loads. */
void trib_base64_init(void);
int64_t trib_base64_decode_ranges(const uint8_t *src, const uint32_t *ranges, size_t n, uint8_t *out, size_t out_len);

#endif
