{
  "targets": [
    {
      "target_name": "keyfleet_tls",
      "sources": ["keyfleet_tls.cc", "ticket_aead.cc"],
      "cflags_cc": ["-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-cast-function-type"]
    }
  ]
}
