// Concatenation and its adjoint, split, along one axis of contiguous arrays.
//
// View every array as (outer, axis, inner), where outer is the product of the dimensions before `axis` and inner
// the product of those after it. Concatenating pieces k = 0..K-1 of axis lengths a_k gives an output of axis length
// A = sum a_k whose slice [o_k, o_k + a_k) along the axis (o_k = a_0 + ... + a_{k-1}) is piece k:
//   out[r, o_k + j, q] = piece_k[r, j, q]
// split is the same map read the other way, piece_k[r, j, q] = x[r, o_k + j, q], so each is the other's gradient:
//   d piece_k = split(d out)_k          d x = concat(d piece_0, ..., d piece_{K-1})
// stack (a new axis of length 1 per piece) and unbind (pieces of length 1) are reshapes around these two.
//
// Both reduce to one primitive, a strided block copy: for each of `rows` rows, copy `width` contiguous elements
// from src + src_offset + row * src_row_stride to dst + dst_offset + row * dst_row_stride. Pure data movement:
// every output element is written exactly once, so results are bitwise identical on every device.
#pragma once
#include <cstdint>
#include "array.h"

namespace gradcore {

struct BlockCopy {
  int64_t rows = 0;            // outer
  int64_t width = 0;           // a_k * inner: contiguous elements per row
  int64_t src_row_stride = 0;  // elements between row starts in src
  int64_t dst_row_stride = 0;  // elements between row starts in dst
  int64_t src_offset = 0;      // elements
  int64_t dst_offset = 0;      // elements
};

// Copies the block described by `copy` from src into dst (same dtype and device; both contiguous).
void block_copy_cpu(const Array& src, Array& dst, const BlockCopy& copy);
#ifdef GRADCORE_WITH_CUDA
void block_copy_cuda(const Array& src, Array& dst, const BlockCopy& copy);
#endif

}  // namespace gradcore
