// CUDA conv2d: three implicit GEMMs (no im2col buffer) over one tiled shared-memory kernel; the maths is in conv2d.h.
//
//   forward          Y_g  (C_out/G x N*P)     = W_g (C_out/G x K)           * col_g (K x N*P)
//                    (forward and backward_input store act(sum + bias), p.activation: the fused conv + ReLU)
//   backward_input   dX_g (C_in/G x N*H*W)    = W_g^T-by-(co,kh,kw)         * gathered gy (K' x N*H*W)
//                    (the gather form: each dX element is one dot product, written once, no atomics)
//   backward_weight  dW_g (C_out/G x K)       = gy_g (C_out/G x N*P)        * col_g^T (N*P x K)
//                    split over fixed chunks of N*P: each chunk's product goes to its own slice of a partial
//                    buffer (every element written by exactly one block), then a second kernel sums the slices
//                    in chunk order. The chunking depends on the shapes alone, so results are bitwise reproducible.
//
// The tiled kernel and its launch are the shared GEMM's (cuda/gemm.cuh); this file holds the three Problem structs
// that say how an element of A or B is read from the tensors (0 outside the image) and where a result goes.
// The Problem structs' index maths was checked on the host against the direct definitions (every problem, with
// asymmetric padding, dilation, groups and splits); the tiled kernel itself has not run on a GPU yet.
#include <algorithm>
#include <climits>
#include <cstdint>
#include <string>
#include "conv2d.h"
#include "elementwise.h"
#include "reduce.h"
#include "cuda/gemm.cuh"
#include "cuda/launch.cuh"

