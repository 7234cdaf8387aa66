// Helpers shared by the addon's translation units (addon.cc, tun.cc, udp.cc): N-API status
// checks, errors that carry the errno name as .code and the number as .errno, and the lifecycle
// every native handle (a TUN device, a UDP bind) shares.
#ifndef PLEXD_NAPI_UTIL_H
#define PLEXD_NAPI_UTIL_H

#include <node_api.h>
#include <uv.h>
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

// ---- Handle lifecycle ----
// A native handle holds JS references (its buffers and callbacks, in named slots) and an async
// context for its callbacks while it is open. It is released (I/O stopped, references dropped)
// by close(), by the device going away, by the environment shutting down (worker exit) or by
// its JS external being collected, whichever comes first. Its memory is freed only once the
// external is finalized AND libuv has closed every handle it started, since either may still
// point at it. Embed a Lifecycle as the FIRST member of the handle's struct: the uv handles'
// .data point at that struct and lifecycle_on_uv_closed reads it back as a Lifecycle.

static const size_t kLifecycleMaxRefs = 8;

struct Lifecycle {
  napi_env env;
  napi_ref refs[kLifecycleMaxRefs];  // indexed by the handle's slot enum
  size_t ref_count;
  napi_async_context async_ctx;
  int uv_closing;  // uv handles uv_close'd whose close callback has not run yet
  bool hooked;     // the env cleanup hook is registered
  bool released;
  bool finalized;  // the JS external is gone
  void (*stop_io)(Lifecycle*);  // stops polling (lifecycle_close_poll) and closes the fds
  void (*destroy)(Lifecycle*);  // frees the handle's struct and what it owns
};

// Holds values[i] in slot i and creates the async context named `resource_name`.
static inline void lifecycle_init(Lifecycle* l, napi_env env, const char* resource_name,
                                  const napi_value* values, size_t count,
                                  void (*stop_io)(Lifecycle*), void (*destroy)(Lifecycle*)) {
  l->env = env;
  l->stop_io = stop_io;
  l->destroy = destroy;
  l->ref_count = count < kLifecycleMaxRefs ? count : kLifecycleMaxRefs;
  for (size_t i = 0; i < l->ref_count; i++) napi_create_reference(env, values[i], 1, &l->refs[i]);
  napi_value resource, name;
  napi_create_object(env, &resource);
  napi_create_string_utf8(env, resource_name, NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, resource, name, &l->async_ctx);
}

// The value held in `slot`, or NULL once released. The caller has a handle scope open.
static inline napi_value lifecycle_ref(Lifecycle* l, size_t slot) {
  napi_value value = NULL;
  if (slot < l->ref_count && l->refs[slot] != NULL)
    napi_get_reference_value(l->env, l->refs[slot], &value);
  return value;
}

static inline void lifecycle_maybe_free(Lifecycle* l) {
  if (l->finalized && l->uv_closing == 0) l->destroy(l);
}

static inline void lifecycle_on_uv_closed(uv_handle_t* handle) {
  Lifecycle* l = static_cast<Lifecycle*>(handle->data);
  l->uv_closing--;
  lifecycle_maybe_free(l);
}

// Stops a started poll handle and closes it; the struct stays until libuv reports it closed.
static inline void lifecycle_close_poll(Lifecycle* l, uv_poll_t* poll) {
  uv_poll_stop(poll);
  l->uv_closing++;
  uv_close(reinterpret_cast<uv_handle_t*>(poll), lifecycle_on_uv_closed);
}

static inline void lifecycle_env_cleanup(void* arg);

// Stops the I/O, drops the references and the cleanup hook; idempotent. The async context
// stays, so a last callback (the TUN's onClosed) can still run; lifecycle_close ends it.
static inline void lifecycle_release(Lifecycle* l) {
  if (l->released) return;
  l->released = true;
  l->stop_io(l);
  for (size_t i = 0; i < l->ref_count; i++) {
    if (l->refs[i] != NULL) napi_delete_reference(l->env, l->refs[i]);
    l->refs[i] = NULL;
  }
  if (l->hooked) napi_remove_env_cleanup_hook(l->env, lifecycle_env_cleanup, l);
  l->hooked = false;
}

