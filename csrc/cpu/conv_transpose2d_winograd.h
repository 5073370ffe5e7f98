// The stride-2, 3x3 transposed convolution (conv2d's input gradient, conv_transpose2d's forward) with fewer
// multiplies: F(2, 2) on the odd output phase (conv_transpose2d_winograd.cpp has the maths, the measurements and the
// rule). conv2d_backward_input.cpp dispatches here when conv_transpose2d_winograd_applies(p).
#pragma once
#include "conv2d.h"

namespace gradcore {

// Whether conv2d_backward_input_cpu takes this path for p: 3x3, stride 2, dilation 1, groups 1, padding 1 at the top
// and left, gx exactly twice gy's size (conv_transpose2d with output_padding 1: the seed decoder's 7 -> 14 -> 28),
// and enough channels. From the shapes alone (never the batch size, the dtype or the thread count).
bool conv_transpose2d_winograd_applies(const Conv2dParams& p);

// conv2d_backward_input_cpu's contract (conv2d.h), bias and the activation epilogue included, for p as above.
void conv_transpose2d_winograd_cpu(const Array& gy, const Array& w, const Array& bias, Array& gx,
                                   const Conv2dParams& p);

}  // namespace gradcore