namespace gradcore {

namespace {

using gemm::kTileK;
using gemm::kTileM;
using gemm::kTileN;

// Index arithmetic: the GEMM coordinates (m, n, k) and their decomposition into channels and pixels use 32-bit
// integers (a 64-bit division costs several times a 32-bit one, and each loaded element needs a few); gemm_extent()
// checks that every GEMM extent fits. Element offsets into the tensors are computed in 64 bits.
// The shapes narrowed to int below must fit; then so does the pixel arithmetic built from them (oh * sh - pt + kh * dh
// and th = ih + pt - kh * dh stay within +-padded size, since (Ho - 1) sh + (kH - 1) dh <= padded size). A value cut
// by the narrowing (a stride of 2^32 would become 0) would index out of bounds. Products such as H * W and Ho * Wo
// are bounded by the GEMM extents that gemm_extent checks.
void check_int32_geometry(const Conv2dParams& p) {
  constexpr int64_t kLimit = INT32_MAX;
  const int64_t padded_h = p.in_h + p.pad_top + p.pad_bottom, padded_w = p.in_w + p.pad_left + p.pad_right;
  const int64_t dilation_h = p.kernel_h > 1 ? p.dilation_h : 1, dilation_w = p.kernel_w > 1 ? p.dilation_w : 1;
  for (int64_t v : {p.in_channels, p.out_channels, padded_h, padded_w, p.stride_h, p.stride_w, dilation_h, dilation_w})
    if (v > kLimit)
      throw ArgError("x: a channel count, padded size, stride or dilation (" + std::to_string(v) +
                     ") is too large for the CUDA conv2d kernels' 32-bit indexing");
}

struct Geometry {  // the conv2d shapes, as the kernels read them
  int C_in, H, W, C_out, kH, kW, Ho, Wo, sh, sw, dh, dw, pt, pl, G, Cg, Mg;
  __host__ explicit Geometry(const Conv2dParams& p)
      : C_in((check_int32_geometry(p), (int)p.in_channels)), H((int)p.in_h), W((int)p.in_w), C_out((int)p.out_channels), kH((int)p.kernel_h),
        kW((int)p.kernel_w), Ho((int)p.out_h), Wo((int)p.out_w), sh((int)p.stride_h), sw((int)p.stride_w),
        dh((int)p.dilation_h), dw((int)p.dilation_w), pt((int)p.pad_top), pl((int)p.pad_left), G((int)p.groups),
        Cg((int)p.in_per_group()), Mg((int)p.out_per_group()) {}
  // x[img, g*Cg + ci, oh*sh - pt + kh*dh, ow*sw - pl + kw*dw] for k = (ci, kh, kw) and pixel = (oh, ow), or 0.
  template <typename T>
  __device__ __forceinline__ T im2col(const T* x, int g, int img, int k, int pixel) const {
    const int khw = kH * kW, ci = k / khw, r = k - ci * khw, kh = r / kW, kw = r - kh * kW;
    const int oh = pixel / Wo, ow = pixel - oh * Wo;
    const int ih = oh * sh - pt + kh * dh, iw = ow * sw - pl + kw * dw;
    if (ih < 0 || ih >= H || iw < 0 || iw >= W) return T(0);
    return x[(((int64_t)img * C_in + g * Cg + ci) * H + ih) * W + iw];
  }
};

// Y_g = W_g col_g: rows co, columns (img, oh, ow), reduction (ci, kh, kw).
template <typename T> struct ForwardProblem {
  Geometry geo;
  const T* x;     // (N, C_in, H, W)
  const T* w;     // (C_out, C_in/G, kH, kW)
  const T* bias;  // (C_out) or null
  T* y;           // (N, C_out, Ho, Wo)
  int M, N, K;
  Activation act;  // the epilogue (conv2d.h)
  static constexpr bool kAReductionFast = true, kBReductionFast = false;
  __device__ int depth_begin(int) const { return 0; }
  __device__ int depth_end(int) const { return K; }
  __device__ T a(int g, int m, int k) const { return w[((int64_t)g * M + m) * K + k]; }
  __device__ T b(int g, int k, int n) const {
    const int P = geo.Ho * geo.Wo, img = n / P;
    return geo.im2col(x, g, img, k, n - img * P);
  }
  __device__ void store(int g, int, int m, int n, T v) const {
    const int P = geo.Ho * geo.Wo, img = n / P, co = g * M + m;
    y[((int64_t)img * geo.C_out + co) * P + (n - img * P)] = activate(bias ? v + bias[co] : v, act);
  }
};

// dX_g = sum over (co, kh, kw) of w * gy at the output pixel that reads (ih, iw) through (kh, kw), if any.
template <typename T> struct BackwardInputProblem {
  Geometry geo;
  const T* gy;    // (N, C_out, Ho, Wo)
  const T* w;     // (C_out, C_in/G, kH, kW)
  const T* bias;  // (C_in) or null: conv_transpose2d's bias
  T* gx;          // (N, C_in, H, W)
  int M, N, K;    // M = C_in/G, N = batch * H * W, K = C_out/G * kH * kW
  Activation act;  // the epilogue (conv2d.h): conv_transpose2d + ReLU
  static constexpr bool kAReductionFast = true, kBReductionFast = false;
  __device__ int depth_begin(int) const { return 0; }
  __device__ int depth_end(int) const { return K; }
  __device__ T a(int g, int m, int k) const {
    const int khw = geo.kH * geo.kW, co = k / khw, r = k - co * khw;
    return w[(((int64_t)g * geo.Mg + co) * geo.Cg + m) * khw + r];
  }
  __device__ T b(int g, int k, int n) const {
    const int khw = geo.kH * geo.kW, co = k / khw, r = k - co * khw, kh = r / geo.kW, kw = r - kh * geo.kW;
    const int HW = geo.H * geo.W, img = n / HW, pixel = n - img * HW, ih = pixel / geo.W, iw = pixel - ih * geo.W;
    const int th = ih + geo.pt - kh * geo.dh, tw = iw + geo.pl - kw * geo.dw;  // = oh * sh, ow * sw
    if (th < 0 || tw < 0) return T(0);
    const int oh = th / geo.sh, ow = tw / geo.sw;
    if (oh * geo.sh != th || ow * geo.sw != tw || oh >= geo.Ho || ow >= geo.Wo) return T(0);
    return gy[(((int64_t)img * geo.C_out + g * geo.Mg + co) * geo.Ho + oh) * geo.Wo + ow];
  }
  __device__ void store(int g, int, int m, int n, T v) const {
    const int HW = geo.H * geo.W, img = n / HW, c = g * geo.Cg + m;
    gx[((int64_t)img * geo.C_in + c) * HW + (n - img * HW)] = activate(bias ? v + bias[c] : v, act);
  }
};

// dW_g = gy_g col_g^T over the split's slice of the (img, oh, ow) reduction; slice s goes to out + s * G*M*K.
template <typename T> struct BackwardWeightProblem {
  Geometry geo;
  const T* x;        // (N, C_in, H, W)
  const T* gy;       // (N, C_out, Ho, Wo)
  T* out;            // (splits, C_out, C_in/G, kH, kW): partials, or gw itself when splits == 1
  int M, N, K;       // M = C_out/G, N = C_in/G * kH * kW, K = batch * Ho * Wo
  int split_length;  // a multiple of kTileK
  static constexpr bool kAReductionFast = true, kBReductionFast = true;
  __device__ int depth_begin(int s) const { return s * split_length; }
  __device__ int depth_end(int s) const { return min(K, (s + 1) * split_length); }
  __device__ T a(int g, int m, int r) const {
    const int P = geo.Ho * geo.Wo, img = r / P;
    return gy[((int64_t)img * geo.C_out + g * M + m) * P + (r - img * P)];
  }
  __device__ T b(int g, int r, int n) const {
    const int P = geo.Ho * geo.Wo, img = r / P;
    return geo.im2col(x, g, img, n, r - img * P);
  }
  __device__ void store(int g, int s, int m, int n, T v) const {
    out[(((int64_t)s * geo.G + g) * M + m) * N + n] = v;
  }
};

// A GEMM extent as the kernels' 32-bit index type, with room for a tile past the end.
int gemm_extent(int64_t value, const char* what) {
  if (value > (int64_t)INT32_MAX - 2 * std::max(kTileM, kTileN))
    throw ArgError(std::string("x: ") + what + " (" + std::to_string(value) +
                   ") is too large for the CUDA conv2d kernels' 32-bit indexing; split the batch");
  return (int)value;
}

constexpr const char* kGridLimit = "weight: too many channels or groups for the CUDA conv2d kernels (grid limit)";

}  // namespace

void conv2d_forward_cuda(const Array& x, const Array& w, const Array& bias, Array& y, const Conv2dParams& p) {
  if (y.numel() == 0) return;
  cudaStream_t stream = cuda::stream_of(x);
  dispatch_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    ForwardProblem<T> pr{Geometry(p), x.data_as<T>(), w.data_as<T>(), bias.numel() ? bias.data_as<T>() : nullptr,
                         y.data_as<T>(), gemm_extent(p.out_per_group(), "output channels per group"),
                         gemm_extent(p.batch * p.out_pixels(), "batch * output pixels"),
                         gemm_extent(p.gemm_k(), "input channels per group * kernel size"), p.activation};
    gemm::launch_gemm<T>(pr, p.groups, 1, stream, "implicit_gemm_kernel<ForwardProblem>", kGridLimit);
  });
}

