// Where the CPU time goes, phase by phase, for the bench's breakdown (bench/ prints it; issue #19). Off by default:
// a disabled scope costs one relaxed atomic load. When enabled, each scope adds its wall time and one call to a
// named slot; slots are summed over threads, so a phase run by two threads at once counts twice (thread-seconds).
// Timing never touches the results: it only reads the clock.
//
//   void im2col(...) { GRADCORE_PHASE("conv2d_forward/im2col"); ... }
//
// Put scopes around coarse pieces of work (a kKc block, a task), not inside the micro-kernel: each enabled scope
// reads the clock twice (~40 ns).
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace gradcore::cpu::phases {

struct Slot {
  std::atomic<int64_t> nanoseconds{0};
  std::atomic<int64_t> calls{0};
};

inline std::atomic<bool>& enabled() {
  static std::atomic<bool> on{false};
  return on;
}

// The registry: one Slot per name for the whole module, created on first use and never freed (slots are referenced
// from function-local statics).
inline std::mutex& registry_mutex() {
  static std::mutex mutex;
  return mutex;
}
inline std::map<std::string, Slot*>& registry() {
  static std::map<std::string, Slot*> slots;
  return slots;
}
inline Slot& slot(const char* name) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  Slot*& s = registry()[name];
  if (!s) s = new Slot();
  return *s;
}

class Scope {
 public:
  explicit Scope(Slot& slot) : slot_(enabled().load(std::memory_order_relaxed) ? &slot : nullptr) {
    if (slot_) start_ = std::chrono::steady_clock::now();
  }
  ~Scope() {
    if (!slot_) return;
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start_);
    slot_->nanoseconds.fetch_add(ns.count(), std::memory_order_relaxed);
    slot_->calls.fetch_add(1, std::memory_order_relaxed);
  }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  Slot* slot_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace gradcore::cpu::phases

#define GRADCORE_PHASE_CONCAT2(a, b) a##b
#define GRADCORE_PHASE_CONCAT(a, b) GRADCORE_PHASE_CONCAT2(a, b)
// Times the rest of the enclosing scope under `name` (a string literal).
#define GRADCORE_PHASE(name)                                                                                        \
  static ::gradcore::cpu::phases::Slot& GRADCORE_PHASE_CONCAT(gradcore_phase_slot_, __LINE__) =                     \
      ::gradcore::cpu::phases::slot(name);                                                                          \
  ::gradcore::cpu::phases::Scope GRADCORE_PHASE_CONCAT(gradcore_phase_scope_, __LINE__)(                            \
      GRADCORE_PHASE_CONCAT(gradcore_phase_slot_, __LINE__))
