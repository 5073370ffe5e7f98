"""Losses: binary cross-entropy (per-element terms in csrc/elementwise.h), reduced by ops.reduce; mse_loss, l1_loss,
smooth_l1_loss and huber_loss (csrc/regression_loss.h), each one autograd node that also takes the mean or sum, and
whose backward is one pass (the reduction's gradient broadcast inside the kernel). The classification losses
(cross_entropy, nll_loss) live in ops/cross_entropy.py."""
from __future__ import annotations


import numpy as np

from .. import _core
from ..autograd import Function
from .._checks import real, tensor
from . import reduce

__all__ = [  # gradcore.functional exports these
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "huber_loss", "l1_loss", "mse_loss", "smooth_l1_loss",
]  # gradcore.functional exports these

B = _core.BinaryOp

_REDUCTIONS = ("mean", "sum", "none")


def _check_pair(input, target, name):
    tensor(input, "input")
    tensor(target, "target")
    input, target = input._data, target._data  # (the Arrays' attributes: no Tensor property call per read)
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


def _check_reduction(reduction, name):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{name}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _reduction_scale(input, reduction):
    """What the reduced per-element losses are multiplied by: 1/n for the mean, 1 for the sum, None for "none"."""
    if reduction == "none":
        return None
    if reduction == "sum":
        return 1.0
    if input.numel == 0:  # as ops.reduce.mean says it
        raise ValueError(f"mean: the reduced axes of shape {input.shape} hold no elements")
    return 1.0 / input.numel


def mse_loss(input, target, reduction="mean"):
    """mean (or sum) of (input - target)^2. Gradients reach both input and target.
    The same bits as sub, mul and mean composed (each kernel rounds as they did), in 1 node and 2-3 passes for 7."""
    _check_pair(input, target, "mse_loss")
    _check_reduction(reduction, "mse_loss")
    return _RegressionLoss.apply(input, target, _R.squared, 0.0, _reduction_scale(input, reduction))


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


class _RegressionLoss(Function):
    """Per-element squared / l1 / smooth_l1 / huber loss of d = x - t, then its sum times `scale` (1/n: the mean;
    1: the sum) or, for scale None, the per-element losses. dL/dx = G * dloss/dd with G = scale * g broadcast (as
    Sum's backward rounds it) or g per element; dL/dt = -dL/dx."""

    fresh_gradients = True  # backward's gradients are new Arrays, kept nowhere else (autograd.Function)

    def forward(self, x, t, kind, param, scale):
        self.kind, self.param, self.scale = kind, param, scale
        self.save_for_backward(x, t)
        loss = _core.regression_loss_forward(x, t, kind, param)
        if scale is None:
            return loss
        y = _core.sum(loss, list(range(x.ndim)))  # reduce.Sum's kernels, in its order
        if scale != 1.0:
            y = _core.unary(y, _core.UnaryOp.affine, scale, 0.0, out=y)
        return y

    def backward(self, g):
        x, t = self.saved
        scale = 1.0 if self.scale is None else self.scale
        dx = _core.regression_loss_backward(g, x, t, self.kind, self.param, scale)
        dt = _core.unary(dx, _core.UnaryOp.affine, -1.0, 0.0) if self.needs_input_grad[1] else None
        return (dx if self.needs_input_grad[0] else None), dt, None, None, None


_R = _core.RegressionLoss


def l1_loss(input, target, reduction="mean"):
    """mean (or sum) of |input - target|, as torch.nn.functional.l1_loss; the gradient is sign(input - target)
    (0 where they are equal) and reaches both input and target."""
    _check_pair(input, target, "l1_loss")
    _check_reduction(reduction, "l1_loss")
    return _RegressionLoss.apply(input, target, _R.l1, 0.0, _reduction_scale(input, reduction))


def smooth_l1_loss(input, target, reduction="mean", beta=1.0):
    """d^2 / (2 beta) where |d| < beta, else |d| - beta / 2, for d = input - target (torch's smooth_l1_loss);
    beta = 0 is l1_loss."""
    _check_pair(input, target, "smooth_l1_loss")
    beta = real(beta, "beta", minimum=0.0)
    if beta == 0.0:
        return l1_loss(input, target, reduction)
    _check_reduction(reduction, "smooth_l1_loss")
    return _RegressionLoss.apply(input, target, _R.smooth_l1, beta, _reduction_scale(input, reduction))


def huber_loss(input, target, reduction="mean", delta=1.0):
    """d^2 / 2 where |d| < delta, else delta (|d| - delta / 2), for d = input - target (torch's huber_loss);
    delta must be positive."""
    _check_pair(input, target, "huber_loss")
    delta = real(delta, "delta", minimum=0.0, low_open=True)
    _check_reduction(reduction, "huber_loss")
    return _RegressionLoss.apply(input, target, _R.huber, delta, _reduction_scale(input, reduction))
