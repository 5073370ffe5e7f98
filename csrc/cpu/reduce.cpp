// CPU sum over axes; see reduce.h for the order of summation and the accumulator of each dtype.
#include "reduce.h"
#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>
#include "cpu/parallel.h"
#include "cpu/simd.h"
#include "cpu/sum_lanes.h"
#ifdef _OPENMP
#include <omp.h>
#endif

namespace gradcore {

// Tasks are (a block of consecutive kept elements, a chunk of the reduced range). Inside a task the reduced runs are
// the outer loop and the block's kept elements the inner one, so memory is read in order: a bias gradient (sum over
// N, H, W of (N, C, H, W)) reads, for each n, channels c0..c1 as one contiguous stretch, and a sum over the rows of an
// (N, D) matrix reads whole rows (vectorised across its columns), where one kept element at a time jumped by C*H*W
// (or by D) after every run: ~2.5x slower than PyTorch for the bias gradients of a training step. Each accumulator
// (k, chunk) still receives the same additions in the same order, so the block size (which follows the thread count
// only so that small K still spreads over the threads) never changes the bits.
constexpr int64_t kKeptBlock = 64;

// Runs (of kept elements side by side in a block) summed at once. A run's sum is one chain of dependent adds per lane,
// so one run at a time waited on the add latency (a (25, 32, 28, 28) bias gradient: 0.067 ms at 1 thread, half the
// speed of a copy); four independent chains keep the adder busy, and each run's additions keep their order.
constexpr int kRunsSideBySide = 4;

// acc[c] += the sum of x[koff[c] + j] for j in [0, take) (base = x + the run's offset), for CH runs, each in the fixed
// order: eight lanes (element j into lane j % 8 for the whole groups of eight, the rest into lane 0 in order),
// combined as ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)). Float types go eight lanes at a time (CH > 1 needs them).
template <typename T, int CH>
inline void run_sums(const T* base, const int64_t* koff, int64_t take, SumAccumulator<T>* acc) {
  using Acc = SumAccumulator<T>;
  Acc lane[CH][8];
  int64_t j = 0;
  if constexpr (std::is_floating_point_v<T>) {
    using A = cpu::FixedVec<double, 8>;
    A v[CH];
    for (int c = 0; c < CH; ++c) v[c] = A{};
    for (; j + 8 <= take; j += 8) {
#pragma GCC unroll 4
      for (int c = 0; c < CH; ++c) v[c] += cpu::widen8(cpu::load_as<cpu::FixedVec<T, 8>>(base + koff[c] + j));
    }
    for (int c = 0; c < CH; ++c) std::memcpy(lane[c], &v[c], sizeof lane[c]);
  } else {
    for (int c = 0; c < CH; ++c)
      for (int l = 0; l < 8; ++l) lane[c][l] = 0;
    for (; j + 8 <= take; j += 8)
      for (int c = 0; c < CH; ++c)
        for (int l = 0; l < 8; ++l) lane[c][l] = sum_add(lane[c][l], (Acc)base[koff[c] + j + l]);
  }
  for (int c = 0; c < CH; ++c) {
    Acc* l = lane[c];
    for (int64_t t = j; t < take; ++t) l[0] = sum_add(l[0], (Acc)base[koff[c] + t]);
    acc[c] = sum_add(acc[c], cpu::fold_lanes8(l));
  }
}

void sum_cpu(const Array& x, Array& out, const ReduceLayout& layout) {
  const int64_t K = layout.kept_numel, R = layout.reduced_numel;
  const int64_t chunks = R == 0 ? 1 : (R + kReduceChunk - 1) / kReduceChunk;
  // The innermost reduced dimension is walked as a strided run, the rest by offset arithmetic.
  const int64_t run = layout.reduced_ndim ? layout.reduced_shape[layout.reduced_ndim - 1] : 1;
  const int64_t run_stride = layout.reduced_ndim ? layout.reduced_stride[layout.reduced_ndim - 1] : 1;
  const bool parallel = K * R >= cpu::kParallelThreshold;
  int threads = 1;
#ifdef _OPENMP
  if (parallel) threads = omp_get_max_threads();
#endif
  const cpu::KeptBlocks kept = cpu::kept_blocks(K, chunks, threads, kKeptBlock);
  const int64_t block = kept.block, blocks = kept.count;
  dispatch_all(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    using Acc = SumAccumulator<T>;
    using Out = SumOutput<T>;
    const T* px = x.data_as<T>();
    Out* po = out.data_as<Out>();
    std::vector<Acc> partial((size_t)(K * chunks), Acc(0));
#pragma omp parallel for schedule(static) collapse(2) if (parallel)
    for (int64_t b = 0; b < blocks; ++b) {
      for (int64_t c = 0; c < chunks; ++c) {
        const int64_t k0 = b * block, nk = std::min(block, K - k0);
        int64_t koff[kKeptBlock];
        Acc acc[kKeptBlock];
        bool contiguous = true;  // kept elements next to each other in memory: the strided case vectorises
        for (int64_t i = 0; i < nk; ++i) {
          koff[i] = kept_offset(layout, k0 + i);
          contiguous = contiguous && koff[i] == koff[0] + i;
          acc[i] = 0;
        }
        const int64_t begin = c * kReduceChunk, end = std::min(R, begin + kReduceChunk);
        int64_t r = begin;
        while (r < end) {
          const int64_t in_run = r % run, take = std::min(run - in_run, end - r);
          const int64_t roff = reduced_offset(layout, r);
          if (run_stride == 1) {
            int64_t i = 0;
            if constexpr (std::is_floating_point_v<T>)
              for (; i + kRunsSideBySide <= nk; i += kRunsSideBySide)
                run_sums<T, kRunsSideBySide>(px + roff, koff + i, take, acc + i);
            for (; i < nk; ++i) run_sums<T, 1>(px + roff, koff + i, take, acc + i);
          } else if (contiguous) {
            for (int64_t j = 0; j < take; ++j) {
              const T* row = px + koff[0] + roff + j * run_stride;
              for (int64_t i = 0; i < nk; ++i) acc[i] = sum_add(acc[i], (Acc)row[i]);
            }
          } else {
            for (int64_t j = 0; j < take; ++j)
              for (int64_t i = 0; i < nk; ++i) acc[i] = sum_add(acc[i], (Acc)px[koff[i] + roff + j * run_stride]);
          }
          r += take;
        }
        for (int64_t i = 0; i < nk; ++i) partial[(size_t)((k0 + i) * chunks + c)] = acc[i];
      }
    }
    for (int64_t k = 0; k < K; ++k) {
      Acc acc = 0;
      for (int64_t c = 0; c < chunks; ++c) acc = sum_add(acc, partial[(size_t)(k * chunks + c)]);
      po[k] = (Out)acc;
    }
  });
}

}  // namespace gradcore

