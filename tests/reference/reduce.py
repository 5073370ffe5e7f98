"""numpy references for sum, mean and reshape, accumulated in float64."""
import numpy as np


def sum(x, axis=None, keepdims=False):
    axis = tuple(axis) if isinstance(axis, list) else axis
    return np.sum(np.asarray(x, dtype=np.float64), axis=axis, keepdims=keepdims)


def mean(x, axis=None, keepdims=False):
    axis = tuple(axis) if isinstance(axis, list) else axis
    return np.mean(np.asarray(x, dtype=np.float64), axis=axis, keepdims=keepdims)


def reshape(x, shape):
    return np.reshape(x, shape)


# ---- max/min, var/std, vector norms: written from the definitions, in float64 -------------------------------------
def _axis(dim, ndim):
    if dim is None or dim == ():
        return tuple(range(ndim))
    return tuple(d % ndim for d in (dim if isinstance(dim, (tuple, list)) else (dim,)))


def _moved(x, axes):
    """x with the reduced axes moved last and flattened into one (row-major over them), and the kept shape."""
    x = np.asarray(x, dtype=np.float64)
    kept = [d for d in range(x.ndim) if d not in axes]
    moved = np.transpose(x, kept + list(axes))
    kept_shape = tuple(x.shape[d] for d in kept)
    return moved.reshape(kept_shape + (-1,)), kept_shape


def _restore(values, x_shape, axes, keepdim):
    return values.reshape(tuple(1 if d in axes else n for d, n in enumerate(x_shape))) if keepdim else values


def extreme(x, dim=None, keepdim=False, largest=True):
    """(values, indices): the largest (smallest) element over dim and the first index holding it, a NaN beating any
    number (the first NaN's index); indices count row-major over the reduced dimensions."""
    x = np.asarray(x, dtype=np.float64)
    axes = _axis(dim, x.ndim)
    flat, kept_shape = _moved(x, axes)
    rows = flat.reshape(-1, flat.shape[-1])
    values, indices = np.empty(len(rows)), np.empty(len(rows), np.int64)
    for i, row in enumerate(rows):
        nan = np.flatnonzero(np.isnan(row))
        j = nan[0] if nan.size else (int(np.argmax(row)) if largest else int(np.argmin(row)))  # first of ties
        values[i], indices[i] = row[j], j
    values, indices = values.reshape(kept_shape), indices.reshape(kept_shape)
    return _restore(values, x.shape, axes, keepdim), _restore(indices, x.shape, axes, keepdim)


def extreme_grad(x, g, dim=None, largest=True, split_ties=True):
    """dL/dx of amax/amin (split_ties: g / count to every element equal to the result, NaN equal to NaN) or of
    max(dim)/min(dim) (g to the first such element only)."""
    x = np.asarray(x, dtype=np.float64)
    axes = _axis(dim, x.ndim)
    values, indices = extreme(x, dim, keepdim=True, largest=largest)
    g = np.asarray(g, dtype=np.float64).reshape(values.shape)
    ties = (x == values) | (np.isnan(x) & np.isnan(values))
    if split_ties:
        return np.where(ties, g / ties.sum(axis=axes, keepdims=True), 0.0)
    flat, _ = _moved(ties, axes)
    position = np.arange(flat.shape[-1]).reshape((1,) * (flat.ndim - 1) + (-1,))
    first = (position == indices.reshape(flat.shape[:-1] + (1,)))
    kept = [d for d in range(x.ndim) if d not in axes]
    moved_shape = tuple(x.shape[d] for d in kept) + tuple(x.shape[d] for d in axes)
    mask = np.transpose(first.reshape(moved_shape), np.argsort(kept + list(axes)))
    return np.where(mask, g, 0.0)


def var(x, dim=None, correction=1, keepdim=False):
    x = np.asarray(x, dtype=np.float64)
    axes = _axis(dim, x.ndim)
    n = int(np.prod([x.shape[a] for a in axes]))
    centred = x - x.mean(axis=axes, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sum(centred * centred, axis=axes, keepdims=keepdim) / max(0, n - correction)


def std(x, dim=None, correction=1, keepdim=False):
    return np.sqrt(var(x, dim, correction, keepdim))


def vector_norm(x, ord=2, dim=None, keepdim=False):
    a = np.abs(np.asarray(x, dtype=np.float64))
    axes = _axis(dim, a.ndim)
    if ord == np.inf:
        return np.max(a, axis=axes, keepdims=keepdim)
    if ord == -np.inf:
        return np.min(a, axis=axes, keepdims=keepdim)
    if ord == 0:
        return np.sum(a != 0, axis=axes, keepdims=keepdim).astype(np.float64)
    with np.errstate(divide="ignore"):
        return np.sum(a ** ord, axis=axes, keepdims=keepdim) ** (1.0 / ord)


def vector_norm_grad(x, g, ord=2, dim=None):
    """PyTorch's gradient: sgn(x) |x|^(p-1) g / n^(p-1), 0 where the norm n is 0 (and where x = 0 for p < 1)."""
    x = np.asarray(x, dtype=np.float64)
    n = vector_norm(x, ord, dim, keepdim=True)
    g = np.asarray(g, dtype=np.float64).reshape(n.shape)
    if ord == 0:
        return np.zeros_like(x)
    if ord == 1:
        return np.sign(x) * g
    with np.errstate(divide="ignore", invalid="ignore"):
        if ord == np.inf or ord == -np.inf:
            ties = np.abs(x) == n
            return np.sign(x) * np.where(ties, g / ties.sum(axis=_axis(dim, x.ndim), keepdims=True), 0.0)
        grad = np.sign(x) * np.abs(x) ** (ord - 1) * g / n ** (ord - 1)
        return np.where((n == 0) | (x == 0) & (ord < 1), 0.0, grad)
