"""Linear: y = x weight^T + bias, PyTorch's nn.Linear, with a selectable, seeded initialisation.

init= (fan_in = in_features, fan_out = out_features):
  "kaiming_uniform" (default)  PyTorch's nn.Linear exactly: weight uniform(-1/sqrt(fan_in), 1/sqrt(fan_in))
                               (kaiming_uniform_ with a=sqrt(5)) and the bias uniform over the same range
  "he_normal"                  normal, std = sqrt(2 / fan_in), bias zero     He et al. 2015, for ReLU networks
  "glorot_uniform"             uniform, limit = sqrt(6 / (fan_in + fan_out)), bias zero     MATLAB's default
Why PyTorch's rule is the default here, although our convolutions default to He normal: the networks people bring
to a dense layer (the seeds' 784-200-784 sigmoid autoencoder, a small ReLU regressor) were written and tuned in
PyTorch with its nn.Linear, so its initialisation is what reproduces their results; He normal stays one argument
away for deep ReLU stacks. The conv modules' choice was measured on their conv autoencoder (see conv.py), which says
nothing about dense layers. The same names as the conv modules, so a network switches rule in one place.
generator: a gradcore.Generator (the default generator when None), drawn weight first, then bias.
"""
from __future__ import annotations

import math

from .. import functional as F
from .._checks import integer
from ..random import Generator
from ..tensor import zeros
from . import init as initializers
from .module import Module, Parameter

INITS = ("kaiming_uniform", "he_normal", "glorot_uniform")


class Linear(Module):
    """y = x weight^T + bias; x (..., in_features) -> y (..., out_features), weight (out_features, in_features)."""

    def __init__(self, in_features, out_features, bias=True, device="cpu", dtype="float32", init="kaiming_uniform",
                 generator=None):
        super().__init__()
        self.in_features = integer(in_features, "in_features", 0)
        self.out_features = integer(out_features, "out_features", 0)
        if not isinstance(bias, bool):
            raise TypeError(f"bias: expected True or False, got {bias!r}")
        if generator is not None and not isinstance(generator, Generator):
            raise TypeError(f"generator: expected a gradcore.Generator or None, got {type(generator).__name__}")
        if init not in INITS:
            raise ValueError(f"init: expected one of {INITS}, got {init!r}")
        self.init = init
        self.weight = Parameter(zeros(self.out_features, self.in_features, dtype=dtype, device=device))
        self.bias = Parameter(zeros(self.out_features, dtype=dtype, device=device)) if bias else None
        self.reset_parameters(generator)

    def reset_parameters(self, generator=None):
        """Draws the weight (and the bias, for "kaiming_uniform") again by the module's init rule."""
        fan_in, fan_out = self.in_features, self.out_features
        if fan_in == 0 or fan_out == 0:  # nothing to draw (PyTorch warns and leaves the zeros)
            return
        fan = (fan_in, fan_out)
        if self.init == "kaiming_uniform":  # limit sqrt(6 / ((1 + 5) fan_in)) = 1 / sqrt(fan_in)
            initializers.he_uniform_(self.weight, mode="fan_in", negative_slope=math.sqrt(5.0), fan=fan,
                                     generator=generator)
            if self.bias is not None:
                bound = 1.0 / math.sqrt(fan_in)
                initializers.uniform_(self.bias, -bound, bound, generator=generator)
        elif self.init == "he_normal":
            initializers.he_normal_(self.weight, mode="fan_in", fan=fan, generator=generator)
        else:
            initializers.glorot_uniform_(self.weight, fan=fan, generator=generator)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
                f"init={self.init!r}")
