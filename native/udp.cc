// The batched UDP bind (wrapped by src/io/bind-native.ts, which documents the contract): one
// IPv4 and one IPv6 (IPV6_V6ONLY) datagram socket on the same port, created here so that a
// readable wakeup drains up to maxBatch datagrams with one recvmmsg into a JS-owned buffer and
// calls JS once, and a JS batch of sends leaves with one sendmmsg per run of one family.
// wireguard-go's StdNetBind (same port for both families, large forced buffers) is the
// behavioural reference; Linux only (recvmmsg/sendmmsg), stubs elsewhere.
//
// JS surface:
//   udpOpen(v4addr|null, v6addr|null, port, bufferBytes, arrays) -> { handle, port, v4, v6 }
//       arrays = { rxBuf: Uint8Array (maxBatch * slotSize), slotSize, rxMeta: Uint32Array
//       (3 * maxBatch), rxAddr: Uint8Array (16 * maxBatch), maxBatch, onBatch(count),
//       txBuf: Uint8Array, txMeta: Uint32Array (3 * maxTx), txAddr: Uint8Array (16 * maxTx), maxTx }
//       meta entry i = [offset in buf, length, port | family << 16], family 4 or 6; the address
//       is in addr[16 i ..] (4 bytes for IPv4). Throws errno errors (EADDRINUSE, ...) with
//       .family = 4 | 6 naming the socket that failed.
//       arrays.gso (optional, default true): send trains of equal-size datagrams to one destination
//       as one UDP_SEGMENT (GSO) message when the kernel supports it (getsockopt UDP_SEGMENT);
//       a kernel that refuses one (EIO) turns it off for good; a train whose segments the route's
//       MTU cannot carry unfragmented (EINVAL, EMSGSIZE) goes out datagram by datagram.
//       arrays.gro (optional, default true): UDP_GRO on receive on kernels 5.12+ (wireguard-go's
//       cut-off: earlier GRO had bugs): one read may then hold a train of datagrams from one
//       source, which is split here into one rx entry each; rxMeta/rxAddr may hold more entries
//       than maxBatch (their length decides; the batch reports entries, not reads).
//   udpFlush(handle, count) -> datagrams the kernel took (the rest were refused: dropped)
//   udpSetMark(handle, mark)  SO_MARK on both sockets (EPERM without CAP_NET_ADMIN)
//   udpBufferSizes(handle) -> [SO_RCVBUF, SO_SNDBUF] of the first socket
//   udpClose(handle)

#include <node_api.h>
#include <uv.h>

#include "napi-util.h"

#ifdef __linux__
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
static const size_t kGroCmsgSpace = CMSG_SPACE(sizeof(int));
static const int kRandomPortAttempts = 16;
// One GSO message: at most 64 segments (the kernel's UDP_MAX_SEGMENTS) and a 64 KiB payload.
static const uint32_t kGsoMaxSegments = 64;
static const size_t kGsoMaxBytes = 65000;
static const size_t kCmsgSpace = CMSG_SPACE(sizeof(uint16_t));
// How long a flush waits for room in a full socket send buffer before dropping the rest; the
// JS thread blocks meanwhile, as wireguard-go's writer goroutine would.
static const int kSendWaitMs = 2;

// The JS values a Udp keeps alive while open (Lifecycle slots).
enum UdpSlot { kRxBuf, kRxMeta, kRxAddr, kTxBuf, kTxMeta, kTxAddr, kOnBatch, kUdpSlots };

struct Udp {
  Lifecycle life;  // first member: see napi-util.h
  int fd[2];  // [0] IPv4, [1] IPv6; -1 when that family is off
  uv_poll_t poll[2];
  bool polling[2];
  uint8_t* rx_buf;
  uint32_t* rx_meta;
  uint8_t* rx_addr;
  uint32_t slot_size;
  uint32_t max_batch;
  uint8_t* tx_buf;
  size_t tx_buf_len;
  uint32_t* tx_meta;
  uint8_t* tx_addr;
  uint32_t max_tx;
  // recvmmsg / sendmmsg scratch, max(maxBatch, maxTx) entries
  struct mmsghdr* msgs;
  struct iovec* iovs;
  struct sockaddr_storage* names;
  // GSO send scratch (same entry count): per-entry family, messages, their control data and
  // segment counts.
  bool gso;
  bool gro;
  uint32_t rx_entries;  // capacity of rx_meta / rx_addr in entries (>= max_batch)
  uint8_t* rx_cmsgs;    // max_batch * kGroCmsgSpace
  int8_t* fams;
  socklen_t* namelens;
  struct mmsghdr* gmsgs;
  uint8_t* cmsgs;
  uint32_t* segs;
};

