// CPU batch normalisation; the maths and the order of summation are in batch_norm.h. Sums: one partial per
// (n, c) plane, each over the plane in two interleaved vectors of 8 double lanes (two chains hide the add latency;
// the vector types keep the accumulators in registers) and a scalar tail, combined in a fixed order; then the planes
// of a channel combined in n order. OpenMP splits the planes statically, and no partial depends on the split, so
// results are identical for any thread count.
#include "batch_norm.h"
#include <cstring>
#include <vector>
#include "cpu/epilogue.h"
#include "cpu/parallel.h"
#include "cpu/simd.h"

namespace gradcore {

namespace {

using cpu::kParallelThreshold;

// Eight doubles as one value (cpu/simd.h): one AVX-512 register, two AVX2 or four SSE2 ones; eight lanes on every
// machine, so the order of summation does not depend on the instruction set.
using Double8 = cpu::FixedVec<double, 8>;
using Float8 = cpu::FixedVec<float, 8>;

inline Double8 load8(const double* p) { return cpu::load_as<Double8>(p); }
inline Double8 load8(const float* p) { return __builtin_convertvector(cpu::load_as<Float8>(p), Double8); }

inline double lane_sum(Double8 v) {
  double s = 0.0;
  for (int l = 0; l < 8; ++l) s += v[l];
  return s;
}

// dy as the backward reads it: relu_backward(dy, y) with y the fused ReLU's saved output (elementwise.h's rule: 0
// where y <= 0, dy elsewhere, a NaN y included), or dy itself without one (y null). The same value the unfused
// _core.binary(dy, y, relu_backward) stores, so everything after it has the unfused pair's bits.
// (MASK is a template argument, so that the loops have no test of y inside.)
template <bool MASK, typename T> inline T masked(const T* dy, const T* y, int64_t j) {
  if constexpr (MASK) return y[j] <= T(0) ? T(0) : dy[j];
  return dy[j];
}
template <bool MASK, typename T> inline Double8 load8_masked(const T* dy, const T* y, int64_t j) {
  using V = cpu::FixedVec<T, 8>;
  if constexpr (!MASK) return load8(dy + j);
  const V g = cpu::load_as<V>(dy + j), v = cpu::load_as<V>(y + j), zero{};
  return __builtin_convertvector(v <= zero ? zero : g, Double8);
}

// Two sums over one plane of `count` values:
//   GRAD = false: s0 = sum (x - center), s1 = sum (x - center)^2
//   GRAD = true:  s0 = sum dy,           s1 = sum dy (x - center)     (dy masked by y when y is given)
template <bool GRAD, bool MASK, typename T>
void plane_sums(const T* x, const T* dy, const T* y, int64_t count, double center, double& s0, double& s1) {
  Double8 a0 = {}, a1 = {}, b0 = {}, b1 = {};
  int64_t j = 0;
  for (; j + 16 <= count; j += 16) {
    const Double8 d0 = load8(x + j) - center, d1 = load8(x + j + 8) - center;
    if constexpr (GRAD) {
      const Double8 g0 = load8_masked<MASK>(dy, y, j), g1 = load8_masked<MASK>(dy, y, j + 8);
      a0 += g0;
      a1 += g1;
      b0 += g0 * d0;
      b1 += g1 * d1;
    } else {
      a0 += d0;
      a1 += d1;
      b0 += d0 * d0;
      b1 += d1 * d1;
    }
  }
  double ta = 0.0, tb = 0.0;
  for (; j < count; ++j) {
    const double d = (double)x[j] - center;
    const double g = GRAD ? (double)masked<MASK>(dy, y, j) : d;
    ta += g;
    tb += g * d;
  }
  s0 = (lane_sum(a0) + lane_sum(a1)) + ta;
  s1 = (lane_sum(b0) + lane_sum(b1)) + tb;
}

// Per channel, in double: out = k_dy * dy + k_xc * (x - mean) + k_c (forward: k_dy = 0 and there is no dy).
struct ChannelCoefficients {
  double mean = 0.0, k_dy = 0.0, k_xc = 0.0, k_c = 0.0;
};

// out[n, c, :] from x (and dy) with channel c's coefficients; dy null for the forward pass, x null when k_xc = 0;
// y: the fused ReLU's output masking dy (masked above), or null.
template <typename T>
void apply_planes(const T* x, const T* dy, const T* y, T* out, const std::vector<ChannelCoefficients>& coef,
                  const BatchNormParams& p) {
  const int64_t N = p.batch, C = p.channels, HW = p.spatial;
#pragma omp parallel for collapse(2) schedule(static) if (N * C * HW >= kParallelThreshold)
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t c = 0; c < C; ++c) {
      const int64_t base = (n * C + c) * HW;
      const ChannelCoefficients& k = coef[(size_t)c];
      const SplitMean<T> m = split_mean<T>(k.mean);
      const T k_dy = (T)k.k_dy, k_xc = (T)k.k_xc, k_c = (T)k.k_c;
      T* o = out + base;
      if (!dy) {
        const T* xs = x + base;
        for (int64_t j = 0; j < HW; ++j) o[j] = ((xs[j] - m.hi) - m.lo) * k_xc + k_c;
        cpu::activate_span(o, HW, p.activation);  // the fused ReLU, on the plane just written (cpu/epilogue.h)
      } else if (!x) {
        const T* g = dy + base;
        if (y) {
          const T* ys = y + base;
          for (int64_t j = 0; j < HW; ++j) o[j] = masked<true>(g, ys, j) * k_dy;
        } else {
          for (int64_t j = 0; j < HW; ++j) o[j] = g[j] * k_dy;
        }
      } else {
        const T *xs = x + base, *g = dy + base;
        if (y) {
          const T* ys = y + base;
          for (int64_t j = 0; j < HW; ++j)
            o[j] = masked<true>(g, ys, j) * k_dy + (((xs[j] - m.hi) - m.lo) * k_xc + k_c);
        } else {
          for (int64_t j = 0; j < HW; ++j) o[j] = g[j] * k_dy + (((xs[j] - m.hi) - m.lo) * k_xc + k_c);
        }
      }
    }
  }
}

