"""Comparisons and selection (kernels: csrc/cpu/comparison.cpp, csrc/cuda/comparison.cu), clamp, maximum, minimum.

Comparisons (==, !=, <, <=, >, >=, logical_and/or/xor/not) take tensors of any dtype or Python numbers, broadcast
like numpy and return bool tensors, which never require grad. Mixed operands are first brought to one dtype by
PyTorch's promotion: bool < int64 < float32 < float64 between tensors; a Python number lifts an int64 or bool
tensor only to its own kind (an int: int64, a float: float32) and takes a float tensor's dtype.

where(condition, input, other), clamp, maximum and minimum are differentiable in input/other (float tensors):
  where:    d/d input = where(condition, g, 0), d/d other = where(condition, 0, g)
  clamp:    d/dx = g where min <= x <= max (both bounds included), else 0; with tensor bounds, d/dmin = g where
            x < min (and min < max), d/dmax = g where x > max (or max < min), as PyTorch's derivatives.yaml
  maximum:  d/da = g where a > b, g/2 where a == b, 0 where a < b; d/db the mirror image (ties split evenly)
  minimum:  the same with the inequalities reversed
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .. import _core
from .._checks import ANY_DTYPE, real, tensor
from ..autograd import Function
from ..tensor import FLOATING, Tensor
from .elementwise import sum_to_shape

__all__ = [  # gradcore.functional exports these
    "clamp", "clip", "eq", "ge", "gt", "le", "logical_and", "logical_not", "logical_or", "logical_xor", "lt",
    "maximum", "minimum", "ne", "where",
]

C, U, B = _core.CompareOp, _core.UnaryOp, _core.BinaryOp
_RANK = {"bool": 0, "int64": 1, "float32": 2, "float64": 3}
_BY_RANK = {0: "bool", 1: "int64", 2: "float32", 3: "float64"}


def _number(value):
    return isinstance(value, (numbers.Real, np.bool_)) and not isinstance(value, Tensor)


def _number_rank(value):
    if isinstance(value, (bool, np.bool_)):
        return 0
    return 1 if isinstance(value, numbers.Integral) else 2


def _result_dtype(a, b):
    """The dtype two operands (Tensors or numbers, one at least a Tensor) are compared or selected in."""
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        return _BY_RANK[max(_RANK[a.dtype], _RANK[b.dtype])]
    t, n = (a, b) if isinstance(a, Tensor) else (b, a)
    n_rank = _number_rank(n)
    if n_rank <= _RANK[t.dtype] or t.dtype in FLOATING:
        return t.dtype
    return _BY_RANK[n_rank]  # int64/bool tensor with a larger kind of number: int64 or float32


def _as_array(value, dtype, device, name):
    """A Tensor's array converted to dtype (outside the graph), or a number as a 0-d array of dtype on device."""
    if isinstance(value, Tensor):
        return value._data if value.dtype == dtype else value._data.astype(dtype)
    if dtype == "int64":  # exact: the fill kernels take a double
        if not -2**63 <= int(value) < 2**63:
            raise ValueError(f"{name}: {value} does not fit int64")
        return _core.from_numpy(np.array(int(value), dtype=np.int64)).to(device)
    return _core.full([], float(value), dtype, device)


def _operands(a, b, names=("input", "other")):
    """(a, b) checked: Tensors of any dtype or Python numbers, at least one a Tensor."""
    for value, name in zip((a, b), names):
        if not _number(value):
            tensor(value, name, alternative="a Python number", dtypes=ANY_DTYPE)
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise TypeError(f"{names[0]}, {names[1]}: expected at least one gradcore.Tensor, got two numbers")
    device = (a if isinstance(a, Tensor) else b).device
    return _result_dtype(a, b), device


# ---- comparisons --------------------------------------------------------------------------------------------------
def _compare(a, b, op):
    dtype, device = _operands(a, b)
    return Tensor(_core.compare(_as_array(a, dtype, device, "input"), _as_array(b, dtype, device, "other"), op))


def eq(input, other):
    """input == other elementwise (a bool tensor)."""
    return _compare(input, other, C.eq)


def ne(input, other):
    return _compare(input, other, C.ne)


def lt(input, other):
    return _compare(input, other, C.lt)


def le(input, other):
    return _compare(input, other, C.le)


def gt(input, other):
    return _compare(input, other, C.gt)


def ge(input, other):
    return _compare(input, other, C.ge)


def logical_and(input, other):
    """(input != 0) and (other != 0), elementwise, for any dtypes (a bool tensor)."""
    return _compare(input, other, C.logical_and)


def logical_or(input, other):
    return _compare(input, other, C.logical_or)


def logical_xor(input, other):
    return _compare(input, other, C.logical_xor)


