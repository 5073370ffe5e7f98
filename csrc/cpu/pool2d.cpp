// CPU 2-d pooling; the maths, the window rules and the order of summation are in pool2d.h, shared with the CUDA
// kernels. The windows' row and column spans are computed once per call with pool2d.h's own span functions.
// Forward: OpenMP over (plane, output row), each cell from its own window.
// Max pooling with a 2x2 (stride 2) or 3x3 (stride 1 or 2) kernel and dilation 1, nearly every CNN's, takes a
// vectorised path for the windows that lie wholly inside the input (the generic loop, which GCC compiled to branches
// that random data mispredicts, ran at ~20 ns per output: a quarter of the classifier's training step). It visits
// the cells in the same order with the same rule, so values and indices are the generic loop's, bit for bit.
// Backward: one thread owns a whole plane and scatters the plane's dy into its dx in output order (oh, ow), so each
// input cell receives its terms in the same order, starting from zero, as the CUDA kernel's gather adds them: the
// same bits on both devices and for any thread count, at the cost of a scatter (no search for the windows holding a
// cell).
#include "pool2d.h"
#include <cstring>
#include <type_traits>
#include <vector>
#include "cpu/parallel.h"

namespace gradcore {

namespace {

// The spans of every window along one side, and (avg) the divisor's factor from that side.
struct SideSpans {
  std::vector<Span> span;
  std::vector<int64_t> count;  // avg: the side's factor of the divisor (padded or clipped length)
};

SideSpans side_spans(const Pool2dParams& p, bool rows) {
  const int64_t out = rows ? p.out_h : p.out_w, in = rows ? p.in_h : p.in_w;
  SideSpans s;
  s.span.resize((size_t)out);
  s.count.resize((size_t)out);
  for (int64_t o = 0; o < out; ++o) {
    Span sp;
    int64_t padded = 0;
    if (p.kind == PoolKind::max)
      sp = rows ? max_span(o, in, p.kernel_h, p.stride_h, p.pad_h, p.dilation_h)
                : max_span(o, in, p.kernel_w, p.stride_w, p.pad_w, p.dilation_w);
    else if (p.kind == PoolKind::avg)
      sp = rows ? avg_span(o, in, p.kernel_h, p.stride_h, p.pad_h, padded)
                : avg_span(o, in, p.kernel_w, p.stride_w, p.pad_w, padded);
    else
      sp = adaptive_span(o, in, out);
    const bool padded_count = p.kind == PoolKind::avg && p.count_include_pad;
    s.span[(size_t)o] = sp;
    s.count[(size_t)o] = padded_count ? padded : sp.end - sp.begin;
  }
  return s;
}

// The divisor of window (oh, ow): as avg_divisor in pool2d.h, from the precomputed factors.
inline int64_t divisor_of(const Pool2dParams& p, const SideSpans& rows, const SideSpans& cols, int64_t oh,
                          int64_t ow) {
  if (p.kind == PoolKind::avg && p.divisor_override) return p.divisor_override;
  return rows.count[(size_t)oh] * cols.count[(size_t)ow];
}

// best = take ? v : best and at = take ? i : at, as bit masks: GCC compiles the plain selects to branches, which random
// data mispredicts about half the time (~20 ns per output of a 2x2 window).
template <typename T> inline void select_if(bool take, T v, int64_t i, T& best, int64_t& at) {
  using Bits = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  const Bits mask = (Bits)0 - (Bits)take;
  Bits vb, bb;
  std::memcpy(&vb, &v, sizeof(T));
  std::memcpy(&bb, &best, sizeof(T));
  bb = (vb & mask) | (bb & ~mask);
  std::memcpy(&best, &bb, sizeof(T));
  const uint64_t imask = (uint64_t)0 - (uint64_t)take;
  at = (int64_t)(((uint64_t)i & imask) | ((uint64_t)at & ~imask));
}

// The outputs [lo, hi) along one side whose max window is whole: K cells from o * stride - pad, all inside.
struct Interior {
  int64_t lo = 0, hi = 0;
};

Interior interior(const SideSpans& s, int64_t kernel) {
  Interior r;
  const int64_t n = (int64_t)s.span.size();
  auto whole = [&](int64_t o) {
    const Span& sp = s.span[(size_t)o];
    return sp.step == 1 && sp.end - sp.begin == kernel;
  };
  while (r.lo < n && !whole(r.lo)) ++r.lo;
  r.hi = r.lo;
  while (r.hi < n && whole(r.hi)) ++r.hi;
  return r;
}

// Outputs [0, count) of one output row whose windows are whole: K rows from `top`, columns from left + o * S. Written
// for the vectoriser (one output per lane, plain selects, the window cell kept as a small int and turned into the
// flat index at the end); the first cell starts the scan, as -inf loses to it or ties with it (same bits, same index).
template <typename T, int K, int S>
void max_row_whole_windows(const T* plane, int64_t in_w, int64_t top, int64_t left, int64_t count, T* y,
                           int64_t* indices) {
  const T* rows[K];
  for (int kh = 0; kh < K; ++kh) rows[kh] = plane + (top + kh) * in_w + left;
  const int64_t base = top * in_w + left;
  for (int64_t o = 0; o < count; ++o) {
    T best = rows[0][o * S];
    int32_t cell = 0;  // kh * K + kw of the winner
    for (int kh = 0; kh < K; ++kh)
      for (int kw = 0; kw < K; ++kw) {
        if (kh == 0 && kw == 0) continue;
        const T v = rows[kh][o * S + kw];
        const bool take = (v > best) | (v != v);  // the generic loop's rule: strict >, a later NaN wins
        best = take ? v : best;
        cell = take ? kh * K + kw : cell;
      }
    y[o] = best;
    indices[o] = base + o * S + (cell / K) * in_w + cell % K;
  }
}

}  // namespace

void pool2d_forward_cpu(const Array& x, Array& y, int64_t* indices, const Pool2dParams& p) {
  const int64_t in_plane = p.in_h * p.in_w, out_plane = p.out_h * p.out_w;
  if (p.planes * out_plane == 0) return;
  const SideSpans rows = side_spans(p, true), cols = side_spans(p, false);
  const int64_t window = p.kind == PoolKind::adaptive_avg ? (in_plane + out_plane - 1) / out_plane
                                                          : p.kernel_h * p.kernel_w;
  const bool square = p.kernel_h == p.kernel_w && (p.kernel_h == 2 || p.kernel_h == 3);
  const bool fast = p.kind == PoolKind::max && square && p.dilation_h == 1 && p.dilation_w == 1;
  const Interior fast_cols = fast ? interior(cols, p.kernel_w) : Interior{};
  dispatch_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* px = x.data_as<T>();
    T* py = y.data_as<T>();
#pragma omp parallel for collapse(2) schedule(static) if (p.planes * out_plane * window >= cpu::kParallelThreshold)
    for (int64_t c = 0; c < p.planes; ++c)
      for (int64_t oh = 0; oh < p.out_h; ++oh) {
        const T* plane = px + c * in_plane;
        const int64_t row = c * out_plane + oh * p.out_w;
        const Span sh = rows.span[(size_t)oh];
        Interior skip;  // columns done by the fast path
        if (fast && sh.step == 1 && sh.end - sh.begin == p.kernel_h && fast_cols.hi > fast_cols.lo) {
          skip = fast_cols;
          const int64_t left = cols.span[(size_t)skip.lo].begin, count = skip.hi - skip.lo;
          T* out = py + row + skip.lo;
          int64_t* out_indices = indices + row + skip.lo;
          if (p.kernel_h == 2 && p.stride_w == 2)
            max_row_whole_windows<T, 2, 2>(plane, p.in_w, sh.begin, left, count, out, out_indices);
          else if (p.kernel_h == 3 && p.stride_w == 2)
            max_row_whole_windows<T, 3, 2>(plane, p.in_w, sh.begin, left, count, out, out_indices);
          else if (p.kernel_h == 3 && p.stride_w == 1)
            max_row_whole_windows<T, 3, 1>(plane, p.in_w, sh.begin, left, count, out, out_indices);
          else
            skip = Interior{};
        }
        for (int64_t ow = 0; ow < p.out_w; ++ow) {
          if (ow == skip.lo && skip.hi > skip.lo) {
            ow = skip.hi - 1;
            continue;
          }
          const Span sw = cols.span[(size_t)ow];
          if (p.kind == PoolKind::max) {  // as max_window in pool2d.h
            T best = -INFINITY;
            int64_t at = (sh.begin < sh.end && sw.begin < sw.end) ? sh.begin * p.in_w + sw.begin : -1;
            for (int64_t h = sh.begin; h < sh.end; h += sh.step)
              for (int64_t w = sw.begin; w < sw.end; w += sw.step) {
                // Selects, not a branch: with random data the branch would be mispredicted half the time.
                const T v = plane[h * p.in_w + w];
                select_if((v > best) | (v != v), v, h * p.in_w + w, best, at);
              }
            py[row + ow] = best;
            indices[row + ow] = at;
          } else {  // as avg_window in pool2d.h
            T sum = T(0);
            for (int64_t h = sh.begin; h < sh.end; ++h)
              for (int64_t w = sw.begin; w < sw.end; ++w) sum += plane[h * p.in_w + w];
            const bool empty = sh.begin >= sh.end || sw.begin >= sw.end;
            py[row + ow] = empty ? T(0) : sum / (T)divisor_of(p, rows, cols, oh, ow);
          }
        }
      }
  });
}

