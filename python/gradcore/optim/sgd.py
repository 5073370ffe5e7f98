"""SGD with momentum, dampening, Nesterov and weight decay, PyTorch's semantics, fused (kernels:
csrc/cpu/fused_sgd.cpp, csrc/cuda/fused_sgd.cu)."""
from __future__ import annotations

from .. import _core
from .optimizer import Optimizer, _check_number


class SGD(Optimizer):
    """torch.optim.SGD: weight_decay is L2 added to the gradient; the momentum buffer starts as the first gradient
    (no dampening on that step); nesterov needs momentum > 0 and dampening 0. See Optimizer for clip_norm=,
    clip_value=, clip_per_tensor= and skip_nonfinite=. The update rule is written out in csrc/fused_sgd.h."""

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
                 maximize=False, *, clip_norm=None, clip_value=None, clip_norm_type=2.0, clip_per_tensor=False,
                 skip_nonfinite=False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov,
                        maximize=maximize)
        self._check_group(defaults)
        super().__init__(params, defaults, clip_norm=clip_norm, clip_value=clip_value, clip_norm_type=clip_norm_type,
                         clip_per_tensor=clip_per_tensor, skip_nonfinite=skip_nonfinite)

    def _check_group(self, group):
        _check_number(group["lr"], "lr", minimum=0.0)
        _check_number(group["momentum"], "momentum", minimum=0.0)
        _check_number(group["dampening"], "dampening")
        _check_number(group["weight_decay"], "weight_decay", minimum=0.0)
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("nesterov: Nesterov momentum needs momentum > 0 and dampening = 0, got "
                             f"momentum={group['momentum']!r}, dampening={group['dampening']!r}")

    def _launch_kind(self, group):
        return group["momentum"] != 0

    def _init_state(self, p, group):
        state = {"step": self._new_step(p)}
        if group["momentum"] != 0:
            state["momentum_buffer"] = self._zeros_like(p)
        return state

    def _launch(self, table, key, params, grads, local_groups, groups, scales, offset, nonfinite):
        momentum = key[0]
        states = []
        for p in params:
            state = self.state[p]
            if momentum and "momentum_buffer" not in state:  # momentum switched on later: the buffer starts now
                state["momentum_buffer"] = self._zeros_like(p)
                state["step"].fill_(0.0)
            states.append(state)
        hyper = [(float(g["lr"]), float(g["momentum"]), float(g["dampening"]), float(g["weight_decay"]),
                  float(bool(g["nesterov"])), float(bool(g["maximize"]))) for g in groups]
        _core.fused_sgd(
            table, [p._data for p in params], grads,
            [s["momentum_buffer"]._data for s in states] if momentum else [],
            [s["step"]._data for s in states], local_groups, hyper,
            clip_value=self.clip_value, grad_scales=scales, scale_offset=offset, nonfinite_state=nonfinite)
