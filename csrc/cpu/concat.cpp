// CPU block copy for concat/split (the maths is in concat.h): one memcpy per row, OpenMP over rows when the block
// is large. Every destination element is written once, so the split between threads cannot change the result.
#include "concat.h"
#include <cstring>
#include "cpu/parallel.h"

namespace gradcore {

void block_copy_cpu(const Array& src, Array& dst, const BlockCopy& copy) {
  if (copy.rows == 0 || copy.width == 0) return;
  const size_t elem = dtype_size(src.dtype());
  const char* s = static_cast<const char*>(src.data()) + copy.src_offset * elem;
  char* d = static_cast<char*>(dst.data()) + copy.dst_offset * elem;
  const size_t row_bytes = (size_t)copy.width * elem;
  const int64_t total = copy.rows * copy.width;
#pragma omp parallel for schedule(static) if (total >= cpu::kParallelCopyThreshold && copy.rows > 1)
  for (int64_t r = 0; r < copy.rows; ++r)
    std::memcpy(d + r * copy.dst_row_stride * elem, s + r * copy.src_row_stride * elem, row_bytes);
}

}  // namespace gradcore
