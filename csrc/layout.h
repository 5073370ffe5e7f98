// Tensor layouts that the CPU loops and the CUDA kernels walk alike: the most dimensions their index arithmetic
// handles (kMaxDims, checked by every layout builder), how a binary op's inputs broadcast to its output
// (BroadcastLayout), how a reduction splits its input into kept and reduced dimensions (ReduceLayout), and the
// offset helpers, marked GRADCORE_HD so that both devices compute an element's offset with the same code.
// The builders run on the host and throw ArgError naming the argument; the structs travel to kernels by value.
#pragma once
#include <cstdint>
#include <vector>
#include "array.h"
#include "host_device.h"

namespace gradcore {

constexpr int kMaxDims = 8;  // dimensions of any shape a layout describes (fixed-size arrays, passed by value)

// Throws ArgError when `shape` has more than kMaxDims dimensions:
//   "<arg>: <op> supports at most 8 dimensions, got shape (...); reshape it to fewer dimensions first"
void check_max_dims(const Shape& shape, const char* arg, const char* op);

// How a and b are read for each output element: strides 0 along broadcast dimensions.
struct BroadcastLayout {
  int ndim = 0;
  int64_t out_shape[kMaxDims] = {};
  int64_t a_stride[kMaxDims] = {};
  int64_t b_stride[kMaxDims] = {};
  bool same_shape = false;  // a, b and out all have one shape: a plain loop
  int64_t numel = 0;
};
// numpy broadcasting of a and b; throws ArgError naming a or b when the shapes do not broadcast or have too many
// dimensions.
BroadcastLayout broadcast_layout(const Shape& a, const Shape& b);

// x viewed as alternating kept and reduced runs of dimensions (neighbours of the same kind merged).
struct ReduceLayout {
  int kept_ndim = 0, reduced_ndim = 0;
  int64_t kept_shape[kMaxDims] = {}, kept_stride[kMaxDims] = {};
  int64_t reduced_shape[kMaxDims] = {}, reduced_stride[kMaxDims] = {};
  int64_t kept_numel = 1, reduced_numel = 1;
};
// axes: sorted, unique, in [0, shape.size()). Throws ArgError naming x when shape has too many dimensions.
ReduceLayout reduce_layout(const Shape& shape, const std::vector<int>& axes);

// Offsets into a and b of output element i (row-major over out_shape).
GRADCORE_HD void broadcast_offsets(const BroadcastLayout& l, int64_t i, int64_t& a_offset, int64_t& b_offset) {
  int64_t oa = 0, ob = 0;
  for (int d = l.ndim - 1; d >= 0; --d) {
    const int64_t c = i % l.out_shape[d];
    i /= l.out_shape[d];
    oa += c * l.a_stride[d];
    ob += c * l.b_stride[d];
  }
  a_offset = oa;
  b_offset = ob;
}

// Offset of the i-th element (row-major over shape[0..ndim)) of a strided view.
GRADCORE_HD int64_t strided_offset(int64_t i, int ndim, const int64_t* shape, const int64_t* stride) {
  int64_t off = 0;
  for (int d = ndim - 1; d >= 0; --d) {
    off += (i % shape[d]) * stride[d];
    i /= shape[d];
  }
  return off;
}

// Offset in x of the k-th kept element (row-major over the kept dimensions).
GRADCORE_HD int64_t kept_offset(const ReduceLayout& l, int64_t k) {
  return strided_offset(k, l.kept_ndim, l.kept_shape, l.kept_stride);
}

// Offset, from a kept element's start, of the r-th element of the reduced index space (row-major over the reduced
// dimensions).
GRADCORE_HD int64_t reduced_offset(const ReduceLayout& l, int64_t r) {
  return strided_offset(r, l.reduced_ndim, l.reduced_shape, l.reduced_stride);
}

}  // namespace gradcore
