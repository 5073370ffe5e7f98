"""Indexing: x[i], x[a:b:s], x[..., None], their combinations and one integer index array; index_select and gather
(kernels: csrc/strided_copy.h for the basic part, csrc/gather.h for the index arrays).

x[key] follows PyTorch: integers select (dropping the dimension; negative ones count from the end; out of range is
an IndexError), slices keep every s-th element of a clamped range (s > 0), None inserts a dimension of length 1,
Ellipsis stands for the dimensions not named. The basic part is one strided view (ops/views.py): a reshape when it
is all of x in order, else one strided copy, whose gradient writes back into zeros.

One integer index array (an int64 Tensor, a list of ints or a numpy integer array, of any shape) then picks along
its dimension, with PyTorch's placement: integers are applied first as selections, so the index's dimensions replace
its own dimension where it stands (x[0, :, idx] has shape (x.shape[1], *idx.shape), as in PyTorch, where numpy would
put them first). Negative entries count from the end in x[idx] but are an IndexError in index_select and gather
(PyTorch's rules). Gradients add each element's gradient back where it was read, repeated indices summed in index
order (deterministic: csrc/gather.h). Boolean masks and assignment (x[key] = v) are not supported.
"""
from __future__ import annotations

import numbers

import numpy as np

from .. import _core
from .._checks import ANY_DTYPE, dim as dim_index, tensor
from ..autograd import Function
from ..tensor import Tensor
from ..tensor import tensor as new_tensor
from .reduce import reshape
from .views import contiguous_strides, strided_view

__all__ = ["gather", "index_select"]  # gradcore.functional exports these


class IndexSelect(Function):
    """y = x's slices index[0], index[1], ... along dim. dL/dx[r] = the sum of dL/dy[j] over j with index[j] == r."""

    def forward(self, x, dim, index, wrap_negative):
        self.x_shape, self.dim, self.wrap_negative = x.shape, dim, wrap_negative
        self.save_for_backward(index)
        return _core.index_select(x, dim, index, wrap_negative)

    def backward(self, g):
        (index,) = self.saved
        return _core.index_select_backward(g, index, list(self.x_shape), self.dim, self.wrap_negative), None, None, None


class Gather(Function):
    """y[.., j, ..] = x[.., index[.., j, ..], ..] along dim. dL/dx = dL/dy added back where each element was read."""

    def forward(self, x, dim, index):
        self.x_shape, self.dim = x.shape, dim
        self.save_for_backward(index)
        return _core.gather(x, dim, index)

    def backward(self, g):
        (index,) = self.saved
        return _core.gather_backward(g, index, list(self.x_shape), self.dim), None, None


def _mask_error(name):
    return TypeError(f"{name}: boolean masks are not supported as indices; use integer indices (e.g. "
                     f"numpy.nonzero(mask)[0])")


def _index_array(value, name, device):
    """An index given as an int64 Tensor, a (nested) list of ints or a numpy integer array, as an int64 Tensor."""
    if isinstance(value, Tensor):
        if value.dtype == "bool":
            raise _mask_error(name)
        if value.dtype != "int64":
            raise TypeError(f"{name}: tensors used as indices must be int64, got {value.dtype}")
        return value
    if not isinstance(value, (list, tuple, np.ndarray)):
        raise TypeError(f"{name}: expected an int64 tensor, a list of ints or a numpy integer array, got "
                        f"{type(value).__name__}")
    try:
        array = np.asarray(value)
    except ValueError:  # ragged nesting
        raise TypeError(f"{name}: expected a regular nesting of ints, got {value!r}") from None
    if array.dtype == np.bool_:
        raise _mask_error(name)
    if array.size == 0 and array.dtype.kind == "f":  # [] is float64 to numpy; PyTorch reads it as no indices
        array = array.astype(np.int64)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected integers, got {value!r} (numpy dtype {array.dtype})")
    if array.dtype.kind == "u" and array.size and array.max() > np.iinfo(np.int64).max:
        raise IndexError(f"{name}: {array.max()} is out of bounds for any dimension")
    return new_tensor(array.astype(np.int64), dtype="int64", device=device)


def _dim_arg(x, dim):
    return dim_index(dim, max(x.ndim, 1), "dim")


def index_select(x, dim, index):
    """x's slices index[0], index[1], ... along `dim` (torch.index_select); index: 0-d or 1-d, each entry in
    [0, x.shape[dim]) (an IndexError otherwise, negative entries included, as in PyTorch). A new tensor."""
    tensor(x, "x", dtypes=ANY_DTYPE)
    dim = _dim_arg(x, dim)
    index = _index_array(index, "index", x.device)
    return IndexSelect.apply(x, dim, index, False)


