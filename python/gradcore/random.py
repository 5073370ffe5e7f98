"""Seeded random numbers. Values are drawn on the host by numpy's PCG64 and copied to the device, so a seed gives
the same numbers on every device and platform."""
from __future__ import annotations

import numpy as np

from ._checks import integer
from .tensor import _float_dtype_name, _shape_arg, tensor


class Generator:
    """A seeded source of random tensors; pass one as `generator=` wherever randomness is drawn."""

    def __init__(self, seed=0):
        self.manual_seed(seed)

    def manual_seed(self, seed):
        self.seed = integer(seed, "seed", 0)
        self.numpy = np.random.default_rng(self.seed)
        return self


default_generator = Generator(0)


def manual_seed(seed):
    """Reseeds the default generator (used when no generator= is given)."""
    default_generator.manual_seed(seed)
    return default_generator


def _gen(generator):
    if generator is None:
        return default_generator
    if not isinstance(generator, Generator):
        raise TypeError(f"generator: expected a gradcore.Generator or None, got {type(generator).__name__}")
    return generator


def rand(*shape, dtype="float32", device="cpu", generator=None, requires_grad=False):
    """Uniform on [0, 1)."""
    values = _gen(generator).numpy.random(_shape_arg(shape))
    return tensor(values, dtype=_float_dtype_name(dtype), device=device, requires_grad=requires_grad)


def randn(*shape, dtype="float32", device="cpu", generator=None, requires_grad=False):
    """Standard normal."""
    values = _gen(generator).numpy.standard_normal(_shape_arg(shape))
    return tensor(values, dtype=_float_dtype_name(dtype), device=device, requires_grad=requires_grad)