// lifecycle_release, then the async context goes too. Idempotent.
static inline void lifecycle_close(Lifecycle* l) {
  lifecycle_release(l);
  if (l->async_ctx != NULL) napi_async_destroy(l->env, l->async_ctx);
  l->async_ctx = NULL;
}

static inline void lifecycle_env_cleanup(void* arg) { lifecycle_close(static_cast<Lifecycle*>(arg)); }

static inline void lifecycle_finalize(napi_env env, void* data, void* hint) {
  (void)env;
  (void)hint;
  Lifecycle* l = static_cast<Lifecycle*>(data);
  lifecycle_close(l);
  l->finalized = true;
  lifecycle_maybe_free(l);
}

// The JS external for the handle (finalized by lifecycle_finalize), with the env cleanup hook
// registered. On failure the handle is closed and freed, an error is thrown and NULL returned.
// Call before starting any poll handle.
static inline napi_value lifecycle_wrap(Lifecycle* l) {
  napi_value external;
  if (napi_create_external(l->env, l, lifecycle_finalize, NULL, &external) != napi_ok) {
    lifecycle_close(l);
    l->finalized = true;
    lifecycle_maybe_free(l);
    napi_throw_error(l->env, "ERR_NATIVE", "napi_create_external failed");
    return NULL;
  }
  napi_add_env_cleanup_hook(l->env, lifecycle_env_cleanup, l);
  l->hooked = true;
  return external;
}

// The handle behind a JS external made by lifecycle_wrap, or NULL with a TypeError thrown.
static inline Lifecycle* lifecycle_unwrap(napi_env env, napi_value value, const char* expected) {
  void* data = NULL;
  if (napi_get_value_external(env, value, &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", expected);
    return NULL;
  }
  return static_cast<Lifecycle*>(data);
}

// One JS function of the addon: its property name and its callback, NULL where the platform has
// none (write the callback as LINUX_ONLY(js_x) in a table).
typedef struct {
  const char* name;
  napi_callback fn;
} NativeExport;

#ifdef __linux__
#define LINUX_ONLY(fn) (fn)
#else
#define LINUX_ONLY(fn) NULL
#endif

// Throws Error(message) with .code "ENOTSUP": what every entry point does off Linux.
static inline napi_value throw_not_supported(napi_env env, const char* message) {
  napi_value msg, code, error;
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_string_utf8(env, "ENOTSUP", NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, msg, &error);
  napi_throw(env, error);
  return NULL;
}

// The callback of an entry point the platform lacks; its data is the message.
static inline napi_value not_supported(napi_env env, napi_callback_info info) {
  void* message = NULL;
  napi_get_cb_info(env, info, NULL, NULL, NULL, &message);
  return throw_not_supported(env, (const char*)message);
}

// Sets each of `fns` on `exports` as a function named after it (every part's register step); an
// entry without a callback throws ENOTSUP with `unsupported` as its message.
static inline void export_functions(napi_env env, napi_value exports, const NativeExport* fns,
                                    size_t count, const char* unsupported) {
  for (size_t i = 0; i < count; i++) {
    napi_callback fn = fns[i].fn != NULL ? fns[i].fn : not_supported;
    void* data = fns[i].fn != NULL ? NULL : (void*)unsupported;
    napi_value f;
    napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fn, data, &f);
    napi_set_named_property(env, exports, fns[i].name, f);
  }
}

// throw_errno for an operation that needs CAP_NET_ADMIN: on EPERM the message says so.
static inline void throw_errno_admin(napi_env env, int err, const char* what) {
  char text[128];
  if (err == EPERM) {
    snprintf(text, sizeof text, "%s: CAP_NET_ADMIN is needed", what);
    what = text;
  }
  throw_errno(env, err, what);
}

#endif
