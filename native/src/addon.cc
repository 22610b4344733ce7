// N-API bindings. Every function takes typed arrays that the TypeScript side allocated (the
// outputs included), so the addon never allocates JavaScript memory; shapes and strides come
// as Int32Array / numbers. Argument checking is deliberately thin: core/native/ops.ts is the
// only caller and validates shapes before calling in.
#include <node_api.h>
#include <stdlib.h>
#include <string.h>

#include <string>

#include "blas.h"
#include "common.h"
#include "gemm.h"
#include "ops.h"
#include "threadpool.h"

namespace {

using namespace lc;

struct Args {
  napi_env env;
  napi_value v[16];
  size_t n = 16;
  bool ok = true;
  Args(napi_env e, napi_callback_info info) : env(e) {
    napi_get_cb_info(e, info, &n, v, nullptr, nullptr);
  }
  void fail(const char* msg) {
    if (ok) napi_throw_type_error(env, nullptr, msg);
    ok = false;
  }
  bool isNull(size_t i) {
    napi_valuetype t = napi_undefined;
    if (i < n) napi_typeof(env, v[i], &t);
    return i >= n || t == napi_null || t == napi_undefined;
  }
  void* array(size_t i, napi_typedarray_type want, size_t* len, bool nullable = false) {
    if (nullable && isNull(i)) { if (len) *len = 0; return nullptr; }
    napi_typedarray_type t;
    size_t l = 0;
    void* data = nullptr;
    if (i >= n || napi_get_typedarray_info(env, v[i], &t, &l, &data, nullptr, nullptr) != napi_ok ||
        t != want) {
      fail("lightclip native: bad typed array argument");
      return nullptr;
    }
    if (len) *len = l;
    return data;
  }
  float* f32(size_t i, size_t* len = nullptr, bool nullable = false) {
    return (float*)array(i, napi_float32_array, len, nullable);
  }
  int32_t* i32(size_t i, size_t* len = nullptr, bool nullable = false) {
    return (int32_t*)array(i, napi_int32_array, len, nullable);
  }
  double num(size_t i) {
    double d = 0;
    if (i >= n || napi_get_value_double(env, v[i], &d) != napi_ok) fail("lightclip native: bad number");
    return d;
  }
  int64_t i64(size_t i) { return (int64_t)num(i); }
  bool flag(size_t i) {
    bool b = false;
    if (i < n && napi_get_value_bool(env, v[i], &b) != napi_ok) b = num(i) != 0;
    return b;
  }
  std::string str(size_t i) {
    char buf[1024] = {0};
    size_t l = 0;
    if (i < n) napi_get_value_string_utf8(env, v[i], buf, sizeof buf, &l);
    return std::string(buf, l);
  }
  // an Int32Array of dims/strides widened to int64
  int dims(size_t i, int64_t* out) {
    size_t l = 0;
    int32_t* p = i32(i, &l);  // null for an empty array (rank 0)
    if (!ok) return 0;
    if (l > (size_t)kMaxRank) { fail("lightclip native: bad rank"); return 0; }
    for (size_t k = 0; k < l; k++) out[k] = p[k];
    return (int)l;
  }
};

napi_value undef(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}
napi_value number(napi_env env, double d) {
  napi_value r;
  napi_create_double(env, d, &r);
  return r;
}
napi_value string(napi_env env, const char* s) {
  napi_value r;
  if (!s) { napi_get_null(env, &r); return r; }
  napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &r);
  return r;
}

void setThreads(int n) {
  setPoolThreads(n);
  setBlasThreads(n);
}

// init(blasSpec, isaCap, threads) -> { isa, blas, blasReason, threads }
napi_value Init(napi_env env, napi_callback_info info) {
  Args a(env, info);
  const std::string spec = a.str(0), isa = a.str(1);
  const int threads = (int)a.num(2);
  const char* why = nullptr;
  const char* blas = loadBlas(spec.c_str(), &why);
  const char* isaName = selectIsa(isa.c_str());
  setThreads(threads < 1 ? 1 : threads);
  napi_value o;
  napi_create_object(env, &o);
  napi_set_named_property(env, o, "isa", string(env, isaName));
  napi_set_named_property(env, o, "blas", string(env, blas));
  napi_set_named_property(env, o, "blasReason", string(env, why));
  napi_set_named_property(env, o, "threads", number(env, numThreads()));
  return o;
}

napi_value SetNumThreads(napi_env env, napi_callback_info info) {
  Args a(env, info);
  const int n = (int)a.num(0);
  if (a.ok) setThreads(n < 1 ? 1 : n);
  return number(env, numThreads());
}

napi_value SetBlasActive(napi_env env, napi_callback_info info) {
  Args a(env, info);
  setBlasActive(a.flag(0));
  napi_value r;
  napi_get_boolean(env, blasActive(), &r);
  return r;
}

