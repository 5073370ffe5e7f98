"""Elementwise ops and activations (kernels: csrc/cpu/elementwise.cpp, csrc/cuda/elementwise.cu).

Binary ops broadcast like numpy; the gradient of a broadcast operand is summed back to its shape.
Python numbers combine with tensors through the scalar kernels (affine, rdiv, pow) without a broadcast.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .. import _core
from .._checks import ANY_DTYPE, real, tensor
from ..autograd import Function
from ..tensor import FLOATING, Tensor, _device_name, _dtype_name

__all__ = [  # gradcore.functional exports these
    "abs", "add", "cos", "div", "elu", "exp", "expm1", "gelu", "leaky_relu", "log", "log1p", "mul", "neg", "pow",
    "relu", "sigmoid", "silu", "sin", "softplus", "sqrt", "sub", "tanh",
]

U, B = _core.UnaryOp, _core.BinaryOp


def sum_to_shape(g, shape):
    """Sums a broadcast gradient back to `shape` (leading dimensions and dimensions of size 1)."""
    shape = tuple(shape)
    if tuple(g.shape) == shape:
        return g
    lead = g.ndim - len(shape)
    axes = list(range(lead)) + [lead + i for i, d in enumerate(shape) if d == 1 and g.shape[lead + i] != 1]
    return _core.sum(g, axes).reshape(list(shape))


def _check_operand(x, name):
    tensor(x, name, alternative="a Python number")


class Binary(Function):
    def forward(self, a, b, op):
        self.op = op
        self.a_shape, self.b_shape = a.shape, b.shape
        if op in (B.mul, B.div):
            self.save_for_backward(a, b)
        return _core.binary(a, b, op)

    def backward(self, g):
        need_a, need_b = self.needs_input_grad[:2]
        ga = gb = None
        if self.op == B.add:
            ga, gb = g, g
        elif self.op == B.sub:
            ga = g
            gb = _core.unary(g, U.affine, -1.0, 0.0) if need_b else None
        elif self.op == B.mul:
            a, b = self.saved
            ga = _core.binary(g, b, B.mul) if need_a else None
            gb = _core.binary(g, a, B.mul) if need_b else None
        elif self.op == B.div:  # d(a/b)/da = 1/b, d(a/b)/db = -a/b^2
            a, b = self.saved
            ga = _core.binary(g, b, B.div) if need_a else None
            if need_b:
                gb = _core.binary(_core.binary(g, a, B.mul), _core.binary(b, b, B.mul), B.div)
                gb = _core.unary(gb, U.affine, -1.0, 0.0)
        ga = sum_to_shape(ga, self.a_shape) if need_a else None
        gb = sum_to_shape(gb, self.b_shape) if need_b else None
        return ga, gb, None


class Unary(Function):
    """y = op(x; a, b) for the ops whose gradient needs only x or y."""

    fresh_gradients = True  # backward's gradient is a new Array, kept nowhere else (autograd.Function)

    def forward(self, x, op, a=0.0, b=0.0):
        self.op, self.a, self.b = op, a, b
        y = _core.unary(x, op, a, b)
        # relu keeps its output, as PyTorch's does (y > 0 exactly where x > 0, NaN included): the next layer saves y
        # too, so x can be freed after forward, and backward reads a y that the next layer's backward just read.
        if op != U.affine:  # affine's gradient needs neither x nor y: modifying them in place is fine
            self.save_for_backward(y if op in _KEEPS_OUTPUT else x)
        return y

    def backward(self, g):
        op = self.op
        kernel = _BACKWARD_OF.get(op)  # (one dict lookup: each == between pybind11 enums costs ~0.2 us)
        if kernel is not None:
            (s,) = self.saved
            out = g if self.grad_owned else None  # g only we hold: overwritten (autograd.Function.grad_owned)
            return _core.binary(g, s, kernel, self.a, self.b, out=out), None, None, None
        if op == U.affine:
            return _core.unary(g, U.affine, self.a, 0.0), None, None, None
        (s,) = self.saved
        if op == U.sqrt:  # 1 / (2 sqrt(x))
            gx = _core.unary(_core.binary(g, s, B.div), U.affine, 0.5, 0.0)
        elif op == U.abs:  # sign(x): relu_backward(g, x) - relu_backward(g, -x)
            neg = _core.unary(s, U.affine, -1.0, 0.0)
            gx = _core.binary(_core.binary(g, s, B.relu_backward), _core.binary(g, neg, B.relu_backward), B.sub)
        else:  # pragma: no cover
            raise NotImplementedError(op)
        return gx, None, None, None


_KEEPS_OUTPUT = frozenset((U.exp, U.sigmoid, U.tanh, U.sqrt, U.expm1, U.relu))  # their gradients read y, not x

# The ops whose backward is one binary kernel of (g, s; a, b), s being what forward saved (y for the ops that keep
# their output, else x); the kernels ignore the scalars they do not use (csrc/elementwise.h).
_BACKWARD_OF = {
    U.exp: B.mul, U.log: B.div, U.pow: B.pow_backward, U.relu: B.relu_backward,
    U.leaky_relu: B.leaky_relu_backward, U.sigmoid: B.sigmoid_backward, U.tanh: B.tanh_backward,
    U.cos: B.cos_backward, U.sin: B.sin_backward, U.log1p: B.log1p_backward, U.expm1: B.expm1_backward,
    U.softplus: B.softplus_backward, U.gelu: B.gelu_backward, U.gelu_tanh: B.gelu_tanh_backward,
    U.silu: B.silu_backward, U.elu: B.elu_backward,
}


class RDivScalar(Function):
    """y = c / x. Gradient -c / x^2, computed from x (c may be 0)."""

    def forward(self, x, c):
        self.c = c
        self.save_for_backward(x)
        return _core.unary(x, U.rdiv, c)

    def backward(self, g):
        (x,) = self.saved
        gx = _core.binary(g, _core.binary(x, x, B.mul), B.div)
        return _core.unary(gx, U.affine, -self.c, 0.0), None


class ToDevice(Function):
    def forward(self, x, device):
        self.source = x.device
        return x.to(device)

    def backward(self, g):
        return g.to(self.source), None


class ToDtype(Function):
    def forward(self, x, dtype):
        self.source = x.dtype
        return x.astype(dtype)

    def backward(self, g):
        return g.astype(self.source), None


class Clone(Function):
    def forward(self, x):
        return x.clone()

    def backward(self, g):
        return g


def to(x, device=None, dtype=None):
    """A copy of x on another device and/or dtype (x itself when nothing changes): x.to("cuda"), x.to("int64"),
    x.to(device=..., dtype=...). Differentiable between float dtypes and devices; a conversion to int64 or bool is
    not (its result never requires grad). float -> int64 truncates toward zero, -> bool is x != 0."""
    tensor(x, "x", dtypes=ANY_DTYPE)
    if dtype is None and device is not None and _is_dtype(device):  # x.to(gradcore.int64), as PyTorch
        device, dtype = None, device
    out = x
    if dtype is not None and _dtype_name(dtype) != x.dtype:
        out = ToDtype.apply(out, _dtype_name(dtype))
    if device is not None and _device_name(device) != out.device:
        out = ToDevice.apply(out, _device_name(device))
    return out


def clone(x):
    """A copy of x with its own storage. Differentiable."""
    tensor(x, "x", dtypes=ANY_DTYPE)
    return Clone.apply(x)


def _is_dtype(value):
    try:
        _dtype_name(value)
        return True
    except TypeError:
        return False


def _scalar(x):
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


# ---- dtype promotion (PyTorch's rules, for the dtypes gradcore has) ----------------------------------------------
# int64/bool with a float tensor: the float tensor's dtype. int64/bool with a Python float, or divided (true
# division) by anything: float32, PyTorch's default float dtype. float32 with float64 stays an error (as before).
# int64 (or a bool with an int64) +, -, * int64 or a Python int: int64, exact, wrapping on overflow as PyTorch.
# bool with bool (PyTorch's logical arithmetic) raises, naming the argument.
def _cast(t, dtype):
    """t converted to dtype outside the graph (t is int64 or bool, which never requires grad)."""
    return t if t.dtype == dtype else Tensor(t._data.astype(dtype))


def _integer_arithmetic_error(name, dtype):
    return TypeError(f"{name}: arithmetic that keeps an integer result is not supported for {dtype} tensors; "
                     "convert with .float() (or .double()) first")


def _promote_pair(a, b, op):
    """a and b (Tensors of any dtype) as operands of one float dtype for the float kernels."""
    tensor(a, "a", alternative="a Python number", dtypes=ANY_DTYPE)
    tensor(b, "b", alternative="a Python number", dtypes=ANY_DTYPE)
    fa, fb = a.dtype in FLOATING, b.dtype in FLOATING
    if fa and fb:
        return a, b
    if fa or fb:
        dtype = a.dtype if fa else b.dtype
        return _cast(a, dtype), _cast(b, dtype)
    if op == B.div:
        return _cast(a, "float32"), _cast(b, "float32")
    if "int64" in (a.dtype, b.dtype) and op in _INTEGER_OPS:
        return _cast(a, "int64"), _cast(b, "int64")
    raise _integer_arithmetic_error("a", a.dtype)


_INTEGER_OPS = (B.add, B.sub, B.mul)


def _integer_with_number(a, b):
    """Whether a (a Tensor of any dtype) with the Python number b keeps an integer result: int64/bool with an int."""
    tensor(a, "a", alternative="a Python number", dtypes=ANY_DTYPE)
    return a.dtype not in FLOATING and isinstance(b, numbers.Integral)


def _integer_scalar_op(a, b, op, reverse=False):
    """a (int64 or bool) op b (a Python int), or b op a when reverse, in int64."""
    if not -2**63 <= b < 2**63:
        raise ValueError(f"b: {b} does not fit int64")
    a = _cast(a, "int64")
    number = Tensor(_core.from_numpy(np.array(int(b), dtype=np.int64)).to(a.device))
    return Binary.apply(number, a, op) if reverse else Binary.apply(a, number, op)


def _promote_with_scalar(a, b, true_division=False):
    """a (a Tensor of any dtype) as the float operand of an op with the Python number b."""
    tensor(a, "a", alternative="a Python number", dtypes=ANY_DTYPE)
    if a.dtype in FLOATING:
        return a
    if true_division or isinstance(b, float) or not isinstance(b, numbers.Integral):
        return _cast(a, "float32")
    raise _integer_arithmetic_error("a", a.dtype)


def _binary(a, b, op):
    a, b = _promote_pair(a, b, op)
    return Binary.apply(a, b, op)


def add(a, b):
    if _scalar(b):
        if _integer_with_number(a, b):
            return _integer_scalar_op(a, b, B.add)
        return Unary.apply(_promote_with_scalar(a, b), U.affine, 1.0, float(b))
    return _binary(a, b, B.add)


def sub(a, b):
    if _scalar(b):
        if _integer_with_number(a, b):
            return _integer_scalar_op(a, b, B.sub)
        return Unary.apply(_promote_with_scalar(a, b), U.affine, 1.0, -float(b))
    return _binary(a, b, B.sub)


def rsub(a, b):
    """b - a for a number b."""
    if not _scalar(b):
        raise TypeError(f"b: expected a number, got {type(b).__name__}")
    if _integer_with_number(a, b):
        return _integer_scalar_op(a, b, B.sub, reverse=True)
    return Unary.apply(_promote_with_scalar(a, b), U.affine, -1.0, float(b))


def mul(a, b):
    if _scalar(b):
        if _integer_with_number(a, b):
            return _integer_scalar_op(a, b, B.mul)
        return Unary.apply(_promote_with_scalar(a, b), U.affine, float(b), 0.0)
    return _binary(a, b, B.mul)


def div(a, b):
    if _scalar(b):
        a = _promote_with_scalar(a, b, true_division=True)
        b = float(b)  # x / 0 is +-inf (NaN for 0 / 0), as in PyTorch, not a ZeroDivisionError
        return Unary.apply(a, U.affine, 1.0 / b if b != 0 else math.copysign(math.inf, b), 0.0)
    return _binary(a, b, B.div)


def rdiv(a, b):
    """b / a for a number b."""
    if not _scalar(b):
        raise TypeError(f"b: expected a number, got {type(b).__name__}")
    return RDivScalar.apply(_promote_with_scalar(a, b, true_division=True), float(b))


def neg(x):
    if isinstance(x, Tensor) and x.dtype == "int64":
        return _integer_scalar_op(x, 0, B.sub, reverse=True)
    _check_operand(x, "x")
    return Unary.apply(x, U.affine, -1.0, 0.0)


def pow(x, exponent):
    _check_operand(x, "x")
    if not _scalar(exponent):
        raise TypeError(f"exponent: expected a Python number, got {type(exponent).__name__}")
    return Unary.apply(x, U.pow, float(exponent))


def _unary(op, name):
    def fn(x):
        _check_operand(x, "x")
        return Unary.apply(x, op)

    fn.__name__ = name
    return fn


exp = _unary(U.exp, "exp")
log = _unary(U.log, "log")
sqrt = _unary(U.sqrt, "sqrt")
abs = _unary(U.abs, "abs")
relu = _unary(U.relu, "relu")
sigmoid = _unary(U.sigmoid, "sigmoid")
tanh = _unary(U.tanh, "tanh")


def leaky_relu(x, negative_slope=0.01):
    _check_operand(x, "x")
    return Unary.apply(x, U.leaky_relu, real(negative_slope, "negative_slope"))


cos = _unary(U.cos, "cos")
sin = _unary(U.sin, "sin")
log1p = _unary(U.log1p, "log1p")  # log(1 + x), accurate for small x
expm1 = _unary(U.expm1, "expm1")  # e^x - 1, accurate for small x
silu = _unary(U.silu, "silu")     # x * sigmoid(x)


def softplus(x, beta=1.0, threshold=20.0):
    """log(1 + e^(beta x)) / beta, and x itself where beta x > threshold (PyTorch's linear region)."""
    _check_operand(x, "x")
    beta = real(beta, "beta")
    if beta == 0:
        raise ValueError("beta: expected a non-zero number, got 0")
    return Unary.apply(x, U.softplus, beta, real(threshold, "threshold"))


def gelu(x, approximate="none"):
    """x * Phi(x) (Phi the standard normal CDF); approximate="tanh" uses PyTorch's tanh form."""
    _check_operand(x, "x")
    if approximate not in ("none", "tanh"):
        raise ValueError(f"approximate: expected \"none\" or \"tanh\", got {approximate!r}")
    return Unary.apply(x, U.gelu if approximate == "none" else U.gelu_tanh)


def elu(x, alpha=1.0):
    """x for x > 0, alpha * (e^x - 1) otherwise."""
    _check_operand(x, "x")
    return Unary.apply(x, U.elu, real(alpha, "alpha"))


TENSOR_METHODS = {  # attached to Tensor by gradcore.ops
    "__add__": add, "__radd__": add, "__sub__": sub, "__rsub__": rsub,
    "__mul__": mul, "__rmul__": mul, "__truediv__": div, "__rtruediv__": rdiv,
    "__neg__": neg, "__pow__": pow, "pow": pow, "__abs__": abs, "abs": abs,
    "exp": exp, "log": log, "sqrt": sqrt, "relu": relu, "leaky_relu": leaky_relu,
    "sigmoid": sigmoid, "tanh": tanh, "to": to, "clone": clone,
    "cos": cos, "sin": sin, "log1p": log1p, "expm1": expm1,
}
