// CPU strided copy and strided write (the maths is in strided_copy.h): rows along the innermost merged dimension,
// a memcpy when that dimension is contiguous in the source; cache tiles for transposing layouts; OpenMP over rows or
// tiles for large copies. Every element of the contiguous side belongs to one row or tile, so the split between
// threads cannot change the result.
#include "strided_copy.h"
#include <algorithm>
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
  // memcpy rows are bandwidth-bound and gain from threads only when large; strided ones sooner.
  const int64_t threshold = step == 1 ? cpu::kParallelCopyThreshold : cpu::kParallelThreshold;
#pragma omp parallel for schedule(static) if (l.numel >= threshold && rows > 1)
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

// Transposing layouts (the innermost dimension strided in the source, another dimension k contiguous there:
// x.T, NCHW <-> NHWC): row by row, every read of a row would touch a new cache line. Instead, square tiles of
// dimensions k and innermost, so each cache line read or written is used whole while it is in cache.
template <bool kScatter, typename T>
void strided_tiles(T* strided, T* contiguous, const StridedCopy& l, int k) {
  constexpr int64_t kTile = 32;
  const int last = l.ndim - 1;
  const int64_t A = l.shape[k], B = l.shape[last], step = l.stride[last];
  int64_t contiguous_stride[kMaxDims];  // of the contiguous side, row-major over the merged shape
  for (int64_t d = last, run = 1; d >= 0; run *= l.shape[d--]) contiguous_stride[d] = run;
  // The other dimensions, walked as a batch.
  int64_t batch_shape[kMaxDims], batch_strided[kMaxDims], batch_contiguous[kMaxDims];
  int batch_ndim = 0;
  int64_t batch = 1;
  for (int d = 0; d < last; ++d) {
    if (d == k) continue;
    batch_shape[batch_ndim] = l.shape[d];
    batch_strided[batch_ndim] = l.stride[d];
    batch_contiguous[batch_ndim++] = contiguous_stride[d];
    batch *= l.shape[d];
  }
  const int64_t tiles_a = (A + kTile - 1) / kTile, tiles_b = (B + kTile - 1) / kTile;
  const int64_t a_stride = contiguous_stride[k];
#pragma omp parallel for schedule(static) if (l.numel >= cpu::kParallelThreshold)
  for (int64_t t = 0; t < batch * tiles_a * tiles_b; ++t) {
    const int64_t b = t / (tiles_a * tiles_b), ta = t / tiles_b % tiles_a, tb = t % tiles_b;
    T* s = strided + l.offset + strided_offset(b, batch_ndim, batch_shape, batch_strided);
    T* c = contiguous + strided_offset(b, batch_ndim, batch_shape, batch_contiguous);
    const int64_t a_end = std::min(A, (ta + 1) * kTile), j_end = std::min(B, (tb + 1) * kTile);
    for (int64_t a = ta * kTile; a < a_end; ++a)
      for (int64_t j = tb * kTile; j < j_end; ++j) {
        if (kScatter) s[a + j * step] = c[a * a_stride + j];
        else c[a * a_stride + j] = s[a + j * step];
      }
  }
}

template <bool kScatter, typename T>
void strided_move(T* strided, T* contiguous, const StridedCopy& l) {
  if (l.ndim >= 2 && l.stride[l.ndim - 1] != 1)
    for (int k = 0; k < l.ndim - 1; ++k)
      if (l.stride[k] == 1) return strided_tiles<kScatter>(strided, contiguous, l, k);
  strided_rows<kScatter>(strided, contiguous, l);
}

}  // namespace

void strided_copy_cpu(const Array& src, Array& out, const StridedCopy& layout) {
  if (layout.numel == 0) return;
  dispatch_bits(src.dtype(), [&](auto zero) {
    using T = decltype(zero);
    strided_move<false>(src.data_as<T>(), out.data_as<T>(), layout);
  });
}

void strided_scatter_cpu(const Array& g, Array& dst, const StridedCopy& layout) {
  if (layout.numel == 0) return;
  dispatch_bits(g.dtype(), [&](auto zero) {
    using T = decltype(zero);
    strided_move<true>(dst.data_as<T>(), g.data_as<T>(), layout);
  });
}

}  // namespace gradcore
