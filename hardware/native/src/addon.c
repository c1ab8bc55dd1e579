/* N-API bindings. Every argument is checked here; bad input from JavaScript throws a TypeError or
 * RangeError with code ERR_TRIBUTARY_ARGUMENT and never reaches the hot loops. */
#include <node_api.h>
#include <stdlib.h>
#include <string.h>
#include "tributary.h"

#define ARG_CODE "ERR_TRIBUTARY_ARGUMENT"
#define CALL(env, expr) do { if ((expr) != napi_ok) { napi_throw_error((env), "ERR_TRIBUTARY_NAPI", "N-API call failed: " #expr); return NULL; } } while (0)

/* A typed array of one element type: bytes (Uint8Array, Buffer) or the batch functions' tables. */
static int get_typed(napi_env env, napi_value v, napi_typedarray_type want, void **data, size_t *len, const char *what) {
  bool is;
  napi_typedarray_type type;
  size_t offset;
  napi_value ab;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is ||
      napi_get_typedarray_info(env, v, &type, len, data, &ab, &offset) != napi_ok || type != want) {
    napi_throw_type_error(env, ARG_CODE, what);
    return 0;
  }
  return 1;
}

static int get_bytes(napi_env env, napi_value v, uint8_t **data, size_t *len, const char *what) {
  return get_typed(env, v, napi_uint8_array, (void **)data, len, what);
}

static int get_index(napi_env env, napi_value v, size_t limit, size_t *out, const char *what) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok || d != d || d < 0 || d > (double)limit || d != (double)(size_t)d) {
    napi_throw_range_error(env, ARG_CODE, what);
    return 0;
  }
  *out = (size_t)d;
  return 1;
}

/* crc32c(buf: Uint8Array, initial: number, start: number, end: number): number */
static napi_value js_crc32c(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) { napi_throw_type_error(env, ARG_CODE, "crc32c(buf, initial, start, end) takes four arguments"); return NULL; }
  uint8_t *data;
  size_t len, start, end;
  uint32_t initial;
  if (!get_bytes(env, argv[0], &data, &len, "crc32c: buf must be a Uint8Array")) return NULL;
  if (napi_get_value_uint32(env, argv[1], &initial) != napi_ok) { napi_throw_type_error(env, ARG_CODE, "crc32c: initial must be a number"); return NULL; }
  if (!get_index(env, argv[2], len, &start, "crc32c: start is outside the buffer")) return NULL;
  if (!get_index(env, argv[3], len, &end, "crc32c: end is outside the buffer")) return NULL;
  if (end < start) { napi_throw_range_error(env, ARG_CODE, "crc32c: end is before start"); return NULL; }
  napi_value out;
  CALL(env, napi_create_uint32(env, trib_crc32c(initial, data + start, end - start), &out));
  return out;
}

/* md5Many(keys: string[]): Buffer (16 bytes per key) */
static napi_value js_md5_many(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  bool is_array = false;
  if (argc < 1 || napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array) {
    napi_throw_type_error(env, ARG_CODE, "md5Many: keys must be an array of strings");
    return NULL;
  }
  uint32_t n;
  CALL(env, napi_get_array_length(env, argv[0], &n));
  uint8_t *out;
  napi_value result;
  CALL(env, napi_create_buffer(env, (size_t)n * 16, (void **)&out, &result));
  char stack[4096];
  char *scratch = stack;
  size_t cap = sizeof stack;
  for (uint32_t i = 0; i < n; i++) {
    napi_value key;
    size_t bytes;
    CALL(env, napi_get_element(env, argv[0], i, &key));
    if (napi_get_value_string_utf8(env, key, NULL, 0, &bytes) != napi_ok) {
      if (scratch != stack) free(scratch);
      napi_throw_type_error(env, ARG_CODE, "md5Many: every key must be a string");
      return NULL;
    }
    if (bytes + 1 > cap) {
      char *grown = scratch == stack ? malloc(bytes + 1) : realloc(scratch, bytes + 1);
      if (!grown) { if (scratch != stack) free(scratch); napi_throw_error(env, "ERR_TRIBUTARY_MEMORY", "md5Many: out of memory"); return NULL; }
      scratch = grown;
      cap = bytes + 1;
    }
    napi_get_value_string_utf8(env, key, scratch, cap, &bytes);
    trib_md5((const uint8_t *)scratch, bytes, out + (size_t)i * 16);
  }
  if (scratch != stack) free(scratch);
  return result;
}

