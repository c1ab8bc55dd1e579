/* Canonical base64 (RFC 4648 §4, padded) decoding of many ranges of one buffer into one output, for
 * PutRecords' Data members read in place from the request body. The TypeScript fallback
 * (../fallback.ts, base64DecodeRanges) is the reference. */
#include "tributary.h"

#define BAD 0xff
#define PAD 0x40

static uint8_t table[256];
/* Each digit's value already shifted to its place in a group of four (d0 for the first digit), so a
 * group is four lookups OR-ed; a byte outside the alphabet maps to BAD_BIT, caught once per group. */
#define BAD_BIT 0x80000000u
static uint32_t d0[256], d1[256], d2[256], d3[256];
/* Each entry is written once with its final value, so the addon loading again (in a worker thread)
 * rewrites the tables with what they hold and a decode running meanwhile never sees a gap. */
void trib_base64_init(void) {
  for (int c = 0; c < 256; c++) {
    int v = c >= 'A' && c <= 'Z' ? c - 'A' : c >= 'a' && c <= 'z' ? c - 'a' + 26 : c >= '0' && c <= '9' ? c - '0' + 52
          : c == '+' ? 62 : c == '/' ? 63 : -1;
    table[c] = v >= 0 ? (uint8_t)v : c == '=' ? PAD : BAD;
    d0[c] = v >= 0 ? (uint32_t)v << 18 : BAD_BIT;
    d1[c] = v >= 0 ? (uint32_t)v << 12 : BAD_BIT;
    d2[c] = v >= 0 ? (uint32_t)v << 6 : BAD_BIT;
    d3[c] = v >= 0 ? (uint32_t)v : BAD_BIT;
  }
}

/* One range: the bytes written, or -1 when it is not canonical base64. */
static int64_t decode_one(const uint8_t *s, size_t n, uint8_t *out) {
  if (n % 4) return -1;
  if (n == 0) return 0;
  size_t pads = s[n - 1] == '=' ? (s[n - 2] == '=' ? 2 : 1) : 0;
  size_t whole = pads ? n - 4 : n;
  uint8_t *o = out;
  for (size_t j = 0; j < whole; j += 4) {
    /* '=' and every byte outside the alphabet set BAD_BIT: padding is only read below. */
    uint32_t v = d0[s[j]] | d1[s[j + 1]] | d2[s[j + 2]] | d3[s[j + 3]];
    if (v & BAD_BIT) return -1;
    o[0] = (uint8_t)(v >> 16);
    o[1] = (uint8_t)(v >> 8);
    o[2] = (uint8_t)v;
    o += 3;
  }
  if (pads) {
    uint32_t v0 = table[s[whole]], v1 = table[s[whole + 1]];
    if ((v0 | v1) & 0xc0) return -1;
    if (pads == 2) {
      if (v1 & 0x0f) return -1;
      *o++ = (uint8_t)((v0 << 2) | (v1 >> 4));
    } else {
      uint32_t v2 = table[s[whole + 2]];
      if ((v2 & 0xc0) || (v2 & 0x03)) return -1;
      *o++ = (uint8_t)((v0 << 2) | (v1 >> 4));
      *o++ = (uint8_t)(((v1 & 0x0f) << 4) | (v2 >> 2));
    }
  }
  return o - out;
}

int64_t trib_base64_decode_ranges(const uint8_t *src, const uint32_t *ranges, size_t n, uint8_t *out, size_t out_len) {
  size_t at = 0;
  for (size_t i = 0; i < n; i++) {
    size_t start = ranges[2 * i], end = ranges[2 * i + 1];
    size_t len = end - start;
    /* What it will write, checked before writing: a short output is an error, not an overflow. */
    size_t pads = len >= 2 && src[end - 1] == '=' ? (src[end - 2] == '=' ? 2 : 1) : 0;
    if (len % 4 || (len / 4) * 3 - pads > out_len - at) return -(int64_t)i - 1;
    int64_t wrote = decode_one(src + start, len, out + at);
    if (wrote < 0) return -(int64_t)i - 1;
    at += (size_t)wrote;
  }
  return (int64_t)at;
}
