{
  "targets": [
    {
      "target_name": "tributary",
      "sources": ["src/addon.c", "src/crc32c.c", "src/md5.c", "src/frames.c", "src/notify.c", "src/batch.c", "src/base64.c", "src/fileio.c"],
      "cflags": ["-O3", "-std=c11", "-Wall", "-Wextra", "-fvisibility=hidden"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
