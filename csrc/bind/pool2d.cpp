// Bindings for 2-d pooling (pool2d.h). Contract: x is (N, C, H, W) float32/float64 (the Python layer turns an
// unbatched (C, H, W) into N = 1). Sizes arrive as (h, w) pairs of positive ints (padding >= 0), already in that
// form; the checks that need the input's shape happen here, once, in params_of, naming the argument:
// padding at most half the kernel, an output of at least one cell, an input with no empty dimension but the batch.
//   max_pool2d_forward -> (y, indices): indices (N, C, OH, OW) int64, flat h*W + w in each plane, as PyTorch's.
//   *_backward take grad_output (N, C, OH, OW) and the input's shape, and return dx of that shape.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <string>
#include <tuple>
#include <utility>
#include "pool2d.h"

namespace py = pybind11;
namespace gradcore {

namespace {

using Pair = std::pair<int64_t, int64_t>;

std::string pair_str(Pair v) { return "(" + std::to_string(v.first) + ", " + std::to_string(v.second) + ")"; }

void check_input(const Shape& shape, const char* op) {
  if (shape.size() != 4)
    throw ArgError(std::string("input: ") + op + " expected a 3-d (C, H, W) or 4-d (N, C, H, W) input, got shape " +
                   shape_str(shape));
  for (int d = 1; d < 4; ++d)
    if (shape[d] == 0)
      throw ArgError(std::string("input: ") + op + " expected non-zero sizes in every dimension but the batch, got " +
                     "shape " + shape_str(shape));
}

Pool2dParams base_params(const Shape& shape, PoolKind kind) {
  Pool2dParams p;
  p.kind = kind;
  p.planes = shape[0] * shape[1];
  p.in_h = shape[2];
  p.in_w = shape[3];
  return p;
}

// max and avg pooling: kernel, stride, padding, dilation and the output size, checked as PyTorch checks them.
Pool2dParams window_params(const Shape& shape, PoolKind kind, const char* op, Pair kernel, Pair stride, Pair padding,
                           Pair dilation, bool ceil_mode) {
  check_input(shape, op);
  Pool2dParams p = base_params(shape, kind);
  if (padding.first > kernel.first / 2 || padding.second > kernel.second / 2)
    throw ArgError("padding: expected at most half the kernel size " + pair_str(kernel) + " on each side, got " +
                   pair_str(padding));
  p.kernel_h = kernel.first;
  p.kernel_w = kernel.second;
  p.stride_h = stride.first;
  p.stride_w = stride.second;
  p.pad_h = padding.first;
  p.pad_w = padding.second;
  p.dilation_h = dilation.first;
  p.dilation_w = dilation.second;
  // Sizes this large would overflow the window arithmetic long before any input could be allocated.
  const int64_t limit = int64_t(1) << 31;
  if (kernel.first >= limit || kernel.second >= limit || stride.first >= limit || stride.second >= limit ||
      dilation.first >= limit || dilation.second >= limit)
    throw ArgError(std::string(op) + ": kernel_size, stride and dilation must be below 2**31, got kernel_size " +
                   pair_str(kernel) + ", stride " + pair_str(stride) + ", dilation " + pair_str(dilation));
  p.out_h = pool_output_size(p.in_h, p.kernel_h, p.pad_h, p.stride_h, p.dilation_h, ceil_mode);
  p.out_w = pool_output_size(p.in_w, p.kernel_w, p.pad_w, p.stride_w, p.dilation_w, ceil_mode);
  if (p.out_h < 1 || p.out_w < 1)
    throw ArgError("input: " + std::string(op) + " of spatial size " + pair_str({p.in_h, p.in_w}) +
                   " with kernel_size " + pair_str(kernel) + ", stride " + pair_str(stride) + ", padding " +
                   pair_str(padding) + " and dilation " + pair_str(dilation) + " gives an output of size " +
                   pair_str({p.out_h, p.out_w}) + ", which is too small (at least 1 x 1)");
  return p;
}

Pool2dParams adaptive_params(const Shape& shape, Pair output_size) {
  check_input(shape, "adaptive_avg_pool2d");
  Pool2dParams p = base_params(shape, PoolKind::adaptive_avg);
  p.out_h = output_size.first;
  p.out_w = output_size.second;
  if (p.out_h < 1 || p.out_w < 1)
    throw ArgError("output_size: expected positive sizes, got " + pair_str(output_size));
  return p;
}

Shape output_shape(const Shape& in, const Pool2dParams& p) { return {in[0], in[1], p.out_h, p.out_w}; }

// The argmax indices: int64, flat h*W + w in each plane.
Array index_array(const Shape& shape, Device device) { return Array::empty(shape, DType::int64, device); }
const int64_t* index_data(const Array& a) { return a.data_as<int64_t>(); }

void check_grad_output(const Array& dy, const Shape& expected) {
  check_float(dy, "grad_output");
  check_shape(dy, "grad_output", expected);
}

std::pair<Array, Array> max_forward(const Array& x, Pair kernel, Pair stride, Pair padding, Pair dilation,
                                    bool ceil_mode) {
  check_float(x, "input");
  const Pool2dParams p = window_params(x.shape(), PoolKind::max, "max_pool2d", kernel, stride, padding, dilation,
                                       ceil_mode);
  Array y = Array::empty(output_shape(x.shape(), p), x.dtype(), x.device());  // every cell written
  Array indices = index_array(y.shape(), x.device());                          // every cell written
  GRADCORE_ON_DEVICE(x, pool2d_forward, x, y, static_cast<int64_t*>(indices.data()), p);
  return {y, indices};
}

Array max_backward(const Array& grad_output, const Array& indices, const Shape& input_shape, Pair kernel, Pair stride,
                   Pair padding, Pair dilation, bool ceil_mode) {
  const Pool2dParams p = window_params(input_shape, PoolKind::max, "max_pool2d", kernel, stride, padding, dilation,
                                       ceil_mode);
  check_grad_output(grad_output, output_shape(input_shape, p));
  check_float(grad_output, "grad_output");
  check_shape(indices, "indices", grad_output.shape());
  if (indices.dtype() != DType::int64)
    throw ArgTypeError("indices: expected int64 (as max_pool2d_forward returns them), got " +
                       dtype_name(indices.dtype()));
  check_same_device(grad_output, "grad_output", indices, "indices");
  Array dx = Array::empty(input_shape, grad_output.dtype(), grad_output.device());  // every cell written
  GRADCORE_ON_DEVICE(grad_output, pool2d_backward, grad_output, index_data(indices), dx, p);
  return dx;
}

Pool2dParams avg_params(const Shape& shape, Pair kernel, Pair stride, Pair padding, bool ceil_mode,
                        bool count_include_pad, int64_t divisor_override) {
  Pool2dParams p = window_params(shape, PoolKind::avg, "avg_pool2d", kernel, stride, padding, {1, 1}, ceil_mode);
  p.count_include_pad = count_include_pad;
  p.divisor_override = divisor_override;
  return p;
}

Array avg_forward(const Array& x, Pair kernel, Pair stride, Pair padding, bool ceil_mode, bool count_include_pad,
                  int64_t divisor_override) {
  check_float(x, "input");
  const Pool2dParams p = avg_params(x.shape(), kernel, stride, padding, ceil_mode, count_include_pad, divisor_override);
  Array y = Array::empty(output_shape(x.shape(), p), x.dtype(), x.device());  // every cell written
  GRADCORE_ON_DEVICE(x, pool2d_forward, x, y, nullptr, p);
  return y;
}

Array avg_backward(const Array& grad_output, const Shape& input_shape, Pair kernel, Pair stride, Pair padding,
                   bool ceil_mode, bool count_include_pad, int64_t divisor_override) {
  const Pool2dParams p = avg_params(input_shape, kernel, stride, padding, ceil_mode, count_include_pad,
                                    divisor_override);
  check_grad_output(grad_output, output_shape(input_shape, p));
  Array dx = Array::empty(input_shape, grad_output.dtype(), grad_output.device());  // every cell written
  GRADCORE_ON_DEVICE(grad_output, pool2d_backward, grad_output, nullptr, dx, p);
  return dx;
}

Array adaptive_forward(const Array& x, Pair output_size) {
  check_float(x, "input");
  const Pool2dParams p = adaptive_params(x.shape(), output_size);
  Array y = Array::empty(output_shape(x.shape(), p), x.dtype(), x.device());  // every cell written
  GRADCORE_ON_DEVICE(x, pool2d_forward, x, y, nullptr, p);
  return y;
}

Array adaptive_backward(const Array& grad_output, const Shape& input_shape) {
  const Pool2dParams p = adaptive_params(input_shape, {grad_output.ndim() == 4 ? grad_output.dim(2) : 0,
                                                       grad_output.ndim() == 4 ? grad_output.dim(3) : 0});
  check_grad_output(grad_output, output_shape(input_shape, p));
  Array dx = Array::empty(input_shape, grad_output.dtype(), grad_output.device());  // every cell written
  GRADCORE_ON_DEVICE(grad_output, pool2d_backward, grad_output, nullptr, dx, p);
  return dx;
}

}  // namespace

void bind_pool2d(py::module_& m) {
  m.def("max_pool2d_forward", &max_forward, py::arg("x"), py::arg("kernel_size"), py::arg("stride"),
        py::arg("padding"), py::arg("dilation"), py::arg("ceil_mode"),
        "(y, indices): the max of each window and its flat index h*W + w in the plane.",
        py::call_guard<py::gil_scoped_release>());
  m.def("max_pool2d_backward", &max_backward, py::arg("grad_output"), py::arg("indices"), py::arg("input_shape"),
        py::arg("kernel_size"), py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("ceil_mode"),
        "dx: each input cell gathers the gradients of the windows whose max it is.",
        py::call_guard<py::gil_scoped_release>());
  m.def("avg_pool2d_forward", &avg_forward, py::arg("x"), py::arg("kernel_size"), py::arg("stride"),
        py::arg("padding"), py::arg("ceil_mode"), py::arg("count_include_pad"), py::arg("divisor_override"),
        "The mean of each window (divisor_override 0: none).", py::call_guard<py::gil_scoped_release>());
  m.def("avg_pool2d_backward", &avg_backward, py::arg("grad_output"), py::arg("input_shape"), py::arg("kernel_size"),
        py::arg("stride"), py::arg("padding"), py::arg("ceil_mode"), py::arg("count_include_pad"),
        py::arg("divisor_override"), "dx of avg_pool2d.", py::call_guard<py::gil_scoped_release>());
  m.def("adaptive_avg_pool2d_forward", &adaptive_forward, py::arg("x"), py::arg("output_size"),
        "The mean over each of output_size's windows.", py::call_guard<py::gil_scoped_release>());
  m.def("adaptive_avg_pool2d_backward", &adaptive_backward, py::arg("grad_output"), py::arg("input_shape"),
        "dx of adaptive_avg_pool2d.", py::call_guard<py::gil_scoped_release>());
}

}  // namespace gradcore
