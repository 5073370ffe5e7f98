"""gradcore.Tensor: a `_core.Array` plus what autograd needs (requires_grad, .grad, the node that made it)."""
from __future__ import annotations

import numbers
import threading

import numpy as np

from . import _core
from ._checks import integer, real

# dtypes are their names (gradcore.float32 == "float32"). Accepted spellings: the names, numpy's types and dtypes,
# and Python's float, int and bool (PyTorch's dtype=float is float64, dtype=int int64).
_DTYPES = {"float32": "float32", "float64": "float64", "int64": "int64", "bool": "bool",
           np.float32: "float32", np.float64: "float64", np.int64: "int64", np.bool_: "bool",
           np.dtype("float32"): "float32", np.dtype("float64"): "float64", np.dtype("int64"): "int64",
           np.dtype("bool"): "bool", float: "float64", int: "int64", bool: "bool"}
FLOATING = ("float32", "float64")  # the dtypes that carry gradients and reach the float kernels

# Held while a gradient is added into a leaf's .grad: backward runs from two threads into one shared leaf would
# otherwise both create .grad, or add into it at once with the GIL released, and lose one of the updates.
_grad_lock = threading.Lock()

float32 = "float32"
float64 = "float64"
int64 = "int64"  # labels and indices; exported as gradcore.int64 and gradcore.long
bool_ = "bool"   # comparison results; exported as gradcore.bool (named bool_ here, where bool is Python's)


def _dtype_name(dtype, argument="dtype"):
    try:
        return _DTYPES[dtype]
    except (KeyError, TypeError):
        raise TypeError(f"{argument}: expected float32, float64, int64 or bool, got {dtype!r}") from None


def _float_dtype_name(dtype, argument="dtype"):
    """A float dtype's name (rand, randn and the like draw only floats)."""
    name = _DTYPES.get(dtype) if isinstance(dtype, (str, type, np.dtype)) else None
    if name not in FLOATING:
        raise TypeError(f"{argument}: expected float32 or float64, got {dtype!r}")
    return name


def _check_requires_grad(requires_grad, dtype):
    if requires_grad and dtype not in FLOATING:
        # PyTorch's words; TypeError (not PyTorch's RuntimeError) as every bad argument here.
        raise TypeError(f"requires_grad: only Tensors of floating point dtype can require gradients, got {dtype}")


def _device_name(device, argument="device"):
    if isinstance(device, str):
        if device == "cpu":
            return "cpu"
        if device == "cuda":
            return "cuda:0"
        if device.startswith("cuda:") and device[5:].isdigit():
            return device
    raise ValueError(f"{argument}: expected \"cpu\", \"cuda\" or \"cuda:N\", got {device!r}")


