"""softmax and log_softmax along one dimension (maths: csrc/softmax.h; kernels: csrc/cpu/softmax.cpp,
csrc/cuda/softmax.cu). Stable for any logits: each row is shifted by its max before exponentiating."""
from __future__ import annotations

from .. import _core
from .._checks import dim as _dim
from .._checks import tensor
from ..autograd import Function
from ..tensor import _dtype_name

__all__ = ["log_softmax", "softmax"]  # gradcore.functional exports these


class Softmax(Function):
    """y = softmax(x) or log_softmax(x) along dim; backward from the saved output y (see csrc/softmax.h)."""

    def forward(self, x, dim, log):
        self.dim, self.log = dim, log
        y = _core.softmax_forward(x, dim, log)
        self.save_for_backward(y)
        return y

    def backward(self, g):
        (y,) = self.saved
        return _core.softmax_backward(y, g, self.dim, self.log), None, None


def _prepare(x, dim, dtype, name):
    tensor(x, "input")
    if dim is None:
        raise TypeError(f"{name}: dim: expected an int (the dimension to normalise over), got None; PyTorch's "
                        "implicit choice of dim is deprecated, so gradcore asks for it")
    dim = _dim(dim, max(x.ndim, 1), "dim")
    if dtype is not None:
        x = x.to(dtype=_dtype_name(dtype))
    return x, dim


def softmax(input, dim=None, dtype=None):
    """e^x / sum e^x along dim, as torch.nn.functional.softmax; dtype casts the input first."""
    x, dim = _prepare(input, dim, dtype, "softmax")
    return Softmax.apply(x, dim, False)


def log_softmax(input, dim=None, dtype=None):
    """x - log(sum e^x) along dim, computed as (x - max) - log(sum e^(x - max)): finite for any finite logits."""
    x, dim = _prepare(input, dim, dtype, "log_softmax")
    return Softmax.apply(x, dim, True)


def _softmax_method(self, dim, dtype=None):
    return softmax(self, dim, dtype)


def _log_softmax_method(self, dim, dtype=None):
    return log_softmax(self, dim, dtype)


TENSOR_METHODS = {"softmax": _softmax_method, "log_softmax": _log_softmax_method}  # see gradcore.ops
