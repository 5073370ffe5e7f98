// fill: a[i] = value.  cast: dst[i] = (dst_type) src[i].
#include "fill_cast.h"
#include <algorithm>

namespace gradcore {

void fill_array_cpu(Array& a, double value) {
  dispatch_float(a.dtype(), [&](auto zero) {
    using T = decltype(zero);
    T* p = a.data_as<T>();
    std::fill(p, p + a.numel(), (T)value);
  });
}

void cast_into_cpu(const Array& src, Array& dst) {
  const int64_t n = src.numel();
  if (src.dtype() == DType::float32) {
    const float* s = src.data_as<float>();
    double* d = dst.data_as<double>();
    for (int64_t i = 0; i < n; ++i) d[i] = s[i];
  } else {
    const double* s = src.data_as<double>();
    float* d = dst.data_as<float>();
    for (int64_t i = 0; i < n; ++i) d[i] = (float)s[i];
  }
}

}  // namespace gradcore
