// CPU conv2d weight gradient; the maths is in conv2d.h. Two GEMM algorithms, chosen by the shape:
//   strips  dW_g (C_out/G x K) = gy (packed A panels) * im2col^T (packed B strips), over the flattened
//           (image, pixel) reduction in chunks;
//   dots    for a short im2col (2K <= C_out/G) the same product as register-blocked dot products over gy's own rows.
// Depthwise convolutions go to conv2d_depthwise.h. Every dW element belongs to one task (a strip of im2col rows, a
// block of gy rows, or a depthwise channel) that sums its reduction in an order fixed by the shapes, so results are
// the same for any thread count.
#include <algorithm>
#include <cstring>
#include <vector>
#include "conv2d.h"
#include "cpu/conv2d_depthwise.h"
#include "cpu/gemm.h"
#include "cpu/im2col.h"
#include "cpu/parallel.h"
#include "cpu/phase_timer.h"
#include "cpu/scratch.h"
#include "cpu/simd.h"

namespace gradcore {

namespace {

using namespace cpu;

// Weight gradient for a short im2col (K much smaller than C_out/G, e.g. a first layer with one input channel):
// dW_g (M x K) = sum_n gy_{n,g} (M x P) col_{n,g}^T (P x K), where gy's rows are already contiguous along the pixels,
// so nothing of gy is packed. im2col goes to plain rows (K x P per image and group); then 4 x 4 blocks of dW are
// dot products over the pixels, in vector lanes, summed into dW image by image in order.
template <typename T>
void backward_weight_dots(const T* px, const T* pg, T* pw, const Conv2dParams& p, bool parallel) {
  using V = typename Simd<T>::vec;
  constexpr int L = Simd<T>::lanes;
  constexpr int64_t B = 4;  // dW block: B rows of gy against B rows of col
  const int64_t G = p.groups, M = p.out_per_group(), K = p.gemm_k(), P = p.out_pixels(), N = p.batch;
  const int64_t Cin = p.in_channels, Cout = p.out_channels, HW = p.in_pixels(), Cg = p.in_per_group();
  const int64_t taps_per_channel = p.kernel_h * p.kernel_w;
  const TapTable taps(p);
  const int64_t per_chunk = std::clamp<int64_t>((int64_t)((16u << 20) / sizeof(T)) / std::max<int64_t>(G * K * P, 1),
                                                1, N);
  AlignedBuffer<T> col(per_chunk * G * K * P);
  const int64_t m_blocks = (M + B - 1) / B;
  for (int64_t n0 = 0; n0 < N; n0 += per_chunk) {
    const int64_t count = std::min(per_chunk, N - n0);
#pragma omp parallel for schedule(static) if (parallel && count * G > 1)
    for (int64_t t = 0; t < count * G; ++t) {
      const int64_t i = t / G, g = t % G;
      const T* x_group = px + ((n0 + i) * Cin + g * Cg) * HW;
      for (int64_t k = 0; k < K; ++k)
        gather_taps(x_group + (k / taps_per_channel) * HW, taps.tap(k % taps_per_channel), P,
                    col.ptr + (t * K + k) * P, (int64_t)1);
    }
#pragma omp parallel for schedule(static) if (parallel && G * m_blocks > 1)
    for (int64_t t = 0; t < G * m_blocks; ++t) {
      const int64_t g = t / m_blocks, m0 = t % m_blocks * B, mb = std::min(B, M - m0);
      for (int64_t k0 = 0; k0 < K; k0 += B) {
        const int64_t kb = std::min(B, K - k0);
        for (int64_t i = 0; i < count; ++i) {
          const T* a[B];
          const T* c[B];
          for (int64_t r = 0; r < B; ++r) {  // rows past the edge repeat the last row; their sums are dropped
            a[r] = pg + ((n0 + i) * Cout + g * M + m0 + std::min(r, mb - 1)) * P;
            c[r] = col.ptr + ((i * G + g) * K + k0 + std::min(r, kb - 1)) * P;
          }
          V acc[B][B];
          for (int64_t r = 0; r < B; ++r)
            for (int64_t s = 0; s < B; ++s) acc[r][s] = V{};
          int64_t q = 0;
          for (; q + L <= P; q += L) {
            V av[B], cv[B];
            for (int64_t r = 0; r < B; ++r) {
              av[r] = load_vec(a[r] + q);
              cv[r] = load_vec(c[r] + q);
            }
            for (int64_t r = 0; r < B; ++r)
              for (int64_t s = 0; s < B; ++s) acc[r][s] += av[r] * cv[s];
          }
          for (int64_t r = 0; r < mb; ++r) {
            for (int64_t s = 0; s < kb; ++s) {
              T sum = T(0);
              for (int l = 0; l < L; ++l) sum += acc[r][s][l];
              for (int64_t tail = q; tail < P; ++tail) sum += a[r][tail] * c[s][tail];
              T& dw = pw[(g * M + m0 + r) * K + k0 + s];
              dw = (n0 + i == 0) ? sum : dw + sum;
            }
          }
        }
      }
    }
  }
}

// Weight gradient with dW itself as the GEMM output: dW_g (M x K) = gy_g (M x N*P) * col_g^T (N*P x K), over the
// flattened (image, pixel) reduction in chunks of several kKc blocks. Per chunk, gy is packed once as A panels
// (threads split its rows; one barrier); then each task takes a strip of nr im2col rows, packs it kKc steps at a
// time into an L1-sized B strip and runs every gy panel against it, so the streamed operand is the narrow A panel.
// Every dW element belongs to one strip and is summed block after block: the order is fixed by the shapes.
template <typename T>
void backward_weight_strips(const T* px, const T* pg, T* pw, const Conv2dParams& p, bool parallel) {
  constexpr int64_t nr = nr_of<T>();
  const int64_t G = p.groups, M = p.out_per_group(), K = p.gemm_k(), P = p.out_pixels(), N = p.batch;
  const int64_t Cin = p.in_channels, Cout = p.out_channels, HW = p.in_pixels(), Cg = p.in_per_group();
  const int64_t m_pad = round_up(M, kMr), strips = (K + nr - 1) / nr, Q = N * P;
  // Blocks per chunk: at most ~8 chunks (each costs two barriers, which a busy machine makes expensive), with the
  // packed gy chunk kept under ~4 MB.
  const int64_t blocks = (Q + kKc - 1) / kKc;
  const int64_t memory_blocks = std::max<int64_t>(8, (int64_t)((4u << 20) / sizeof(T)) / (G * m_pad * kKc));
  const int64_t chunk = std::clamp<int64_t>((blocks + 7) / 8, 8, memory_blocks) * kKc;
  const int64_t taps_per_channel = p.kernel_h * p.kernel_w;
  const TapTable taps(p);
  const std::vector<RowWindow> windows = row_windows(p);
  AlignedBuffer<T> packed_gy(G * m_pad * chunk);
#pragma omp parallel if (parallel)
  {
    T* b_strip = scratch_packed_b.get<T>(nr * kKc);
    for (int64_t c0 = 0; c0 < Q; c0 += chunk) {
      const int64_t depth = std::min(chunk, Q - c0);
      // gy chunk as packed A (kKc blocks of kMr-row panels): A[m, q] = gy[n, g*M + m, pixel], c0 + q = n * P + pixel.
#pragma omp for schedule(static)
      for (int64_t t = 0; t < G * m_pad; ++t) {
        const int64_t g = t / m_pad, m = t % m_pad;
        for (int64_t b0 = 0; b0 < depth; b0 += kKc) {
          const int64_t kc = std::min(kKc, depth - b0);
          T* dst = packed_gy.ptr + g * m_pad * chunk + b0 * m_pad + (m / kMr) * (kc * kMr) + m % kMr;
          if (m >= M) {
            for (int64_t q = 0; q < kc; ++q) dst[q * kMr] = T(0);
            continue;
          }
          for (int64_t q = 0; q < kc;) {
            const int64_t flat = c0 + b0 + q, n = flat / P, pixel = flat % P, run = std::min(kc - q, P - pixel);
            const T* src = pg + (n * Cout + g * M + m) * P + pixel;
            for (int64_t j = 0; j < run; ++j) dst[(q + j) * kMr] = src[j];
            q += run;
          }
        }
      }
#pragma omp for schedule(static)
      for (int64_t t = 0; t < G * strips; ++t) {
        const int64_t g = t / strips, k0 = t % strips * nr, cols = std::min(nr, K - k0);
        for (int64_t b0 = 0; b0 < depth; b0 += kKc) {
          const int64_t kc = std::min(kKc, depth - b0);
          for (int64_t r = 0; r < nr; ++r) {  // im2col rows k0 .. k0 + nr - 1 of this block as one B strip ([q][nr])
            if (r >= cols) {
              for (int64_t q = 0; q < kc; ++q) b_strip[q * nr + r] = T(0);
              continue;
            }
            const int64_t k = k0 + r, ci = k / taps_per_channel;
            const int32_t* offset = taps.tap(k % taps_per_channel);
            const int64_t kh = k / p.kernel_w % p.kernel_h;
            const RowWindow& win = windows[k % p.kernel_w];
            for (int64_t q = 0; q < kc;) {
              const int64_t flat = c0 + b0 + q, n = flat / P, pixel = flat % P, run = std::min(kc - q, P - pixel);
              const T* plane = px + (n * Cin + g * Cg + ci) * HW;
              if (p.out_w >= kRowRunMinWidth)
                gather_rows(plane, p, kh, win, pixel, run, b_strip + q * nr + r, nr);
              else
                gather_taps(plane, offset + pixel, run, b_strip + q * nr + r, nr);
              q += run;
            }
          }
          const T* gy_block = packed_gy.ptr + g * m_pad * chunk + b0 * m_pad;
          for (int64_t i0 = 0; i0 < M; i0 += kMr)
            micro_kernel_rows<T, kMr>(M - i0, kc, gy_block + i0 * kc, b_strip, pw + (g * M + i0) * K + k0, K, cols,
                                      c0 + b0 > 0, (const T*)nullptr);
        }
      }
    }
  }
}

template <typename T> void backward_weight(const Array& x, const Array& gy, Array& gw, const Conv2dParams& p) {
  GRADCORE_PHASE("conv2d_backward_weight");
  const int64_t G = p.groups, M = p.out_per_group(), K = p.gemm_k(), P = p.out_pixels(), N = p.batch;
  const int64_t Cin = p.in_channels, Cout = p.out_channels, HW = p.in_pixels();
  const T* px = x.data_as<T>();
  const T* pg = gy.data_as<T>();
  T* pw = gw.data_as<T>();
  std::memset(pw, 0, sizeof(T) * G * M * K);
  if (N == 0) return;
  const bool parallel = N * Cout * P * K >= kParallelThreshold;  // multiply-adds
  if (is_depthwise(p)) {  // one thread per channel, images in order
    depthwise_backward_weight(px, pg, pw, p, parallel);
    return;
  }
  if (2 * K <= M) {
    backward_weight_dots(px, pg, pw, p, parallel);
    return;
  }
  backward_weight_strips(px, pg, pw, p, parallel);
}

}  // namespace

void conv2d_backward_weight_cpu(const Array& x, const Array& gy, Array& gw, const Conv2dParams& p) {
  if (gw.numel() == 0) return;
  dispatch_float(x.dtype(), [&](auto zero) { backward_weight<decltype(zero)>(x, gy, gw, p); });
}

}  // namespace gradcore