def logical_not(input):
    """input == 0, elementwise (a bool tensor)."""
    tensor(input, "input", dtypes=ANY_DTYPE)
    return _compare(input, False if input.dtype == "bool" else 0, C.eq)


def _operator(fn):
    """A comparison as a Python operator: an operand of another kind returns NotImplemented, so that `t == None`
    is False (Python's fallback) and `t < "a"` raises Python's own TypeError, as with PyTorch."""
    def method(self, other):
        if not isinstance(other, Tensor) and not _number(other):
            return NotImplemented
        return fn(self, other)

    method.__name__ = f"__{fn.__name__}__"
    return method


def _bool_operator(fn, symbol):
    """&, |, ^ on bool tensors (PyTorch's are bitwise on integers, which gradcore does not provide)."""
    def method(self, other):
        if not isinstance(other, Tensor) and not isinstance(other, (bool, np.bool_)):
            return NotImplemented
        for value in (self, other):
            if isinstance(value, Tensor) and value.dtype != "bool":
                raise TypeError(f"other: {symbol} is defined for bool tensors here, got {value.dtype}; use "
                                f"gradcore.{fn.__name__} for other dtypes")
        return fn(self, other)

    return method


def _invert(self):
    if self.dtype != "bool":
        raise TypeError(f"input: ~ is defined for bool tensors here, got {self.dtype}; use gradcore.logical_not")
    return logical_not(self)


def _bool(self):
    """bool(t) for a one-element tensor, as PyTorch; ambiguous (an error) for more elements."""
    if self.numel != 1:
        raise RuntimeError(f"Boolean value of Tensor with {self.numel} values is ambiguous; use .any() or .all() "
                           "or compare one element")
    return bool(self.item())


# ---- where --------------------------------------------------------------------------------------------------------
class Where(Function):
    def forward(self, condition, a, b):
        self.a_shape, self.b_shape = a.shape, b.shape
        self.condition = condition  # a bool array: never written in place by an op
        return _core.where(condition, a, b)

    def backward(self, g):
        need_a, need_b = self.needs_input_grad[1:3]
        zero = _core.zeros([], g.dtype, g.device)
        ga = sum_to_shape(_core.where(self.condition, g, zero), self.a_shape) if need_a else None
        gb = sum_to_shape(_core.where(self.condition, zero, g), self.b_shape) if need_b else None
        return None, ga, gb


def where(condition, input, other):
    """condition ? input : other elementwise; the three broadcast together. input and other are Tensors or Python
    numbers (promoted to one dtype); differentiable in input and other."""
    tensor(condition, "condition", dtypes=("bool",))
    dtype, device = _operands(input, other)
    if isinstance(input, Tensor) and input.dtype != dtype:
        input = Tensor(input._data.astype(dtype))
    if isinstance(other, Tensor) and other.dtype != dtype:
        other = Tensor(other._data.astype(dtype))
    a = input if isinstance(input, Tensor) else Tensor(_as_array(input, dtype, device, "input"))
    b = other if isinstance(other, Tensor) else Tensor(_as_array(other, dtype, device, "other"))
    return Where.apply(condition, a, b)


def _where_method(self, condition, other):
    """x.where(condition, y) is where(condition, x, y), as PyTorch."""
    return where(condition, self, other)


# ---- clamp ----------------------------------------------------------------------------------------------------------
def _mask_where(mask, g):
    return _core.where(mask, g, _core.zeros([], g.dtype, g.device))


def _both(a, b):
    return _core.compare(a, b, C.logical_and)


class ClampScalar(Function):
    def forward(self, x, low, high):
        self.low, self.high = low, high
        self.save_for_backward(x)
        return _core.unary(x, U.clamp, low, high)

    def backward(self, g):
        (x,) = self.saved
        low = _core.full([], self.low, x.dtype, x.device)
        high = _core.full([], self.high, x.dtype, x.device)
        inside = _both(_core.compare(x, low, C.ge), _core.compare(x, high, C.le))
        return _mask_where(inside, g), None, None


class ClampTensor(Function):
    """min(max(x, low), high) with tensor bounds (either may be None)."""

    def forward(self, x, low, high):
        self.shapes = (x.shape, None if low is None else low.shape, None if high is None else high.shape)
        self.save_for_backward(x, low, high)
        y = x
        if low is not None:
            y = _core.binary(y, low, B.maximum)
        if high is not None:
            y = _core.binary(y, high, B.minimum)
        return y

    def backward(self, g):
        x, low, high = self.saved
        need_x, need_low, need_high = self.needs_input_grad
        gx = glow = ghigh = None
        if need_x:
            if low is not None and high is not None:
                inside = _both(_core.compare(x, low, C.ge), _core.compare(x, high, C.le))
            elif low is not None:
                inside = _core.compare(x, low, C.ge)
            else:
                inside = _core.compare(x, high, C.le)
            gx = sum_to_shape(_mask_where(inside, g), self.shapes[0])
        if need_low:
            below = _core.compare(x, low, C.lt)
            if high is not None:
                below = _both(below, _core.compare(low, high, C.lt))
            glow = sum_to_shape(_mask_where(below, g), self.shapes[1])
        if need_high:
            above = _core.compare(x, high, C.gt)
            if low is not None:
                above = _core.compare(above, _core.compare(high, low, C.lt), C.logical_or)
            ghigh = sum_to_shape(_mask_where(above, g), self.shapes[2])
        return gx, glow, ghigh