class Tensor:
    """An n-dimensional float32/float64/int64/bool array on the CPU or a CUDA device, with reverse-mode autograd.

    Always contiguous. `requires_grad` marks leaves whose gradient `backward()` accumulates into `.grad`
    (a Tensor that starts at zero on first use); only float tensors may require gradients.
    """

    # _post_accumulate_grad_hooks is set only on leaves that get one (autograd.py), so plain tensors pay nothing.
    __slots__ = ("_data", "_requires_grad", "grad", "_node", "_output_index", "_post_accumulate_grad_hooks",
                 "__weakref__")
    __array_priority__ = 1000  # numpy defers to Tensor's reflected operators

    def __init__(self, data, requires_grad=False):
        if isinstance(data, Tensor):  # shares data's storage (how a Parameter wraps a Tensor)
            data = data._data
        if not isinstance(data, _core.Array):
            raise TypeError("Tensor(data): expected a _core.Array or a Tensor; use gradcore.tensor(...) for Python "
                            "data")
        self._data = data
        requires_grad = bool(requires_grad)
        if requires_grad:  # (data.dtype builds a string: only asked when it matters, on the hot path)
            _check_requires_grad(requires_grad, data.dtype)
        self._requires_grad = requires_grad
        self.grad = None
        self._node = None
        self._output_index = 0

    # ---- metadata -------------------------------------------------------------------------------------------
    @property
    def requires_grad(self):
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value):
        value = bool(value)
        if value:
            _check_requires_grad(value, self._data.dtype)
        self._requires_grad = value

    def is_floating_point(self):
        return self._data.dtype in FLOATING

    @property
    def shape(self):
        return self._data.shape

    @property
    def dtype(self):
        return self._data.dtype

    @property
    def device(self):
        return self._data.device

    @property
    def ndim(self):
        return self._data.ndim

    @property
    def numel(self):
        return self._data.numel

    def size(self, dim=None):
        if dim is None:
            return self.shape
        dim = integer(dim, "dim")
        if not -self.ndim <= dim < self.ndim:
            raise ValueError(f"dim: {dim} is out of range for a tensor of {self.ndim} dimensions")
        return self.shape[dim]

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    @property
    def is_leaf(self):
        return self._node is None

    @property
    def is_cuda(self):
        return self.device != "cpu"

    def __repr__(self):
        extra = ", requires_grad=True" if self.requires_grad else ""
        body = np.array2string(self.numpy(), separator=", ", prefix="tensor(")
        return f"tensor({body}, dtype={self.dtype}, device={self.device}{extra})"

    # ---- conversion -----------------------------------------------------------------------------------------
    def numpy(self):
        """A numpy view sharing memory for CPU tensors; a host copy for CUDA tensors."""
        return self._data.numpy()

    def __array__(self, dtype=None, copy=None):
        a = self.numpy()
        return a if dtype is None else a.astype(dtype)

    def item(self):
        """The one element as a Python float, int (int64) or bool."""
        if self.numel != 1:
            raise ValueError(f"item(): expected a tensor with one element, got shape {self.shape}")
        return self.numpy().reshape(()).item()

    def __float__(self):
        """float(t) for a one-element tensor (any shape: (), (1,), (1, 1)), as in PyTorch."""
        if self.numel != 1:
            raise ValueError(f"float(): only a tensor with one element converts to a Python number, got shape "
                             f"{self.shape}")
        return float(self.numpy().reshape(()))

    def __int__(self):
        """int(t) for a one-element tensor, truncated toward zero as in PyTorch (int(tensor(-2.7)) == -2)."""
        if self.numel != 1:
            raise ValueError(f"int(): only a tensor with one element converts to a Python number, got shape "
                             f"{self.shape}")
        return int(self.numpy().reshape(()).item())  # int(nan) / int(inf) raise ValueError / OverflowError

    def tolist(self):
        return self.numpy().tolist()

    def cpu(self):
        return self.to("cpu")

    def cuda(self, index=0):
        return self.to(f"cuda:{index}")

    def float(self):
        return self.to(dtype="float32")

    def double(self):
        return self.to(dtype="float64")

    def long(self):
        return self.to(dtype="int64")

    def bool(self):
        return self.to(dtype="bool")

    def detach(self):
        """The same storage, cut from the graph."""
        return Tensor(self._data)

    def requires_grad_(self, requires_grad=True):
        if self._node is not None and not requires_grad:
            raise RuntimeError("requires_grad_: a non-leaf tensor's flag cannot be cleared; use detach()")
        self.requires_grad = requires_grad
        return self

    def zeros_like(self):
        return Tensor(_core.zeros(list(self.shape), self.dtype, self.device))

    def __dlpack__(self, **kwargs):
        return self._data.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._data.__dlpack_device__()

    # ---- in-place helpers used by optimizers and modules (no graph) ------------------------------------------
    def copy_(self, other):
        if not isinstance(other, Tensor):
            other = tensor(other, dtype=self.dtype, device=self.device)
        self._data.copy_(other._data if other.dtype == self.dtype else other._data.astype(self.dtype))
        return self

    def fill_(self, value):
        self._data.fill_(_fill_value(value))
        return self

    def zero_(self):
        return self.fill_(0.0)

    def add_(self, other):
        """self += other (a number, or a Tensor broadcast to self's shape), in place, on self's device."""
        if isinstance(other, Tensor):
            _core.binary(self._data, other._data, _core.BinaryOp.add, out=self._data)
        else:
            _core.unary(self._data, _core.UnaryOp.affine, 1.0, real(other, "other", allow_nan=True), out=self._data)
        return self

    def set_(self, source):
        """self now holds source's storage (shape, dtype, device); PyTorch's set_. Keeps self's identity, so a
        Module moves its parameters to another device without breaking the optimizer's references to them."""
        if not isinstance(source, Tensor):
            raise TypeError(f"source: expected a gradcore.Tensor, got {type(source).__name__}")
        self._data = source._data
        return self

    # ---- autograd -------------------------------------------------------------------------------------------
    # backward(gradient=None, retain_graph=False) is attached by autograd.py, which builds on this module.
    def _accumulate_grad(self, g, owned=False):
        with _grad_lock:
            if self.grad is None:
                # The first contribution is not added to zeros: one pass instead of a fill and an add. owned (the
                # engine holds the only reference to g: autograd._propagate) keeps g itself, as PyTorch steals an
                # incoming gradient; otherwise a copy, because g may be shared: an add hands one gradient to both
                # operands, and a caller's grad_output reaches a leaf as it is.
                self.grad = _wrap(g if owned else g.clone())
                return
            _core.binary(self.grad._data, g, _core.BinaryOp.add, out=self.grad._data)

    # ---- operators and op methods --------------------------------------------------------------------------
    # x + y, x.exp(), x.sum(), x.reshape(...), x.to(...), x.clone() and the rest are the ops' own functions,
    # attached to this class once when gradcore.ops is imported (python/gradcore/ops/__init__.py), so this module
    # imports no op and the layers import downwards only: tensor <- autograd <- ops <- functional, nn, optim.


