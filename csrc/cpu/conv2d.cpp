// CPU conv2d forward (also conv_transpose2d's input gradient): a GEMM over im2col, the maths is in conv2d.h. The
// pieces live beside this file: the packed GEMM in gemm.h, im2col/col2im in im2col.h, the depthwise kernels in
// conv2d_depthwise.cpp, the input gradient in conv2d_backward_input.cpp, the weight gradient in
// conv2d_backward_weight.cpp.
//
//   forward          Y_g (C_out/G x N*P)  = W_g (packed once)  * im2col of all N images side by side (packed B)
// The columns (output pixels, image after image) are cut into tasks of whole strips, so no strip is half empty at an
// image's end and the tasks are of equal size. Each task builds, per kKc block of the reduction, the stride phase
// planes of the input channels the block reads (im2col.h: zero padding and stride paid once per input pixel), packs
// its im2col block from them with masked loads and permutes, and the micro-kernel stores C straight into y (a strip
// split in two where an image ends inside it). The phase timer's scopes (conv2d_forward/pack_a, /im2col, /gemm,
// /copy_out) show where the time goes.
// Depthwise convolutions (one input and one output channel per group) skip the GEMM (conv2d_depthwise.h); stride-1
// and stride-2 3x3 convolutions with enough channels take Winograd-style paths with fewer multiplies
// (conv2d_winograd.cpp, conv2d_winograd_stride2.cpp: each dispatched by the rule its measurements gave).
//
// Threads and determinism: one (column range, group) per task, each writing its own elements of the output, and
// every element summed over k in the GEMM's fixed order whatever the tiling, so results are the same for any thread
// count; tests/test_conv2d.py checks 1, 2 and 3 threads bit for bit.
#include "conv2d.h"
#include <algorithm>
#include <cstring>
#include <vector>
#include "cpu/conv2d_depthwise.h"
#include "cpu/conv2d_few_channels.h"
#include "cpu/epilogue.h"
#include "cpu/conv2d_winograd.h"
#include "cpu/conv2d_winograd_stride2.h"
#include "cpu/gemm.h"
#include "cpu/im2col.h"
#include "cpu/parallel.h"
#include "cpu/phase_timer.h"
#include "cpu/scratch.h"

