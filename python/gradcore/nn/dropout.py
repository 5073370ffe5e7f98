"""Dropout modules: active in training mode, the identity after eval() (Module.train/eval)."""
from __future__ import annotations

from .. import functional as F
from .._checks import real
from ..random import _gen
from .module import Module


class _DropoutNd(Module):
    def __init__(self, p=0.5, generator=None):
        super().__init__()
        self.p = real(p, "p", minimum=0.0, maximum=1.0)
        self.generator = None if generator is None else _gen(generator)  # None: gradcore's default generator

    def extra_repr(self):
        return f"p={self.p}"


class Dropout(_DropoutNd):
    """Zeroes each element with probability p in training and scales the rest by 1 / (1 - p)."""

    def forward(self, x):
        return F.dropout(x, self.p, self.training, self.generator)


class Dropout2d(_DropoutNd):
    """Zeroes whole channels of (N, C, H, W) (or (C, H, W)) inputs with probability p in training."""

    def forward(self, x):
        return F.dropout2d(x, self.p, self.training, self.generator)
