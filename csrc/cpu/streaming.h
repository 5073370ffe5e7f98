// Reading and writing tensors that are out of the caches (a training step at batch 256: activations of 6-26 MB come
// back to the backward pass from memory): non-temporal stores, which write a whole 64-byte line without reading it
// first (an ordinary store to a line out of the caches fetches it, then writes it back later). For an output of
// kStreamBytes or more that nobody reads right away; a small one would be pushed out of the caches that its reader
// finds it in. Used by cpu/conv_transpose2d_winograd.cpp (a stage streamed to gx) and cpu/conv2d_few_channels.cpp
// (the tiles' registers streamed to y); their headers have the measurements. Software prefetch of the next task's
// input was measured there too and did not pay (the reads run at about this core's bandwidth already).
#pragma once
#include <cstdint>
#include <type_traits>
#include "cpu/simd.h"
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace gradcore::cpu {

// Outputs of at least this many bytes are written by non-temporal stores where a kernel offers them: twice this
// Xeon's 2 MiB L2, four times Zen 4's, so their lines leave the caches before anything reads them.
constexpr int64_t kStreamBytes = int64_t(4) << 20;

// Whether an output of `elements` values of T is written by non-temporal stores: float with AVX-512 only (whole
// 64-byte vectors, so a line is written by one store).
template <typename T> inline bool streams_output(int64_t elements) {
#if defined(__AVX512F__)
  return std::is_same_v<T, float> && elements * (int64_t)sizeof(T) >= kStreamBytes;
#else
  (void)elements;
  return false;
#endif
}

// count values from src (in cache) to dst: the whole 64-byte lines by non-temporal stores, the partial lines at
// either end by plain stores.
template <typename T> inline void stream_to(T* dst, const T* src, int64_t count) {
  int64_t i = 0;
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    for (; i < count && (reinterpret_cast<uintptr_t>(dst + i) & 63); ++i) dst[i] = src[i];
    for (; i + 16 <= count; i += 16) _mm512_stream_ps(dst + i, _mm512_loadu_ps(src + i));
  }
#endif
  for (; i < count; ++i) dst[i] = src[i];
}

// One vector to p: by a non-temporal store when `stream` and p starts a 64-byte line (then the vector is that whole
// line), else by a plain store.
template <typename T> inline void stream_vec(T* p, typename Simd<T>::vec v, bool stream) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    if (stream && (reinterpret_cast<uintptr_t>(p) & 63) == 0) {
      _mm512_stream_ps(p, (__m512)v);
      return;
    }
  }
#endif
  (void)stream;
  store_vec(p, v);
}

// After a task's non-temporal stores: orders them before what follows (the task's end, so before any reader).
inline void stream_fence() {
#if defined(__AVX512F__)
  _mm_sfence();
#endif
}

}  // namespace gradcore::cpu
