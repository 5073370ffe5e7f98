// GRADCORE_HD marks the per-element rules that the CPU loops and the CUDA kernels share, so the twins compute the
// same thing: __host__ __device__ under nvcc, plain inline functions for the C++ compiler.
#pragma once
#if defined(__CUDACC__)
#define GRADCORE_HD __host__ __device__ __forceinline__
#else
#define GRADCORE_HD inline
#endif
