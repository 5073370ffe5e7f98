"""Views and shapes: transpose, permute, flatten, unsqueeze, squeeze, expand (kernels: csrc/strided_copy.h).

PyTorch returns views for all of these. Our arrays are always contiguous (csrc/array.h), so:
- flatten, unsqueeze and squeeze only change the shape: they are reshapes, which share storage (free);
- transpose, permute and expand read x through strides: one strided-copy kernel makes the result contiguous.
  Their gradients: permute's is the inverse permutation; expand's is a sum over the broadcast dimensions.
Basic slicing (x[1:5:2], gradcore/ops/indexing.py) uses the same kernel through `strided_view`, whose gradient is the
kernel's adjoint, a strided write into zeros.
"""
from __future__ import annotations

import numbers
import warnings

from .. import _core
from .._checks import ANY_DTYPE, dim as dim_index, tensor
from ..autograd import Function
from .elementwise import sum_to_shape
from .reduce import reshape

__all__ = ["flatten", "permute", "squeeze", "transpose", "unsqueeze"]  # gradcore.functional exports these


def contiguous_strides(shape):
    """Row-major strides, in elements, of a contiguous array of `shape`."""
    strides, run = [], 1
    for d in reversed(shape):
        strides.append(run)
        run *= d
    return strides[::-1]


class StridedView(Function):
    """y = x's elements at offset + sum_k i_k strides[k], made contiguous (a one-to-one view: a slice).
    dL/dx = zeros of x's shape with dL/dy written back at those places."""

    def forward(self, x, shape, strides, offset):
        self.x_shape, self.strides, self.offset = x.shape, strides, offset
        return _core.strided_copy(x, list(shape), list(strides), offset)

    def backward(self, g):
        return _core.strided_scatter(g, list(self.x_shape), list(self.strides), self.offset), None, None, None


def strided_view(x, shape, strides, offset):
    """The one-to-one strided view of x as a new Tensor (a reshape, sharing storage, when it is all of x in order)."""
    live = [(n, s) for n, s in zip(shape, strides) if n != 1]
    whole = [(n, s) for n, s in zip(x.shape, contiguous_strides(x.shape)) if n != 1]
    if offset == 0 and live == whole:
        return reshape(x, tuple(shape))
    return StridedView.apply(x, tuple(shape), tuple(strides), offset)


class Permute(Function):
    """y = x with its dimensions reordered: y.shape[k] = x.shape[dims[k]]. dL/dx = dL/dy permuted back."""

    def forward(self, x, dims):
        self.dims = dims
        strides = contiguous_strides(x.shape)
        return _core.strided_copy(x, [x.shape[d] for d in dims], [strides[d] for d in dims], 0)

    def backward(self, g):
        inverse = [0] * len(self.dims)
        for k, d in enumerate(self.dims):
            inverse[d] = k
        strides = contiguous_strides(g.shape)
        return _core.strided_copy(g, [g.shape[k] for k in inverse], [strides[k] for k in inverse], 0), None


class Expand(Function):
    """y = x broadcast to `shape` (stride 0 along new and length-1 dimensions). dL/dx = dL/dy summed over them."""

    def forward(self, x, shape):
        self.x_shape = x.shape
        lead = len(shape) - x.ndim
        own = contiguous_strides(x.shape)
        strides = [0] * lead + [0 if n == 1 else s for n, s in zip(x.shape, own)]
        return _core.strided_copy(x, list(shape), strides, 0)

    def backward(self, g):
        return sum_to_shape(g, self.x_shape), None


def _dims_arg(dims, name="dims"):
    """dims given as f(2, 0, 1) or f((2, 0, 1)), as a tuple."""
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = tuple(dims[0])
    return dims


def permute(x, dims):
    """x with its dimensions in the order `dims`, a permutation of range(x.ndim) (torch.permute). A copy: our
    tensors are always contiguous."""
    tensor(x, "x", dtypes=ANY_DTYPE)
    if not isinstance(dims, (tuple, list)):
        raise TypeError(f"dims: expected a tuple of ints, got {dims!r}")
    if len(dims) != x.ndim:
        raise ValueError(f"dims: expected a permutation of {x.ndim} dimensions for shape {x.shape}, got {tuple(dims)}")
    order = tuple(dim_index(d, max(x.ndim, 1), "dims") for d in dims)
    if len(set(order)) != len(order):
        raise ValueError(f"dims: expected each dimension once, got {tuple(dims)}")
    shape = tuple(x.shape[d] for d in order)
    moved = [d for d in order if x.shape[d] != 1]
    if moved == sorted(moved):  # only length-1 dimensions move (or none): the same elements in the same order
        return reshape(x, shape)  # shares storage, as PyTorch's view would
    return Permute.apply(x, order)


def _permute_method(self, *dims):
    """x.permute(2, 0, 1) or x.permute((2, 0, 1))."""
    return permute(self, _dims_arg(dims))


