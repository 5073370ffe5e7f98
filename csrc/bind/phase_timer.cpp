// Bindings for the CPU phase timer (cpu/phase_timer.h): the bench turns it on around a measured step and prints
// where the time went.
#include <pybind11/pybind11.h>
#include "cpu/phase_timer.h"

namespace py = pybind11;
namespace gradcore {

void bind_phase_timer(py::module_& m) {
  namespace phases = cpu::phases;
  m.def(
      "set_phase_timing", [](bool on) { phases::enabled().store(on); }, py::arg("enabled"),
      "Turns the CPU phase timer on or off (off by default).");
  m.def(
      "phase_times",
      [](bool reset) {
        py::dict out;
        std::lock_guard<std::mutex> lock(phases::registry_mutex());
        for (auto& [name, slot] : phases::registry()) {
          const int64_t calls = reset ? slot->calls.exchange(0) : slot->calls.load();
          const int64_t ns = reset ? slot->nanoseconds.exchange(0) : slot->nanoseconds.load();
          if (calls) out[py::str(name)] = py::make_tuple(ns * 1e-9, calls);
        }
        return out;
      },
      py::arg("reset") = true,
      "{phase name: (thread-seconds, calls)} since the last reset, phases with no calls left out.");
}

}  // namespace gradcore
