"""The ConvLSTM cell (Shi et al. 2015): one convolution over concat(x, h) with "same" padding gives the four gate
pre-activations, ordered [i, f, g, o] along channels; one fused kernel applies the gates and the state update
(maths and backward formulas: csrc/conv_lstm.h; kernels: csrc/cpu/conv_lstm.cpp, csrc/cuda/conv_lstm.cu).
"""
from __future__ import annotations

from .. import _core
from ..autograd import Function
from .._checks import tensor
from .concat import cat
from .conv2d import conv2d

__all__ = ["conv_lstm_cell", "conv_lstm_gates"]  # gradcore.functional exports these


class ConvLSTMGates(Function):
    """(h', c') = gates(pre, c, peephole). Saves the activated gates, c and c' for the fused backward kernel."""

    def forward(self, pre, c, peephole):
        h_next, c_next, gates = _core.conv_lstm_gates_forward(pre, c, peephole)
        self.save_for_backward(gates, c, c_next, peephole)
        return h_next, c_next

    def backward(self, d_h_next, d_c_next):
        gates, c, c_next, peephole = self.saved
        d_pre, d_c, d_peephole = _core.conv_lstm_gates_backward(gates, c, c_next, d_h_next, d_c_next, peephole)
        return d_pre, d_c, d_peephole


def _check_tensor(t, name, ndim, layout, optional=False):
    """conv_lstm_cell is several kernels (cat, conv2d, the gates), so it checks its arguments' shapes here: a
    binding would name its own argument (cat's tensors[1] for h)."""
    if tensor(t, name, optional) is not None and t.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dimensions {layout}, got shape {t.shape}")


def _check_like(t, name, reference, reference_name):
    if t.dtype != reference.dtype:
        raise TypeError(f"{name}: dtype {t.dtype} differs from {reference_name}'s dtype {reference.dtype}")
    if t.device != reference.device:
        raise ValueError(f"{name}: device {t.device} differs from {reference_name}'s device {reference.device}")


def conv_lstm_gates(pre, c, peephole=None):
    """The fused gates alone: pre (N, 4*hidden, H, W) ordered [i, f, g, o], c (N, hidden, H, W), optional peephole
    (3, hidden, H, W) ordered [w_ci, w_cf, w_co]. Returns (h', c')."""
    tensor(pre, "pre")
    tensor(c, "c")
    tensor(peephole, "peephole", optional=True)
    return ConvLSTMGates.apply(pre, c, peephole)  # the binding checks their shapes, dtypes and devices


def conv_lstm_cell(x, h, c, weight, bias=None, peephole=None):
    """One ConvLSTM step. Returns (h', c').

    x (N, C_in, H, W); h, c (N, hidden, H, W); weight (4*hidden, C_in + hidden, kH, kW), applied to concat(x, h)
    along channels (input channels first) with "same" padding (an even kernel pads one extra pixel at the
    bottom/right); bias (4*hidden,); peephole (3, hidden, H, W). Output channels of weight and bias are the gates
    in the order [i, f, g, o]:
        i = sigmoid(a_i + w_ci . c)   f = sigmoid(a_f + w_cf . c)   g = tanh(a_g)
        c' = f . c + i . g            o = sigmoid(a_o + w_co . c')  h' = o . tanh(c')
    """
    _check_tensor(x, "x", 4, "(N, C_in, H, W)")
    _check_tensor(h, "h", 4, "(N, hidden, H, W)")
    _check_tensor(c, "c", 4, "(N, hidden, H, W)")
    _check_tensor(weight, "weight", 4, "(4*hidden, C_in + hidden, kH, kW)")
    _check_tensor(bias, "bias", 1, "(4*hidden,)", optional=True)
    _check_tensor(peephole, "peephole", 4, "(3, hidden, H, W)", optional=True)
    n, c_in, height, width = x.shape
    hidden = h.shape[1]
    if h.shape != (n, hidden, height, width):
        raise ValueError(f"h: expected shape (N, hidden, H, W) with x's N, H, W {(n, height, width)}, got {h.shape}")
    if c.shape != h.shape:
        raise ValueError(f"c: expected h's shape {h.shape}, got {c.shape}")
    if weight.shape[:2] != (4 * hidden, c_in + hidden):
        raise ValueError(f"weight: expected shape (4*hidden, C_in + hidden, kH, kW) = ({4 * hidden}, {c_in + hidden}, "
                         f"kH, kW), got {weight.shape}")
    if bias is not None and bias.shape != (4 * hidden,):
        raise ValueError(f"bias: expected shape ({4 * hidden},), got {bias.shape}")
    if peephole is not None and peephole.shape != (3, hidden, height, width):
        raise ValueError(f"peephole: expected shape {(3, hidden, height, width)}, got {peephole.shape}")
    for t, name in ((h, "h"), (c, "c"), (weight, "weight"), (bias, "bias"), (peephole, "peephole")):
        if t is not None:
            _check_like(t, name, x, "x")
    pre = conv2d(cat([x, h], dim=1), weight, bias, padding="same")
    return ConvLSTMGates.apply(pre, c, peephole)