/* scanLog(buf: Uint8Array, start: number, end: number, expected: number): [Uint32Array positions, end, stop] */
static napi_value js_scan_log(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) { napi_throw_type_error(env, ARG_CODE, "scanLog(buf, start, end, expected) takes four arguments"); return NULL; }
  uint8_t *data;
  size_t len, start, end;
  double expected;
  if (!get_bytes(env, argv[0], &data, &len, "scanLog: buf must be a Uint8Array")) return NULL;
  if (len > 0xffffffffu) { napi_throw_range_error(env, ARG_CODE, "scanLog: buffers over 4 GiB are not supported"); return NULL; }
  if (!get_index(env, argv[1], len, &start, "scanLog: start is outside the buffer")) return NULL;
  if (!get_index(env, argv[2], len, &end, "scanLog: end is outside the buffer")) return NULL;
  if (end < start) { napi_throw_range_error(env, ARG_CODE, "scanLog: end is before start"); return NULL; }
  if (napi_get_value_double(env, argv[3], &expected) != napi_ok || expected != expected || expected > 9007199254740991.0) {
    napi_throw_type_error(env, ARG_CODE, "scanLog: expected must be an offset or -1");
    return NULL;
  }
  size_t max = (end - start) / 64 + 1;
  napi_value ab, positions;
  void *pdata;
  CALL(env, napi_create_arraybuffer(env, max * 4, &pdata, &ab));
  size_t stop_at = start;
  int stop = 0;
  size_t count = trib_scan_log(data, start, end, expected < 0 ? -1 : (int64_t)expected, pdata, max, &stop_at, &stop);
  CALL(env, napi_create_typedarray(env, napi_uint32_array, count, ab, 0, &positions));
  napi_value result, v_end, v_stop;
  CALL(env, napi_create_array_with_length(env, 3, &result));
  CALL(env, napi_create_double(env, (double)stop_at, &v_end));
  CALL(env, napi_create_int32(env, stop, &v_stop));
  CALL(env, napi_set_element(env, result, 0, positions));
  CALL(env, napi_set_element(env, result, 1, v_end));
  CALL(env, napi_set_element(env, result, 2, v_stop));
  return result;
}



/* scanBatch(frame: Uint8Array): [Float64Array times, Uint32Array fields] | number (a frame error kind) */
static napi_value js_scan_batch(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) { napi_throw_type_error(env, ARG_CODE, "scanBatch(frame) takes one argument"); return NULL; }
  uint8_t *data;
  size_t len;
  if (!get_bytes(env, argv[0], &data, &len, "scanBatch: frame must be a Uint8Array")) return NULL;
  uint32_t n = 0;
  int rc = trib_batch_count(data, len, &n);
  napi_value out;
  if (rc != TRIB_OK) { CALL(env, napi_create_int32(env, rc, &out)); return out; }
  /* One buffer for both tables: the times first, so both views are aligned. */
  size_t times_bytes = (size_t)n * 8;
  void *mem;
  napi_value ab, times, fields;
  CALL(env, napi_create_arraybuffer(env, times_bytes + (size_t)n * TRIB_BATCH_STRIDE * 4, &mem, &ab));
  rc = trib_scan_batch(data, len, n, (uint32_t *)((uint8_t *)mem + times_bytes), (double *)mem);
  if (rc != TRIB_OK) { CALL(env, napi_create_int32(env, rc, &out)); return out; }
  CALL(env, napi_create_typedarray(env, napi_float64_array, n, ab, 0, &times));
  CALL(env, napi_create_typedarray(env, napi_uint32_array, (size_t)n * TRIB_BATCH_STRIDE, ab, times_bytes, &fields));
  CALL(env, napi_create_array_with_length(env, 2, &out));
  CALL(env, napi_set_element(env, out, 0, times));
  CALL(env, napi_set_element(env, out, 1, fields));
  return out;
}

