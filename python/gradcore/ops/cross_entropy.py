"""cross_entropy (log_softmax fused with the negative log-likelihood) and nll_loss, as torch.nn.functional's
(maths: csrc/cross_entropy.h; kernels: csrc/cpu/cross_entropy.cpp, csrc/cuda/cross_entropy.cu).

input is (C), (N, C) or (N, C, d1, ..., dk); target holds class indices (int64, input's shape without the class
dimension) or, for cross_entropy, class probabilities (input's shape and dtype). The kernels give the loss per
position; the reduction happens here: 'sum' adds the positions; 'mean' divides that by the sum of the target
classes' weights over the positions not ignored (the count of those positions without weights; NaN when all are
ignored, as PyTorch), or by the number of positions for probability targets. The backward pass is one fused
kernel: dx = g (softmax(x) A - a) per position (csrc/cross_entropy.h), with g already divided by the normaliser.

The arguments after weight are keyword-only: PyTorch's positional order still has the deprecated size_average and
reduce there, so a positional call written for PyTorch would otherwise be misread silently.
"""
from __future__ import annotations

import math

from .. import _core
from .._checks import integer, real, tensor
from ..autograd import Function

__all__ = ["cross_entropy", "nll_loss"]  # gradcore.functional exports these

_REDUCTIONS = ("mean", "sum", "none")


class _ClassLoss(Function):
    """Per-position loss from the fused kernel, then the reduction; backward through the fused kernel."""

    def forward(self, x, target, weight, ignore_index, label_smoothing, nll, reduction):
        loss, lse, position_weight = _core.cross_entropy_forward(x, target, weight, ignore_index, label_smoothing,
                                                                 nll)
        self.args = (ignore_index, label_smoothing, nll)
        self.reduction = reduction
        self.normaliser = None
        if reduction == "none":
            out = loss
        else:
            out = _core.sum(loss, list(range(loss.ndim)))
            if reduction == "mean":
                if position_weight is None:  # probability targets: the number of positions
                    count = loss.numel
                    self.normaliser = 1.0 / count if count else math.nan
                    out = _core.unary(out, _core.UnaryOp.affine, self.normaliser, 0.0, out=out)
                else:
                    self.normaliser = _core.sum(position_weight, list(range(position_weight.ndim)))
                    out = _core.binary(out, self.normaliser, _core.BinaryOp.div)
        self.save_for_backward(x, target, weight, lse)
        return out

    def backward(self, g):
        x, target, weight, lse = self.saved
        if isinstance(self.normaliser, float):
            g = _core.unary(g, _core.UnaryOp.affine, self.normaliser, 0.0)
        elif self.normaliser is not None:
            g = _core.binary(g, self.normaliser, _core.BinaryOp.div)
        ignore_index, label_smoothing, nll = self.args
        dx, dtarget = _core.cross_entropy_backward(x, target, weight, lse, g, ignore_index, label_smoothing, nll,
                                                   self.needs_input_grad[1])
        return (dx if self.needs_input_grad[0] else None), dtarget, None, None, None, None, None


def _check(name, input, target, weight, ignore_index, reduction):
    tensor(input, "input")
    # class indices (int64), or (cross_entropy) class probabilities of input's float dtype
    tensor(target, "target", dtypes=("int64",) if name == "nll_loss" else ("int64", "float32", "float64"))
    tensor(weight, "weight", optional=True)
    if weight is not None and weight.requires_grad:
        raise ValueError(f"{name}: weight must not require grad (its derivative is not provided, as in PyTorch)")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{name}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    return integer(ignore_index, "ignore_index", -2**63, 2**63 - 1)


def cross_entropy(input, target, weight=None, *, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """The cross-entropy between softmax(input) along the class dimension (dim 1, or 0 for a (C) input) and target,
    as torch.nn.functional.cross_entropy: stable for any logits (log_softmax is never formed as log(softmax)).

    target: class indices (int64; positions equal to ignore_index contribute nothing) or class probabilities.
    weight: a (C) rescaling of each class. label_smoothing in [0, 1] mixes the target with the uniform
    distribution: (1 - label_smoothing) target + label_smoothing / C.
    """
    ignore_index = _check("cross_entropy", input, target, weight, ignore_index, reduction)
    label_smoothing = real(label_smoothing, "label_smoothing", minimum=0.0, maximum=1.0)
    return _ClassLoss.apply(input, target, weight, ignore_index, label_smoothing, False, reduction)


def nll_loss(input, target, weight=None, *, ignore_index=-100, reduction="mean"):
    """The negative log-likelihood -weight[t] input[t] of class-index targets t (int64), for input holding
    log-probabilities (log_softmax's output), as torch.nn.functional.nll_loss."""
    ignore_index = _check("nll_loss", input, target, weight, ignore_index, reduction)
    return _ClassLoss.apply(input, target, weight, ignore_index, 0.0, True, reduction)
