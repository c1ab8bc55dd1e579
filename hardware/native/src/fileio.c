/* File work for the file store's journal checkpoints, on libuv's thread pool so that the event loop
 * never waits for the disk:
 *
 * - syncfs(fd): one call makes every file of a file system durable, where a checkpoint after commits
 *   that touched thousands of shards would otherwise fdatasync each segment file (measured here,
 *   10,000 files of 1.7 KB each: 0.55-0.76 s with four threads of fdatasync, 0.045 s with one
 *   syncfs). PostgreSQL's recovery_init_sync_method=syncfs does the same for the same reason. Since
 *   Linux 5.8 syncfs reports a writeback error of any file of the file system that happened after the
 *   descriptor it is called on was opened.
 * - writeAt(buf, table): many pwrites in one job, each a range of `buf` at a position of a file, where
 *   a checkpoint would otherwise make one promise-returning writev per segment (measured: ~20 us of
 *   the event loop's time each, at 10,000 shards a sixth of the relay's busy time).
 *
 * Each resolves with errno values (0 for success), which the caller names. */
#define _GNU_SOURCE
#include <node_api.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ARG_CODE "ERR_TRIBUTARY_ARGUMENT"
#define NAPI_CODE "ERR_TRIBUTARY_NAPI"

typedef struct {
  napi_deferred deferred;
  napi_async_work work;
  /* syncfs */
  int fd;
  int err;
  /* writeAt: rows of (fd, position, offset, length), one errno per row */
  napi_ref buf_ref;
  uint8_t *buf;
  double *rows;
  size_t count;
  int32_t *errs;
} FileJob;

static void job_free(napi_env env, FileJob *job) {
  if (job->work) napi_delete_async_work(env, job->work);
  if (job->buf_ref) napi_delete_reference(env, job->buf_ref);
  free(job->rows);
  free(job->errs);
  free(job);
}

/* Queues `job`; on failure frees it and throws (a promise made and never settled would hang its caller). */
static napi_value job_queue(napi_env env, FileJob *job, const char *name, napi_async_execute_callback execute, napi_async_complete_callback complete) {
  napi_value promise, resource_name;
  if (napi_create_promise(env, &job->deferred, &promise) != napi_ok ||
      napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource_name) != napi_ok ||
      napi_create_async_work(env, NULL, resource_name, execute, complete, job, &job->work) != napi_ok ||
      napi_queue_async_work(env, job->work) != napi_ok) {
    job_free(env, job);
    napi_throw_error(env, NAPI_CODE, "the file work could not be queued");
    return NULL;
  }
  return promise;
}

static void syncfs_execute(napi_env env, void *data) {
  (void)env;
  FileJob *job = data;
  job->err = syncfs(job->fd) == 0 ? 0 : errno;
}

static void syncfs_complete(napi_env env, napi_status status, void *data) {
  FileJob *job = data;
  napi_value result;
  if (status != napi_ok) job->err = ECANCELED;
  if (napi_create_int32(env, job->err, &result) == napi_ok) napi_resolve_deferred(env, job->deferred, result);
  job_free(env, job);
}

/* syncfs(fd: number): Promise<number> — 0 once the file system holding fd is durable, or the errno. */
napi_value trib_js_syncfs(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  double fd;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_double(env, argv[0], &fd) != napi_ok || !(fd >= 0 && fd <= INT32_MAX && fd == (double)(int32_t)fd)) {
    napi_throw_type_error(env, ARG_CODE, "syncfs(fd) takes an open file descriptor");
    return NULL;
  }
  FileJob *job = calloc(1, sizeof *job);
  if (!job) { napi_throw_error(env, NAPI_CODE, "syncfs: out of memory"); return NULL; }
  job->fd = (int)fd;
  return job_queue(env, job, "tributary:syncfs", syncfs_execute, syncfs_complete);
}

static void write_at_execute(napi_env env, void *data) {
  (void)env;
  FileJob *job = data;
  for (size_t i = 0; i < job->count; i++) {
    const double *row = job->rows + i * 4;
    int fd = (int)row[0];
    off_t position = (off_t)row[1];
    const uint8_t *p = job->buf + (size_t)row[2];
    size_t left = (size_t)row[3];
    int err = 0;
    while (left > 0) {
      ssize_t n = pwrite(fd, p, left, position);
      if (n < 0) {
        if (errno == EINTR) continue;
        err = errno;
        break;
      }
      if (n == 0) { err = EIO; break; }
      p += n;
      left -= (size_t)n;
      position += n;
    }
    job->errs[i] = err;
  }
}

