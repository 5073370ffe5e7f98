"""Convolution + ReLU as one op (internal): relu(conv2d(x, w) + b) and relu(conv_transpose2d(x, w) + b).

The maths is conv2d.h's "activation epilogue". Forward: the convolution kernels store relu(y) as each element's sum
is final (csrc/cpu/conv2d_epilogue.h; the CUDA GEMM's store), so the separate ReLU pass over y goes away. The node
saves y = relu(...) (as F.relu's node does), and backward starts with _core.conv_relu_backward: the mask
relu_backward(g, y) and the bias gradient in one pass, then the convolution's own gradients on the masked g. When the
engine alone holds g (autograd.Function.grad_owned) the mask is written over g itself: no fresh block to fill, whose
cache misses cost more than the pass (B=25, 1 thread, in the step: the four masks 0.63-0.69 -> 0.40-0.43 ms).

Every operation is the unfused pair's, in the same order, so the results are the same bits as
F.relu(F.conv2d(...)) for forward and for every gradient (tests/test_conv_relu.py). nn.Sequential runs
[Conv2d | ConvTranspose2d, ReLU] pairs through these when neither module has forward hooks (nn/module.py).
The public functional API keeps PyTorch's signatures; these are gradcore's own.
"""
from __future__ import annotations

from .conv2d import Conv2d, conv2d_args
from .conv_transpose2d import ConvTranspose2d, conv_transpose2d_args

__all__ = []  # internal: gradcore.functional exports nothing from here


class Conv2dReLU(Conv2d):
    activation = "relu"


class ConvTranspose2dReLU(ConvTranspose2d):
    activation = "relu"


def conv2d_relu(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """relu(conv2d(x, weight, bias, ...)) as one node: F.conv2d's arguments and checks."""
    return Conv2dReLU.apply(*conv2d_args(x, weight, bias, stride, padding, dilation, groups))


def conv_transpose2d_relu(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1,
                          output_size=None):
    """relu(conv_transpose2d(x, weight, bias, ...)) as one node: F.conv_transpose2d's arguments and checks."""
    return ConvTranspose2dReLU.apply(*conv_transpose2d_args(x, weight, bias, stride, padding, output_padding, groups,
                                                            dilation, output_size))
