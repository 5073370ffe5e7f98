// fill: a[i] = value.  cast: dst[i] = convert_element<D>(src[i]) (fill_cast.h states the rule).
#include "fill_cast.h"
#include <algorithm>
#include "cpu/parallel.h"

namespace gradcore {

void fill_array_cpu(Array& a, double value) {
  dispatch_all(a.dtype(), [&](auto zero) {
    using T = decltype(zero);
    T* p = a.data_as<T>();
    std::fill(p, p + a.numel(), convert_element<T>(value));
  });
}

void cast_into_cpu(const Array& src, Array& dst) {
  const int64_t n = src.numel();
  dispatch_all(src.dtype(), [&](auto src_zero) {
    using S = decltype(src_zero);
    dispatch_all(dst.dtype(), [&](auto dst_zero) {
      using D = decltype(dst_zero);
      const S* s = src.data_as<S>();
      D* d = dst.data_as<D>();
#pragma omp parallel for schedule(static) if (n >= cpu::kParallelThreshold)
      for (int64_t i = 0; i < n; ++i) d[i] = convert_element<D>(s[i]);
    });
  });
}

}  // namespace gradcore
