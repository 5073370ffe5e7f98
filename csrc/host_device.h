// GRADCORE_HD marks the per-element rules that the CPU loops and the CUDA kernels share, so the twins compute the
// same thing: __host__ __device__ under nvcc, plain inline functions for the C++ compiler.
//
// The maths functions: CUDA's overloads for float live in the global namespace (sqrt(float) is sqrtf there), but on
// the host the global ones are C's double-only functions, so an unqualified sqrt(x) on a float would compute in
// double on the CPU and in float on the GPU. The using-declarations below give the host the same overloads, so the
// shared rules compute in the same precision on both devices.
//
// In the emulated-device build (GRADCORE_CUDA=EMULATE) the kernels and the CPU twins are compiled by one compiler
// into one module, and their copies of a rule may differ (__CUDA_ARCH__ branches); the linker keeps one copy of an
// inline function for both. So there every rule is always inlined, each file running its own (and that build has
// no LTO, which could merge them before inlining).
#pragma once
#include <cmath>
#if defined(__CUDACC__)
#define GRADCORE_HD __host__ __device__ __forceinline__
#else
#if defined(GRADCORE_CUDA_EMULATE)
#define GRADCORE_HD inline __attribute__((always_inline))
#else
#define GRADCORE_HD inline
#endif
using std::cos;
using std::erf;
using std::exp;
using std::expm1;
using std::fabs;
using std::log;
using std::log1p;
using std::pow;
using std::sin;
using std::sqrt;
using std::tanh;
#endif
