// conv2d forward for stride-1 convolutions with few input channels (the reduction K = C_in/groups * kH * kW is
// short: a first layer on 1-3 channel images, conv_transpose2d(C -> 1)'s input gradient), computed straight from
// column-shifted copies of the input instead of an im2col GEMM (conv2d_few_channels.cpp has the method and the
// measurements behind the rule). conv2d.cpp's forward dispatches here when few_channels_forward_applies(p).
#pragma once
#include "conv2d.h"

namespace gradcore {

// Whether conv2d_forward_cpu takes the few-channel path for p: groups 1, stride 1, K = C_in * kH * kW at most
// kFewChannelsMaxK. From the shapes alone (never the batch size, the dtype or the thread count), though the result
// does not depend on it either: every output element gets the GEMM's operations in the GEMM's order.
bool few_channels_forward_applies(const Conv2dParams& p);

// conv2d_forward_cpu's contract (conv2d.h) for p of the shapes above (any padding and dilation).
void conv2d_few_channels_forward_cpu(const Array& x, const Array& w, const Array& bias, Array& y,
                                     const Conv2dParams& p);

// Whether conv2d_backward_input_cpu takes the few-channel path for p (conv_transpose2d with few output channels, e.g.
// 32 -> 1): groups 1, stride 1, K = C_in * kH * kW at most kFewChannelsMaxK. From the shapes alone; the result is
// the GEMM + col2im path's, bit for bit.
bool few_channels_backward_input_applies(const Conv2dParams& p);

// conv2d_backward_input_cpu's contract (conv2d.h) for p of the shapes above.
void conv2d_few_channels_backward_input_cpu(const Array& gy, const Array& w, const Array& bias, Array& gx,
                                            const Conv2dParams& p);

}  // namespace gradcore
