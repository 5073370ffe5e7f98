// Strided copy: a strided view of a contiguous array, made contiguous; and its adjoint, the strided write.
//
// Our arrays are always contiguous (array.h), so every view op that is not a reshape (permute, transpose, expand,
// basic slicing) is one gather with a strided read pattern. For an output of shape (n_0, ..., n_{d-1}), source
// strides s_k (in elements, >= 0) and a source offset o:
//   copy:     out[i_0, ..., i_{d-1}] = src[o + sum_k i_k s_k]
//   scatter:  dst[o + sum_k i_k s_k] = g[i_0, ..., i_{d-1}]      (dst zeroed first; the adjoint of copy)
// permute: s = x's strides permuted; expand: s_k = 0 along broadcast dimensions; x[a:b:c]: o = a * stride,
// s = c * stride. The gradient of copy is scatter when the map i -> offset is one-to-one (slices, permutes: the
// binding checks it); expand's gradient is a sum over the broadcast dimensions instead (reduce.h).
//
// Pure data movement, on raw element bits (1, 2, 4 or 8 bytes: element_bits.h), so the same kernels move float,
// int64 and bool tensors, and every output element is written exactly once: bitwise identical on every device.
// Before a launch the layout is simplified: dimensions of length 1 are dropped and neighbours that are contiguous in
// the source (s_k == s_{k+1} n_{k+1}) merge, so a slice of rows is one run and a full copy a memcpy.
#pragma once
#include <cstdint>
#include "array.h"
#include "layout.h"  // kMaxDims, strided_offset

namespace gradcore {

struct StridedCopy {
  int ndim = 0;                      // after merging (0: a single element)
  int64_t shape[kMaxDims] = {};      // of the contiguous side (merged)
  int64_t stride[kMaxDims] = {};     // of the strided side, in elements (merged)
  int64_t offset = 0;                // element offset of the strided side's first element
  int64_t numel = 0;
};

// The simplified layout of the strided side `shape`/`strides`/`offset` (the binding checks the arguments). Throws
// ArgError naming `arg` when more than kMaxDims dimensions remain after merging.
StridedCopy strided_copy_layout(const Shape& shape, const std::vector<int64_t>& strides, int64_t offset,
                                const char* arg);

// out (contiguous, layout.numel elements) = the strided view of src.
void strided_copy_cpu(const Array& src, Array& out, const StridedCopy& layout);
// dst's strided view = g (contiguous); dst elements outside the view are left as they are.
void strided_scatter_cpu(const Array& g, Array& dst, const StridedCopy& layout);
#ifdef GRADCORE_WITH_CUDA
void strided_copy_cuda(const Array& src, Array& out, const StridedCopy& layout);
void strided_scatter_cuda(const Array& g, Array& dst, const StridedCopy& layout);
#endif

}  // namespace gradcore
