{
  "targets": [{
    "target_name": "tabby_native",
    "sources": ["tabby_native.cc", "nft.cc", "nl_worker.cc", "heap_pacer.cc"],
    "libraries": ["-ldl"],
    "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
    "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
    "cflags_cc": ["-std=c++17", "-O2"]
  }, {
    "target_name": "tabby-cni",
    "type": "executable",
    "sources": ["cni_client.c"],
    "cflags": ["-std=c11", "-O2", "-Wall", "-Wextra"],
    "cflags!": ["-fno-exceptions"],
    "ldflags": ["-static"]
  }]
}