namespace gradcore {

namespace {

using namespace cpu;

// The part of one image a task's columns cover: plane rows [r_lo, r_hi) and its pixels' chunks (im2col.h).
struct Segment {
  int64_t r_lo = 0, r_hi = 0;
  std::vector<PixelChunk> chunks;  // [0, chunk_count) in use
  int64_t chunk_count = 0;
};
thread_local std::vector<Segment> task_segments;  // reused: steady-state calls allocate nothing
thread_local std::vector<int64_t> taps_of_block;

// Strips of nr columns per task: enough tasks for every thread to get several (they balance under dynamic
// scheduling), and at most kNc columns so a task's packed B block stays in L2. Tuning only: the tiling never changes
// a bit of the result (gemm.h).
inline int64_t strips_per_task(int64_t strips, int64_t groups, int64_t nr) {
  const int64_t per_thread = strips * groups / (4 * (int64_t)max_threads());
  return std::clamp<int64_t>(per_thread, 4, kNc / nr);
}

template <typename T> void forward(const Array& x, const Array& w, const Array& bias, Array& y, const Conv2dParams& p) {
  GRADCORE_PHASE("conv2d_forward");
  if (winograd_forward_applies(p)) {  // stride-1 3x3 with many channels: cpu/conv2d_winograd.cpp
    conv2d_winograd_forward_cpu(x, w, bias, y, p);
    activate_whole(y, p.activation);  // its output transform has no epilogue (yet): one pass over y
    return;
  }
  if (few_channels_forward_applies(p)) {  // stride 1 with a short reduction (K <= 27): cpu/conv2d_few_channels.cpp
    conv2d_few_channels_forward_cpu(x, w, bias, y, p);
    return;
  }
  if (winograd_stride2_forward_applies(p, x.dtype())) {  // stride-2 3x3: cpu/conv2d_winograd_stride2.cpp
    conv2d_winograd_stride2_forward_cpu(x, w, bias, y, p);  // (the activation epilogue included)
    return;
  }
  const int64_t G = p.groups, M = p.out_per_group(), K = p.gemm_k(), P = p.out_pixels(), N = p.batch;
  const int64_t Cin = p.in_channels, Cout = p.out_channels, HW = p.in_pixels(), Cg = p.in_per_group();
  const T* px = x.data_as<T>();
  const T* pw = w.data_as<T>();
  const T* pb = bias.numel() ? bias.data_as<T>() : nullptr;
  T* py = y.data_as<T>();
  const bool parallel = N * Cout * P * K >= kParallelThreshold;  // multiply-adds
  if (is_depthwise(p)) {
    depthwise_forward(px, pw, pb, py, p, parallel);
    activate_whole(y, p.activation);
    return;
  }
  const int64_t a_size = round_up(M, kMr) * K, panels = round_up(M, kMr) / kMr;
  AlignedBuffer<T> packed_w(G * a_size);  // each group's weight, packed once for every image
  // The GEMM's columns are the output pixels of all N images side by side (image n's pixel q at column n P + q),
  // cut into tasks of whole strips: no strip is wasted at an image's end, and the tasks are of equal size.
  constexpr int64_t nr = nr_of<T>();
  const int64_t columns = N * P, strips = (columns + nr - 1) / nr;
  const int64_t per_task = std::min(strips, strips_per_task(strips, G, nr)), tasks = (strips + per_task - 1) / per_task;
  const int64_t taps = p.kernel_h * p.kernel_w, Wo = p.out_w;
  const PhaseLayout L(p);
  const auto readers = plane_row_readers(p, L);
  // Each strip of C is stored straight into y, split in two where an image ends inside it; with fewer pixels than
  // a strip (an image could end twice in one), C goes through a scratch copy.
  const bool direct = P >= nr;
  const int64_t channels_per_block = std::min(Cg, std::min(K, kKc) / taps + 2);
#pragma omp parallel if (parallel && tasks * G > 1)
  {
#pragma omp for schedule(static)
  for (int64_t t = 0; t < G * panels; ++t) {  // the weight's row panels, shared out (then a barrier)
    GRADCORE_PHASE("conv2d_forward/pack_a");
    const int64_t g = t / panels, i0 = t % panels * kMr;
    pack_a_panels(pw + g * M * K, K, (int64_t)1, M, K, i0, i0 + kMr, packed_w.ptr + g * a_size);
  }
#pragma omp for schedule(dynamic, 1)
  for (int64_t t = 0; t < tasks * G; ++t) {
    const int64_t g = t % G, s0 = t / G * strips / tasks, s1 = (t / G + 1) * strips / tasks;
    const int64_t c_begin = s0 * nr, cols = std::min(s1 * nr, columns) - c_begin, cols_pad = (s1 - s0) * nr;
    const int64_t n_first = c_begin / P, n_last = (c_begin + cols - 1) / P;
    T* packed = scratch_packed_b.get<T>(std::min(K, kKc) * cols_pad);
    const int64_t c_size = direct ? 0 : round_up(M * cols_pad, 16);
    T* c_scratch = scratch_col.get<T>(c_size + channels_per_block * L.phases() * L.rows * L.cols);
    T* planes = c_scratch + c_size;
    bool last_block = false;  // the activation epilogue runs in the micro-kernel on the reduction's last block
    auto strip_out = [&](int64_t j0) {
      const bool relu = last_block && p.activation == Activation::relu;
      if (!direct) return StripOut<T>{c_scratch + j0, nr, nullptr, relu};
      const int64_t col = c_begin + j0, n = col / P, q = col % P;
      T* next = n + 1 < N ? py + ((n + 1) * Cout + g * M) * P : nullptr;
      return StripOut<T>{py + (n * Cout + g * M) * P + q, P - q, next, relu};
    };
    // the images this task's columns cover (the first and last maybe in part): their plane rows and pixel chunks
    std::vector<Segment>& segments = task_segments;
    if (segments.size() < (size_t)(n_last - n_first + 1)) segments.resize((size_t)(n_last - n_first + 1));
    for (int64_t n = n_first; n <= n_last; ++n) {
      Segment& sg = segments[(size_t)(n - n_first)];
      const int64_t q_a = std::max(c_begin - n * P, (int64_t)0), q_b = std::min(c_begin + cols - n * P, P);
      sg.r_lo = q_a / Wo;
      sg.r_hi = std::min(L.rows, (q_b - 1) / Wo + 1 + L.q_h_max);
      sg.chunk_count = pixel_chunks<T>(L, Wo, q_a, q_b - q_a, n * P + q_a - c_begin, sg.chunks);
    }
    for (int64_t k0 = 0; k0 < K; k0 += kKc) {  // one kKc block of B at a time, so it stays in cache
      const int64_t kc = std::min(kKc, K - k0);
      last_block = k0 + kc >= K;
      const int64_t c_lo = k0 / taps, c_hi = std::min(Cg, (k0 + kc - 1) / taps + 1);
      {
        GRADCORE_PHASE("conv2d_forward/im2col");
        tap_offsets(p, L, c_lo, k0, kc, taps_of_block);
        for (int64_t n = n_first; n <= n_last; ++n) {
          const Segment& sg = segments[(size_t)(n - n_first)];
          const T* x_group = px + (n * Cin + g * Cg) * HW;
          if (p.is_pointwise()) {  // the phase plane is x itself
            im2col_from_phase_planes(x_group + c_lo * HW, taps_of_block, sg.chunks.data(), sg.chunk_count, packed);
          } else {
            build_phase_planes(x_group, p, L, readers, c_lo, c_hi, sg.r_lo, sg.r_hi, planes);
            im2col_from_phase_planes(planes, taps_of_block, sg.chunks.data(), sg.chunk_count, packed);
          }
        }
        zero_packed_b_tail(packed, cols, cols_pad, kc);
      }
      GRADCORE_PHASE("conv2d_forward/gemm");
      gemm_packed_to(M, cols, kc, packed_w.ptr + g * a_size + k0 * round_up(M, kMr), packed, strip_out,
                     direct ? P : cols_pad, k0 > 0, k0 == 0 && pb ? pb + g * M : nullptr);
    }
    if (direct) continue;
    GRADCORE_PHASE("conv2d_forward/copy_out");
    for (int64_t n = n_first; n <= n_last; ++n) {
      const int64_t q_a = std::max(c_begin - n * P, (int64_t)0), q_b = std::min(c_begin + cols - n * P, P);
      for (int64_t m = 0; m < M; ++m)
        std::memcpy(py + (n * Cout + g * M + m) * P + q_a, c_scratch + m * cols_pad + n * P + q_a - c_begin,
                    sizeof(T) * (q_b - q_a));
    }
  }
  }
}

}  // namespace

void conv2d_forward_cpu(const Array& x, const Array& w, const Array& bias, Array& y, const Conv2dParams& p) {
  if (y.numel() == 0) return;
  dispatch_float(x.dtype(), [&](auto zero) { forward<decltype(zero)>(x, w, bias, y, p); });
}

}  // namespace gradcore
