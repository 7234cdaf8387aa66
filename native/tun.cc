// plexd_tun: the only native code in plexd-userspace. Opens a Linux TUN device
// (/dev/net/tun, TUNSETIFF with IFF_TUN | IFF_NO_PI), waits for readiness with uv_poll on
// Node's own event loop, reads many packets per wakeup into one JS-owned buffer and hands JS
// one batch; writes straight from JS memory without blocking. Plain N-API (node_api.h) and
// libuv, written in the C subset of C++ so node-gyp builds it with no extra dependency.
//
// JS surface (wrapped by src/io/tun-linux.ts, which documents the contract):
//   open(name, buf: ArrayBuffer, meta: Uint32Array, maxBatch, onBatch(count), onClosed(errno))
//        -> { handle, name }       packets are packed back to back; meta[i] is the start of
//                                  packet i and meta[count] the end of the last one
//   write(handle, u8, offset, length) -> bytes written, or -errno (EAGAIN = dropped)
//   getMtu(handle) / setMtu(handle, mtu) / name(handle) / close(handle)
//   setSocketMark(fd, mark)        SO_MARK for the UDP sockets (fwmark)
//   forceSocketBuffers(fd, bytes)  SO_RCVBUFFORCE + SO_SNDBUFFORCE (root: beyond rmem_max)
//   udp*                           the batched UDP bind, see native/udp.cc
// Errors thrown carry .code (ENOENT, EPERM, EBUSY, ENAMETOOLONG, ...) and .errno.

#include <node_api.h>
#include <uv.h>

#include "napi-util.h"

// native/udp.cc: the batched UDP bind (udpOpen, udpFlush, ...).
void plexd_udp_register(napi_env env, napi_value exports);

#ifdef __linux__
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <linux/if_tun.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef TUNGETDEVNETNS
#define TUNGETDEVNETNS _IO('T', 227)
#endif

// Largest packet a TUN can hand us (IPv4/IPv6 without jumbograms, MTU is capped at 65535).
static const size_t kMaxPacket = 65535;

struct Tun {
  int fd;
  int ctl_fd;        // AF_INET datagram socket for SIOC[GS]IFMTU, in the device's netns
  napi_env env;
  uv_poll_t poll;
  bool polling;       // uv_poll_init succeeded: the handle must be uv_close'd
  bool closed;        // fd closed, refs dropped
  bool handle_closed; // libuv is done with `poll` (or it was never initialized)
  bool finalized;     // the JS external is gone
  napi_ref buf_ref;
  napi_ref meta_ref;
  napi_ref on_batch_ref;
  napi_ref on_closed_ref;
  napi_async_context async_ctx;
  uint8_t* buf;
  size_t buf_len;
  uint32_t* meta;
  size_t meta_len;   // entries in meta (>= max_batch + 1)
  uint32_t max_batch;
};

static void env_cleanup(void* arg);

static Tun* get_tun(napi_env env, napi_value value) {
  void* data = NULL;
  if (napi_get_value_external(env, value, &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "expected a TUN handle");
    return NULL;
  }
  return static_cast<Tun*>(data);
}

static void delete_ref(napi_env env, napi_ref* ref) {
  if (*ref != NULL) {
    napi_delete_reference(env, *ref);
    *ref = NULL;
  }
}

static void maybe_free(Tun* t) {
  if (t->finalized && t->handle_closed) free(t);
}

static void on_poll_closed(uv_handle_t* handle) {
  Tun* t = static_cast<Tun*>(handle->data);
  t->handle_closed = true;
  maybe_free(t);
}

// Stops polling, closes the fds and drops the JS references. Idempotent. The struct itself is
// freed once both the external is finalized and libuv has closed the poll handle.
static void tun_release(Tun* t) {
  if (t->closed) return;
  t->closed = true;
  if (t->polling) {
    uv_poll_stop(&t->poll);
    uv_close(reinterpret_cast<uv_handle_t*>(&t->poll), on_poll_closed);
  } else {
    t->handle_closed = true;
  }
  close(t->fd);
  t->fd = -1;
  if (t->ctl_fd >= 0) close(t->ctl_fd);
  t->ctl_fd = -1;
  delete_ref(t->env, &t->buf_ref);
  delete_ref(t->env, &t->meta_ref);
  delete_ref(t->env, &t->on_batch_ref);
  delete_ref(t->env, &t->on_closed_ref);
  napi_remove_env_cleanup_hook(t->env, env_cleanup, t);
}

