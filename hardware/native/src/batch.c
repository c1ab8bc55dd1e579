/* Device batch frames (layout in shared/frame.ts): the scan that finds and verifies every record
 * of a batch in one pass, the MD5-and-route step, and the encoder that turns a batch's records
 * into shard-log records (shared/logframe.ts) without a JavaScript object per record.
 * Every length is checked against the bytes present before anything is read through it. */
#include <string.h>
#include "tributary.h"

#define HEADER_SIZE 32
#define RECORD_HEADER_SIZE 16
#define HASH_KEY_SIZE 16
#define BODY_START 12
#define MAX_KEY_BYTES 1024u
#define MAX_FRAME_DATA (16u * 1024u * 1024u)
#define MAX_FRAME_BYTES (256u * 1024u * 1024u)
#define FLAG_CLOCK_SYNCED 1u
#define FLAG_EXPLICIT_HASH 2u
#define LOG_HEADER_SIZE 64
#define LOG_CRC_START 8
#define LOG_FLAG_FROM_DEVICE 4u

static uint32_t rd16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }
static void wr16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void wr32(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24); }
static void wr64(uint8_t *p, uint64_t v) { wr32(p, (uint32_t)v); wr32(p + 4, (uint32_t)(v >> 32)); }
static void wrf64(uint8_t *p, double d) { uint64_t v; memcpy(&v, &d, 8); wr64(p, v); }
static double rdf64(const uint8_t *p) { uint64_t v = rd64(p); double d; memcpy(&d, &v, 8); return d; }

/* Strict UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF). U+FFFD itself also counts as
 * invalid, to agree with the fallback, which can only see a replacement character after decoding. */
static int valid_utf8(const uint8_t *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = s[i];
    if (c < 0x80) { i++; continue; }
    if (c >= 0xc2 && c <= 0xdf) {
      if (n - i < 2 || (s[i + 1] & 0xc0) != 0x80) return 0;
      i += 2;
    } else if (c >= 0xe0 && c <= 0xef) {
      if (n - i < 3 || (s[i + 1] & 0xc0) != 0x80 || (s[i + 2] & 0xc0) != 0x80) return 0;
      if (c == 0xe0 && s[i + 1] < 0xa0) return 0;  /* overlong */
      if (c == 0xed && s[i + 1] >= 0xa0) return 0; /* surrogate */
      if (c == 0xef && s[i + 1] == 0xbf && s[i + 2] == 0xbd) return 0; /* U+FFFD */
      i += 3;
    } else if (c >= 0xf0 && c <= 0xf4) {
      if (n - i < 4 || (s[i + 1] & 0xc0) != 0x80 || (s[i + 2] & 0xc0) != 0x80 || (s[i + 3] & 0xc0) != 0x80) return 0;
      if (c == 0xf0 && s[i + 1] < 0x90) return 0;  /* overlong */
      if (c == 0xf4 && s[i + 1] >= 0x90) return 0; /* above U+10FFFF */
      i += 4;
    } else {
      return 0;
    }
  }
  return 1;
}

int trib_batch_count(const uint8_t *buf, size_t len, uint32_t *count) {
  if (len < HEADER_SIZE) return TRIB_FRAME_TRUNCATED;
  if (len > MAX_FRAME_BYTES) return TRIB_FRAME_TOO_LARGE;
  if (buf[0] != 0x54 || buf[1] != 0x42) return TRIB_FRAME_BAD_MAGIC;
  if (buf[2] != 1) return TRIB_FRAME_BAD_VERSION;
  if (buf[3] != 0) return TRIB_FRAME_BAD_FIELD;
  uint32_t body = rd32(buf + 8);
  if ((uint64_t)body != (uint64_t)len - BODY_START) return (uint64_t)body > (uint64_t)len - BODY_START ? TRIB_FRAME_TRUNCATED : TRIB_FRAME_BAD_FIELD;
  if (trib_crc32c(0, buf + BODY_START, len - BODY_START) != rd32(buf + 4)) return TRIB_FRAME_BAD_CHECKSUM;
  if (rd64(buf + 20) > 9007199254740991ull) return TRIB_FRAME_BAD_FIELD;
  uint32_t n = rd32(buf + 28);
  if (n == 0) return TRIB_FRAME_BAD_FIELD;
  if ((uint64_t)n > (len - HEADER_SIZE) / RECORD_HEADER_SIZE) return TRIB_FRAME_TRUNCATED;
  *count = n;
  return TRIB_OK;
}