void pool2d_backward_cpu(const Array& dy, const int64_t* indices, Array& dx, const Pool2dParams& p) {
  const int64_t in_plane = p.in_h * p.in_w, out_plane = p.out_h * p.out_w;
  if (p.planes * in_plane == 0) return;
  const SideSpans rows = side_spans(p, true), cols = side_spans(p, false);
  dispatch_float(dy.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* pdy = dy.data_as<T>();
    T* pdx = dx.data_as<T>();
#pragma omp parallel for schedule(static) if (p.planes * (in_plane + out_plane) >= cpu::kParallelThreshold)
    for (int64_t c = 0; c < p.planes; ++c) {
      T* plane_dx = pdx + c * in_plane;
      const T* plane_dy = pdy + c * out_plane;
      std::memset(plane_dx, 0, (size_t)in_plane * sizeof(T));  // every cell starts at zero
      if (p.kind == PoolKind::max) {
        const int64_t* plane_indices = indices + c * out_plane;
        for (int64_t o = 0; o < out_plane; ++o)
          if (plane_indices[o] >= 0) plane_dx[plane_indices[o]] += plane_dy[o];
        continue;
      }
      for (int64_t oh = 0; oh < p.out_h; ++oh) {
        const Span sh = rows.span[(size_t)oh];
        for (int64_t ow = 0; ow < p.out_w; ++ow) {
          const Span sw = cols.span[(size_t)ow];
          const T share = plane_dy[oh * p.out_w + ow] / (T)divisor_of(p, rows, cols, oh, ow);
          for (int64_t h = sh.begin; h < sh.end; ++h)
            for (int64_t w = sw.begin; w < sw.end; ++w) plane_dx[h * p.in_w + w] += share;
        }
      }
    }
  });
}

}  // namespace gradcore