def transpose(x, dim0, dim1):
    """x with dimensions dim0 and dim1 swapped (torch.transpose)."""
    tensor(x, "x", dtypes=ANY_DTYPE)
    d0, d1 = dim_index(dim0, max(x.ndim, 1), "dim0"), dim_index(dim1, max(x.ndim, 1), "dim1")
    order = list(range(x.ndim))
    if x.ndim:
        order[d0], order[d1] = order[d1], order[d0]
    return permute(x, order)


def _T(self):
    """x.T: the transpose of a matrix. Like PyTorch, other dimensions are reversed too, with a warning for
    neither 0 nor 2 dimensions (PyTorch has deprecated that use)."""
    if self.ndim not in (0, 2):
        warnings.warn("The use of `x.T` on tensors of dimension other than 2 to reverse their shape is deprecated "
                      "(as in PyTorch); use x.permute(*reversed(range(x.ndim))) to reverse the dimensions of a "
                      "tensor", UserWarning, stacklevel=2)
    return permute(self, tuple(range(self.ndim - 1, -1, -1)))


def flatten(x, start_dim=0, end_dim=-1):
    """x with dimensions start_dim..end_dim (inclusive) merged into one (torch.flatten); a 0-d tensor becomes 1-d.
    A reshape: shares x's storage."""
    tensor(x, "x", dtypes=ANY_DTYPE)
    start = dim_index(start_dim, max(x.ndim, 1), "start_dim")
    end = dim_index(end_dim, max(x.ndim, 1), "end_dim")
    if start > end:
        raise ValueError(f"start_dim: {start_dim} comes after end_dim {end_dim} for a tensor of {x.ndim} dimensions")
    if x.ndim == 0:
        return reshape(x, (1,))
    shape = x.shape
    merged = 1
    for n in shape[start:end + 1]:
        merged *= n
    return reshape(x, (*shape[:start], merged, *shape[end + 1:]))


def unsqueeze(x, dim):
    """x with a new dimension of length 1 at `dim`, in [-x.ndim - 1, x.ndim] (torch.unsqueeze). A reshape."""
    tensor(x, "x", dtypes=ANY_DTYPE)
    d = dim_index(dim, x.ndim + 1, "dim")
    return reshape(x, (*x.shape[:d], 1, *x.shape[d:]))


def squeeze(x, dim=None):
    """x without its dimensions of length 1: all of them, or those among `dim` (an int or a tuple of ints); a
    listed dimension of another length stays (torch.squeeze). A reshape."""
    tensor(x, "x", dtypes=ANY_DTYPE)
    if dim is None:
        dims = range(x.ndim)
    else:
        listed = dim if isinstance(dim, (tuple, list)) else (dim,)
        dims = {dim_index(d, max(x.ndim, 1), "dim") for d in listed}
    return reshape(x, tuple(n for k, n in enumerate(x.shape) if not (k in dims and n == 1)))


def expand(x, *sizes):
    """x broadcast to `sizes` (torch.Tensor.expand): new dimensions in front, length-1 dimensions repeated; -1 keeps
    a dimension's length. A copy: our tensors are always contiguous."""
    tensor(x, "x", dtypes=ANY_DTYPE)
    sizes = _dims_arg(sizes)
    for n in sizes:
        if isinstance(n, bool) or not isinstance(n, numbers.Integral):
            raise TypeError(f"sizes: expected ints, got {tuple(sizes)!r}")
    if len(sizes) < x.ndim:
        raise ValueError(f"sizes: expected at least {x.ndim} sizes to expand shape {x.shape}, got {tuple(sizes)}")
    lead = len(sizes) - x.ndim
    shape = []
    for k, n in enumerate(sizes):
        n = int(n)
        own = x.shape[k - lead] if k >= lead else None
        if n == -1 and own is not None:
            n = own
        elif n < 0:
            raise ValueError(f"sizes: {n} is not allowed at dimension {k} of {tuple(sizes)}" +
                             (" (a new leading dimension needs its length)" if own is None else ""))
        elif own is not None and own != 1 and own != n:
            raise ValueError(f"sizes: the expanded size {n} must match the existing size {own} at non-singleton "
                             f"dimension {k}; target sizes {tuple(sizes)}, tensor sizes {x.shape}")
        shape.append(n)
    count = 1
    for n in shape:
        count *= n
    if count == x.numel:  # nothing repeated (new or kept dimensions of length 1): shares storage, as PyTorch's view
        return reshape(x, tuple(shape))
    return Expand.apply(x, tuple(shape))


def expand_as(x, other):
    """x expanded to other's shape (torch.Tensor.expand_as)."""
    tensor(other, "other", dtypes=ANY_DTYPE)
    return expand(x, other.shape)


def _contiguous(self):
    """x itself: our tensors are always contiguous (PyTorch returns self when it already is)."""
    return self


def _is_contiguous(self):
    return True


TENSOR_METHODS = {  # attached to Tensor by gradcore.ops; T is a property, as in PyTorch
    "transpose": transpose, "permute": _permute_method, "T": property(_T), "flatten": flatten,
    "unsqueeze": unsqueeze, "squeeze": squeeze, "expand": expand, "expand_as": expand_as,
    "contiguous": _contiguous, "is_contiguous": _is_contiguous,
}
