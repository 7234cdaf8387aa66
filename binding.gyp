{
  "targets": [
    {
      "target_name": "plexd_native",
      "sources": ["native/addon.cc", "native/tun.cc", "native/udp.cc"],
      "cflags_cc": ["-O2", "-Wall", "-Wextra", "-Wno-missing-field-initializers"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
