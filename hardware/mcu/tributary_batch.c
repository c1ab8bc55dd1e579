/* Tributary batch frames for microcontrollers: see tributary_batch.h and shared/frame.ts. */
#include "tributary_batch.h"

#include <string.h>

#define OFF_CRC 4u
#define OFF_BODY_LENGTH 8u
#define OFF_EPOCH 12u
#define OFF_SEQUENCE 20u
#define OFF_COUNT 28u
#define BODY_START 12u
#define MAX_SEQUENCE 9007199254740991ull /* 2^53 - 1 */

static void put_u16(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

static void put_u64(uint8_t *p, uint64_t v) {
  put_u32(p, (uint32_t)v);
  put_u32(p + 4, (uint32_t)(v >> 32));
}

uint32_t tb_crc32c(uint32_t crc, const uint8_t *p, size_t n) {
  /* Bitwise, reflected polynomial 0x82F63B78: no table, a few hundred bytes of code. */
  crc = ~crc;
  while (n--) {
    int k;
    crc ^= *p++;
    for (k = 0; k < 8; k++) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
  }
  return ~crc;
}

uint64_t tb_f64_bits(int64_t v) {
  uint64_t sign = 0, m, mantissa;
  int e = 63;
  if (v == 0) return 0;
  if (v < 0) {
    sign = 1ull << 63;
    m = (uint64_t)0 - (uint64_t)v; /* also right for INT64_MIN */
  } else {
    m = (uint64_t)v;
  }
  while (!(m >> e)) e--; /* the highest set bit */
  if (e <= 52) {
    mantissa = m << (52 - e);
  } else {
    /* Round to nearest, ties to even, as a conversion to double does. */
    int shift = e - 52;
    uint64_t rest = m & ((1ull << shift) - 1);
    uint64_t half = 1ull << (shift - 1);
    mantissa = m >> shift;
    if (rest > half || (rest == half && (mantissa & 1))) {
      mantissa++;
      if (mantissa >> 53) { mantissa >>= 1; e++; }
    }
  }
  return sign | ((uint64_t)(e + 1023) << 52) | (mantissa & ((1ull << 52) - 1));
}

size_t tb_record_size(size_t key_len, size_t data_len, int has_hash_key) {
  return TB_RECORD_HEADER_SIZE + (has_hash_key ? TB_HASH_KEY_SIZE : 0) + key_len + data_len;
}

static tb_error fail(tb_batch *b, tb_error e) {
  if (b) b->error = e;
  return e;
}

tb_error tb_batch_begin(tb_batch *b, uint8_t *buf, size_t cap, uint64_t epoch, uint64_t sequence) {
  if (!b) return TB_ERR_ARGUMENT;
  b->buf = buf;
  b->cap = cap;
  b->len = 0;
  b->count = 0;
  b->error = TB_OK;
  if (!buf) return fail(b, TB_ERR_ARGUMENT);
  if (cap < TB_HEADER_SIZE) return fail(b, TB_ERR_SPACE);
  if (sequence > MAX_SEQUENCE) return fail(b, TB_ERR_SEQUENCE);
  memset(buf, 0, TB_HEADER_SIZE);
  buf[0] = 0x54; /* "TB" */
  buf[1] = 0x42;
  buf[2] = 1;    /* version */
  buf[3] = 0;    /* flags: reserved */
  put_u64(buf + OFF_EPOCH, epoch);
  put_u64(buf + OFF_SEQUENCE, sequence);
  b->len = TB_HEADER_SIZE;
  return TB_OK;
}

tb_error tb_batch_add(tb_batch *b, const char *key, size_t key_len, const uint8_t *data, size_t data_len,
                      int64_t producer_time_ms, int clock_synced, const uint8_t *explicit_hash_key) {
  uint8_t *p;
  size_t need;
  if (!b || !b->buf || b->len < TB_HEADER_SIZE || !key || (data_len && !data)) return fail(b, TB_ERR_ARGUMENT);
  if (key_len == 0 || key_len > TB_MAX_KEY_BYTES) return fail(b, TB_ERR_KEY);
  if (data_len > TB_MAX_RECORD_BYTES || key_len + data_len > TB_MAX_RECORD_BYTES) return fail(b, TB_ERR_RECORD);
  need = tb_record_size(key_len, data_len, explicit_hash_key != NULL);
  if (need > b->cap - b->len) return fail(b, TB_ERR_SPACE);
  p = b->buf + b->len;
  p[0] = (uint8_t)((clock_synced ? 1 : 0) | (explicit_hash_key ? 2 : 0));
  p[1] = 0;
  put_u16(p + 2, (uint32_t)key_len);
  put_u32(p + 4, (uint32_t)data_len);
  put_u64(p + 8, tb_f64_bits(producer_time_ms));
  p += TB_RECORD_HEADER_SIZE;
  if (explicit_hash_key) {
    memcpy(p, explicit_hash_key, TB_HASH_KEY_SIZE);
    p += TB_HASH_KEY_SIZE;
  }
  memcpy(p, key, key_len);
  p += key_len;
  if (data_len) memcpy(p, data, data_len);
  b->len += need;
  b->count++;
  b->error = TB_OK;
  return TB_OK;
}

size_t tb_batch_finish(tb_batch *b) {
  if (!b || !b->buf || b->len < TB_HEADER_SIZE) { fail(b, TB_ERR_ARGUMENT); return 0; }
  if (b->count == 0) { fail(b, TB_ERR_ARGUMENT); return 0; }
  put_u32(b->buf + OFF_COUNT, b->count);
  put_u32(b->buf + OFF_BODY_LENGTH, (uint32_t)(b->len - BODY_START));
  put_u32(b->buf + OFF_CRC, tb_crc32c(0, b->buf + BODY_START, b->len - BODY_START));
  b->error = TB_OK;
  return b->len;
}

tb_error tb_batch_error(const tb_batch *b) {
  return b ? b->error : TB_ERR_ARGUMENT;
}
