// Elementwise ops: the activations, arithmetic with numpy broadcasting, the losses' per-element terms, and the
// backward formulas that need more than one input. The per-element maths (shared by CPU and CUDA) is:
//   affine(x; a, b) = a*x + b          rdiv(x; a) = a / x           pow(x; a) = x^a
//   exp, log, sqrt, abs                relu(x) = max(x, 0)          leaky_relu(x; a) = x > 0 ? x : a*x
//   sigmoid(x) = 1 / (1 + e^-x)        tanh(x)
//   cos, sin, log1p(x) = log(1 + x), expm1(x) = e^x - 1   (log1p/expm1 accurate near 0)
//   clamp(x; lo, hi) = min(max(x, lo), hi); NaN x stays NaN; lo > hi gives hi (PyTorch's rule)
//   softplus(x; beta, threshold) = beta*x > threshold ? x : log1p(e^(beta*x)) / beta
//   gelu(x) = x * Phi(x) = x/2 * (1 + erf(x/sqrt(2)))
//   gelu_tanh(x) = x/2 * (1 + tanh(k0 * (x + k1*x^3))),  k0 = sqrt(2/pi), k1 = 0.044715
//   silu(x) = x * sigmoid(x) = x / (1 + e^-x)       elu(x; alpha) = x > 0 ? x : alpha * expm1(x)
//   add, sub, mul, div (a op b)
//   maximum, minimum (a NaN in either operand gives NaN, as PyTorch)
//   relu_backward(g, x) = g * [x > 0]                leaky_relu_backward(g, x; a) = g * (x > 0 ? 1 : a)
//   sigmoid_backward(g, y) = g * y * (1 - y)        tanh_backward(g, y) = g * (1 - y^2)     (y: the output)
//   pow_backward(g, x; a) = g * a * x^(a-1)
//   cos_backward(g, x) = -g sin x      sin_backward(g, x) = g cos x
//   log1p_backward(g, x) = g / (1 + x)                expm1_backward(g, y) = g * (y + 1)
//   softplus_backward(g, x; beta, threshold) = beta*x > threshold ? g : g * sigmoid(beta*x)   (as e/(e+1))
//   gelu_backward(g, x) = g * (Phi(x) + x phi(x)),  phi(x) = e^(-x^2/2) / sqrt(2 pi)
//   gelu_tanh_backward(g, x) = g * (1/2 (1 + t) + x/2 (1 - t^2) k0 (1 + 3 k1 x^2)),  t = tanh(k0 (x + k1 x^3))
//   silu_backward(g, x) = g * s * (1 + x (1 - s)),  s = sigmoid(x)
//   elu_backward(g, x; alpha) = x > 0 ? g : g * alpha * e^x
//   bce(p, t) = -(t*max(log p, -100) + (1-t)*max(log(1-p), -100))     (PyTorch's clamp keeps it finite)
//   bce_backward(p, t) = (p - t) / max(p*(1-p), 1e-12)
//   bce_with_logits(z, t) = max(z, 0) - z*t + log(1 + e^-|z|)            (stable for any z)
//   bce_with_logits_backward(z, t) = sigmoid(z) - t
#pragma once
#include <cmath>
#include <type_traits>
#include "array.h"
#include "fast_math.h"
#include "host_device.h"
#include "layout.h"

