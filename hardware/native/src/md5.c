/* MD5 (RFC 1321), for routing partition keys to shards. Not for security.
 * Every record on MQTT ingest and PutRecords hashes its key here, so the block transform is written
 * out as its 64 steps: constant message indices and rotations, no branch per step (the looped form
 * cost ~3x the instructions). Keys under 56 bytes, the common case, are one block. */
#include <string.h>
#include "tributary.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define MD5_LITTLE_ENDIAN 1
#else
#define MD5_LITTLE_ENDIAN 0
#endif

/* MD5 reads and writes 32-bit words little-endian, at any alignment (keys sit anywhere in a batch). */
static inline uint32_t get_le32(const uint8_t *p) {
#if MD5_LITTLE_ENDIAN
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
#else
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
#endif
}

static inline void put_le32(uint8_t *p, uint32_t v) {
#if MD5_LITTLE_ENDIAN
  memcpy(p, &v, 4);
#else
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
#endif
}

/* The round functions. F and G as selects (one operation fewer than RFC 1321's and/or forms, same
 * values): F picks y where x is set, else z; G picks x where z is set, else y. */
#define F(x, y, z) ((z) ^ ((x) & ((y) ^ (z))))
#define G(x, y, z) ((y) ^ ((z) & ((x) ^ (y))))
#define H(x, y, z) ((x) ^ (y) ^ (z))
#define I(x, y, z) ((y) ^ ((x) | ~(z)))

#define ROTL(x, c) (((x) << (c)) | ((x) >> (32 - (c))))

/* One step: a = b + ((a + f(b, c, d) + X[k] + T[i]) <<< s). */
#define STEP(f, a, b, c, d, k, t, s) \
  do { \
    (a) += f((b), (c), (d)) + get_le32(p + 4 * (k)) + (uint32_t)(t); \
    (a) = ROTL((a), (s)) + (b); \
  } while (0)

