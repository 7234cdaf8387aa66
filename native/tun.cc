// The TUN device: opens a Linux TUN device (/dev/net/tun, TUNSETIFF with IFF_TUN | IFF_NO_PI),
// waits for readiness with uv_poll on Node's own event loop, reads many packets per wakeup into
// one JS-owned buffer and hands JS one batch; writes straight from JS memory without blocking.
// Plain N-API (node_api.h) and libuv, written in the C subset of C++ so node-gyp builds it with
// no extra dependency. Registered by addon.cc.
//
// JS surface (wrapped by src/io/tun-linux.ts, which documents the contract):
//   open(name, buf: ArrayBuffer, meta: Uint32Array, maxBatch, onBatch(count), onClosed(errno),
//        offload: boolean)
//        -> { handle, name, offloads }  packets are packed back to back; meta[i] is the start of
//                                  packet i and meta[count] the end of the last one. With
//                                  offload, the TUN is opened with IFF_VNET_HDR and TUNSETOFFLOAD
//                                  (CSUM, TSO4/6, USO4/6 where the kernel takes them): every
//                                  packet read starts with a 10-byte virtio_net_hdr and every
//                                  write must too. offloads: the TUN_F_* flags in effect, or -1
//                                  when no virtio header is used (the kernel refused or !offload).
//   write(handle, u8, offset, length) -> bytes written, or -errno (EAGAIN = dropped)
//   writeBatch(handle, u8, spec: Uint32Array, count, result: Int32Array) -> void: `count` writev
//        calls; spec per write is [iovCount, off0, len0, ...] into u8 (at most 64 iovecs);
//        result = [written, dropped (EAGAIN), errors, last errno]
//   getMtu(handle) / setMtu(handle, mtu) / name(handle) / close(handle)
// Errors thrown carry .code (ENOENT, EPERM, EBUSY, ENAMETOOLONG, ...) and .errno.

#include <node_api.h>
#include <uv.h>

#include "napi-util.h"

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
#include <sys/uio.h>
#include <unistd.h>

#ifndef TUNGETDEVNETNS
#define TUNGETDEVNETNS _IO('T', 227)
#endif

// Largest packet a TUN can hand us (IPv4/IPv6 without jumbograms, MTU is capped at 65535),
// plus room for a virtio_net_hdr (10 bytes) when offloads are on.
static const size_t kMaxPacket = 65535;
static const size_t kVnetHdrLen = 10;
static const size_t kMaxRead = kMaxPacket + kVnetHdrLen;
static const int kMaxIov = 64;

// The JS values a Tun keeps alive while open (Lifecycle slots).
enum TunSlot { kTunBuf, kTunMeta, kTunOnBatch, kTunOnClosed, kTunSlots };

struct Tun {
  Lifecycle life;  // first member: see napi-util.h
  int fd;
  int ctl_fd;        // AF_INET datagram socket for SIOC[GS]IFMTU, in the device's netns
  uv_poll_t poll;
  bool polling;       // uv_poll_init succeeded: the handle must be uv_close'd
  uint8_t* buf;
  size_t buf_len;
  uint32_t* meta;
  size_t meta_len;   // entries in meta (>= max_batch + 1)
  uint32_t max_batch;
  size_t max_read;   // kMaxRead with a virtio header, kMaxPacket without
};

static Tun* get_tun(napi_env env, napi_value value) {
  return reinterpret_cast<Tun*>(lifecycle_unwrap(env, value, "expected a TUN handle"));
}

static bool tun_closed(const Tun* t) { return t->life.released; }

// Lifecycle stop_io: stops polling and closes the fds.
static void tun_stop_io(Lifecycle* l) {
  Tun* t = reinterpret_cast<Tun*>(l);
  if (t->polling) lifecycle_close_poll(l, &t->poll);
  t->polling = false;
  close(t->fd);
  t->fd = -1;
  if (t->ctl_fd >= 0) close(t->ctl_fd);
  t->ctl_fd = -1;
}

static void tun_destroy(Lifecycle* l) { free(reinterpret_cast<Tun*>(l)); }

// The device went away (ip link del) or the fd broke: stop polling, close, tell JS once.
// Called from a libuv callback, so it opens its own handle scope.
static void report_closed(Tun* t, int err) {
  if (tun_closed(t)) return;
  napi_env env = t->life.env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value cb = lifecycle_ref(&t->life, kTunOnClosed);
  lifecycle_release(&t->life);  // cb stays alive: it is held by this scope
  if (cb != NULL) {
    napi_value arg;
    napi_create_int32(env, err, &arg);
    call_js(env, t->life.async_ctx, cb, 1, &arg);
  }
  lifecycle_close(&t->life);
  napi_close_handle_scope(env, scope);
}

