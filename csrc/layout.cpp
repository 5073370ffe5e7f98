// Building the layouts of layout.h (host only).
#include "layout.h"
#include <algorithm>
#include <string>

namespace gradcore {

void check_max_dims(const Shape& shape, const char* arg, const char* op) {
  if (shape.size() > (size_t)kMaxDims)
    throw ArgError(std::string(arg) + ": " + op + " supports at most " + std::to_string(kMaxDims) +
                   " dimensions, got shape " + shape_str(shape) + "; reshape it to fewer dimensions first");
}

BroadcastLayout broadcast_layout(const Shape& a, const Shape& b) {
  check_max_dims(a, "a", "broadcasting");
  check_max_dims(b, "b", "broadcasting");
  BroadcastLayout layout;
  const int ndim = (int)std::max(a.size(), b.size());
  layout.ndim = ndim;
  layout.same_shape = a == b;
  int64_t a_run = 1, b_run = 1;
  for (int i = ndim - 1; i >= 0; --i) {
    const int ia = i - (ndim - (int)a.size()), ib = i - (ndim - (int)b.size());
    const int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
    if (da != db && da != 1 && db != 1)
      throw ArgError("b: shape " + shape_str(b) + " does not broadcast with a's shape " + shape_str(a));
    const int64_t d = da == 1 ? db : da;
    layout.out_shape[i] = d;
    layout.a_stride[i] = (da == 1) ? 0 : a_run;
    layout.b_stride[i] = (db == 1) ? 0 : b_run;
    a_run *= da;
    b_run *= db;
  }
  layout.numel = 1;
  for (int i = 0; i < ndim; ++i) layout.numel *= layout.out_shape[i];
  return layout;
}

ReduceLayout reduce_layout(const Shape& shape, const std::vector<int>& axes) {
  check_max_dims(shape, "x", "sum");
  ReduceLayout layout;
  std::vector<bool> reduced(shape.size(), false);
  for (int a : axes) reduced[a] = true;
  std::vector<int64_t> stride(shape.size(), 1);
  for (int i = (int)shape.size() - 2; i >= 0; --i) stride[i] = stride[i + 1] * shape[i + 1];
  // Neighbouring dimensions of the same kind merge into one (x is contiguous), so that a bias gradient's sum over
  // (N, H, W) walks runs of H * W elements, not of W: the per-run offset arithmetic dominated for small images.
  for (size_t i = 0; i < shape.size(); ++i) {
    // The run this dimension joins (or starts): kept or reduced.
    int& ndim = reduced[i] ? layout.reduced_ndim : layout.kept_ndim;
    int64_t* run_shape = reduced[i] ? layout.reduced_shape : layout.kept_shape;
    int64_t* run_stride = reduced[i] ? layout.reduced_stride : layout.kept_stride;
    int64_t& numel = reduced[i] ? layout.reduced_numel : layout.kept_numel;
    if (i > 0 && reduced[i] == reduced[i - 1]) {
      run_shape[ndim - 1] *= shape[i];
      run_stride[ndim - 1] = stride[i];
    } else {
      run_shape[ndim] = shape[i];
      run_stride[ndim++] = stride[i];
    }
    numel *= shape[i];
  }
  return layout;
}

}  // namespace gradcore
