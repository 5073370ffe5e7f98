"""Losses: mse_loss and binary cross-entropy (per-element terms in csrc/elementwise.h, reduced by ops.reduce)."""
from __future__ import annotations


import numpy as np

from .. import _core
from ..autograd import Function
from .._checks import tensor
from . import reduce
from . import elementwise as ew

__all__ = ["binary_cross_entropy", "binary_cross_entropy_with_logits", "mse_loss"]  # gradcore.functional exports these

B = _core.BinaryOp

_REDUCTIONS = ("mean", "sum", "none")


def _check_pair(input, target, name):
    tensor(input, "input")
    tensor(target, "target")
    if input.shape != target.shape:
        raise ValueError(f"{name}: target must have input's shape {input.shape}, got {target.shape}")
    if input.dtype != target.dtype:
        raise TypeError(f"{name}: target must have input's dtype {input.dtype}, got {target.dtype}")
    if input.device != target.device:
        raise ValueError(f"{name}: target must be on input's device {input.device}, got {target.device}")


def _reduce(loss, reduction, name):
    if reduction == "mean":
        return reduce.mean(loss)
    if reduction == "sum":
        return reduce.sum(loss)
    if reduction == "none":
        return loss
    raise ValueError(f"{name}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def mse_loss(input, target, reduction="mean"):
    """mean (or sum) of (input - target)^2. Gradients reach both input and target."""
    _check_pair(input, target, "mse_loss")
    diff = ew.sub(input, target)
    return _reduce(ew.mul(diff, diff), reduction, "mse_loss")


class _ElementwiseLoss(Function):
    """l = forward_op(x, t) per element; dl/dx = backward_op(x, t). The target gets no gradient (PyTorch's rule)."""

    forward_op = backward_op = None

    def forward(self, x, t):
        self.save_for_backward(x, t)
        return _core.binary(x, t, self.forward_op)

    def backward(self, g):
        x, t = self.saved
        return _core.binary(g, _core.binary(x, t, self.backward_op), B.mul), None


class _BCE(_ElementwiseLoss):
    forward_op, backward_op = B.bce, B.bce_backward


class _BCEWithLogits(_ElementwiseLoss):
    forward_op, backward_op = B.bce_with_logits, B.bce_with_logits_backward


def _no_target_grad(target, name):
    if target.requires_grad:
        raise ValueError(f"{name}: target must not require grad (its derivative is not provided)")


def binary_cross_entropy(input, target, reduction="mean"):
    """-(t log p + (1 - t) log(1 - p)) for probabilities p = input in [0, 1]; logs are clamped at -100 (as PyTorch).
    Prefer binary_cross_entropy_with_logits: it is stable for any logit."""
    _check_pair(input, target, "binary_cross_entropy")
    _no_target_grad(target, "binary_cross_entropy")
    p = input.numpy()  # a view on the CPU; a copy from a CUDA device (a synchronisation, as PyTorch's own check)
    if not np.all((p >= 0) & (p <= 1)):  # NaN fails too
        bad = p[~((p >= 0) & (p <= 1))].flat[0]
        raise ValueError(f"binary_cross_entropy: input: expected probabilities in [0, 1], got {float(bad)!r}; "
                         "apply sigmoid first, or use binary_cross_entropy_with_logits on the logits")
    return _reduce(_BCE.apply(input, target), reduction, "binary_cross_entropy")


def binary_cross_entropy_with_logits(input, target, reduction="mean"):
    """BCE of sigmoid(input) against target, computed as max(z, 0) - z t + log(1 + e^-|z|)."""
    _check_pair(input, target, "binary_cross_entropy_with_logits")
    _no_target_grad(target, "binary_cross_entropy_with_logits")
    return _reduce(_BCEWithLogits.apply(input, target), reduction, "binary_cross_entropy_with_logits")


