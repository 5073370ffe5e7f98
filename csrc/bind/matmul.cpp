// Binding for the batched matrix product (matmul.h). Contract: a and b are contiguous with at least 2 dimensions
// (python/gradcore/ops/matmul.py promotes 1-D operands and folds batches first); every argument is validated here
// (matmul_params) before a kernel runs; the output is allocated here and written whole. The GIL is released.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <optional>
#include <string>
#include "matmul.h"

namespace py = pybind11;
namespace gradcore {

MatmulParams matmul_params(const Array& a, const Array& b, bool transpose_a, bool transpose_b, Shape& out_shape) {
  if (a.ndim() < 2) throw ArgError("a: expected at least 2 dimensions (..., rows, columns), got shape " + shape_str(a.shape()));
  if (b.ndim() < 2) throw ArgError("b: expected at least 2 dimensions (..., rows, columns), got shape " + shape_str(b.shape()));
  check_float(a, "a");
  check_float(b, "b");
  check_same_dtype(a, "a", b, "b");
  check_same_device(a, "a", b, "b");
  MatmulParams p;
  const int64_t a_rows = a.dim(-2), a_cols = a.dim(-1), b_rows = b.dim(-2), b_cols = b.dim(-1);
  p.M = transpose_a ? a_cols : a_rows;
  p.K = transpose_a ? a_rows : a_cols;
  p.N = transpose_b ? b_rows : b_cols;
  const int64_t b_k = transpose_b ? b_cols : b_rows;
  if (b_k != p.K)
    throw ArgError("b: shape " + shape_str(b.shape()) + (transpose_b ? " (transposed)" : "") +
                   " cannot be multiplied with a of shape " + shape_str(a.shape()) + (transpose_a ? " (transposed)" : "") +
                   ": a has " + std::to_string(p.K) + " columns, b has " + std::to_string(b_k) + " rows");
  // Row-major (rows x cols) storage read as X or X^T: element (r, c) of op(X) at r * rs + c * cs.
  p.a_rs = transpose_a ? 1 : a_cols;
  p.a_cs = transpose_a ? a_cols : 1;
  p.b_rs = transpose_b ? 1 : b_cols;
  p.b_cs = transpose_b ? b_cols : 1;
  // Batch dimensions, right-aligned and broadcast; neighbours that both operands walk contiguously (or both
  // repeat) merge into one, so the usual case of one batch dimension costs one multiply per offset.
  const int a_nb = a.ndim() - 2, b_nb = b.ndim() - 2, nb = std::max(a_nb, b_nb);
  Shape shape(nb), a_stride(nb), b_stride(nb);
  int64_t a_run = a_rows * a_cols, b_run = b_rows * b_cols;
  for (int i = nb - 1; i >= 0; --i) {
    const int ia = i - (nb - a_nb), ib = i - (nb - b_nb);
    const int64_t da = ia >= 0 ? a.dim(ia) : 1, db = ib >= 0 ? b.dim(ib) : 1;
    if (da != db && da != 1 && db != 1)
      throw ArgError("b: the batch dimensions of shape " + shape_str(b.shape()) + " do not broadcast with those of a's "
                     "shape " + shape_str(a.shape()) + " (the last two dimensions are the matrices)");
    shape[i] = da == 1 ? db : da;
    a_stride[i] = da == 1 ? 0 : a_run;
    b_stride[i] = db == 1 ? 0 : b_run;
    a_run *= da;
    b_run *= db;
  }
  out_shape = shape;
  out_shape.push_back(p.M);
  out_shape.push_back(p.N);
  shape_numel(out_shape);  // throws when the count does not fit int64
  for (int i = 0; i < nb; ++i) {
    if (shape[i] == 1) continue;  // a dimension of 1 moves nothing
    const int d = p.batch_ndim;
    if (d > 0 && a_stride[i] * shape[i] == p.a_batch_stride[d - 1] && b_stride[i] * shape[i] == p.b_batch_stride[d - 1]) {
      p.batch_shape[d - 1] *= shape[i];
      p.a_batch_stride[d - 1] = a_stride[i];
      p.b_batch_stride[d - 1] = b_stride[i];
      continue;
    }
    if (d == kMaxDims)
      throw ArgError("a: matmul supports at most " + std::to_string(kMaxDims) + " distinct batch dimensions, got a " +
                     shape_str(a.shape()) + " and b " + shape_str(b.shape()) + "; reshape them to fewer first");
    p.batch_shape[d] = shape[i];
    p.a_batch_stride[d] = a_stride[i];
    p.b_batch_stride[d] = b_stride[i];
    ++p.batch_ndim;
  }
  p.batch = 1;
  for (int i = 0; i < nb; ++i) p.batch *= shape[i];
  return p;
}

namespace {

// c = op(a) op(b) + bias, batch dimensions broadcast; op is a transposed read where asked.
Array matmul(const Array& a, const Array& b, bool transpose_a, bool transpose_b, const std::optional<Array>& bias) {
  Shape out_shape;
  const MatmulParams p = matmul_params(a, b, transpose_a, transpose_b, out_shape);
  Array bias_array;
  if (bias) {
    check_same_dtype(a, "a", *bias, "bias");
    check_same_device(a, "a", *bias, "bias");
    check_shape(*bias, "bias", {p.N});
    bias_array = *bias;
  }
  Array c = Array::empty(out_shape, a.dtype(), a.device());
  GRADCORE_ON_DEVICE(a, matmul, a, b, bias_array, c, p);
  return c;
}

}  // namespace

void bind_matmul(py::module_& m) {
  m.def("matmul", &matmul, py::arg("a"), py::arg("b"), py::arg("transpose_a") = false,
        py::arg("transpose_b") = false, py::arg("bias") = py::none(),
        "c = op(a) @ op(b) + bias over broadcast batch dimensions; op transposes the last two dimensions (a read "
        "through swapped strides, no copy) where asked; bias (N,) is added to every row.",
        py::call_guard<py::gil_scoped_release>());
}

}  // namespace gradcore
