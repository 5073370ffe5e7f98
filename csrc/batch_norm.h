// Batch normalisation over (N, C, H, W): per channel c, over its M = N*H*W values.
//
// Training forward (batch statistics, biased variance):
//   mean_c = (1/M) sum x          var_c = (1/M) sum (x - mean_c)^2          invstd_c = 1 / sqrt(var_c + eps)
//   xhat = (x - mean_c) * invstd_c                 y = w_c * xhat + b_c            (w = 1, b = 0 without affine)
//   running_mean <- (1 - momentum) running_mean + momentum mean_c
//   running_var  <- (1 - momentum) running_var  + momentum var_c * M / (M - 1)       (the unbiased variance)
//   momentum=None (the cumulative moving average) is handled above: Python passes momentum = 1/num_batches_tracked.
// Evaluation forward: the same y with mean_c = running_mean_c, invstd_c = 1 / sqrt(running_var_c + eps).
//
// Backward, training (through the batch mean and variance), with S0 = sum dy and S1 = sum dy * (x - mean_c):
//   db = S0        dw = sum dy * xhat = invstd_c S1
//   dx = (w invstd / M) (M dy - sum dy - xhat sum(dy xhat))
//      = k_dy dy + k_xc (x - mean_c) + k_c   with k_dy = w invstd, k_xc = -w invstd^3 S1 / M, k_c = -w invstd S0 / M
// Backward, evaluation (the statistics are constants): dx = w invstd dy (k_xc = k_c = 0); dw and db as above, with
// the running statistics as mean_c and invstd_c.
//
// Numerics. Statistics take one pass of shifted sums in double: with K = the channel's first value,
//   s1 = sum (x - K), s2 = sum (x - K)^2, mean = K + s1/M, var = s2/M - (s1/M)^2.
// The cancellation magnifies the double rounding of s2 by s2 / (M var) = 1 + (K - mean)^2 / var, which is O(1) for
// a typical first value and at most M + 1 (since M var >= (K - mean)^2), whatever the offset of the data: a mean of
// 1e4 against a spread of 1 is as accurate as a mean of 0. The backward sums are taken around the saved mean in
// double too.
// Saved batch statistics (save_mean, save_invstd) are float64 whatever x's dtype, so the backward pass does not lose
// the mean's low bits. The elementwise passes compute x - mean as (x - mean_hi) - mean_lo in x's dtype, with mean_hi
// the mean rounded to that dtype and mean_lo the remainder: exact for x near the mean (Sterbenz), so y keeps float32
// accuracy at large offsets without float64 arithmetic per element.
//
// Activation (p.activation, forward only; epilogue.h): the stored y is act(y), the fused batch_norm + ReLU, whose
// backward masks dy with relu_backward(dy, y) before the backward above (python/gradcore/ops/batch_norm.py). The
// backward kernels take that y (relu_y, null for plain batch_norm) and mask dy as they read it, in both of their
// passes over dy, instead of a separate mask pass writing a masked copy: relu_backward(dy, y) = (y <= 0 ? 0 : dy)
// is the same value either way, so the results are the unfused pair's bits.
//
// Order: every sum is a fixed tree over fixed pieces (CPU: one partial per (n, c) plane, combined in n order; CUDA:
// a fixed number of partials per channel chosen from the shape alone, combined in order). No float atomics: results
// are bitwise reproducible run after run and independent of the CPU thread count.
#pragma once
#include <cmath>
#include "array.h"
#include "epilogue.h"
#include "host_device.h"


namespace gradcore {

// The shape of x, (N, C, H, W) read as (batch, channels, spatial = H*W), and the scalars of the op.
struct BatchNormParams {
  int64_t batch = 0, channels = 0, spatial = 0;
  double eps = 1e-5;
  double momentum = 0.1;  // training only; ignored when there are no running statistics
  Activation activation = Activation::none;  // forward only: the epilogue of y
  int64_t per_channel() const { return batch * spatial; }  // M
};

// mean and biased variance from the shifted sums (see the header comment).
GRADCORE_HD void batch_norm_moments(double shift, double s1, double s2, double count, double& mean, double& var) {
  const double d = s1 / count;
  mean = shift + d;
  var = s2 / count - d * d;
  if (var < 0.0) var = 0.0;  // rounding can only take it a few ulps below zero
}

GRADCORE_HD double batch_norm_invstd(double var, double eps) { return 1.0 / sqrt(var + eps); }

// The mean split into the part representable in T and the remainder: x - mean = (x - hi) - lo.
template <typename T> struct SplitMean {
  T hi, lo;
};
template <typename T> GRADCORE_HD SplitMean<T> split_mean(double mean) {
  const T hi = (T)mean;
  return {hi, (T)(mean - (double)hi)};
}

// Training forward. weight, bias: (C) or null; running_mean, running_var: (C) or null, updated in place;
// y: (N, C, H, W); save_mean, save_invstd: (C) float64, the batch statistics backward needs.
void batch_norm_forward_train_cpu(const Array& x, const Array* weight, const Array* bias, Array* running_mean,
                                  Array* running_var, Array& y, Array& save_mean, Array& save_invstd,
                                  const BatchNormParams& p);
// Evaluation forward with the running statistics (C).
void batch_norm_forward_eval_cpu(const Array& x, const Array& running_mean, const Array& running_var,
                                 const Array* weight, const Array* bias, Array& y, const BatchNormParams& p);
// Training backward. dx (N, C, H, W), dweight (C), dbias (C): each null when not wanted. relu_y (N, C, H, W): the
// fused ReLU's output, whose mask applies to dy, or null.
void batch_norm_backward_train_cpu(const Array& dy, const Array* relu_y, const Array& x, const Array* weight,
                                   const Array& save_mean, const Array& save_invstd, Array* dx, Array* dweight,
                                   Array* dbias, const BatchNormParams& p);
// Evaluation backward with the running statistics the forward pass used.
void batch_norm_backward_eval_cpu(const Array& dy, const Array* relu_y, const Array& x, const Array& running_mean,
                                  const Array& running_var, const Array* weight, Array* dx, Array* dweight,
                                  Array* dbias, const BatchNormParams& p);
#ifdef GRADCORE_WITH_CUDA
void batch_norm_forward_train_cuda(const Array& x, const Array* weight, const Array* bias, Array* running_mean,
                                   Array* running_var, Array& y, Array& save_mean, Array& save_invstd,
                                   const BatchNormParams& p);
void batch_norm_forward_eval_cuda(const Array& x, const Array& running_mean, const Array& running_var,
                                  const Array* weight, const Array* bias, Array& y, const BatchNormParams& p);
void batch_norm_backward_train_cuda(const Array& dy, const Array* relu_y, const Array& x, const Array* weight,
                                    const Array& save_mean, const Array& save_invstd, Array* dx, Array* dweight,
                                    Array* dbias, const BatchNormParams& p);
void batch_norm_backward_eval_cuda(const Array& dy, const Array* relu_y, const Array& x, const Array& running_mean,
                                   const Array& running_var, const Array* weight, Array* dx, Array* dweight,
                                   Array* dbias, const BatchNormParams& p);
#endif

}  // namespace gradcore
