// The CUDA GEMM, shared by every op that multiplies matrices: conv2d and conv_transpose2d (cuda/conv2d.cu, as
// implicit GEMMs over the image) and matmul/linear (cuda/matmul.cu, plain strided matrices).
//
// The tiled kernel: a block computes a kTileM x kTileN tile of C with 256 threads, 4x4 results each, stepping
// through the reduction kTileK at a time. Each step stages an A tile (k-major) and a B tile in shared memory; a
// Problem struct says how an element of A or B is read (0 outside an image, a transposed read, a broadcast batch)
// and where a result goes:
//   int M, N, K;                                      the GEMM's extents (launch_gemm checks they fit int)
//   static constexpr bool kAReductionFast, kBReductionFast;   whether k is the contiguous index of A / of B, so the
//                                                     loads walk the index that is contiguous in memory fastest and
//                                                     a warp's reads coalesce
//   T a(g, m, k), T b(g, k, n);                       element reads for group (or batch item) g
//   int depth_begin(split), depth_end(split);         the slice of the reduction this split sums
//   void store(g, split, m, n, value);                writes one result
// Every element of C is summed over its k range in increasing order by one thread: no atomics. A reduction split
// into fixed chunks (split-K) writes each chunk's sums to its own slice of a buffer that sum_splits_kernel adds in
// chunk order; the chunking depends on the shapes alone, so results are bitwise reproducible.
// FP32/FP64 CUDA cores; tensor cores (TF32 mma) are the next step.
#pragma once
#include <algorithm>
#include <climits>
#include <cstdint>
#include <string>
#include "cuda/launch.cuh"

namespace gradcore::gemm {

constexpr int kTileM = 64, kTileN = 64, kTileK = 16, kThreads = 256;
constexpr int kPad = 4;  // shared-memory row padding against bank conflicts on the transposed stores

// grid: (ceil(N / kTileN), ceil(M / kTileM), G * splits); blockIdx.z = split * G + group.
template <typename T, typename Problem>
__global__ void __launch_bounds__(kThreads) implicit_gemm_kernel(Problem pr, int groups) {
  __shared__ T a_tile[kTileK][kTileM + kPad];  // a_tile[k][m]
  __shared__ T b_tile[kTileK][kTileN + kPad];  // b_tile[k][n]
  const int g = blockIdx.z % groups, split = blockIdx.z / groups;
  const int m0 = blockIdx.y * kTileM, n0 = blockIdx.x * kTileN;
  const int k_begin = pr.depth_begin(split), k_end = pr.depth_end(split);
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  T acc[4][4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) acc[i][j] = T(0);

  for (int k0 = k_begin; k0 < k_end; k0 += kTileK) {
#pragma unroll
    for (int i = 0; i < (kTileM * kTileK) / kThreads; ++i) {
      const int e = tid + i * kThreads;
      const int kk = Problem::kAReductionFast ? e % kTileK : e / kTileM;
      const int mm = Problem::kAReductionFast ? e / kTileK : e % kTileM;
      const int m = m0 + mm, k = k0 + kk;
      a_tile[kk][mm] = (m < pr.M && k < k_end) ? pr.a(g, m, k) : T(0);
    }
#pragma unroll
    for (int i = 0; i < (kTileN * kTileK) / kThreads; ++i) {
      const int e = tid + i * kThreads;
      const int kk = Problem::kBReductionFast ? e % kTileK : e / kTileN;
      const int nn = Problem::kBReductionFast ? e / kTileK : e % kTileN;
      const int n = n0 + nn, k = k0 + kk;
      b_tile[kk][nn] = (n < pr.N && k < k_end) ? pr.b(g, k, n) : T(0);
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kTileK; ++kk) {
      T a_frag[4], b_frag[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) a_frag[i] = a_tile[kk][ty + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; ++j) b_frag[j] = b_tile[kk][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] += a_frag[i] * b_frag[j];
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int m = m0 + ty + 16 * i;
    if (m >= pr.M) continue;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int n = n0 + tx + 16 * j;
      if (n < pr.N) pr.store(g, split, m, n, acc[i][j]);
    }
  }
}

// out[i] = sum over s = 0, 1, ... of partial[s * count + i], in that order, plus bias[i % bias_period] when a bias
// is given (matmul's; conv2d's weight gradient has none).
template <typename T>
__global__ void sum_splits_kernel(const T* partial, int64_t splits, int64_t count, T* out, const T* bias,
                                  int64_t bias_period) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < count; i += (int64_t)gridDim.x * blockDim.x) {
    T acc = partial[i];
    for (int64_t s = 1; s < splits; ++s) acc += partial[s * count + i];
    out[i] = bias ? acc + bias[i % bias_period] : acc;
  }
}

// Split-K for a reduction of `depth` steps over `tiles` output tiles: (number of splits, split length), from the
// shapes alone: aim for ~1024 blocks in all, each split at least 512 steps long (a multiple of kTileK).
inline void split_reduction(int64_t tiles, int64_t depth, int64_t& splits, int64_t& split_length) {
  const int64_t wanted = std::max<int64_t>(1, std::min<int64_t>((1024 + tiles - 1) / tiles, depth / 512));
  split_length = std::max<int64_t>(kTileK, ((depth + wanted - 1) / wanted + kTileK - 1) / kTileK * kTileK);
  splits = std::max<int64_t>(1, (depth + split_length - 1) / split_length);
}

// Launches implicit_gemm_kernel over groups * splits tiles of pr.M x pr.N; `too_large` is the ArgError raised when
// the grid would exceed CUDA's limits (65535 row tiles or groups * splits).
template <typename T, typename Problem>
void launch_gemm(const Problem& pr, int64_t groups, int64_t splits, cudaStream_t stream, const char* name,
                 const char* too_large) {
  const int64_t grid_x = (pr.N + kTileN - 1) / kTileN, grid_y = (pr.M + kTileM - 1) / kTileM;
  if (grid_y > 65535 || groups * splits > 65535) throw ArgError(too_large);
  cuda::launch(name, implicit_gemm_kernel<T, Problem>,
      dim3((unsigned)grid_x, (unsigned)grid_y, (unsigned)(groups * splits)), kThreads, stream, pr, (int)groups);
}

}  // namespace gradcore::gemm
