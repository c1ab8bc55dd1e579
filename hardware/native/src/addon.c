/* N-API bindings. Every argument is checked here; bad input from JavaScript throws a TypeError or
 * RangeError with code ERR_TRIBUTARY_ARGUMENT and never reaches the hot loops. */
#include <node_api.h>
#include <stdlib.h>
#include <string.h>
#include "tributary.h"

#define ARG_CODE "ERR_TRIBUTARY_ARGUMENT"
#define CALL(env, expr) do { if ((expr) != napi_ok) { napi_throw_error((env), "ERR_TRIBUTARY_NAPI", "N-API call failed: " #expr); return NULL; } } while (0)

static int get_bytes(napi_env env, napi_value v, uint8_t **data, size_t *len, const char *what) {
  bool is;
  if (napi_is_typedarray(env, v, &is) == napi_ok && is) {
    napi_typedarray_type type;
    size_t length, offset;
    napi_value ab;
    void *p;
    if (napi_get_typedarray_info(env, v, &type, &length, &p, &ab, &offset) != napi_ok) return 0;
    if (type != napi_uint8_array) { napi_throw_type_error(env, ARG_CODE, what); return 0; }
    *data = p;
    *len = length;
    return 1;
  }
  napi_throw_type_error(env, ARG_CODE, what);
  return 0;
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

static napi_value init(napi_env env, napi_value exports) {
  trib_crc32c_init();
  napi_property_descriptor props[] = {
    {"crc32c", NULL, js_crc32c, NULL, NULL, NULL, napi_default, NULL},
    {"md5Many", NULL, js_md5_many, NULL, NULL, NULL, napi_default, NULL},
    {"scanLog", NULL, js_scan_log, NULL, NULL, NULL, napi_default, NULL},
  };
  CALL(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  napi_value impl;
  CALL(env, napi_create_string_utf8(env, trib_crc32c_impl(), NAPI_AUTO_LENGTH, &impl));
  CALL(env, napi_set_named_property(env, exports, "crc32cImplementation", impl));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
