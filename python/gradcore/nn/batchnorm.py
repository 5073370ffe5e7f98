"""BatchNorm2d over gradcore.functional.batch_norm, with PyTorch's arguments, buffers and train/eval behaviour."""
from __future__ import annotations

from .._checks import integer, real
from .. import functional as F
from ..tensor import Tensor, ones, zeros
from .module import Module, Parameter


class BatchNorm2d(Module):
    """Normalises each channel of an (N, C, H, W) input, then scales and shifts it by `weight` and `bias` (C).

    Training mode normalises with the batch's statistics and, with track_running_stats=True, updates the buffers
    running_mean and running_var (momentum: the weight of the new batch; None: the cumulative moving average over
    num_batches_tracked batches). Evaluation mode normalises with the running statistics, or with the batch's
    when track_running_stats=False (there are no buffers then).
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 device="cpu", dtype="float32"):
        super().__init__()
        self.num_features = integer(num_features, "num_features", 1)
        if momentum is not None:
            momentum = real(momentum, "momentum", minimum=0.0, maximum=1.0)
        self.eps = real(eps, "eps", minimum=0.0)
        self.momentum = momentum
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        if self.affine:
            self.weight = Parameter(ones(self.num_features, dtype=dtype, device=device))
            self.bias = Parameter(zeros(self.num_features, dtype=dtype, device=device))
        else:
            self.weight = None
            self.bias = None
        if self.track_running_stats:
            self.register_buffer("running_mean", zeros(self.num_features, dtype=dtype, device=device))
            self.register_buffer("running_var", ones(self.num_features, dtype=dtype, device=device))
            # A float64 count (our tensors are floating point): exact up to 2^53 batches.
            self.register_buffer("num_batches_tracked", zeros((), dtype="float64", device=device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self):
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1.0)
            self.num_batches_tracked.zero_()

    def reset_parameters(self):
        self.reset_running_stats()
        if self.affine:
            self.weight.fill_(1.0)
            self.bias.zero_()

    def forward(self, x):
        return self._normalise(x, F.batch_norm)

    def _normalise(self, x, batch_norm):
        """batch_norm(x, ...) with this module's statistics and mode: F.batch_norm, or the fused batch_norm + ReLU
        (nn/fusion.py)."""
        if not isinstance(x, Tensor):
            raise TypeError(f"x: expected a gradcore.Tensor, got {type(x).__name__}")
        if x.ndim != 4:
            raise ValueError(f"x: expected a 4-d input (N, C, H, W), got shape {x.shape}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"x: expected {self.num_features} channels (num_features), got shape {x.shape}")
        momentum = 0.0  # unused without running statistics
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)  # on the buffer's device
            momentum = 1.0 / self.num_batches_tracked.item() if self.momentum is None else self.momentum
        use_batch_stats = self.training or not self.track_running_stats
        return batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                          training=use_batch_stats, momentum=momentum, eps=self.eps)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")
