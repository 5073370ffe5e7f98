// GRADCORE_HD marks the per-element rules that the CPU loops and the CUDA kernels share, so the twins compute the
// same thing: __host__ __device__ under nvcc, plain inline functions for the C++ compiler.
//
// The maths functions: CUDA's overloads for float live in the global namespace (sqrt(float) is sqrtf there), but on
// the host the global ones are C's double-only functions, so an unqualified sqrt(x) on a float would compute in
// double on the CPU and in float on the GPU. The using-declarations below give the host the same overloads, so the
// shared rules compute in the same precision on both devices.
//
// On the emulated device (cuda/emulation/device.h) the kernels' copies of these rules get internal linkage: they may
// differ from the CPU twin's (by __CUDA_ARCH__ branches), and the linker would otherwise keep one of the two for both.
#pragma once
#include <cmath>
#if defined(__CUDACC__)
#define GRADCORE_HD __host__ __device__ __forceinline__
#else
#if defined(GRADCORE_EMULATED_DEVICE_CODE)
#define GRADCORE_HD static inline
#else
#define GRADCORE_HD inline
#endif
using std::exp;
using std::fabs;
using std::log;
using std::log1p;
using std::pow;
using std::sqrt;
using std::tanh;
#endif
