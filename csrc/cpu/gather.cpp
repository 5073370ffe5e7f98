// CPU gathers along one dimension and their gradient (the maths and the order of summation are in gather.h).
// Each output element (forward) and each dx element (backward) is written by one iteration: OpenMP may split the
// loops anywhere without changing a bit.
#include "gather.h"
#include "cpu/parallel.h"
#include "element_bits.h"

namespace gradcore {

void gather_forward_cpu(const Array& x, const Array& index, Array& out, const GatherLayout& l) {
  const int64_t total = l.outer * l.out_length * l.inner;
  if (total == 0) return;
  const int64_t* idx = index.data_as<int64_t>();
  dispatch_bits(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* px = x.data_as<T>();
    T* po = out.data_as<T>();
    // One (o, j) row of I elements per iteration: for index_select the row is contiguous in x too.
#pragma omp parallel for schedule(static) if (total >= cpu::kParallelThreshold)
    for (int64_t row = 0; row < l.outer * l.out_length; ++row) {
      const int64_t o = row / l.out_length, j = row - o * l.out_length;
      T* dst = po + row * l.inner;
      const T* src = px + o * l.length * l.inner;
      if (l.per_element) {
        const int64_t* r = idx + row * l.inner;
        for (int64_t i = 0; i < l.inner; ++i) dst[i] = src[r[i] * l.inner + i];
      } else {
        const T* from = src + idx[j] * l.inner;
        for (int64_t i = 0; i < l.inner; ++i) dst[i] = from[i];
      }
    }
  });
}

void gather_backward_cpu(const Array& dout, const IndexLists& lists, Array& dx, const GatherLayout& l) {
  const int64_t total = l.outer * l.length * l.inner;
  if (total == 0) return;
  const int64_t* order = lists.order.data_as<int64_t>();
  const int64_t* start = lists.start.data_as<int64_t>();
  const int64_t J = l.out_length, I = l.inner, n = l.length;
  dispatch_float(dout.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* g = dout.data_as<T>();
    T* out = dx.data_as<T>();
#pragma omp parallel for schedule(static) if (total >= cpu::kParallelThreshold)
    for (int64_t row = 0; row < l.outer * n; ++row) {  // one (o, r) row of I elements
      const int64_t o = row / n, r = row - o * n;
      for (int64_t i = 0; i < I; ++i) {
        const int64_t f = l.per_element ? o * I + i : 0;
        const int64_t* s = start + f * (n + 1) + r;
        T acc = 0;
        for (int64_t k = s[0]; k < s[1]; ++k) acc += g[(o * J + order[f * J + k]) * I + i];
        out[row * I + i] = acc;
      }
    }
  });
}

}  // namespace gradcore
