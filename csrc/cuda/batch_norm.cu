// CUDA batch normalisation; the maths and the numerics are in batch_norm.h.
//
// Work split. A channel's M = N*H*W values are read as packs of VEC values (float4 or double2 when H*W and the
// pointers allow, else narrower), N runs of H*W/VEC packs one image apart. Each channel's packs are cut into P equal
// ranges, with P chosen from the shape alone (partials_for): block (c, p) of kThreads threads owns range p of
// channel c. A thread walks its range with a stride of the block size, kUnroll packs in flight per step, summing in
// double; a fixed warp-shuffle tree and a fixed tree over the warps combine the block. Nothing depends on timing or
// on the device, so results are bitwise reproducible (and equal on any GPU).
//   P == 1 (small channels): one launch, one block per channel: sums, statistics, then y (or dx) over the channel,
//          whose second read mostly hits L1/L2.
//   P > 1: batch_norm_sums_kernel writes P partial sums per channel; in the apply kernel every block (c, p)
//          combines its channel's P partials with the same fixed tree (so all blocks get the same bits) and block
//          p == 0 also writes the statistics, the running statistics, dweight and dbias. Two launches. The apply
//          kernel walks the ranges in reverse, so its first blocks re-read what the sums kernel read last, which
//          is still in L2.
// Traffic: training forward reads x twice and writes y; training backward reads x and dy twice and writes dx (and,
// for the fused batch_norm + ReLU, the ReLU's output y with each read of dy: the mask is applied as dy is loaded);
// evaluation forward reads x once and writes y.
#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <type_traits>
#include "batch_norm.h"
#include "cuda/launch.cuh"

