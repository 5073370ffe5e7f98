"""Learning-rate schedules with PyTorch's API: construct with the optimizer (which sets the lr for step 0), call
scheduler.step() after each optimizer.step() (or each epoch), read get_last_lr().

Every schedule here is a closed form lr(epoch) of the group's initial lr, so SequentialLR can chain them (a linear
warm-up followed by cosine annealing) and state_dict needs only the epoch counter.
"""
from __future__ import annotations

import math
import numbers

from .._checks import integer, real
from .optimizer import Optimizer


class LRScheduler:
    """Base: subclasses define lr_at(epoch, base_lr) -> the learning rate of a group at that epoch."""

    def __init__(self, optimizer, last_epoch=-1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer: expected a gradcore.optim.Optimizer, got {type(optimizer).__name__}")
        last_epoch = integer(last_epoch, "last_epoch", -1)
        self.optimizer = optimizer
        for i, group in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise KeyError(f"param_groups[{i}]: 'initial_lr' is not set; it is needed when resuming with "
                               "last_epoch != -1")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = int(last_epoch)
        self.step()

    def lr_at(self, epoch, base_lr):  # pragma: no cover - abstract
        raise NotImplementedError

    def get_lr(self):
        return [self.lr_at(self.last_epoch, base) for base in self.base_lrs]

    def step(self):
        """Advances one epoch (or iteration) and writes the new learning rate into every group."""
        self.last_epoch += 1
        lrs = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr
        self._last_lr = list(lrs)

    def get_last_lr(self):
        """The learning rates set by the last step(), one per group."""
        return list(self._last_lr)

    def state_dict(self):
        return {key: value for key, value in self.__dict__.items() if key not in ("optimizer", "lr_lambda")}

    def load_state_dict(self, state_dict):
        self.__dict__.update(state_dict)


class LambdaLR(LRScheduler):
    """lr = initial_lr * lr_lambda(epoch)."""

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        if not callable(lr_lambda):
            raise TypeError(f"lr_lambda: expected a function of the epoch, got {type(lr_lambda).__name__}")
        self.lr_lambda = lr_lambda
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch, base_lr):
        return base_lr * self.lr_lambda(epoch)


class StepLR(LRScheduler):
    """lr = initial_lr * gamma ** (epoch // step_size)."""

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        integer(step_size, "step_size", 1)
        real(gamma, "gamma", minimum=0.0)
        self.step_size, self.gamma = int(step_size), float(gamma)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch, base_lr):
        return base_lr * self.gamma ** (epoch // self.step_size)


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (initial_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2 (SGDR without restarts)."""

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        integer(T_max, "T_max", 1)
        real(eta_min, "eta_min", minimum=0.0)
        self.T_max, self.eta_min = int(T_max), float(eta_min)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch, base_lr):
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2


class LinearLR(LRScheduler):
    """lr = initial_lr * factor, the factor going linearly from start_factor at epoch 0 to end_factor at
    total_iters and staying there."""

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5, last_epoch=-1):
        real(start_factor, "start_factor", minimum=0.0, maximum=1.0, low_open=True)
        real(end_factor, "end_factor", minimum=0.0, maximum=1.0)
        integer(total_iters, "total_iters", 1)
        self.start_factor, self.end_factor, self.total_iters = float(start_factor), float(end_factor), int(total_iters)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch, base_lr):
        progress = min(epoch, self.total_iters) / self.total_iters
        return base_lr * (self.start_factor + (self.end_factor - self.start_factor) * progress)


class LinearWarmup(LRScheduler):
    """Linear warm-up: lr = initial_lr * (start_factor + (1 - start_factor) * epoch / warmup_steps) for the first
    warmup_steps epochs, then initial_lr. Unlike LinearLR, start_factor may be 0. Chain a decay after it with
    SequentialLR(optimizer, [LinearWarmup(opt, w), CosineAnnealingLR(opt, T_max)], milestones=[w])."""

    def __init__(self, optimizer, warmup_steps, start_factor=0.0, last_epoch=-1):
        integer(warmup_steps, "warmup_steps", 1)
        real(start_factor, "start_factor", minimum=0.0, maximum=1.0)
        self.warmup_steps, self.start_factor = int(warmup_steps), float(start_factor)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch, base_lr):
        progress = min(epoch, self.warmup_steps) / self.warmup_steps
        return base_lr * (self.start_factor + (1.0 - self.start_factor) * progress)


class SequentialLR(LRScheduler):
    """Runs schedulers[0] until milestones[0], then schedulers[1] (its epoch counted from the milestone), etc."""

    def __init__(self, optimizer, schedulers, milestones, last_epoch=-1):
        schedulers = list(schedulers)
        milestones = list(milestones)
        if not schedulers:
            raise ValueError("schedulers: expected at least one scheduler")
        for i, s in enumerate(schedulers):
            if not isinstance(s, LRScheduler):
                raise TypeError(f"schedulers[{i}]: expected an LRScheduler, got {type(s).__name__}")
            if s.optimizer is not optimizer:
                raise ValueError(f"schedulers[{i}]: belongs to another optimizer")
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"milestones: expected {len(schedulers) - 1} milestones for {len(schedulers)} "
                             f"schedulers, got {len(milestones)}")
        if any(not isinstance(m, numbers.Integral) for m in milestones) or milestones != sorted(milestones):
            raise ValueError(f"milestones: expected increasing integers, got {milestones!r}")
        self.schedulers, self.milestones = schedulers, [int(m) for m in milestones]
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch, base_lr):
        index = sum(1 for m in self.milestones if epoch >= m)
        start = self.milestones[index - 1] if index > 0 else 0
        return self.schedulers[index].lr_at(epoch - start, base_lr)

    def state_dict(self):
        state = super().state_dict()
        state["schedulers"] = [s.state_dict() for s in self.schedulers]
        return state

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        for s, sub in zip(self.schedulers, state_dict.pop("schedulers")):
            s.load_state_dict(sub)
        super().load_state_dict(state_dict)