/* Every field of a table must point inside the frame before C reads through it. */
static int check_fields(napi_env env, const uint32_t *fields, size_t n, size_t frame_len, const char *fn) {
  for (size_t i = 0; i < n; i++) {
    const uint32_t *f = fields + i * TRIB_BATCH_STRIDE;
    if ((uint64_t)f[0] + f[1] > frame_len || (uint64_t)f[2] + f[3] > frame_len || (f[5] && (uint64_t)f[5] + 16 > frame_len) ||
        f[1] > 0xffff) {
      napi_throw_range_error(env, ARG_CODE, fn);
      return 0;
    }
  }
  return 1;
}

/* hashRoute(frame: Uint8Array, fields: Uint32Array, bounds: Uint8Array): Uint16Array slots */
static napi_value js_hash_route(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) { napi_throw_type_error(env, ARG_CODE, "hashRoute(frame, fields, bounds) takes three arguments"); return NULL; }
  uint8_t *frame, *bounds;
  uint32_t *fields;
  size_t frame_len, bounds_len, fields_len;
  if (!get_bytes(env, argv[0], &frame, &frame_len, "hashRoute: frame must be a Uint8Array")) return NULL;
  if (!get_typed(env, argv[1], napi_uint32_array, (void **)&fields, &fields_len, "hashRoute: fields must be a Uint32Array")) return NULL;
  if (!get_bytes(env, argv[2], &bounds, &bounds_len, "hashRoute: bounds must be a Uint8Array")) return NULL;
  if (fields_len % TRIB_BATCH_STRIDE) { napi_throw_range_error(env, ARG_CODE, "hashRoute: fields is not a whole table"); return NULL; }
  if (bounds_len == 0 || bounds_len % 16 || bounds_len / 16 > 65535) { napi_throw_range_error(env, ARG_CODE, "hashRoute: bounds must hold 1 to 65535 16-byte hash keys"); return NULL; }
  size_t n = fields_len / TRIB_BATCH_STRIDE;
  if (!check_fields(env, fields, n, frame_len, "hashRoute: a field points outside the frame")) return NULL;
  void *mem;
  napi_value ab, slots;
  CALL(env, napi_create_arraybuffer(env, n * 2, &mem, &ab));
  trib_hash_route(frame, fields, (uint32_t)n, bounds, (uint32_t)(bounds_len / 16), mem);
  CALL(env, napi_create_typedarray(env, napi_uint16_array, n, ab, 0, &slots));
  return slots;
}