namespace gradcore {

namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kUnroll = 4;                    // packs each thread loads before it uses them
constexpr int64_t kMinPacksPerBlock = 2048;   // 8 packs per thread: fewer, and partials cost more than they save
constexpr int64_t kMinPacksPerElementwiseBlock = 512;  // without a reduction, more blocks cost nothing extra
constexpr int64_t kTargetBlocks = 1024;       // about one wave of 256-thread blocks on a 132-SM H100
constexpr int64_t kMaxPartials = kThreads;    // a block combines its channel's partials one per thread

template <typename T, int VEC> struct alignas(sizeof(T) * VEC) Pack {
  T v[VEC];
};

// Where channel c's packs lie: `packs` = N * plane_packs of them, plane_packs per image, image_stride packs apart.
struct ChannelLayout {
  uint32_t plane_packs;   // H*W / VEC
  uint32_t packs;         // N * H*W / VEC
  int64_t image_stride;   // C * H*W / VEC
  __device__ __forceinline__ int64_t offset(int64_t c, uint32_t k) const {
    const uint32_t n = k / plane_packs, j = k - n * plane_packs;
    return (int64_t)n * image_stride + c * (int64_t)plane_packs + j;
  }
  // Range p of P: [begin, end).
  __device__ __forceinline__ uint32_t bound(uint32_t p, uint32_t P) const {
    return (uint32_t)((uint64_t)packs * p / P);
  }
};

ChannelLayout layout_for(const BatchNormParams& p, int vec) {
  ChannelLayout l;
  l.plane_packs = (uint32_t)(p.spatial / vec);
  l.packs = (uint32_t)(p.per_channel() / vec);
  l.image_stride = p.channels * (p.spatial / vec);
  return l;
}

// Ranges per channel: enough blocks to fill the device, each with at least min_packs packs.
uint32_t partials_for(const ChannelLayout& l, int64_t channels, int64_t min_packs = kMinPacksPerBlock) {
  const int64_t by_size = ((int64_t)l.packs + min_packs - 1) / min_packs;
  const int64_t by_grid = std::max<int64_t>(1, kTargetBlocks / std::max<int64_t>(channels, 1));
  return (uint32_t)std::max<int64_t>(1, std::min({by_size, by_grid, kMaxPartials}));
}

// Sum over the block in a fixed order; the result is valid in thread 0.
__device__ double2 block_sum(double2 v) {
  __shared__ double2 warp_sums[kWarps];
  for (int offset = 16; offset > 0; offset /= 2) {
    v.x += __shfl_down_sync(0xffffffffu, v.x, offset);
    v.y += __shfl_down_sync(0xffffffffu, v.y, offset);
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  v = make_double2(0.0, 0.0);
  if (warp == 0) {
    if (lane < kWarps) v = warp_sums[lane];
    for (int offset = 16; offset > 0; offset /= 2) {
      v.x += __shfl_down_sync(0xffffffffu, v.x, offset);
      v.y += __shfl_down_sync(0xffffffffu, v.y, offset);
    }
  }
  __syncthreads();  // warp_sums is free for the next call
  return v;
}

enum class SumKind { moments, grad };  // (sum (x-K), sum (x-K)^2) or (sum dy, sum dy (x-mean))

// dy as the backward reads it: masked by the fused ReLU's output y (relu_backward: 0 where y <= 0, dy elsewhere, a
// NaN y included), or dy itself when there is no y (batch_norm.h).
template <typename T, int VEC>
__device__ __forceinline__ Pack<T, VEC> load_dy(const Pack<T, VEC>* dy, const Pack<T, VEC>* relu_y, int64_t o) {
  Pack<T, VEC> g = dy[o];
  if (relu_y) {
    const Pack<T, VEC> y = relu_y[o];
#pragma unroll
    for (int i = 0; i < VEC; ++i) g.v[i] = y.v[i] <= T(0) ? T(0) : g.v[i];
  }
  return g;
}

template <typename T, int VEC, SumKind KIND>
__device__ double2 thread_sums(const T* __restrict__ x, const T* __restrict__ dy, const T* __restrict__ relu_y,
                               const ChannelLayout& l, int64_t c, uint32_t begin, uint32_t end, double center) {
  using P = Pack<T, VEC>;
  const P* px = reinterpret_cast<const P*>(x);
  const P* pdy = reinterpret_cast<const P*>(dy);
  const P* pry = reinterpret_cast<const P*>(relu_y);
  double s0 = 0.0, s1 = 0.0;
  for (uint32_t base = begin + threadIdx.x; base < end; base += kUnroll * kThreads) {
    P a[kUnroll], g[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const uint32_t k = base + u * kThreads;
      if (k < end) {
        const int64_t o = l.offset(c, k);
        a[u] = px[o];
        if constexpr (KIND == SumKind::grad) g[u] = load_dy(pdy, pry, o);
      }
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      if (base + u * kThreads < end) {
#pragma unroll
        for (int i = 0; i < VEC; ++i) {
          const double d = (double)a[u].v[i] - center;
          if constexpr (KIND == SumKind::moments) {
            s0 += d;
            s1 = fma(d, d, s1);
          } else {
            const double gi = (double)g[u].v[i];
            s0 += gi;
            s1 = fma(gi, d, s1);
          }
        }
      }
    }
  }
  return make_double2(s0, s1);
}

// out = k_dy dy + ((x - hi) - lo) k_xc + k_c, per channel (see batch_norm.h).
template <typename T> struct Coefficients {
  T hi, lo, k_dy, k_xc, k_c;
  Activation act;  // forward: the fused ReLU (epilogue.h); none from coefficients() (no initialiser: __shared__)
};

template <typename T> __device__ Coefficients<T> coefficients(double mean, double k_dy, double k_xc, double k_c) {
  const SplitMean<T> m = split_mean<T>(mean);
  return {m.hi, m.lo, (T)k_dy, (T)k_xc, (T)k_c, Activation::none};
}

enum class ApplyKind { normalise, grad_train, grad_scale };  // y from x; dx from dy and x; dx = k_dy dy

template <typename T, int VEC, ApplyKind KIND>
__device__ void apply_range(const T* __restrict__ x, const T* __restrict__ dy, const T* __restrict__ relu_y,
                            T* __restrict__ out, const ChannelLayout& l, int64_t c, uint32_t begin, uint32_t end,
                            Coefficients<T> k) {
  using P = Pack<T, VEC>;
  const P* px = reinterpret_cast<const P*>(x);
  const P* pdy = reinterpret_cast<const P*>(dy);
  const P* pry = reinterpret_cast<const P*>(relu_y);
  P* po = reinterpret_cast<P*>(out);
  for (uint32_t base = begin + threadIdx.x; base < end; base += kUnroll * kThreads) {
    P a[kUnroll], g[kUnroll];
    int64_t o[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const uint32_t k_index = base + u * kThreads;
      o[u] = k_index < end ? l.offset(c, k_index) : -1;
      if (o[u] >= 0) {
        if constexpr (KIND != ApplyKind::grad_scale) a[u] = px[o[u]];
        if constexpr (KIND != ApplyKind::normalise) g[u] = load_dy(pdy, pry, o[u]);
      }
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      if (o[u] < 0) continue;
      P r;
#pragma unroll
      for (int i = 0; i < VEC; ++i) {
        if constexpr (KIND == ApplyKind::normalise)
          r.v[i] = activate(((a[u].v[i] - k.hi) - k.lo) * k.k_xc + k.k_c, k.act);
        else if constexpr (KIND == ApplyKind::grad_train)
          r.v[i] = g[u].v[i] * k.k_dy + (((a[u].v[i] - k.hi) - k.lo) * k.k_xc + k.k_c);
        else
          r.v[i] = g[u].v[i] * k.k_dy;
      }
      po[o[u]] = r;
    }
  }
}

template <typename T> struct ForwardArgs {
  const T* x;                            // (N, C, H, W)
  T* y;                                  // (N, C, H, W)
  const T* weight;                       // (C) or null (1)
  const T* bias;                         // (C) or null (0)
  T* running_mean;                       // (C) or null; updated in training, read in evaluation
  T* running_var;                        // (C) or null
  double* save_mean;                     // (C) training only
  double* save_invstd;                   // (C) training only
  const double2* partials;               // (C, P) moments, or null: the block sums its channel itself (P == 1)
  uint32_t num_partials;                 // P
  ChannelLayout layout;
  int64_t spatial;                       // H*W: x[c * spatial] is channel c's first value, the shift K
  double count, eps, momentum;           // M, eps, momentum
  Activation act;                        // the epilogue of y (epilogue.h)
};

template <typename T> struct BackwardArgs {
  const T* dy;                           // (N, C, H, W)
  const T* relu_y;                       // (N, C, H, W): the fused ReLU's output masking dy, or null
  const T* x;                            // (N, C, H, W)
  const T* weight;                       // (C) or null (1)
  const double* save_mean;               // (C) training: the batch statistics
  const double* save_invstd;             // (C)
  const T* running_mean;                 // (C) evaluation: the running statistics
  const T* running_var;                  // (C)
  T* dx;                                 // (N, C, H, W) or null
  T* dweight;                            // (C) or null
  T* dbias;                              // (C) or null
  const double2* partials;               // (C, P) (sum dy, sum dy (x - mean)), or null (see need_sums)
  uint32_t num_partials;                 // P
  bool need_sums;                        // false: evaluation with only dx wanted
  ChannelLayout layout;
  double count, eps;

  __device__ void stats(int64_t c, double& mean, double& invstd) const {
    if (save_mean) {
      mean = save_mean[c];
      invstd = save_invstd[c];
    } else {
      mean = (double)running_mean[c];
      invstd = batch_norm_invstd((double)running_var[c], eps);
    }
  }
};

template <typename T> __device__ double weight_or_one(const T* w, int64_t c) { return w ? (double)w[c] : 1.0; }

// grid (C, P): the partial sums of range p of channel c into partials[c * P + p].
template <typename T, int VEC, SumKind KIND>
__global__ void __launch_bounds__(kThreads) batch_norm_sums_kernel(const T* x, const T* dy, const T* relu_y,
                                                                   ChannelLayout l, int64_t spatial,
                                                                   const double* center, const T* running_center,
                                                                   double2* partials) {
  const int64_t c = blockIdx.x;
  const uint32_t p = blockIdx.y, P = gridDim.y;
  double shift;
  if constexpr (KIND == SumKind::moments) shift = (double)x[c * spatial];
  else shift = center ? center[c] : (double)running_center[c];
  const double2 s =
      block_sum(thread_sums<T, VEC, KIND>(x, dy, relu_y, l, c, l.bound(p, P), l.bound(p + 1, P), shift));
  if (threadIdx.x == 0) partials[c * P + p] = s;
}

// Channel c's sums: its P partials combined in a fixed order, or (no partials) the whole channel summed here.
template <typename T, int VEC, SumKind KIND>
__device__ double2 channel_sums(const double2* partials, uint32_t P, const T* x, const T* dy, const T* relu_y,
                                const ChannelLayout& l, int64_t c, double shift) {
  if (partials) return block_sum(threadIdx.x < P ? partials[c * P + threadIdx.x] : make_double2(0.0, 0.0));
  return block_sum(thread_sums<T, VEC, KIND>(x, dy, relu_y, l, c, 0, l.packs, shift));
}

// The range this block normalises: reversed, so the first blocks re-read what the sums kernel read last.
__device__ __forceinline__ uint32_t apply_part() { return gridDim.y - 1 - blockIdx.y; }

// grid (C, P). Training forward: statistics, running statistics (block p == 0), then y over range p.
template <typename T, int VEC>
__global__ void __launch_bounds__(kThreads) batch_norm_forward_train_kernel(ForwardArgs<T> a) {
  __shared__ Coefficients<T> shared_k;
  const int64_t c = blockIdx.x;
  const double shift = (double)a.x[c * a.spatial];
  const double2 s =
      channel_sums<T, VEC, SumKind::moments>(a.partials, a.num_partials, a.x, nullptr, nullptr, a.layout, c, shift);
  if (threadIdx.x == 0) {
    double mean, var;
    batch_norm_moments(shift, s.x, s.y, a.count, mean, var);
    const double invstd = batch_norm_invstd(var, a.eps);
    if (blockIdx.y == 0) {
      a.save_mean[c] = mean;
      a.save_invstd[c] = invstd;
      if (a.running_mean) {
        const double unbiased = var * a.count / (a.count - 1.0);
        a.running_mean[c] = (T)((1.0 - a.momentum) * (double)a.running_mean[c] + a.momentum * mean);
        a.running_var[c] = (T)((1.0 - a.momentum) * (double)a.running_var[c] + a.momentum * unbiased);
      }
    }
    shared_k = coefficients<T>(mean, 0.0, weight_or_one(a.weight, c) * invstd, a.bias ? (double)a.bias[c] : 0.0);
    shared_k.act = a.act;
  }
  __syncthreads();
  const uint32_t p = apply_part();
  apply_range<T, VEC, ApplyKind::normalise>(a.x, nullptr, nullptr, a.y, a.layout, c,
                                            a.layout.bound(p, gridDim.y), a.layout.bound(p + 1, gridDim.y), shared_k);
}

// grid (C, P). Evaluation forward with the running statistics.
template <typename T, int VEC>
__global__ void __launch_bounds__(kThreads) batch_norm_forward_eval_kernel(ForwardArgs<T> a) {
  const int64_t c = blockIdx.x;
  const double invstd = batch_norm_invstd((double)a.running_var[c], a.eps);
  Coefficients<T> k = coefficients<T>((double)a.running_mean[c], 0.0, weight_or_one(a.weight, c) * invstd,
                                      a.bias ? (double)a.bias[c] : 0.0);
  k.act = a.act;
  const uint32_t p = blockIdx.y;
  apply_range<T, VEC, ApplyKind::normalise>(a.x, nullptr, nullptr, a.y, a.layout, c,
                                            a.layout.bound(p, gridDim.y), a.layout.bound(p + 1, gridDim.y), k);
}

// grid (C, P), or (C, 1) when dx is not wanted. dweight, dbias (block p == 0), then dx over range p.
template <typename T, int VEC, bool TRAINING>
__global__ void __launch_bounds__(kThreads) batch_norm_backward_kernel(BackwardArgs<T> a) {
  __shared__ Coefficients<T> shared_k;
  const int64_t c = blockIdx.x;
  double mean, invstd;
  a.stats(c, mean, invstd);
  double2 s = make_double2(0.0, 0.0);
  if (a.need_sums)
    s = channel_sums<T, VEC, SumKind::grad>(a.partials, a.num_partials, a.x, a.dy, a.relu_y, a.layout, c, mean);
  if (threadIdx.x == 0) {
    if (blockIdx.y == 0) {
      if (a.dweight) a.dweight[c] = (T)(s.y * invstd);
      if (a.dbias) a.dbias[c] = (T)s.x;
    }
    const double k_dy = weight_or_one(a.weight, c) * invstd;
    if (TRAINING)
      shared_k = coefficients<T>(mean, k_dy, -k_dy * invstd * invstd * s.y / a.count, -k_dy * s.x / a.count);
    else
      shared_k = coefficients<T>(0.0, k_dy, 0.0, 0.0);
  }
  __syncthreads();
  if (!a.dx) return;
  const uint32_t p = apply_part();
  constexpr ApplyKind kind = TRAINING ? ApplyKind::grad_train : ApplyKind::grad_scale;
  apply_range<T, VEC, kind>(a.x, a.dy, a.relu_y, a.dx, a.layout, c, a.layout.bound(p, gridDim.y),
                            a.layout.bound(p + 1, gridDim.y), shared_k);
}

// The widest pack (16 bytes at most) that divides H*W and to which every pointer is aligned.
template <typename T> int pack_width(int64_t spatial, std::initializer_list<const void*> pointers) {
  for (int vec = 16 / (int)sizeof(T); vec > 1; vec /= 2) {
    bool ok = spatial % vec == 0;
    for (const void* ptr : pointers) ok = ok && (reinterpret_cast<uintptr_t>(ptr) % (sizeof(T) * vec) == 0);
    if (ok) return vec;
  }
  return 1;
}

template <typename T, typename Fn> void dispatch_pack(int vec, Fn&& fn) {
  if constexpr (sizeof(T) == 4) {
    if (vec == 4) return fn(std::integral_constant<int, 4>{});
  }
  if (vec == 2) return fn(std::integral_constant<int, 2>{});
  fn(std::integral_constant<int, 1>{});
}

void check_size(const BatchNormParams& p) {
  if (p.per_channel() >= (int64_t(1) << 31))
    throw ArgError("x: at most 2^31 - 1 values per channel (N*H*W) are supported on CUDA, got " +
                   std::to_string(p.per_channel()));
}

template <typename T> const T* data_or_null(const Array* a) { return a ? a->data_as<T>() : nullptr; }
template <typename T> T* mutable_or_null(Array* a) { return a ? a->data_as<T>() : nullptr; }

}  // namespace

void batch_norm_forward_train_cuda(const Array& x, const Array* weight, const Array* bias, Array* running_mean,
                                   Array* running_var, Array& y, Array& save_mean, Array& save_invstd,
                                   const BatchNormParams& p) {
  if (p.channels == 0) return;
  check_size(p);
  cudaStream_t stream = cuda::stream_of(x);
  dispatch_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const int vec = pack_width<T>(p.spatial, {x.data(), y.data()});
    dispatch_pack<T>(vec, [&](auto vec_constant) {
      constexpr int VEC = decltype(vec_constant)::value;
      ForwardArgs<T> a{x.data_as<T>(), y.data_as<T>(), data_or_null<T>(weight), data_or_null<T>(bias),
                       mutable_or_null<T>(running_mean), mutable_or_null<T>(running_var),
                       save_mean.data_as<double>(), save_invstd.data_as<double>(), nullptr, 0, layout_for(p, VEC),
                       p.spatial, (double)p.per_channel(), p.eps, p.momentum, p.activation};
      const uint32_t P = partials_for(a.layout, p.channels);
      const dim3 grid((unsigned)p.channels, P);
      Array partials;
      if (P > 1) {
        partials = Array::empty({p.channels * P * 2}, DType::float64, x.device());  // every slot written
        double2* d_partials = reinterpret_cast<double2*>(partials.data());
        cuda::launch("batch_norm_sums_kernel", batch_norm_sums_kernel<T, VEC, SumKind::moments>, grid, kThreads,
            stream, a.x, nullptr, nullptr, a.layout, p.spatial, nullptr, nullptr, d_partials);
        a.partials = d_partials;
        a.num_partials = P;
      }
      cuda::launch("batch_norm_forward_train_kernel", batch_norm_forward_train_kernel<T, VEC>, grid, kThreads, stream,
          a);
    });
  });
}