// True when the running kernel's release is at least major.minor (uname; "6.1.0-13-amd64").
static bool kernel_at_least(int major, int minor) {
  struct utsname un;
  if (uname(&un) != 0) return false;
  int ma = 0, mi = 0;
  if (sscanf(un.release, "%d.%d", &ma, &mi) != 2) return false;
  return ma > major || (ma == major && mi >= minor);
}

static bool udp_closed(const Udp* u) { return u->life.released; }

// Lifecycle stop_io: stops polling and closes the sockets.
static void udp_stop_io(Lifecycle* l) {
  Udp* u = reinterpret_cast<Udp*>(l);
  for (int i = 0; i < 2; i++) {
    if (u->polling[i]) lifecycle_close_poll(l, &u->poll[i]);
    u->polling[i] = false;
    if (u->fd[i] >= 0) close(u->fd[i]);
    u->fd[i] = -1;
  }
}

// Frees a bind state and every buffer it owns (any of them may be NULL: a failed create).
static void udp_free(Udp* u) {
  free(u->msgs);
  free(u->iovs);
  free(u->names);
  free(u->fams);
  free(u->namelens);
  free(u->gmsgs);
  free(u->cmsgs);
  free(u->segs);
  free(u->rx_cmsgs);
  free(u);
}

static void udp_destroy(Lifecycle* l) { udp_free(reinterpret_cast<Udp*>(l)); }

static Udp* get_udp(napi_env env, napi_value value) {
  return reinterpret_cast<Udp*>(lifecycle_unwrap(env, value, "expected a UDP bind handle"));
}

// Writes a received source address into the JS meta/addr arrays; false for other families.
static bool store_source(const struct sockaddr_storage* ss, uint32_t* meta, uint8_t* addr) {
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in* sin = reinterpret_cast<const struct sockaddr_in*>(ss);
    memcpy(addr, &sin->sin_addr, 4);
    meta[2] = ntohs(sin->sin_port) | (4u << 16);
    return true;
  }
  if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6* sin6 = reinterpret_cast<const struct sockaddr_in6*>(ss);
    memcpy(addr, &sin6->sin6_addr, 16);
    meta[2] = ntohs(sin6->sin6_port) | (6u << 16);
    return true;
  }
  return false;
}

