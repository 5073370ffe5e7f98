"""Adam and AdamW with PyTorch's semantics, fused (kernels: csrc/cpu/fused_adam.cpp, csrc/cuda/fused_adam.cu)."""
from __future__ import annotations

from .. import _core
from .optimizer import Optimizer, _check_number


class Adam(Optimizer):
    """Adam (Kingma & Ba) as torch.optim.Adam: weight_decay is L2 added to the gradient (MATLAB's
    L2Regularization); amsgrad keeps the running maximum of v; maximize ascends. See Optimizer for clip_norm=,
    clip_value=, clip_per_tensor= and skip_nonfinite=. The update rule is written out in csrc/fused_adam.h."""

    _decoupled_weight_decay = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
                 maximize=False, *, clip_norm=None, clip_value=None, clip_norm_type=2.0, clip_per_tensor=False,
                 skip_nonfinite=False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize)
        self._check_group(defaults)
        super().__init__(params, defaults, clip_norm=clip_norm, clip_value=clip_value, clip_norm_type=clip_norm_type,
                         clip_per_tensor=clip_per_tensor, skip_nonfinite=skip_nonfinite)

    def _check_group(self, group):
        _check_number(group["lr"], "lr", minimum=0.0)
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)):
            raise TypeError(f"betas: expected a pair (beta1, beta2), got {betas!r}")
        if len(betas) != 2:
            raise ValueError(f"betas: expected a pair (beta1, beta2), got {betas!r}")
        _check_number(betas[0], "betas[0]", minimum=0.0, maximum=1.0, high_open=True)
        _check_number(betas[1], "betas[1]", minimum=0.0, maximum=1.0, high_open=True)
        _check_number(group["eps"], "eps", minimum=0.0)
        _check_number(group["weight_decay"], "weight_decay", minimum=0.0)

    def _launch_kind(self, group):
        return bool(group["amsgrad"])

    def _init_state(self, p, group):
        state = {"step": self._new_step(p), "exp_avg": self._zeros_like(p), "exp_avg_sq": self._zeros_like(p)}
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = self._zeros_like(p)
        return state

    def _launch(self, table, key, params, grads, local_groups, groups, scales, offset, nonfinite):
        amsgrad = key[0]
        data, exp_avg, exp_avg_sq, max_exp_avg_sq, steps = [], [], [], [], []  # (one loop: no list per field)
        for p in params:
            state = self.state[p]
            if amsgrad:
                if "max_exp_avg_sq" not in state:  # amsgrad switched on after the first step
                    state["max_exp_avg_sq"] = self._zeros_like(p)
                max_exp_avg_sq.append(state["max_exp_avg_sq"]._data)
            data.append(p._data)
            exp_avg.append(state["exp_avg"]._data)
            exp_avg_sq.append(state["exp_avg_sq"]._data)
            steps.append(state["step"]._data)
        hyper = [(float(g["lr"]), float(g["betas"][0]), float(g["betas"][1]), float(g["eps"]),
                  float(g["weight_decay"]), float(bool(g["maximize"]))) for g in groups]
        _core.fused_adam(
            table, data, grads, exp_avg, exp_avg_sq, max_exp_avg_sq, steps, local_groups, hyper,
            self._decoupled_weight_decay, clip_value=self.clip_value, grad_scales=scales, scale_offset=offset,
            nonfinite_state=nonfinite)


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter) as torch.optim.AdamW: decoupled weight decay p -= lr * weight_decay * p before
    the Adam update, default weight_decay=1e-2."""

    _decoupled_weight_decay = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False,
                 maximize=False, *, clip_norm=None, clip_value=None, clip_norm_type=2.0, clip_per_tensor=False,
                 skip_nonfinite=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         maximize=maximize, clip_norm=clip_norm, clip_value=clip_value, clip_norm_type=clip_norm_type,
                         clip_per_tensor=clip_per_tensor, skip_nonfinite=skip_nonfinite)