static void on_readable(uv_poll_t* handle, int status, int events) {
  Tun* t = static_cast<Tun*>(handle->data);
  if (tun_closed(t)) return;
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
  while (count < t->max_batch && t->buf_len - off >= t->max_read) {
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
    napi_env env = t->life.env;
    napi_handle_scope scope;
    napi_open_handle_scope(env, &scope);
    napi_value arg, fn = lifecycle_ref(&t->life, kTunOnBatch);
    napi_create_uint32(env, count, &arg);
    if (fn != NULL) call_js(env, t->life.async_ctx, fn, 1, &arg);
    napi_close_handle_scope(env, scope);
  }
  if (fatal != 0 && !tun_closed(t)) report_closed(t, fatal);
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
  size_t argc = 7;
  napi_value argv[7];
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
  if (max_batch == 0 || meta_len < static_cast<size_t>(max_batch) + 1 || buf_len < kMaxRead) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE",
                           "expected maxBatch >= 1, meta.length > maxBatch, buffer >= 65545 bytes");
    return NULL;
  }
  bool want_offload = false;
  if (argc >= 7) napi_get_value_bool(env, argv[6], &want_offload);

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
  if (want_offload) {
    unsigned int features = 0;
    if (ioctl(fd, TUNGETFEATURES, &features) == 0 && (features & IFF_VNET_HDR) != 0)
      ifr.ifr_flags |= IFF_VNET_HDR;
  }
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

  // Offloads: checksum + TSO always together (the kernel needs CSUM for TSO), USO where the
  // kernel has it (6.2+); with none accepted the TUN is reopened without a virtio header.
  int offloads = -1;
  if (ifr.ifr_flags & IFF_VNET_HDR) {
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#define TUN_F_USO6 0x40
#endif
    const unsigned int tries[] = {TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_USO4 | TUN_F_USO6,
                                  TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6};
    for (unsigned int i = 0; i < sizeof tries / sizeof tries[0]; i++) {
      if (ioctl(fd, TUNSETOFFLOAD, tries[i]) == 0) {
        offloads = static_cast<int>(tries[i]);
        break;
      }
    }
    if (offloads < 0) {
      // Keep the header (it cannot be taken back on this fd) but ask for no offload: the kernel
      // then sends only plain packets behind a zero header, which JS handles the same way.
      if (ioctl(fd, TUNSETOFFLOAD, 0) == 0) offloads = 0;
    }
    if (offloads < 0) offloads = 0;
  }

  Tun* t = static_cast<Tun*>(calloc(1, sizeof(Tun)));
  if (t == NULL) {
    close(fd);
    throw_errno(env, ENOMEM, "allocating TUN state");
    return NULL;
  }
  t->fd = fd;
  t->ctl_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  t->buf = static_cast<uint8_t*>(buf);
  t->buf_len = buf_len;
  t->meta = static_cast<uint32_t*>(meta);
  t->meta_len = meta_len;
  t->max_batch = max_batch;
  t->max_read = (ifr.ifr_flags & IFF_VNET_HDR) ? kMaxRead : kMaxPacket;
  napi_value slots[kTunSlots];
  slots[kTunBuf] = argv[1];
  slots[kTunMeta] = argv[2];
  slots[kTunOnBatch] = argv[4];
  slots[kTunOnClosed] = argv[5];
  lifecycle_init(&t->life, env, "PlexdTun", slots, kTunSlots, tun_stop_io, tun_destroy);
  napi_value external = lifecycle_wrap(&t->life);
  if (external == NULL) return NULL;

  uv_loop_t* loop = NULL;
  int rc = napi_get_uv_event_loop(env, &loop) == napi_ok ? 0 : -1;
  if (rc == 0) rc = uv_poll_init(loop, &t->poll, fd);
  if (rc == 0) {
    t->poll.data = t;
    t->polling = true;
    rc = uv_poll_start(&t->poll, UV_READABLE | UV_DISCONNECT, on_readable);
  }
  if (rc != 0) {
    lifecycle_close(&t->life);
    throw_errno(env, rc < 0 ? -rc : EIO, "uv_poll on the TUN fd");
    return NULL;
  }

  napi_value result, real_name;
  CHECK_NAPI(env, napi_create_object(env, &result));
  CHECK_NAPI(env, napi_create_string_utf8(env, ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ),
                                          &real_name));
  CHECK_NAPI(env, napi_set_named_property(env, result, "handle", external));
  CHECK_NAPI(env, napi_set_named_property(env, result, "name", real_name));
  napi_value off_value;
  CHECK_NAPI(env, napi_create_int32(env, offloads, &off_value));
  CHECK_NAPI(env, napi_set_named_property(env, result, "offloads", off_value));
  return result;
}