// Readable: one recvmmsg of up to maxBatch datagrams, then one JS call. More waiting data makes
// the (level-triggered) poll fire again on the next loop turn, so the TUN gets its turn too.
static void on_udp_readable(uv_poll_t* handle, int status, int events) {
  (void)events;
  Udp* u = static_cast<Udp*>(handle->data);
  if (udp_closed(u)) return;
  int fd = u->fd[handle == &u->poll[0] ? 0 : 1];
  if (status < 0) {
    // A pending socket error (e.g. an ICMP report): reading SO_ERROR clears it.
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    return;
  }
  for (uint32_t i = 0; i < u->max_batch; i++) {
    u->iovs[i].iov_base = u->rx_buf + static_cast<size_t>(i) * u->slot_size;
    u->iovs[i].iov_len = u->slot_size;
    struct msghdr* h = &u->msgs[i].msg_hdr;
    memset(h, 0, sizeof *h);
    h->msg_name = &u->names[i];
    h->msg_namelen = sizeof u->names[i];
    h->msg_iov = &u->iovs[i];
    h->msg_iovlen = 1;
    if (u->gro) {
      h->msg_control = u->rx_cmsgs + static_cast<size_t>(i) * kGroCmsgSpace;
      h->msg_controllen = kGroCmsgSpace;
    }
  }
  int n;
  do {
    n = recvmmsg(fd, u->msgs, u->max_batch, MSG_DONTWAIT, NULL);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return;  // EAGAIN (spurious wakeup) or an error the next read reports again
  uint32_t count = 0;
  for (int i = 0; i < n; i++) {
    struct msghdr* h = &u->msgs[i].msg_hdr;
    if (h->msg_flags & MSG_TRUNC) continue;  // larger than a slot: dropped
    uint32_t len = u->msgs[i].msg_len;
    // A GRO train: the kernel says the segment size; every segment but the last has it.
    uint32_t seg = len;
    if (u->gro && h->msg_controllen > 0) {
      for (struct cmsghdr* c = CMSG_FIRSTHDR(h); c != NULL; c = CMSG_NXTHDR(h, c)) {
        if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
          int g = 0;
          memcpy(&g, CMSG_DATA(c), sizeof g);
          if (g > 0 && static_cast<uint32_t>(g) < len) seg = static_cast<uint32_t>(g);
        }
      }
    }
    uint32_t base = static_cast<uint32_t>(i) * u->slot_size;
    for (uint32_t off = 0; off < len || (len == 0 && off == 0); off += seg) {
      if (count >= u->rx_entries) break;  // more than the arrays hold: the rest is dropped
      uint32_t* meta = u->rx_meta + 3 * count;
      if (!store_source(&u->names[i], meta, u->rx_addr + 16 * count)) break;
      meta[0] = base + off;
      meta[1] = len - off < seg ? len - off : seg;
      count++;
      if (len == 0) break;
    }
  }
  if (count == 0) return;
  napi_env env = u->life.env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value arg, fn = lifecycle_ref(&u->life, kOnBatch);
  napi_create_uint32(env, count, &arg);
  if (fn != NULL) call_js(env, u->life.async_ctx, fn, 1, &arg);
  napi_close_handle_scope(env, scope);
}

// Fills a sockaddr from tx entry i; returns the family index (0 IPv4, 1 IPv6) or -1.
static int tx_destination(Udp* u, uint32_t i, struct sockaddr_storage* ss, socklen_t* len) {
  uint32_t word = u->tx_meta[3 * i + 2];
  uint16_t port = static_cast<uint16_t>(word & 0xffff);
  uint32_t family = word >> 16;
  memset(ss, 0, sizeof *ss);
  if (family == 4) {
    struct sockaddr_in* sin = reinterpret_cast<struct sockaddr_in*>(ss);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    memcpy(&sin->sin_addr, u->tx_addr + 16 * i, 4);
    *len = sizeof *sin;
    return 0;
  }
  if (family == 6) {
    struct sockaddr_in6* sin6 = reinterpret_cast<struct sockaddr_in6*>(ss);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    memcpy(&sin6->sin6_addr, u->tx_addr + 16 * i, 16);
    *len = sizeof *sin6;
    return 1;
  }
  return -1;
}

// Sends messages [0, m) (built by js_udp_flush, one family) on fd; returns the datagrams
// (segments) the kernel took. Per-message errors (EMSGSIZE, unreachable, a firewall's EPERM)
// skip that message; a full send buffer waits kSendWaitMs once for room, then drops the rest; EIO on a multi-segment
// message means the kernel cannot segment here: GSO is turned off (that train is dropped).
// EINVAL/EMSGSIZE on one means a segment plus headers exceeds the route's MTU, which GSO never
// fragments (say an underlay MTU below the tunnel MTU + 80): that train is sent one datagram at
// a time, which the kernel fragments as for any datagram, instead of being lost (a TCP stall).
static uint32_t send_gso_run(Udp* u, int fd, uint32_t m) {
  uint32_t sent = 0;
  bool waited = false;
  uint32_t i = 0;
  while (i < m) {
    int n = sendmmsg(fd, u->gmsgs + i, m - i, MSG_DONTWAIT);
    if (n > 0) {
      for (int k = 0; k < n; k++) sent += u->segs[i + k];
      i += static_cast<uint32_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
      if (waited) break;
      waited = true;
      struct pollfd pfd = {fd, POLLOUT, 0};
      poll(&pfd, 1, kSendWaitMs);
      continue;
    }
    if (n < 0 && errno == EIO && u->segs[i] > 1) u->gso = false;
    if (n < 0 && (errno == EINVAL || errno == EMSGSIZE) && u->segs[i] > 1) {
      struct msghdr one = u->gmsgs[i].msg_hdr;
      one.msg_control = NULL;
      one.msg_controllen = 0;
      one.msg_iovlen = 1;
      for (size_t s = 0; s < u->gmsgs[i].msg_hdr.msg_iovlen; s++) {
        one.msg_iov = &u->gmsgs[i].msg_hdr.msg_iov[s];
        if (sendmsg(fd, &one, MSG_DONTWAIT) >= 0) sent++;
      }
    }
    i++;
  }
  return sent;
}