/* encodeLogBatch(out, at, frame, fields, times, indices, firstOffset, arrivalMs, device, positions): bytes written */
static napi_value js_encode_log_batch(napi_env env, napi_callback_info info) {
  size_t argc = 10;
  napi_value argv[10];
  CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 10) { napi_throw_type_error(env, ARG_CODE, "encodeLogBatch takes ten arguments"); return NULL; }
  uint8_t *out, *frame, *device;
  uint32_t *fields, *indices, *positions;
  double *times;
  size_t out_len, at, frame_len, fields_len, times_len, indices_len, device_len, positions_len;
  double first_offset, arrival;
  if (!get_bytes(env, argv[0], &out, &out_len, "encodeLogBatch: out must be a Uint8Array")) return NULL;
  if (!get_index(env, argv[1], out_len, &at, "encodeLogBatch: at is outside the output")) return NULL;
  if (!get_bytes(env, argv[2], &frame, &frame_len, "encodeLogBatch: frame must be a Uint8Array")) return NULL;
  if (!get_typed(env, argv[3], napi_uint32_array, (void **)&fields, &fields_len, "encodeLogBatch: fields must be a Uint32Array")) return NULL;
  if (!get_typed(env, argv[4], napi_float64_array, (void **)&times, &times_len, "encodeLogBatch: times must be a Float64Array")) return NULL;
  if (!get_typed(env, argv[5], napi_uint32_array, (void **)&indices, &indices_len, "encodeLogBatch: indices must be a Uint32Array")) return NULL;
  if (napi_get_value_double(env, argv[6], &first_offset) != napi_ok || !(first_offset >= 0 && first_offset <= 9007199254740991.0) || first_offset != (double)(uint64_t)first_offset) {
    napi_throw_range_error(env, ARG_CODE, "encodeLogBatch: firstOffset must be an integer in [0, 2^53)");
    return NULL;
  }
  if (napi_get_value_double(env, argv[7], &arrival) != napi_ok) { napi_throw_type_error(env, ARG_CODE, "encodeLogBatch: arrivalMs must be a number"); return NULL; }
  if (!get_bytes(env, argv[8], &device, &device_len, "encodeLogBatch: device must be a Uint8Array")) return NULL;
  if (!get_typed(env, argv[9], napi_uint32_array, (void **)&positions, &positions_len, "encodeLogBatch: positions must be a Uint32Array")) return NULL;
  if (fields_len % TRIB_BATCH_STRIDE || times_len != fields_len / TRIB_BATCH_STRIDE) { napi_throw_range_error(env, ARG_CODE, "encodeLogBatch: fields and times do not describe the same records"); return NULL; }
  if (frame_len < 32) { napi_throw_range_error(env, ARG_CODE, "encodeLogBatch: frame is shorter than its header"); return NULL; }
  if (device_len > 0xffff) { napi_throw_range_error(env, ARG_CODE, "encodeLogBatch: device id is too long"); return NULL; }
  if (positions_len < indices_len) { napi_throw_range_error(env, ARG_CODE, "encodeLogBatch: positions is shorter than indices"); return NULL; }
  size_t n = times_len;
  for (size_t j = 0; j < indices_len; j++) {
    if (indices[j] >= n || indices[j] > 0xffff) { napi_throw_range_error(env, ARG_CODE, "encodeLogBatch: an index is outside the batch"); return NULL; }
  }
  if (!check_fields(env, fields, n, frame_len, "encodeLogBatch: a field points outside the frame")) return NULL;
  size_t need = trib_log_batch_size(fields, indices, (uint32_t)indices_len, device_len);
  if (need > out_len - at) { napi_throw_range_error(env, ARG_CODE, "encodeLogBatch: the output has no room for the records"); return NULL; }
  size_t wrote = trib_encode_log_batch(out + at, frame, fields, times, indices, (uint32_t)indices_len, (uint64_t)first_offset, arrival, device, device_len, positions);
  napi_value result;
  CALL(env, napi_create_double(env, (double)wrote, &result));
  return result;
}

/* notify.c: sd_notify for systemd; fileio.c: syncfs(2) and many writes at once, on the thread pool */
napi_value trib_js_sd_notify(napi_env env, napi_callback_info info);
napi_value trib_js_syncfs(napi_env env, napi_callback_info info);
napi_value trib_js_write_at(napi_env env, napi_callback_info info);

/* encodeBatch({ epoch: bigint, sequence: number, records: BatchRecord[] }): Buffer, the same bytes as the fallback. */
typedef struct {
  napi_value key;
  size_t key_len;
  uint8_t *data;
  size_t data_len;
  double time;
  uint32_t flags;
  uint8_t hash[16];
} pending_record;

static int named(napi_env env, napi_value obj, const char *name, napi_value *out) {
  return napi_get_named_property(env, obj, name, out) == napi_ok;
}

