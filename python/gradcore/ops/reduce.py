"""Reductions: sum, mean, max/min (with indices), amax/amin, argmax/argmin, var/std, and the vector norm behind
gradcore.linalg.vector_norm; reshape (kernels: csrc/reduce.h, csrc/cpu/reduce.cpp, csrc/cuda/reduce.cu).

PyTorch's keywords: `dim` (an int, a tuple of ints, or None for every dimension) and `keepdim`; numpy's `axis` and
`keepdims` are accepted as aliases. A 0-d tensor has the one dimension 0 (or -1), as in PyTorch.
Gradients: sum and mean broadcast g back; amax/amin (and max()/min() without dim) split g evenly among the tied
maxima; max(dim)/min(dim) give it to the element their index names (the first of the ties, PyTorch's pick on the
CPU); var/std are composed of mean, subtraction and sum, so their gradients come from those.
"""
from __future__ import annotations

import math
import numbers

from .. import _core, return_types
from ..autograd import Function
from ..tensor import Tensor
from .._checks import ANY_DTYPE, real, tensor

__all__ = [  # gradcore.functional exports these
    "amax", "amin", "argmax", "argmin", "max", "mean", "min", "reshape", "std", "sum", "var",
]

B = _core.BinaryOp


def _dim_alias(dim, axis, keepdim, keepdims):
    """PyTorch's (dim, keepdim) from either spelling (numpy's axis, keepdims), and the name the caller used for dim;
    both spellings of one argument is an error."""
    name = "dim"
    if axis is not None:
        if dim is not None:
            raise TypeError("dim: given twice (as dim and as its alias axis); pass one")
        dim, name = axis, "axis"
    if keepdims is not None:
        if keepdim is not False:
            raise TypeError("keepdim: given twice (as keepdim and as its alias keepdims); pass one")
        keepdim = keepdims
    if not isinstance(keepdim, (bool, numbers.Integral)):
        raise TypeError(f"keepdim: expected a bool, got {keepdim!r}")
    return dim, bool(keepdim), name


def _axes(axis, ndim, name="dim"):
    """Sorted non-negative dimensions from None (all), an int or a tuple/list of ints. A 0-d tensor takes 0 or -1,
    which reduce nothing (its one element is the result), as PyTorch."""
    if axis is None:
        return list(range(ndim))
    if isinstance(axis, numbers.Integral) and not isinstance(axis, bool):
        axes = [axis]
    elif isinstance(axis, (tuple, list)):
        axes = list(axis)
    else:
        raise TypeError(f"{name}: expected None, an int or a tuple of ints, got {axis!r}")
    out = []
    for a in axes:
        if not isinstance(a, numbers.Integral) or isinstance(a, bool):
            raise TypeError(f"{name}: expected ints, got {a!r} in {axis!r}")
        span = ndim or 1  # a 0-d tensor has the one dimension 0 (-1)
        if not -span <= a < span:
            raise ValueError(f"{name}: {a!r} is out of range for a tensor of {ndim} dimensions")
        out.append(int(a) % span)
    if len(set(out)) != len(out):
        raise ValueError(f"{name}: expected each dimension once, got {axis!r}")
    return sorted(out) if ndim else []


def _kept_shape(shape, axes):
    return [1 if i in axes else d for i, d in enumerate(shape)]


def _reduced_count(shape, axes):
    count = 1
    for a in axes:
        count *= shape[a]
    return count


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


