"""numpy references for matmul and linear, in float64, written from the definitions (no np.matmul):

matmul:  1-D operands are promoted (a: (K,) -> (1, K), b: (K,) -> (K, 1)), the batch dimensions (all but the last
         two) broadcast, c[..., i, j] = sum_k a[..., i, k] b[..., k, j], and the promoted dimensions are removed.
linear:  y[..., o] = b[o] + sum_i x[..., i] w[o, i].
Gradients of c = a b with g = dL/dc: dA = g b^T, dB = a^T g, each summed over the batch dimensions along which its
operand was broadcast.
"""
import numpy as np


def _promote(a, b):
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    return np.broadcast_to(a2, batch + a2.shape[-2:]), np.broadcast_to(b2, batch + b2.shape[-2:]), batch


def matmul(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    a2, b2, batch = _promote(a, b)
    c = (a2[..., :, :, None] * b2[..., None, :, :]).sum(axis=-2)  # (..., M, K, 1) * (..., 1, K, N), summed over K
    if b.ndim == 1:
        c = c[..., 0]
    if a.ndim == 1:
        c = c[..., 0, :] if b.ndim > 1 else c[..., 0]
    return c


def _sum_to(g, shape):
    """Sums g over the leading dimensions it has beyond `shape` and over the dimensions where `shape` has 1."""
    g = g.sum(axis=tuple(range(g.ndim - len(shape)))) if g.ndim > len(shape) else g
    return g.sum(axis=tuple(i for i, d in enumerate(shape) if d == 1 and g.shape[i] != 1), keepdims=True)


def matmul_grads(a, b, g):
    """(dL/da, dL/db) of c = matmul(a, b) for dL/dc = g."""
    a, b, g = (np.asarray(t, np.float64) for t in (a, b, g))
    a2, b2, batch = _promote(a, b)
    g2 = g.reshape(batch + (a2.shape[-2], b2.shape[-1]))
    ga = (g2[..., :, None, :] * b2[..., None, :, :]).sum(axis=-1)   # g b^T: sum_j g[i, j] b[k, j]
    gb = (a2[..., :, :, None] * g2[..., :, None, :]).sum(axis=-3)   # a^T g: sum_i a[i, k] g[i, j]
    a_shape = (1,) + a.shape if a.ndim == 1 else a.shape
    b_shape = b.shape + (1,) if b.ndim == 1 else b.shape
    return _sum_to(ga, a_shape).reshape(a.shape), _sum_to(gb, b_shape).reshape(b.shape)


def linear(x, w, b=None):
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    y = (x[..., None, :] * w).sum(axis=-1)
    return y if b is None else y + np.asarray(b, np.float64)


def linear_grads(x, w, g):
    """(dL/dx, dL/dw, dL/db) of y = linear(x, w, b) for dL/dy = g."""
    x, w, g = (np.asarray(t, np.float64) for t in (x, w, g))
    gx = (g[..., :, None] * w).sum(axis=-2)
    gw = (g.reshape(-1, w.shape[0])[:, :, None] * x.reshape(-1, w.shape[1])[:, None, :]).sum(axis=0)
    return gx, gw, g.reshape(-1, w.shape[0]).sum(axis=0)
