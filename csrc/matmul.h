// Batched matrix product with broadcast batch dimensions, transposed reads and a column bias: the one kernel behind
// gradcore.matmul, the @ operator and F.linear (python/gradcore/ops/matmul.py), forward and backward.
//
//   C[t] (M x N) = op(A[t]) op(B[t]) + bias        op(X) = X, or X^T read through swapped strides (no copy)
//   a: (..., M, K), or (..., K, M) with transpose_a       b: (..., K, N), or (..., N, K) with transpose_b
//   bias: (N,) or none, added to every row              c: (broadcast(a.batch, b.batch)..., M, N), contiguous
// The batch dimensions broadcast like numpy (a dimension of size 1 or a missing one repeats the operand).
//
// Gradients of C = A B (with G = dL/dC), as the Python layer calls this same kernel:
//   dA = G B^T      matmul(g, b, transpose_b=True), summed over the batch dimensions along which a was broadcast
//   dB = A^T G      matmul(a, g, transpose_a=True), likewise for b
//   dbias = the sum of G over its rows (_core.sum)
// linear(x, W, bias) = x W^T + bias is matmul(x, W, transpose_b=True, bias); dx = G W, dW = G^T x.
//
// Determinism: every element of C is one dot product summed over k in an order fixed by the shapes alone (the CPU
// GEMM's kKc blocks, cpu/gemm.h; the CUDA tile's k steps, or fixed split-K chunks added in chunk order, cuda/gemm.cuh).
// No float atomics: the same bits for any thread count and launch.
#pragma once
#include <cstdint>
#include "array.h"
#include "layout.h"

namespace gradcore {

struct MatmulParams {
  int64_t M = 0, N = 0, K = 0;
  // Element (m, k) of A[t] at a + a_offset(t) + m * a_rs + k * a_cs; (k, n) of B[t] likewise with b_rs, b_cs.
  int64_t a_rs = 0, a_cs = 0, b_rs = 0, b_cs = 0;
  // The broadcast batch: batch_ndim dimensions of batch_shape, each operand's element offset per step along them
  // (0 where it is broadcast). batch = the product of batch_shape (1 for plain matrices).
  int batch_ndim = 0;
  int64_t batch_shape[kMaxDims] = {}, a_batch_stride[kMaxDims] = {}, b_batch_stride[kMaxDims] = {};
  int64_t batch = 1;

  // Offsets of batch item t (0 <= t < batch). One batch dimension, the usual case once neighbours are merged, costs a
  // multiply: the CUDA kernel asks for every element it loads, and a 64-bit division there costs dozens of cycles.
  GRADCORE_HD int64_t a_offset(int64_t t) const {
    if (batch_ndim <= 1) return batch_ndim == 0 ? 0 : t * a_batch_stride[0];
    return strided_offset(t, batch_ndim, batch_shape, a_batch_stride);
  }
  GRADCORE_HD int64_t b_offset(int64_t t) const {
    if (batch_ndim <= 1) return batch_ndim == 0 ? 0 : t * b_batch_stride[0];
    return strided_offset(t, batch_ndim, batch_shape, b_batch_stride);
  }
};

// Validates a and b (at least 2 dimensions, same dtype and device, matching inner dimensions, batch dimensions that
// broadcast) and describes the product; throws ArgError/ArgTypeError naming a or b. out_shape receives c's shape.
MatmulParams matmul_params(const Array& a, const Array& b, bool transpose_a, bool transpose_b, Shape& out_shape);

// c (batch..., M, N) = op(a) op(b) [+ bias]; bias is an empty Array or (N,). c is written whole (zeros, or the bias,
// when K == 0).
void matmul_cpu(const Array& a, const Array& b, const Array& bias, Array& c, const MatmulParams& p);
#ifdef GRADCORE_WITH_CUDA
void matmul_cuda(const Array& a, const Array& b, const Array& bias, Array& c, const MatmulParams& p);
#endif

}  // namespace gradcore
