"""Indexing: x[i], x[a:b:s], x[..., None], their combinations, and one integer index array (kernels:
csrc/strided_copy.h for the basic part).

x[key] follows PyTorch: integers select (dropping the dimension; negative ones count from the end; out of range is
an IndexError), slices keep every s-th element of a clamped range (s > 0), None inserts a dimension of length 1,
Ellipsis stands for the dimensions not named. The basic part is one strided view (ops/views.py): a reshape when it
is all of x in order, else one strided copy, whose gradient writes back into zeros.
"""
from __future__ import annotations

import numbers

import numpy as np

from ..tensor import Tensor
from .views import contiguous_strides, strided_view

__all__ = []  # gradcore.functional exports these


def _unsupported(item):
    return TypeError(f"index: only integers, slices (:), None, Ellipsis (...) and integer index arrays are valid "
                     f"indices, got {item!r} ({type(item).__name__})")


def _classify(item):
    """'int', 'slice', 'none', 'ellipsis', or raises TypeError for what we do not index with."""
    if item is None:
        return "none"
    if item is Ellipsis:
        return "ellipsis"
    if isinstance(item, slice):
        return "slice"
    if isinstance(item, (bool, np.bool_)):
        raise TypeError(f"index: boolean indices (masks) are not supported, got {item!r}")
    if isinstance(item, numbers.Integral):
        return "int"
    raise _unsupported(item)


def _expand_ellipsis(items, ndim):
    kinds = [_classify(item) for item in items]
    if kinds.count("ellipsis") > 1:
        raise IndexError("index: an index can only have a single ellipsis ('...')")
    used = sum(kind not in ("none", "ellipsis") for kind in kinds)
    if used > ndim:
        raise IndexError(f"index: too many indices for a tensor of dimension {ndim} ({used} given)")
    if "ellipsis" in kinds:
        at = kinds.index("ellipsis")
        fill = ndim - used
        items = items[:at] + (slice(None),) * fill + items[at + 1:]
        kinds = kinds[:at] + ["slice"] * fill + kinds[at + 1:]
    return list(items), kinds


def _basic_view(x, items, kinds):
    """The strided view that integers, slices and None describe: (shape, strides, offset) of x's elements."""
    x_strides = contiguous_strides(x.shape)
    shape, strides, offset, d = [], [], 0, 0
    for item, kind in zip(items, kinds):
        if kind == "none":
            shape.append(1)
            strides.append(0)
            continue
        n, stride = x.shape[d], x_strides[d]
        if kind == "int":
            i = int(item)
            if not -n <= i < n:
                raise IndexError(f"index: {i} is out of bounds for dimension {d} with size {n}")
            offset += (i % n) * stride
        else:
            if item.step is not None and _slice_step(item.step) <= 0:
                raise ValueError(f"index: slice step must be greater than zero, got {item.step}")
            start, stop, step = item.indices(n)  # clamps like PyTorch and numpy; TypeError for non-integers
            length = len(range(start, stop, step))
            shape.append(length)
            strides.append(step * stride)
            if length:
                offset += start * stride
        d += 1
    for n, stride in zip(x.shape[d:], x_strides[d:]):  # dimensions not named are kept whole
        shape.append(n)
        strides.append(stride)
    return tuple(shape), tuple(strides), offset


def _slice_step(step):
    if isinstance(step, (bool, np.bool_)) or not isinstance(step, numbers.Integral):
        raise TypeError(f"index: slice indices must be integers or None, got step {step!r}")
    return int(step)


def getitem(x, key):
    """x[key] (torch.Tensor.__getitem__): see the module's docstring."""
    items = key if isinstance(key, tuple) else (key,)
    items, kinds = _expand_ellipsis(items, x.ndim)
    shape, strides, offset = _basic_view(x, items, kinds)
    return strided_view(x, shape, strides, offset)


def _iter(x):
    """for row in x: the slices x[0], x[1], ... along the first dimension (PyTorch)."""
    if x.ndim == 0:
        raise TypeError("iteration over a 0-d tensor")
    return (getitem(x, i) for i in range(x.shape[0]))


TENSOR_METHODS = {"__getitem__": getitem, "__iter__": _iter}  # attached to Tensor by gradcore.ops
