// tanh and the logistic function for kernels that run on both devices (the ConvLSTM gates): fast_tanh and
// fast_sigmoid are CUDA's own functions on the device; on the host, float uses the vectorisable versions below
// (std::exp(float) is a libm call per element, so loops over sigmoid/tanh would stay scalar without -ffast-math)
// and double uses std::. In the limits sigmoid gives 0 and 1, tanh -1 and 1, with no overflow.
//
// expf is Cephes': x = n ln2 + r with |r| <= ln2/2 (ln2 split in two parts so n ln2 is exact), e^r by a degree-7
// polynomial, times 2^n built in the exponent bits. Measured against double exp: within 1.4 ulp over the clamped
// range [-87.3, 88], where 2^n stays a normal float, so e^x never overflows to inf (sigmoid and tanh below need
// only that it be huge or tiny there). tanh within 2.3 ulp, sigmoid within 2.5 ulp (from
// -87 up; below, where its values are subnormal, within the float's absolute resolution there).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include "host_device.h"

namespace gradcore {

// Host float versions (plain C++: the compiler vectorises loops calling them).

inline float fast_expf(float x) {
  x = x < -87.3f ? -87.3f : (x > 88.0f ? 88.0f : x);
  // n = round(x / ln2): adding and subtracting 1.5 * 2^23 rounds to an integer in the FPU's round-to-nearest mode
  // (IEEE semantics keep the compiler from folding it away), and unlike floor it vectorises on every x86 level.
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  // A NaN x leaves n NaN, whose conversion to int is undefined: it takes 0 then, and p (NaN) carries the NaN out.
  const int32_t bits = ((n == n ? (int32_t)n : 0) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// Cephes' tanhf: an odd polynomial for |x| <= 0.625 (where 1 - 2/(e^2x + 1) would cancel), else that formula;
// both computed and one selected, so the loop stays branch-free.
inline float fast_tanhf(float x) {
  const float ax = x < 0.0f ? -x : x;
  const float s = x * x;
  const float poly = ((((-5.70498872745e-3f * s + 2.06390887954e-2f) * s - 5.37397155531e-2f) * s +
                       1.33314422036e-1f) * s - 3.33332819422e-1f) * s * x + x;
  const float big = 1.0f - 2.0f / (fast_expf(ax + ax) + 1.0f);
  return ax <= 0.625f ? poly : (x < 0.0f ? -big : big);
}

// 1 / (1 + e^-x), 1 in the upper limit. Below x = -87 the clamped e^-x would stop the result at ~6e-39, so there it
// is e^x (1 + e^x being 1) as (e^(x/2))^2, which reaches the subnormals and 0 at -inf as libm's form does. Both
// are computed and one selected, so the loop stays branch-free.
inline float fast_sigmoidf(float x) {
  const float half = fast_expf(0.5f * x);
  const float tail = half * half;
  const float body = 1.0f / (1.0f + fast_expf(-x));
  return x < -87.0f ? tail : body;
}

template <typename T> GRADCORE_HD T fast_tanh(T x) {
#if defined(__CUDA_ARCH__)
  return tanh(x);
#else
  if constexpr (std::is_same_v<T, float>) return fast_tanhf(x);
  else return std::tanh(x);
#endif
}

template <typename T> GRADCORE_HD T fast_sigmoid(T x) {
#if defined(__CUDA_ARCH__)
  return T(1) / (T(1) + exp(-x));
#else
  if constexpr (std::is_same_v<T, float>) return fast_sigmoidf(x);
  else return T(1) / (T(1) + std::exp(-x));
#endif
}

}  // namespace gradcore
