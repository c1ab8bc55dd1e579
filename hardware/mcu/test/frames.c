/*
 * Test driver for tributary_batch.c (test/hardware/mcu.test.ts): reads batch specs on stdin and
 * writes each frame to stdout as u32 LE length, u32 LE error, then the frame's bytes. Spec lines:
 *   B <epoch> <sequence> <capacity>
 *   R <clock_synced 0|1> <producer_time_ms> <key hex> <data hex or -> <hash key hex or ->
 *   E
 * Buffers are static, as the library's would be on a device: nothing here allocates.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "../tributary_batch.h"

#define MAX_FRAME (4u * 1024u * 1024u)
#define MAX_LINE (8u * 1024u * 1024u)

static uint8_t frame[MAX_FRAME];
static char line[MAX_LINE];
static uint8_t key[TB_MAX_KEY_BYTES + 8];
static uint8_t data[TB_MAX_RECORD_BYTES + 8];
static char key_hex[MAX_LINE], data_hex[MAX_LINE];

static int nibble(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

/* Hex into out (at most cap bytes); -1 when malformed. "-" is empty. */
static long unhex(const char *s, uint8_t *out, size_t cap) {
  size_t n = 0;
  if (strcmp(s, "-") == 0) return 0;
  while (s[0] && s[1]) {
    int hi = nibble(s[0]), lo = nibble(s[1]);
    if (hi < 0 || lo < 0 || n >= cap) return -1;
    out[n++] = (uint8_t)(hi * 16 + lo);
    s += 2;
  }
  return s[0] ? -1 : (long)n;
}

static void put32(uint32_t v) {
  uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
  fwrite(b, 1, 4, stdout);
}

int main(void) {
  tb_batch b;
  tb_error last = TB_OK;
  while (fgets(line, sizeof line, stdin)) {
    line[strcspn(line, "\n")] = 0;
    if (line[0] == 'B') {
      uint64_t epoch, sequence;
      size_t cap;
      if (sscanf(line, "B %" SCNu64 " %" SCNu64 " %zu", &epoch, &sequence, &cap) != 3 || cap > MAX_FRAME) return 2;
      last = tb_batch_begin(&b, frame, cap, epoch, sequence);
    } else if (line[0] == 'R') {
      int synced;
      int64_t time;
      char h[64];
      uint8_t hash[TB_HASH_KEY_SIZE];
      long kl, dl, hl;
      if (sscanf(line, "R %d %" SCNd64 " %s %s %63s", &synced, &time, key_hex, data_hex, h) != 5) return 2;
      kl = unhex(key_hex, key, sizeof key);
      dl = unhex(data_hex, data, sizeof data);
      hl = unhex(h, hash, sizeof hash);
      if (kl < 0 || dl < 0 || (hl != 0 && hl != (long)TB_HASH_KEY_SIZE)) return 2;
      if (last == TB_OK || last == TB_ERR_SPACE || last == TB_ERR_KEY || last == TB_ERR_RECORD) {
        tb_error e = tb_batch_add(&b, (const char *)key, (size_t)kl, data, (size_t)dl, time, synced, hl ? hash : NULL);
        if (e != TB_OK) last = e;
      }
    } else if (line[0] == 'E') {
      size_t len = last == TB_OK ? tb_batch_finish(&b) : 0;
      put32((uint32_t)len);
      put32((uint32_t)(len ? TB_OK : (last != TB_OK ? last : tb_batch_error(&b))));
      if (len) fwrite(frame, 1, len, stdout);
      last = TB_OK;
    }
  }
  return 0;
}
