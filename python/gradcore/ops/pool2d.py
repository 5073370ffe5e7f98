"""2-d pooling: max_pool2d, avg_pool2d, adaptive_avg_pool2d (maths and window rules: csrc/pool2d.h; kernels:
csrc/cpu/pool2d.cpp, csrc/cuda/pool2d.cu). Inputs are (N, C, H, W), or (C, H, W) for one unbatched image, as in
PyTorch. The binding checks what needs the input's shape (padding at most half the kernel, the output size)."""
from __future__ import annotations

import numbers

from .. import _core
from .._checks import int_pair, integer, tensor
from ..autograd import Function

__all__ = ["adaptive_avg_pool2d", "avg_pool2d", "max_pool2d"]  # gradcore.functional exports these


class MaxPool2d(Function):
    """y = max over each window; backward routes dy to the saved argmax of its window (csrc/pool2d.h). With
    return_indices the argmax (int64, not differentiable) is a second output."""

    def forward(self, x, params, return_indices):
        self.params, self.x_shape = params, list(x.shape)
        y, indices = _core.max_pool2d_forward(x, *params)
        self.save_for_backward(indices)
        return (y, indices) if return_indices else y

    def backward(self, g, *unused):  # unused: the (zero) gradient of the indices output
        (indices,) = self.saved
        return _core.max_pool2d_backward(g, indices, self.x_shape, *self.params), None, None


class AvgPool2d(Function):
    def forward(self, x, params):
        self.params, self.x_shape = params, list(x.shape)
        return _core.avg_pool2d_forward(x, *params)

    def backward(self, g):
        return _core.avg_pool2d_backward(g, self.x_shape, *self.params), None


class AdaptiveAvgPool2d(Function):
    def forward(self, x, output_size):
        self.x_shape = list(x.shape)
        return _core.adaptive_avg_pool2d_forward(x, output_size)

    def backward(self, g):
        return _core.adaptive_avg_pool2d_backward(g, self.x_shape), None


def _batched(input, op):
    """input as (N, C, H, W), and whether it came unbatched (C, H, W)."""
    tensor(input, "input")
    if input.ndim == 3:
        return input.reshape(1, *input.shape), True
    if input.ndim != 4:
        raise ValueError(f"input: {op} expected a 3-d (C, H, W) or 4-d (N, C, H, W) input, got shape {input.shape}")
    return input, False


def _unbatched(y, was_unbatched):
    return y.reshape(*y.shape[1:]) if was_unbatched else y


def _stride(stride, kernel_size):
    """stride=None (or an empty list, PyTorch's other spelling) means the kernel size."""
    if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0):
        return kernel_size
    return int_pair(stride, "stride", 1)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max over kernel_size windows, as torch.nn.functional.max_pool2d. Padding cells never win; ties go to the
    first cell of the window (row-major), on every device. return_indices=True also returns the argmax of each
    window as int64 flat indices h*W + w into its (H, W) plane, as PyTorch (for max_unpool2d)."""
    x, unbatched = _batched(input, "max_pool2d")
    kernel = int_pair(kernel_size, "kernel_size", 1)
    params = (kernel, _stride(stride, kernel), int_pair(padding, "padding", 0), int_pair(dilation, "dilation", 1),
              bool(ceil_mode))
    out = MaxPool2d.apply(x, params, bool(return_indices))
    if return_indices:
        return _unbatched(out[0], unbatched), _unbatched(out[1], unbatched)
    return _unbatched(out, unbatched)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Mean over kernel_size windows, as torch.nn.functional.avg_pool2d: count_include_pad counts the zero padding
    in the divisor; divisor_override (a positive int) replaces the divisor."""
    x, unbatched = _batched(input, "avg_pool2d")
    kernel = int_pair(kernel_size, "kernel_size", 1)
    divisor = 0 if divisor_override is None else integer(divisor_override, "divisor_override", 1, 2**31 - 1)
    params = (kernel, _stride(stride, kernel), int_pair(padding, "padding", 0), bool(ceil_mode),
              bool(count_include_pad), divisor)
    return _unbatched(AvgPool2d.apply(x, params), unbatched)


def _output_size(output_size, shape):
    """(OH, OW) from an int, or a pair whose None entries keep the input's size."""
    if isinstance(output_size, (tuple, list)) and len(output_size) == 2 and any(v is None for v in output_size):
        sizes = [shape[2 + k] if v is None else v for k, v in enumerate(output_size)]
        return int_pair(tuple(sizes), "output_size", 1)
    if isinstance(output_size, numbers.Integral) or isinstance(output_size, (tuple, list)):
        return int_pair(output_size, "output_size", 1)
    raise TypeError(f"output_size: expected an int or a pair of ints (or None), got {output_size!r}")


def adaptive_avg_pool2d(input, output_size):
    """Mean over output_size windows that tile the input, as torch.nn.functional.adaptive_avg_pool2d: window i of
    OH covers rows [floor(i H / OH), ceil((i + 1) H / OH))."""
    x, unbatched = _batched(input, "adaptive_avg_pool2d")
    return _unbatched(AdaptiveAvgPool2d.apply(x, _output_size(output_size, x.shape)), unbatched)