// gemm(a, b, c, batch, m, n, k, transA, transB, aIdx|null, bIdx|null)
napi_value Gemm(napi_env env, napi_callback_info info) {
  Args a(env, info);
  const float* A = a.f32(0);
  const float* B = a.f32(1);
  float* C = a.f32(2);
  const int64_t batch = a.i64(3), m = a.i64(4), n = a.i64(5), k = a.i64(6);
  const bool ta = a.flag(7), tb = a.flag(8);
  size_t la = 0, lb = 0;
  const int32_t* ai = a.i32(9, &la, true);
  const int32_t* bi = a.i32(10, &lb, true);
  if (!a.ok) return undef(env);
  if (batch == 1 && !ai && !bi) {
    sgemm(ta, tb, m, n, k, 1.0f, A, ta ? m : k, B, tb ? k : n, 0.0f, C, n);
    return undef(env);
  }
  int64_t* off = (int64_t*)malloc(sizeof(int64_t) * 2 * (size_t)(batch > 0 ? batch : 1));
  for (int64_t i = 0; i < batch; i++) {
    off[i] = (ai ? ai[i] : i) * m * k;
    off[batch + i] = (bi ? bi[i] : i) * k * n;
  }
  sgemmBatched(batch, ta, tb, m, n, k, 1.0f, A, off, B, off + batch, 0.0f, C);
  free(off);
  return undef(env);
}

// unary(op, x, y, alpha)
napi_value Unary(napi_env env, napi_callback_info info) {
  Args a(env, info);
  size_t n = 0, ny = 0;
  const int op = (int)a.num(0);
  const float* x = a.f32(1, &n);
  float* y = a.f32(2, &ny);
  const float alpha = (float)a.num(3);
  if (a.ok && ny >= n && op >= 0 && op < U_COUNT) unaryOp(op, x, y, (int64_t)n, alpha);
  return undef(env);
}

// binary(op, a, b, out, shape, aStrides, bStrides)
napi_value Binary(napi_env env, napi_callback_info info) {
  Args a(env, info);
  const int op = (int)a.num(0);
  const float* A = a.f32(1);
  const float* B = a.f32(2);
  float* O = a.f32(3);
  int64_t shape[kMaxRank], sa[kMaxRank], sb[kMaxRank];
  const int r = a.dims(4, shape);
  a.dims(5, sa);
  a.dims(6, sb);
  if (a.ok && op >= 0 && op < B_COUNT) binaryOp(op, A, B, O, shape, sa, sb, r);
  return undef(env);
}

// copy(src, srcOffset, srcStrides, dst, dstOffset, dstStrides, shape)
napi_value Copy(napi_env env, napi_callback_info info) {
  Args a(env, info);
  const float* src = a.f32(0);
  const int64_t so = a.i64(1);
  float* dst = a.f32(3);
  const int64_t dof = a.i64(4);
  int64_t ss[kMaxRank], ds[kMaxRank], shape[kMaxRank];
  a.dims(2, ss);
  a.dims(5, ds);
  const int r = a.dims(6, shape);
  if (a.ok) copyStrided(src + so, ss, dst + dof, ds, shape, r);
  return undef(env);
}

// reduce(op, x, out, shape, reducedFlags(Int32Array), scale)
napi_value Reduce(napi_env env, napi_callback_info info) {
  Args a(env, info);
  const int op = (int)a.num(0);
  const float* x = a.f32(1);
  float* out = a.f32(2);
  int64_t shape[kMaxRank], flags[kMaxRank];
  const int r = a.dims(3, shape);
  a.dims(4, flags);
  const float scale = (float)a.num(5);
  uint8_t red[kMaxRank];
  for (int d = 0; d < r; d++) red[d] = flags[d] != 0;
  if (a.ok) reduceOp(op, x, out, shape, red, r, scale);
  return undef(env);
}

#include "addon_nn.inc"

}  // namespace

namespace lc {
void registerMpi(napi_env env, napi_value exports);  // mpi_pg.cc: Open MPI through dlopen, always built
#ifdef LIGHTCLIP_GLOO
void registerGloo(napi_env env, napi_value exports);  // gloo_pg.cc, built only with Gloo
#endif
}

NAPI_MODULE_INIT() {
  const struct { const char* name; napi_callback cb; } fns[] = {
      {"init", Init},       {"setNumThreads", SetNumThreads}, {"setBlasActive", SetBlasActive},
      {"gemm", Gemm},       {"unary", Unary},                 {"binary", Binary},
      {"copy", Copy},       {"reduce", Reduce},               {"softmax", Softmax},
      {"softmaxGrad", SoftmaxGrad}, {"layerNorm", LayerNorm}, {"layerNormGrad", LayerNormGrad},
      {"gelu", Gelu},       {"geluGrad", GeluGrad},           {"adamw", AdamW},
      {"im2col", Im2col},   {"col2im", Col2im},               {"gather", Gather},
      {"segmentSum", SegmentSum}, {"pool2d", Pool2d},         {"pool2dGrad", Pool2dGrad},
      {"batchNorm", BatchNorm},       {"batchNormGrad", BatchNormGrad},
  };
  for (const auto& f : fns) {
    napi_value fn;
    napi_create_function(env, f.name, NAPI_AUTO_LENGTH, f.cb, nullptr, &fn);
    napi_set_named_property(env, exports, f.name, fn);
  }
  lc::registerMpi(env, exports);
#ifdef LIGHTCLIP_GLOO
  lc::registerGloo(env, exports);
#endif
  return exports;
}