static napi_value js_write_batch(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "expected (handle, buf, spec, count, result)");
    return NULL;
  }
  Tun* t = get_tun(env, argv[0]);
  if (t == NULL) return NULL;
  napi_typedarray_type type;
  size_t length = 0, spec_len = 0, res_len = 0;
  void *data = NULL, *spec_data = NULL, *res_data = NULL;
  if (napi_get_typedarray_info(env, argv[1], &type, &length, &data, NULL, NULL) != napi_ok ||
      type != napi_uint8_array ||
      napi_get_typedarray_info(env, argv[2], &type, &spec_len, &spec_data, NULL, NULL) != napi_ok ||
      type != napi_uint32_array ||
      napi_get_typedarray_info(env, argv[4], &type, &res_len, &res_data, NULL, NULL) != napi_ok ||
      type != napi_int32_array || res_len < 4) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE",
                          "expected buf: Uint8Array, spec: Uint32Array, result: Int32Array(4)");
    return NULL;
  }
  uint32_t count = 0;
  CHECK_NAPI(env, napi_get_value_uint32(env, argv[3], &count));
  const uint32_t* spec = static_cast<const uint32_t*>(spec_data);
  int32_t* res = static_cast<int32_t*>(res_data);
  res[0] = res[1] = res[2] = res[3] = 0;
  uint8_t* base = static_cast<uint8_t*>(data);
  struct iovec iov[kMaxIov];
  size_t s = 0;
  for (uint32_t i = 0; i < count; i++) {
    if (s >= spec_len) break;
    uint32_t n = spec[s++];
    if (n == 0 || n > static_cast<uint32_t>(kMaxIov) || s + 2 * static_cast<size_t>(n) > spec_len) {
      napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "malformed writeBatch spec");
      return NULL;
    }
    for (uint32_t k = 0; k < n; k++) {
      uint32_t off = spec[s++], len = spec[s++];
      if (static_cast<size_t>(off) + len > length) {
        napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "writeBatch iovec outside the buffer");
        return NULL;
      }
      iov[k].iov_base = base + off;
      iov[k].iov_len = len;
    }
    if (tun_closed(t)) {
      res[2]++;
      res[3] = EBADF;
      continue;
    }
    ssize_t w;
    do {
      w = writev(t->fd, iov, static_cast<int>(n));
    } while (w < 0 && errno == EINTR);
    if (w >= 0) {
      res[0]++;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      res[1]++;
    } else {
      res[2]++;
      res[3] = errno;
    }
  }
  return NULL;
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
  if (tun_closed(t)) {
    ret = -EBADF;
  } else {
    ssize_t n;
    if (t->max_read == kMaxRead) {
      // A virtio header is expected in front: an all-zero one (no offload, checksum complete).
      static const uint8_t zero_hdr[kVnetHdrLen] = {0};
      struct iovec iov[2] = {{const_cast<uint8_t*>(zero_hdr), kVnetHdrLen},
                             {static_cast<uint8_t*>(data) + off, len}};
      do {
        n = writev(t->fd, iov, 2);
      } while (n < 0 && errno == EINTR);
      if (n >= static_cast<ssize_t>(kVnetHdrLen)) n -= kVnetHdrLen;
    } else {
      do {
        n = write(t->fd, static_cast<uint8_t*>(data) + off, len);
      } while (n < 0 && errno == EINTR);
    }
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
  if (tun_closed(t)) {
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
  if (tun_closed(t)) {
    throw_errno(env, EBADF, "TUN is closed");
    return NULL;
  }
  int err = mtu_ioctl(t, SIOCSIFMTU, &mtu);
  if (err != 0) {
    throw_errno_admin(env, err, "SIOCSIFMTU");
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
  int err = tun_closed(t) ? EBADF : current_ifreq(t, &ifr);
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
  lifecycle_close(&t->life);
  return NULL;
}

#endif

void plexd_tun_register(napi_env env, napi_value exports) {
  const NativeExport fns[] = {
      {"open", LINUX_ONLY(js_open)},     {"write", LINUX_ONLY(js_write)},
      {"writeBatch", LINUX_ONLY(js_write_batch)},
      {"getMtu", LINUX_ONLY(js_get_mtu)}, {"setMtu", LINUX_ONLY(js_set_mtu)},
      {"name", LINUX_ONLY(js_name)},     {"close", LINUX_ONLY(js_close)}};
  export_functions(env, exports, fns, sizeof fns / sizeof fns[0],
                   "TUN devices are only supported on Linux");
}