namespace gradcore {

enum class UnaryOp {
  affine, rdiv, pow, exp, log, sqrt, abs, relu, leaky_relu, sigmoid, tanh,
  cos, sin, log1p, expm1, clamp, softplus, gelu, gelu_tanh, silu, elu
};
enum class BinaryOp {
  add, sub, mul, div, relu_backward, leaky_relu_backward, sigmoid_backward, tanh_backward, pow_backward,
  bce, bce_backward, bce_with_logits, bce_with_logits_backward,
  maximum, minimum, cos_backward, sin_backward, log1p_backward, expm1_backward, softplus_backward, gelu_backward,
  gelu_tanh_backward, silu_backward, elu_backward
};

// GELU's constants: 1/sqrt(2), 1/sqrt(2 pi), and the tanh form's sqrt(2/pi) and cubic coefficient.
constexpr double kGeluInvSqrt2 = 0.70710678118654752440;
constexpr double kGeluInvSqrt2Pi = 0.39894228040143267794;
constexpr double kGeluTanhScale = 0.79788456080286535588;
constexpr double kGeluTanhCubic = 0.044715;

// 1 / (1 + e^-x) is stable as written: e^-x is huge for very negative x, giving 0, and tiny for large x, giving 1.
// fast_math.h's version: on the host float's loop vectorises (std::exp is a libm call per element; within 2.5 ulp),
// on the device it is CUDA's exp, as here before.
template <typename T> GRADCORE_HD T stable_sigmoid(T x) { return fast_sigmoid(x); }

template <UnaryOp OP, typename T> GRADCORE_HD T apply_unary(T x, T a, T b) {
  if constexpr (OP == UnaryOp::affine) return a * x + b;
  if constexpr (OP == UnaryOp::rdiv) return a / x;
  if constexpr (OP == UnaryOp::pow) return pow(x, a);
  if constexpr (OP == UnaryOp::exp) return exp(x);
  if constexpr (OP == UnaryOp::log) return log(x);
  if constexpr (OP == UnaryOp::sqrt) return sqrt(x);
  if constexpr (OP == UnaryOp::abs) return fabs(x);
  if constexpr (OP == UnaryOp::relu) return (x > T(0) || x != x) ? x : T(0);  // NaN stays NaN (PyTorch)
  if constexpr (OP == UnaryOp::leaky_relu) return x > T(0) ? x : a * x;
  if constexpr (OP == UnaryOp::sigmoid) return stable_sigmoid(x);
  if constexpr (OP == UnaryOp::tanh) return fast_tanh(x);  // fast_math.h: vectorised on the host (2.3 ulp)
  if constexpr (OP == UnaryOp::cos) return cos(x);
  if constexpr (OP == UnaryOp::sin) return sin(x);
  if constexpr (OP == UnaryOp::log1p) return log1p(x);
  if constexpr (OP == UnaryOp::expm1) return expm1(x);
  if constexpr (OP == UnaryOp::clamp) {  // a NaN bound is ignored, as PyTorch's CPU kernel (std::max/min)
    if (x != x) return x;
    const T low = x < a ? a : x;
    return b < low ? b : low;
  }
  if constexpr (OP == UnaryOp::softplus) return x * a > b ? x : log1p(exp(x * a)) / a;
  if constexpr (OP == UnaryOp::gelu) return T(0.5) * x * (T(1) + erf(x * T(kGeluInvSqrt2)));
  if constexpr (OP == UnaryOp::gelu_tanh)
    return T(0.5) * x * (T(1) + tanh(T(kGeluTanhScale) * (x + T(kGeluTanhCubic) * x * x * x)));
  if constexpr (OP == UnaryOp::silu) return x / (T(1) + exp(-x));
  if constexpr (OP == UnaryOp::elu) return x > T(0) ? x : a * expm1(x);
  return x;
}

// b is the second scalar (softplus_backward's threshold); the other ops ignore it.
template <BinaryOp OP, typename T> GRADCORE_HD T apply_binary(T x, T y, T a, T b = T(0)) {
  if constexpr (OP == BinaryOp::add) return x + y;
  if constexpr (OP == BinaryOp::sub) return x - y;
  if constexpr (OP == BinaryOp::mul) return x * y;
  if constexpr (OP == BinaryOp::div) return x / y;
  if constexpr (OP == BinaryOp::relu_backward) return y <= T(0) ? T(0) : x;  // a NaN input passes the gradient
  if constexpr (OP == BinaryOp::leaky_relu_backward) return y > T(0) ? x : a * x;
  if constexpr (OP == BinaryOp::sigmoid_backward) return x * y * (T(1) - y);
  if constexpr (OP == BinaryOp::tanh_backward) return x * (T(1) - y * y);
  // d/dy y^0 is 0 everywhere (a * y^-1 would be 0 * inf = NaN at y = 0), as PyTorch.
  if constexpr (OP == BinaryOp::pow_backward) return a == T(0) ? T(0) : x * a * pow(y, a - T(1));
  if constexpr (OP == BinaryOp::bce) {
    T log_p = log(x), log_q = log(T(1) - x);
    log_p = log_p > T(-100) ? log_p : T(-100);
    log_q = log_q > T(-100) ? log_q : T(-100);
    return -(y * log_p + (T(1) - y) * log_q);
  }
  if constexpr (OP == BinaryOp::bce_backward) {
    T d = x * (T(1) - x);
    return (x - y) / (d > T(1e-12) ? d : T(1e-12));
  }
  if constexpr (OP == BinaryOp::bce_with_logits) return (x > T(0) ? x : T(0)) - x * y + log1p(exp(-fabs(x)));
  if constexpr (OP == BinaryOp::bce_with_logits_backward) return stable_sigmoid(x) - y;
  if constexpr (OP == BinaryOp::maximum) return (x != x || x > y) ? x : y;  // y NaN: y
  if constexpr (OP == BinaryOp::minimum) return (x != x || x < y) ? x : y;
  if constexpr (OP == BinaryOp::cos_backward) return -x * sin(y);
  if constexpr (OP == BinaryOp::sin_backward) return x * cos(y);
  if constexpr (OP == BinaryOp::log1p_backward) return x / (y + T(1));
  if constexpr (OP == BinaryOp::expm1_backward) return x * (y + T(1));
  if constexpr (OP == BinaryOp::softplus_backward) {
    if (y * a > b) return x;
    const T z = exp(y * a);
    return x * z / (z + T(1));
  }
  if constexpr (OP == BinaryOp::gelu_backward) {
    const T cdf = T(0.5) * (T(1) + erf(y * T(kGeluInvSqrt2)));
    const T pdf = exp(T(-0.5) * y * y) * T(kGeluInvSqrt2Pi);
    return x * (cdf + y * pdf);
  }
  if constexpr (OP == BinaryOp::gelu_tanh_backward) {
    const T y2 = y * y;
    const T t = tanh(T(kGeluTanhScale) * (y + T(kGeluTanhCubic) * y2 * y));
    const T left = T(0.5) * (T(1) + t);
    const T right = T(0.5) * y * (T(1) - t * t) * T(kGeluTanhScale) * (T(1) + T(3) * T(kGeluTanhCubic) * y2);
    return x * (left + right);
  }
  if constexpr (OP == BinaryOp::silu_backward) {
    const T s = T(1) / (T(1) + exp(-y));
    return x * s * (T(1) + y * (T(1) - s));
  }
  if constexpr (OP == BinaryOp::elu_backward) return y > T(0) ? x : x * a * exp(y);
  return x;
}

// int64 operands (labels, indices, counts): add, sub and mul only, wrapping on overflow as PyTorch (signed overflow
// is undefined in C++, so through uint64); the bindings refuse every other op on int64.
inline bool binary_supports_int64(BinaryOp op) {
  return op == BinaryOp::add || op == BinaryOp::sub || op == BinaryOp::mul;
}
template <BinaryOp OP> GRADCORE_HD int64_t apply_binary_int64(int64_t x, int64_t y) {
  const uint64_t ux = (uint64_t)x, uy = (uint64_t)y;
  if constexpr (OP == BinaryOp::add) return (int64_t)(ux + uy);
  if constexpr (OP == BinaryOp::sub) return (int64_t)(ux - uy);
  if constexpr (OP == BinaryOp::mul) return (int64_t)(ux * uy);
  return 0;
}
// The element rule the loops call: apply_binary for floats, apply_binary_int64 for int64.
template <BinaryOp OP, typename T> GRADCORE_HD T binary_element(T x, T y, T a, T b) {
  if constexpr (std::is_same_v<T, int64_t>) return apply_binary_int64<OP>(x, y);
  else return apply_binary<OP, T>(x, y, a, b);
}

// Calls fn(std::integral_constant<UnaryOp, op>{}) so each op compiles to its own loop.
#define GRADCORE_UNARY_CASE(NAME) case UnaryOp::NAME: return fn(std::integral_constant<UnaryOp, UnaryOp::NAME>{});
template <typename Fn> void dispatch_unary(UnaryOp op, Fn&& fn) {
  switch (op) {
    GRADCORE_UNARY_CASE(affine) GRADCORE_UNARY_CASE(rdiv) GRADCORE_UNARY_CASE(pow) GRADCORE_UNARY_CASE(exp)
    GRADCORE_UNARY_CASE(log) GRADCORE_UNARY_CASE(sqrt) GRADCORE_UNARY_CASE(abs) GRADCORE_UNARY_CASE(relu)
    GRADCORE_UNARY_CASE(leaky_relu) GRADCORE_UNARY_CASE(sigmoid) GRADCORE_UNARY_CASE(tanh)
    GRADCORE_UNARY_CASE(cos) GRADCORE_UNARY_CASE(sin) GRADCORE_UNARY_CASE(log1p) GRADCORE_UNARY_CASE(expm1)
    GRADCORE_UNARY_CASE(clamp) GRADCORE_UNARY_CASE(softplus) GRADCORE_UNARY_CASE(gelu)
    GRADCORE_UNARY_CASE(gelu_tanh) GRADCORE_UNARY_CASE(silu) GRADCORE_UNARY_CASE(elu)
  }
}
#undef GRADCORE_UNARY_CASE
#define GRADCORE_BINARY_CASE(NAME) case BinaryOp::NAME: return fn(std::integral_constant<BinaryOp, BinaryOp::NAME>{});
template <typename Fn> void dispatch_binary(BinaryOp op, Fn&& fn) {
  switch (op) {
    GRADCORE_BINARY_CASE(add) GRADCORE_BINARY_CASE(sub) GRADCORE_BINARY_CASE(mul) GRADCORE_BINARY_CASE(div)
    GRADCORE_BINARY_CASE(relu_backward) GRADCORE_BINARY_CASE(leaky_relu_backward)
    GRADCORE_BINARY_CASE(sigmoid_backward) GRADCORE_BINARY_CASE(tanh_backward) GRADCORE_BINARY_CASE(pow_backward)
    GRADCORE_BINARY_CASE(bce) GRADCORE_BINARY_CASE(bce_backward) GRADCORE_BINARY_CASE(bce_with_logits)
    GRADCORE_BINARY_CASE(bce_with_logits_backward) GRADCORE_BINARY_CASE(maximum) GRADCORE_BINARY_CASE(minimum)
    GRADCORE_BINARY_CASE(cos_backward) GRADCORE_BINARY_CASE(sin_backward) GRADCORE_BINARY_CASE(log1p_backward)
    GRADCORE_BINARY_CASE(expm1_backward) GRADCORE_BINARY_CASE(softplus_backward)
    GRADCORE_BINARY_CASE(gelu_backward) GRADCORE_BINARY_CASE(gelu_tanh_backward)
    GRADCORE_BINARY_CASE(silu_backward) GRADCORE_BINARY_CASE(elu_backward)
  }
}
#undef GRADCORE_BINARY_CASE

// Calls fn(T{}, op constant) for a float dtype and any op, or for int64 and add/sub/mul (throws for the rest).
template <typename Fn> void dispatch_binary_typed(DType t, BinaryOp op, Fn&& fn) {
  if (t == DType::int64) {
    switch (op) {
      case BinaryOp::add: return fn(int64_t{}, std::integral_constant<BinaryOp, BinaryOp::add>{});
      case BinaryOp::sub: return fn(int64_t{}, std::integral_constant<BinaryOp, BinaryOp::sub>{});
      case BinaryOp::mul: return fn(int64_t{}, std::integral_constant<BinaryOp, BinaryOp::mul>{});
      default: throw_not_float(t);
    }
  }
  dispatch_float(t, [&](auto zero) { dispatch_binary(op, [&](auto op_constant) { fn(zero, op_constant); }); });
}

// y = op(x); y may be x (in place).
void unary_cpu(const Array& x, Array& y, UnaryOp op, double a, double b);
// out = op(a, b; param, param2) under `layout`; out may alias a when a already has the output's shape.
void binary_cpu(const Array& a, const Array& b, Array& out, BinaryOp op, double param, double param2,
                const BroadcastLayout& layout);
// The one-parameter form, for the ops that use no second scalar (what callers outside this file use).
inline void binary_cpu(const Array& a, const Array& b, Array& out, BinaryOp op, double param,
                       const BroadcastLayout& layout) {
  binary_cpu(a, b, out, op, param, 0.0, layout);
}
#ifdef GRADCORE_WITH_CUDA
void unary_cuda(const Array& x, Array& y, UnaryOp op, double a, double b);
void binary_cuda(const Array& a, const Array& b, Array& out, BinaryOp op, double param, double param2,
                 const BroadcastLayout& layout);
inline void binary_cuda(const Array& a, const Array& b, Array& out, BinaryOp op, double param,
                        const BroadcastLayout& layout) {
  binary_cuda(a, b, out, op, param, 0.0, layout);
}
#endif

}  // namespace gradcore