static void destroy_async(Tun* t) {
  if (t->async_ctx != NULL) napi_async_destroy(t->env, t->async_ctx);
  t->async_ctx = NULL;
}

static void env_cleanup(void* arg) {
  Tun* t = static_cast<Tun*>(arg);
  tun_release(t);
  destroy_async(t);
}

static void finalize_tun(napi_env env, void* data, void* hint) {
  (void)env;
  (void)hint;
  Tun* t = static_cast<Tun*>(data);
  tun_release(t);
  destroy_async(t);
  t->finalized = true;
  maybe_free(t);
}

static void make_callback(Tun* t, napi_value fn, size_t argc, napi_value* argv) {
  call_js(t->env, t->async_ctx, fn, argc, argv);
}

// The device went away (ip link del) or the fd broke: stop polling, close, tell JS once.
// Called from a libuv callback, so it opens its own handle scope.
static void report_closed(Tun* t, int err) {
  if (t->closed) return;
  napi_env env = t->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value cb = NULL;
  if (t->on_closed_ref != NULL) napi_get_reference_value(env, t->on_closed_ref, &cb);
  tun_release(t);  // cb stays alive: it is held by this scope
  if (cb != NULL) {
    napi_value arg;
    napi_create_int32(env, err, &arg);
    make_callback(t, cb, 1, &arg);
  }
  destroy_async(t);
  napi_close_handle_scope(env, scope);
}

static void on_readable(uv_poll_t* handle, int status, int events) {
  Tun* t = static_cast<Tun*>(handle->data);
  if (t->closed) return;
  if (status < 0) {
    // libuv maps POLLERR to UV_EBADF; a deleted TUN reports POLLERR.
    report_closed(t, EBADFD);
    return;
  }
  if (events & UV_DISCONNECT) {
    report_closed(t, EPIPE);
    return;
  }
  uint32_t count = 0;
  size_t off = 0;
  int fatal = 0;
  while (count < t->max_batch && t->buf_len - off >= kMaxPacket) {
    ssize_t n = read(t->fd, t->buf + off, t->buf_len - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) fatal = errno;
      break;
    }
    if (n == 0) continue;  // not expected from TUN; skip
    t->meta[count] = static_cast<uint32_t>(off);
    off += static_cast<size_t>(n);
    count++;
  }
  if (count > 0) {
    t->meta[count] = static_cast<uint32_t>(off);
    napi_handle_scope scope;
    napi_open_handle_scope(t->env, &scope);
    napi_value arg, fn = NULL;
    napi_create_uint32(t->env, count, &arg);
    if (t->on_batch_ref != NULL) napi_get_reference_value(t->env, t->on_batch_ref, &fn);
    if (fn != NULL) make_callback(t, fn, 1, &arg);
    napi_close_handle_scope(t->env, scope);
  }
  if (fatal != 0 && !t->closed) report_closed(t, fatal);
}

static napi_value arg_string(napi_env env, napi_value v, char* out, size_t cap, size_t* len) {
  napi_valuetype type;
  CHECK_NAPI(env, napi_typeof(env, v, &type));
  if (type != napi_string) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "expected name to be a string");
    return NULL;
  }
  CHECK_NAPI(env, napi_get_value_string_utf8(env, v, out, cap, len));
  napi_value ok;
  napi_get_boolean(env, true, &ok);
  return ok;
}

// Creates a datagram socket in the network namespace `nsfd` (a TUNGETDEVNETNS fd) by
// switching one short-lived thread into it: setns is per thread for CLONE_NEWNET.
struct NetnsSocketJob {
  int nsfd;
  int sock;
  int err;
};

static void* netns_socket_thread(void* arg) {
  NetnsSocketJob* job = static_cast<NetnsSocketJob*>(arg);
  if (setns(job->nsfd, CLONE_NEWNET) != 0) {
    job->err = errno;
    return NULL;
  }
  job->sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (job->sock < 0) job->err = errno;
  return NULL;
}

