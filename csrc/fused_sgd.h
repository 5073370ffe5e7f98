// Fused SGD with momentum: one pass over every parameter of a multi-tensor table (multi_tensor.h), reading p, g
// (and the momentum buffer b) once and writing p (and b) once. PyTorch's update rule, per element:
//
//   g = grad * grad_scale_t                                (global-norm clipping folded in)
//   g = clamp(g, -clip_value, clip_value)                  (when clipping by value)
//   g = -g                                                 (maximize)
//   g = g + weight_decay * p
//   b = g                                  on the tensor's first step (step count 0): no dampening
//   b = momentum * b + (1 - dampening) * g on later steps
//   g = g + momentum * b  (nesterov)   or   g = b          (when momentum != 0)
//   p = p - lr * g
//
// The step counter only tells the first step from later ones. A set non-finite flag (grad_norm.h) skips the step
// on the device: nothing is written.
#pragma once
#include <cmath>
#include <vector>
#include "array.h"
#include "host_device.h"
#include "multi_tensor_step.h"

namespace gradcore {

constexpr int kSgdColumnMomentum = 2;

struct SgdGroup {
  double lr = 1e-3, momentum = 0.0, dampening = 0.0, weight_decay = 0.0;
  int nesterov = 0, maximize = 0;
};

struct SgdParams : StepParams<SgdGroup> {
  bool momentum = false;  // the table has the momentum-buffer column; every group has momentum != 0
};

// The per-tensor constants of one step. As for Adam, options are folded into exact constants (sign -1 for maximize,
// clip_value inf when off) so the element rule has no branches and the CPU loop vectorises.
template <typename T>
struct SgdScalars {
  T lr, momentum, one_minus_dampening, weight_decay, clip_value, grad_scale, sign;
  bool first_step, nesterov;
  GRADCORE_HD SgdScalars(const SgdParams& params, const SgdGroup& group, double step, double grad_scale) {
    lr = (T)group.lr;
    momentum = (T)group.momentum;
    one_minus_dampening = (T)(1.0 - group.dampening);
    weight_decay = (T)group.weight_decay;
    clip_value = params.clip_by_value ? (T)params.clip_value : (T)INFINITY;
    this->grad_scale = (T)grad_scale;
    sign = group.maximize ? T(-1) : T(1);
    first_step = step == 0.0;
    nesterov = group.nesterov != 0;
  }
};

// One element of the update (the rule at the top of this file). b is read and written only with kMomentum (every
// group of a momentum launch has momentum != 0); on the first step it is written without being read.
template <typename T, bool kMomentum>
GRADCORE_HD void sgd_element(T& p, T grad, T& b, const SgdScalars<T>& s) {
  T g = grad * s.grad_scale;
  g = g < -s.clip_value ? -s.clip_value : (g > s.clip_value ? s.clip_value : g);  // NaN passes through
  g = g * s.sign;
  g = g + s.weight_decay * p;
  if (kMomentum) {
    b = s.first_step ? g : s.momentum * b + s.one_minus_dampening * g;
    g = s.nesterov ? g + s.momentum * b : b;
  }
  p = p - s.lr * g;
}

// The rule for the multi-tensor skeleton (multi_tensor_step.h): columns p, g (and b with kMomentum). The first step
// writes the momentum buffer without reading it (it starts as the gradient).
template <typename T, bool kMomentum>
struct SgdRule : StepRule<T, SgdParams, SgdScalars<T>, kMomentum ? 3 : 2> {
  using StepRule<T, SgdParams, SgdScalars<T>, kMomentum ? 3 : 2>::StepRule;
  static constexpr const char* kernel_name = "fused_sgd_kernel";
  GRADCORE_HD bool reads(int column) const { return column != kSgdColumnMomentum || !this->s.first_step; }
  GRADCORE_HD void operator()(T (&x)[kMomentum ? 3 : 2]) const {
    T unused = T(0);
    T& b = kMomentum ? x[SgdRule::columns - 1] : unused;  // kSgdColumnMomentum with kMomentum
    sgd_element<T, kMomentum>(x[kParamColumn], x[kGradColumn], b, this->s);
  }
};

// grad_scales: (T,) float64 or empty; nonfinite_state: (4,) float64 of grad_norm.h or empty.
void fused_sgd_cpu(const TensorTableView& table, const SgdParams& params, const Array& grad_scales,
                   const Array& nonfinite_state);
#ifdef GRADCORE_WITH_CUDA
void fused_sgd_cuda(const TensorTableView& table, const SgdParams& params, const Array& grad_scales,
                    const Array& nonfinite_state);
#endif

}  // namespace gradcore