/* The transform over `n` consecutive 64-byte blocks at p. */
static void md5_blocks(uint32_t h[4], const uint8_t *p, size_t n) {
  uint32_t a = h[0], b = h[1], c = h[2], d = h[3];
  for (; n; n--, p += 64) {
    const uint32_t a0 = a, b0 = b, c0 = c, d0 = d;

    /* Round 1: X[i], rotations 7, 12, 17, 22. */
    STEP(F, a, b, c, d, 0, 0xd76aa478, 7);
    STEP(F, d, a, b, c, 1, 0xe8c7b756, 12);
    STEP(F, c, d, a, b, 2, 0x242070db, 17);
    STEP(F, b, c, d, a, 3, 0xc1bdceee, 22);
    STEP(F, a, b, c, d, 4, 0xf57c0faf, 7);
    STEP(F, d, a, b, c, 5, 0x4787c62a, 12);
    STEP(F, c, d, a, b, 6, 0xa8304613, 17);
    STEP(F, b, c, d, a, 7, 0xfd469501, 22);
    STEP(F, a, b, c, d, 8, 0x698098d8, 7);
    STEP(F, d, a, b, c, 9, 0x8b44f7af, 12);
    STEP(F, c, d, a, b, 10, 0xffff5bb1, 17);
    STEP(F, b, c, d, a, 11, 0x895cd7be, 22);
    STEP(F, a, b, c, d, 12, 0x6b901122, 7);
    STEP(F, d, a, b, c, 13, 0xfd987193, 12);
    STEP(F, c, d, a, b, 14, 0xa679438e, 17);
    STEP(F, b, c, d, a, 15, 0x49b40821, 22);

    /* Round 2: X[(5i + 1) mod 16], rotations 5, 9, 14, 20. */
    STEP(G, a, b, c, d, 1, 0xf61e2562, 5);
    STEP(G, d, a, b, c, 6, 0xc040b340, 9);
    STEP(G, c, d, a, b, 11, 0x265e5a51, 14);
    STEP(G, b, c, d, a, 0, 0xe9b6c7aa, 20);
    STEP(G, a, b, c, d, 5, 0xd62f105d, 5);
    STEP(G, d, a, b, c, 10, 0x02441453, 9);
    STEP(G, c, d, a, b, 15, 0xd8a1e681, 14);
    STEP(G, b, c, d, a, 4, 0xe7d3fbc8, 20);
    STEP(G, a, b, c, d, 9, 0x21e1cde6, 5);
    STEP(G, d, a, b, c, 14, 0xc33707d6, 9);
    STEP(G, c, d, a, b, 3, 0xf4d50d87, 14);
    STEP(G, b, c, d, a, 8, 0x455a14ed, 20);
    STEP(G, a, b, c, d, 13, 0xa9e3e905, 5);
    STEP(G, d, a, b, c, 2, 0xfcefa3f8, 9);
    STEP(G, c, d, a, b, 7, 0x676f02d9, 14);
    STEP(G, b, c, d, a, 12, 0x8d2a4c8a, 20);

    /* Round 3: X[(3i + 5) mod 16], rotations 4, 11, 16, 23. */
    STEP(H, a, b, c, d, 5, 0xfffa3942, 4);
    STEP(H, d, a, b, c, 8, 0x8771f681, 11);
    STEP(H, c, d, a, b, 11, 0x6d9d6122, 16);
    STEP(H, b, c, d, a, 14, 0xfde5380c, 23);
    STEP(H, a, b, c, d, 1, 0xa4beea44, 4);
    STEP(H, d, a, b, c, 4, 0x4bdecfa9, 11);
    STEP(H, c, d, a, b, 7, 0xf6bb4b60, 16);
    STEP(H, b, c, d, a, 10, 0xbebfbc70, 23);
    STEP(H, a, b, c, d, 13, 0x289b7ec6, 4);
    STEP(H, d, a, b, c, 0, 0xeaa127fa, 11);
    STEP(H, c, d, a, b, 3, 0xd4ef3085, 16);
    STEP(H, b, c, d, a, 6, 0x04881d05, 23);
    STEP(H, a, b, c, d, 9, 0xd9d4d039, 4);
    STEP(H, d, a, b, c, 12, 0xe6db99e5, 11);
    STEP(H, c, d, a, b, 15, 0x1fa27cf8, 16);
    STEP(H, b, c, d, a, 2, 0xc4ac5665, 23);

    /* Round 4: X[7i mod 16], rotations 6, 10, 15, 21. */
    STEP(I, a, b, c, d, 0, 0xf4292244, 6);
    STEP(I, d, a, b, c, 7, 0x432aff97, 10);
    STEP(I, c, d, a, b, 14, 0xab9423a7, 15);
    STEP(I, b, c, d, a, 5, 0xfc93a039, 21);
    STEP(I, a, b, c, d, 12, 0x655b59c3, 6);
    STEP(I, d, a, b, c, 3, 0x8f0ccc92, 10);
    STEP(I, c, d, a, b, 10, 0xffeff47d, 15);
    STEP(I, b, c, d, a, 1, 0x85845dd1, 21);
    STEP(I, a, b, c, d, 8, 0x6fa87e4f, 6);
    STEP(I, d, a, b, c, 15, 0xfe2ce6e0, 10);
    STEP(I, c, d, a, b, 6, 0xa3014314, 15);
    STEP(I, b, c, d, a, 13, 0x4e0811a1, 21);
    STEP(I, a, b, c, d, 4, 0xf7537e82, 6);
    STEP(I, d, a, b, c, 11, 0xbd3af235, 10);
    STEP(I, c, d, a, b, 2, 0x2ad7d2bb, 15);
    STEP(I, b, c, d, a, 9, 0xeb86d391, 21);

    a += a0;
    b += b0;
    c += c0;
    d += d0;
  }
  h[0] = a;
  h[1] = b;
  h[2] = c;
  h[3] = d;
}

void trib_md5(const uint8_t *data, size_t len, uint8_t out[16]) {
  uint32_t h[4] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};
  /* Whole blocks straight from the input; only the last 0-63 bytes are copied, to be padded. */
  size_t whole = len & ~(size_t)63;
  if (whole) md5_blocks(h, data, whole / 64);
  size_t n = len - whole;
  /* Padding: 0x80, zeros, then the length in bits (64-bit little-endian) in the last 8 bytes.
   * Under 56 bytes left that fits one block; otherwise it takes two. The zeroing has a constant
   * size, so the compiler writes it inline rather than calling memset. */
  uint8_t tail[128];
  size_t blocks = n < 56 ? 1 : 2;
  if (blocks == 1) memset(tail, 0, 64);
  else memset(tail, 0, 128);
  if (n) memcpy(tail, data + whole, n);
  tail[n] = 0x80;
  uint64_t bits = (uint64_t)len << 3;
  put_le32(tail + blocks * 64 - 8, (uint32_t)bits);
  put_le32(tail + blocks * 64 - 4, (uint32_t)(bits >> 32));
  md5_blocks(h, tail, blocks);
  for (int i = 0; i < 4; i++) put_le32(out + 4 * i, h[i]);
}
