// Winograd for the CPU weight gradient of 3x3 convolutions of stride 1 or 2 (conv2d_backward_weight_winograd.cpp has
// the maths and the measurements behind the rule). conv2d_backward_weight.cpp dispatches here when
// winograd_backward_weight_applies(p).
#pragma once
#include "conv2d.h"

namespace gradcore {

// Whether conv2d_backward_weight_cpu takes the Winograd path for p: from the shapes alone (never the batch size, the
// dtype or the thread count), so the choice, and with it every bit of the result, is the same on any number of
// threads. 3x3, dilation 1, stride 1 or 2 along each side, groups 1, and enough channels.
bool winograd_backward_weight_applies(const Conv2dParams& p);

// The contract of conv2d_backward_weight_cpu (conv2d.h) for p of the shapes above: gw (C_out, C_in, 3, 3), written
// whole.
void conv2d_winograd_backward_weight_cpu(const Array& x, const Array& gy, Array& gw, const Conv2dParams& p);

}  // namespace gradcore
