// The one compiled module, gradcore._core. Each op's binding file contributes one bind_<op> function.
#include <pybind11/pybind11.h>

namespace py = pybind11;
namespace gradcore {
void bind_array(py::module_& m);
void bind_elementwise(py::module_& m);
void bind_batch_norm(py::module_& m);
void bind_concat(py::module_& m);
void bind_conv_lstm(py::module_& m);
void bind_conv2d(py::module_& m);
void bind_multi_tensor(py::module_& m);
void bind_grad_norm(py::module_& m);
void bind_fused_adam(py::module_& m);
void bind_fused_sgd(py::module_& m);
}  // namespace gradcore

PYBIND11_MODULE(_core, m) {
  m.doc() = "gradcore kernels: CPU (C++/OpenMP) and CUDA twins behind one set of entry points";
  gradcore::bind_array(m);
  gradcore::bind_elementwise(m);
  gradcore::bind_batch_norm(m);
  gradcore::bind_concat(m);
  gradcore::bind_conv_lstm(m);
  gradcore::bind_conv2d(m);
  gradcore::bind_multi_tensor(m);
  gradcore::bind_grad_norm(m);
  gradcore::bind_fused_adam(m);
  gradcore::bind_fused_sgd(m);
}
