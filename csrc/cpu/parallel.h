// When the CPU loops start OpenMP threads: below these amounts of work, starting and joining the threads costs more
// than they save. Results never depend on it: every loop gives the same bits on any number of threads (each
// output element and each partial sum belongs to one task), so these are tuning numbers only.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
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

// Tasks [0, tasks) handed to the threads of an OpenMP team in contiguous shares, one per thread, each share taken
// from its front by its own thread first, then by any thread that has run out (run(), called by every thread of the
// team). Why not schedule(dynamic, 1): there, which thread runs a task changes from call to call, so the lines of an
// output that one core wrote in the last call are written by the other this time (each such store fetches the line
// from the other core's L2), and neighbouring tasks, which share lines at their edges, run at the same time on
// different cores. With shares, a thread writes the same part of an output call after call and two threads meet only
// at the shares' edges. Why not schedule(static): a thread that wakes late (or a share of dearer tasks) then holds up
// the whole loop; here the others take over the rest of its share. Which thread runs a task never changes a result
// (a kernel's tasks write disjoint outputs), so this is tuning only. Unlike an omp for, run() ends without a barrier:
// code after it in the same parallel region that reads the tasks' outputs needs a #pragma omp barrier first.
// Measured (issue 19, session 7, 2-core Xeon, 2 threads, batch 25, against schedule(dynamic, 1); ms, minima of
// interleaved processes at load ~1): the seed layers' 15 passes 4.18 -> 3.83 in all (dec2 backward-data 0.670 ->
// 0.573, its Winograd output transform 0.35 -> 0.18 thread-ms; dec2 transposed forward 0.749 -> 0.670; dec3
// backward-data 0.090 -> 0.051), the training step 5.76-6.31 -> 5.49-5.84 (B=256: 58.2-59.1 -> 56.2-57.3). Used by
// the loops whose tasks write an output's parts: the stride-2 Winograd forward and transposed paths, the
// stride-decomposed and few-channel convolutions, the stride-1 Winograd forward and the stride-2 Winograd weight
// gradient's image groups. Not by the GEMM convolution's forward and input gradient (conv2d.cpp,
// conv2d_backward_input.cpp): there the body as a lambda ran 10-15% slower on one thread (seed enc1 forward 0.046 ->
// 0.055 ms, dec3 transposed forward 0.24 -> 0.27), for no gain on two.
class TaskShares {
 public:
  // One share per thread a parallel loop would start (max_threads) when parallel and there are tasks to split, else
  // one (a team that turns out smaller still runs every task: its threads take the rest).
  TaskShares(int64_t tasks, bool parallel)
      : tasks_(tasks), shares_(parallel && tasks > 1 ? max_threads() : 1), next_(new Next[shares_]) {
    for (int s = 0; s < shares_; ++s) next_[s].value.store(begin(s), std::memory_order_relaxed);
  }
  // Whether to start a team for run(): the omp parallel's if clause.
  bool parallel() const { return shares_ > 1; }
  template <typename Body> void run(Body&& body) {
#if defined(_OPENMP)
    const int me = omp_get_thread_num();
#else
    const int me = 0;
#endif
    for (int k = 0; k < shares_; ++k) {
      const int s = (me + k) % shares_;
      const int64_t end = begin(s + 1);
      for (int64_t t; (t = next_[s].value.fetch_add(1, std::memory_order_relaxed)) < end;) body(t);
    }
  }

 private:
  struct alignas(64) Next {  // one cache line per share's counter: the threads claim from them at once
    std::atomic<int64_t> value;
  };
  int64_t begin(int s) const { return tasks_ * s / shares_; }
  int64_t tasks_;
  int shares_;
  std::unique_ptr<Next[]> next_;
};

}  // namespace gradcore::cpu
