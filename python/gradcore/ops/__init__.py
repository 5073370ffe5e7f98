"""Differentiable ops: one module per op family, each a set of autograd Functions over `_core` kernels.

Importing this package attaches to Tensor the methods that are ops (x + y, x.exp(), x.sum(), x.to(...)), once, here:
tensor.py defines the data type and imports no op, so every layer imports downwards only
(tensor <- autograd <- ops <- functional, nn, optim). A Tensor method is the op's function itself.

Each module of this package names its own methods in a `TENSOR_METHODS` dict (method name -> function), so a new op
family attaches its methods without an edit here. Two modules attaching one name is an error.
"""
import importlib as _importlib
import pkgutil as _pkgutil

from ..tensor import Tensor

_attached = {}
for _info in sorted(_pkgutil.iter_modules(__path__), key=lambda info: info.name):
    _module = _importlib.import_module(f"{__name__}.{_info.name}")
    for _name, _fn in getattr(_module, "TENSOR_METHODS", {}).items():
        if _name in _attached:
            raise ImportError(f"gradcore.ops: Tensor.{_name} is attached by both {_attached[_name]} and {_info.name}")
        _attached[_name] = _info.name
        setattr(Tensor, _name, _fn)
del _info, _module, _name, _fn
