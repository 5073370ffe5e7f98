"""Module: parameters, buffers and submodules registered by attribute assignment, as in PyTorch."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from ..hooks import RemovableHandle  # noqa: F401  (also importable from here, as before)
from ..tensor import Tensor


class Parameter(Tensor):
    """A Tensor that a Module registers as trainable: requires_grad=True by default."""

    __slots__ = ()

    def __init__(self, data, requires_grad=True):
        super().__init__(data, requires_grad=requires_grad)  # a Tensor's storage is shared, as in PyTorch

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of every layer and network. Subclasses set attributes in __init__ and define forward()."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before assigning attributes")
        params, buffers, modules = self._parameters, self._buffers, self._modules
        if isinstance(value, (Parameter, Module)):
            for table in (params, buffers, modules):
                table.pop(name, None)
            (params if isinstance(value, Parameter) else modules)[name] = value
        elif name in params:  # PyTorch's rule: a parameter is replaced by a Parameter or None, never dropped silently
            if value is not None:
                raise TypeError(f"{name}: cannot assign a {type(value).__name__} to a parameter; "
                                "wrap it in nn.Parameter (or assign None)")
            params[name] = None
        elif name in buffers:  # assigning a registered buffer updates it (running statistics stay saved state)
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"{name}: cannot assign a {type(value).__name__} to a buffer; "
                                "expected a Tensor or None")
            buffers[name] = value
        else:
            modules.pop(name, None)
        object.__setattr__(self, name, value)

    def register_buffer(self, name, tensor):
        """State that is saved and moved with the module but not trained (BatchNorm's running statistics)."""
        if not isinstance(name, str) or not name.isidentifier():
            raise TypeError(f"name: expected an attribute name (a str), got {name!r}")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"tensor: expected a gradcore.Tensor or None, got {type(tensor).__name__}")
        self._buffers[name] = tensor
        object.__setattr__(self, name, tensor)

    def __call__(self, *args, **kwargs):
        output = self.forward(*args, **kwargs)
        hooks = self.__dict__.get("_forward_hooks")
        if hooks:  # the common case (no hooks) costs one dict lookup
            for hook in list(hooks.values()):
                replaced = hook(self, args, output)
                if replaced is not None:
                    output = replaced
        return output

    def register_forward_hook(self, hook):
        """Calls hook(module, inputs, output) after every forward() of this module (PyTorch's semantics: `inputs`
        is the tuple of positional arguments; a hook that returns something other than None replaces the
        output). Returns a handle whose remove() unregisters the hook (also usable as a context manager)."""
        if not callable(hook):
            raise TypeError(f"hook: expected a callable hook(module, inputs, output), got {type(hook).__name__}")
        hooks = self.__dict__.get("_forward_hooks")
        if hooks is None:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before registering hooks")
        return RemovableHandle(hooks, hook)

    def forward(self, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    # ---- traversal ------------------------------------------------------------------------------------------
    def named_modules(self, prefix=""):
        yield prefix, self
        for name, module in self._modules.items():
            yield from module.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def children(self):
        return iter(self._modules.values())

    def named_parameters(self, prefix=""):
        seen = set()
        for module_name, module in self.named_modules(prefix):
            for name, p in module._parameters.items():
                if p is not None and id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{module_name}.{name}" if module_name else name), p

    def parameters(self):
        for _, p in self.named_parameters():
            yield p

    def named_buffers(self, prefix=""):
        for module_name, module in self.named_modules(prefix):
            for name, b in module._buffers.items():
                if b is not None:
                    yield (f"{module_name}.{name}" if module_name else name), b

    def buffers(self):
        for _, b in self.named_buffers():
            yield b

    # ---- modes ----------------------------------------------------------------------------------------------
    def train(self, mode=True):
        """Training mode for this module and every submodule (BatchNorm uses batch statistics)."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        """Evaluation mode for the whole network (BatchNorm uses its running statistics)."""
        return self.train(False)

    def zero_grad(self, set_to_none=True):
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    # ---- devices and state ----------------------------------------------------------------------------------
    def to(self, device=None, dtype=None):
        """Moves (or converts) every parameter and buffer in place, keeping Parameter identities. A dtype converts
        the float tensors only (an int64 buffer, such as a step count, keeps its dtype), as PyTorch."""
        for module in self.modules():
            for table in (module._parameters, module._buffers):
                for name, t in table.items():
                    if t is None:
                        continue
                    keep_dtype = dtype is not None and not t.is_floating_point()
                    t.set_(t.detach().to(device=device, dtype=None if keep_dtype else dtype))
                    if t.grad is not None:
                        t.grad = t.grad.to(device=device, dtype=dtype)
        return self

    def cuda(self, index=0):
        return self.to(f"cuda:{index}")

    def cpu(self):
        return self.to("cpu")

    def double(self):
        return self.to(dtype="float64")

    def float(self):
        return self.to(dtype="float32")

    def state_dict(self):
        """Name -> Tensor for every parameter and buffer: detached (requires_grad=False, no graph) copies on the
        module's device, so a state_dict taken as a snapshot (the best epoch's weights) stays what it was while
        training goes on. (PyTorch's are detached views sharing the storage; a copy costs one pass over the
        weights and spares the deepcopy that snapshots need there.) Hand it to load_state_dict or gradcore.save."""
        state = OrderedDict()
        for name, t in list(self.named_parameters()) + list(self.named_buffers()):
            state[name] = Tensor(t._data.clone())
        return state

    def load_state_dict(self, state, strict=True):
        """Copies Tensors (or numpy arrays) into the parameters and buffers, in place, checking names and shapes;
        a value of another dtype or device is converted to the parameter's. Returns (missing keys, unexpected
        keys); with strict=True (the default) either raises KeyError."""
        if not isinstance(state, dict):
            raise TypeError(f"state: expected a dict of name -> array (from state_dict()), got {type(state).__name__}")
        own = OrderedDict(list(self.named_parameters()) + list(self.named_buffers()))
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        if strict and (missing or unexpected):
            raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        for name, target in own.items():
            if name not in state:
                continue
            value = state[name]
            if isinstance(value, Tensor):  # copied device to device, converted on the way when dtypes differ
                if value.shape != target.shape:
                    raise ValueError(f"load_state_dict: {name} expected shape {target.shape}, got {value.shape}")
                target.copy_(value)
                continue
            value = np.asarray(value)
            if tuple(value.shape) != target.shape:
                raise ValueError(f"load_state_dict: {name} expected shape {target.shape}, got {tuple(value.shape)}")
            host = np.array(value, dtype=target.dtype, order="C")  # ascontiguousarray would make 0-d arrays 1-d
            target.copy_(host)
        return missing, unexpected

    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, m in self._modules.items():
            child = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child}")
        return lines[0] + (")" if len(lines) == 1 else "\n" + "\n".join(lines[1:]) + "\n)")


class Sequential(Module):
    """Runs its modules in order: Sequential(conv, ReLU(), ...).

    [Conv2d | ConvTranspose2d | BatchNorm2d, ReLU] pairs without forward hooks run as one fused op, with the same
    bits as the modules one by one (nn/fusion.py); fuse_activations = False runs every module on its own."""

    fuse_activations = True

    def __init__(self, *modules):
        super().__init__()
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise TypeError(f"Sequential: argument {i} must be a Module, got {type(m).__name__}")
            setattr(self, str(i), m)

    def __len__(self):
        return len(self._modules)

    def __getitem__(self, index):
        return list(self._modules.values())[index]

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        setattr(self, str(len(self._modules)), module)
        return self

    def forward(self, x):
        modules = list(self._modules.values())
        if not self.fuse_activations or len(modules) < 2:
            for m in modules:
                x = m(x)
            return x
        fused_pair = _fused_pair or _import_fused_pair()
        i, n = 0, len(modules)
        while i < n:
            fused = fused_pair(modules[i], modules[i + 1]) if i + 1 < n else None
            if fused is not None:
                x = fused(modules[i], x)
                i += 2
            else:
                x = modules[i](x)
                i += 1
        return x


_fused_pair = None  # nn.fusion.fused_pair, imported on first use: nn.fusion imports the modules it fuses, which import
                    # this file (an import statement inside forward cost ~1 us per call)


def _import_fused_pair():
    global _fused_pair
    from .fusion import fused_pair
    _fused_pair = fused_pair
    return fused_pair
