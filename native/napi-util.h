// Helpers shared by the addon's translation units (tun.cc, udp.cc): N-API status checks and
// errors that carry the errno name as .code and the number as .errno.
#ifndef PLEXD_NAPI_UTIL_H
#define PLEXD_NAPI_UTIL_H

#include <node_api.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#define CHECK_NAPI(env, call)                                   \
  do {                                                          \
    if ((call) != napi_ok) {                                    \
      const napi_extended_error_info* info_ = NULL;             \
      napi_get_last_error_info((env), &info_);                  \
      bool pending_ = false;                                    \
      napi_is_exception_pending((env), &pending_);              \
      if (!pending_)                                            \
        napi_throw_error((env), "ERR_NATIVE",                   \
                         info_ && info_->error_message          \
                             ? info_->error_message             \
                             : "N-API call failed");            \
      return NULL;                                              \
    }                                                           \
  } while (0)

static inline const char* errno_code(int err) {
  switch (err) {
    case ENOENT: return "ENOENT";
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case EINVAL: return "EINVAL";
    case ENODEV: return "ENODEV";
    case ENXIO: return "ENXIO";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case EBADF: return "EBADF";
#ifdef EBADFD  // Linux only
    case EBADFD: return "EBADFD";
#endif
    case EIO: return "EIO";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case ENOMEM: return "ENOMEM";
    case ENOSYS: return "ENOSYS";
    case EADDRINUSE: return "EADDRINUSE";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
    case EMSGSIZE: return "EMSGSIZE";
    default: return "EUNKNOWN";
  }
}

// Throws Error(message + strerror) with .code = errno name and .errno = the number.
static inline void throw_errno(napi_env env, int err, const char* message) {
  char text[512];
  snprintf(text, sizeof text, "%s: %s", message, strerror(err));
  napi_value msg, code, errv, error;
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
  napi_create_string_utf8(env, errno_code(err), NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, msg, &error);
  napi_create_int32(env, err, &errv);
  napi_set_named_property(env, error, "errno", errv);
  napi_throw(env, error);
}

// Calls a JS callback from a libuv callback (microtasks and next ticks run when it returns);
// an exception becomes an uncaught exception of the process, as for any event callback.
static inline void call_js(napi_env env, napi_async_context ctx, napi_value fn, size_t argc,
                           napi_value* argv) {
  napi_value recv, result;
  napi_get_global(env, &recv);  // napi_make_callback needs an object receiver
  napi_status st = napi_make_callback(env, ctx, recv, fn, argc, argv, &result);
  if (st == napi_pending_exception) {
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);
    napi_fatal_exception(env, exc);
  }
}

#endif
