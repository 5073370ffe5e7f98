"""Loss modules over gradcore.functional, with PyTorch's names and arguments. Each is called as loss(input, target).
Arguments are checked when the module is built, so a typo fails there rather than at the first step."""
from __future__ import annotations

from .. import functional as F
from .._checks import integer, real, tensor
from .module import Module

_REDUCTIONS = ("mean", "sum", "none")


def _reduction(value):
    if value not in _REDUCTIONS:
        raise ValueError(f"reduction: expected one of {_REDUCTIONS}, got {value!r}")
    return value


class _Loss(Module):
    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = _reduction(reduction)

    def extra_repr(self):
        return f"reduction={self.reduction!r}"


class MSELoss(_Loss):
    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)


class L1Loss(_Loss):
    def forward(self, input, target):
        return F.l1_loss(input, target, reduction=self.reduction)


class SmoothL1Loss(_Loss):
    def __init__(self, reduction="mean", beta=1.0):
        super().__init__(reduction)
        self.beta = real(beta, "beta", minimum=0.0)

    def forward(self, input, target):
        return F.smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class HuberLoss(_Loss):
    def __init__(self, reduction="mean", delta=1.0):
        super().__init__(reduction)
        self.delta = real(delta, "delta", minimum=0.0, low_open=True)

    def forward(self, input, target):
        return F.huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class _WeightedLoss(_Loss):
    """A loss with optional per-class weights (C), kept as a buffer so it moves and saves with the module."""

    def __init__(self, weight=None, ignore_index=-100, reduction="mean"):
        super().__init__(reduction)
        self.register_buffer("weight", tensor(weight, "weight", optional=True))
        self.ignore_index = integer(ignore_index, "ignore_index", -2**63, 2**63 - 1)


class NLLLoss(_WeightedLoss):
    def forward(self, input, target):
        return F.nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index,
                          reduction=self.reduction)


class CrossEntropyLoss(_WeightedLoss):
    def __init__(self, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        super().__init__(weight, ignore_index, reduction)
        self.label_smoothing = real(label_smoothing, "label_smoothing", minimum=0.0, maximum=1.0)

    def forward(self, input, target):
        return F.cross_entropy(input, target, weight=self.weight, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing)

    def extra_repr(self):
        return f"reduction={self.reduction!r}, label_smoothing={self.label_smoothing}"