// Re-creates ctl_fd in the namespace the device lives in now (it may have been moved).
static int refresh_ctl_socket(Tun* t) {
  int nsfd = ioctl(t->fd, TUNGETDEVNETNS);
  if (nsfd < 0) return errno;
  NetnsSocketJob job = {nsfd, -1, 0};
  pthread_t thread;
  int rc = pthread_create(&thread, NULL, netns_socket_thread, &job);
  if (rc != 0) {
    close(nsfd);
    return rc;
  }
  pthread_join(thread, NULL);
  close(nsfd);
  if (job.sock < 0) return job.err != 0 ? job.err : EIO;
  if (t->ctl_fd >= 0) close(t->ctl_fd);
  t->ctl_fd = job.sock;
  return 0;
}

// Fills ifr_name with the device's current name (TUNGETIFF works in any namespace).
static int current_ifreq(Tun* t, struct ifreq* ifr) {
  memset(ifr, 0, sizeof *ifr);
  if (ioctl(t->fd, TUNGETIFF, ifr) != 0) return errno;
  return 0;
}

// Runs SIOCGIFMTU / SIOCSIFMTU, following the device into another namespace if needed.
static int mtu_ioctl(Tun* t, unsigned long request, int* mtu) {
  struct ifreq ifr;
  int err = current_ifreq(t, &ifr);
  if (err != 0) return err;
  if (request == SIOCSIFMTU) ifr.ifr_mtu = *mtu;
  for (int attempt = 0; attempt < 2; attempt++) {
    if (t->ctl_fd >= 0 && ioctl(t->ctl_fd, request, &ifr) == 0) {
      if (request == SIOCGIFMTU) *mtu = ifr.ifr_mtu;
      return 0;
    }
    err = t->ctl_fd >= 0 ? errno : ENODEV;
    if (err != ENODEV || attempt == 1) return err;
    int rerr = refresh_ctl_socket(t);
    if (rerr != 0) return err;
  }
  return err;
}

