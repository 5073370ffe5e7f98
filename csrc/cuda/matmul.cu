// CUDA matmul: the shared tiled GEMM (cuda/gemm.cuh) over plain strided matrices; the maths is in matmul.h.
//
//   C[t] (M x N) = op(A[t]) op(B[t]) + bias,   t over the broadcast batch (blockIdx.z; launches of <= 65535 items)
// A transposed operand is read through swapped strides, and the tile loads walk whichever index is contiguous in
// memory (the Problem's kAReductionFast / kBReductionFast are template arguments picked from the strides), so no
// transpose is materialised and a warp's reads stay coalesced either way.
// A long reduction over few output tiles (a dot product, a weight gradient over a large batch) is split into fixed
// chunks (gemm::split_reduction, from the shapes alone) whose sums are added in chunk order: no atomics, bitwise
// reproducible.
#include <algorithm>
#include <climits>
#include <cstdint>
#include <string>
#include "matmul.h"
#include "cuda/gemm.cuh"
#include "cuda/launch.cuh"

namespace gradcore {

namespace {

using gemm::kTileK;
using gemm::kTileM;
using gemm::kTileN;

// C[t] = op(A[t]) op(B[t]) (+ bias) for items t = first + g of the batch; with splits, each split's sums go to its
// own slice of `out` (splits, items, M, N) and the bias is added when the slices are summed.
template <typename T, bool kAKFast, bool kBKFast> struct MatrixProblem {
  MatmulParams p;
  const T* a_data;  // (batch_a..., M, K) or (batch_a..., K, M)
  const T* b_data;  // (batch_b..., K, N) or (batch_b..., N, K)
  const T* bias;  // (N) or null; only when not split
  T* out;         // c (batch..., M, N), or the partial sums (splits, items, M, N)
  int64_t first, items;
  int M, N, K;
  int split_length;  // a multiple of kTileK
  bool split;
  static constexpr bool kAReductionFast = kAKFast, kBReductionFast = kBKFast;
  __device__ int depth_begin(int s) const { return s * split_length; }
  __device__ int depth_end(int s) const { return min(K, (s + 1) * split_length); }
  __device__ T a(int g, int m, int k) const { return a_at(g)[m * p.a_rs + k * p.a_cs]; }
  __device__ T b(int g, int k, int n) const { return b_at(g)[k * p.b_rs + n * p.b_cs]; }
  __device__ void store(int g, int s, int m, int n, T v) const {
    if (split) {
      out[(((int64_t)s * items + g) * M + m) * N + n] = v;
    } else {
      out[((first + g) * M + m) * N + n] = bias ? v + bias[n] : v;
    }
  }
  __device__ const T* a_at(int g) const { return a_data + p.a_offset(first + g); }
  __device__ const T* b_at(int g) const { return b_data + p.b_offset(first + g); }
};

// A GEMM extent as the kernel's 32-bit index type, with room for a tile past the end.
int gemm_extent(int64_t value, const char* arg, const char* what) {
  if (value > (int64_t)INT32_MAX - 2 * std::max(kTileM, kTileN))
    throw ArgError(std::string(arg) + ": " + what + " (" + std::to_string(value) +
                   ") is too large for the CUDA matmul kernel's 32-bit indexing");
  return (int)value;
}

template <typename T, bool kAKFast, bool kBKFast>
void run(const Array& a, const Array& b, const Array& bias, Array& c, const MatmulParams& p, cudaStream_t stream) {
  using Problem = MatrixProblem<T, kAKFast, kBKFast>;
  const int M = gemm_extent(p.M, "a", "the number of rows"), N = gemm_extent(p.N, "b", "the number of columns");
  const int K = gemm_extent(p.K, "a", "the inner dimension");
  // Element offsets inside one matrix are int64 in a() and b() through the strides (int64) times int indices.
  const int64_t tiles = ((p.M + kTileM - 1) / kTileM) * ((p.N + kTileN - 1) / kTileN) * p.batch;
  int64_t splits = 1, split_length = std::max<int64_t>(p.K, kTileK);
  if (p.K > 0) gemm::split_reduction(tiles, p.K, splits, split_length);
  gemm_extent(p.K + split_length, "a", "the inner dimension");  // the last split's end must fit too
  const int64_t per_launch = std::max<int64_t>(1, 65535 / splits);
  const T* bias_ptr = bias.numel() ? bias.data_as<T>() : nullptr;
  Array partial;  // every element written by exactly one block
  if (splits > 1) partial = Array::empty({splits * std::min(per_launch, p.batch) * p.M * p.N}, c.dtype(), c.device());
  for (int64_t first = 0; first < p.batch; first += per_launch) {
    const int64_t items = std::min(per_launch, p.batch - first);
    Problem pr{p, a.data_as<T>(), b.data_as<T>(), bias_ptr, splits > 1 ? partial.data_as<T>() : c.data_as<T>(),
               first, items, M, N, K, (int)split_length, splits > 1};
    gemm::launch_gemm<T>(pr, items, splits, stream, "implicit_gemm_kernel<MatrixProblem>",
                         "a: too many rows for the CUDA matmul kernel (grid limit)");
    if (splits > 1) {
      const int64_t count = items * p.M * p.N;
      cuda::launch("sum_splits_kernel", gemm::sum_splits_kernel<T>, cuda::grid_for(count, 256), 256, stream,
          (const T*)partial.data_as<T>(), splits, count, c.data_as<T>() + first * p.M * p.N, bias_ptr, p.N);
    }
  }
}

}  // namespace

void matmul_cuda(const Array& a, const Array& b, const Array& bias, Array& c, const MatmulParams& p) {
  if (c.numel() == 0) return;
  cudaStream_t stream = cuda::stream_of(a);
  const bool a_k_fast = p.a_cs == 1, b_k_fast = p.b_rs == 1;  // k contiguous in memory
  dispatch_float(a.dtype(), [&](auto zero) {
    using T = decltype(zero);
    if (a_k_fast && b_k_fast) run<T, true, true>(a, b, bias, c, p, stream);
    else if (a_k_fast) run<T, true, false>(a, b, bias, c, p, stream);
    else if (b_k_fast) run<T, false, true>(a, b, bias, c, p, stream);
    else run<T, false, false>(a, b, bias, c, p, stream);
  });
}

}  // namespace gradcore
