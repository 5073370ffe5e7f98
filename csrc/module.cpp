// The one compiled module, gradcore._core. Each binding file csrc/bind/<name>.cpp defines bind_<name>(module);
// bindings.inc, which CMake writes from the files present (array first, then by name), lists them as
// GRADCORE_BINDING(<name>), so a new op's binding file is registered without an edit here.
#include <pybind11/pybind11.h>

namespace py = pybind11;

namespace gradcore {
#define GRADCORE_BINDING(name) void bind_##name(py::module_& m);
#include "bindings.inc"
#undef GRADCORE_BINDING
}  // namespace gradcore

PYBIND11_MODULE(_core, m) {
  m.doc() = "gradcore kernels: CPU (C++/OpenMP) and CUDA twins behind one set of entry points";
#define GRADCORE_BINDING(name) gradcore::bind_##name(m);
#include "bindings.inc"
#undef GRADCORE_BINDING
}
