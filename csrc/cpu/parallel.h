// When the CPU loops start OpenMP threads: below these amounts of work, starting and joining the threads costs more
// than they save. Results never depend on it: every loop gives the same bits on any number of threads (each
// output element and each partial sum belongs to one task), so these are tuning numbers only.
#pragma once
#include <cstdint>
#if defined(_OPENMP)
#include <omp.h>
#endif

namespace gradcore::cpu {

// Elements touched (elementwise, reductions, batch norm, ConvLSTM gates, optimizers) or multiply-adds (convolutions).
constexpr int64_t kParallelThreshold = 1 << 15;
// Elements copied by memcpy-bound block copies (concat), which only gain from threads when large.
constexpr int64_t kParallelCopyThreshold = 1 << 21;

// Threads a parallel loop would start now: for sizing tasks only (never for what a task computes).
inline int max_threads() {
#if defined(_OPENMP)
  return omp_get_max_threads();
#else
  return 1;
#endif
}

}  // namespace gradcore::cpu
