"""cat, stack, split and unbind: joining tensors along an axis and cutting them apart (kernels: csrc/concat.h).

cat and split are each other's gradient; stack and unbind are the same two with a new axis of length 1 per piece
(reshapes, which are free). ConvLSTM uses them to join x and h along channels and to step through time.
"""
from __future__ import annotations

import numbers

from .. import _core
from .._checks import dim as dim_index, tensor, tensor_sequence
from ..autograd import Function

__all__ = ["cat", "split", "stack", "unbind"]  # gradcore.functional exports these


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


def _check_x(x):
    tensor(x, "x")
    if x.ndim == 0:
        raise ValueError("x: a zero-dimensional tensor cannot be cut along a dimension")


def cat(tensors, dim=0):
    """Concatenates tensors of one shape outside `dim` along `dim` (torch.cat)."""
    tensors = tensor_sequence(tensors, "tensors")
    return Concat.apply(dim_index(dim, tensors[0].ndim), *tensors)


def stack(tensors, dim=0):
    """Joins tensors of one shape along a new dimension `dim` (torch.stack)."""
    tensors = tensor_sequence(tensors, "tensors")
    shape = tensors[0].shape
    for k, t in enumerate(tensors):
        if t.shape != shape:
            raise ValueError(f"tensors[{k}]: shape {t.shape} differs from tensors[0]'s shape {shape}")
    dim = dim_index(dim, len(shape) + 1)
    expanded = [t.reshape(*shape[:dim], 1, *shape[dim:]) for t in tensors]
    return Concat.apply(dim, *expanded)


def split(x, split_size_or_sections, dim=0):
    """Pieces of x along `dim`: of length split_size_or_sections (the last may be shorter), or of the listed lengths
    (torch.split). Returns a tuple."""
    _check_x(x)
    dim = dim_index(dim, x.ndim)
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
    dim = dim_index(dim, x.ndim)
    shape = x.shape
    rest = (*shape[:dim], *shape[dim + 1:])
    return tuple(p.reshape(*rest) for p in Split.apply(x, (1,) * shape[dim], dim))
