"""Differentiable ops: one module per op family, each a set of autograd Functions over `_core` kernels.

Importing this package attaches to Tensor the methods that are ops (x + y, x.exp(), x.sum(), x.to(...)), once, here:
tensor.py defines the data type and imports no op, so every layer imports downwards only
(tensor <- autograd <- ops <- functional, nn, optim). A Tensor method is the op's function itself.
"""
from ..tensor import Tensor
from . import elementwise as _ew, reduce as _reduce


def _reshape(self, *shape):
    """x.reshape(2, 3) or x.reshape((2, 3)); one dimension may be -1 (inferred)."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return _reduce.reshape(self, shape)


_TENSOR_METHODS = {
    "__add__": _ew.add, "__radd__": _ew.add, "__sub__": _ew.sub, "__rsub__": _ew.rsub,
    "__mul__": _ew.mul, "__rmul__": _ew.mul, "__truediv__": _ew.div, "__rtruediv__": _ew.rdiv,
    "__neg__": _ew.neg, "__pow__": _ew.pow, "pow": _ew.pow, "__abs__": _ew.abs, "abs": _ew.abs,
    "exp": _ew.exp, "log": _ew.log, "sqrt": _ew.sqrt, "relu": _ew.relu, "leaky_relu": _ew.leaky_relu,
    "sigmoid": _ew.sigmoid, "tanh": _ew.tanh,
    "sum": _reduce.sum, "mean": _reduce.mean, "reshape": _reshape, "view": _reshape,
    "to": _ew.to, "clone": _ew.clone,
}
for _name, _fn in _TENSOR_METHODS.items():
    setattr(Tensor, _name, _fn)
