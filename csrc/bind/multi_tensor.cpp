// Binding of TensorTable: an opaque cache that an optimizer (or a clipping call) keeps between steps so that the
// table of its tensors is built and uploaded only when the buffers change. See multi_tensor.h.
#include <pybind11/pybind11.h>
#include "multi_tensor.h"

namespace py = pybind11;
namespace gradcore {

void bind_multi_tensor(py::module_& m) {
  py::class_<TensorTable>(m, "TensorTable",
                          "Cache of a multi-tensor table (pointers and sizes; on CUDA a device copy), rebuilt only "
                          "when the buffers passed to a fused kernel change.")
      .def(py::init<>())
      .def_property_readonly("builds", &TensorTable::builds, "How many times the table was built (cache misses).");
}

}  // namespace gradcore