// ---- max and min, vector norms (see reduce.h for the rules) ------------------------------------------------------
namespace gradcore {

namespace {

// Calls fn(offset of x[k, r], r) for r in [begin, end), in order, walking the innermost reduced run by stride.
template <typename Fn>
inline void for_reduced(const ReduceLayout& layout, int64_t k, int64_t begin, int64_t end, Fn&& fn) {
  const int64_t run = layout.reduced_ndim ? layout.reduced_shape[layout.reduced_ndim - 1] : 1;
  const int64_t run_stride = layout.reduced_ndim ? layout.reduced_stride[layout.reduced_ndim - 1] : 1;
  const int64_t base = kept_offset(layout, k);
  int64_t r = begin;
  while (r < end) {
    const int64_t take = std::min(run - r % run, end - r);
    const int64_t start = base + reduced_offset(layout, r);
    for (int64_t j = 0; j < take; ++j) fn(start + j * run_stride, r + j);
    r += take;
  }
}

int64_t chunk_count(int64_t R) { return R == 0 ? 1 : (R + kReduceChunk - 1) / kReduceChunk; }

}  // namespace

void reduce_extreme_cpu(const Array& x, Array& values, int64_t* indices, const ReduceLayout& layout, bool is_max) {
  const int64_t K = layout.kept_numel, R = layout.reduced_numel, chunks = chunk_count(R);
  dispatch_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* px = x.data_as<T>();
    std::vector<T> best_value((size_t)(K * chunks), T(0));
    std::vector<int64_t> best_index((size_t)(K * chunks), -1);
#pragma omp parallel for schedule(static) collapse(2) if (K * R >= cpu::kParallelThreshold)
    for (int64_t k = 0; k < K; ++k) {
      for (int64_t c = 0; c < chunks; ++c) {
        T best = T(0);
        int64_t at = -1;
        for_reduced(layout, k, c * kReduceChunk, std::min(R, (c + 1) * kReduceChunk), [&](int64_t off, int64_t r) {
          if (extreme_better(px[off], r, best, at, is_max)) {
            best = px[off];
            at = r;
          }
        });
        best_value[(size_t)(k * chunks + c)] = best;
        best_index[(size_t)(k * chunks + c)] = at;
      }
    }
    T* pv = values.data_as<T>();
    for (int64_t k = 0; k < K; ++k) {
      T best = T(0);
      int64_t at = -1;
      for (int64_t c = 0; c < chunks; ++c) {
        const size_t i = (size_t)(k * chunks + c);
        if (extreme_better(best_value[i], best_index[i], best, at, is_max)) {
          best = best_value[i];
          at = best_index[i];
        }
      }
      pv[k] = best;
      if (indices) indices[k] = at;
    }
  });
}