def clamp(input, min=None, max=None):
    """min(max(input, min), max) elementwise (float tensors). min and max are Python numbers or Tensors
    (broadcast), at least one given; min > max gives max everywhere, as PyTorch. Gradient 1 where
    min <= input <= max (bounds included), 0 outside."""
    tensor(input, "input")
    if min is None and max is None:
        raise ValueError("min, max: at least one of min and max must be given")
    for value, name in ((min, "min"), (max, "max")):
        if value is not None and not isinstance(value, Tensor):
            real(value, name, allow_nan=True)
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        bounds = []
        for value, name in ((min, "min"), (max, "max")):
            if isinstance(value, Tensor):
                tensor(value, name)
                if value.dtype != input.dtype:
                    raise TypeError(f"{name}: expected dtype {input.dtype} (the dtype of input), got {value.dtype}")
            elif value is not None:
                value = Tensor(_core.full([], float(value), input.dtype, input.device))
            bounds.append(value)
        return ClampTensor.apply(input, *bounds)
    low = -math.inf if min is None else float(min)
    high = math.inf if max is None else float(max)
    return ClampScalar.apply(input, low, high)


clip = clamp  # numpy's and PyTorch's alias


# ---- maximum and minimum -------------------------------------------------------------------------------------------
class Extremum(Function):
    def forward(self, a, b, op):
        self.op = op
        self.shapes = (a.shape, b.shape)
        self.save_for_backward(a, b)
        return _core.binary(a, b, op)

    def backward(self, g):
        a, b = self.saved
        need_a, need_b = self.needs_input_grad[:2]
        half = _core.unary(g, U.affine, 0.5, 0.0)
        tie = _core.compare(a, b, C.eq)
        split = _core.where(tie, half, g)  # g / 2 on ties, else g (broadcast to the output's shape)
        zero = _core.zeros([], g.dtype, g.device)
        # maximum: a loses where a < b; minimum: where a > b. b loses in the mirror case.
        a_loses, b_loses = (C.lt, C.gt) if self.op == B.maximum else (C.gt, C.lt)
        ga = gb = None
        if need_a:
            ga = sum_to_shape(_core.where(_core.compare(a, b, a_loses), zero, split), self.shapes[0])
        if need_b:
            gb = sum_to_shape(_core.where(_core.compare(a, b, b_loses), zero, split), self.shapes[1])
        return ga, gb, None


def _extremum(input, other, op):
    tensor(input, "input")
    tensor(other, "other")
    if other.dtype != input.dtype:
        raise TypeError(f"other: expected dtype {input.dtype} (the dtype of input), got {other.dtype}")
    return Extremum.apply(input, other, op)


def maximum(input, other):
    """The elementwise maximum of two float tensors (broadcast); NaN if either is NaN. Ties split the gradient."""
    return _extremum(input, other, B.maximum)


def minimum(input, other):
    """The elementwise minimum of two float tensors (broadcast); NaN if either is NaN. Ties split the gradient."""
    return _extremum(input, other, B.minimum)


TENSOR_METHODS = {  # attached to Tensor by gradcore.ops
    "__eq__": _operator(eq), "__ne__": _operator(ne), "__lt__": _operator(lt), "__le__": _operator(le),
    "__gt__": _operator(gt), "__ge__": _operator(ge), "__hash__": object.__hash__,
    "__and__": _bool_operator(logical_and, "&"), "__rand__": _bool_operator(logical_and, "&"),
    "__or__": _bool_operator(logical_or, "|"), "__ror__": _bool_operator(logical_or, "|"),
    "__xor__": _bool_operator(logical_xor, "^"), "__rxor__": _bool_operator(logical_xor, "^"),
    "__invert__": _invert, "__bool__": _bool,
    "eq": eq, "ne": ne, "lt": lt, "le": le, "gt": gt, "ge": ge,
    "logical_and": logical_and, "logical_or": logical_or, "logical_xor": logical_xor, "logical_not": logical_not,
    "where": _where_method, "clamp": clamp, "clip": clip, "maximum": maximum, "minimum": minimum,
}
