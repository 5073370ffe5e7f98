// Vector types for the CPU kernels (GCC/Clang vector extensions, so gcc -O3 -march=native emits AVX-512/AVX2
// instructions without intrinsics), shared by the GEMM, the depthwise kernels and batch_norm's sums.
//   Simd<T>::vec        one machine vector (kVectorBytes): code whose order of summation does not depend on it
//   FixedVec<T, N>      N lanes whatever the machine (the compiler splits it into registers): for sums whose lane
//                       count is part of the order of summation, so results do not change with the instruction set
#pragma once
#include <cstddef>
#include <cstring>
#include <utility>

namespace gradcore::cpu {

#if defined(__AVX512F__)
constexpr int kVectorBytes = 64;
#elif defined(__AVX__)
constexpr int kVectorBytes = 32;
#else
constexpr int kVectorBytes = 16;
#endif

template <typename T> struct Simd {
  typedef T vec __attribute__((vector_size(kVectorBytes)));
  static constexpr int lanes = kVectorBytes / (int)sizeof(T);
  static constexpr int nr = 2 * lanes;  // columns per B strip: two vectors
};

// All lanes = s, written as an initializer list so the compiler emits one broadcast (from memory when s is loaded),
// not "0 + s" (a scalar add it may not drop because of signed zeros) followed by a broadcast.
template <typename T, size_t... I> inline typename Simd<T>::vec broadcast_impl(T s, std::index_sequence<I...>) {
  return typename Simd<T>::vec{((void)I, s)...};
}
template <typename T> inline typename Simd<T>::vec broadcast(T s) {
  return broadcast_impl<T>(s, std::make_index_sequence<Simd<T>::lanes>{});
}

template <typename T> inline typename Simd<T>::vec load_vec(const T* p) {
  typename Simd<T>::vec v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
template <typename T> inline void store_vec(T* p, typename Simd<T>::vec v) { std::memcpy(p, &v, sizeof(v)); }

template <typename T, int N> struct FixedVecOf {
  typedef T type __attribute__((vector_size(N * sizeof(T))));
};
template <typename T, int N> using FixedVec = typename FixedVecOf<T, N>::type;

// relu lane by lane: x where x > 0 or x is NaN, else +0: elementwise.h's relu (the activation epilogue, epilogue.h),
// bit for bit, in one compare and one masked move. V: a vector type, or a scalar (then it is the scalar rule).
template <typename V> inline V relu_vec(V v) {
  const V zero{};
  return (v > zero) | (v != v) ? v : zero;
}

// Any vector type V from unaligned memory.
template <typename V, typename T> inline V load_as(const T* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace gradcore::cpu