static napi_value js_udp_flush(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Udp* u = get_udp(env, argv[0]);
  if (u == NULL) return NULL;
  uint32_t count = 0;
  CHECK_NAPI(env, napi_get_value_uint32(env, argv[1], &count));
  if (count > u->max_tx) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "expected count <= maxTx");
    return NULL;
  }
  uint32_t sent = 0;
  if (!udp_closed(u)) {
    for (uint32_t i = 0; i < count; i++) {
      socklen_t len = 0;
      int family = tx_destination(u, i, &u->names[i], &len);
      uint32_t off = u->tx_meta[3 * i], size = u->tx_meta[3 * i + 1];
      if (static_cast<size_t>(off) + size > u->tx_buf_len) family = -1;
      if (family >= 0 && u->fd[family] < 0) family = -1;
      u->fams[i] = static_cast<int8_t>(family);
      u->namelens[i] = len;
      u->iovs[i].iov_base = u->tx_buf + off;
      u->iovs[i].iov_len = size;
    }
    uint32_t i = 0;
    while (i < count) {
      int family = u->fams[i];
      if (family < 0) {
        i++;
        continue;
      }
      // One run of this family: entries become messages; with GSO a train of equal-size
      // datagrams to one destination (a shorter last one allowed) is one message.
      uint32_t m = 0, j = i;
      while (j < count && u->fams[j] == family) {
        size_t size = u->iovs[j].iov_len, total = size;
        uint32_t k = j + 1;
        if (u->gso) {
          while (k < count && k - j < kGsoMaxSegments && u->fams[k] == family &&
                 u->iovs[k - 1].iov_len == size && u->iovs[k].iov_len <= size &&
                 u->iovs[k].iov_len > 0 && total + u->iovs[k].iov_len <= kGsoMaxBytes &&
                 u->namelens[k] == u->namelens[j] &&
                 memcmp(&u->names[k], &u->names[j], u->namelens[j]) == 0) {
            total += u->iovs[k].iov_len;
            k++;
          }
        }
        struct msghdr* h = &u->gmsgs[m].msg_hdr;
        memset(h, 0, sizeof *h);
        h->msg_name = &u->names[j];
        h->msg_namelen = u->namelens[j];
        h->msg_iov = &u->iovs[j];
        h->msg_iovlen = k - j;
        if (k - j > 1) {
          uint8_t* control = u->cmsgs + static_cast<size_t>(m) * kCmsgSpace;
          memset(control, 0, kCmsgSpace);
          h->msg_control = control;
          h->msg_controllen = kCmsgSpace;
          struct cmsghdr* c = CMSG_FIRSTHDR(h);
          c->cmsg_level = SOL_UDP;
          c->cmsg_type = UDP_SEGMENT;
          c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
          uint16_t seg = static_cast<uint16_t>(size);
          memcpy(CMSG_DATA(c), &seg, sizeof seg);
        }
        u->segs[m] = k - j;
        m++;
        j = k;
      }
      sent += send_gso_run(u, u->fd[family], m);
      i = j;
    }
  }
  napi_value result;
  CHECK_NAPI(env, napi_create_uint32(env, sent, &result));
  return result;
}

static void set_buffers(int fd, int bytes) {
  if (bytes <= 0) return;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes) != 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof bytes) != 0)
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
}

