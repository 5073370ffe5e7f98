// When the CPU loops start OpenMP threads: below these amounts of work, starting and joining the threads costs more
// than they save. Results never depend on it: every loop gives the same bits on any number of threads (each
// output element and each partial sum belongs to one task), so these are tuning numbers only.
#pragma once
#include <cstdint>

namespace gradcore::cpu {

// Elements touched (elementwise, reductions, batch norm, ConvLSTM gates, optimizers) or multiply-adds (convolutions).
constexpr int64_t kParallelThreshold = 1 << 15;
// Elements copied by memcpy-bound block copies (concat), which only gain from threads when large.
constexpr int64_t kParallelCopyThreshold = 1 << 21;

}  // namespace gradcore::cpu