def _wrap(array):
    """Tensor(array) for what is known to be an Array, without __init__'s checks (the engine's hot path)."""
    out = object.__new__(Tensor)
    out._data = array
    out._requires_grad = False
    out.grad = None
    out._node = None
    out._output_index = 0
    return out


def _inferred_dtype(data, array):
    """PyTorch's inference: numpy data keeps its kind (float64 stays float64, other floats become float32, every
    integer type int64, bool bool); Python data gives bool for bools only, int64 for ints (and bools), float32 as
    soon as one number is a float."""
    kind = array.dtype.kind
    if kind == "b":
        return "bool"
    if kind in "iu":
        return "int64"
    from_numpy_data = isinstance(data, (np.ndarray, np.generic))
    return "float64" if from_numpy_data and array.dtype.itemsize >= 8 else "float32"


def _as_numpy(data, dtype):
    if isinstance(data, Tensor):
        if dtype is None:
            dtype = data.dtype
        data = data.numpy()
    try:
        array = np.asarray(data)
    except ValueError as e:  # numpy's words for a ragged nested list
        raise ValueError(f"data: expected a regular (not ragged) nesting of numbers, got {type(data).__name__}: "
                         f"{e}") from None
    if array.dtype.kind not in "fiub":
        raise TypeError(f"data: expected numbers, got an array of dtype {array.dtype}")
    dtype = _inferred_dtype(data, array) if dtype is None else _dtype_name(dtype)
    if dtype == "int64" and array.dtype.kind == "u" and array.size and array.max() > np.iinfo(np.int64).max:
        raise ValueError(f"data: {array.max()} does not fit int64")
    return np.array(array, dtype=dtype, order="C")


def tensor(data, dtype=None, device="cpu", requires_grad=False):
    """A new tensor holding a copy of `data` (nested lists, numbers, numpy arrays, Tensors).
    dtype is inferred as PyTorch does: bool for bools, int64 for integers (numpy's int32, uint8, ... too), float32
    for Python floats and float32/float16 numpy data, float64 for float64 numpy data, a Tensor's own dtype."""
    array = _as_numpy(data, dtype)
    _check_requires_grad(bool(requires_grad), array.dtype.name)
    out = _core.from_numpy(array)
    device = _device_name(device)
    if device != "cpu":
        out = out.to(device)
    return Tensor(out, requires_grad=requires_grad)


