"""numpy references for the losses, from their definitions (float64)."""
import numpy as np


def _reduce(per_element, reduction):
    if reduction == "mean":
        return per_element.mean()
    if reduction == "sum":
        return per_element.sum()
    return per_element


def mse_loss(x, t, reduction="mean"):
    return _reduce((np.asarray(x, np.float64) - t) ** 2, reduction)


def binary_cross_entropy(p, t, reduction="mean"):
    # -(t log p + (1-t) log(1-p)), each log clamped at -100 as PyTorch does so p = 0 or 1 stays finite.
    p = np.asarray(p, np.float64)
    with np.errstate(divide="ignore"):
        log_p = np.maximum(np.log(p), -100.0)
        log_q = np.maximum(np.log(1.0 - p), -100.0)
    return _reduce(-(t * log_p + (1.0 - t) * log_q), reduction)


def binary_cross_entropy_with_logits(z, t, reduction="mean"):
    # -(t log s(z) + (1-t) log(1 - s(z))) with log s(z) = -log(1 + e^-z) = -logaddexp(0, -z),
    # log(1 - s(z)) = -logaddexp(0, z): exact for any z without overflow.
    z = np.asarray(z, np.float64)
    return _reduce(t * np.logaddexp(0.0, -z) + (1.0 - t) * np.logaddexp(0.0, z), reduction)


def l1_loss(x, t, reduction="mean"):
    return _reduce(np.abs(np.asarray(x, np.float64) - t), reduction)


def smooth_l1_loss(x, t, reduction="mean", beta=1.0):
    d = np.abs(np.asarray(x, np.float64) - t)
    if beta == 0:
        return _reduce(d, reduction)
    return _reduce(np.where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta), reduction)


def huber_loss(x, t, reduction="mean", delta=1.0):
    d = np.abs(np.asarray(x, np.float64) - t)
    return _reduce(np.where(d < delta, 0.5 * d * d, delta * (d - 0.5 * delta)), reduction)
