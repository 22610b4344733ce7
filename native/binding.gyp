{
  "targets": [
    {
      "target_name": "lightclip",
      "sources": [
        "src/addon.cc", "src/blas.cc", "src/onednn.cc", "src/dispatch.cc", "src/gemm.cc",
        "src/isa_base.cc", "src/isa_avx2.cc", "src/isa_avx512.cc",
        "src/ops_elementwise.cc", "src/ops_nn.cc", "src/ops_pool_norm.cc", "src/threadpool.cc",
        "src/mpi_pg.cc"
      ],
      "cflags_cc": [
        "-std=c++17", "-O3", "-fopenmp-simd", "-fno-math-errno", "-fno-trapping-math",
        "-ffp-contract=fast", "-Wall", "-Wno-unknown-pragmas"
      ],
      "cflags_cc!": ["-fno-exceptions", "-O2"],
      "ldflags": ["-pthread"],
      "libraries": ["-ldl"],
      "defines": ["NAPI_VERSION=8"],
      "variables": {"gloo%": "<!(node gloo.cjs have)"},
      "conditions": [
        ["gloo==1", {
          "sources": ["src/gloo_pg.cc"],
          "defines": ["LIGHTCLIP_GLOO=1"],
          "include_dirs": ["<!(node gloo.cjs include)"],
          "cflags_cc!": ["-fno-rtti"],
          "libraries": ["-L<!(node gloo.cjs lib)", "-lgloo", "-Wl,-rpath,<!(node gloo.cjs lib)"]
        }]
      ]
    }
  ]
}
