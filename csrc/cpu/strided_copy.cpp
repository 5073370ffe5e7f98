// CPU strided copy and strided write (the maths is in strided_copy.h): rows along the innermost merged dimension,
// a memcpy when that dimension is contiguous in the source, OpenMP over rows for large copies. Every element of the
// contiguous side belongs to one row, so the split between threads cannot change the result.
#include "strided_copy.h"
#include <cstring>
#include "cpu/parallel.h"
#include "element_bits.h"

namespace gradcore {

namespace {

// kScatter false: contiguous[i] = strided[offset(i)]; true: strided[offset(i)] = contiguous[i].
template <bool kScatter, typename T>
void strided_rows(T* strided, T* contiguous, const StridedCopy& l) {
  const int outer_ndim = l.ndim > 0 ? l.ndim - 1 : 0;
  const int64_t width = l.ndim > 0 ? l.shape[l.ndim - 1] : 1;
  const int64_t step = l.ndim > 0 ? l.stride[l.ndim - 1] : 1;
  const int64_t rows = l.numel / width;
#pragma omp parallel for schedule(static) if (l.numel >= cpu::kParallelCopyThreshold / 4 && rows > 1)
  for (int64_t r = 0; r < rows; ++r) {
    T* s = strided + l.offset + strided_offset(r, outer_ndim, l.shape, l.stride);
    T* c = contiguous + r * width;
    if (step == 1) {
      if (kScatter) std::memcpy(s, c, width * sizeof(T));
      else std::memcpy(c, s, width * sizeof(T));
    } else {
      for (int64_t j = 0; j < width; ++j) {
        if (kScatter) s[j * step] = c[j];
        else c[j] = s[j * step];
      }
    }
  }
}

}  // namespace

void strided_copy_cpu(const Array& src, Array& out, const StridedCopy& layout) {
  if (layout.numel == 0) return;
  dispatch_bits(src.dtype(), [&](auto zero) {
    using T = decltype(zero);
    strided_rows<false>(src.data_as<T>(), out.data_as<T>(), layout);
  });
}

void strided_scatter_cpu(const Array& g, Array& dst, const StridedCopy& layout) {
  if (layout.numel == 0) return;
  dispatch_bits(g.dtype(), [&](auto zero) {
    using T = decltype(zero);
    strided_rows<true>(dst.data_as<T>(), g.data_as<T>(), layout);
  });
}

}  // namespace gradcore
