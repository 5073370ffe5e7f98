"""Batch normalisation over (N, C, H, W) (maths: csrc/batch_norm.h; kernels: csrc/cpu/batch_norm.cpp,
csrc/cuda/batch_norm.cu). Argument checks on arrays happen in the binding, which names the argument.

batch_norm_relu (internal: nn.Sequential runs [BatchNorm2d, ReLU] through it, nn/fusion.py) is relu(batch_norm(...))
as one node: the kernel stores relu(y) (csrc/epilogue.h), the node saves that output, and backward hands it to
batch_norm's backward kernels, which mask the gradient with relu_backward(g, y) as they read it (no separate mask
pass writing a masked copy): the same operations as the unfused pair, the same bits.
"""
from __future__ import annotations

from .. import _core
from .._checks import real, tensor
from ..autograd import Function

__all__ = ["batch_norm"]  # gradcore.functional exports these


class BatchNormTrain(Function):
    """Normalises with the batch's statistics (and updates the running ones in place); backward goes through the
    batch mean and variance."""

    activation = "none"  # "relu": batch_norm_relu's node

    def forward(self, x, weight, bias, running_mean, running_var, momentum, eps):
        y, save_mean, save_invstd = _core.batch_norm_forward_train(x, weight, bias, running_mean, running_var,
                                                                   momentum, eps, self.activation)
        if any(self.needs_input_grad[:3]):
            self.save_for_backward(x, weight, save_mean, save_invstd, y if self.activation == "relu" else None)
        return y

    def backward(self, g):
        x, weight, save_mean, save_invstd, y = self.saved
        need_x, need_w, need_b = self.needs_input_grad[:3]
        # y (the fused ReLU's output, else None): the kernel masks g with relu_backward(g, y) as it reads it
        dx, dw, db = _core.batch_norm_backward_train(g, x, weight, save_mean, save_invstd, need_x, need_w, need_b, y)
        return dx, dw, db, None, None, None, None


class BatchNormEval(Function):
    """Normalises with the running statistics, which the gradient treats as constants."""

    activation = "none"  # "relu": batch_norm_relu's node

    def forward(self, x, weight, bias, running_mean, running_var, eps):
        self.eps = eps
        y = _core.batch_norm_forward_eval(x, running_mean, running_var, weight, bias, eps, self.activation)
        if any(self.needs_input_grad[:3]):
            # Copies: a later training step may update the running statistics before this backward runs.
            self.save_for_backward(x, weight, running_mean.clone(), running_var.clone(),
                                   y if self.activation == "relu" else None)
        return y

    def backward(self, g):
        x, weight, running_mean, running_var, y = self.saved
        need_x, need_w, need_b = self.needs_input_grad[:3]
        # y (the fused ReLU's output, else None): the kernel masks g with relu_backward(g, y) as it reads it
        dx, dw, db = _core.batch_norm_backward_eval(g, x, running_mean, running_var, weight, self.eps, need_x,
                                                    need_w, need_b, y)
        return dx, dw, db, None, None, None


def _no_grad_buffer(value, name):
    if value is not None and value.requires_grad:
        raise ValueError(f"{name}: running statistics are buffers and must not require grad")


class BatchNormTrainReLU(BatchNormTrain):
    activation = "relu"


class BatchNormEvalReLU(BatchNormEval):
    activation = "relu"


def batch_norm_relu(x, running_mean, running_var, weight=None, bias=None, training=True, momentum=0.1, eps=1e-5):
    """relu(batch_norm(...)) as one node (internal; see the module docstring): batch_norm's arguments and checks."""
    return _batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps, relu=True)


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=True, momentum=0.1, eps=1e-5):
    """Batch normalisation of x (N, C, H, W) per channel, as torch.nn.functional.batch_norm.

    training=True: normalise with the batch's mean and biased variance, and (when running_mean and running_var are
    given) update them in place: running = (1 - momentum) running + momentum batch, with the unbiased variance.
    training=False: normalise with running_mean and running_var. weight and bias (C) scale and shift the result.
    Gradients reach x, weight and bias in both modes.
    """
    return _batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps, relu=False)


def _batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps, relu):
    tensor(x, "x")
    tensor(running_mean, "running_mean", optional=True)
    tensor(running_var, "running_var", optional=True)
    tensor(weight, "weight", optional=True)
    tensor(bias, "bias", optional=True)
    _no_grad_buffer(running_mean, "running_mean")
    _no_grad_buffer(running_var, "running_var")
    eps = real(eps, "eps", minimum=0.0)
    if training:
        if momentum is None:
            raise ValueError("momentum: None (the cumulative moving average) needs a batch count; use "
                             "nn.BatchNorm2d(momentum=None) or pass 1 / num_batches_tracked")
        momentum = real(momentum, "momentum", minimum=0.0, maximum=1.0)
        train = BatchNormTrainReLU if relu else BatchNormTrain
        return train.apply(x, weight, bias, running_mean, running_var, momentum, eps)
    if running_mean is None or running_var is None:
        raise ValueError("running_mean, running_var: evaluation (training=False) normalises with the running "
                         "statistics, so both are needed")
    return (BatchNormEvalReLU if relu else BatchNormEval).apply(x, weight, bias, running_mean, running_var, eps)
