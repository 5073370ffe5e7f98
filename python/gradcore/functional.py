"""gradcore.functional: the ops as functions, with PyTorch's names (torch.nn.functional and torch's own ops).

Every name in the `__all__` of each module of gradcore.ops (python/gradcore/ops/<op>.py) is gathered here at import,
so a new op's file is exported without an edit to this one. Two modules exporting one name is an error.
The families and their functions (this list is made at import, from the same `__all__`s):
"""
import importlib as _importlib
import pkgutil as _pkgutil

from . import ops as _ops

__all__ = []
_families = []
for _info in sorted(_pkgutil.iter_modules(_ops.__path__), key=lambda info: info.name):
    _module = _importlib.import_module(f"{_ops.__name__}.{_info.name}")
    _names = list(getattr(_module, "__all__", ()))
    for _name in _names:
        if _name in __all__:
            raise ImportError(f"gradcore.functional: {_name} is exported by two modules of gradcore.ops")
        globals()[_name] = getattr(_module, _name)
        __all__.append(_name)
    if _names:
        _families.append(f"    {_info.name}: {', '.join(sorted(_names))}")
__doc__ = (__doc__ or "") + "\n".join(_families) + (  # None under python -OO
    "\n\nhelp(gradcore.functional.<name>) shows one function's arguments and maths.\n")
del _info, _module, _name, _names, _families
