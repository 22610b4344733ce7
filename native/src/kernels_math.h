// Branch-free float32 approximations of exp, log, tanh and erf, written so that GCC's
// auto-vectoriser turns loops over them into SIMD code for whatever instruction set the
// including translation unit targets (libm calls would stay scalar). Accuracy: a few ulp,
// well inside the tolerances tfjs' own kernels are held to. Included only from
// kernels_impl.h, inside an ISA-specific namespace, so every symbol here is internal.
#pragma once

static inline float lc_asf(int32_t i) { float f; __builtin_memcpy(&f, &i, 4); return f; }
static inline int32_t lc_asi(float f) { int32_t i; __builtin_memcpy(&i, &f, 4); return i; }

/** e^x (Cephes expf polynomial); exp(-inf) = 0 and exp(+inf) = inf as softmax masks need;
 * results below 2^-126 flush to 0 (tfjs gives denormals there). */
static inline float lc_exp(float x) {
  float xc = x < -87.5f ? -87.5f : (x > 88.75f ? 88.75f : x);
  // round-to-nearest through the 1.5*2^23 trick: SSE2 has no vector round instruction
  const float magic = 12582912.0f;
  float n = (xc * 1.44269504088896341f + magic) - magic;
  float r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500E-4f;
  p = p * r + 1.3981999507E-3f;
  p = p * r + 8.3334519073E-3f;
  p = p * r + 4.1665795894E-2f;
  p = p * r + 1.6666665459E-1f;
  p = p * r + 5.0000001201E-1f;
  float y = p * r * r + r + 1.0f;
  // 2^n for n up to 128: 2^128 is not a float, so the top case multiplies by 2^127 and 2
  int32_t ni = (int32_t)n;
  int32_t hi = ni > 127;
  y = y * lc_asf((ni - hi + 127) << 23);
  y = hi ? y * 2.0f : y;
  return x < -87.5f ? 0.0f : y;
}

/** Natural log (Cephes logf); log(0) = -inf, log(x<0) = NaN, log(inf) = inf. */
static inline float lc_log(float x) {
  int32_t bits = lc_asi(x);
  float e = (float)(((bits >> 23) & 0xff) - 126);
  float m = lc_asf((bits & 0x007fffff) | 0x3f000000);  // mantissa in [0.5, 1)
  int small = m < 0.707106781186547524f;
  e = small ? e - 1.0f : e;
  m = small ? m + m - 1.0f : m - 1.0f;
  float z = m * m;
  float y = 7.0376836292E-2f;
  y = y * m - 1.1514610310E-1f;
  y = y * m + 1.1676998740E-1f;
  y = y * m - 1.2420140846E-1f;
  y = y * m + 1.4249322787E-1f;
  y = y * m - 1.6668057665E-1f;
  y = y * m + 2.0000714765E-1f;
  y = y * m - 2.4999993993E-1f;
  y = y * m + 3.3333331174E-1f;
  y = y * m * z;
  y = y + e * -2.12194440e-4f;
  y = y - 0.5f * z;
  float r = m + y + e * 0.693359375f;
  r = x == __builtin_inff() ? x : r;
  r = x == 0.0f ? -__builtin_inff() : r;
  return (x < 0.0f || x != x) ? __builtin_nanf("") : r;
}

static inline float lc_sigmoid(float x) { return 1.0f / (1.0f + lc_exp(-x)); }

/** tanh: odd polynomial near 0 (Cephes), 1 - 2/(e^{2|x|}+1) elsewhere. */
static inline float lc_tanh(float x) {
  float ax = x < 0.0f ? -x : x;
  float z = x * x;
  float p = -5.70498872745E-3f;
  p = p * z + 2.06390887954E-2f;
  p = p * z - 5.37397155531E-2f;
  p = p * z + 1.33314422036E-1f;
  p = p * z - 3.33332819422E-1f;
  float small = p * z * x + x;
  float big = 1.0f - 2.0f / (lc_exp(2.0f * ax) + 1.0f);
  big = x < 0.0f ? -big : big;
  return ax < 0.625f ? small : big;
}

/** erf by Abramowitz & Stegun 7.1.26, the formula tfjs' own Erf kernel uses. */
static inline float lc_erf(float x) {
  float ax = x < 0.0f ? -x : x;
  float t = 1.0f / (1.0f + 0.3275911f * ax);
  float p = 1.061405429f;
  p = p * t - 1.453152027f;
  p = p * t + 1.421413741f;
  p = p * t - 0.284496736f;
  p = p * t + 0.254829592f;
  float y = 1.0f - p * t * lc_exp(-ax * ax);
  return x < 0.0f ? -y : y;
}

static inline float lc_log1p(float x) {
  // log(1+x) loses digits for tiny x; the correction term restores them (Goldberg's trick)
  float u = 1.0f + x;
  float d = u - 1.0f;
  float l = lc_log(u);
  return d == 0.0f ? x : l * (x / d);
}

static inline float lc_expm1(float x) {
  float u = lc_exp(x);
  float ax = x < 0.0f ? -x : x;
  // Kahan: (u-1)*x/log(u) is accurate near 0
  float l = lc_log(u);
  float r = (u - 1.0f) * (x / (l == 0.0f ? 1.0f : l));
  r = u == 1.0f ? x : r;
  return ax > 0.5f ? u - 1.0f : r;
}
