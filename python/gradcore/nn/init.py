"""Weight initializers, in place, drawing from a seeded gradcore.random.Generator.

fan_in / fan_out of a weight of shape (a, b, *kernel) are b * prod(kernel) and a * prod(kernel) (PyTorch's
rule); layers whose weight layout differs (transposed convolutions) pass the fan they mean explicitly.
  glorot (Xavier): var = 2 / (fan_in + fan_out)      he (Kaiming) for ReLU: var = 2 / fan
  uniform variants draw from [-limit, limit] with limit = sqrt(3 var).
"""
from __future__ import annotations

import math

import numpy as np

from .._checks import real
from ..random import _gen
from ..tensor import Tensor, tensor as make_tensor  # "tensor" names the argument below


def fans(shape):
    """(fan_in, fan_out) of a weight shaped (out, in, *kernel)."""
    if len(shape) < 2:
        raise ValueError(f"fans: need a weight of at least 2 dimensions, got shape {tuple(shape)}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def _rng(generator):
    return _gen(generator).numpy


def _checked(tensor, **numbers):
    """Checks the tensor and the named real-valued arguments (TypeError naming the one of the wrong kind)."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"tensor: expected a gradcore.Tensor, got {type(tensor).__name__}")
    for name, value in numbers.items():
        real(value, name)


def _assign(tensor, values):
    if not isinstance(tensor, Tensor):
        raise TypeError(f"tensor: expected a gradcore.Tensor, got {type(tensor).__name__}")
    tensor.copy_(_host(values, tensor))
    return tensor


def _host(values, like):
    return make_tensor(np.asarray(values).reshape(like.shape), dtype=like.dtype)


def zeros_(tensor):
    return tensor.fill_(0.0)


def ones_(tensor):
    return tensor.fill_(1.0)


def constant_(tensor, value):
    return tensor.fill_(value)


def glorot_uniform_(tensor, gain=1.0, fan=None, generator=None):
    _checked(tensor, gain=gain)
    fan_in, fan_out = fan or fans(tensor.shape)
    limit = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return _assign(tensor, _rng(generator).uniform(-limit, limit, tensor.shape))


def glorot_normal_(tensor, gain=1.0, fan=None, generator=None):
    _checked(tensor, gain=gain)
    fan_in, fan_out = fan or fans(tensor.shape)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return _assign(tensor, _rng(generator).standard_normal(tensor.shape) * std)


def _fan(tensor, mode, fan):
    fan_in, fan_out = fans(tensor.shape) if fan is None else fan
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode: expected \"fan_in\" or \"fan_out\", got {mode!r}")
    return fan_in if mode == "fan_in" else fan_out


def he_normal_(tensor, mode="fan_in", negative_slope=0.0, fan=None, generator=None):
    """Kaiming normal for (leaky) ReLU: std = sqrt(2 / ((1 + a^2) fan))."""
    _checked(tensor, negative_slope=negative_slope)
    std = math.sqrt(2.0 / ((1 + negative_slope ** 2) * _fan(tensor, mode, fan)))
    return _assign(tensor, _rng(generator).standard_normal(tensor.shape) * std)


def he_uniform_(tensor, mode="fan_in", negative_slope=0.0, fan=None, generator=None):
    _checked(tensor, negative_slope=negative_slope)
    limit = math.sqrt(6.0 / ((1 + negative_slope ** 2) * _fan(tensor, mode, fan)))
    return _assign(tensor, _rng(generator).uniform(-limit, limit, tensor.shape))


def uniform_(tensor, low=0.0, high=1.0, generator=None):
    _checked(tensor, low=low, high=high)
    if not low <= high:
        raise ValueError(f"high: expected a number >= low ({low!r}), got {high!r}")
    return _assign(tensor, _rng(generator).uniform(low, high, tensor.shape))


def normal_(tensor, mean=0.0, std=1.0, generator=None):
    _checked(tensor, mean=mean, std=std)
    real(std, "std", minimum=0.0)
    return _assign(tensor, mean + std * _rng(generator).standard_normal(tensor.shape))


def orthogonal_(tensor, gain=1.0, generator=None):
    """Rows (or columns) of the weight flattened to (shape[0], rest) are orthonormal, times gain (Saxe et al.)."""
    _checked(tensor, gain=gain)
    if tensor.ndim < 2:
        raise ValueError(f"tensor: expected at least 2 dimensions (rows, ...), got shape {tensor.shape}")
    rows = tensor.shape[0]
    cols = int(np.prod(tensor.shape[1:]))
    a = _rng(generator).standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))  # a uniform draw over orthogonal matrices
    if rows < cols:
        q = q.T
    return _assign(tensor, gain * q[:rows, :cols])
