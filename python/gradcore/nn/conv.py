"""Conv2d and ConvTranspose2d modules with PyTorch's arguments and a selectable, seeded weight initialisation.

init= (bias always starts at zero):
  "he_normal" (default)  normal, std = sqrt(2 / fan)                        He et al. 2015, for ReLU networks
  "glorot_uniform"       uniform, limit = sqrt(6 / (fan_in + fan_out))       MATLAB's default
  "kaiming_uniform"      uniform, limit = 1 / sqrt(fan)                      PyTorch's default weight rule
The fan rule: fan = weight.shape[1] * kH * kW for both modules. For Conv2d, weight (C_out, C_in/groups, kH, kW),
that is the input fan C_in/groups * kH * kW. For ConvTranspose2d, weight (C_in, C_out/groups, kH, kW), it is
C_out/groups * kH * kW: the fan of the transposed conv's OUTPUT channels, which is PyTorch's convention and the
fan of the conv2d that the transposed conv is the adjoint of. Why: on the seeds' autoencoder (PyTorch, 4 seeds
each) He with this fan trained 4 of 4, He with the fan taken from the input channels collapsed on 3 of 4 (it halves
the signal's variance in a 64->32 decoder layer), and Glorot collapsed on 4 of 4.
tests/test_conv_modules.py checks the weight statistics and the signal propagation on several seeds.
"""
from __future__ import annotations

import math

from .. import functional as F
from .._checks import int_pair, integer, padding_form
from ..random import Generator
from ..tensor import zeros
from . import init as initializers
from .module import Module, Parameter

INITS = ("he_normal", "glorot_uniform", "kaiming_uniform")


def initialize_weight(weight, init, generator):
    """Fills weight in place by the named rule, with fan_in = weight.shape[1] * kH * kW (see the module docstring)."""
    fan_in, fan_out = initializers.fans(weight.shape)
    if init == "he_normal":
        initializers.he_normal_(weight, mode="fan_in", fan=(fan_in, fan_out), generator=generator)
    elif init == "glorot_uniform":
        initializers.glorot_uniform_(weight, fan=(fan_in, fan_out), generator=generator)
    elif init == "kaiming_uniform":  # PyTorch: kaiming_uniform_(a=sqrt(5)) -> limit sqrt(6 / (6 fan_in))
        initializers.he_uniform_(weight, mode="fan_in", negative_slope=math.sqrt(5.0), fan=(fan_in, fan_out),
                                 generator=generator)
    else:
        raise ValueError(f"init: expected one of {INITS}, got {init!r}")
    return weight


def _channels(in_channels, out_channels, groups):
    return (integer(in_channels, "in_channels", 1), integer(out_channels, "out_channels", 1),
            integer(groups, "groups", 1))


class _ConvNd(Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, weight_shape,
                 init, generator, device, dtype):
        super().__init__()
        if in_channels % groups:
            raise ValueError(f"in_channels: {in_channels} is not divisible by groups={groups}")
        if out_channels % groups:
            raise ValueError(f"out_channels: {out_channels} is not divisible by groups={groups}")
        self.in_channels, self.out_channels, self.groups = int(in_channels), int(out_channels), int(groups)
        self.kernel_size = int_pair(kernel_size, "kernel_size", 1)
        self.stride = int_pair(stride, "stride", 1)
        self.padding = padding_form(padding)
        self.dilation = int_pair(dilation, "dilation", 1)
        if generator is not None and not isinstance(generator, Generator):
            raise TypeError(f"generator: expected a gradcore.Generator or None, got {type(generator).__name__}")
        self.init = init
        self.weight = Parameter(zeros(*weight_shape, *self.kernel_size, dtype=dtype, device=device))
        initialize_weight(self.weight, init, generator)
        self.bias = Parameter(zeros(out_channels, dtype=dtype, device=device)) if bias else None

    def extra_repr(self):
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding!r}")
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        return text + f", init={self.init!r}"


class Conv2d(_ConvNd):
    """y = conv2d(x, weight) + bias, weight (out_channels, in_channels/groups, kH, kW).

    padding: int, (h, w), "valid" or "same" (out = ceil(in / stride), odd pixel at the bottom/right).
    init: "he_normal" (default), "glorot_uniform" or "kaiming_uniform", fan = in_channels/groups * kH * kW.
    generator: a gradcore.Generator for the initial weights (the default generator when None).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 device="cpu", dtype="float32", init="he_normal", generator=None):
        in_channels, out_channels, groups = _channels(in_channels, out_channels, groups)
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         (out_channels, in_channels // groups), init, generator, device, dtype)

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class ConvTranspose2d(_ConvNd):
    """y = conv_transpose2d(x, weight) + bias, weight (in_channels, out_channels/groups, kH, kW).

    padding: int, (h, w), "valid" or "same" (out = in * stride, odd pixel cropped at the bottom/right).
    output_padding: extra bottom/right rows and columns (< max(stride, dilation)); forward(x, output_size=...)
    picks it instead.
    init: "he_normal" (default), "glorot_uniform" or "kaiming_uniform", with fan = out_channels/groups * kH * kW
    (the output channels' fan, PyTorch's convention: see the module docstring for why).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, device="cpu", dtype="float32", init="he_normal", generator=None):
        in_channels, out_channels, groups = _channels(in_channels, out_channels, groups)
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         (in_channels, out_channels // groups), init, generator, device, dtype)
        self.output_padding = int_pair(output_padding, "output_padding", 0)

    def forward(self, x, output_size=None):
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding, self.output_padding,
                                  self.groups, self.dilation, output_size)
