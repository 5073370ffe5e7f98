"""Gradient clipping as in torch.nn.utils: clip_grad_norm_ and clip_grad_value_, over every gradient in one pass
(kernels: csrc/cpu/grad_norm.cpp, csrc/cuda/grad_norm.cu; the maths and the summation order: csrc/grad_norm.h)."""
from __future__ import annotations

import math
import threading

from .. import _core
from .._checks import real
from ..autograd import no_grad
from ..tensor import Tensor, tensor

# device -> TensorTable, rebuilt only when the gradient buffers change between calls. One cache per thread: a table
# is rebuilt in place while the kernels run without the GIL, so two threads sharing one would walk each other's
# half-built table (a crash).
_tables = threading.local()


def _gradients(parameters, where="parameters"):
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    try:
        parameters = list(parameters)
    except TypeError:
        raise TypeError(f"{where}: expected a Tensor or an iterable of Tensors, got "
                        f"{type(parameters).__name__}") from None
    grads = []
    seen = set()  # each gradient buffer once: a parameter listed twice is one parameter, and scaling one buffer from
    # two entries of the table would race on CUDA (two blocks read-modify-writing the same elements)
    for i, p in enumerate(parameters):
        if not isinstance(p, Tensor):
            raise TypeError(f"{where}[{i}]: expected a Tensor (a Parameter), got {type(p).__name__}")
        if p.grad is not None and (not p.grad.numel or p.grad._data.data_ptr not in seen):
            seen.add(p.grad._data.data_ptr)
            grads.append(p.grad)
    if grads:
        first = grads[0]
        for i, g in enumerate(grads):
            if g.device != first.device:
                raise ValueError(f"{where}: gradients on two devices ({first.device} and {g.device}); clip each "
                                 "device's parameters separately")
            if g.dtype != first.dtype:
                raise ValueError(f"{where}: gradients of two dtypes ({first.dtype} and {g.dtype}); clip each "
                                 "dtype's parameters separately")
    return grads


def _table(device):
    tables = _tables.__dict__
    table = tables.get(device)
    if table is None:
        table = tables[device] = _core.TensorTable()
    return table


def _norm_type(norm_type):
    if isinstance(norm_type, str) and norm_type.strip().lower() in ("inf", "+inf", "infinity"):
        return math.inf  # PyTorch accepts the string "inf"
    return real(norm_type, "norm_type", minimum=0.0, low_open=True)


@no_grad()
def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, per_tensor=False):
    """Scales the gradients of `parameters` in place so that their global norm is at most max_norm, as
    torch.nn.utils.clip_grad_norm_: every gradient is multiplied by min(1, max_norm / (norm + 1e-6)).

    norm_type: p of the p-norm, or inf for the largest absolute value.
    error_if_nonfinite: raise RuntimeError (and leave the gradients alone) when the norm is NaN or infinite.
    per_tensor: clip each tensor by its own norm (MATLAB's "l2norm" gradient threshold method).
    Returns the global norm of the gradients before clipping, a 0-d Tensor (of the gradients' dtype and device).
    """
    max_norm = real(max_norm, "max_norm", minimum=0.0)
    norm_type = _norm_type(norm_type)
    grads = _gradients(parameters)
    if not grads:
        return tensor(0.0)
    device = grads[0].device
    state = _core.zeros([4], "float64", device)
    scales = _core.zeros([len(grads)], "float64", device)
    arrays = [g._data for g in grads]
    table = _table(device)
    norm = _core.grad_norm(table, arrays, norm_type, max_norm, bool(per_tensor), state, scales)
    if error_if_nonfinite and state.numpy()[2] != 0:
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so it "
                           "cannot be clipped. To disable this error and scale the gradients by the non-finite norm "
                           "anyway, set `error_if_nonfinite=False`")
    _core.grad_scale_(table, arrays, scales)
    return Tensor(norm)


@no_grad()
def clip_grad_value_(parameters, clip_value):
    """Clamps every gradient element of `parameters` to [-clip_value, clip_value] in place (NaN stays NaN)."""
    clip_value = real(clip_value, "clip_value", minimum=0.0)
    grads = _gradients(parameters)
    if grads:
        _core.grad_clamp_(_table(grads[0].device), [g._data for g in grads], clip_value)
