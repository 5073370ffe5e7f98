// CPU cross-entropy and nll_loss: one position per iteration, the per-position maths of cross_entropy.h (shared with
// the CUDA kernels) with a single lane. OpenMP splits positions statically; each position's sums run in class order,
// so results do not depend on the thread count. The first invalid class index is found by each thread for its own
// positions and the smallest position kept.
#include "cross_entropy.h"
#include <algorithm>
#include <cstdint>
#include "cpu/parallel.h"

namespace gradcore {

namespace {

template <typename T> CrossEntropyData<T> data_of(const CrossEntropyArrays& in) {
  CrossEntropyData<T> d{};
  d.x = in.x->data_as<T>();
  d.labels = in.labels ? static_cast<const int64_t*>(in.labels->data()) : nullptr;
  d.probs = in.probs ? in.probs->data_as<T>() : nullptr;
  d.weight = in.weight ? in.weight->data_as<T>() : nullptr;
  return d;
}

}  // namespace

void cross_entropy_forward_cpu(const CrossEntropyArrays& in, Array& loss, Array& lse, Array* position_weight,
                               int64_t& bad_position, const CrossEntropyParams& p) {
  const int64_t positions = p.positions();
  int64_t bad = INT64_MAX;
  dispatch_float(in.x->dtype(), [&](auto zero) {
    using T = decltype(zero);
    CrossEntropyData<T> d = data_of<T>(in);
    d.loss = loss.data_as<T>();
    d.lse = lse.data_as<double>();
    d.position_weight = position_weight ? position_weight->data_as<T>() : nullptr;
#pragma omp parallel for schedule(static) reduction(min : bad) if (positions * p.classes >= cpu::kParallelThreshold)
    for (int64_t pos = 0; pos < positions; ++pos)
      if (!cross_entropy_forward_position<T>(d, p, pos, 0, 1, SingleLane{})) bad = std::min(bad, pos);
  });
  bad_position = bad == INT64_MAX ? -1 : bad;
}

void cross_entropy_backward_cpu(const CrossEntropyArrays& in, const Array& lse, const Array& grad, Array& dx,
                                Array* dtarget, const CrossEntropyParams& p) {
  const int64_t positions = p.positions();
  dispatch_float(in.x->dtype(), [&](auto zero) {
    using T = decltype(zero);
    CrossEntropyData<T> d = data_of<T>(in);
    d.lse = lse.data_as<double>();
    d.grad = grad.data_as<T>();
    d.grad_is_scalar = grad.numel() == 1;  // one position, or a reduction's gradient: the same index 0
    d.dx = dx.data_as<T>();
    d.dtarget = dtarget ? dtarget->data_as<T>() : nullptr;
#pragma omp parallel for schedule(static) if (positions * p.classes >= cpu::kParallelThreshold)
    for (int64_t pos = 0; pos < positions; ++pos) cross_entropy_backward_position<T>(d, p, pos, 0, 1, SingleLane{});
  });
}

}  // namespace gradcore