// Creates and binds one socket; returns the fd or -errno.
static int bind_socket(int family, const char* text, uint16_t port, int bytes) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  socklen_t len;
  if (family == AF_INET) {
    struct sockaddr_in* sin = reinterpret_cast<struct sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    if (inet_pton(AF_INET, text, &sin->sin_addr) != 1) return -EINVAL;
    len = sizeof *sin;
  } else {
    struct sockaddr_in6* sin6 = reinterpret_cast<struct sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    if (inet_pton(AF_INET6, text, &sin6->sin6_addr) != 1) return -EINVAL;
    len = sizeof *sin6;
  }
  int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int one = 1;
  if (family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (bind(fd, reinterpret_cast<struct sockaddr*>(&ss), len) != 0) {
    int err = errno;
    close(fd);
    return -err;
  }
  set_buffers(fd, bytes);
  return fd;
}

static uint16_t bound_port(int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<struct sockaddr*>(&ss), &len) != 0) return 0;
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<struct sockaddr_in*>(&ss)->sin_port);
  return ntohs(reinterpret_cast<struct sockaddr_in6*>(&ss)->sin6_port);
}

static bool family_unavailable(int err) {
  return err == EAFNOSUPPORT || err == EADDRNOTAVAIL || err == EPROTONOSUPPORT;
}

static void throw_bind_errno(napi_env env, int err, int family, const char* text, uint16_t port) {
  char message[200];
  snprintf(message, sizeof message, "cannot bind udp%d %s%s%s:%u", family, family == 6 ? "[" : "",
           text, family == 6 ? "]" : "", port);
  throw_errno(env, err, message);
  napi_value exc, fam;
  napi_get_and_clear_last_exception(env, &exc);
  napi_create_int32(env, family, &fam);
  napi_set_named_property(env, exc, "family", fam);
  napi_throw(env, exc);
}

// Binds the pair like wireguard-go: port 0 takes a free IPv4 port and the same number for IPv6,
// retrying when that IPv6 port is taken; a machine without one family runs the other alone.
// Returns false with a pending exception.
static bool bind_pair(napi_env env, const char* v4, const char* v6, uint16_t port, int bytes,
                      int fds[2], uint16_t* chosen) {
  int attempts = port == 0 ? kRandomPortAttempts : 1;
  int last_err = EADDRINUSE;
  for (int a = 0; a < attempts; a++) {
    fds[0] = fds[1] = -1;
    uint16_t p = port;
    if (v4 != NULL) {
      int r = bind_socket(AF_INET, v4, p, bytes);
      if (r < 0 && !(family_unavailable(-r) && v6 != NULL)) {
        throw_bind_errno(env, -r, 4, v4, p);
        return false;
      }
      if (r >= 0) {
        fds[0] = r;
        p = bound_port(r);
      }
    }
    if (v6 != NULL) {
      int r = bind_socket(AF_INET6, v6, p, bytes);
      if (r >= 0) {
        fds[1] = r;
        p = bound_port(r);
      } else if (fds[0] >= 0 && family_unavailable(-r)) {
        // no IPv6 here: IPv4 only
      } else {
        if (fds[0] >= 0) close(fds[0]);
        fds[0] = -1;
        last_err = -r;
        if (port == 0 && v4 != NULL && -r == EADDRINUSE) continue;
        throw_bind_errno(env, -r, 6, v6, p);
        return false;
      }
    }
    if (fds[0] < 0 && fds[1] < 0) {
      throw_bind_errno(env, EAFNOSUPPORT, 4, v4 != NULL ? v4 : "-", p);
      return false;
    }
    *chosen = p;
    return true;
  }
  throw_bind_errno(env, last_err, 6, v6, 0);
  return false;
}

// Reads a typed array property of `obj`; false with a pending TypeError.
static bool typed_prop(napi_env env, napi_value obj, const char* name, napi_typedarray_type want,
                       void** data, size_t* length, napi_value* value) {
  napi_typedarray_type type;
  bool is_ta = false;
  if (napi_get_named_property(env, obj, name, value) == napi_ok &&
      napi_is_typedarray(env, *value, &is_ta) == napi_ok && is_ta &&
      napi_get_typedarray_info(env, *value, &type, length, data, NULL, NULL) == napi_ok &&
      type == want)
    return true;
  char message[120];
  snprintf(message, sizeof message, "expected arrays.%s to be a %s", name,
           want == napi_uint8_array ? "Uint8Array" : "Uint32Array");
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
  return false;
}

