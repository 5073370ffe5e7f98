// Filling an array with a constant and converting between float32 and float64, on either device.
#pragma once
#include "array.h"

namespace gradcore {
void fill_array(Array& a, double value);
void cast_into(const Array& src, Array& dst);  // same shape, other dtype, same device

void fill_array_cpu(Array& a, double value);
void cast_into_cpu(const Array& src, Array& dst);
#ifdef GRADCORE_WITH_CUDA
void fill_array_cuda(Array& a, double value);
void cast_into_cuda(const Array& src, Array& dst);
#endif
}  // namespace gradcore
