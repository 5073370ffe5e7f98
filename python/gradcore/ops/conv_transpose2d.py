"""conv_transpose2d: the adjoint of conv2d, built from conv2d's three kernels (no kernels of its own).

With weight (C_in, C_out/groups, kH, kW) read as a conv2d weight mapping C_out channels to C_in:
  forward         y  = conv2d_backward_input(x, weight)   (the conv2d whose output size is x's)
  dL/dx           gx = conv2d_forward(gy, weight)
  dL/dweight      gw = conv2d_backward_weight(gy, x)      (gy plays conv2d's input, x its output gradient)
  dL/dbias        sum of gy over N, H, W
Output size: (in - 1) * stride - pad_before - pad_after + dilation * (k - 1) + output_padding + 1, with
0 <= output_padding < max(stride, dilation) (PyTorch's bound): the extra rows/columns at the bottom/right, which
hold what the padding cropped there (zeros past the last tap) plus the bias. Up to stride - 1 of them the adjoint
view gives directly; output_padding >= stride (possible when dilation > stride) makes the conv2d whose adjoint this
is one output row longer per stride, so x is read as zero-padded at the bottom/right by output_padding // stride
rows (those rows add nothing) and gx drops them again.
padding="same" gives out = in * stride (MATLAB's Cropping="same"): the full output is cropped by
dilation * (k - 1) + 1 - stride, the odd pixel at the bottom/right; when that is negative nothing is cropped and the
missing rows come from output_padding. output_size=(H_out, W_out) picks output_padding, and raises when the size
cannot be reached.
"""
from __future__ import annotations

import functools
import numbers

from .. import _core
from .._checks import INT64_MAX, int_pair as pair, integer, padding_form, tensor
from ..autograd import Function
from .conv2d import bias_grad

__all__ = ["conv_transpose2d"]  # gradcore.functional exports these


def same_cropping(kernel, stride, dilation):
    """((before, after), output_padding) giving out = in * stride."""
    total = dilation * (kernel - 1) + 1 - stride
    if total >= 0:
        return (total // 2, total - total // 2), 0
    return (0, 0), -total


def _zero_pad_end(x, extra):
    """x (N, C, H, W) with extra[0] zero rows below and extra[1] zero columns to the right."""
    if not (extra[0] or extra[1]):  # the usual case
        return x
    for axis, count in ((2, extra[0]), (3, extra[1])):
        if count:
            shape = list(x.shape)
            shape[axis] = count
            x = _core.concat([x, _core.zeros(shape, x.dtype, x.device)], axis)
    return x


class ConvTranspose2d(Function):
    fresh_gradients = True  # backward's gradients are new Arrays, kept nowhere else (autograd.Function)
    activation = "none"  # the fused conv_transpose2d + ReLU (ops/conv_relu.py) stores relu(y) and saves it

    def forward(self, x, weight, bias, out_size, stride, padding, dilation, groups, extra=(0, 0)):
        self.args = (stride, padding, dilation, groups)
        self.x_size, self.extra = x.shape[2:], extra
        x = _zero_pad_end(x, extra)
        y = _core.conv_transpose2d_forward(x, weight, bias, out_size, stride, padding, dilation, groups,
                                           self.activation)
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
        gx = _core.conv2d_forward(g, weight, None, *self.args) if need_x else None
        if need_x and self.extra != (0, 0):  # the zero rows/columns read past x's end have no gradient of their own
            gx = _core.split(gx, [self.x_size[0], self.extra[0]], 2)[0] if self.extra[0] else gx
            gx = _core.split(gx, [self.x_size[1], self.extra[1]], 3)[0] if self.extra[1] else gx
        gw = _core.conv2d_backward_weight(g, x, weight.shape[2:], *self.args) if need_w else None
        if need_b and gb is None:
            gb = bias_grad(g)
        return gx, gw, gb, None, None, None, None, None, None


def _output_size(output_size):
    if isinstance(output_size, (tuple, list)) and len(output_size) in (2, 4) and all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in output_size):
        return tuple(int(v) for v in output_size[-2:])
    raise TypeError(f"output_size: expected (H_out, W_out) or a 4-d shape of ints, got {output_size!r}")


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1,
                     output_size=None):
    """Transposed 2-D convolution of x (N, C_in, H, W) with weight (C_in, C_out/groups, kH, kW), plus bias (C_out,).

    padding: int, (h, w), "valid" (none) or "same" (out = in * stride; odd pixel cropped at the bottom/right).
    output_padding: extra rows/columns at the bottom/right, each < max(stride, dilation) as in PyTorch.
    output_size: (H_out, W_out) to pick output_padding instead (a ValueError names the reachable range when the
    size cannot be reached).
    """
    return ConvTranspose2d.apply(*conv_transpose2d_args(x, weight, bias, stride, padding, output_padding, groups,
                                                        dilation, output_size))


