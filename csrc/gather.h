// Gathers along one dimension: index_select, gather and x[index] (an integer index array), and their gradient.
//
// View x as (O, n, I) around the dimension `dim` (O: the product of the dimensions before it, I: after it), and the
// output as (O, J, I). For each output element, one index value r in [0, n) picks where it is read:
//   index_select (and x[index]):  out[o, j, i] = x[o, index[j], i]          (index of J values)
//   gather:                       out[o, j, i] = x[o, index[o, j, i], i]    (index of out's shape)
// (PyTorch's gather also takes an index shorter than x outside dim: the Python layer gathers from the matching
// slice of x then, whose gradient the strided copy's adjoint places back; strided_copy.h.)
// The gradient adds each output element's gradient back where it was read from; repeated index values add up:
//   dx[o, r, i] = sum over j with index(o, j, i) == r of dout[o, j, i]     (zero where nothing was read)
//
// Determinism without atomics: the host sorts the index (a stable counting sort, per "fiber" (o, i) for gather,
// once for index_select) into, for every r, the list of j that read it, in increasing j (IndexLists below). Then
// each dx element is one thread's sum over its list, in that order, starting from zero: the same additions in the
// same order as a sequential loop over j (numpy's np.add.at), so the bits are the same on every device, for any
// thread count or thread order.
//
// The forward pass only moves data, on raw element bits (element_bits.h), so it also gathers int64 and bool tensors
// (labels[perm]). The index is checked on the host before any kernel runs (an IndexError naming `index`): a CUDA
// index is copied to the host first, never trusted in a kernel.
#pragma once
#include <cstdint>
#include "array.h"

namespace gradcore {

struct GatherLayout {
  int64_t outer = 1;          // O: the dimensions before dim (of x and the output alike)
  int64_t length = 1;         // n: x's length along dim
  int64_t inner = 1;          // I: the dimensions after dim
  int64_t out_length = 0;     // J: the output's length along dim
  bool per_element = false;   // gather (index of out's shape) rather than index_select (index of J values)
};

// For every fiber f (one for index_select, O * I for gather, f = o * I + i) and every r in [0, n): the positions j
// that read r, in increasing order, are order[f * J + k] for k in [start[f * (n + 1) + r], start[f * (n + 1) + r + 1]).
// Both int64 arrays live on the device of the gradient.
struct IndexLists {
  Array order;  // (fibers, J)
  Array start;  // (fibers, n + 1)
};

// out = the gather of x (index: int64 values in [0, n), on x's device).
void gather_forward_cpu(const Array& x, const Array& index, Array& out, const GatherLayout& layout);
// dx (x's shape, every element written) from dout (the output's shape) and the sorted index lists.
void gather_backward_cpu(const Array& dout, const IndexLists& lists, Array& dx, const GatherLayout& layout);
#ifdef GRADCORE_WITH_CUDA
void gather_forward_cuda(const Array& x, const Array& index, Array& out, const GatherLayout& layout);
void gather_backward_cuda(const Array& dout, const IndexLists& lists, Array& dx, const GatherLayout& layout);
#endif

}  // namespace gradcore
