// Depthwise convolutions on the CPU (one input and one output channel per group): direct loops over one
// (image, channel) plane instead of the GEMM. Stride 1 runs one long unit-stride loop per kernel tap over a
// zero-bordered copy of the plane; other strides run row loops. Each plane (forward, backward_input) or each
// channel (backward_weight, images in order) is one task, so results are the same for any thread count.
// Pointers and layouts as conv2d.h's entry points; bias may be null. gw is accumulated into (zeroed by the caller).
#pragma once
#include "conv2d.h"

namespace gradcore::cpu {

inline bool is_depthwise(const Conv2dParams& p) { return p.in_per_group() == 1 && p.out_per_group() == 1; }

template <typename T>
void depthwise_forward(const T* x, const T* w, const T* bias, T* y, const Conv2dParams& p, bool parallel);
template <typename T>
void depthwise_backward_input(const T* gy, const T* w, const T* bias, T* gx, const Conv2dParams& p, bool parallel);
template <typename T>
void depthwise_backward_weight(const T* x, const T* gy, T* gw, const Conv2dParams& p, bool parallel);

}  // namespace gradcore::cpu
