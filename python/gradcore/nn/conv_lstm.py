"""ConvLSTMCell and the stacked, sequence-level ConvLSTM (Shi et al. 2015) over gradcore.functional.conv_lstm_cell.

Each cell owns one weight (4*hidden, C_in + hidden, kH, kW) applied to concat(x, h) with "same" padding, a bias
(4*hidden,) and optional peepholes (3, hidden, H, W); output channels are the gates [i, f, g, o].

Default initialisation (Keras' ConvLSTM2D, which trains reliably on next-frame prediction): the input part of the
weight Glorot uniform with its own fans, the recurrent part orthogonal (rows of the (4*hidden, hidden*kH*kW) matrix
orthonormal), bias zero except the forget gate's, which starts at 1 so the cell remembers by default
(Jozefowicz et al. 2015), peepholes zero. Each is selectable by argument.

Backpropagation through time needs nothing special: the autograd tape holds every step, and a weight used at T
steps gets its T gradient contributions added in the tape's fixed reverse order, starting from a zero buffer.
For truncated BPTT, pass the returned state into the next call after detaching it.
"""
from __future__ import annotations

import numpy as np

from .. import functional as F
from .._checks import int_pair, integer, real
from ..tensor import Tensor, tensor, zeros
from . import init
from .module import Module, Parameter

_INITIALIZERS = {
    "glorot_uniform": init.glorot_uniform_, "glorot_normal": init.glorot_normal_,
    "he_uniform": init.he_uniform_, "he_normal": init.he_normal_, "orthogonal": init.orthogonal_,
    "zeros": lambda t, generator=None: init.zeros_(t),
}


def _pair(value, name):
    return int_pair(value, name, 1)


def _positive_int(value, name):
    return integer(value, name, 1)


def _initialized(shape, how, name, generator):
    """A float64 numpy array of `shape` drawn by the initializer `how` (a name or a callable(tensor) in place)."""
    t = zeros(*shape, dtype="float64")
    if callable(how):
        how(t)
    elif how in _INITIALIZERS:
        _INITIALIZERS[how](t, generator=generator)
    else:
        raise ValueError(f"{name}: expected a callable or one of {sorted(_INITIALIZERS)}, got {how!r}")
    return t.numpy()


class ConvLSTMCell(Module):
    """One ConvLSTM step: forward(x, state=None) -> (h', c'), with state (h, c) or None for zeros.

    frame_size (H, W) is needed with peephole=True: Shi et al.'s peepholes are per channel and position.
    """

    def __init__(self, in_channels, hidden_channels, kernel_size, bias=True, peephole=False, frame_size=None,
                 input_init="glorot_uniform", recurrent_init="orthogonal", forget_bias=1.0, generator=None):
        super().__init__()
        self.in_channels = _positive_int(in_channels, "in_channels")
        self.hidden_channels = _positive_int(hidden_channels, "hidden_channels")
        self.kernel_size = _pair(kernel_size, "kernel_size")
        if peephole and frame_size is None:
            raise ValueError("frame_size: peepholes are per position, so peephole=True needs frame_size=(H, W)")
        self.frame_size = _pair(frame_size, "frame_size") if frame_size is not None else None
        hid, (kh, kw) = self.hidden_channels, self.kernel_size
        w_input = _initialized((4 * hid, self.in_channels, kh, kw), input_init, "input_init", generator)
        w_recurrent = _initialized((4 * hid, hid, kh, kw), recurrent_init, "recurrent_init", generator)
        self.weight = Parameter(_tensor(np.concatenate([w_input, w_recurrent], axis=1)))
        if bias:
            b = np.zeros(4 * hid)
            b[hid:2 * hid] = real(forget_bias, "forget_bias")  # gate order [i, f, g, o]
            self.bias = Parameter(_tensor(b))
        else:
            self.bias = None
        self.peephole = Parameter(zeros(3, hid, *self.frame_size)) if peephole else None

    def zero_state(self, x):
        """Zero (h, c) for an input step x (N, C_in, H, W)."""
        n, _, height, width = x.shape
        h = zeros(n, self.hidden_channels, height, width, dtype=x.dtype, device=x.device)
        return h, zeros(n, self.hidden_channels, height, width, dtype=x.dtype, device=x.device)

    def forward(self, x, state=None):
        if isinstance(x, Tensor) and x.ndim == 4 and x.shape[1] != self.in_channels:
            raise ValueError(f"x: expected {self.in_channels} channels (N, C_in, H, W), got shape {x.shape}")
        if self.frame_size is not None and isinstance(x, Tensor) and x.ndim == 4 and x.shape[2:] != self.frame_size:
            raise ValueError(f"x: frames of {x.shape[2:]} differ from frame_size {self.frame_size} of the peepholes")
        h, c = self.zero_state(x) if state is None else _state_pair(state, "state")
        return F.conv_lstm_cell(x, h, c, self.weight, self.bias, self.peephole)

    def extra_repr(self):
        extra = f", peephole=True, frame_size={self.frame_size}" if self.peephole is not None else ""
        return (f"{self.in_channels}, {self.hidden_channels}, kernel_size={self.kernel_size}"
                f"{'' if self.bias is not None else ', bias=False'}{extra}")


