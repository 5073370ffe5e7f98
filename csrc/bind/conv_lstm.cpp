// Bindings for the fused ConvLSTM gates (conv_lstm.h has the maths and the gate order [i, f, g, o]).
// Contract:
//   conv_lstm_gates_forward(pre, c, peephole=None) -> (h_next, c_next, gates)
//   conv_lstm_gates_backward(gates, c, c_next, d_h_next, d_c_next, peephole=None) -> (d_pre, d_c, d_peephole)
// d_peephole is None without peepholes. All outputs are new arrays.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <optional>
#include <tuple>
#include "conv_lstm.h"

namespace py = pybind11;
namespace gradcore {

namespace {

// Checks pre (N, 4Hc, H, W), c (N, Hc, H, W) and the optional peephole (3, Hc, H, W); returns the shape.
ConvLSTMGatesShape gates_shape(const Array& pre, const char* pre_name, const Array& c,
                               const std::optional<Array>& peephole) {
  if (pre.ndim() != 4)  // conv2d's wording (check_ndim says "array", a word the Python caller never used)
    throw ArgError(std::string(pre_name) + ": expected 4 dimensions (N, 4*hidden, H, W), got shape " +
                   shape_str(pre.shape()));
  if (pre.dim(1) % 4 != 0)
    throw ArgError(std::string(pre_name) + ": expected 4*hidden channels (gates [i, f, g, o]), got " +
                   std::to_string(pre.dim(1)));
  const int64_t N = pre.dim(0), Hc = pre.dim(1) / 4, H = pre.dim(2), W = pre.dim(3);
  check_same_dtype(pre, pre_name, c, "c");
  check_same_device(pre, pre_name, c, "c");
  check_shape(c, "c", {N, Hc, H, W});
  if (peephole) {
    check_same_dtype(pre, pre_name, *peephole, "peephole");
    check_same_device(pre, pre_name, *peephole, "peephole");
    check_shape(*peephole, "peephole", {3, Hc, H, W});
  }
  ConvLSTMGatesShape shape;
  shape.batch = N;
  shape.hidden = Hc;
  shape.positions = H * W;
  shape.peephole = peephole.has_value();
  return shape;
}

std::tuple<Array, Array, Array> gates_forward(const Array& pre, const Array& c, const std::optional<Array>& peephole) {
  const ConvLSTMGatesShape shape = gates_shape(pre, "pre", c, peephole);
  // Outputs written whole by the kernel.
  Array h_next = Array::empty(c.shape(), c.dtype(), c.device());
  Array c_next = Array::empty(c.shape(), c.dtype(), c.device());
  Array gates = Array::empty(pre.shape(), pre.dtype(), pre.device());
  const Array none;
  GRADCORE_ON_DEVICE(pre, conv_lstm_gates_forward, pre, c, peephole ? *peephole : none, h_next, c_next, gates, shape);
  return {h_next, c_next, gates};
}

std::tuple<Array, Array, std::optional<Array>> gates_backward(const Array& gates, const Array& c, const Array& c_next,
                                                              const Array& d_h_next, const Array& d_c_next,
                                                              const std::optional<Array>& peephole) {
  const ConvLSTMGatesShape shape = gates_shape(gates, "gates", c, peephole);
  for (auto [a, name] : {std::pair<const Array*, const char*>{&c_next, "c_next"}, {&d_h_next, "d_h_next"},
                         {&d_c_next, "d_c_next"}}) {
    check_same_dtype(gates, "gates", *a, name);
    check_same_device(gates, "gates", *a, name);
    check_shape(*a, name, c.shape());
  }
  Array d_pre = Array::empty(gates.shape(), gates.dtype(), gates.device());  // written whole
  Array d_c = Array::empty(c.shape(), c.dtype(), c.device());                // written whole
  // The peephole gradient is a batch sum: its buffer starts at zero like every accumulator.
  Array d_peephole = peephole ? Array::zeros(peephole->shape(), c.dtype(), c.device()) : Array();
  const Array none;
  GRADCORE_ON_DEVICE(gates, conv_lstm_gates_backward, gates, c, c_next, peephole ? *peephole : none, d_h_next,
                     d_c_next, d_pre, d_c, d_peephole, shape);
  std::optional<Array> d_peephole_out;
  if (peephole) d_peephole_out = d_peephole;
  return {d_pre, d_c, d_peephole_out};
}

}  // namespace

void bind_conv_lstm(py::module_& m) {
  m.def("conv_lstm_gates_forward", &gates_forward, py::arg("pre"), py::arg("c"), py::arg("peephole") = py::none(),
        "Fused ConvLSTM gates: (h_next, c_next, gates) from pre-activations (N, 4*hidden, H, W) ordered [i, f, g, o].",
        py::call_guard<py::gil_scoped_release>());
  m.def("conv_lstm_gates_backward", &gates_backward, py::arg("gates"), py::arg("c"), py::arg("c_next"),
        py::arg("d_h_next"), py::arg("d_c_next"), py::arg("peephole") = py::none(),
        "Gradients (d_pre, d_c, d_peephole or None) of the fused ConvLSTM gates.",
        py::call_guard<py::gil_scoped_release>());
}

}  // namespace gradcore
