// plexd_native: the only native code in plexd-userspace, one N-API addon (loaded by
// src/io/native.ts) with three parts: the TUN device (tun.cc), the batched UDP bind (udp.cc)
// and, here, the module entry point plus two socket options node:dgram lacks. Plain N-API and
// libuv in the C subset of C++, so node-gyp builds it with no extra dependency; off Linux every
// entry point exists and throws ENOTSUP.
//
// JS surface (besides tun.cc's and udp.cc's):
//   setSocketMark(fd, mark)        SO_MARK on a node:dgram socket (fwmark)
//   forceSocketBuffers(fd, bytes)  SO_RCVBUFFORCE + SO_SNDBUFFORCE (root: beyond rmem_max)
// Errors thrown carry .code (EPERM, EBADF, ...) and .errno.

#include <node_api.h>

#include "napi-util.h"

// native/tun.cc: open, write, getMtu, setMtu, name, close.
void plexd_tun_register(napi_env env, napi_value exports);
// native/udp.cc: udpOpen, udpFlush, udpSetMark, udpBufferSizes, udpClose.
void plexd_udp_register(napi_env env, napi_value exports);

#ifdef __linux__
#include <errno.h>
#include <sys/socket.h>

static napi_value js_set_socket_mark(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd = -1;
  uint32_t mark = 0;
  CHECK_NAPI(env, napi_get_value_int32(env, argv[0], &fd));
  CHECK_NAPI(env, napi_get_value_uint32(env, argv[1], &mark));
  if (setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof mark) != 0) {
    throw_errno_admin(env, errno, "SO_MARK");
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

#endif

static napi_value init(napi_env env, napi_value exports) {
  const NativeExport fns[] = {{"setSocketMark", LINUX_ONLY(js_set_socket_mark)},
                              {"forceSocketBuffers", LINUX_ONLY(js_force_socket_buffers)}};
  export_functions(env, exports, fns, sizeof fns / sizeof fns[0],
                   "socket options (SO_MARK, SO_RCVBUFFORCE) need Linux");
  plexd_tun_register(env, exports);
  plexd_udp_register(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
