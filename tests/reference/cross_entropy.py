"""numpy references for cross_entropy and nll_loss (float64), from PyTorch's documented definitions: class-index
targets with weights, ignore_index and label smoothing, and class-probability targets."""
import numpy as np

from .softmax import log_softmax


def _class_axis(x):
    return 0 if x.ndim == 1 else 1


def nll_loss(logp, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """logp: log-probabilities (C), (N, C) or (N, C, d...); target: int class indices of the position shape."""
    logp = np.asarray(logp, np.float64)
    axis = _class_axis(logp)
    C = logp.shape[axis]
    w = np.ones(C) if weight is None else np.asarray(weight, np.float64)
    lp = np.moveaxis(logp, axis, -1)  # (..., C)
    t = np.asarray(target)
    valid = t != ignore_index
    safe_t = np.where(valid, t, 0)
    picked = np.take_along_axis(lp, safe_t[..., None], -1)[..., 0]
    w_t = np.where(valid, w[safe_t], 0.0)
    loss = -(1 - label_smoothing) * w_t * picked
    if label_smoothing:
        loss = loss - np.where(valid, label_smoothing / C * (lp * w).sum(-1), 0.0)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        return loss.sum() / w_t.sum()


def cross_entropy(x, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    x = np.asarray(x, np.float64)
    axis = _class_axis(x)
    logp = log_softmax(x, axis)
    target = np.asarray(target)
    if target.shape == x.shape and target.dtype.kind == "f":  # class probabilities
        C = x.shape[axis]
        q = (1 - label_smoothing) * target + label_smoothing / C
        shape = [1] * x.ndim
        shape[axis] = C
        w = np.ones(shape) if weight is None else np.asarray(weight, np.float64).reshape(shape)
        loss = -(w * q * logp).sum(axis)
        if reduction == "none":
            return loss
        return loss.sum() if reduction == "sum" else loss.sum() / max(loss.size, 1) if loss.size else np.nan
    return nll_loss(logp, target, weight, ignore_index, reduction, label_smoothing)