static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 6) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE",
                          "expected (name, buffer, meta, maxBatch, onBatch, onClosed)");
    return NULL;
  }
  char name[64];
  size_t name_len = 0;
  if (arg_string(env, argv[0], name, sizeof name, &name_len) == NULL) return NULL;
  if (name_len >= IFNAMSIZ) {
    throw_errno(env, ENAMETOOLONG, "interface name longer than 15 bytes");
    return NULL;
  }
  bool is_ab = false;
  CHECK_NAPI(env, napi_is_arraybuffer(env, argv[1], &is_ab));
  if (!is_ab) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "expected buffer to be an ArrayBuffer");
    return NULL;
  }
  void* buf = NULL;
  size_t buf_len = 0;
  CHECK_NAPI(env, napi_get_arraybuffer_info(env, argv[1], &buf, &buf_len));
  bool is_ta = false;
  CHECK_NAPI(env, napi_is_typedarray(env, argv[2], &is_ta));
  napi_typedarray_type ta_type = napi_int8_array;
  size_t meta_len = 0;
  void* meta = NULL;
  if (is_ta)
    CHECK_NAPI(env, napi_get_typedarray_info(env, argv[2], &ta_type, &meta_len, &meta, NULL, NULL));
  if (!is_ta || ta_type != napi_uint32_array) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "expected meta to be a Uint32Array");
    return NULL;
  }
  uint32_t max_batch = 0;
  CHECK_NAPI(env, napi_get_value_uint32(env, argv[3], &max_batch));
  if (max_batch == 0 || meta_len < static_cast<size_t>(max_batch) + 1 || buf_len < kMaxPacket) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE",
                           "expected maxBatch >= 1, meta.length > maxBatch, buffer >= 65535 bytes");
    return NULL;
  }

  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    throw_errno(env, err,
                err == ENOENT ? "cannot open /dev/net/tun (is the tun module loaded?)"
                : err == EACCES || err == EPERM
                    ? "cannot open /dev/net/tun (permission denied)"
                    : "cannot open /dev/net/tun");
    return NULL;
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  memcpy(ifr.ifr_name, name, name_len);
  if (ioctl(fd, TUNSETIFF, &ifr) != 0) {
    int err = errno;
    close(fd);
    char text[160];
    if (err == EPERM || err == EACCES)
      snprintf(text, sizeof text, "TUNSETIFF %s: CAP_NET_ADMIN is needed to create a TUN device",
               name);
    else if (err == EBUSY)
      snprintf(text, sizeof text, "TUNSETIFF %s: the name is taken by another device", name);
    else if (err == EINVAL)
      snprintf(text, sizeof text, "TUNSETIFF %s: invalid name or the name is taken by a non-TUN device",
               name);
    else
      snprintf(text, sizeof text, "TUNSETIFF %s", name);
    throw_errno(env, err, text);
    return NULL;
  }

  Tun* t = static_cast<Tun*>(calloc(1, sizeof(Tun)));
  if (t == NULL) {
    close(fd);
    throw_errno(env, ENOMEM, "allocating TUN state");
    return NULL;
  }
  t->fd = fd;
  t->ctl_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  t->env = env;
  t->buf = static_cast<uint8_t*>(buf);
  t->buf_len = buf_len;
  t->meta = static_cast<uint32_t*>(meta);
  t->meta_len = meta_len;
  t->max_batch = max_batch;
  napi_create_reference(env, argv[1], 1, &t->buf_ref);
  napi_create_reference(env, argv[2], 1, &t->meta_ref);
  napi_create_reference(env, argv[4], 1, &t->on_batch_ref);
  napi_create_reference(env, argv[5], 1, &t->on_closed_ref);
  napi_value resource, resource_name;
  napi_create_object(env, &resource);
  napi_create_string_utf8(env, "PlexdTun", NAPI_AUTO_LENGTH, &resource_name);
  napi_async_init(env, resource, resource_name, &t->async_ctx);

  napi_value external;
  if (napi_create_external(env, t, finalize_tun, NULL, &external) != napi_ok) {
    tun_release(t);
    destroy_async(t);
    free(t);
    napi_throw_error(env, "ERR_NATIVE", "napi_create_external failed");
    return NULL;
  }
  napi_add_env_cleanup_hook(env, env_cleanup, t);

  uv_loop_t* loop = NULL;
  int rc = napi_get_uv_event_loop(env, &loop) == napi_ok ? 0 : -1;
  if (rc == 0) rc = uv_poll_init(loop, &t->poll, fd);
  if (rc == 0) {
    t->poll.data = t;
    t->polling = true;
    rc = uv_poll_start(&t->poll, UV_READABLE | UV_DISCONNECT, on_readable);
  }
  if (rc != 0) {
    tun_release(t);
    destroy_async(t);
    throw_errno(env, rc < 0 ? -rc : EIO, "uv_poll on the TUN fd");
    return NULL;
  }

  napi_value result, real_name;
  CHECK_NAPI(env, napi_create_object(env, &result));
  CHECK_NAPI(env, napi_create_string_utf8(env, ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ),
                                          &real_name));
  CHECK_NAPI(env, napi_set_named_property(env, result, "handle", external));
  CHECK_NAPI(env, napi_set_named_property(env, result, "name", real_name));
  return result;
}

static napi_value js_write(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Tun* t = get_tun(env, argv[0]);
  if (t == NULL) return NULL;
  napi_typedarray_type type;
  size_t length = 0;
  void* data = NULL;
  if (napi_get_typedarray_info(env, argv[1], &type, &length, &data, NULL, NULL) != napi_ok ||
      type != napi_uint8_array) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "expected packet to be a Uint8Array");
    return NULL;
  }
  uint32_t off = 0, len = static_cast<uint32_t>(length);
  if (argc >= 3) napi_get_value_uint32(env, argv[2], &off);
  if (argc >= 4) napi_get_value_uint32(env, argv[3], &len);
  if (static_cast<size_t>(off) + len > length) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "expected offset + length <= packet.length");
    return NULL;
  }
  int32_t ret;
  if (t->closed) {
    ret = -EBADF;
  } else {
    ssize_t n;
    do {
      n = write(t->fd, static_cast<uint8_t*>(data) + off, len);
    } while (n < 0 && errno == EINTR);
    ret = n < 0 ? -errno : static_cast<int32_t>(n);
  }
  napi_value result;
  CHECK_NAPI(env, napi_create_int32(env, ret, &result));
  return result;
}

static napi_value js_get_mtu(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Tun* t = get_tun(env, argv[0]);
  if (t == NULL) return NULL;
  if (t->closed) {
    throw_errno(env, EBADF, "TUN is closed");
    return NULL;
  }
  int mtu = 0;
  int err = mtu_ioctl(t, SIOCGIFMTU, &mtu);
  if (err != 0) {
    throw_errno(env, err, "SIOCGIFMTU");
    return NULL;
  }
  napi_value result;
  CHECK_NAPI(env, napi_create_int32(env, mtu, &result));
  return result;
}

