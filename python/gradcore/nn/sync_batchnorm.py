"""SyncBatchNorm: batch normalisation whose training statistics span every rank's batch (PyTorch's name).

With R ranks each holding x_r (N_r, C, *), training normalises with the statistics of the whole global batch,
as one process with the concatenated batch would:
    n = sum_r N_r * prod(*)                 (counts all-reduced, so uneven batches work)
    mean = (sum_r sum x_r) / n              first all_reduce: the per-channel sums and the count
    var  = (sum_r sum (x_r - mean)^2) / n   second all_reduce: squared deviations from the global mean (two
                                            passes, as the single-process kernels: no E[x^2] - E[x]^2 cancellation)
    y = (x - mean) / sqrt(var + eps) * weight + bias
Backward (xhat = (x - mean) * invstd, g the incoming gradient), the two per-channel gradient sums all-reduced:
    S1 = sum over all ranks of g,  S2 = sum over all ranks of g * xhat
    dx = weight * invstd * (g - S1 / n - xhat * S2 / n)
    dweight = this rank's sum g * xhat,  dbias = this rank's sum g
dx takes S1 and S2 as sums of g over all ranks and multiplies by this rank's weight: exact when weight is the
same on every rank, as DistributedDataParallel keeps it (PyTorch's SyncBatchNorm assumes the same; with a
different weight per rank the sums would have to be of weight_r * g). dweight and dbias stay this rank's own
sums, as PyTorch's: DistributedDataParallel averages them over ranks like
every parameter gradient, which with the ranks' dx (the gradient of the sum of every rank's loss) makes the
gradients of the mean over ranks of the losses. Every all_reduce is gradcore.distributed's fixed rank-order sum,
so the result is bitwise reproducible. The running statistics are updated with the global mean and unbiased
variance, the same on every rank.

Evaluation normalises with the running statistics, exactly as BatchNorm2d; so does training without an
initialized process group or with a world of one rank (PyTorch's fallback).
"""
from __future__ import annotations

import math

from .. import distributed as dist
from .. import functional as F
from ..autograd import Function
from ..tensor import Tensor, full
from .batchnorm import BatchNorm2d
from .module import Module


class _SyncBatchNormTrain(Function):
    """The statistics of the global batch; x arrives as (N, C, L)."""

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, momentum, eps):
        channels = x.shape[1]
        local = x.shape[0] * x.shape[2]
        stats = F.cat([x.sum(dim=(0, 2)), full((1,), float(local), dtype=x.dtype, device=x.device)])
        dist.all_reduce(stats)
        count = stats[channels].item()
        if count <= 1:
            raise ValueError(f"x: expected more than 1 value per channel over all ranks when training, got input "
                             f"of shape {x.shape} on this rank and {count:g} values per channel in all")
        mean = stats[:channels] / count
        centered = x - mean.reshape(1, channels, 1)
        squares = (centered * centered).sum(dim=(0, 2))
        dist.all_reduce(squares)
        var = squares / count
        invstd = 1.0 / (var + eps).sqrt()
        xhat = centered * invstd.reshape(1, channels, 1)
        y = xhat if weight is None else xhat * weight.reshape(1, channels, 1)
        if bias is not None:
            y = y + bias.reshape(1, channels, 1)
        if running_mean is not None:
            running_mean.copy_(running_mean * (1.0 - momentum) + mean * momentum)
            running_var.copy_(running_var * (1.0 - momentum) + var * (momentum * count / (count - 1)))
        ctx.save_for_backward(xhat, weight, invstd)
        ctx.count = count
        return y

    @staticmethod
    def backward(ctx, g):
        xhat, weight, invstd = ctx.saved_tensors
        channels = xhat.shape[1]
        sum_g = g.sum(dim=(0, 2))
        sum_g_xhat = (g * xhat).sum(dim=(0, 2))
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        grad_x = None
        if need_x:
            sums = F.cat([sum_g, sum_g_xhat])
            dist.all_reduce(sums)  # every rank takes part: dx depends on every rank's gradient
            mean_g = (sums[:channels] / ctx.count).reshape(1, channels, 1)
            mean_g_xhat = (sums[channels:] / ctx.count).reshape(1, channels, 1)
            scale = invstd if weight is None else invstd * weight
            grad_x = (g - mean_g - xhat * mean_g_xhat) * scale.reshape(1, channels, 1)
        return (grad_x, sum_g_xhat if need_w else None, sum_g if need_b else None, None, None, None, None)


class SyncBatchNorm(BatchNorm2d):
    """Batch normalisation over (N, C, *) inputs whose training statistics are all-reduced over the ranks of the
    default process group (module docstring). Same arguments, parameters and buffers as BatchNorm2d."""

    def forward(self, x):
        if not isinstance(x, Tensor):
            raise TypeError(f"x: expected a gradcore.Tensor, got {type(x).__name__}")
        if x.ndim < 2:
            raise ValueError(f"x: expected at least a 2-d input (N, C, *), got shape {x.shape}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"x: expected {self.num_features} channels (num_features), got shape {x.shape}")
        momentum = 0.0
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            momentum = 1.0 / self.num_batches_tracked.item() if self.momentum is None else self.momentum
        use_batch_stats = self.training or not self.track_running_stats
        n, c = x.shape[0], x.shape[1]
        spatial = math.prod(x.shape[2:])
        if use_batch_stats and dist.is_initialized() and dist.get_world_size() > 1:
            y = _SyncBatchNormTrain.apply(x.reshape(n, c, spatial), self.weight, self.bias, self.running_mean,
                                          self.running_var, momentum, self.eps)
            return y.reshape(*x.shape)
        # One process: exactly BatchNorm2d (the kernels take (N, C, H, W), so (N, C, *) is viewed as (N, C, L, 1)).
        y = F.batch_norm(x.reshape(n, c, spatial, 1), self.running_mean, self.running_var, self.weight, self.bias,
                         training=use_batch_stats, momentum=momentum, eps=self.eps)
        return y.reshape(*x.shape)

    @classmethod
    def convert_sync_batchnorm(cls, module, process_group=None):
        """Returns `module` with every BatchNorm2d inside replaced by a SyncBatchNorm that shares its parameters
        and buffers (a BatchNorm2d passed itself comes back converted). process_group: only the default group
        (None) exists in gradcore."""
        if process_group is not None:
            raise ValueError("process_group: gradcore has only the default process group; pass None")
        if not isinstance(module, Module):
            raise TypeError(f"module: expected a gradcore.nn.Module, got {type(module).__name__}")
        if isinstance(module, BatchNorm2d) and not isinstance(module, SyncBatchNorm):
            converted = cls.__new__(cls)
            Module.__init__(converted)
            for name in ("num_features", "eps", "momentum", "affine", "track_running_stats"):
                setattr(converted, name, getattr(module, name))
            for name in ("weight", "bias"):  # the same Parameters (or None): an optimizer built before keeps working
                setattr(converted, name, getattr(module, name))
            for name, b in module._buffers.items():
                converted.register_buffer(name, b)
            converted.training = module.training
            return converted
        for name, child in list(module._modules.items()):
            if child is not None:
                setattr(module, name, cls.convert_sync_batchnorm(child))
        return module
