// The emulated CUDA device (GRADCORE_CUDA=EMULATE): a test double that runs our .cu sources, unedited, as host C++.
// This header is force-included (g++ -include) before every csrc/cuda/*.cu in that build; the kernels are compiled
// against the real CUDA headers (types, the runtime API's declarations), with no libcudart: the runtime calls we use
// are implemented on host memory in runtime_api.cpp, and kernels run through scheduler.cpp.
//
// What it models:
//   - A launch runs its blocks one at a time (x fastest, then y, z; optionally in reverse) on one "device" thread;
//     each block's threads are cooperative fibers (ucontext) with their own stacks and their own threadIdx.
//   - __syncthreads is a barrier: every live thread of the block must reach one. A thread that exits, or waits at a
//     warp operation, while the rest of its block waits at a barrier, aborts the process with a message naming the
//     kernel and the block. (As on the GPU, which __syncthreads call a thread waits at is not compared: the compiler
//     may duplicate a call site.)
//   - Warp shuffles (__shfl_sync, _up, _down, _xor, of any type up to 8 bytes), votes (__ballot_sync, __any_sync,
//     __all_sync) and __syncwarp are rendezvous of the lanes named in the mask; the mask must name exactly the
//     lanes that arrive (a full-mask shuffle with an exited lane, or a mismatched mask, aborts), and a shuffle
//     may not read a lane outside the mask.
//   - __shared__ memory is per block (static thread_local storage of the device thread), and so is the dynamic
//     shared memory of the launch's shared_bytes (declared with GRADCORE_DYNAMIC_SHARED, launch.cuh, as extern
//     __shared__ cannot be spelled in host C++); both are filled with 0xFF bytes (a NaN for float and double) before
//     every block, so a read of a value the block never wrote shows as NaN.
//   - Device memory (cudaMalloc*, pools, cudaMallocAsync) is host memory filled with 0xFF bytes at every allocation
//     and returned to the host allocator when freed, so AddressSanitizer sees out-of-bounds and use-after-free.
//   - Streams are in order and synchronous (a launch or copy has finished when the call returns); events record
//     host time; errors follow the runtime's rules (cudaGetLastError returns and clears the calling thread's error).
//   - Thread order: set_thread_order(reversed) runs each block's threads, and the blocks, in reverse order between
//     barriers. A kernel whose result depends on that order has a race (a missing barrier, a shared-memory race).
//   - Device code and the CPU twins are compiled by the same compiler into one module, but stay apart: the rules they
//     share (GRADCORE_HD, host_device.h) are always inlined there, so the kernels run their own copy (with its
//     __CUDA_ARCH__ branches) and the CPU loops theirs, whichever out-of-line copy the linker keeps.
//   - Integer and float atomics (trivially atomic: one fiber runs at a time), __threadfence, the maths functions
//     with CUDA's float overloads in the global namespace, min/max, __CUDA_ARCH__ (900) so device branches compile.
// What it does not model: speed, occupancy and register limits; real concurrency between blocks, streams or the
// host (everything is sequential and synchronous, so a missing stream synchronisation or a cross-block race that
// is fine in this order goes unseen); the memory model (weak ordering, caches, __threadfence's meaning); warp-
// synchronous code without *_sync intrinsics; texture/surface memory; a spelled-out extern __shared__;
// out-of-bounds accesses inside one block's shared memory (thread_local storage has no ASan redzones); the real
// device's rounding of maths functions (expf, tanh, ... are the host's libm; FMA contraction differs).
#pragma once
#include <cuda_runtime.h>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>

// Device-code spellings the host compiler does not know (the CUDA headers leave __shared__ empty for it).
#undef __shared__
#define __shared__ static thread_local
#define __launch_bounds__(...)
#define __CUDA_ARCH__ 900

namespace gradcore::cuda::emulation {

// The thread and block coordinates of the fiber that is running.
uint3 thread_index();
uint3 block_index();
dim3 block_dim();
dim3 grid_dim();

void block_barrier();

// The block's dynamic shared memory (the launch's shared_bytes; GRADCORE_DYNAMIC_SHARED in launch.cuh).
void* dynamic_shared_memory();

enum class WarpOp { shfl_idx, shfl_up, shfl_down, shfl_xor, ballot, any, all, sync };
// Waits until every lane named in `mask` has arrived at a warp operation with the same mask, then returns this
// lane's result: for shuffles the bits of the source lane's value, for votes the ballot of the predicates.
uint64_t warp_exchange(WarpOp op, unsigned mask, uint64_t bits, int arg, int width);

// A kernel launch: validates the configuration (an invalid one sets cudaErrorInvalidConfiguration, too much shared
// memory cudaErrorInvalidValue), then runs body(context) once per thread of every block on the device thread, and
// returns when all have finished.
void run_grid(const char* kernel_name, dim3 grid, dim3 block, size_t shared_bytes, void (*body)(void*), void* context);

// Between-barrier order of the threads and blocks: forward (the default) or reversed.
void set_thread_order(bool reversed);
bool thread_order_reversed();

template <typename... Params, typename... Args>
void launch_kernel(const char* kernel_name, void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared_bytes,
                   Args&&... args) {
  struct Call {
    void (*kernel)(Params...);
    std::tuple<std::decay_t<Params>...> params;  // converted as the call <<<>>>(args...) would convert them
  } call{kernel, std::tuple<std::decay_t<Params>...>(std::forward<Args>(args)...)};
  run_grid(kernel_name, grid, block, shared_bytes,
           [](void* context) {
             Call& c = *static_cast<Call*>(context);
             std::apply(c.kernel, c.params);  // each thread gets its own copies of the parameters
           },
           &call);
}

template <typename T> uint64_t to_bits(T value) {
  static_assert(sizeof(T) <= sizeof(uint64_t) && std::is_trivially_copyable_v<T>,
                "warp shuffles move values of at most 8 bytes");
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof(T));
  return bits;
}
template <typename T> T from_bits(uint64_t bits) {
  T value;
  std::memcpy(&value, &bits, sizeof(T));
  return value;
}

}  // namespace gradcore::cuda::emulation