static napi_value js_set_mtu(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Tun* t = get_tun(env, argv[0]);
  if (t == NULL) return NULL;
  int32_t mtu = 0;
  CHECK_NAPI(env, napi_get_value_int32(env, argv[1], &mtu));
  if (t->closed) {
    throw_errno(env, EBADF, "TUN is closed");
    return NULL;
  }
  int err = mtu_ioctl(t, SIOCSIFMTU, &mtu);
  if (err != 0) {
    throw_errno(env, err, err == EPERM ? "SIOCSIFMTU: CAP_NET_ADMIN is needed" : "SIOCSIFMTU");
    return NULL;
  }
  return NULL;
}

static napi_value js_name(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Tun* t = get_tun(env, argv[0]);
  if (t == NULL) return NULL;
  struct ifreq ifr;
  int err = t->closed ? EBADF : current_ifreq(t, &ifr);
  if (err != 0) {
    throw_errno(env, err, "TUNGETIFF");
    return NULL;
  }
  napi_value result;
  CHECK_NAPI(env, napi_create_string_utf8(env, ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ),
                                          &result));
  return result;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Tun* t = get_tun(env, argv[0]);
  if (t == NULL) return NULL;
  tun_release(t);
  destroy_async(t);
  return NULL;
}

static napi_value js_set_socket_mark(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd = -1;
  uint32_t mark = 0;
  CHECK_NAPI(env, napi_get_value_int32(env, argv[0], &fd));
  CHECK_NAPI(env, napi_get_value_uint32(env, argv[1], &mark));
  if (setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof mark) != 0) {
    int err = errno;
    throw_errno(env, err, err == EPERM ? "SO_MARK: CAP_NET_ADMIN is needed" : "SO_MARK");
    return NULL;
  }
  return NULL;
}

// SO_RCVBUFFORCE / SO_SNDBUFFORCE: exceed net.core.[rw]mem_max (needs CAP_NET_ADMIN), as
// wireguard-go does for its UDP sockets.
static napi_value js_force_socket_buffers(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd = -1, size = 0;
  CHECK_NAPI(env, napi_get_value_int32(env, argv[0], &fd));
  CHECK_NAPI(env, napi_get_value_int32(env, argv[1], &size));
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) != 0) {
    throw_errno(env, errno, "SO_RCVBUFFORCE/SO_SNDBUFFORCE");
    return NULL;
  }
  return NULL;
}

#define EXPORT_FN(env, exports, name, fn)                                        \
  do {                                                                           \
    napi_value f_;                                                               \
    napi_create_function((env), name, NAPI_AUTO_LENGTH, (fn), NULL, &f_);        \
    napi_set_named_property((env), (exports), name, f_);                         \
  } while (0)

static napi_value init(napi_env env, napi_value exports) {
  EXPORT_FN(env, exports, "open", js_open);
  EXPORT_FN(env, exports, "write", js_write);
  EXPORT_FN(env, exports, "getMtu", js_get_mtu);
  EXPORT_FN(env, exports, "setMtu", js_set_mtu);
  EXPORT_FN(env, exports, "name", js_name);
  EXPORT_FN(env, exports, "close", js_close);
  EXPORT_FN(env, exports, "setSocketMark", js_set_socket_mark);
  EXPORT_FN(env, exports, "forceSocketBuffers", js_force_socket_buffers);
  plexd_udp_register(env, exports);
  return exports;
}

#else  // not Linux: the module loads and every entry point says why it cannot work.

static napi_value not_linux(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value msg, code, error;
  napi_create_string_utf8(env, "TUN devices are only supported on Linux", NAPI_AUTO_LENGTH, &msg);
  napi_create_string_utf8(env, "ENOTSUP", NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, msg, &error);
  napi_throw(env, error);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  const char* names[] = {"open", "write", "getMtu", "setMtu", "name", "close", "setSocketMark",
                         "forceSocketBuffers"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    napi_value f;
    napi_create_function(env, names[i], NAPI_AUTO_LENGTH, not_linux, NULL, &f);
    napi_set_named_property(env, exports, names[i], f);
  }
  plexd_udp_register(env, exports);
  return exports;
}

#endif

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
