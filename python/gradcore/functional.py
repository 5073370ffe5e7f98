"""gradcore.functional: the ops as functions, with PyTorch's names.

Every name in the `__all__` of each module of gradcore.ops (python/gradcore/ops/<op>.py) is gathered here at import,
so a new op's file is exported without an edit to this one. Two modules exporting one name is an error.
"""
import importlib as _importlib
import pkgutil as _pkgutil

from . import ops as _ops

__all__ = []
for _info in sorted(_pkgutil.iter_modules(_ops.__path__), key=lambda info: info.name):
    _module = _importlib.import_module(f"{_ops.__name__}.{_info.name}")
    for _name in getattr(_module, "__all__", ()):
        if _name in __all__:
            raise ImportError(f"gradcore.functional: {_name} is exported by two modules of gradcore.ops")
        globals()[_name] = getattr(_module, _name)
        __all__.append(_name)
del _info, _module, _name