def gather(x, dim, index):
    """out[i][j][k] = x[i][index[i][j][k]][k] for dim=1, and likewise for any dim (torch.gather). index has x's
    number of dimensions and is no longer than x outside `dim`; out has index's shape."""
    tensor(x, "x", dtypes=ANY_DTYPE)
    dim = _dim_arg(x, dim)
    index = _index_array(index, "index", x.device)
    if index.ndim != x.ndim:
        raise ValueError(f"index: expected {x.ndim} dimensions (as x, of shape {x.shape}), got shape {index.shape}")
    for d, (m, n) in enumerate(zip(index.shape, x.shape)):
        if d != dim and m > n:
            raise ValueError(f"index: shape {index.shape} is longer than x's shape {x.shape} at dimension {d} (only "
                             f"dimension dim={dim} may be longer)")
    if any(m != n for d, (m, n) in enumerate(zip(index.shape, x.shape)) if d != dim):
        # A shorter index reads the leading part of x: gather from that slice (its gradient is placed back in x).
        x = getitem(x, tuple(slice(None) if d == dim else slice(m) for d, m in enumerate(index.shape)))
    return Gather.apply(x, dim, index)


def _classify(item):
    """'int', 'slice', 'none', 'ellipsis' or 'array', or a TypeError for what we do not index with."""
    if item is None:
        return "none"
    if item is Ellipsis:
        return "ellipsis"
    if isinstance(item, slice):
        return "slice"
    if isinstance(item, (bool, np.bool_)):
        raise _mask_error("index")
    if isinstance(item, numbers.Integral):
        return "int"
    if isinstance(item, (Tensor, list, np.ndarray)):
        return "array"
    raise TypeError(f"index: only integers, slices (:), None, Ellipsis (...) and integer index arrays are valid "
                    f"indices, got {item!r} ({type(item).__name__})")


def _expand_ellipsis(items, ndim):
    kinds = [_classify(item) for item in items]
    if kinds.count("ellipsis") > 1:
        raise IndexError("index: an index can only have a single ellipsis ('...')")
    if kinds.count("array") > 1:
        raise TypeError("index: only one integer index array per index is supported; index the dimensions one "
                        "after the other (x[i][:, j]) or use gather")
    used = sum(kind not in ("none", "ellipsis") for kind in kinds)
    if used and ndim == 0:
        raise IndexError("index: invalid index of a 0-dim tensor; use tensor.item() to get its value")
    if used > ndim:
        raise IndexError(f"index: too many indices for a tensor of dimension {ndim} ({used} given)")
    if "ellipsis" in kinds:
        at = kinds.index("ellipsis")
        fill = ndim - used
        items = items[:at] + (slice(None),) * fill + items[at + 1:]
        kinds = kinds[:at] + ["slice"] * fill + kinds[at + 1:]
    return list(items), kinds


def _slice_step(step):
    if isinstance(step, (bool, np.bool_)) or not isinstance(step, numbers.Integral):
        raise TypeError(f"index: slice indices must be integers or None, got step {step!r}")
    return int(step)


def _basic_view(x, items, kinds):
    """The strided view that integers, slices and None describe, (shape, strides, offset) in x's elements, and the
    position in it of the dimension an index array picks from (None without one; that dimension is kept whole)."""
    x_strides = contiguous_strides(x.shape)
    shape, strides, offset, d, array_at = [], [], 0, 0, None
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
        elif kind == "array":
            array_at = len(shape)
            shape.append(n)
            strides.append(stride)
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
    return tuple(shape), tuple(strides), offset, array_at


def getitem(x, key):
    """x[key] (torch.Tensor.__getitem__): see the module's docstring."""
    items = key if isinstance(key, tuple) else (key,)
    items, kinds = _expand_ellipsis(items, x.ndim)
    shape, strides, offset, array_at = _basic_view(x, items, kinds)
    y = strided_view(x, shape, strides, offset)
    if array_at is None:
        return y
    index = _index_array(items[kinds.index("array")], "index", x.device)
    picked = IndexSelect.apply(y, array_at, reshape(index, (-1,)) if index.ndim != 1 else index, True)
    if index.ndim == 1:
        return picked
    return reshape(picked, (*shape[:array_at], *index.shape, *shape[array_at + 1:]))


def _iter(x):
    """for row in x: the slices x[0], x[1], ... along the first dimension (PyTorch)."""
    if x.ndim == 0:
        raise TypeError("iteration over a 0-d tensor")
    return (getitem(x, i) for i in range(x.shape[0]))


TENSOR_METHODS = {  # attached to Tensor by gradcore.ops
    "__getitem__": getitem, "__iter__": _iter, "index_select": index_select, "gather": gather,
}
