// Cross-entropy from logits (fused with log_softmax) and nll_loss from log-probabilities, per position.
//
// Layout: input (N, C, S) with S the product of any trailing spatial dimensions (an unbatched (C) input is N = 1,
// S = 1); a position is one (n, s), its C class values S elements apart. Targets: class indices (N, S) int64, or
// class probabilities (N, C, S) of input's dtype. w: the class weights (C), 1 when not given; eps: label smoothing.
//   cross_entropy: lp_c = x_c - lse, lse = m + log sum_c e^(x_c - m), m = max_c x_c   (stable for any logits)
//   nll_loss:      lp_c = x_c (the input is already log-probabilities; eps = 0)
// Class-index target t (loss 0 and weight 0 where t == ignore_index):
//   loss = -(1 - eps) w_t lp_t - (eps / C) sum_c w_c lp_c          weight of the position: w_t
// Probability target q: with q'_c = (1 - eps) q_c + eps / C,
//   loss = -sum_c w_c q'_c lp_c
// Both are loss = -sum_c a_c lp_c with a_c = (1 - eps) w_t [c == t] + (eps / C) w_c, or a_c = w_c q'_c. Reductions
// (in Python): none; sum; mean = sum / (sum of the positions' weights) for class indices (PyTorch's rule: NaN when
// every target is ignored), sum / (N S) for probabilities.
// Backward, fused in one kernel per position with the incoming gradient g (per position, or one value for sum and
// mean, already divided by the normaliser), writing every class of the position:
//   cross_entropy: dx_c = g (softmax_c A - a_c),  A = sum_c a_c,  softmax_c = e^(x_c - lse)
//   nll_loss:      dx_c = -g a_c
//   probabilities, d/dq_c (when the target needs a gradient): -g (1 - eps) w_c lp_c
// Order: every sum over the classes runs in double, in an order fixed by C alone (CPU: class order; CUDA: a fixed
// lane split and shuffle tree for contiguous rows, class order otherwise). No atomics on values.
#pragma once
#include <cstdint>
#include "array.h"
#include "host_device.h"
#include "softmax.h"  // softmax_exp: the same exponential as softmax, on each device