static bool uint_prop(napi_env env, napi_value obj, const char* name, uint32_t* out) {
  napi_value v;
  if (napi_get_named_property(env, obj, name, &v) == napi_ok &&
      napi_get_value_uint32(env, v, out) == napi_ok)
    return true;
  char message[120];
  snprintf(message, sizeof message, "expected arrays.%s to be a number", name);
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
  return false;
}

// Reads an optional address string (null/undefined: that family is off) into out.
static bool address_arg(napi_env env, napi_value v, char* out, size_t cap, bool* present) {
  napi_valuetype type;
  napi_typeof(env, v, &type);
  *present = false;
  if (type == napi_null || type == napi_undefined) return true;
  size_t len = 0;
  if (type != napi_string || napi_get_value_string_utf8(env, v, out, cap, &len) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "expected an address string or null");
    return false;
  }
  *present = true;
  return true;
}

static napi_value js_udp_open(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE",
                          "expected (v4address, v6address, port, bufferBytes, arrays)");
    return NULL;
  }
  char v4[INET6_ADDRSTRLEN + 1], v6[INET6_ADDRSTRLEN + 1];
  bool has_v4, has_v6;
  if (!address_arg(env, argv[0], v4, sizeof v4, &has_v4)) return NULL;
  if (!address_arg(env, argv[1], v6, sizeof v6, &has_v6)) return NULL;
  uint32_t port = 0;
  int32_t bytes = 0;
  CHECK_NAPI(env, napi_get_value_uint32(env, argv[2], &port));
  CHECK_NAPI(env, napi_get_value_int32(env, argv[3], &bytes));
  napi_value arrays = argv[4];
  void *rx_buf, *rx_meta, *rx_addr, *tx_buf, *tx_meta, *tx_addr;
  size_t rx_buf_len, rx_meta_len, rx_addr_len, tx_buf_len, tx_meta_len, tx_addr_len;
  napi_value values[kUdpSlots];
  uint32_t slot_size, max_batch, max_tx;
  if (!typed_prop(env, arrays, "rxBuf", napi_uint8_array, &rx_buf, &rx_buf_len, &values[kRxBuf]) ||
      !typed_prop(env, arrays, "rxMeta", napi_uint32_array, &rx_meta, &rx_meta_len, &values[kRxMeta]) ||
      !typed_prop(env, arrays, "rxAddr", napi_uint8_array, &rx_addr, &rx_addr_len, &values[kRxAddr]) ||
      !typed_prop(env, arrays, "txBuf", napi_uint8_array, &tx_buf, &tx_buf_len, &values[kTxBuf]) ||
      !typed_prop(env, arrays, "txMeta", napi_uint32_array, &tx_meta, &tx_meta_len, &values[kTxMeta]) ||
      !typed_prop(env, arrays, "txAddr", napi_uint8_array, &tx_addr, &tx_addr_len, &values[kTxAddr]) ||
      !uint_prop(env, arrays, "slotSize", &slot_size) ||
      !uint_prop(env, arrays, "maxBatch", &max_batch) || !uint_prop(env, arrays, "maxTx", &max_tx))
    return NULL;
  CHECK_NAPI(env, napi_get_named_property(env, arrays, "onBatch", &values[kOnBatch]));
  napi_valuetype fn_type;
  CHECK_NAPI(env, napi_typeof(env, values[kOnBatch], &fn_type));
  if (port > 65535 || max_batch == 0 || max_tx == 0 || slot_size == 0 || fn_type != napi_function ||
      rx_buf_len < static_cast<size_t>(max_batch) * slot_size || rx_meta_len < 3u * max_batch ||
      rx_addr_len < 16u * max_batch || tx_meta_len < 3u * max_tx || tx_addr_len < 16u * max_tx) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE",
                           "expected port <= 65535, onBatch a function and arrays sized for "
                           "maxBatch slots of slotSize and maxTx sends");
    return NULL;
  }
  if (!has_v4 && !has_v6) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "expected at least one address family");
    return NULL;
  }
  int fds[2];
  uint16_t chosen = 0;
  if (!bind_pair(env, has_v4 ? v4 : NULL, has_v6 ? v6 : NULL, static_cast<uint16_t>(port), bytes,
                 fds, &chosen))
    return NULL;

  Udp* u = static_cast<Udp*>(calloc(1, sizeof(Udp)));
  uint32_t scratch = max_batch > max_tx ? max_batch : max_tx;
  if (u != NULL) {
    u->msgs = static_cast<struct mmsghdr*>(calloc(scratch, sizeof(struct mmsghdr)));
    u->iovs = static_cast<struct iovec*>(calloc(scratch, sizeof(struct iovec)));
    u->names = static_cast<struct sockaddr_storage*>(calloc(scratch, sizeof(struct sockaddr_storage)));
    u->fams = static_cast<int8_t*>(calloc(scratch, sizeof(int8_t)));
    u->namelens = static_cast<socklen_t*>(calloc(scratch, sizeof(socklen_t)));
    u->gmsgs = static_cast<struct mmsghdr*>(calloc(scratch, sizeof(struct mmsghdr)));
    u->cmsgs = static_cast<uint8_t*>(calloc(scratch, kCmsgSpace));
    u->segs = static_cast<uint32_t*>(calloc(scratch, sizeof(uint32_t)));
    u->rx_cmsgs = static_cast<uint8_t*>(calloc(max_batch, kGroCmsgSpace));
  }
  if (u == NULL || u->msgs == NULL || u->iovs == NULL || u->names == NULL || u->fams == NULL ||
      u->namelens == NULL || u->gmsgs == NULL || u->cmsgs == NULL || u->segs == NULL || u->rx_cmsgs == NULL) {
    for (int i = 0; i < 2; i++)
      if (fds[i] >= 0) close(fds[i]);
    if (u != NULL) udp_free(u);
    throw_errno(env, ENOMEM, "allocating UDP bind state");
    return NULL;
  }
  u->fd[0] = fds[0];
  u->fd[1] = fds[1];
  u->rx_buf = static_cast<uint8_t*>(rx_buf);
  u->rx_meta = static_cast<uint32_t*>(rx_meta);
  u->rx_addr = static_cast<uint8_t*>(rx_addr);
  u->slot_size = slot_size;
  u->max_batch = max_batch;
  u->tx_buf = static_cast<uint8_t*>(tx_buf);
  u->tx_buf_len = tx_buf_len;
  u->tx_meta = static_cast<uint32_t*>(tx_meta);
  u->tx_addr = static_cast<uint8_t*>(tx_addr);
  u->max_tx = max_tx;
  // UDP GSO on send unless arrays.gso === false, when the kernel has it (4.18+): the option
  // reads back on a socket that supports it (wireguard-go's check).
  bool want_gso = true;
  napi_value gso_value;
  bool gso_flag = true;
  if (napi_get_named_property(env, arrays, "gso", &gso_value) == napi_ok &&
      napi_get_value_bool(env, gso_value, &gso_flag) == napi_ok)
    want_gso = gso_flag;
  if (want_gso) {
    int probe_fd = fds[0] >= 0 ? fds[0] : fds[1];
    int v = 0;
    socklen_t vlen = sizeof v;
    u->gso = probe_fd >= 0 && getsockopt(probe_fd, SOL_UDP, UDP_SEGMENT, &v, &vlen) == 0;
  }
  {
    size_t entries = rx_meta_len / 3;
    if (rx_addr_len / 16 < entries) entries = rx_addr_len / 16;
    u->rx_entries = static_cast<uint32_t>(entries);
  }
  // UDP GRO unless arrays.gro === false, on kernels 5.12+ only, where the socket takes it.
  bool want_gro = true;
  napi_value gro_value;
  bool gro_flag = true;
  if (napi_get_named_property(env, arrays, "gro", &gro_value) == napi_ok &&
      napi_get_value_bool(env, gro_value, &gro_flag) == napi_ok)
    want_gro = gro_flag;
  if (want_gro && kernel_at_least(5, 12) && u->rx_entries >= max_batch * 2) {
    int one = 1;
    bool ok = true;
    for (int i = 0; i < 2; i++)
      if (fds[i] >= 0 && setsockopt(fds[i], SOL_UDP, UDP_GRO, &one, sizeof one) != 0) ok = false;
    if (!ok) {
      int zero = 0;
      for (int i = 0; i < 2; i++)
        if (fds[i] >= 0) setsockopt(fds[i], SOL_UDP, UDP_GRO, &zero, sizeof zero);
    }
    u->gro = ok;
  }
  lifecycle_init(&u->life, env, "PlexdUdp", values, kUdpSlots, udp_stop_io, udp_destroy);
  napi_value external = lifecycle_wrap(&u->life);
  if (external == NULL) return NULL;
  uv_loop_t* loop = NULL;
  int rc = napi_get_uv_event_loop(env, &loop) == napi_ok ? 0 : -EIO;
  for (int i = 0; i < 2 && rc == 0; i++) {
    if (u->fd[i] < 0) continue;
    rc = uv_poll_init(loop, &u->poll[i], u->fd[i]);
    if (rc != 0) break;
    u->poll[i].data = u;
    u->polling[i] = true;
    rc = uv_poll_start(&u->poll[i], UV_READABLE, on_udp_readable);
  }
  if (rc != 0) {
    lifecycle_close(&u->life);
    throw_errno(env, -rc, "uv_poll on a UDP socket");
    return NULL;
  }
  napi_value result, v;
  CHECK_NAPI(env, napi_create_object(env, &result));
  CHECK_NAPI(env, napi_set_named_property(env, result, "handle", external));
  CHECK_NAPI(env, napi_get_boolean(env, u->gso, &v));
  CHECK_NAPI(env, napi_set_named_property(env, result, "gso", v));
  CHECK_NAPI(env, napi_get_boolean(env, u->gro, &v));
  CHECK_NAPI(env, napi_set_named_property(env, result, "gro", v));
  CHECK_NAPI(env, napi_create_uint32(env, chosen, &v));
  CHECK_NAPI(env, napi_set_named_property(env, result, "port", v));
  CHECK_NAPI(env, napi_get_boolean(env, u->fd[0] >= 0, &v));
  CHECK_NAPI(env, napi_set_named_property(env, result, "v4", v));
  CHECK_NAPI(env, napi_get_boolean(env, u->fd[1] >= 0, &v));
  CHECK_NAPI(env, napi_set_named_property(env, result, "v6", v));
  return result;
}