def from_numpy(array):
    """A CPU tensor sharing memory with a C-contiguous float32/float64/int64/bool numpy array (no copy)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"array: expected a numpy.ndarray, got {type(array).__name__}")
    return Tensor(_core.from_numpy(array))


def from_dlpack(x):
    """A tensor sharing memory with any DLPack producer (numpy, PyTorch, CuPy, JAX) or a DLPack capsule."""
    if hasattr(x, "__dlpack__"):
        device_type, device_id = x.__dlpack_device__()
        if device_type == 2:  # CUDA: the producer orders its pending work before our stream
            capsule = x.__dlpack__(stream=_core.cuda_stream(device_id))
        else:
            capsule = x.__dlpack__()
    elif type(x).__name__ == "PyCapsule":
        capsule = x
    else:
        raise TypeError(f"x: expected an object with __dlpack__ (numpy, PyTorch, CuPy, JAX) or a DLPack capsule, "
                        f"got {type(x).__name__}")
    return Tensor(_core.from_dlpack_capsule(capsule))


def _shape_arg(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    for d in shape:
        if not isinstance(d, numbers.Integral) or isinstance(d, bool):
            raise TypeError(f"shape: expected integers, got {shape!r}")
        if not 0 <= d < 2**63:
            raise ValueError(f"shape: expected integers in [0, 2**63), got {shape!r}")
    shape = [int(d) for d in shape]
    count = 1
    for d in shape:
        count *= d
    if count > 2**63 - 1:
        raise ValueError(f"shape: {tuple(shape)} holds more than 2**63 - 1 elements")
    return shape


def zeros(*shape, dtype="float32", device="cpu", requires_grad=False):
    dtype = _dtype_name(dtype)
    _check_requires_grad(requires_grad, dtype)
    return Tensor(_core.zeros(_shape_arg(shape), dtype, _device_name(device)), requires_grad)


def ones(*shape, dtype="float32", device="cpu", requires_grad=False):
    return full(_shape_arg(shape), 1.0, dtype=dtype, device=device, requires_grad=requires_grad)


def full(size, fill_value, dtype=None, device="cpu", requires_grad=False):
    """A tensor of shape `size` (a tuple or list of ints, or one int) with every element fill_value (torch.full);
    dtype=None infers it from fill_value as PyTorch: bool, int64 for an int, else float32."""
    shape = _shape_arg((size,) if isinstance(size, (tuple, list)) else (size,))
    if dtype is None:
        dtype = "bool" if isinstance(fill_value, (bool, np.bool_)) else (
            "int64" if isinstance(fill_value, numbers.Integral) else "float32")
    dtype = _dtype_name(dtype)
    _check_requires_grad(requires_grad, dtype)
    device = _device_name(device)
    if dtype == "int64" and isinstance(fill_value, numbers.Integral) and not -2**53 <= fill_value <= 2**53:
        # the kernels take the value as a double, exact only up to 2**53
        return Tensor(tensor(np.full(shape, _int64_value(fill_value), dtype=np.int64), device=device)._data)
    return Tensor(_core.full(shape, _fill_value(fill_value, "fill_value"), dtype, device), requires_grad)


def _int64_value(value):
    if not -2**63 <= value < 2**63:
        raise ValueError(f"fill_value: {value} does not fit int64")
    return int(value)


def _fill_value(value, argument="value"):
    """A number (a bool too), or a one-element Tensor or numpy array (as PyTorch's fill_ takes a 0-d tensor), as a
    float."""
    if isinstance(value, (bool, np.bool_)):
        return float(value)
    if isinstance(value, Tensor) and value.numel == 1:
        return float(value.item())
    if isinstance(value, np.ndarray) and value.size == 1 and value.dtype.kind in "fiub":
        return float(value.reshape(()))
    return real(value, argument, allow_nan=True)


def _check_tensor_arg(t, name):
    if not isinstance(t, Tensor):
        raise TypeError(f"{name}: expected a gradcore.Tensor, got {type(t).__name__}")


def zeros_like(t):
    _check_tensor_arg(t, "t")
    return zeros(t.shape, dtype=t.dtype, device=t.device)


def ones_like(t):
    _check_tensor_arg(t, "t")
    return ones(t.shape, dtype=t.dtype, device=t.device)