namespace gradcore {

enum class ClassLoss { cross_entropy, nll };

struct CrossEntropyParams {
  ClassLoss kind = ClassLoss::cross_entropy;
  int64_t batch = 0, classes = 0, spatial = 1;  // (N, C, S)
  bool probability_target = false;
  int64_t ignore_index = -100;                  // class-index targets only
  double label_smoothing = 0.0;
  GRADCORE_HD int64_t positions() const { return batch * spatial; }
};

// Pointers the kernels use; null where absent.
template <typename T> struct CrossEntropyData {
  const T* x;              // (N, C, S)
  const int64_t* labels;   // (N, S), class-index targets
  const T* probs;          // (N, C, S), probability targets
  const T* weight;         // (C) or null (all 1)
  T* loss;                 // (N, S) forward
  double* lse;             // (N, S) written forward, read backward (0 for nll); double keeps x - lse exact enough
  T* position_weight;      // (N, S) forward, class-index targets: w_t, 0 where ignored
  int64_t* bad_position;   // forward: the first invalid class index's position is recorded here (see below)
  const T* grad;           // backward: (N, S), or one value when grad_is_scalar
  bool grad_is_scalar;
  T* dx;                   // (N, C, S) backward
  T* dtarget;              // (N, C, S) backward, probability targets, or null
};

template <typename T> GRADCORE_HD T class_weight(const T* weight, int64_t c) { return weight ? weight[c] : T(1); }
template <typename T> GRADCORE_HD T max_or_nan(T a, T b) { return (b > a || b != b) ? b : a; }

// One position's classes are shared by `lanes` cooperating threads (lane l takes classes l, l + lanes, ...);
// `rows` combines the lanes' partial results in a fixed order and gives every lane the total (one lane: the
// identity; a warp: a shuffle tree, in the CUDA file). So the CPU loop and both CUDA kernels run this same code.

// Forward at position pos. Returns false when its class index is invalid (nothing is written then).
template <typename T, typename Rows>
GRADCORE_HD bool cross_entropy_forward_position(const CrossEntropyData<T>& d, const CrossEntropyParams& p,
                                                int64_t pos, int lane, int lanes, const Rows& rows) {
  const int64_t C = p.classes, S = p.spatial, n = pos / S, s = pos - n * S;
  const int64_t base = n * C * S + s;
  const T* xr = d.x + base;
  double lse = 0.0;
  if (p.kind == ClassLoss::cross_entropy) {
    T m = -INFINITY;
    for (int64_t c = lane; c < C; c += lanes) m = max_or_nan(m, xr[c * S]);
    m = rows.max(m);
    double se = 0.0;
    for (int64_t c = lane; c < C; c += lanes) se += (double)softmax_exp<T>(xr[c * S] - m);
    se = rows.sum(se);
    lse = (double)m + log(se);
  }
  const double eps = p.label_smoothing, smooth = eps / (double)C;
  double loss, position_weight = 0.0;
  if (p.probability_target) {
    const T* qr = d.probs + base;
    double acc = 0.0;
    for (int64_t c = lane; c < C; c += lanes) {
      const double q = (1.0 - eps) * (double)qr[c * S] + smooth;
      acc += (double)class_weight(d.weight, c) * q * ((double)xr[c * S] - lse);
    }
    loss = -rows.sum(acc);
  } else {
    const int64_t t = d.labels[pos];
    if (t == p.ignore_index) {
      loss = 0.0;
    } else {
      if (t < 0 || t >= C) return false;
      position_weight = (double)class_weight(d.weight, t);
      loss = -(1.0 - eps) * position_weight * ((double)xr[t * S] - lse);
      if (eps > 0.0) {
        double acc = 0.0;
        for (int64_t c = lane; c < C; c += lanes) acc += (double)class_weight(d.weight, c) * ((double)xr[c * S] - lse);
        loss -= smooth * rows.sum(acc);
      }
    }
  }
  if (lane == 0) {
    d.loss[pos] = (T)loss;
    d.lse[pos] = lse;
    if (d.position_weight) d.position_weight[pos] = (T)position_weight;
  }
  return true;
}

// Backward at position pos: every class of dx (and dtarget) written.
template <typename T, typename Rows>
GRADCORE_HD void cross_entropy_backward_position(const CrossEntropyData<T>& d, const CrossEntropyParams& p,
                                                 int64_t pos, int lane, int lanes, const Rows& rows) {
  const int64_t C = p.classes, S = p.spatial, n = pos / S, s = pos - n * S;
  const int64_t base = n * C * S + s;
  const T* xr = d.x + base;
  T* dxr = d.dx + base;
  const double lse = d.lse[pos];
  const T g = d.grad_is_scalar ? d.grad[0] : d.grad[pos];
  const bool softmax = p.kind == ClassLoss::cross_entropy;
  const T eps = (T)p.label_smoothing, smooth = (T)(p.label_smoothing / (double)C);
  if (p.probability_target) {
    const T* qr = d.probs + base;
    double acc = 0.0;
    for (int64_t c = lane; c < C; c += lanes)
      acc += (double)class_weight(d.weight, c) * ((1.0 - p.label_smoothing) * (double)qr[c * S] +
                                                  p.label_smoothing / (double)C);
    const T A = (T)rows.sum(acc);
    for (int64_t c = lane; c < C; c += lanes) {
      const T w = class_weight(d.weight, c), lp = (T)((double)xr[c * S] - lse);
      const T a = w * ((T(1) - eps) * qr[c * S] + smooth);
      dxr[c * S] = softmax ? g * (softmax_exp<T>(lp) * A - a) : -g * a;
      if (d.dtarget) d.dtarget[base + c * S] = -g * (T(1) - eps) * w * lp;
    }
    return;
  }
  const int64_t t = d.labels[pos];
  if (t == p.ignore_index) {
    for (int64_t c = lane; c < C; c += lanes) dxr[c * S] = T(0);
    return;
  }
  const T wt = class_weight(d.weight, t), picked = (T(1) - eps) * wt;
  T A = picked;
  if (p.label_smoothing > 0.0) {
    double acc = 0.0;
    for (int64_t c = lane; c < C; c += lanes) acc += (double)class_weight(d.weight, c);
    A = (T)((double)picked + p.label_smoothing / (double)C * rows.sum(acc));
  }
  for (int64_t c = lane; c < C; c += lanes) {
    const T a = (c == t ? picked : T(0)) + smooth * class_weight(d.weight, c);
    dxr[c * S] = softmax ? g * (softmax_exp<T>((T)((double)xr[c * S] - lse)) * A - a) : -g * a;
  }
}

// One lane per position: the combination is the identity.
struct SingleLane {
  template <typename T> GRADCORE_HD T max(T v) const { return v; }
  GRADCORE_HD double sum(double v) const { return v; }
};

// The arrays of one call; pointers are null where absent. Targets: labels (N, S) int64 or probs (N, C, S).
struct CrossEntropyArrays {
  const Array* x;                  // (N, C, S)
  const Array* labels;             // (N, S) int64
  const Array* probs;              // (N, C, S)
  const Array* weight;             // (C)
};

// Forward: loss, lse and (class indices) position_weight, each (N, S). bad_position: the first position (n * S + s)
// whose class index is neither in [0, C) nor ignore_index, or -1 when every target is valid (the binding raises
// ValueError naming it; the outputs are then unspecified).
void cross_entropy_forward_cpu(const CrossEntropyArrays& in, Array& loss, Array& lse, Array* position_weight,
                               int64_t& bad_position, const CrossEntropyParams& p);
// Backward: dx (N, C, S) and, for probability targets, dtarget (or null), from the forward's lse and grad: (N, S), or
// one value (sum and mean reductions, already divided by the normaliser).
void cross_entropy_backward_cpu(const CrossEntropyArrays& in, const Array& lse, const Array& grad, Array& dx,
                                Array* dtarget, const CrossEntropyParams& p);
#ifdef GRADCORE_WITH_CUDA
void cross_entropy_forward_cuda(const CrossEntropyArrays& in, Array& loss, Array& lse, Array* position_weight,
                                int64_t& bad_position, const CrossEntropyParams& p);
void cross_entropy_backward_cuda(const CrossEntropyArrays& in, const Array& lse, const Array& grad, Array& dx,
                                 Array* dtarget, const CrossEntropyParams& p);
#endif

}  // namespace gradcore