// The built-in variables, per fiber.
#define threadIdx (::gradcore::cuda::emulation::thread_index())
#define blockIdx (::gradcore::cuda::emulation::block_index())
#define blockDim (::gradcore::cuda::emulation::block_dim())
#define gridDim (::gradcore::cuda::emulation::grid_dim())
constexpr int warpSize = 32;

void __syncthreads();

inline void __syncwarp(unsigned mask = 0xffffffffu) {
  ::gradcore::cuda::emulation::warp_exchange(::gradcore::cuda::emulation::WarpOp::sync, mask, 0, 0, warpSize);
}

#define GRADCORE_EMULATED_SHUFFLE(name, op, arg_type)                                                            \
  template <typename T> T name(unsigned mask, T var, arg_type arg, int width = warpSize) {                      \
    namespace emu = ::gradcore::cuda::emulation;                                                                 \
    return emu::from_bits<T>(emu::warp_exchange(emu::WarpOp::op, mask, emu::to_bits(var), (int)arg, width));   \
  }
GRADCORE_EMULATED_SHUFFLE(__shfl_sync, shfl_idx, int)
GRADCORE_EMULATED_SHUFFLE(__shfl_up_sync, shfl_up, unsigned)
GRADCORE_EMULATED_SHUFFLE(__shfl_down_sync, shfl_down, unsigned)
GRADCORE_EMULATED_SHUFFLE(__shfl_xor_sync, shfl_xor, int)
#undef GRADCORE_EMULATED_SHUFFLE

inline unsigned __ballot_sync(unsigned mask, int predicate) {
  namespace emu = ::gradcore::cuda::emulation;
  return (unsigned)emu::warp_exchange(emu::WarpOp::ballot, mask, predicate != 0, 0, warpSize);
}
inline int __any_sync(unsigned mask, int predicate) {
  namespace emu = ::gradcore::cuda::emulation;
  return (int)emu::warp_exchange(emu::WarpOp::any, mask, predicate != 0, 0, warpSize);
}
inline int __all_sync(unsigned mask, int predicate) {
  namespace emu = ::gradcore::cuda::emulation;
  return (int)emu::warp_exchange(emu::WarpOp::all, mask, predicate != 0, 0, warpSize);
}

// One fiber runs at a time, so a read-modify-write is atomic; the fence keeps the compiler from moving memory
// accesses across it, as the real one orders them for other threads.
inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_system() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

template <typename T> T atomicAdd(T* address, T value) { T old = *address; *address = old + value; return old; }
template <typename T> T atomicSub(T* address, T value) { T old = *address; *address = old - value; return old; }
template <typename T> T atomicExch(T* address, T value) { T old = *address; *address = value; return old; }
template <typename T> T atomicMax(T* address, T value) { T old = *address; *address = old < value ? value : old; return old; }
template <typename T> T atomicMin(T* address, T value) { T old = *address; *address = value < old ? value : old; return old; }
template <typename T> T atomicCAS(T* address, T compare, T value) {
  T old = *address;
  if (old == compare) *address = value;
  return old;
}
inline unsigned atomicInc(unsigned* address, unsigned limit) {
  unsigned old = *address;
  *address = old >= limit ? 0u : old + 1u;
  return old;
}
template <typename T> T __ldg(const T* address) { return *address; }

// CUDA's maths overloads live in the global namespace (sqrt(float) is sqrtf there, not ::sqrt(double)).
using std::abs; using std::ceil; using std::cos; using std::exp; using std::exp2; using std::expm1; using std::fabs;
using std::floor; using std::fma; using std::fmax; using std::fmin; using std::isfinite; using std::isinf;
using std::isnan; using std::log; using std::log1p; using std::log2; using std::pow; using std::round; using std::sin;
using std::sqrt; using std::tanh; using std::trunc;
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline float rsqrt(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __fdividef(float x, float y) { return x / y; }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : (x == x ? x : 0.0f)); }

// CUDA's min and max: integers in their common type, floating point as fmin/fmax (a NaN operand loses).
template <typename A, typename B> std::common_type_t<A, B> min(A a, B b) {
  using C = std::common_type_t<A, B>;
  if constexpr (std::is_floating_point_v<C>) return std::fmin((C)a, (C)b);
  else return (C)b < (C)a ? (C)b : (C)a;
}
template <typename A, typename B> std::common_type_t<A, B> max(A a, B b) {
  using C = std::common_type_t<A, B>;
  if constexpr (std::is_floating_point_v<C>) return std::fmax((C)a, (C)b);
  else return (C)a < (C)b ? (C)b : (C)a;
}