static napi_value js_encode_batch(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], v_epoch, v_seq, v_records;
  CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  napi_valuetype type;
  if (argc < 1 || napi_typeof(env, argv[0], &type) != napi_ok || type != napi_object) {
    napi_throw_type_error(env, ARG_CODE, "encodeBatch: the batch must be an object");
    return NULL;
  }
  uint64_t epoch;
  bool lossless = false;
  double seq;
  if (!named(env, argv[0], "epoch", &v_epoch) || napi_get_value_bigint_uint64(env, v_epoch, &epoch, &lossless) != napi_ok || !lossless) {
    napi_throw_type_error(env, ARG_CODE, "encodeBatch: epoch must be a bigint in [0, 2^64)");
    return NULL;
  }
  if (!named(env, argv[0], "sequence", &v_seq) || napi_get_value_double(env, v_seq, &seq) != napi_ok ||
      !(seq >= 0 && seq <= 9007199254740991.0) || seq != (double)(uint64_t)seq) {
    napi_throw_range_error(env, ARG_CODE, "encodeBatch: sequence must be an integer in [0, 2^53)");
    return NULL;
  }
  bool is_array = false;
  if (!named(env, argv[0], "records", &v_records) || napi_is_array(env, v_records, &is_array) != napi_ok || !is_array) {
    napi_throw_type_error(env, ARG_CODE, "encodeBatch: records must be an array");
    return NULL;
  }
  uint32_t n;
  CALL(env, napi_get_array_length(env, v_records, &n));
  pending_record *recs = n ? malloc(sizeof(pending_record) * n) : NULL;
  if (n && !recs) { napi_throw_error(env, "ERR_TRIBUTARY_MEMORY", "encodeBatch: out of memory"); return NULL; }
  const char *problem = NULL;
  int range = 0;
  size_t size = 32;
  for (uint32_t i = 0; i < n && !problem; i++) {
    pending_record *r = &recs[i];
    napi_value rec, v_data, v_time, v_synced, v_hash;
    napi_valuetype t;
    bool synced = false;
    if (napi_get_element(env, v_records, i, &rec) != napi_ok || napi_typeof(env, rec, &t) != napi_ok || t != napi_object) { problem = "encodeBatch: every record must be an object"; break; }
    if (!named(env, rec, "partitionKey", &r->key) || napi_get_value_string_utf8(env, r->key, NULL, 0, &r->key_len) != napi_ok) { problem = "encodeBatch: partitionKey must be a string"; break; }
    if (r->key_len > 0xffff) { problem = "encodeBatch: a partition key is longer than a frame can say"; range = 1; break; }
    if (!named(env, rec, "data", &v_data) || !get_bytes(env, v_data, &r->data, &r->data_len, "encodeBatch: data must be a Uint8Array")) { free(recs); return NULL; }
    if (r->data_len > 0xffffffffu) { problem = "encodeBatch: data is longer than a frame can say"; range = 1; break; }
    if (!named(env, rec, "producerTimeMs", &v_time) || napi_get_value_double(env, v_time, &r->time) != napi_ok) { problem = "encodeBatch: producerTimeMs must be a number"; break; }
    if (named(env, rec, "clockSynced", &v_synced)) napi_get_value_bool(env, v_synced, &synced);
    r->flags = synced ? 1u : 0u;
    if (!named(env, rec, "explicitHashKey", &v_hash) || napi_typeof(env, v_hash, &t) != napi_ok) { problem = "encodeBatch: cannot read explicitHashKey"; break; }
    if (t == napi_bigint) {
      int sign = 0;
      size_t words = 2;
      uint64_t w[2] = {0, 0};
      if (napi_get_value_bigint_words(env, v_hash, &sign, &words, w) != napi_ok) { problem = "encodeBatch: cannot read explicitHashKey"; break; }
      /* More than two words, or a negative value, is outside [0, 2^128). */
      size_t all = 0;
      napi_get_value_bigint_words(env, v_hash, NULL, &all, NULL);
      if (sign || all > 2) { problem = "encodeBatch: explicitHashKey is outside [0, 2^128-1]"; range = 1; break; }
      for (int b = 0; b < 8; b++) { r->hash[b] = (uint8_t)(w[1] >> (56 - 8 * b)); r->hash[8 + b] = (uint8_t)(w[0] >> (56 - 8 * b)); }
      r->flags |= 2u;
    } else if (t != napi_undefined) {
      problem = "encodeBatch: explicitHashKey must be a bigint";
      break;
    }
    size += 16 + (r->flags & 2u ? 16 : 0) + r->key_len + r->data_len;
  }
  if (!problem && size > 0xffffffffu) { problem = "encodeBatch: the batch is larger than a frame can say"; range = 1; }
  if (problem) {
    free(recs);
    if (range) napi_throw_range_error(env, ARG_CODE, problem);
    else napi_throw_type_error(env, ARG_CODE, problem);
    return NULL;
  }
  napi_value result;
  uint8_t *frame;
  if (napi_create_buffer(env, size, (void **)&frame, &result) != napi_ok) { free(recs); napi_throw_error(env, "ERR_TRIBUTARY_MEMORY", "encodeBatch: cannot allocate the frame"); return NULL; }
  size_t at = 32;
  for (uint32_t i = 0; i < n; i++) {
    pending_record *r = &recs[i];
    uint8_t *p = frame + at + 16 + (r->flags & 2u ? 16 : 0);
    size_t copied = 0;
    /* The key is written in place (one extra byte for the terminator goes into the data's room, then is overwritten). */
    char small[1025];
    if (r->key_len < sizeof small) {
      napi_get_value_string_utf8(env, r->key, small, sizeof small, &copied);
      memcpy(p, small, r->key_len);
    } else {
      char *big = malloc(r->key_len + 1);
      if (!big) { free(recs); napi_throw_error(env, "ERR_TRIBUTARY_MEMORY", "encodeBatch: out of memory"); return NULL; }
      napi_get_value_string_utf8(env, r->key, big, r->key_len + 1, &copied);
      memcpy(p, big, r->key_len);
      free(big);
    }
    at += trib_put_batch_record(frame + at, r->flags, p, (uint32_t)r->key_len, r->data, (uint32_t)r->data_len, r->time, (r->flags & 2u) ? r->hash : NULL);
  }
  free(recs);
  trib_seal_batch(frame, size, epoch, (uint64_t)seq, n);
  return result;
}