static void write_at_complete(napi_env env, napi_status status, void *data) {
  FileJob *job = data;
  napi_value ab, out;
  void *bytes;
  if (status != napi_ok) for (size_t i = 0; i < job->count; i++) job->errs[i] = ECANCELED;
  if (napi_create_arraybuffer(env, job->count * sizeof(int32_t), &bytes, &ab) == napi_ok) {
    if (job->count) memcpy(bytes, job->errs, job->count * sizeof(int32_t));
    if (napi_create_typedarray(env, napi_int32_array, job->count, ab, 0, &out) == napi_ok) napi_resolve_deferred(env, job->deferred, out);
  }
  job_free(env, job);
}

/* writeAt(buf: Uint8Array, table: Float64Array): Promise<Int32Array> — for each row (fd, position,
 * offset, length) of the table, buf's bytes [offset, offset + length) written at position of fd
 * (whole, retried on a short write); one errno per row, 0 where it was written. */
napi_value trib_js_write_at(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) {
    napi_throw_type_error(env, ARG_CODE, "writeAt(buf, table) takes two arguments");
    return NULL;
  }
  bool is;
  napi_typedarray_type type;
  size_t buf_len, table_len, offset;
  void *buf, *table;
  napi_value ab;
  if (napi_is_typedarray(env, argv[0], &is) != napi_ok || !is ||
      napi_get_typedarray_info(env, argv[0], &type, &buf_len, &buf, &ab, &offset) != napi_ok || type != napi_uint8_array) {
    napi_throw_type_error(env, ARG_CODE, "writeAt: buf must be a Uint8Array");
    return NULL;
  }
  if (napi_is_typedarray(env, argv[1], &is) != napi_ok || !is ||
      napi_get_typedarray_info(env, argv[1], &type, &table_len, &table, &ab, &offset) != napi_ok || type != napi_float64_array) {
    napi_throw_type_error(env, ARG_CODE, "writeAt: table must be a Float64Array");
    return NULL;
  }
  if (table_len % 4) { napi_throw_range_error(env, ARG_CODE, "writeAt: table must hold rows of four (fd, position, offset, length)"); return NULL; }
  const double *rows = table;
  for (size_t i = 0; i < table_len; i += 4) {
    double fd = rows[i], position = rows[i + 1], start = rows[i + 2], length = rows[i + 3];
    if (!(fd >= 0 && fd <= INT32_MAX && fd == (double)(int32_t)fd)) { napi_throw_range_error(env, ARG_CODE, "writeAt: a row's fd is not a file descriptor"); return NULL; }
    if (!(position >= 0 && position <= 9007199254740991.0 && position == (double)(int64_t)position)) { napi_throw_range_error(env, ARG_CODE, "writeAt: a row's position is not a byte position"); return NULL; }
    if (!(start >= 0 && length >= 0 && start == (double)(size_t)start && length == (double)(size_t)length && start + length <= (double)buf_len)) {
      napi_throw_range_error(env, ARG_CODE, "writeAt: a row's range lies outside buf");
      return NULL;
    }
  }
  FileJob *job = calloc(1, sizeof *job);
  if (!job) { napi_throw_error(env, NAPI_CODE, "writeAt: out of memory"); return NULL; }
  job->count = table_len / 4;
  job->buf = buf;
  job->rows = malloc(table_len ? table_len * sizeof(double) : 1);
  job->errs = calloc(job->count ? job->count : 1, sizeof(int32_t));
  if (!job->rows || !job->errs || napi_create_reference(env, argv[0], 1, &job->buf_ref) != napi_ok) {
    job_free(env, job);
    napi_throw_error(env, NAPI_CODE, "writeAt: out of memory");
    return NULL;
  }
  if (table_len) memcpy(job->rows, rows, table_len * sizeof(double));
  return job_queue(env, job, "tributary:writeAt", write_at_execute, write_at_complete);
}
