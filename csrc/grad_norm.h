// The norm of a list of gradients, and clipping by norm or by value (PyTorch's clip_grad_norm_ and clip_grad_value_).
//
// For norm type p over tensors t = 1..T with elements g:
//   S_t = sum |g|^p  (p = 2: sum g^2)          or, for p = inf,  S_t = max |g|
//   norm_t = S_t^(1/p),   norm = (sum_t S_t)^(1/p)          (p = inf: norm_t = S_t, norm = max_t S_t)
// Clipping to max_norm scales every gradient by
//   scale = min(1, max_norm / (norm + 1e-6))                  (PyTorch's clip_coef, clamped at 1)
// or, per tensor (MATLAB's "l2norm" threshold method), tensor t by min(1, max_norm / (norm_t + 1e-6)).
// A NaN norm gives a NaN scale (as torch.clamp does), an infinite norm a zero scale.
// The norm is non-finite exactly when some gradient is NaN or infinite, or the norm overflows the gradients' dtype
// (float32 gradients near FLT_MAX: the double sum is finite, the float32 norm returned is inf).
//
// Order: each chunk of the table (multi_tensor.h) is summed into its own partial in double, in a fixed order within
// the chunk; S_t combines tensor t's partials and the total combines the S_t, each in a fixed order (the CPU's and
// CUDA's orders differ, each is fixed). No atomics: the same gradients give the same bits on every run and for any
// thread count.
//
// Device-side results, so an optimizer step needs no device-to-host synchronisation:
//   state (4,) float64: [norm, scale, non-finite (0 or 1), count of non-finite norms so far (incremented)]
//   scales (T,) float64: the scale for each tensor (the global one repeated unless per-tensor), read by updates.
#pragma once
#include <cmath>
#include <optional>
#include "array.h"
#include "multi_tensor.h"

namespace gradcore {

enum GradNormState { kStateNorm = 0, kStateScale = 1, kStateNonfinite = 2, kStateNonfiniteCount = 3, kStateSize = 4 };

struct GradNormParams {
  double norm_type = 2.0;   // > 0, or inf
  double max_norm = 0.0;    // used when clip is set
  bool clip = false;        // write scales
  bool per_tensor = false;  // scale each tensor by its own norm
};

// norm: 0-d Array of the gradients' dtype; state: (4,) float64; scales: (T,) float64 (written when params.clip).
void grad_norm_cpu(const TensorTableView& table, const GradNormParams& params, Array& norm, Array& state,
                   Array& scales);
// g_t *= scales[t] for every gradient of the table's grad column.
void grad_scale_cpu(const TensorTableView& table, const Array& scales);
// g = min(max(g, -clip_value), clip_value) for every gradient (NaN stays NaN).
void grad_clamp_cpu(const TensorTableView& table, double clip_value);
#ifdef GRADCORE_WITH_CUDA
void grad_norm_cuda(const TensorTableView& table, const GradNormParams& params, Array& norm, Array& state,
                    Array& scales);
void grad_scale_cuda(const TensorTableView& table, const Array& scales);
void grad_clamp_cuda(const TensorTableView& table, double clip_value);
#endif

// Checks, for the fused optimizers' bindings, the grad_norm outputs they read: grad_scales (at least
// scale_offset + n_tensors entries) and nonfinite_state (kStateSize), float64 on the table's device.
void check_step_inputs(const TensorTableView& view, const std::optional<Array>& grad_scales, int64_t scale_offset,
                       const std::optional<Array>& nonfinite_state);

// The scalar rules shared by both devices.

namespace grad_norm_math {

GRADCORE_HD double nan_max(double a, double b) { return (a > b || a != a) ? a : b; }

// Combines two partial results: sums, or NaN-propagating maxima for the inf norm.
GRADCORE_HD double combine(double a, double b, bool inf_norm) { return inf_norm ? nan_max(a, b) : a + b; }

// One element's contribution |g|^p (g^2 for p = 2, |g| for p = 1 and p = inf).
GRADCORE_HD double power(double g, double p, bool inf_norm) {
  const double a = g < 0 ? -g : g;
  if (inf_norm || p == 1.0) return g != g ? g : a;
  if (p == 2.0) return g * g;
  return pow(a, p);
}

GRADCORE_HD double root(double s, double p, bool inf_norm) {
  if (inf_norm || p == 1.0) return s;
  if (p == 2.0) return sqrt(s);
  return pow(s, 1.0 / p);
}

// PyTorch: clip_coef = max_norm / (norm + 1e-6), clamped to at most 1 (NaN passes through).
GRADCORE_HD double clip_scale(double norm, double max_norm) {
  const double coef = max_norm / (norm + 1e-6);
  return (coef < 1.0 || coef != coef) ? coef : 1.0;
}

}  // namespace grad_norm_math

}  // namespace gradcore
