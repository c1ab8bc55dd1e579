/*
 * Tributary batch frames for microcontrollers: portable C99, no allocation, no floating point.
 *
 * A batch frame is what the Tributary agent publishes on tributary/v1/{device}/records/{stream}
 * (layout in shared/frame.ts). It carries a producer epoch and a batch sequence, so a device that
 * resends a batch after a lost PUBACK has it stored once: exactly-once with a few hundred bytes of
 * RAM. The frame is built in a buffer the caller owns:
 *
 *     uint8_t buf[1024];
 *     tb_batch b;
 *     tb_batch_begin(&b, buf, sizeof buf, epoch, sequence);
 *     tb_batch_add(&b, "sensor-1", 8, data, data_len, now_ms, 1, NULL);
 *     size_t len = tb_batch_finish(&b);   // 0 on error: tb_batch_error(&b) says which
 *     mqtt_publish("tributary/v1/<device>/records/<stream>", buf, len, QOS1);
 *
 * Keep `epoch` in non-volatile storage (choose it once, e.g. from a boot counter or the RTC, and
 * never reuse it), and the sequence of the last batch acknowledged; resend the same bytes (the same
 * sequence) until its PUBACK arrives, then move to the next sequence.
 */
#ifndef TRIBUTARY_BATCH_H
#define TRIBUTARY_BATCH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TB_HEADER_SIZE 32u
#define TB_RECORD_HEADER_SIZE 16u
#define TB_HASH_KEY_SIZE 16u
/** The relay's limits: a partition key of 1..256 characters (1..1024 UTF-8 bytes here), a record (key + data) of at most 1 MiB. */
#define TB_MAX_KEY_BYTES 1024u
#define TB_MAX_RECORD_BYTES (1024u * 1024u)

typedef enum {
  TB_OK = 0,
  TB_ERR_ARGUMENT = 1,   /* a NULL pointer, or an empty batch at finish */
  TB_ERR_SPACE = 2,      /* the record does not fit in the buffer (the batch so far stays valid) */
  TB_ERR_KEY = 3,        /* the key is empty or longer than TB_MAX_KEY_BYTES */
  TB_ERR_RECORD = 4,     /* key plus data exceed TB_MAX_RECORD_BYTES */
  TB_ERR_SEQUENCE = 5    /* the batch sequence is above 2^53 - 1 */
} tb_error;

typedef struct {
  uint8_t *buf;
  size_t cap;
  size_t len;
  uint32_t count;
  tb_error error;
} tb_batch;

/** Starts a batch in `buf` (at least TB_HEADER_SIZE bytes). */
tb_error tb_batch_begin(tb_batch *b, uint8_t *buf, size_t cap, uint64_t epoch, uint64_t sequence);

/**
 * Appends one record. `key` is UTF-8 (not NUL-terminated: give its length). `producer_time_ms` is
 * the device's wall clock in milliseconds since 1970 (stored exactly up to 2^53); `clock_synced`
 * says whether that clock is set (NTP, GPS, an RTC). `explicit_hash_key`, when not NULL, is 16
 * bytes, big-endian: the shard is chosen by it instead of the key's MD5. A record that does not fit
 * leaves the batch as it was (finish it and start the next).
 */
tb_error tb_batch_add(tb_batch *b, const char *key, size_t key_len, const uint8_t *data, size_t data_len,
                      int64_t producer_time_ms, int clock_synced, const uint8_t *explicit_hash_key);

/** Seals the batch (record count, length, CRC-32C); returns the frame's length, or 0 on error. */
size_t tb_batch_finish(tb_batch *b);

/** The error of the last call that failed (TB_OK when none). */
tb_error tb_batch_error(const tb_batch *b);

/** Bytes a record of this key and data takes in a frame. */
size_t tb_record_size(size_t key_len, size_t data_len, int has_hash_key);

/** CRC-32C (Castagnoli), as the frame uses: start with 0, feed bytes in pieces. */
uint32_t tb_crc32c(uint32_t crc, const uint8_t *p, size_t n);

/** The IEEE 754 binary64 bits of an integer (exact up to 2^53, rounded to nearest even above). */
uint64_t tb_f64_bits(int64_t v);

#ifdef __cplusplus
}
#endif

#endif
