// CUDA cross-entropy and nll_loss: the per-position maths of cross_entropy.h, shared with the CPU loop.
//   Contiguous classes (S == 1, the (N, C) classifier case): one warp per position, lane l taking classes l, l + 32,
//   ...; the lanes' partial max and sums are combined by a fixed shuffle tree.
//   Spatial targets (S > 1): one thread per position, classes in order; neighbouring threads own neighbouring
//   positions, so each class's loads coalesce.
// Every output of a position is written by its warp or thread; sums are fixed by C alone (bitwise reproducible).
// The only atomic is an integer max recording the first invalid class index (the same result in any order).
#include <cstdint>
#include "cross_entropy.h"
#include "cuda/launch.cuh"

namespace gradcore {

namespace {

constexpr int kThreads = 256;
constexpr int kWarpsPerBlock = kThreads / 32;

// A warp's 32 lanes combined by a fixed shuffle tree; every lane gets the result.
struct WarpLanes {
  template <typename T> __device__ T max(T v) const {
    for (int offset = 16; offset > 0; offset /= 2) v = max_or_nan(v, __shfl_down_sync(0xffffffffu, v, offset));
    return __shfl_sync(0xffffffffu, v, 0);
  }
  __device__ double sum(double v) const {
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
    return __shfl_sync(0xffffffffu, v, 0);
  }
};

// bad_position holds positions - (first bad position) so that an integer max over any order keeps the first one, and
// the zero it starts from means "none".
__device__ void record_bad(int64_t* bad_position, int64_t positions, int64_t pos) {
  atomicMax(reinterpret_cast<unsigned long long*>(bad_position), (unsigned long long)(positions - pos));
}

template <typename T>
__global__ void __launch_bounds__(kThreads) cross_entropy_forward_warp_kernel(CrossEntropyData<T> d,
                                                                              CrossEntropyParams p) {
  const int lane = threadIdx.x % 32;
  const int64_t positions = p.positions();
  for (int64_t pos = (int64_t)blockIdx.x * kWarpsPerBlock + threadIdx.x / 32; pos < positions;
       pos += (int64_t)gridDim.x * kWarpsPerBlock)  // the same count for every lane of a warp
    if (!cross_entropy_forward_position<T>(d, p, pos, lane, 32, WarpLanes{}) && lane == 0)
      record_bad(d.bad_position, positions, pos);
}

template <typename T>
__global__ void __launch_bounds__(kThreads) cross_entropy_forward_thread_kernel(CrossEntropyData<T> d,
                                                                                CrossEntropyParams p) {
  const int64_t positions = p.positions();
  for (int64_t pos = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; pos < positions;
       pos += (int64_t)gridDim.x * blockDim.x)
    if (!cross_entropy_forward_position<T>(d, p, pos, 0, 1, SingleLane{})) record_bad(d.bad_position, positions, pos);
}

template <typename T>
__global__ void __launch_bounds__(kThreads) cross_entropy_backward_warp_kernel(CrossEntropyData<T> d,
                                                                               CrossEntropyParams p) {
  const int lane = threadIdx.x % 32;
  const int64_t positions = p.positions();
  for (int64_t pos = (int64_t)blockIdx.x * kWarpsPerBlock + threadIdx.x / 32; pos < positions;
       pos += (int64_t)gridDim.x * kWarpsPerBlock)
    cross_entropy_backward_position<T>(d, p, pos, lane, 32, WarpLanes{});
}

template <typename T>
__global__ void __launch_bounds__(kThreads) cross_entropy_backward_thread_kernel(CrossEntropyData<T> d,
                                                                                 CrossEntropyParams p) {
  const int64_t positions = p.positions();
  for (int64_t pos = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; pos < positions;
       pos += (int64_t)gridDim.x * blockDim.x)
    cross_entropy_backward_position<T>(d, p, pos, 0, 1, SingleLane{});
}

template <typename T> CrossEntropyData<T> data_of(const CrossEntropyArrays& in) {
  CrossEntropyData<T> d{};
  d.x = in.x->data_as<T>();
  d.labels = in.labels ? static_cast<const int64_t*>(in.labels->data()) : nullptr;
  d.probs = in.probs ? in.probs->data_as<T>() : nullptr;
  d.weight = in.weight ? in.weight->data_as<T>() : nullptr;
  return d;
}

// Launches the warp kernel for contiguous classes, the thread kernel otherwise.
template <typename T>
void launch(const char* warp_name, void (*warp)(CrossEntropyData<T>, CrossEntropyParams), const char* thread_name,
            void (*thread)(CrossEntropyData<T>, CrossEntropyParams), const CrossEntropyData<T>& d,
            const CrossEntropyParams& p, cudaStream_t stream) {
  if (p.spatial == 1)
    cuda::launch(warp_name, warp, cuda::grid_for(p.positions() * 32, kThreads), kThreads, stream, d, p);
  else
    cuda::launch(thread_name, thread, cuda::grid_for(p.positions(), kThreads), kThreads, stream, d, p);
}

}  // namespace

void cross_entropy_forward_cuda(const CrossEntropyArrays& in, Array& loss, Array& lse, Array* position_weight,
                                int64_t& bad_position, const CrossEntropyParams& p) {
  const int64_t positions = p.positions();
  bad_position = -1;
  if (positions == 0) return;
  cudaStream_t stream = cuda::stream_of(*in.x);
  // One 8-byte cell, zero: no invalid class index seen yet (see record_bad).
  Array bad = Array::zeros({1}, DType::float64, in.x->device());
  dispatch_float(in.x->dtype(), [&](auto zero) {
    using T = decltype(zero);
    CrossEntropyData<T> d = data_of<T>(in);
    d.loss = loss.data_as<T>();
    d.lse = lse.data_as<double>();
    d.position_weight = position_weight ? position_weight->data_as<T>() : nullptr;
    d.bad_position = static_cast<int64_t*>(bad.data());
    launch<T>("cross_entropy_forward_warp_kernel", cross_entropy_forward_warp_kernel<T>,
              "cross_entropy_forward_thread_kernel", cross_entropy_forward_thread_kernel<T>, d, p, stream);
  });
  if (p.probability_target) return;
  // Class indices are checked on the device as they are read; copying the 8-byte verdict back waits for the kernel
  // (one small synchronisation per call) and turns a bad label into a ValueError instead of a device assert.
  const Array verdict = bad.to(Device{});
  const int64_t encoded = *static_cast<const int64_t*>(verdict.data());
  bad_position = encoded == 0 ? -1 : positions - encoded;
}

void cross_entropy_backward_cuda(const CrossEntropyArrays& in, const Array& lse, const Array& grad, Array& dx,
                                 Array* dtarget, const CrossEntropyParams& p) {
  if (p.positions() == 0) return;
  cudaStream_t stream = cuda::stream_of(*in.x);
  dispatch_float(in.x->dtype(), [&](auto zero) {
    using T = decltype(zero);
    CrossEntropyData<T> d = data_of<T>(in);
    d.lse = lse.data_as<double>();
    d.grad = grad.data_as<T>();
    d.grad_is_scalar = grad.numel() == 1;
    d.dx = dx.data_as<T>();
    d.dtarget = dtarget ? dtarget->data_as<T>() : nullptr;
    launch<T>("cross_entropy_backward_warp_kernel", cross_entropy_backward_warp_kernel<T>,
              "cross_entropy_backward_thread_kernel", cross_entropy_backward_thread_kernel<T>, d, p, stream);
  });
}

}  // namespace gradcore
