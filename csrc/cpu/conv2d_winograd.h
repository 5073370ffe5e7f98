// Winograd F(2x2, 3x3) for the CPU's stride-1, dilation-1, 3x3 convolutions with many channels (conv2d_winograd.cpp
// has the maths and the measurements behind the rule). conv2d.cpp (forward) and conv2d_backward_input.cpp (the input
// gradient, itself a stride-1 3x3 convolution of gy with the flipped, transposed kernel) dispatch here when
// winograd_forward_applies(p) (winograd_backward_input_applies(p)).
#pragma once
#include "conv2d.h"

namespace gradcore {

// Whether conv2d_forward_cpu (conv2d_backward_input_cpu) takes the Winograd path for p. From the shapes alone (never
// the batch size, the dtype or the thread count), so the choice, and with it every bit of the result, is the same on
// any number of threads. Stride 1, dilation 1, 3x3, groups 1, and enough channels and pixels (the measurements are
// in conv2d_winograd.cpp).
bool winograd_forward_applies(const Conv2dParams& p);
bool winograd_backward_input_applies(const Conv2dParams& p);

// The same contracts as conv2d_forward_cpu and conv2d_backward_input_cpu (conv2d.h), for p of the shapes above (any
// padding: the kernels read zeros outside the image).
void conv2d_winograd_forward_cpu(const Array& x, const Array& w, const Array& bias, Array& y, const Conv2dParams& p);
void conv2d_winograd_backward_input_cpu(const Array& gy, const Array& w, const Array& bias, Array& gx,
                                        const Conv2dParams& p);

}  // namespace gradcore
