// The CPU's stride-2 3x3 convolution forward through the input-phase decomposition with F(2, 2) on the even phase
// (conv2d_winograd_stride2.cpp has the maths and the measurements behind the rule). conv2d.cpp's forward (and so
// conv_transpose2d's input gradient) dispatches here when winograd_stride2_forward_applies(p, dtype).
#pragma once
#include "array.h"
#include "conv2d.h"

namespace gradcore {

// Whether conv2d_forward_cpu takes this path for p and dtype: from the shapes and the dtype alone (never the thread
// count), so the choice, and with it every bit of the result, is the same on any number of threads.
bool winograd_stride2_forward_applies(const Conv2dParams& p, DType dtype);

// conv2d_forward_cpu's contract (conv2d.h), its activation epilogue included, for a float32 p with 3x3 kernels,
// stride 2, dilation 1, groups 1 and any padding (zeros are read outside the image).
void conv2d_winograd_stride2_forward_cpu(const Array& x, const Array& w, const Array& bias, Array& y,
                                         const Conv2dParams& p);

}  // namespace gradcore
