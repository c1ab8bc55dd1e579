/* sd_notify for systemd's Type=notify services: one datagram to the unix socket named by
 * $NOTIFY_SOCKET. Node's dgram module refuses unix datagram sockets (ERR_SOCKET_BAD_TYPE), and a
 * `systemd-notify` child races its own exit (systemd may not map a dead sender to the unit), so the
 * main process sends the datagram itself from here. A path starting with '@' is in the abstract
 * namespace, as systemd documents. */
#include <node_api.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define NOTIFY_CODE "ERR_TRIBUTARY_NOTIFY"

/* sdNotify(socketPath: string, message: string): undefined; throws with the errno's text. */
napi_value trib_js_sd_notify(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) {
    napi_throw_type_error(env, NOTIFY_CODE, "sdNotify(socketPath, message) takes two strings");
    return NULL;
  }
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  size_t path_len = 0;
  if (napi_get_value_string_utf8(env, argv[0], addr.sun_path, sizeof addr.sun_path, &path_len) != napi_ok) {
    napi_throw_type_error(env, NOTIFY_CODE, "sdNotify: socketPath must be a string");
    return NULL;
  }
  if (path_len == 0 || path_len >= sizeof addr.sun_path - 1 || (addr.sun_path[0] != '/' && addr.sun_path[0] != '@')) {
    napi_throw_range_error(env, NOTIFY_CODE, "sdNotify: socketPath must be an absolute path or @abstract name shorter than 107 bytes");
    return NULL;
  }
  if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';
  char message[4096];
  size_t msg_len = 0;
  if (napi_get_value_string_utf8(env, argv[1], message, sizeof message, &msg_len) != napi_ok) {
    napi_throw_type_error(env, NOTIFY_CODE, "sdNotify: message must be a string");
    return NULL;
  }
  if (msg_len == 0 || msg_len >= sizeof message - 1) {
    napi_throw_range_error(env, NOTIFY_CODE, "sdNotify: message must be 1 to 4094 bytes");
    return NULL;
  }
  int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
  if (fd < 0) {
    napi_throw_error(env, NOTIFY_CODE, strerror(errno));
    return NULL;
  }
  socklen_t addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + path_len + (addr.sun_path[0] == '\0' ? 0 : 1));
  /* Never block the event loop: a receiver whose queue is full (a wedged systemd, a stand-in socket
   * nobody reads) makes this notification fail with EAGAIN instead. */
  ssize_t sent = sendto(fd, message, msg_len, MSG_DONTWAIT, (const struct sockaddr *)&addr, addr_len);
  int err = errno;
  close(fd);
  if (sent < 0) {
    napi_throw_error(env, NOTIFY_CODE, strerror(err));
    return NULL;
  }
  return NULL;
}