static napi_value js_udp_set_mark(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Udp* u = get_udp(env, argv[0]);
  if (u == NULL) return NULL;
  uint32_t mark = 0;
  CHECK_NAPI(env, napi_get_value_uint32(env, argv[1], &mark));
  for (int i = 0; i < 2; i++) {
    if (u->fd[i] >= 0 && setsockopt(u->fd[i], SOL_SOCKET, SO_MARK, &mark, sizeof mark) != 0) {
      throw_errno_admin(env, errno, "SO_MARK");
      return NULL;
    }
  }
  return NULL;
}

static napi_value js_udp_buffer_sizes(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Udp* u = get_udp(env, argv[0]);
  if (u == NULL) return NULL;
  int fd = u->fd[0] >= 0 ? u->fd[0] : u->fd[1];
  int sizes[2] = {0, 0};
  socklen_t len = sizeof sizes[0];
  if (fd >= 0) {
    getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sizes[0], &len);
    len = sizeof sizes[1];
    getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sizes[1], &len);
  }
  napi_value result, v;
  CHECK_NAPI(env, napi_create_array_with_length(env, 2, &result));
  for (uint32_t i = 0; i < 2; i++) {
    CHECK_NAPI(env, napi_create_int32(env, sizes[i], &v));
    CHECK_NAPI(env, napi_set_element(env, result, i, v));
  }
  return result;
}

static napi_value js_udp_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Udp* u = get_udp(env, argv[0]);
  if (u == NULL) return NULL;
  lifecycle_close(&u->life);
  return NULL;
}

#endif

void plexd_udp_register(napi_env env, napi_value exports) {
  const NativeExport fns[] = {{"udpOpen", LINUX_ONLY(js_udp_open)},
                              {"udpFlush", LINUX_ONLY(js_udp_flush)},
                              {"udpSetMark", LINUX_ONLY(js_udp_set_mark)},
                              {"udpBufferSizes", LINUX_ONLY(js_udp_buffer_sizes)},
                              {"udpClose", LINUX_ONLY(js_udp_close)}};
  export_functions(env, exports, fns, sizeof fns / sizeof fns[0],
                   "the native UDP bind needs Linux (recvmmsg/sendmmsg)");
}
