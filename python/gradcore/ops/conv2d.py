"""conv2d (kernels: csrc/cpu/conv2d.cpp, csrc/cuda/conv2d.cu; the maths is in csrc/conv2d.h).

Layouts are PyTorch's: x (N, C_in, H, W), weight (C_out, C_in/groups, kH, kW), bias (C_out,).
padding="same" gives out = ceil(in / stride) for every stride (MATLAB's Padding="same" and TensorFlow's rule): the
total padding max((out - 1) * stride + dilation * (k - 1) + 1 - in, 0) is split evenly, with the odd extra pixel at
the bottom/right. PyTorch's "same" accepts stride 1 only; for stride 1 both agree.
"""
from __future__ import annotations

import functools

from .. import _core
from .._checks import int_pair as pair, integer, padding_form, tensor
from ..autograd import Function

__all__ = ["conv2d"]  # gradcore.functional exports these


def same_padding(size, kernel, stride, dilation):
    """(before, after) padding giving ceil(size / stride) outputs; the odd pixel goes after (bottom/right)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    return total // 2, total - total // 2


def conv2d_padding(padding, in_hw, kernel_hw, stride, dilation):
    """(top, bottom, left, right) from padding = int | (h, w) | "valid" | "same" (as padding_form gives it)."""
    padding = padding_form(padding)
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        return (same_padding(in_hw[0], kernel_hw[0], stride[0], dilation[0])
                + same_padding(in_hw[1], kernel_hw[1], stride[1], dilation[1]))
    return (padding[0], padding[0], padding[1], padding[1])


def bias_grad(g):
    """db[c] = sum over N, H, W of g[:, c]."""
    return _core.sum(g, [0, 2, 3])


class Conv2d(Function):
    fresh_gradients = True  # backward's gradients are new Arrays, kept nowhere else (autograd.Function)
    activation = "none"  # the fused conv2d + ReLU (ops/conv_relu.py) stores relu(y) and saves it

    def forward(self, x, weight, bias, stride, padding, dilation, groups):
        self.args = (stride, padding, dilation, groups)
        y = _core.conv2d_forward(x, weight, bias, stride, padding, dilation, groups, self.activation)
        if self.activation == "relu":  # backward's mask: y > 0 exactly where the pre-activation is (NaN included)
            self.save_for_backward(x, weight, y)
        else:
            self.save_for_backward(x, weight)
        return y

    def backward(self, g):
        saved = self.saved
        x, weight = saved[0], saved[1]
        need_x, need_w, need_b = self.needs_input_grad[:3]
        gb = None
        if self.activation == "relu":  # the ReLU's mask on g, and the bias gradient in the same pass; over g itself
            g, gb = _core.conv_relu_backward(g, saved[2], need_b, self.grad_owned)  # when only we hold it
        gx = _core.conv2d_backward_input(g, weight, x.shape[2:], *self.args) if need_x else None
        gw = _core.conv2d_backward_weight(x, g, weight.shape[2:], *self.args) if need_w else None
        if need_b and gb is None:
            gb = bias_grad(g)
        return gx, gw, gb, None, None, None, None


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D cross-correlation of x (N, C_in, H, W) with weight (C_out, C_in/groups, kH, kW), plus bias (C_out,).

    padding: int, (h, w), "valid" (none) or "same" (out = ceil(in / stride); odd pixel at the bottom/right).
    Output size: floor((in + pad_before + pad_after - dilation * (k - 1) - 1) / stride) + 1.
    """
    return Conv2d.apply(*conv2d_args(x, weight, bias, stride, padding, dilation, groups))


def conv2d_args(x, weight, bias, stride, padding, dilation, groups):
    """conv2d's arguments checked and resolved to (x, weight, bias, stride, (top, bottom, left, right), dilation,
    groups), the arguments of Conv2d.apply (and of the fused conv + ReLU's, ops/conv_relu.py)."""
    tensor(x, "x")
    tensor(weight, "weight")
    tensor(bias, "bias", optional=True)
    stride = pair(stride, "stride", 1)
    dilation = pair(dilation, "dilation", 1)
    groups = integer(groups, "groups", 1)
    padding = padding_form(padding)  # its form is checked whatever the shapes
    if type(padding) is tuple:  # (h, w): no shapes needed
        pads = (padding[0], padding[0], padding[1], padding[1])
    else:
        pads = _named_padding(padding, x._data.shape, weight._data.shape, stride, dilation)
    return x, weight, bias, stride, pads, dilation, int(groups)


@functools.lru_cache(maxsize=1024)
def _named_padding(padding, x_shape, weight_shape, stride, dilation):
    """(top, bottom, left, right) for padding "valid" or "same", remembered: a network asks with the same shapes at
    every step. (0, 0, 0, 0) when x or weight is not 4-d, for the binding then raises naming it."""
    if len(x_shape) != 4 or len(weight_shape) != 4:
        return (0, 0, 0, 0)
    return conv2d_padding(padding, x_shape[2:], weight_shape[2:], stride, dilation)