int trib_scan_batch(const uint8_t *buf, size_t len, uint32_t n, uint32_t *fields, double *times) {
  size_t at = HEADER_SIZE;
  for (uint32_t i = 0; i < n; i++) {
    if (len - at < RECORD_HEADER_SIZE) return TRIB_FRAME_TRUNCATED;
    const uint8_t *r = buf + at;
    uint32_t flags = r[0];
    uint32_t key_len = rd16(r + 2);
    uint32_t data_len = rd32(r + 4);
    double time = rdf64(r + 8);
    if (flags & ~(FLAG_CLOCK_SYNCED | FLAG_EXPLICIT_HASH)) return TRIB_FRAME_BAD_FIELD;
    if (key_len > MAX_KEY_BYTES) return TRIB_FRAME_BAD_FIELD;
    if (data_len > MAX_FRAME_DATA) return TRIB_FRAME_BAD_FIELD;
    if (time != time || time - time != 0) return TRIB_FRAME_BAD_FIELD; /* NaN or infinite */
    at += RECORD_HEADER_SIZE;
    uint32_t hash_at = 0;
    if (flags & FLAG_EXPLICIT_HASH) {
      if (len - at < HASH_KEY_SIZE) return TRIB_FRAME_TRUNCATED;
      hash_at = (uint32_t)at;
      at += HASH_KEY_SIZE;
    }
    if (len - at < (size_t)key_len + data_len) return TRIB_FRAME_TRUNCATED;
    uint32_t *f = fields + (size_t)i * TRIB_BATCH_STRIDE;
    f[0] = (uint32_t)at;
    f[1] = key_len;
    f[2] = (uint32_t)(at + key_len);
    f[3] = data_len;
    f[4] = flags | (valid_utf8(buf + at, key_len) ? TRIB_KEY_VALID_UTF8 : 0);
    f[5] = hash_at;
    times[i] = time;
    at += (size_t)key_len + data_len;
  }
  return at == len ? TRIB_OK : TRIB_FRAME_BAD_FIELD;
}

/* Devices repeat a few keys (a sensor's id) across a batch: each key's digest is kept in a small
 * open-addressed table for the call, found by an FNV-1a hash of the key and checked byte for byte,
 * so a repeated key costs a compare instead of an MD5. */
#define ROUTE_CACHE_SLOTS 256
#define ROUTE_CACHE_PROBES 8
struct route_cache_slot { uint32_t key_at, key_len; int used; uint8_t digest[16]; };

static uint32_t fnv1a(const uint8_t *p, uint32_t len) {
  uint32_t h = 2166136261u;
  for (uint32_t i = 0; i < len; i++) h = (h ^ p[i]) * 16777619u;
  return h;
}

void trib_hash_route(const uint8_t *buf, const uint32_t *fields, uint32_t n,
                     const uint8_t *bounds, uint32_t n_bounds, uint16_t *slots) {
  struct route_cache_slot cache[ROUTE_CACHE_SLOTS];
  uint8_t digest[16];
  for (int k = 0; k < ROUTE_CACHE_SLOTS; k++) cache[k].used = 0;
  for (uint32_t i = 0; i < n; i++) {
    const uint32_t *f = fields + (size_t)i * TRIB_BATCH_STRIDE;
    const uint8_t *hash;
    if (f[5]) {
      hash = buf + f[5];
    } else {
      const uint8_t *key = buf + f[0];
      uint32_t at = fnv1a(key, f[1]);
      struct route_cache_slot *slot = NULL;
      /* Linear probing over a few slots: the key's own entry, or the first free one to keep it in. */
      for (int probe = 0; probe < ROUTE_CACHE_PROBES; probe++) {
        struct route_cache_slot *s = &cache[(at + (uint32_t)probe) & (ROUTE_CACHE_SLOTS - 1)];
        if (!s->used) {
          trib_md5(key, f[1], s->digest);
          s->key_at = f[0];
          s->key_len = f[1];
          s->used = 1;
          slot = s;
          break;
        }
        if (s->key_len == f[1] && memcmp(buf + s->key_at, key, f[1]) == 0) { slot = s; break; }
      }
      if (slot) {
        hash = slot->digest;
      } else {
        /* Every probed slot holds another key (a batch of many distinct keys): hashed, not kept. */
        trib_md5(key, f[1], digest);
        hash = digest;
      }
    }
    /* The last shard whose starting hash key is at or below this one (bounds ascend, big-endian). */
    uint32_t lo = 0, hi = n_bounds - 1;
    while (lo < hi) {
      uint32_t mid = (lo + hi + 1) >> 1;
      if (memcmp(bounds + (size_t)mid * 16, hash, 16) <= 0) lo = mid;
      else hi = mid - 1;
    }
    slots[i] = (uint16_t)lo;
  }
}

