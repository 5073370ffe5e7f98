// CPU conv2d: im2col per (image, group) and our own blocked GEMM; the maths is in conv2d.h.
//
// GEMM: C (M x N) = A (M x K) * B (K x N), with A and B first packed into the layout the micro-kernel streams:
//   A: for each block of kKc reduction steps, panels of kMr rows, each panel k-major ([k][kMr]);
//   B: for each block of kKc reduction steps, strips of kNr columns, each strip k-major ([k][kNr]).
// Edges are zero-padded in the packed copies, so the micro-kernel always runs a full kMr x kNr tile and only the
// store looks at the edge. The micro-kernel keeps the kMr x kNr tile of C in registers (GCC vector extensions, so
// gcc -O3 -march=native emits AVX-512/AVX2 FMAs without intrinsics) and streams one A panel and one B strip.
//
// Threads: forward and backward_input run one (image, group) pair per task, each writing its own slice of the
// output. backward_weight splits the batch into chunks fixed by N alone; each chunk's images are accumulated in
// order into that chunk's partial dW, and the partials are then summed in chunk order. Results are therefore the
// same for any thread count.
#include "conv2d.h"
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace gradcore {

namespace {

#if defined(__AVX512F__)
constexpr int kVectorBytes = 64;
constexpr int kMr = 8;  // 8 rows x 2 vectors = 16 of the 32 vector registers hold the C tile
#elif defined(__AVX__)
constexpr int kVectorBytes = 32;
constexpr int kMr = 6;  // 12 of 16 registers
#else
constexpr int kVectorBytes = 16;
constexpr int kMr = 6;
#endif
constexpr int64_t kKc = 256;  // reduction steps per packed block: an A panel and a B strip stay in L1/L2

template <typename T> struct Simd {
  typedef T vec __attribute__((vector_size(kVectorBytes)));
  static constexpr int lanes = kVectorBytes / (int)sizeof(T);
  static constexpr int nr = 2 * lanes;  // columns per B strip: two vectors
};

template <typename T> inline typename Simd<T>::vec load_vec(const T* p) {
  typename Simd<T>::vec v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
template <typename T> inline void store_vec(T* p, typename Simd<T>::vec v) { std::memcpy(p, &v, sizeof(v)); }

inline int64_t round_up(int64_t a, int64_t b) { return (a + b - 1) / b * b; }

// Per-thread scratch that only grows: OpenMP keeps its threads, so steady-state calls allocate nothing.
class Scratch {
 public:
  ~Scratch() { std::free(ptr_); }
  template <typename T> T* get(int64_t count) {
    const size_t bytes = (size_t)round_up(std::max<int64_t>(count, 1) * (int64_t)sizeof(T), 64);
    if (bytes > bytes_) {
      std::free(ptr_);
      ptr_ = std::aligned_alloc(64, bytes);
      if (!ptr_) throw std::bad_alloc();
      bytes_ = bytes;
    }
    return static_cast<T*>(ptr_);
  }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};
thread_local Scratch scratch_col, scratch_packed_a, scratch_packed_b;

template <typename T> struct AlignedBuffer {  // heap block shared by the threads of one call
  explicit AlignedBuffer(int64_t count) {
    ptr = static_cast<T*>(std::aligned_alloc(64, (size_t)round_up(std::max<int64_t>(count, 1) * (int64_t)sizeof(T), 64)));
    if (!ptr) throw std::bad_alloc();
  }
  ~AlignedBuffer() { std::free(ptr); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  T* ptr;
};

template <typename T> int64_t packed_a_size(int64_t M, int64_t K) { return round_up(M, kMr) * K; }
template <typename T> int64_t packed_b_size(int64_t K, int64_t N) { return round_up(N, Simd<T>::nr) * K; }

// A (M x K), element (m, k) at src[m * rs + k * cs].
template <typename T> void pack_a(const T* src, int64_t rs, int64_t cs, int64_t M, int64_t K, T* dst) {
  const int64_t m_pad = round_up(M, kMr);
  for (int64_t k0 = 0; k0 < K; k0 += kKc) {
    const int64_t kc = std::min(kKc, K - k0);
    T* block = dst + k0 * m_pad;
    for (int64_t i0 = 0; i0 < m_pad; i0 += kMr) {
      T* panel = block + i0 * kc;
      const int64_t rows = std::min<int64_t>(kMr, M - i0);
      for (int64_t k = 0; k < kc; ++k) {
        const T* s = src + i0 * rs + (k0 + k) * cs;
        T* d = panel + k * kMr;
        int64_t i = 0;
        for (; i < rows; ++i) d[i] = s[i * rs];
        for (; i < kMr; ++i) d[i] = T(0);
      }
    }
  }
}

// B (K x N), element (k, n) at src[k * rs + n * cs].
template <typename T> void pack_b(const T* src, int64_t rs, int64_t cs, int64_t K, int64_t N, T* dst) {
  constexpr int nr = Simd<T>::nr;
  const int64_t n_pad = round_up(N, nr);
  for (int64_t k0 = 0; k0 < K; k0 += kKc) {
    const int64_t kc = std::min(kKc, K - k0);
    T* block = dst + k0 * n_pad;
    for (int64_t j0 = 0; j0 < n_pad; j0 += nr) {
      T* strip = block + j0 * kc;
      const int64_t cols = std::min<int64_t>(nr, N - j0);
      if (cs == 1) {
        for (int64_t k = 0; k < kc; ++k) {
          const T* s = src + (k0 + k) * rs + j0;
          T* d = strip + k * nr;
          int64_t j = 0;
          for (; j < cols; ++j) d[j] = s[j];
          for (; j < nr; ++j) d[j] = T(0);
        }
      } else {  // transposed source: walk it row by row so each source row is read contiguously
        for (int64_t j = 0; j < nr; ++j) {
          if (j < cols) {
            const T* s = src + k0 * rs + (j0 + j) * cs;
            for (int64_t k = 0; k < kc; ++k) strip[k * nr + j] = s[k * rs];
          } else {
            for (int64_t k = 0; k < kc; ++k) strip[k * nr + j] = T(0);
          }
        }
      }
    }
  }
}

// C tile (ROWS x nr, ROWS <= kMr) = [C +] bias + A panel * B strip over kc steps; only n_valid columns are stored.
template <typename T, int ROWS>
inline void micro_kernel(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, int64_t n_valid, bool accumulate,
                         const T* bias) {
  using V = typename Simd<T>::vec;
  constexpr int L = Simd<T>::lanes, NR = Simd<T>::nr;
  V acc0[ROWS], acc1[ROWS];
  for (int i = 0; i < ROWS; ++i) {
    acc0[i] = V{} + (bias ? bias[i] : T(0));
    acc1[i] = acc0[i];
  }
  for (int64_t k = 0; k < kc; ++k) {
    const V b0 = load_vec(b + k * NR), b1 = load_vec(b + k * NR + L);
    const T* ak = a + k * kMr;
    for (int i = 0; i < ROWS; ++i) {
      const V ai = V{} + ak[i];
      acc0[i] += ai * b0;
      acc1[i] += ai * b1;
    }
  }
  for (int i = 0; i < ROWS; ++i) {
    T* row = c + i * ldc;
    if (n_valid == NR) {
      if (accumulate) {
        acc0[i] += load_vec(row);
        acc1[i] += load_vec(row + L);
      }
      store_vec(row, acc0[i]);
      store_vec(row + L, acc1[i]);
    } else {
      alignas(64) T tile[NR];
      store_vec(tile, acc0[i]);
      store_vec(tile + L, acc1[i]);
      for (int64_t j = 0; j < n_valid; ++j) row[j] = accumulate ? row[j] + tile[j] : tile[j];
    }
  }
}

template <typename T, int ROWS>
void micro_kernel_rows(int64_t rows, int64_t kc, const T* a, const T* b, T* c, int64_t ldc, int64_t n_valid,
                       bool accumulate, const T* bias) {
  if constexpr (ROWS > 1) {
    if (rows < ROWS) return micro_kernel_rows<T, ROWS - 1>(rows, kc, a, b, c, ldc, n_valid, accumulate, bias);
  }
  micro_kernel<T, ROWS>(kc, a, b, c, ldc, n_valid, accumulate, bias);
}

// C (M x N, row stride ldc) = [C +] row_bias + A * B from packed A and B. row_bias: M values or null.
template <typename T>
void gemm_packed(int64_t M, int64_t N, int64_t K, const T* ap, const T* bp, T* c, int64_t ldc, bool accumulate,
                 const T* row_bias) {
  constexpr int nr = Simd<T>::nr;
  const int64_t m_pad = round_up(M, kMr), n_pad = round_up(N, nr);
  for (int64_t k0 = 0; k0 < K; k0 += kKc) {
    const int64_t kc = std::min(kKc, K - k0);
    const T* a_block = ap + k0 * m_pad;
    const T* b_block = bp + k0 * n_pad;
    const bool acc = accumulate || k0 > 0;
    const T* bias = k0 == 0 ? row_bias : nullptr;
    for (int64_t j0 = 0; j0 < N; j0 += nr) {
      const T* strip = b_block + j0 * kc;
      const int64_t n_valid = std::min<int64_t>(nr, N - j0);
      for (int64_t i0 = 0; i0 < M; i0 += kMr) {
        micro_kernel_rows<T, kMr>(M - i0, kc, a_block + i0 * kc, strip, c + i0 * ldc + j0, ldc, n_valid, acc,
                                  bias ? bias + i0 : nullptr);
      }
    }
  }
}

// col (K x P) for one image and group: col[(ci, kh, kw), (oh, ow)] = x[ci, ih, iw] or 0 outside the image.
// x_group: the group's first channel of the image, (C_in/G, H, W).
template <typename T> void im2col(const T* x_group, const Conv2dParams& p, T* col) {
  const int64_t H = p.in_h, W = p.in_w, Ho = p.out_h, Wo = p.out_w, P = p.out_pixels();
  const int64_t sh = p.stride_h, sw = p.stride_w;
  for (int64_t ci = 0; ci < p.in_per_group(); ++ci) {
    const T* plane = x_group + ci * H * W;
    for (int64_t kh = 0; kh < p.kernel_h; ++kh) {
      for (int64_t kw = 0; kw < p.kernel_w; ++kw) {
        T* dst = col + ((ci * p.kernel_h + kh) * p.kernel_w + kw) * P;
        const int64_t iw0 = kw * p.dilation_w - p.pad_left;  // iw = iw0 + ow * sw
        // ow in [ow_lo, ow_hi) reads inside the row
        const int64_t ow_lo = std::min(Wo, iw0 >= 0 ? 0 : (-iw0 + sw - 1) / sw);
        const int64_t ow_hi = std::max(ow_lo, std::min(Wo, W - iw0 > 0 ? (W - iw0 + sw - 1) / sw : 0));
        for (int64_t oh = 0; oh < Ho; ++oh) {
          T* d = dst + oh * Wo;
          const int64_t ih = oh * sh - p.pad_top + kh * p.dilation_h;
          if (ih < 0 || ih >= H) {
            std::memset(d, 0, sizeof(T) * Wo);
            continue;
          }
          const T* row = plane + ih * W;
          for (int64_t ow = 0; ow < ow_lo; ++ow) d[ow] = T(0);
          if (sw == 1) {
            for (int64_t ow = ow_lo; ow < ow_hi; ++ow) d[ow] = row[iw0 + ow];
          } else {
            for (int64_t ow = ow_lo; ow < ow_hi; ++ow) d[ow] = row[iw0 + ow * sw];
          }
          for (int64_t ow = ow_hi; ow < Wo; ++ow) d[ow] = T(0);
        }
      }
    }
  }
}

// dx_group[ci, ih, iw] += dcol[(ci, kh, kw), (oh, ow)] for every in-range (ih, iw); dx_group starts at zero.
template <typename T> void col2im_add(const T* dcol, const Conv2dParams& p, T* dx_group) {
  const int64_t H = p.in_h, W = p.in_w, Ho = p.out_h, Wo = p.out_w, P = p.out_pixels();
  const int64_t sh = p.stride_h, sw = p.stride_w;
  for (int64_t ci = 0; ci < p.in_per_group(); ++ci) {
    T* plane = dx_group + ci * H * W;
    for (int64_t kh = 0; kh < p.kernel_h; ++kh) {
      for (int64_t kw = 0; kw < p.kernel_w; ++kw) {
        const T* src = dcol + ((ci * p.kernel_h + kh) * p.kernel_w + kw) * P;
        const int64_t iw0 = kw * p.dilation_w - p.pad_left;
        const int64_t ow_lo = std::min(Wo, iw0 >= 0 ? 0 : (-iw0 + sw - 1) / sw);
        const int64_t ow_hi = std::max(ow_lo, std::min(Wo, W - iw0 > 0 ? (W - iw0 + sw - 1) / sw : 0));
        for (int64_t oh = 0; oh < Ho; ++oh) {
          const int64_t ih = oh * sh - p.pad_top + kh * p.dilation_h;
          if (ih < 0 || ih >= H) continue;
          T* row = plane + ih * W;
          const T* s = src + oh * Wo;
          if (sw == 1) {
            for (int64_t ow = ow_lo; ow < ow_hi; ++ow) row[iw0 + ow] += s[ow];
          } else {
            for (int64_t ow = ow_lo; ow < ow_hi; ++ow) row[iw0 + ow * sw] += s[ow];
          }
        }
      }
    }
  }
}

template <typename T> void forward(const Array& x, const Array& w, const Array& bias, Array& y, const Conv2dParams& p) {
  const int64_t G = p.groups, M = p.out_per_group(), K = p.gemm_k(), P = p.out_pixels();
  const int64_t Cin = p.in_channels, Cout = p.out_channels, HW = p.in_pixels();
  const T* px = x.data_as<T>();
  const T* pw = w.data_as<T>();
  const T* pb = bias.numel() ? bias.data_as<T>() : nullptr;
  T* py = y.data_as<T>();
  const int64_t a_size = packed_a_size<T>(M, K);
  AlignedBuffer<T> packed_w(G * a_size);  // each group's weight, packed once for every image
  for (int64_t g = 0; g < G; ++g) pack_a(pw + g * M * K, K, 1, M, K, packed_w.ptr + g * a_size);
  const int64_t tasks = p.batch * G;
#pragma omp parallel for schedule(dynamic, 1) if (tasks > 1 && p.batch * Cout * P * K >= (1 << 16))
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t n = t / G, g = t % G;
    const T* x_group = px + (n * Cin + g * p.in_per_group()) * HW;
    T* packed = scratch_packed_b.get<T>(packed_b_size<T>(K, P));
    if (p.is_pointwise()) {
      pack_b(x_group, P, (int64_t)1, K, P, packed);
    } else {
      T* col = scratch_col.get<T>(K * P);
      im2col(x_group, p, col);
      pack_b(col, P, (int64_t)1, K, P, packed);
    }
    gemm_packed(M, P, K, packed_w.ptr + g * a_size, packed, py + (n * Cout + g * M) * P, P, false,
                pb ? pb + g * M : nullptr);
  }
}

template <typename T>
void backward_input(const Array& gy, const Array& w, const Array& bias, Array& gx, const Conv2dParams& p) {
  const int64_t G = p.groups, M = p.out_per_group(), K = p.gemm_k(), P = p.out_pixels();
  const int64_t Cin = p.in_channels, Cout = p.out_channels, HW = p.in_pixels(), Cg = p.in_per_group();
  const T* pg = gy.data_as<T>();
  const T* pw = w.data_as<T>();
  const T* pb = bias.numel() ? bias.data_as<T>() : nullptr;
  T* px = gx.data_as<T>();
  // A = W_g^T (K x M): element (k, m) at w_g[m * K + k].
  const int64_t a_size = packed_a_size<T>(K, M);
  AlignedBuffer<T> packed_wt(G * a_size);
  for (int64_t g = 0; g < G; ++g) pack_a(pw + g * M * K, (int64_t)1, K, K, M, packed_wt.ptr + g * a_size);
  const int64_t tasks = p.batch * G;
#pragma omp parallel for schedule(dynamic, 1) if (tasks > 1 && p.batch * Cout * P * K >= (1 << 16))
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t n = t / G, g = t % G;
    const T* gy_group = pg + (n * Cout + g * M) * P;
    T* gx_group = px + (n * Cin + g * Cg) * HW;
    T* packed = scratch_packed_b.get<T>(packed_b_size<T>(M, P));
    pack_b(gy_group, P, (int64_t)1, M, P, packed);
    if (p.is_pointwise()) {  // dcol is gx itself
      gemm_packed(K, P, M, packed_wt.ptr + g * a_size, packed, gx_group, P, false, (const T*)nullptr);
    } else {
      T* dcol = scratch_col.get<T>(K * P);
      gemm_packed(K, P, M, packed_wt.ptr + g * a_size, packed, dcol, P, false, (const T*)nullptr);
      std::memset(gx_group, 0, sizeof(T) * Cg * HW);
      col2im_add(dcol, p, gx_group);
    }
    if (pb) {
      for (int64_t c = 0; c < Cg; ++c) {
        const T b = pb[g * Cg + c];
        T* plane = gx_group + c * HW;
        for (int64_t i = 0; i < HW; ++i) plane[i] += b;
      }
    }
  }
}

// Images per weight-gradient chunk: depends on the shapes only (never on the thread count). Enough chunks to keep
// threads busy, few enough that the partial buffers stay within ~16 MB.
int64_t weight_grad_chunks(const Conv2dParams& p, int64_t weight_numel, size_t elem_size) {
  const int64_t budget = (int64_t)((16u << 20) / elem_size);
  const int64_t by_memory = std::max<int64_t>(1, budget / std::max<int64_t>(weight_numel, 1));
  return std::max<int64_t>(1, std::min<int64_t>({p.batch, 32, by_memory}));
}

template <typename T> void backward_weight(const Array& x, const Array& gy, Array& gw, const Conv2dParams& p) {
  const int64_t G = p.groups, M = p.out_per_group(), K = p.gemm_k(), P = p.out_pixels();
  const int64_t Cin = p.in_channels, Cout = p.out_channels, HW = p.in_pixels(), Cg = p.in_per_group();
  const int64_t wsize = G * M * K;
  const T* px = x.data_as<T>();
  const T* pg = gy.data_as<T>();
  T* pw = gw.data_as<T>();
  if (p.batch == 0) {
    std::memset(pw, 0, sizeof(T) * wsize);
    return;
  }
  const int64_t chunks = weight_grad_chunks(p, wsize, sizeof(T));
  // chunk c holds images [c * N / chunks, (c + 1) * N / chunks); its dW goes to partial c (or straight to gw).
  std::unique_ptr<AlignedBuffer<T>> partial;
  if (chunks > 1) partial = std::make_unique<AlignedBuffer<T>>(chunks * wsize);
  const int64_t tasks = chunks * G;
#pragma omp parallel for schedule(dynamic, 1) if (tasks > 1 && p.batch * Cout * P * K >= (1 << 16))
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t c = t / G, g = t % G;
    T* dw = (chunks > 1 ? partial->ptr + c * wsize : pw) + g * M * K;
    const int64_t n_begin = c * p.batch / chunks, n_end = (c + 1) * p.batch / chunks;
    // A = gy_g (M x P); B = col^T (P x K): element (q, k) at col[k * P + q].
    T* packed_a = scratch_packed_a.get<T>(packed_a_size<T>(M, P));
    T* packed_b = scratch_packed_b.get<T>(packed_b_size<T>(P, K));
    for (int64_t n = n_begin; n < n_end; ++n) {
      const T* x_group = px + (n * Cin + g * Cg) * HW;
      const T* col = x_group;  // pointwise: col is the image's channels themselves
      if (!p.is_pointwise()) {
        T* buffer = scratch_col.get<T>(K * P);
        im2col(x_group, p, buffer);
        col = buffer;
      }
      pack_a(pg + (n * Cout + g * M) * P, P, (int64_t)1, M, P, packed_a);
      pack_b(col, (int64_t)1, P, P, K, packed_b);
      gemm_packed(M, K, P, packed_a, packed_b, dw, K, n > n_begin, (const T*)nullptr);
    }
  }
  if (chunks > 1) {
    const T* parts = partial->ptr;
#pragma omp parallel for schedule(static) if (wsize * chunks >= (1 << 16))
    for (int64_t i = 0; i < wsize; ++i) {
      T acc = parts[i];
      for (int64_t c = 1; c < chunks; ++c) acc += parts[c * wsize + i];
      pw[i] = acc;
    }
  }
}

}  // namespace

void conv2d_forward_cpu(const Array& x, const Array& w, const Array& bias, Array& y, const Conv2dParams& p) {
  if (y.numel() == 0) return;
  dispatch_float(x.dtype(), [&](auto zero) { forward<decltype(zero)>(x, w, bias, y, p); });
}

void conv2d_backward_input_cpu(const Array& gy, const Array& w, const Array& bias, Array& gx, const Conv2dParams& p) {
  if (gx.numel() == 0) return;
  dispatch_float(gy.dtype(), [&](auto zero) { backward_input<decltype(zero)>(gy, w, bias, gx, p); });
}

void conv2d_backward_weight_cpu(const Array& x, const Array& gy, Array& gw, const Conv2dParams& p) {
  if (gw.numel() == 0) return;
  dispatch_float(x.dtype(), [&](auto zero) { backward_weight<decltype(zero)>(x, gy, gw, p); });
}

}  // namespace gradcore
