// Bindings for conv2d's three kernels. Contract: arrays are contiguous NCHW; stride and dilation are (h, w),
// padding is (top, bottom, left, right); every argument is validated here (conv2d_params) before a kernel runs, and
// outputs are allocated here and written whole by the kernel. The GIL is released while the kernels run.
// conv_transpose2d's forward is conv2d_backward_input with roles swapped; conv_transpose2d_forward checks its arrays
// under the names the user passed (x, weight, bias) before calling it. Its backward calls conv2d_forward and
// conv2d_backward_weight on arrays that forward already checked (python/gradcore/ops/conv_transpose2d.py).
// activation="relu" (forward, backward_input, conv_transpose2d_forward) stores relu(result): the fused conv + ReLU,
// whose backward starts with conv_relu_backward (python/gradcore/ops/conv_relu.py).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <array>
#include <optional>
#include "conv2d.h"
#include "elementwise.h"
#include "reduce.h"

namespace py = pybind11;
namespace gradcore {

using Pair = std::array<int64_t, 2>;
using Quad = std::array<int64_t, 4>;

Conv2dParams conv2d_params(const Shape& x_shape, const Shape& w_shape, const int64_t stride[2],
                           const int64_t padding[4], const int64_t dilation[2], int64_t groups) {
  auto pair_str = [](const int64_t* v) { return "(" + std::to_string(v[0]) + ", " + std::to_string(v[1]) + ")"; };
  if (x_shape.size() != 4) throw ArgError("x: expected 4 dimensions (N, C_in, H, W), got shape " + shape_str(x_shape));
  if (w_shape.size() != 4)
    throw ArgError("weight: expected 4 dimensions (C_out, C_in/groups, kH, kW), got shape " + shape_str(w_shape));
  if (stride[0] < 1 || stride[1] < 1) throw ArgError("stride: expected values >= 1, got " + pair_str(stride));
  if (dilation[0] < 1 || dilation[1] < 1) throw ArgError("dilation: expected values >= 1, got " + pair_str(dilation));
  for (int i = 0; i < 4; ++i)
    if (padding[i] < 0) throw ArgError("padding: expected values >= 0, got " + std::to_string(padding[i]));
  if (groups < 1) throw ArgError("groups: expected a value >= 1, got " + std::to_string(groups));
  Conv2dParams p;
  p.batch = x_shape[0];
  p.in_channels = x_shape[1];
  p.in_h = x_shape[2];
  p.in_w = x_shape[3];
  p.out_channels = w_shape[0];
  p.kernel_h = w_shape[2];
  p.kernel_w = w_shape[3];
  p.stride_h = stride[0];
  p.stride_w = stride[1];
  p.dilation_h = dilation[0];
  p.dilation_w = dilation[1];
  p.pad_top = padding[0];
  p.pad_bottom = padding[1];
  p.pad_left = padding[2];
  p.pad_right = padding[3];
  p.groups = groups;
  if (p.in_channels % groups != 0)
    throw ArgError("x: " + std::to_string(p.in_channels) + " input channels are not divisible by groups=" +
                   std::to_string(groups));
  if (p.out_channels % groups != 0)
    throw ArgError("weight: " + std::to_string(p.out_channels) + " output channels (weight.shape[0]) are not "
                   "divisible by groups=" + std::to_string(groups));
  if (w_shape[1] * groups != p.in_channels)
    throw ArgError("weight: shape " + shape_str(w_shape) + " expects " + std::to_string(w_shape[1] * groups) +
                   " input channels (weight.shape[1] * groups), but x has " + std::to_string(p.in_channels));
  if (p.kernel_h < 1 || p.kernel_w < 1) throw ArgError("weight: empty kernel, shape " + shape_str(w_shape));
  // Sizes that overflow int64 would wrap into nonsense (a padded size of -9223372036854775803).
  int64_t extent_h, extent_w, padded_h, padded_w;
  if (__builtin_mul_overflow(p.dilation_h, p.kernel_h - 1, &extent_h) || ++extent_h <= 0 ||
      __builtin_mul_overflow(p.dilation_w, p.kernel_w - 1, &extent_w) || ++extent_w <= 0)
    throw ArgError("dilation: " + pair_str(dilation) + " times the kernel size " + shape_str(w_shape) +
                   " does not fit 64 bits");
  if (__builtin_add_overflow(p.in_h, p.pad_top, &padded_h) || __builtin_add_overflow(padded_h, p.pad_bottom, &padded_h) ||
      __builtin_add_overflow(p.in_w, p.pad_left, &padded_w) || __builtin_add_overflow(padded_w, p.pad_right, &padded_w))
    throw ArgError("padding: (" + std::to_string(padding[0]) + ", " + std::to_string(padding[1]) + ", " +
                   std::to_string(padding[2]) + ", " + std::to_string(padding[3]) + ") plus the input size " +
                   shape_str(x_shape) + " does not fit 64 bits");
  if (extent_h > padded_h || extent_w > padded_w)
    throw ArgError("weight: the dilated kernel (" + std::to_string(extent_h) + " x " + std::to_string(extent_w) +
                   ") is larger than the padded input (" + std::to_string(padded_h) + " x " +
                   std::to_string(padded_w) + ")");
  p.out_h = (padded_h - extent_h) / p.stride_h + 1;
  p.out_w = (padded_w - extent_w) / p.stride_w + 1;
  return p;
}

namespace {

Array optional_bias(const std::optional<Array>& bias, const Array& like, int64_t channels, const char* what) {
  if (!bias) return Array();
  check_same_dtype(like, what, *bias, "bias");
  check_same_device(like, what, *bias, "bias");
  check_shape(*bias, "bias", {channels});
  return *bias;
}

// A convolution whose reduction is empty (no input channels per group) is its bias alone, or zeros: the GEMMs of
// both devices write nothing for an empty reduction, so these outputs are made here, once for both devices.
Array bias_only(const Shape& shape, const Array& like, const Array& bias, Activation act) {
  Array out = Array::zeros(shape, like.dtype(), like.device());
  if (!bias.data() || out.numel() == 0) return out;  // a default Array (no bias) has no data; relu(0) = 0
  const Array b = bias.reshape({1, shape[1], 1, 1});
  const BroadcastLayout layout = broadcast_layout(out.shape(), b.shape());
  GRADCORE_ON_DEVICE(out, binary, out, b, out, BinaryOp::add, 0.0, layout);
  if (act == Activation::relu) GRADCORE_ON_DEVICE(out, unary, out, out, UnaryOp::relu, 0.0, 0.0);
  return out;
}

// y = act(conv2d(x, weight) + bias).
Array conv2d_forward(const Array& x, const Array& weight, const std::optional<Array>& bias, Pair stride, Quad padding,
                     Pair dilation, int64_t groups, const std::string& activation) {
  check_same_dtype(x, "x", weight, "weight");
  check_same_device(x, "x", weight, "weight");
  Conv2dParams p = conv2d_params(x.shape(), weight.shape(), stride.data(), padding.data(), dilation.data(), groups);
  p.activation = activation_of(activation);
  Array b = optional_bias(bias, x, p.out_channels, "x");
  if (p.in_per_group() == 0) return bias_only({p.batch, p.out_channels, p.out_h, p.out_w}, x, b, p.activation);
  Array y = Array::empty({p.batch, p.out_channels, p.out_h, p.out_w}, x.dtype(), x.device());
  GRADCORE_ON_DEVICE(x, conv2d_forward, x, weight, b, y, p);
  return y;
}

// dL/dx of y = conv2d(x, weight) for x of spatial size input_size, from grad_output = dL/dy; plus bias per channel
// of the result when given, then the activation (conv_transpose2d's forward).
Array conv2d_backward_input(const Array& grad_output, const Array& weight, Pair input_size, Pair stride,
                            Quad padding, Pair dilation, int64_t groups, const std::optional<Array>& bias,
                            const std::string& activation) {
  check_same_dtype(grad_output, "grad_output", weight, "weight");
  check_same_device(grad_output, "grad_output", weight, "weight");
  check_ndim(grad_output, "grad_output", 4, "(N, C_out, H_out, W_out)");
  check_ndim(weight, "weight", 4, "(C_out, C_in/groups, kH, kW)");
  const Shape x_shape{grad_output.dim(0), weight.dim(1) * groups, input_size[0], input_size[1]};
  Conv2dParams p = conv2d_params(x_shape, weight.shape(), stride.data(), padding.data(), dilation.data(), groups);
  p.activation = activation_of(activation);
  check_shape(grad_output, "grad_output", {p.batch, p.out_channels, p.out_h, p.out_w});
  Array b = optional_bias(bias, grad_output, p.in_channels, "grad_output");
  if (p.out_per_group() == 0) return bias_only(x_shape, grad_output, b, p.activation);
  Array gx = Array::empty(x_shape, grad_output.dtype(), grad_output.device());
  GRADCORE_ON_DEVICE(grad_output, conv2d_backward_input, grad_output, weight, b, gx, p);
  return gx;
}

// dL/dweight of y = conv2d(x, weight) for a kernel of kernel_size, from grad_output = dL/dy.
Array conv2d_backward_weight(const Array& x, const Array& grad_output, Pair kernel_size, Pair stride, Quad padding,
                             Pair dilation, int64_t groups) {
  check_same_dtype(x, "x", grad_output, "grad_output");
  check_same_device(x, "x", grad_output, "grad_output");
  check_ndim(x, "x", 4, "(N, C_in, H, W)");
  check_ndim(grad_output, "grad_output", 4, "(N, C_out, H_out, W_out)");
  if (groups < 1) throw ArgError("groups: expected a value >= 1, got " + std::to_string(groups));
  const Shape w_shape{grad_output.dim(1), x.dim(1) / groups, kernel_size[0], kernel_size[1]};
  const Conv2dParams p = conv2d_params(x.shape(), w_shape, stride.data(), padding.data(), dilation.data(), groups);
  check_shape(grad_output, "grad_output", {p.batch, p.out_channels, p.out_h, p.out_w});
  Array gw = Array::empty(w_shape, x.dtype(), x.device());
  GRADCORE_ON_DEVICE(x, conv2d_backward_weight, x, grad_output, gw, p);
  return gw;
}

// y = conv_transpose2d(x, weight) + bias for an output of spatial size output_size: the arrays are checked here under
// the user's names and layouts, then it is conv2d's dL/dx with x as grad_output.
Array conv_transpose2d_forward(const Array& x, const Array& weight, const std::optional<Array>& bias,
                               Pair output_size, Pair stride, Quad padding, Pair dilation, int64_t groups,
                               const std::string& activation) {
  // Worded as conv2d_params words conv2d's (check_ndim would say "array"), with the transposed weight layout.
  if (x.ndim() != 4) throw ArgError("x: expected 4 dimensions (N, C_in, H, W), got shape " + shape_str(x.shape()));
  if (weight.ndim() != 4)
    throw ArgError("weight: expected 4 dimensions (C_in, C_out/groups, kH, kW), got shape " +
                   shape_str(weight.shape()));
  check_same_dtype(x, "x", weight, "weight");
  check_same_device(x, "x", weight, "weight");
  if (groups < 1) throw ArgError("groups: expected a value >= 1, got " + std::to_string(groups));
  if (weight.dim(0) != x.dim(1))
    throw ArgError("weight: shape " + shape_str(weight.shape()) + " expects " + std::to_string(weight.dim(0)) +
                   " input channels (weight.shape[0]), but x has " + std::to_string(x.dim(1)));
  if (x.dim(1) % groups != 0)
    throw ArgError("x: " + std::to_string(x.dim(1)) + " input channels are not divisible by groups=" +
                   std::to_string(groups));
  optional_bias(bias, x, weight.dim(1) * groups, "x");
  // The conv2d whose adjoint this is maps an output_size image back to x's size; anything else is no adjoint.
  const Shape conv_input{x.dim(0), weight.dim(1) * groups, output_size[0], output_size[1]};
  const Conv2dParams p = conv2d_params(conv_input, weight.shape(), stride.data(), padding.data(), dilation.data(),
                                       groups);
  if (p.out_h != x.dim(2) || p.out_w != x.dim(3))
    throw ArgError("output_size: (" + std::to_string(output_size[0]) + ", " + std::to_string(output_size[1]) +
                   ") does not match x's size " + shape_str(x.shape()) + " for this stride, padding and dilation");
  return conv2d_backward_input(x, weight, output_size, stride, padding, dilation, groups, bias, activation);
}

// (gm, db) = (relu_backward(grad_output, y), sum of gm over N, H, W) for the fused conv + ReLU with output y; db is
// None unless bias_grad. One pass on the CPU (cpu/conv2d_relu.cpp); the bits are those of the unfused mask and sum.
// in_place=True writes gm over grad_output (each element is read before it is written, on either device) and returns
// it: the autograd engine asks for it when it holds the only reference to that gradient (autograd.py), which spares
// a fresh block and the cache misses of writing it (the mask runs on data that has just left the caches).
py::tuple conv_relu_backward(const Array& grad_output, const Array& y, bool bias_grad, bool in_place) {
  Array gm, db;
  {
    py::gil_scoped_release release;
    check_same_dtype(grad_output, "grad_output", y, "y");
    check_same_device(grad_output, "grad_output", y, "y");
    check_ndim(grad_output, "grad_output", 4, "(N, C, H, W)");
    check_shape(y, "y", grad_output.shape());
    if (!is_floating(grad_output.dtype()))
      throw ArgTypeError("grad_output: expected a float32 or float64 array, got " +
                         std::string(dtype_name(grad_output.dtype())));
    if (in_place) {
      gm = grad_output;
      gm.bump_version();
    } else {
      gm = Array::empty(grad_output.shape(), grad_output.dtype(), grad_output.device());
    }
    if (bias_grad) db = Array::empty({grad_output.dim(1)}, grad_output.dtype(), grad_output.device());
    if (gm.numel() > 0 || bias_grad) GRADCORE_ON_DEVICE(grad_output, conv_relu_backward, grad_output, y, gm, db);
  }
  return py::make_tuple(gm, bias_grad ? py::cast(db) : py::none());
}

}  // namespace

void bind_conv2d(py::module_& m) {
  m.def("conv2d_forward", &conv2d_forward, py::arg("x"), py::arg("weight"), py::arg("bias") = py::none(),
        py::arg("stride") = Pair{1, 1}, py::arg("padding") = Quad{0, 0, 0, 0}, py::arg("dilation") = Pair{1, 1},
        py::arg("groups") = 1, py::arg("activation") = "none",
        "y = act(conv2d(x, weight) + bias), act \"none\" or \"relu\"; padding is (top, bottom, left, right).",
        py::call_guard<py::gil_scoped_release>());
  m.def("conv2d_backward_input", &conv2d_backward_input, py::arg("grad_output"), py::arg("weight"),
        py::arg("input_size"), py::arg("stride") = Pair{1, 1}, py::arg("padding") = Quad{0, 0, 0, 0},
        py::arg("dilation") = Pair{1, 1}, py::arg("groups") = 1, py::arg("bias") = py::none(),
        py::arg("activation") = "none",
        "dL/dx of conv2d for an input of spatial size input_size (+ bias per channel and the activation, for "
        "conv_transpose2d).",
        py::call_guard<py::gil_scoped_release>());
  m.def("conv_transpose2d_forward", &conv_transpose2d_forward, py::arg("x"), py::arg("weight"),
        py::arg("bias"), py::arg("output_size"), py::arg("stride") = Pair{1, 1},
        py::arg("padding") = Quad{0, 0, 0, 0}, py::arg("dilation") = Pair{1, 1}, py::arg("groups") = 1,
        py::arg("activation") = "none",
        "y = act(conv_transpose2d(x, weight) + bias) with output spatial size output_size; padding crops (top, "
        "bottom, left, right).", py::call_guard<py::gil_scoped_release>());
  m.def("conv_relu_backward", &conv_relu_backward, py::arg("grad_output"), py::arg("y"), py::arg("bias_grad"),
        py::arg("in_place") = false,
        "(relu_backward(grad_output, y), its sum over N, H, W or None): the fused conv + ReLU's first backward step; "
        "in_place=True writes the first into grad_output.");
  m.def("conv2d_backward_weight", &conv2d_backward_weight, py::arg("x"), py::arg("grad_output"),
        py::arg("kernel_size"), py::arg("stride") = Pair{1, 1}, py::arg("padding") = Quad{0, 0, 0, 0},
        py::arg("dilation") = Pair{1, 1}, py::arg("groups") = 1,
        "dL/dweight of conv2d, reduced over the batch in a fixed order.", py::call_guard<py::gil_scoped_release>());
}

}  // namespace gradcore