size_t trib_log_batch_size(const uint32_t *fields, const uint32_t *indices, uint32_t n_indices, size_t device_len) {
  size_t total = 0;
  for (uint32_t j = 0; j < n_indices; j++) {
    const uint32_t *f = fields + (size_t)indices[j] * TRIB_BATCH_STRIDE;
    total += LOG_HEADER_SIZE + f[1] + device_len + f[3];
  }
  return total;
}

size_t trib_encode_log_batch(uint8_t *out, const uint8_t *frame, const uint32_t *fields, const double *times,
                             const uint32_t *indices, uint32_t n_indices, uint64_t first_offset, double arrival_ms,
                             const uint8_t *device, size_t device_len, uint32_t *positions) {
  size_t at = 0;
  uint64_t epoch = rd64(frame + 12);
  uint64_t sequence = rd64(frame + 20);
  for (uint32_t j = 0; j < n_indices; j++) {
    uint32_t i = indices[j];
    const uint32_t *f = fields + (size_t)i * TRIB_BATCH_STRIDE;
    uint8_t *r = out + at;
    size_t length = LOG_HEADER_SIZE + f[1] + device_len + f[3];
    wr32(r, (uint32_t)length);
    wr64(r + 8, first_offset + j);
    wrf64(r + 16, arrival_ms);
    wrf64(r + 24, times[i]);
    r[32] = (uint8_t)((f[4] & (FLAG_CLOCK_SYNCED | FLAG_EXPLICIT_HASH)) | LOG_FLAG_FROM_DEVICE);
    r[33] = 0;
    wr16(r + 34, f[1]);
    wr16(r + 36, (uint32_t)device_len);
    wr16(r + 38, i);
    wr64(r + 40, epoch);
    wr64(r + 48, sequence);
    memset(r + 56, 0, 8);
    memcpy(r + LOG_HEADER_SIZE, frame + f[0], f[1]);
    memcpy(r + LOG_HEADER_SIZE + f[1], device, device_len);
    memcpy(r + LOG_HEADER_SIZE + f[1] + device_len, frame + f[2], f[3]);
    wr32(r + 4, trib_crc32c(0, r + LOG_CRC_START, length - LOG_CRC_START));
    if (positions) positions[j] = (uint32_t)at;
    at += length;
  }
  return at;
}

void trib_seal_batch(uint8_t *frame, size_t len, uint64_t epoch, uint64_t sequence, uint32_t count) {
  frame[0] = 0x54;
  frame[1] = 0x42;
  frame[2] = 1;
  frame[3] = 0;
  wr32(frame + 8, (uint32_t)(len - BODY_START));
  wr64(frame + 12, epoch);
  wr64(frame + 20, sequence);
  wr32(frame + 28, count);
  wr32(frame + 4, trib_crc32c(0, frame + BODY_START, len - BODY_START));
}

size_t trib_put_batch_record(uint8_t *at, uint32_t flags, const uint8_t *key, uint32_t key_len, const uint8_t *data,
                             uint32_t data_len, double time, const uint8_t *hash_key) {
  at[0] = (uint8_t)flags;
  at[1] = 0;
  wr16(at + 2, key_len);
  wr32(at + 4, data_len);
  wrf64(at + 8, time);
  size_t n = RECORD_HEADER_SIZE;
  if (hash_key) { memcpy(at + n, hash_key, HASH_KEY_SIZE); n += HASH_KEY_SIZE; }
  if (key != at + n) memmove(at + n, key, key_len); /* the caller may have written the key in place */
  n += key_len;
  memcpy(at + n, data, data_len);
  return n + data_len;
}
