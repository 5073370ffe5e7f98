// Building the strided copy's layout (host only); the maths is in strided_copy.h.
#include "strided_copy.h"
#include <string>
#include <vector>

namespace gradcore {

StridedCopy strided_copy_layout(const Shape& shape, const std::vector<int64_t>& strides, int64_t offset,
                                const char* arg) {
  StridedCopy layout;
  layout.offset = offset;
  layout.numel = shape_numel(shape);
  if (layout.numel == 0) return layout;
  std::vector<int64_t> merged_shape, merged_stride;
  for (size_t k = 0; k < shape.size(); ++k) {
    if (shape[k] == 1) continue;  // its stride never multiplies a nonzero index
    if (!merged_shape.empty() && merged_stride.back() == strides[k] * shape[k]) {
      // Row-major neighbours that are contiguous in the source: one dimension of their combined length.
      merged_shape.back() *= shape[k];
      merged_stride.back() = strides[k];
    } else {
      merged_shape.push_back(shape[k]);
      merged_stride.push_back(strides[k]);
    }
  }
  const int n = (int)merged_shape.size();
  if (n > kMaxDims)
    throw ArgError(std::string(arg) + ": views of at most " + std::to_string(kMaxDims) +
                   " non-mergeable dimensions are supported, got shape " + shape_str(shape) +
                   "; reshape it to fewer dimensions first");
  layout.ndim = n;
  for (int k = 0; k < n; ++k) {
    layout.shape[k] = merged_shape[k];
    layout.stride[k] = merged_stride[k];
  }
  return layout;
}

}  // namespace gradcore
