"""numpy references for conv2d and conv_transpose2d, in float64, written from the definitions:

conv2d:           y[n, o, i, j] = b[o] + sum_{c, u, v} w[o, c, u, v] * xpad[n, g*Cg + c, i*s_h + u*d_h, j*s_w + v*d_w]
conv_transpose2d: every input pixel scatters its weighted kernel into the full output,
                  full[n, g*Og + o, i*s_h + u*d_h, j*s_w + v*d_w] += x[n, g*Cg + c, i, j] * w[g*Cg + c, o, u, v],
                  which is then cropped by the padding (top/left), extended by output_padding and offset by b.
padding="same" (both ops) from its definition, by search rather than by formula, so it does not repeat ours.
"""
import numpy as np


def same_padding(size, kernel, stride, dilation):
    """conv2d's (before, after) for padding="same": the least total padding giving ceil(size / stride) outputs,
    split evenly with the odd pixel after (bottom/right)."""
    wanted = -(-size // stride)
    total = 0
    while (size + total - dilation * (kernel - 1) - 1) // stride + 1 < wanted:
        total += 1
    return total // 2, total - total // 2


def same_cropping(size, kernel, stride, dilation):
    """conv_transpose2d's ((before, after), output_padding) for padding="same": out = size * stride. The full output
    (every scattered kernel) is cropped down to that, the odd pixel at the bottom/right; when it is too short, the
    missing rows are output_padding."""
    full = (size - 1) * stride + dilation * (kernel - 1) + 1
    for crop_total in range(full + 1):
        if full - crop_total == size * stride:
            return (crop_total // 2, crop_total - crop_total // 2), 0
    return (0, 0), size * stride - full


def conv2d(x, w, b=None, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), groups=1):
    """padding: (top, bottom, left, right)."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    n, c_in, _, _ = x.shape
    c_out, cg, kh, kw = w.shape
    og = c_out // groups
    sh, sw = stride
    dh, dw = dilation
    top, bottom, left, right = padding
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    ho = (xp.shape[2] - dh * (kh - 1) - 1) // sh + 1
    wo = (xp.shape[3] - dw * (kw - 1) - 1) // sw + 1
    y = np.zeros((n, c_out, ho, wo))
    for g in range(groups):
        xg = xp[:, g * cg:(g + 1) * cg]
        wg = w[g * og:(g + 1) * og]
        for u in range(kh):
            for v in range(kw):
                patch = xg[:, :, u * dh:u * dh + (ho - 1) * sh + 1:sh, v * dw:v * dw + (wo - 1) * sw + 1:sw]
                y[:, g * og:(g + 1) * og] += np.einsum("nchw,oc->nohw", patch, wg[:, :, u, v])
    if b is not None:
        y += np.asarray(b, np.float64)[None, :, None, None]
    return y


def conv_transpose2d(x, w, b=None, stride=(1, 1), padding=(0, 0, 0, 0), output_padding=(0, 0), dilation=(1, 1),
                     groups=1):
    """padding: (top, bottom, left, right) cropped from the full output; output_padding: extra (bottom, right)."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    n, c_in, h, wd = x.shape
    _, og, kh, kw = w.shape
    cg = c_in // groups
    sh, sw = stride
    dh, dw = dilation
    top, bottom, left, right = padding
    full_h = (h - 1) * sh + dh * (kh - 1) + 1 + output_padding[0]
    full_w = (wd - 1) * sw + dw * (kw - 1) + 1 + output_padding[1]
    full = np.zeros((n, og * groups, full_h, full_w))
    for g in range(groups):
        xg = x[:, g * cg:(g + 1) * cg]
        wg = w[g * cg:(g + 1) * cg]
        for u in range(kh):
            for v in range(kw):
                contribution = np.einsum("nchw,co->nohw", xg, wg[:, :, u, v])
                full[:, g * og:(g + 1) * og, u * dh:u * dh + (h - 1) * sh + 1:sh,
                     v * dw:v * dw + (wd - 1) * sw + 1:sw] += contribution
    y = full[:, :, top:full_h - bottom, left:full_w - right]
    if b is not None:
        y = y + np.asarray(b, np.float64)[None, :, None, None]
    return y


def conv2d_grad_weight(x, gy, kernel, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), groups=1):
    """dL/dw[o, c, u, v] = sum_{n, i, j} gy[n, o, i, j] * xpad[n, g*Cg + c, i*s_h + u*d_h, j*s_w + v*d_w]."""
    x = np.asarray(x, np.float64)
    gy = np.asarray(gy, np.float64)
    n, c_in, _, _ = x.shape
    _, c_out, ho, wo = gy.shape
    cg, og = c_in // groups, c_out // groups
    kh, kw = kernel
    (sh, sw), (dh, dw) = stride, dilation
    top, bottom, left, right = padding
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    gw = np.zeros((c_out, cg, kh, kw))
    for g in range(groups):
        for u in range(kh):
            for v in range(kw):
                patch = xp[:, g * cg:(g + 1) * cg, u * dh:u * dh + (ho - 1) * sh + 1:sh,
                           v * dw:v * dw + (wo - 1) * sw + 1:sw]
                gw[g * og:(g + 1) * og, :, u, v] = np.einsum("nohw,nchw->oc", gy[:, g * og:(g + 1) * og], patch)
    return gw


def conv2d_grad_input(gy, w, input_size, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), groups=1):
    """dL/dx: every output gradient scatters back through the kernel taps that read it (then the padding is cut)."""
    gy = np.asarray(gy, np.float64)
    w = np.asarray(w, np.float64)
    n, c_out, ho, wo = gy.shape
    _, cg, kh, kw = w.shape
    og = c_out // groups
    (sh, sw), (dh, dw) = stride, dilation
    top, bottom, left, right = padding
    h, wd = input_size
    gxp = np.zeros((n, cg * groups, h + top + bottom, wd + left + right))
    for g in range(groups):
        for u in range(kh):
            for v in range(kw):
                contribution = np.einsum("nohw,oc->nchw", gy[:, g * og:(g + 1) * og], w[g * og:(g + 1) * og, :, u, v])
                gxp[:, g * cg:(g + 1) * cg, u * dh:u * dh + (ho - 1) * sh + 1:sh,
                    v * dw:v * dw + (wo - 1) * sw + 1:sw] += contribution
    return gxp[:, :, top:top + h, left:left + wd]