void reduce_extreme_backward_cpu(const Array& x, const Array& values, const Array& grad, Array& gx,
                                 const ReduceLayout& layout, bool split_ties) {
  const int64_t K = layout.kept_numel, R = layout.reduced_numel;
  dispatch_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* px = x.data_as<T>();
    const T* pv = values.data_as<T>();
    const T* pg = grad.data_as<T>();
    T* pgx = gx.data_as<T>();
#pragma omp parallel for schedule(static) if (K * R >= cpu::kParallelThreshold)
    for (int64_t k = 0; k < K; ++k) {
      const T value = pv[k];
      int64_t count = 0, first = -1;
      for_reduced(layout, k, 0, R, [&](int64_t off, int64_t r) {
        if (extreme_tie(px[off], value)) {
          if (first < 0) first = r;
          ++count;
        }
      });
      const T share = count ? (T)(pg[k] / (T)count) : T(0);
      for_reduced(layout, k, 0, R, [&](int64_t off, int64_t r) {
        if (split_ties) pgx[off] = extreme_tie(px[off], value) ? share : T(0);
        else pgx[off] = r == first ? pg[k] : T(0);
      });
    }
  });
}

void vector_norm_cpu(const Array& x, Array& out, const ReduceLayout& layout, double p) {
  const int64_t K = layout.kept_numel, R = layout.reduced_numel, chunks = chunk_count(R);
  dispatch_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* px = x.data_as<T>();
    std::vector<double> partial((size_t)(K * chunks), 0.0);
#pragma omp parallel for schedule(static) collapse(2) if (K * R >= cpu::kParallelThreshold)
    for (int64_t k = 0; k < K; ++k) {
      for (int64_t c = 0; c < chunks; ++c) {
        double acc = 0.0;
        for_reduced(layout, k, c * kReduceChunk, std::min(R, (c + 1) * kReduceChunk),
                    [&](int64_t off, int64_t) { acc += vector_norm_term(px[off], p); });
        partial[(size_t)(k * chunks + c)] = acc;
      }
    }
    T* po = out.data_as<T>();
    for (int64_t k = 0; k < K; ++k) {
      double acc = 0.0;
      for (int64_t c = 0; c < chunks; ++c) acc += partial[(size_t)(k * chunks + c)];
      po[k] = (T)vector_norm_finish(acc, p);
    }
  });
}

void vector_norm_backward_cpu(const Array& x, const Array& norm, const Array& grad, Array& gx,
                              const ReduceLayout& layout, double p) {
  const int64_t K = layout.kept_numel, R = layout.reduced_numel;
  dispatch_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* px = x.data_as<T>();
    const T* pn = norm.data_as<T>();
    const T* pg = grad.data_as<T>();
    T* pgx = gx.data_as<T>();
#pragma omp parallel for schedule(static) if (K * R >= cpu::kParallelThreshold)
    for (int64_t k = 0; k < K; ++k) {
      const T n = pn[k], g = pg[k];
      for_reduced(layout, k, 0, R, [&](int64_t off, int64_t) { pgx[off] = vector_norm_grad(px[off], n, g, p); });
    }
  });
}

}  // namespace gradcore