void conv2d_backward_input_cuda(const Array& gy, const Array& w, const Array& bias, Array& gx, const Conv2dParams& p) {
  if (gx.numel() == 0) return;
  cudaStream_t stream = cuda::stream_of(gy);
  dispatch_float(gy.dtype(), [&](auto zero) {
    using T = decltype(zero);
    BackwardInputProblem<T> pr{Geometry(p), gy.data_as<T>(), w.data_as<T>(),
                               bias.numel() ? bias.data_as<T>() : nullptr, gx.data_as<T>(),
                               gemm_extent(p.in_per_group(), "input channels per group"),
                               gemm_extent(p.batch * p.in_pixels(), "batch * input pixels"),
                               gemm_extent(p.out_per_group() * p.kernel_h * p.kernel_w,
                                           "output channels per group * kernel size"),
                               p.activation};
    gemm::launch_gemm<T>(pr, p.groups, 1, stream, "implicit_gemm_kernel<BackwardInputProblem>", kGridLimit);
  });
}

void conv2d_backward_weight_cuda(const Array& x, const Array& gy, Array& gw, const Conv2dParams& p) {
  if (gw.numel() == 0) return;
  if (p.batch == 0) {
    gw.fill(0.0);
    return;
  }
  cudaStream_t stream = cuda::stream_of(x);
  const int64_t M = p.out_per_group(), N = p.gemm_k(), depth = p.batch * p.out_pixels();
  // Splits of the N*P reduction, from the shapes alone (gemm::split_reduction).
  const int64_t tiles = ((M + kTileM - 1) / kTileM) * ((N + kTileN - 1) / kTileN) * p.groups;
  int64_t splits, split_length;
  gemm::split_reduction(tiles, depth, splits, split_length);
  const int64_t count = gw.numel();
  dispatch_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    Array partial;  // every element written by exactly one block
    if (splits > 1) partial = Array::empty({splits * count}, x.dtype(), x.device());
    T* out = splits > 1 ? partial.data_as<T>() : gw.data_as<T>();
    gemm_extent(depth + split_length, "batch * output pixels");  // the last split's end must fit too
    BackwardWeightProblem<T> pr{Geometry(p), x.data_as<T>(), gy.data_as<T>(), out,
                                gemm_extent(M, "output channels per group"),
                                gemm_extent(N, "input channels per group * kernel size"), (int)depth,
                                (int)split_length};
    gemm::launch_gemm<T>(pr, p.groups, splits, stream, "implicit_gemm_kernel<BackwardWeightProblem>",
                         kGridLimit);
    if (splits > 1) {
      cuda::launch("sum_splits_kernel", gemm::sum_splits_kernel<T>, cuda::grid_for(count, 256), 256, stream,
          partial.data_as<T>(), splits, count, gw.data_as<T>(), (const T*)nullptr, (int64_t)1);
    }
  });
}

// The fused conv + ReLU's backward mask on CUDA: relu_backward and the bias sum as two launches of the elementwise
// and reduction kernels (cuda/elementwise.cu, cuda/reduce.cu), so db has the bits of the unfused sum on this device.
// (The CPU fuses the two into one pass, cpu/conv2d_relu.cpp; a fused CUDA kernel waits for GPU time to measure it.)
void conv_relu_backward_cuda(const Array& gy, const Array& y, Array& gm, Array& db) {
  binary_cuda(gy, y, gm, BinaryOp::relu_backward, 0.0, broadcast_layout(gy.shape(), y.shape()));
  if (db.ndim() == 1 && db.dim(0) == gy.dim(1)) sum_cuda(gm, db, reduce_layout(gm.shape(), {0, 2, 3}));
}

}  // namespace gradcore
