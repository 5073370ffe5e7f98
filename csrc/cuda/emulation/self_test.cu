// Kernels with the bugs the emulated device exists to catch, and one without, for tests/test_emulation.py. Built only
// into the emulated module (GRADCORE_CUDA=EMULATE); run through _core.cuda_emulation_self_test(name). Each returns
// what its block wrote (as doubles), or never returns: the emulator aborts the process, naming the kernel.
#include <stdexcept>
#include <string>
#include <vector>
#include "cuda/launch.cuh"

namespace gradcore::cuda {

namespace {

constexpr int kThreads = 64;

// Half the block returns before the barrier the other half waits at.
__global__ void skipped_barrier_kernel(float* out) {
  if (threadIdx.x >= kThreads / 2) return;
  __syncthreads();
  out[threadIdx.x] = 1.0f;
}

// A full-mask shuffle in a warp whose first 16 lanes have exited.
__global__ void exited_lane_shuffle_kernel(float* out) {
  if (threadIdx.x < 16) return;
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, (float)threadIdx.x, 1);
}

// Reads shared memory that only the first half of the block wrote: the second half reads NaN.
__global__ void unwritten_shared_kernel(float* out) {
  __shared__ float shared[kThreads];
  if (threadIdx.x < kThreads / 2) shared[threadIdx.x] = (float)threadIdx.x;
  __syncthreads();
  out[threadIdx.x] = shared[threadIdx.x];
}

// Reads a neighbour's shared-memory slot with no barrier between the write and the read: a race, whose result
// changes with the order the threads run in.
__global__ void shared_race_kernel(float* out) {
  __shared__ float shared[kThreads];
  shared[threadIdx.x] = (float)threadIdx.x;
  out[threadIdx.x] = shared[(threadIdx.x + 1) % kThreads];
}

// Dynamic shared memory (sized at launch): a block-wide reversal through it; every slot is written before the barrier.
__global__ void dynamic_shared_kernel(float* out) {
  GRADCORE_DYNAMIC_SHARED(float, staging);
  staging[threadIdx.x] = (float)threadIdx.x;
  __syncthreads();
  out[threadIdx.x] = staging[blockDim.x - 1 - threadIdx.x];
}

// Correct warp code: a butterfly sum of the lane ids (496 in every lane) and a ballot of the odd lanes.
__global__ void warp_reduce_kernel(float* out) {
  float v = (float)(threadIdx.x % 32);
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  const unsigned odd = __ballot_sync(0xffffffffu, threadIdx.x % 2);
  out[threadIdx.x] = v + (odd == 0xaaaaaaaau ? 0.0f : 1000.0f);
}

// Reads one element past the end of its buffer: AddressSanitizer (GRADCORE_SANITIZE builds) stops the process.
__global__ void out_of_bounds_kernel(float* out) { out[threadIdx.x] = out[threadIdx.x + 1]; }

// Writes through a pointer no allocation owns.
__global__ void illegal_address_kernel(float* out) { reinterpret_cast<float*>(0x100)[threadIdx.x] = out[0]; }

}  // namespace

std::vector<double> run_emulation_self_test(const std::string& name) {
  void (*kernel)(float*) = nullptr;
  if (name == "skipped_barrier") kernel = skipped_barrier_kernel;
  else if (name == "exited_lane_shuffle") kernel = exited_lane_shuffle_kernel;
  else if (name == "unwritten_shared") kernel = unwritten_shared_kernel;
  else if (name == "shared_race") kernel = shared_race_kernel;
  else if (name == "warp_reduce") kernel = warp_reduce_kernel;
  else if (name == "dynamic_shared") kernel = dynamic_shared_kernel;
  else if (name == "out_of_bounds") kernel = out_of_bounds_kernel;
  else if (name == "illegal_address") kernel = illegal_address_kernel;
  else throw std::invalid_argument("name: no emulation self-test called '" + name + "'");
  float* d_out = nullptr;
  GRADCORE_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&d_out), kThreads * sizeof(float)));
  GRADCORE_CUDA_CHECK(cudaMemset(d_out, 0, kThreads * sizeof(float)));
  launch_with_shared_memory(name.c_str(), kernel, dim3(1), dim3(kThreads), kThreads * sizeof(float), nullptr, d_out);
  std::vector<float> host(kThreads);
  const cudaError_t copied = cudaMemcpy(host.data(), d_out, kThreads * sizeof(float), cudaMemcpyDeviceToHost);
  cudaFree(d_out);
  GRADCORE_CUDA_CHECK(copied);
  return std::vector<double>(host.begin(), host.end());
}

}  // namespace gradcore::cuda