template <typename T> double weight_at(const Array* w, int64_t c) { return w ? (double)w->data_as<T>()[c] : 1.0; }

template <typename T>
void forward_train(const Array& x, const Array* weight, const Array* bias, Array* running_mean, Array* running_var,
                   Array& y, Array& save_mean, Array& save_invstd, const BatchNormParams& p) {
  const int64_t N = p.batch, C = p.channels, HW = p.spatial, M = p.per_channel();
  const T* px = x.data_as<T>();
  std::vector<double> s1((size_t)(N * C)), s2((size_t)(N * C));
#pragma omp parallel for collapse(2) schedule(static) if (N * C * HW >= kParallelThreshold)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      plane_sums<false, false>(px + (n * C + c) * HW, (const T*)nullptr, (const T*)nullptr, HW, (double)px[c * HW],
                               s1[(size_t)(n * C + c)], s2[(size_t)(n * C + c)]);

  std::vector<ChannelCoefficients> coef((size_t)C);
  double* sm = save_mean.data_as<double>();
  double* si = save_invstd.data_as<double>();
  for (int64_t c = 0; c < C; ++c) {
    double a = 0.0, b = 0.0;
    for (int64_t n = 0; n < N; ++n) {
      a += s1[(size_t)(n * C + c)];
      b += s2[(size_t)(n * C + c)];
    }
    double mean, var;
    batch_norm_moments((double)px[c * HW], a, b, (double)M, mean, var);
    const double invstd = batch_norm_invstd(var, p.eps);
    sm[c] = mean;
    si[c] = invstd;
    if (running_mean) {
      T* rm = running_mean->data_as<T>();
      T* rv = running_var->data_as<T>();
      const double unbiased = var * (double)M / (double)(M - 1);
      rm[c] = (T)((1.0 - p.momentum) * (double)rm[c] + p.momentum * mean);
      rv[c] = (T)((1.0 - p.momentum) * (double)rv[c] + p.momentum * unbiased);
    }
    coef[(size_t)c] = {mean, 0.0, weight_at<T>(weight, c) * invstd, bias ? (double)bias->data_as<T>()[c] : 0.0};
  }
  apply_planes<T>(px, nullptr, nullptr, y.data_as<T>(), coef, p);
}

template <typename T>
void forward_eval(const Array& x, const Array& running_mean, const Array& running_var, const Array* weight,
                  const Array* bias, Array& y, const BatchNormParams& p) {
  std::vector<ChannelCoefficients> coef((size_t)p.channels);
  for (int64_t c = 0; c < p.channels; ++c) {
    const double invstd = batch_norm_invstd((double)running_var.data_as<T>()[c], p.eps);
    coef[(size_t)c] = {(double)running_mean.data_as<T>()[c], 0.0, weight_at<T>(weight, c) * invstd,
                       bias ? (double)bias->data_as<T>()[c] : 0.0};
  }
  apply_planes<T>(x.data_as<T>(), nullptr, nullptr, y.data_as<T>(), coef, p);
}

