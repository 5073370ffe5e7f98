"""sum, mean and reshape (kernels: csrc/cpu/reduce.cpp, csrc/cuda/reduce.cu)."""
from __future__ import annotations

import numbers

from .. import _core
from ..autograd import Function
from .._checks import ANY_DTYPE, tensor

__all__ = ["mean", "reshape", "sum"]  # gradcore.functional exports these

B = _core.BinaryOp


def _axes(axis, ndim):
    if axis is None:
        return list(range(ndim))
    if isinstance(axis, numbers.Integral) and not isinstance(axis, bool):
        axes = [axis]
    elif isinstance(axis, (tuple, list)):
        axes = list(axis)
    else:
        raise TypeError(f"axis: expected None, an int or a tuple of ints, got {axis!r}")
    out = []
    for a in axes:
        if not isinstance(a, numbers.Integral) or isinstance(a, bool):
            raise TypeError(f"axis: expected ints, got {a!r} in {axis!r}")
        if not -ndim <= a < ndim:
            raise ValueError(f"axis: {a!r} is out of range for a tensor of {ndim} dimensions")
        out.append(int(a) % ndim if ndim else 0)
    if len(set(out)) != len(out):
        raise ValueError(f"axis: expected each dimension once, got {axis!r}")
    return sorted(out)


class Sum(Function):
    """y = sum over axes (times `scale`: 1 for sum, 1/R for mean). dL/dx = broadcast of dL/dy times scale."""

    def forward(self, x, axes, keepdims, scale):
        self.x_shape, self.scale = x.shape, scale
        self.kept_shape = [1 if i in axes else d for i, d in enumerate(x.shape)]
        y = _core.sum(x, axes)
        if scale != 1.0:
            y = _core.unary(y, _core.UnaryOp.affine, scale, 0.0, out=y)
        return y.reshape(self.kept_shape) if keepdims else y

    def backward(self, g):
        g = g.reshape(self.kept_shape)
        ones = _core.full(list(self.x_shape), self.scale, g.dtype, g.device)
        return _core.binary(ones, g, B.mul), None, None, None


class Reshape(Function):
    def forward(self, x, shape):
        self.x_shape = x.shape
        return x.reshape(list(shape))

    def backward(self, g):
        return g.reshape(list(self.x_shape)), None


def _check(x):
    tensor(x, "x")


def sum(x, axis=None, keepdims=False):
    """The sum over `axis` (all by default): float32/float64 keep their dtype (accumulated in double); int64 and
    bool sum into int64, as PyTorch ((a == b).sum() counts the equal elements)."""
    tensor(x, "x", dtypes=ANY_DTYPE)
    return Sum.apply(x, _axes(axis, x.ndim), bool(keepdims), 1.0)


def mean(x, axis=None, keepdims=False):
    _check(x)
    axes = _axes(axis, x.ndim)
    count = 1
    for a in axes:
        count *= x.shape[a]
    if count == 0:
        raise ValueError(f"mean: the reduced axes of shape {x.shape} hold no elements")
    return Sum.apply(x, axes, bool(keepdims), 1.0 / count)


def reshape(x, shape):
    tensor(x, "x", dtypes=ANY_DTYPE)
    for d in shape:  # int(3.9) would truncate to 3
        if not isinstance(d, numbers.Integral) or isinstance(d, bool):
            raise TypeError(f"shape: expected integers (or -1 for one inferred dimension), got {tuple(shape)!r}")
        if not -2**63 <= d < 2**63:
            raise ValueError(f"shape: expected dimensions below 2**63, got {tuple(shape)!r}")
    return Reshape.apply(x, tuple(int(d) for d in shape))


def _reshape_method(self, *shape):
    """x.reshape(2, 3) or x.reshape((2, 3)); one dimension may be -1 (inferred)."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return reshape(self, shape)


TENSOR_METHODS = {"sum": sum, "mean": mean, "reshape": _reshape_method, "view": _reshape_method}  # see gradcore.ops
