"""numpy reference of the ConvLSTM cell and a stacked sequence, from the maths of Shi et al. (2015), with its own
convolution. Gate order along the 4*hidden channels: [i, f, g, o]; peepholes [w_ci, w_cf, w_co]."""
import numpy as np


def conv2d_same(x, weight, bias=None):
    """Stride-1 cross-correlation with "same" padding: (k - 1) // 2 before, the rest (the odd pixel) after."""
    n, c, h, w = x.shape
    out_ch, in_ch, kh, kw = weight.shape
    assert in_ch == c
    pad_h, pad_w = kh - 1, kw - 1
    xp = np.pad(x, ((0, 0), (0, 0), (pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2)))
    out = np.zeros((n, out_ch, h, w))
    for dy in range(kh):
        for dx in range(kw):
            out += np.einsum("ncyx,oc->noyx", xp[:, :, dy:dy + h, dx:dx + w], weight[:, :, dy, dx])
    if bias is not None:
        out += bias[None, :, None, None]
    return out


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def gates(pre, c, peephole=None):
    """(h', c', activated gates [i, f, g, o] stacked on axis 1) from pre-activations (N, 4*hidden, H, W)."""
    a_i, a_f, a_g, a_o = np.split(pre, 4, axis=1)
    w_ci, w_cf, w_co = peephole if peephole is not None else (0.0, 0.0, 0.0)
    i = sigmoid(a_i + w_ci * c)
    f = sigmoid(a_f + w_cf * c)
    g = np.tanh(a_g)
    c_next = f * c + i * g
    o = sigmoid(a_o + w_co * c_next)
    h_next = o * np.tanh(c_next)
    return h_next, c_next, np.concatenate([i, f, g, o], axis=1)


def cell(x, h, c, weight, bias=None, peephole=None):
    pre = conv2d_same(np.concatenate([x, h], axis=1), weight, bias)
    h_next, c_next, _ = gates(pre, c, peephole)
    return h_next, c_next


def sequence(x, state, weights, biases, peepholes):
    """Stacked ConvLSTM over x (N, T, C, H, W): returns (outputs of the last layer (N, T, hidden, H, W),
    [(h, c) per layer] after the last step). state: [(h0, c0) per layer]."""
    layer_input = [x[:, t] for t in range(x.shape[1])]
    final = []
    for (h, c), weight, bias, peephole in zip(state, weights, biases, peepholes):
        outputs = []
        for x_t in layer_input:
            h, c = cell(x_t, h, c, weight, bias, peephole)
            outputs.append(h)
        final.append((h, c))
        layer_input = outputs
    return np.stack(layer_input, axis=1), final