/* base64DecodeRanges(src: Uint8Array, ranges: Uint32Array, out: Uint8Array): bytes written, or -(i+1) for a bad range i */
static napi_value js_base64_decode_ranges(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) { napi_throw_type_error(env, ARG_CODE, "base64DecodeRanges(src, ranges, out) takes three arguments"); return NULL; }
  uint8_t *src, *out;
  uint32_t *ranges;
  size_t src_len, ranges_len, out_len;
  if (!get_bytes(env, argv[0], &src, &src_len, "base64DecodeRanges: src must be a Uint8Array")) return NULL;
  if (!get_typed(env, argv[1], napi_uint32_array, (void **)&ranges, &ranges_len, "base64DecodeRanges: ranges must be a Uint32Array")) return NULL;
  if (!get_bytes(env, argv[2], &out, &out_len, "base64DecodeRanges: out must be a Uint8Array")) return NULL;
  if (ranges_len % 2) { napi_throw_range_error(env, ARG_CODE, "base64DecodeRanges: ranges must hold pairs"); return NULL; }
  for (size_t i = 0; i < ranges_len; i += 2) {
    if (ranges[i] > ranges[i + 1] || ranges[i + 1] > src_len) { napi_throw_range_error(env, ARG_CODE, "base64DecodeRanges: a range lies outside src"); return NULL; }
  }
  napi_value result;
  CALL(env, napi_create_double(env, (double)trib_base64_decode_ranges(src, ranges, ranges_len / 2, out, out_len), &result));
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  trib_crc32c_init();
  trib_base64_init();
  napi_property_descriptor props[] = {
    {"crc32c", NULL, js_crc32c, NULL, NULL, NULL, napi_default, NULL},
    {"md5Many", NULL, js_md5_many, NULL, NULL, NULL, napi_default, NULL},
    {"scanLog", NULL, js_scan_log, NULL, NULL, NULL, napi_default, NULL},
    {"sdNotify", NULL, trib_js_sd_notify, NULL, NULL, NULL, napi_default, NULL},
    {"syncfs", NULL, trib_js_syncfs, NULL, NULL, NULL, napi_default, NULL},
    {"writeAt", NULL, trib_js_write_at, NULL, NULL, NULL, napi_default, NULL},
    {"scanBatch", NULL, js_scan_batch, NULL, NULL, NULL, napi_default, NULL},
    {"encodeBatch", NULL, js_encode_batch, NULL, NULL, NULL, napi_default, NULL},
    {"hashRoute", NULL, js_hash_route, NULL, NULL, NULL, napi_default, NULL},
    {"encodeLogBatch", NULL, js_encode_log_batch, NULL, NULL, NULL, napi_default, NULL},
    {"base64DecodeRanges", NULL, js_base64_decode_ranges, NULL, NULL, NULL, napi_default, NULL},
  };
  CALL(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  napi_value impl;
  CALL(env, napi_create_string_utf8(env, trib_crc32c_impl(), NAPI_AUTO_LENGTH, &impl));
  CALL(env, napi_set_named_property(env, exports, "crc32cImplementation", impl));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
