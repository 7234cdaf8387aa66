{
  "targets": [
    {
      "target_name": "plexd_tun",
      "sources": ["native/tun.cc", "native/udp.cc"],
      "cflags_cc": ["-O2", "-Wall", "-Wextra", "-Wno-missing-field-initializers"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