void batch_norm_forward_eval_cuda(const Array& x, const Array& running_mean, const Array& running_var,
                                  const Array* weight, const Array* bias, Array& y, const BatchNormParams& p) {
  if (p.channels == 0 || p.per_channel() == 0) return;
  check_size(p);
  cudaStream_t stream = cuda::stream_of(x);
  dispatch_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const int vec = pack_width<T>(p.spatial, {x.data(), y.data()});
    dispatch_pack<T>(vec, [&](auto vec_constant) {
      constexpr int VEC = decltype(vec_constant)::value;
      ForwardArgs<T> a{x.data_as<T>(), y.data_as<T>(), data_or_null<T>(weight), data_or_null<T>(bias),
                       running_mean.data_as<T>(), running_var.data_as<T>(), nullptr, nullptr, nullptr, 0,
                       layout_for(p, VEC), p.spatial, (double)p.per_channel(), p.eps, 0.0, p.activation};
      const dim3 grid((unsigned)p.channels, partials_for(a.layout, p.channels, kMinPacksPerElementwiseBlock));
      cuda::launch("batch_norm_forward_eval_kernel", batch_norm_forward_eval_kernel<T, VEC>, grid, kThreads, stream, a);
    });
  });
}

namespace {

// Both backward modes: TRAINING reads the saved batch statistics, evaluation the running ones.
template <bool TRAINING>
void backward_cuda(const Array& dy, const Array* relu_y, const Array& x, const Array* weight, const Array* save_mean,
                   const Array* save_invstd, const Array* running_mean, const Array* running_var, Array* dx,
                   Array* dweight, Array* dbias, const BatchNormParams& p) {
  if (p.channels == 0) return;
  check_size(p);
  if (p.per_channel() == 0) {  // empty batch (evaluation only): the sums are zero
    if (dweight) dweight->fill(0.0);
    if (dbias) dbias->fill(0.0);
    return;
  }
  cudaStream_t stream = cuda::stream_of(x);
  dispatch_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const int vec = pack_width<T>(p.spatial, {x.data(), dy.data(), relu_y ? relu_y->data() : nullptr,
                                              dx ? dx->data() : nullptr});
    dispatch_pack<T>(vec, [&](auto vec_constant) {
      constexpr int VEC = decltype(vec_constant)::value;
      BackwardArgs<T> a{dy.data_as<T>(),
                        data_or_null<T>(relu_y),
                        x.data_as<T>(),
                        data_or_null<T>(weight),
                        save_mean ? save_mean->data_as<double>() : nullptr,
                        save_invstd ? save_invstd->data_as<double>() : nullptr,
                        data_or_null<T>(running_mean),
                        data_or_null<T>(running_var),
                        mutable_or_null<T>(dx),
                        mutable_or_null<T>(dweight),
                        mutable_or_null<T>(dbias),
                        nullptr,
                        0,
                        TRAINING || dweight || dbias,
                        layout_for(p, VEC),
                        (double)p.per_channel(),
                        p.eps};
      const uint32_t P = partials_for(a.layout, p.channels,
                                      a.need_sums ? kMinPacksPerBlock : kMinPacksPerElementwiseBlock);
      Array partials;
      if (a.need_sums && P > 1) {
        partials = Array::empty({p.channels * P * 2}, DType::float64, x.device());  // every slot written
        double2* d_partials = reinterpret_cast<double2*>(partials.data());
        cuda::launch("batch_norm_sums_kernel", batch_norm_sums_kernel<T, VEC, SumKind::grad>,
            dim3((unsigned)p.channels, P), kThreads, stream, a.x, a.dy, a.relu_y, a.layout, p.spatial, a.save_mean,
            a.running_mean, d_partials);
        a.partials = d_partials;
        a.num_partials = P;
      }
      // Without dx the kernel only combines the sums and writes dweight and dbias: one block per channel.
      const unsigned parts = dx ? P : 1;
      cuda::launch("batch_norm_backward_kernel", batch_norm_backward_kernel<T, VEC, TRAINING>,
          dim3((unsigned)p.channels, parts), kThreads, stream, a);
    });
  });
}

}  // namespace

void batch_norm_backward_train_cuda(const Array& dy, const Array* relu_y, const Array& x, const Array* weight,
                                    const Array& save_mean, const Array& save_invstd, Array* dx, Array* dweight,
                                    Array* dbias, const BatchNormParams& p) {
  backward_cuda<true>(dy, relu_y, x, weight, &save_mean, &save_invstd, nullptr, nullptr, dx, dweight, dbias, p);
}

void batch_norm_backward_eval_cuda(const Array& dy, const Array* relu_y, const Array& x, const Array& running_mean,
                                   const Array& running_var, const Array* weight, Array* dx, Array* dweight,
                                   Array* dbias, const BatchNormParams& p) {
  backward_cuda<false>(dy, relu_y, x, weight, nullptr, nullptr, &running_mean, &running_var, dx, dweight, dbias, p);
}

}  // namespace gradcore