// Both backward modes, given each channel's mean and invstd (the batch's or the running ones).
template <typename T>
void backward(const Array& dy, const Array* relu_y, const Array& x, const Array* weight,
              const std::vector<double>& mean, const std::vector<double>& invstd, bool training, Array* dx,
              Array* dweight, Array* dbias, const BatchNormParams& p) {
  const int64_t N = p.batch, C = p.channels, HW = p.spatial, M = p.per_channel();
  const T *pdy = dy.data_as<T>(), *px = x.data_as<T>(), *py = relu_y ? relu_y->data_as<T>() : nullptr;
  const bool need_sums = training ? (dx || dweight || dbias) : (dweight || dbias);
  std::vector<double> S0((size_t)C, 0.0), S1((size_t)C, 0.0);
  if (need_sums) {
    std::vector<double> s0((size_t)(N * C)), s1((size_t)(N * C));
#pragma omp parallel for collapse(2) schedule(static) if (N * C * HW >= kParallelThreshold)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < C; ++c)
        (py ? plane_sums<true, true, T> : plane_sums<true, false, T>)(
            px + (n * C + c) * HW, pdy + (n * C + c) * HW, py ? py + (n * C + c) * HW : nullptr, HW, mean[(size_t)c],
            s0[(size_t)(n * C + c)], s1[(size_t)(n * C + c)]);
    for (int64_t c = 0; c < C; ++c)
      for (int64_t n = 0; n < N; ++n) {
        S0[(size_t)c] += s0[(size_t)(n * C + c)];
        S1[(size_t)c] += s1[(size_t)(n * C + c)];
      }
  }
  for (int64_t c = 0; c < C; ++c) {
    if (dweight) dweight->data_as<T>()[c] = (T)(S1[(size_t)c] * invstd[(size_t)c]);
    if (dbias) dbias->data_as<T>()[c] = (T)S0[(size_t)c];
  }
  if (!dx) return;
  std::vector<ChannelCoefficients> coef((size_t)C);
  for (int64_t c = 0; c < C; ++c) {
    const double is = invstd[(size_t)c], k_dy = weight_at<T>(weight, c) * is;
    if (training)
      coef[(size_t)c] = {mean[(size_t)c], k_dy, -k_dy * is * is * S1[(size_t)c] / (double)M,
                         -k_dy * S0[(size_t)c] / (double)M};
    else
      coef[(size_t)c] = {0.0, k_dy, 0.0, 0.0};
  }
  apply_planes<T>(training ? px : nullptr, pdy, py, dx->data_as<T>(), coef, p);
}

}  // namespace

void batch_norm_forward_train_cpu(const Array& x, const Array* weight, const Array* bias, Array* running_mean,
                                  Array* running_var, Array& y, Array& save_mean, Array& save_invstd,
                                  const BatchNormParams& p) {
  dispatch_float(x.dtype(), [&](auto zero) {
    forward_train<decltype(zero)>(x, weight, bias, running_mean, running_var, y, save_mean, save_invstd, p);
  });
}

void batch_norm_forward_eval_cpu(const Array& x, const Array& running_mean, const Array& running_var,
                                 const Array* weight, const Array* bias, Array& y, const BatchNormParams& p) {
  dispatch_float(x.dtype(), [&](auto zero) {
    forward_eval<decltype(zero)>(x, running_mean, running_var, weight, bias, y, p);
  });
}

void batch_norm_backward_train_cpu(const Array& dy, const Array* relu_y, const Array& x, const Array* weight,
                                   const Array& save_mean, const Array& save_invstd, Array* dx, Array* dweight,
                                   Array* dbias, const BatchNormParams& p) {
  const double *sm = save_mean.data_as<double>(), *si = save_invstd.data_as<double>();
  const std::vector<double> mean(sm, sm + p.channels), invstd(si, si + p.channels);
  dispatch_float(x.dtype(), [&](auto zero) {
    backward<decltype(zero)>(dy, relu_y, x, weight, mean, invstd, true, dx, dweight, dbias, p);
  });
}

void batch_norm_backward_eval_cpu(const Array& dy, const Array* relu_y, const Array& x, const Array& running_mean,
                                  const Array& running_var, const Array* weight, Array* dx, Array* dweight,
                                  Array* dbias, const BatchNormParams& p) {
  dispatch_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    std::vector<double> mean((size_t)p.channels), invstd((size_t)p.channels);
    for (int64_t c = 0; c < p.channels; ++c) {
      mean[(size_t)c] = (double)running_mean.data_as<T>()[c];
      invstd[(size_t)c] = batch_norm_invstd((double)running_var.data_as<T>()[c], p.eps);
    }
    backward<T>(dy, relu_y, x, weight, mean, invstd, false, dx, dweight, dbias, p);
  });
}

}  // namespace gradcore
