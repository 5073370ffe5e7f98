"""dropout and dropout2d, as torch.nn.functional's.

The keep-mask is drawn on the host by the Generator's numpy PCG64 (python/gradcore/random.py), as rand/randn are,
and copied to x's device: one seed gives the same mask on the CPU and on every CUDA device. An element is kept when
its uniform draw u in [0, 1) satisfies u >= p (probability 1 - p) and then scaled by 1 / (1 - p), so the expected
output equals the input; the backward pass multiplies by the same mask. dropout2d draws one value per channel of each
sample and zeroes whole (H, W) planes.
"""
from __future__ import annotations

import numpy as np

from .. import _core
from .._checks import real, tensor
from ..random import _gen
from ..tensor import Tensor
from . import elementwise as ew

__all__ = ["dropout", "dropout2d"]  # gradcore.functional exports these


def _check(input, p, name):
    tensor(input, "input")
    return real(p, "p", minimum=0.0, maximum=1.0)


def _apply_mask(input, p, mask_shape, generator):
    """input times a mask of mask_shape (broadcast over the rest) holding 0 or 1 / (1 - p)."""
    dtype = np.float32 if input.dtype == "float32" else np.float64
    if p == 1.0:
        scale = np.zeros(mask_shape, dtype)
    else:
        keep = _gen(generator).numpy.random(mask_shape) >= p
        # Built in input's dtype (1 / (1 - p) rounded once, as a float64 mask cast to it would be) and handed to
        # _core without another copy: the draw is most of the cost; the float64 mask and its cast were ~20% more.
        scale = keep.astype(dtype)
        scale *= dtype(1.0 / (1.0 - p))
    mask = _core.from_numpy(scale)
    if input.device != "cpu":
        mask = mask.to(input.device)
    return ew.mul(input, Tensor(mask))


def dropout(input, p=0.5, training=True, generator=None):
    """Zeroes each element with probability p and scales the rest by 1 / (1 - p) (training); returns input itself
    when not training, when p == 0 or when input is empty (PyTorch's rule). p == 1 gives zeros."""
    p = _check(input, p, "dropout")
    if not training or p == 0.0 or input.numel == 0:
        _gen(generator)  # still a bad generator argument is an error
        return input
    return _apply_mask(input, p, tuple(input.shape), generator)


def dropout2d(input, p=0.5, training=True, generator=None):
    """Channel dropout: zeroes whole channels of an (N, C, H, W) input (or of one (C, H, W) image) with probability
    p and scales the rest by 1 / (1 - p), in training; the identity otherwise."""
    p = _check(input, p, "dropout2d")
    if input.ndim not in (3, 4):
        raise ValueError(f"input: dropout2d expected a 3-d (C, H, W) or 4-d (N, C, H, W) input, got shape "
                         f"{input.shape}")
    if not training or p == 0.0 or input.numel == 0:
        _gen(generator)
        return input
    mask_shape = tuple(input.shape[:-2]) + (1, 1)
    return _apply_mask(input, p, mask_shape, generator)
