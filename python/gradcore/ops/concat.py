"""cat, stack, split and unbind: joining tensors along an axis and cutting them apart (kernels: csrc/concat.h).

cat and split are each other's gradient; stack and unbind are the same two with a new axis of length 1 per piece
(reshapes, which are free). ConvLSTM uses them to join x and h along channels and to step through time.
"""
from __future__ import annotations

import numbers

from .. import _core
from ..autograd import Function
from ..tensor import Tensor


class Concat(Function):
    """out = cat(pieces, axis). d piece_k = the k-th slice of d out along the axis."""

    def forward(self, axis, *pieces):
        self.axis = axis
        self.sizes = [p.shape[axis] for p in pieces]
        return _core.concat(list(pieces), axis)

    def backward(self, g):
        grads = _core.split(g, self.sizes, self.axis)
        return (None, *[gk if need else None for gk, need in zip(grads, self.needs_input_grad[1:])])


class Split(Function):
    """pieces = split(x, sizes, axis). d x = cat of the pieces' gradients (zeros for pieces left unused)."""

    def forward(self, x, sizes, axis):
        self.axis = axis
        return tuple(_core.split(x, list(sizes), axis))

    def backward(self, *grads):
        return _core.concat(list(grads), self.axis), None, None


def _check_tensors(tensors, name):
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{name}: expected a list or tuple of gradcore.Tensors, got {type(tensors).__name__}")
    if not tensors:
        raise ValueError(f"{name}: expected at least one tensor")
    for k, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name}[{k}]: expected a gradcore.Tensor, got {type(t).__name__}")


def _dim(dim, ndim, name="dim"):
    if not isinstance(dim, numbers.Integral) or isinstance(dim, bool):
        raise TypeError(f"{name}: expected an int, got {dim!r}")
    if not -ndim <= dim < ndim:
        raise ValueError(f"{name}: {dim!r} is out of range for a tensor of {ndim} dimensions")
    return int(dim) % ndim


def _check_x(x):
    if not isinstance(x, Tensor):
        raise TypeError(f"x: expected a gradcore.Tensor, got {type(x).__name__}")
    if x.ndim == 0:
        raise ValueError("x: a zero-dimensional tensor cannot be cut along a dimension")


def cat(tensors, dim=0):
    """Concatenates tensors of one shape outside `dim` along `dim` (torch.cat)."""
    _check_tensors(tensors, "tensors")
    return Concat.apply(_dim(dim, tensors[0].ndim), *tensors)


def stack(tensors, dim=0):
    """Joins tensors of one shape along a new dimension `dim` (torch.stack)."""
    _check_tensors(tensors, "tensors")
    shape = tensors[0].shape
    for k, t in enumerate(tensors):
        if t.shape != shape:
            raise ValueError(f"tensors[{k}]: shape {t.shape} differs from tensors[0]'s shape {shape}")
    dim = _dim(dim, len(shape) + 1)
    expanded = [t.reshape(*shape[:dim], 1, *shape[dim:]) for t in tensors]
    return Concat.apply(dim, *expanded)


def split(x, split_size_or_sections, dim=0):
    """Pieces of x along `dim`: of length split_size_or_sections (the last may be shorter), or of the listed lengths
    (torch.split). Returns a tuple."""
    _check_x(x)
    dim = _dim(dim, x.ndim)
    length = x.shape[dim]
    if isinstance(split_size_or_sections, numbers.Integral) and not isinstance(split_size_or_sections, bool):
        size = int(split_size_or_sections)
        if size <= 0:
            raise ValueError(f"split_size_or_sections: expected a positive length, got {size}")
        sizes = [min(size, length - start) for start in range(0, length, size)] or [0]
    else:
        if not isinstance(split_size_or_sections, (list, tuple)) or not all(
                isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in split_size_or_sections):
            raise TypeError(f"split_size_or_sections: expected an int or a list of ints, got "
                            f"{split_size_or_sections!r}")
        sizes = [int(s) for s in split_size_or_sections]
        if sum(sizes) != length or any(s < 0 for s in sizes):
            raise ValueError(f"split_size_or_sections: lengths {sizes} must be non-negative and sum to "
                             f"x's length {length} along dim {dim}")
    return Split.apply(x, tuple(sizes), dim)  # forward returns a tuple, so apply does too


def unbind(x, dim=0):
    """The slices of x along `dim`, each without that dimension (torch.unbind). Returns a tuple."""
    _check_x(x)
    dim = _dim(dim, x.ndim)
    shape = x.shape
    rest = (*shape[:dim], *shape[dim + 1:])
    return tuple(p.reshape(*rest) for p in Split.apply(x, (1,) * shape[dim], dim))
