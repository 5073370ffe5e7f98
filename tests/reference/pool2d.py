"""numpy references for 2-d pooling (float64), written from PyTorch's documented definitions with plain loops:
windows over a padded input, the output-size rule with ceil_mode, and first-index ties for max pooling."""
import math

import numpy as np


def output_size(size, kernel, stride, pad, dilation, ceil_mode):
    span = size + 2 * pad - dilation * (kernel - 1) - 1
    out = (math.ceil(span / stride) if ceil_mode else math.floor(span / stride)) + 1
    if ceil_mode and (out - 1) * stride >= size + pad:  # the last window must start inside input or left padding
        out -= 1
    return out


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def max_pool2d(x, kernel, stride=None, padding=0, dilation=1, ceil_mode=False):
    """(y, indices) for x (N, C, H, W); indices flat h*W + w in each plane."""
    x = np.asarray(x, np.float64)
    (kh, kw), (ph, pw), (dh, dw) = _pair(kernel), _pair(padding), _pair(dilation)
    sh, sw = _pair(stride if stride is not None else kernel)
    N, C, H, W = x.shape
    OH, OW = output_size(H, kh, sh, ph, dh, ceil_mode), output_size(W, kw, sw, pw, dw, ceil_mode)
    y = np.empty((N, C, OH, OW))
    idx = np.empty((N, C, OH, OW), np.int64)
    for n in range(N):
        for c in range(C):
            for oh in range(OH):
                for ow in range(OW):
                    best, at = -np.inf, None
                    for i in range(kh):
                        for j in range(kw):
                            h, w = oh * sh - ph + i * dh, ow * sw - pw + j * dw
                            if 0 <= h < H and 0 <= w < W:
                                v = x[n, c, h, w]
                                if at is None:
                                    at = h * W + w
                                if v > best or np.isnan(v):
                                    best, at = v, h * W + w
                    y[n, c, oh, ow], idx[n, c, oh, ow] = best, at
    return y, idx


def avg_pool2d(x, kernel, stride=None, padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None):
    x = np.asarray(x, np.float64)
    (kh, kw), (ph, pw) = _pair(kernel), _pair(padding)
    sh, sw = _pair(stride if stride is not None else kernel)
    N, C, H, W = x.shape
    OH, OW = output_size(H, kh, sh, ph, 1, ceil_mode), output_size(W, kw, sw, pw, 1, ceil_mode)
    y = np.zeros((N, C, OH, OW))
    for oh in range(OH):
        for ow in range(OW):
            h0, w0 = oh * sh - ph, ow * sw - pw
            h1, w1 = min(h0 + kh, H + ph), min(w0 + kw, W + pw)  # windows past the padded input are cut there
            padded_count = (h1 - h0) * (w1 - w0)
            a0, b0, a1, b1 = max(h0, 0), max(w0, 0), min(h1, H), min(w1, W)
            if a0 >= a1 or b0 >= b1:
                continue
            total = x[:, :, a0:a1, b0:b1].sum(axis=(2, 3))
            if divisor_override:
                divisor = divisor_override
            else:
                divisor = padded_count if count_include_pad else (a1 - a0) * (b1 - b0)
            y[:, :, oh, ow] = total / divisor
    return y


def adaptive_avg_pool2d(x, output_size):
    x = np.asarray(x, np.float64)
    N, C, H, W = x.shape
    OH, OW = _pair(output_size)
    y = np.empty((N, C, OH, OW))
    for oh in range(OH):
        for ow in range(OW):
            h0, h1 = (oh * H) // OH, -((-(oh + 1) * H) // OH)
            w0, w1 = (ow * W) // OW, -((-(ow + 1) * W) // OW)
            y[:, :, oh, ow] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
    return y
