// Elementwise ops: the activations, arithmetic with numpy broadcasting, the losses' per-element terms, and the
// backward formulas that need more than one input. The per-element maths (shared by CPU and CUDA) is:
//   affine(x; a, b) = a*x + b          rdiv(x; a) = a / x           pow(x; a) = x^a
//   exp, log, sqrt, abs                relu(x) = max(x, 0)          leaky_relu(x; a) = x > 0 ? x : a*x
//   sigmoid(x) = 1 / (1 + e^-x)        tanh(x)
//   add, sub, mul, div (a op b)
//   relu_backward(g, x) = g * [x > 0]                leaky_relu_backward(g, x; a) = g * (x > 0 ? 1 : a)
//   sigmoid_backward(g, y) = g * y * (1 - y)        tanh_backward(g, y) = g * (1 - y^2)     (y: the output)
//   pow_backward(g, x; a) = g * a * x^(a-1)
//   bce(p, t) = -(t*max(log p, -100) + (1-t)*max(log(1-p), -100))     (PyTorch's clamp keeps it finite)
//   bce_backward(p, t) = (p - t) / max(p*(1-p), 1e-12)
//   bce_with_logits(z, t) = max(z, 0) - z*t + log(1 + e^-|z|)            (stable for any z)
//   bce_with_logits_backward(z, t) = sigmoid(z) - t
#pragma once
#include <cmath>
#include <type_traits>
#include "array.h"
#include "host_device.h"
#include "layout.h"

namespace gradcore {

enum class UnaryOp { affine, rdiv, pow, exp, log, sqrt, abs, relu, leaky_relu, sigmoid, tanh };
enum class BinaryOp {
  add, sub, mul, div, relu_backward, leaky_relu_backward, sigmoid_backward, tanh_backward, pow_backward,
  bce, bce_backward, bce_with_logits, bce_with_logits_backward
};

// 1 / (1 + e^-x) is already stable in IEEE arithmetic: e^-x overflows to inf for very negative x, giving 0, and
// underflows to 0 for large x, giving 1; branch-free so the loop vectorises.
template <typename T> GRADCORE_HD T stable_sigmoid(T x) { return T(1) / (T(1) + exp(-x)); }

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
  if constexpr (OP == UnaryOp::tanh) return tanh(x);
  return x;
}

template <BinaryOp OP, typename T> GRADCORE_HD T apply_binary(T x, T y, T a) {
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
  return x;
}

// Calls fn(std::integral_constant<UnaryOp, op>{}) so each op compiles to its own loop.
#define GRADCORE_UNARY_CASE(NAME) case UnaryOp::NAME: return fn(std::integral_constant<UnaryOp, UnaryOp::NAME>{});
template <typename Fn> void dispatch_unary(UnaryOp op, Fn&& fn) {
  switch (op) {
    GRADCORE_UNARY_CASE(affine) GRADCORE_UNARY_CASE(rdiv) GRADCORE_UNARY_CASE(pow) GRADCORE_UNARY_CASE(exp)
    GRADCORE_UNARY_CASE(log) GRADCORE_UNARY_CASE(sqrt) GRADCORE_UNARY_CASE(abs) GRADCORE_UNARY_CASE(relu)
    GRADCORE_UNARY_CASE(leaky_relu) GRADCORE_UNARY_CASE(sigmoid) GRADCORE_UNARY_CASE(tanh)
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
    GRADCORE_BINARY_CASE(bce_with_logits_backward)
  }
}
#undef GRADCORE_BINARY_CASE

// y = op(x); y may be x (in place).
void unary_cpu(const Array& x, Array& y, UnaryOp op, double a, double b);
// out = op(a, b) under `layout`; out may alias a when a already has the output's shape.
void binary_cpu(const Array& a, const Array& b, Array& out, BinaryOp op, double param, const BroadcastLayout& layout);
#ifdef GRADCORE_WITH_CUDA
void unary_cuda(const Array& x, Array& y, UnaryOp op, double a, double b);
void binary_cuda(const Array& a, const Array& b, Array& out, BinaryOp op, double param, const BroadcastLayout& layout);
#endif

}  // namespace gradcore