def conv_transpose2d_args(x, weight, bias, stride, padding, output_padding, groups, dilation, output_size):
    """conv_transpose2d's arguments checked and resolved to the arguments of ConvTranspose2d.apply (and of the fused
    conv_transpose2d + ReLU's, ops/conv_relu.py)."""
    tensor(x, "x")
    tensor(weight, "weight")
    tensor(bias, "bias", optional=True)
    stride = pair(stride, "stride", 1)
    dilation = pair(dilation, "dilation", 1)
    groups = integer(groups, "groups", 1)
    padding = padding_form(padding)
    op_h, op_w = pair(output_padding, "output_padding", 0)
    if output_size is not None:
        output_size = _output_size(output_size)
    geometry = _geometry(x._data.shape, weight._data.shape, stride, padding, (op_h, op_w), dilation, output_size)
    if geometry is None:  # not 4-d: the binding raises naming the argument
        return x, weight, bias, (1, 1), stride, (0, 0, 0, 0), dilation, groups
    out, pads, extra = geometry
    return x, weight, bias, out, stride, pads, dilation, int(groups), extra


@functools.lru_cache(maxsize=1024)
def _geometry(x_shape, w_shape, stride, padding, output_padding, dilation, output_size):
    """(output size, (top, bottom, left, right), extra zero rows and columns of x) from the checked arguments, or None
    when x or weight is not 4-d; raises for a size that cannot be reached. Remembered: a network asks with the same
    shapes at every step (a call that raises is not remembered)."""
    if len(x_shape) != 4 or len(w_shape) != 4:
        return None
    op_h, op_w = output_padding
    kernel = w_shape[2:]
    if padding == "same":
        if (op_h, op_w) != (0, 0):
            raise ValueError("output_padding: must be 0 with padding=\"same\" (which sets it)")
        (top, bottom), op_h = same_cropping(kernel[0], stride[0], dilation[0])
        (left, right), op_w = same_cropping(kernel[1], stride[1], dilation[1])
    elif padding == "valid":
        top = bottom = left = right = 0
    else:
        top = bottom = padding[0]
        left = right = padding[1]
    base = [(x_shape[2] - 1) * stride[0] - top - bottom + dilation[0] * (kernel[0] - 1) + 1,
            (x_shape[3] - 1) * stride[1] - left - right + dilation[1] * (kernel[1] - 1) + 1]
    if output_size is not None:
        wanted = output_size
        for axis in range(2):
            if not base[axis] <= wanted[axis] < base[axis] + stride[axis]:
                raise ValueError(
                    f"output_size: {wanted} cannot be reached: dimension {axis} can be "
                    f"{base[axis]} to {base[axis] + stride[axis] - 1} for this input, stride, padding and kernel")
        op_h, op_w = wanted[0] - base[0], wanted[1] - base[1]
    for value, s, d in ((op_h, stride[0], dilation[0]), (op_w, stride[1], dilation[1])):
        if value >= max(s, d):
            raise ValueError(f"output_padding: expected values smaller than stride {stride} or dilation {dilation} "
                             f"(whichever is larger, per dimension), got ({op_h}, {op_w})")
    out = (base[0] + op_h, base[1] + op_w)
    if max(out) > INT64_MAX:
        raise ValueError(f"stride, padding, dilation: the output size {out} does not fit 64 bits")
    if min(out) < 1:
        raise ValueError(f"padding: the output size {out} is not positive for input {x_shape[2:]}, kernel {kernel}, "
                         f"stride {stride} and dilation {dilation}")
    return out, (top, bottom, left, right), (op_h // stride[0], op_w // stride[1])
