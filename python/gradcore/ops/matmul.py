"""matmul (a @ b) and linear (kernels: csrc/cpu/matmul.cpp over the GEMM of csrc/cpu/gemm.h, csrc/cuda/matmul.cu over
csrc/cuda/gemm.cuh; the maths is in csrc/matmul.h).

matmul follows torch.matmul's rules exactly:
  1-D @ 1-D     the dot product, a 0-d tensor
  2-D @ 2-D     the matrix product
  1-D @ n-D     a is promoted to (1, K) and that dimension removed from the result; n-D @ 1-D likewise with (K, 1)
  batched       the dimensions before the last two broadcast like numpy: (j, 1, n, m) @ (k, m, p) -> (j, k, n, p)
Gradients: dA = G B^T and dB = A^T G, by the same kernel with transposed reads (no transpose is materialised), then
summed over the batch dimensions along which the operand was broadcast (_core.sum: a fixed order, deterministic).
A batched a times a 2-D b is one GEMM over a's rows folded together (PyTorch does the same); so is its dB, whose
reduction then runs over the batch inside the GEMM.

linear(x, weight, bias) = x weight^T + bias with weight (out_features, in_features) and any leading dimensions on x:
x is flattened to (rows, in_features), the bias is added inside the GEMM; dx = G weight, dweight = G^T x,
dbias = the sum of G over its rows.
"""
from __future__ import annotations

from .. import _core
from .._checks import tensor
from ..autograd import Function
from .elementwise import sum_to_shape

__all__ = ["linear", "matmul"]  # gradcore.functional exports these


def _prod(shape):
    n = 1
    for d in shape:
        n *= d
    return n


class MatMul(Function):
    def forward(self, a, b):
        self.a_shape, self.b_shape = a.shape, b.shape
        k = a.shape[-1]
        a2 = a.reshape([1, k]) if a.ndim == 1 else a
        b2 = b.reshape([k, 1]) if b.ndim == 1 else b
        batch, m = a2.shape[:-2], a2.shape[-2]
        self.fold = b2.ndim == 2 and a2.ndim > 2
        if self.fold:  # (..., M, K) @ (K, N): one GEMM over all of a's rows
            a2 = a2.reshape([_prod(batch) * m, k])
        self.save_for_backward(a2, b2)
        c = _core.matmul(a2, b2)
        self.c_shape = c.shape
        shape = list(batch) + [m, b2.shape[-1]] if self.fold else list(c.shape)
        if b.ndim == 1:
            del shape[-1]
        if a.ndim == 1:
            del shape[-2 if b.ndim > 1 else -1]
        return c.reshape(shape)

    def backward(self, g):
        a2, b2 = self.saved
        need_a, need_b = self.needs_input_grad[:2]
        g2 = g.reshape(list(self.c_shape))
        ga = gb = None
        if need_a:  # dA = G B^T
            ga = sum_to_shape(_core.matmul(g2, b2, transpose_b=True), a2.shape).reshape(list(self.a_shape))
        if need_b:  # dB = A^T G
            gb = sum_to_shape(_core.matmul(a2, g2, transpose_a=True), b2.shape).reshape(list(self.b_shape))
        return ga, gb


class Linear(Function):
    def forward(self, x, weight, bias):
        # (a batch-1 layer's kernel takes ~10 us: each shape read and reshape, ~0.3-0.5 us, is worth saving)
        self.x_shape = x_shape = x.shape
        if len(x_shape) == 2:  # the usual (batch, in_features): no reshapes
            x2 = x
        else:
            x2 = x.reshape([_prod(x_shape[:-1]), x_shape[-1]])
        if True in self.needs_input_grad:  # kept only for a backward that can happen
            self.save_for_backward(x2, weight)
        y = _core.matmul(x2, weight, transpose_b=True, bias=bias)
        return y if len(x_shape) == 2 else y.reshape(list(x_shape[:-1]) + [weight.shape[0]])

    def backward(self, g):
        x2, weight = self.saved
        need_x, need_w, need_b = self.needs_input_grad[:3]
        g2 = g.reshape([x2.shape[0], weight.shape[0]])
        gx = _core.matmul(g2, weight).reshape(list(self.x_shape)) if need_x else None  # G W
        gw = _core.matmul(g2, x2, transpose_a=True) if need_w else None  # G^T x
        gb = _core.sum(g2, [0]) if need_b else None
        return gx, gw, gb


def _shape(t):
    return tuple(t.shape)


def matmul(a, b):
    """The matrix product of a and b with torch.matmul's rules (see the module docstring); a @ b."""
    tensor(a, "a")
    tensor(b, "b")
    for t, name in ((a, "a"), (b, "b")):
        if t.ndim == 0:
            raise ValueError(f"{name}: matmul needs at least 1 dimension in both arguments, got shapes "
                             f"{_shape(a)} and {_shape(b)}")
    k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if a.shape[-1] != k_b:
        where = "its only dimension" if b.ndim == 1 else "its second-to-last dimension"
        raise ValueError(f"b: shape {_shape(b)} cannot be multiplied with a of shape {_shape(a)}: a has "
                         f"{a.shape[-1]} columns (its last dimension), b has {k_b} rows ({where})")
    return MatMul.apply(a, b)


def rmatmul(self, other):
    """other @ self, for an `other` that is not a Tensor (it is refused with a TypeError naming it)."""
    return matmul(other, self)


def linear(x, weight, bias=None):
    """y = x weight^T + bias: x (..., in_features), weight (out_features, in_features), bias (out_features,) or None;
    y (..., out_features). A 1-D weight (in_features,) gives y (...), as in PyTorch."""
    tensor(x, "x")
    tensor(weight, "weight")
    tensor(bias, "bias", optional=True)
    dtype, device = x.dtype, x.device  # (each read builds a string: read once, for a batch-1 layer's sake)
    for t, name in ((weight, "weight"), (bias, "bias")):  # here, so the messages name x (the kernel says a, b)
        if t is not None and t.dtype != dtype:
            raise TypeError(f"{name}: expected dtype {dtype} (the dtype of x), got {t.dtype}")
        if t is not None and t.device != device:
            raise ValueError(f"{name}: expected device {device} (the device of x), got {t.device}")
    x_shape, w_shape = x.shape, weight.shape
    if not x_shape:
        raise ValueError(f"x: expected at least 1 dimension (..., in_features), got shape {_shape(x)}")
    if len(w_shape) not in (1, 2):
        raise ValueError(f"weight: expected 2 dimensions (out_features, in_features), got shape {_shape(weight)}")
    if x_shape[-1] != w_shape[-1]:
        raise ValueError(f"x: expected a last dimension of {weight.shape[-1]} (weight's in_features, from its shape "
                         f"{_shape(weight)}), got shape {_shape(x)}")
    if len(w_shape) == 1:  # PyTorch: x @ weight (+ bias), weight's transpose being itself
        y = matmul(x, weight)
        return y if bias is None else y + bias
    return Linear.apply(x, weight, bias)


TENSOR_METHODS = {"matmul": matmul, "__matmul__": matmul, "__rmatmul__": rmatmul}  # see gradcore.ops
