// Fused Adam / AdamW: one pass over every parameter of a multi-tensor table (multi_tensor.h), reading p, g, m, v
// (and v_max with amsgrad) once and writing p, m, v (v_max) once. PyTorch's update rules, per element:
//
//   t   = step + 1                                         (the tensor's step counter, then stored back)
//   g   = grad * grad_scale_t                              (global-norm clipping folded in, as llm.c does)
//   g   = clamp(g, -clip_value, clip_value)                (when clipping by value)
//   g   = -g                                               (maximize)
//   g   = g + weight_decay * p                             (Adam: L2 added to the gradient)
//   p   = p * (1 - lr * weight_decay)                      (AdamW: decoupled decay instead)
//   m   = beta1 * m + (1 - beta1) * g
//   v   = beta2 * v + (1 - beta2) * g^2
//   v_max = max(v_max, v)                                  (amsgrad; then v_max replaces v below)
//   p   = p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
//
// When a non-finite flag is given (state[kStateNonfinite] of grad_norm.h) and set, nothing is written, the step
// counters included: the step is skipped on the device, with no synchronisation. The grad buffers are never written.
#pragma once
#include <cmath>
#include <vector>
#include "array.h"
#include "host_device.h"
#include "multi_tensor_step.h"

namespace gradcore {

constexpr int kAdamColumnExpAvg = 2, kAdamColumnExpAvgSq = 3, kAdamColumnMaxExpAvgSq = 4;

struct AdamGroup {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
  int maximize = 0;
};

struct AdamParams : StepParams<AdamGroup> {
  bool decoupled_weight_decay = false;  // AdamW
  bool amsgrad = false;                 // the table has the max_exp_avg_sq column (launches group by this flag)
};

// The per-tensor constants of one step, in the element type, from a group and the tensor's step count. Options are
// folded into constants (sign -1 for maximize, clip_value inf when off, decay factor 1 for Adam, L2 factor 0 for
// AdamW) so that the element rule has no branches and the CPU loop vectorises; every fold is exact arithmetic.
template <typename T>
struct AdamScalars {
  T beta1, beta2, one_minus_beta1, one_minus_beta2, eps, l2, decay_factor, step_size, bias_correction2_sqrt;
  T clip_value, grad_scale, sign;
  GRADCORE_HD AdamScalars(const AdamParams& params, const AdamGroup& group, double step, double grad_scale) {
    const double t = step + 1.0;
    beta1 = (T)group.beta1;
    beta2 = (T)group.beta2;
    one_minus_beta1 = (T)(1.0 - group.beta1);
    one_minus_beta2 = (T)(1.0 - group.beta2);
    eps = (T)group.eps;
    l2 = params.decoupled_weight_decay ? T(0) : (T)group.weight_decay;
    decay_factor = params.decoupled_weight_decay ? (T)(1.0 - group.lr * group.weight_decay) : T(1);
    step_size = (T)(group.lr / (1.0 - pow(group.beta1, t)));
    bias_correction2_sqrt = (T)sqrt(1.0 - pow(group.beta2, t));
    clip_value = params.clip_by_value ? (T)params.clip_value : (T)INFINITY;
    this->grad_scale = (T)grad_scale;
    sign = group.maximize ? T(-1) : T(1);
  }
};

// One element of the update (the rule at the top of this file). v_max is read and written only with kAmsgrad.
template <typename T, bool kAmsgrad>
GRADCORE_HD void adam_element(T& p, T grad, T& m, T& v, T& v_max, const AdamScalars<T>& s) {
  T g = grad * s.grad_scale;
  g = g < -s.clip_value ? -s.clip_value : (g > s.clip_value ? s.clip_value : g);  // NaN passes through
  g = g * s.sign;
  p = p * s.decay_factor;
  g = g + s.l2 * p;
  m = s.beta1 * m + s.one_minus_beta1 * g;
  v = s.beta2 * v + s.one_minus_beta2 * g * g;
  T v_used = v;
  if (kAmsgrad) {
    v_max = v_max > v ? v_max : v;
    v_used = v_max;
  }
  p = p - s.step_size * (m / (sqrt(v_used) / s.bias_correction2_sqrt + s.eps));
}

// The rule for the multi-tensor skeleton (multi_tensor_step.h): columns p, g, m, v (and v_max with kAmsgrad).
template <typename T, bool kAmsgrad>
struct AdamRule : StepRule<T, AdamParams, AdamScalars<T>, kAmsgrad ? 5 : 4> {
  using StepRule<T, AdamParams, AdamScalars<T>, kAmsgrad ? 5 : 4>::StepRule;
  static constexpr const char* kernel_name = "fused_adam_kernel";
  GRADCORE_HD bool reads(int) const { return true; }
  GRADCORE_HD void operator()(T (&x)[kAmsgrad ? 5 : 4]) const {
    T unused = T(0);
    T& v_max = kAmsgrad ? x[AdamRule::columns - 1] : unused;  // kAdamColumnMaxExpAvgSq with kAmsgrad
    adam_element<T, kAmsgrad>(x[kParamColumn], x[kGradColumn], x[kAdamColumnExpAvg], x[kAdamColumnExpAvgSq], v_max,
                              this->s);
  }
};

// grad_scales: (T,) float64 or empty; nonfinite_state: (4,) float64 of grad_norm.h or empty.
void fused_adam_cpu(const TensorTableView& table, const AdamParams& params, const Array& grad_scales,
                    const Array& nonfinite_state);
#ifdef GRADCORE_WITH_CUDA
void fused_adam_cuda(const TensorTableView& table, const AdamParams& params, const Array& grad_scales,
                     const Array& nonfinite_state);
#endif

}  // namespace gradcore