def sum(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """The sum over `dim` (an int, a tuple of ints, or None for all) (torch.sum): float32/float64 keep their dtype
    (accumulated in double); int64 and bool sum into int64, as PyTorch ((a == b).sum() counts the equal elements)."""
    tensor(x, "x", dtypes=ANY_DTYPE)
    dim, keepdim, name = _dim_alias(dim, axis, keepdim, keepdims)
    return Sum.apply(x, _axes(dim, x.ndim, name), keepdim, 1.0)


def mean(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """The mean over `dim` (an int, a tuple of ints, or None for all) (torch.mean); an empty range raises."""
    _check(x)
    dim, keepdim, name = _dim_alias(dim, axis, keepdim, keepdims)
    axes = _axes(dim, x.ndim, name)
    count = _reduced_count(x.shape, axes)
    if count == 0:
        raise ValueError(f"mean: the reduced axes of shape {x.shape} hold no elements")
    return Sum.apply(x, axes, keepdim, 1.0 / count)


# ---- max and min ------------------------------------------------------------------------------------------------
class Extreme(Function):
    """amax/amin over axes. dL/dx = g / count on each element tied with the result (NaN ties NaN), else 0."""

    def forward(self, x, axes, keepdim, is_max):
        self.axes = axes
        values = _core.amax(x, axes) if is_max else _core.amin(x, axes)
        self.save_for_backward(x, values)
        return values.reshape(_kept_shape(x.shape, axes)) if keepdim else values

    def backward(self, g):
        x, values = self.saved
        return _core.extreme_backward(x, values, g, self.axes, True), None, None, None


def _check_nonempty(x, axes, name):
    if _reduced_count(x.shape, axes) == 0:
        raise ValueError(f"{name}: the reduced dimensions of x's shape {x.shape} hold no elements; {name} of "
                         "nothing is undefined (the reduction has no identity)")


def _extreme(x, dim, keepdim, is_max, name):
    tensor(x, "x")
    axes = _axes(dim, x.ndim)
    _check_nonempty(x, axes, name)
    return Extreme.apply(x, axes, bool(keepdim), is_max)


def amax(x, dim=(), keepdim=False):
    """The largest element over `dim` (an int or a tuple; () or None: every dimension) (torch.amax). A NaN makes
    the result NaN. The gradient is split evenly among tied maxima."""
    return _extreme(x, None if dim == () else dim, keepdim, True, "amax")


def amin(x, dim=(), keepdim=False):
    """The smallest element over `dim` (torch.amin); see amax."""
    return _extreme(x, None if dim == () else dim, keepdim, False, "amin")


def max(x, dim=None, keepdim=False):
    """x.max(): the largest element, as a 0-d tensor (its gradient split evenly among ties, as PyTorch).
    x.max(dim): the namedtuple (values, indices) over one dimension (torch.return_types.max).
    x.max(other) for a Tensor other: the elementwise maximum (gradcore.maximum), PyTorch's third overload."""
    tensor(x, "x")
    if isinstance(dim, Tensor):
        from .comparison import maximum
        return maximum(x, dim)
    if dim is None:
        if keepdim:
            raise TypeError("keepdim: only with dim (x.max() reduces every dimension to a 0-d tensor)")
        return _extreme(x, None, False, True, "max")
    return _extreme_dim(x, dim, keepdim, True)


def min(x, dim=None, keepdim=False):
    """x.min(): the smallest element; x.min(dim): the namedtuple (values, indices); x.min(other): the elementwise
    minimum. See max."""
    tensor(x, "x")
    if isinstance(dim, Tensor):
        from .comparison import minimum
        return minimum(x, dim)
    if dim is None:
        if keepdim:
            raise TypeError("keepdim: only with dim (x.min() reduces every dimension to a 0-d tensor)")
        return _extreme(x, None, False, False, "min")
    return _extreme_dim(x, dim, keepdim, False)


class ExtremeDim(Function):
    """max(dim)/min(dim): (values, int64 indices). dL/dx = g at the element the index names (the first of the
    ties, found again from the values by the same rule), 0 elsewhere; the indices get no gradient."""

    def forward(self, x, axes, keepdim, is_max):
        self.axes = axes
        values, indices = _core.extreme_with_indices(x, axes, is_max)
        self.save_for_backward(x, values)
        if keepdim:
            kept = _kept_shape(x.shape, axes)
            values, indices = values.reshape(kept), indices.reshape(kept)
        return values, indices

    def backward(self, g, g_indices):
        x, values = self.saved
        return _core.extreme_backward(x, values, g, self.axes, False), None, None, None


def _one_dim(x, dim, name):
    if not isinstance(dim, numbers.Integral) or isinstance(dim, bool):
        raise TypeError(f"dim: expected an int (one dimension) for {name}, got {dim!r}"
                        + ("; amax/amin reduce several at once" if isinstance(dim, (tuple, list)) else ""))
    axes = _axes(dim, x.ndim)
    _check_nonempty(x, axes, name)
    return axes


def _extreme_dim(x, dim, keepdim, is_max):
    name = "max" if is_max else "min"
    if not isinstance(keepdim, (bool, numbers.Integral)):
        raise TypeError(f"keepdim: expected a bool, got {keepdim!r}")
    values, indices = ExtremeDim.apply(x, _one_dim(x, dim, name), bool(keepdim), is_max)
    return (return_types.max if is_max else return_types.min)(values, indices)


def _arg_extreme(x, dim, keepdim, is_max):
    name = "argmax" if is_max else "argmin"
    tensor(x, "x")
    if not isinstance(keepdim, (bool, numbers.Integral)):
        raise TypeError(f"keepdim: expected a bool, got {keepdim!r}")
    if dim is None:  # the index into the flattened tensor
        axes = _axes(None, x.ndim)
        _check_nonempty(x, axes, name)
        kept = [1] * x.ndim if keepdim else []
    else:
        axes = _one_dim(x, dim, name)
        kept = _kept_shape(x.shape, axes) if keepdim else None
    _, indices = _core.extreme_with_indices(x._data, axes, is_max)
    return Tensor(indices.reshape(kept) if kept is not None else indices)


def argmax(x, dim=None, keepdim=False):
    """The index (int64) of the largest element along `dim`, or into the flattened tensor when dim is None
    (torch.argmax). Ties give the first index; a NaN counts as the largest (the first NaN's index)."""
    return _arg_extreme(x, dim, keepdim, True)


def argmin(x, dim=None, keepdim=False):
    """The index (int64) of the smallest element along `dim`, or into the flattened tensor (torch.argmin)."""
    return _arg_extreme(x, dim, keepdim, False)


# ---- variance and standard deviation ----------------------------------------------------------------------------
def _correction(correction, unbiased):
    if unbiased is not None:
        if correction is not None:
            raise TypeError("unbiased: given together with correction; pass one (unbiased=True is correction=1)")
        if not isinstance(unbiased, (bool, numbers.Integral)):
            raise TypeError(f"unbiased: expected a bool, got {unbiased!r}")
        return 1.0 if unbiased else 0.0
    return 1.0 if correction is None else real(correction, "correction")


def var(x, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None, keepdims=None):
    """The variance over `dim`: sum((x - mean)^2) / max(0, N - correction), correction=1 by default (Bessel's;
    unbiased=True/False is the older spelling of correction=1/0) (torch.var). N - correction <= 0 gives NaN or
    inf, as PyTorch. Composed of mean, subtraction and sum (two passes: no cancellation), so its gradient is
    2 (x - mean) / (N - correction) g."""
    tensor(x, "x")
    if isinstance(dim, bool):  # torch.var(x, True): the old positional unbiased
        dim, unbiased = None, dim if unbiased is None else unbiased
    dim, keepdim, name = _dim_alias(dim, axis, keepdim, keepdims)
    correction = _correction(correction, unbiased)
    axes = _axes(dim, x.ndim, name)
    count = _reduced_count(x.shape, axes)
    if count == 0:
        raise ValueError(f"var: the reduced dimensions of x's shape {x.shape} hold no elements")
    centred = x - Sum.apply(x, axes, True, 1.0 / count)
    denominator = count - correction
    scale = 1.0 / denominator if denominator > 0 else math.inf
    return Sum.apply(centred * centred, axes, keepdim, scale)


def std(x, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None, keepdims=None):
    """sqrt(var(x, ...)) with var's arguments (torch.std). Its gradient at a zero deviation is NaN, as PyTorch."""
    return var(x, dim, unbiased, keepdim, correction=correction, axis=axis, keepdims=keepdims).sqrt()


# ---- vector norm (gradcore.linalg.vector_norm) ------------------------------------------------------------------
class VectorNorm(Function):
    """(sum |x|^p)^(1/p) over axes for a finite p; the gradient is PyTorch's, 0 where the norm is 0."""

    def forward(self, x, axes, keepdim, p):
        self.axes, self.p = axes, p
        norm = _core.vector_norm(x, axes, p)
        self.save_for_backward(x, norm)
        return norm.reshape(_kept_shape(x.shape, axes)) if keepdim else norm

    def backward(self, g):
        x, norm = self.saved
        return _core.vector_norm_backward(x, norm, g, self.axes, self.p), None, None, None


def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None):
    """The vector ord-norm of x over `dim` (None: all elements, as one vector) (torch.linalg.vector_norm).

    ord: 2 (default), 1, inf (max |x|), -inf (min |x|), 0 (the count of non-zeros) or any other real p:
    (sum |x|^p)^(1/p). dtype: float32/float64 to compute in (x is converted first). The gradient at x = 0 is 0
    (PyTorch's choice), not NaN; for ord=+-inf it is split evenly among the elements of largest (smallest) |x|.
    """
    tensor(x, "x")
    if isinstance(ord, bool) or not isinstance(ord, numbers.Real):
        raise TypeError(f"ord: expected a number (2, 1, inf, -inf, 0 or any real p), got {ord!r}")
    ord = float(ord)
    if math.isnan(ord):
        raise ValueError("ord: expected a number, got nan")
    if dtype is not None:
        from ..tensor import _dtype_name
        name = _dtype_name(dtype)
        if name not in ("float32", "float64"):
            raise TypeError(f"dtype: expected float32 or float64 (the norm of a tensor is a float), got {dtype!r}")
        x = x.to(dtype=name)
    if not isinstance(keepdim, (bool, numbers.Integral)):
        raise TypeError(f"keepdim: expected a bool, got {keepdim!r}")
    keepdim = bool(keepdim)
    axes = _axes(dim, x.ndim)
    if (ord < 0 or math.isinf(ord)) and _reduced_count(x.shape, axes) == 0:
        raise ValueError(f"ord: the {ord:g} norm of an empty range is undefined (it has no identity); x has shape "
                         f"{x.shape}")
    if math.isinf(ord):
        return Extreme.apply(x.abs(), axes, keepdim, ord > 0)
    return VectorNorm.apply(x, axes, keepdim, ord)


def reshape(x, shape):
    tensor(x, "x", dtypes=ANY_DTYPE)
    for d in shape:  # int(3.9) would truncate to 3
        # (an int, the usual case, skips the numbers ABC check: ~0.5 us per dimension)
        if type(d) is not int and (not isinstance(d, numbers.Integral) or isinstance(d, bool)):
            raise TypeError(f"shape: expected integers (or -1 for one inferred dimension), got {tuple(shape)!r}")
        if not -2**63 <= d < 2**63:
            raise ValueError(f"shape: expected dimensions below 2**63, got {tuple(shape)!r}")
    return Reshape.apply(x, tuple(map(int, shape)))


def _reshape_method(self, *shape):
    """x.reshape(2, 3) or x.reshape((2, 3)); one dimension may be -1 (inferred)."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return reshape(self, shape)


TENSOR_METHODS = {  # see gradcore.ops
    "sum": sum, "mean": mean, "reshape": _reshape_method, "view": _reshape_method, "amax": amax, "amin": amin,
    "max": max, "min": min, "argmax": argmax, "argmin": argmin, "var": var, "std": std,
}