def _tensor(values):
    return tensor(np.asarray(values, dtype=np.float32))


def _state_pair(state, name):
    if not isinstance(state, (tuple, list)) or len(state) != 2:
        raise TypeError(f"{name}: expected a pair (h, c) of Tensors, got {type(state).__name__}")
    return state[0], state[1]


class ConvLSTM(Module):
    """A stack of ConvLSTM layers run over a sequence.

    x: (N, T, C_in, H, W) when batch_first (the default), else (T, N, C_in, H, W).
    hidden_channels: an int for every layer or a list with one per layer (a list sets num_layers when num_layers
    is left at 1). forward(x, state=None) returns (output, [(h, c) per layer]): output is the last layer's h at
    every step, (N, T, hidden, H, W) (or (T, N, ...)), or only at the last step, (N, hidden, H, W), when
    return_sequences=False. state=None starts from zeros; pass the returned state (detached) to continue a sequence.
    """

    def __init__(self, in_channels, hidden_channels, kernel_size, num_layers=1, bias=True, peephole=False,
                 batch_first=True, return_sequences=True, frame_size=None, input_init="glorot_uniform",
                 recurrent_init="orthogonal", forget_bias=1.0, generator=None):
        super().__init__()
        num_layers = _positive_int(num_layers, "num_layers")
        if isinstance(hidden_channels, (list, tuple)):
            hidden = [_positive_int(h, "hidden_channels") for h in hidden_channels]
            if num_layers == 1 and len(hidden) > 1:
                num_layers = len(hidden)
            if len(hidden) != num_layers:
                raise ValueError(f"hidden_channels: {len(hidden)} entries for num_layers={num_layers}")
        else:
            hidden = [_positive_int(hidden_channels, "hidden_channels")] * num_layers
        self.in_channels = _positive_int(in_channels, "in_channels")
        self.hidden_channels = hidden
        self.num_layers = num_layers
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.batch_first = bool(batch_first)
        self.return_sequences = bool(return_sequences)
        cells = []
        for layer, hid in enumerate(hidden):
            cell = ConvLSTMCell(self.in_channels if layer == 0 else hidden[layer - 1], hid, kernel_size, bias=bias,
                                peephole=peephole, frame_size=frame_size, input_init=input_init,
                                recurrent_init=recurrent_init, forget_bias=forget_bias, generator=generator)
            setattr(self, f"cell{layer}", cell)
            cells.append(cell)
        object.__setattr__(self, "cells", tuple(cells))

    def forward(self, x, state=None):
        layout = "(N, T, C, H, W)" if self.batch_first else "(T, N, C, H, W)"
        if not isinstance(x, Tensor):
            raise TypeError(f"x: expected a gradcore.Tensor {layout}, got {type(x).__name__}")
        if x.ndim != 5:
            raise ValueError(f"x: expected 5 dimensions {layout}, got shape {x.shape}")
        if x.shape[2] != self.in_channels:
            raise ValueError(f"x: expected {self.in_channels} channels at dim 2 {layout}, got shape {x.shape}")
        time_dim = 1 if self.batch_first else 0
        if x.shape[time_dim] == 0:
            raise ValueError(f"x: the sequence is empty (T = 0) in shape {x.shape}")
        if state is not None and (not isinstance(state, (list, tuple)) or len(state) != self.num_layers):
            raise ValueError(f"state: expected a list of {self.num_layers} (h, c) pairs, one per layer, or None")
        steps = F.unbind(x, dim=time_dim)
        final = []
        for layer, cell in enumerate(self.cells):
            h_c = None if state is None else _state_pair(state[layer], f"state[{layer}]")
            outputs = []
            for x_t in steps:
                h_c = cell(x_t, h_c)
                outputs.append(h_c[0])
            final.append(tuple(h_c))
            steps = outputs
        output = F.stack(steps, dim=time_dim) if self.return_sequences else steps[-1]
        return output, final

    def extra_repr(self):
        hidden = self.hidden_channels[0] if len(set(self.hidden_channels)) == 1 else self.hidden_channels
        return (f"{self.in_channels}, {hidden}, kernel_size={self.kernel_size}, num_layers={self.num_layers}, "
                f"batch_first={self.batch_first}, return_sequences={self.return_sequences}")
