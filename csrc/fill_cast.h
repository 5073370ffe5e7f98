// Filling an array with a constant and converting between any two dtypes (float32, float64, int64, bool), on either
// device. The conversion rule, shared by both devices and by fill:
//   -> bool:           x != 0 (NaN is true), as PyTorch
//   bool ->:           0 or 1
//   float -> int64:    truncation toward zero (PyTorch's .long()); NaN, +-inf and values outside [-2^63, 2^63)
//                      give INT64_MIN, which is what PyTorch's x86 conversion instruction gives, here without
//                      C++'s undefined behaviour so both devices agree bit for bit
//   otherwise:         the C++ conversion (int64 -> float rounds to nearest)
#pragma once
#include <cstdint>
#include <type_traits>
#include "array.h"
#include "host_device.h"

namespace gradcore {

template <typename D, typename S> GRADCORE_HD D convert_element(S x) {
  if constexpr (std::is_same_v<D, bool>) {
    return x != S(0);
  } else if constexpr (std::is_same_v<D, int64_t> && std::is_floating_point_v<S>) {
    // 2^63 is exact in float and double; x == x rejects NaN.
    const bool in_range = x == x && x >= S(-9223372036854775808.0) && x < S(9223372036854775808.0);
    return in_range ? (int64_t)x : INT64_MIN;
  } else {
    return (D)x;
  }
}

void fill_array(Array& a, double value);
void cast_into(const Array& src, Array& dst);  // same shape, other dtype, same device

void fill_array_cpu(Array& a, double value);
void cast_into_cpu(const Array& src, Array& dst);
#ifdef GRADCORE_WITH_CUDA
void fill_array_cuda(Array& a, double value);
void cast_into_cuda(const Array& src, Array& dst);
#endif
}  // namespace gradcore
