"""Optimizer: parameter groups, per-parameter state, state_dict, and the fused step shared by Adam, AdamW and SGD.

A step over every parameter with a gradient is, on either device:
  1. (clip_norm= or skip_nonfinite=True) one deterministic pass computing the global gradient norm, the clip scales
     and a non-finite flag, all left on the device (kernels: csrc/cpu/grad_norm.cpp, csrc/cuda/grad_norm.cu);
  2. one fused update over all tensors (one CUDA launch per up to 64 groups of the same kind), which reads the clip
     scale and the flag on the device: a step needs no device-to-host synchronisation.
With fused clipping the gradients themselves are left unscaled (the scale is applied inside the update, as llm.c
does); call gradcore.clip_grad_norm_ instead when the clipped gradients are wanted.
"""
from __future__ import annotations

import copy

import numpy as np

from .. import _core
from .._checks import real
from ..autograd import enable_grad, no_grad
from ..tensor import Tensor

_MAX_GROUPS_PER_LAUNCH = 64  # kMaxGroupsPerLaunch in csrc/fused_adam.h


def _check_number(value, name, minimum=None, maximum=None, low_open=False, high_open=False):
    """Raises naming the hyperparameter unless minimum <= value <= maximum (or the open variants): TypeError for
    something that is not a number, ValueError for NaN or a number out of range."""
    real(value, name, minimum, maximum, low_open, high_open)


def _host_to(array, device):
    """A Tensor owning a copy of a C-contiguous numpy array, on `device`."""
    data = _core.from_numpy(array)
    return Tensor(data if device == "cpu" else data.to(device))


def _param_list(params, where):
    if isinstance(params, Tensor):
        return [params]
    if isinstance(params, (set, frozenset)):
        raise TypeError(f"{where}: expected an ordered sequence of Parameters; a set has no stable order")
    if hasattr(params, "parameters") and callable(params.parameters) and not isinstance(params, (list, tuple)):
        raise TypeError(f"{where}: expected Parameters, got a {type(params).__name__}; pass model.parameters()")
    try:
        return list(params)
    except TypeError:
        raise TypeError(f"{where}: expected an iterable of Parameters or of dicts (parameter groups), "
                        f"got {type(params).__name__}") from None


class Optimizer:
    """Base of the fused optimizers. Subclasses name their per-parameter state and supply the fused launch.

    Args shared by every optimizer:
      clip_norm: clip the global gradient norm (of type clip_norm_type) to this value inside the update.
      clip_value: clamp every gradient element to [-clip_value, clip_value] inside the update.
      clip_per_tensor: with clip_norm, clip each tensor by its own norm (MATLAB's "l2norm") instead.
      skip_nonfinite: skip (on the device) any step whose gradients hold a NaN or an infinity; see
        `last_step_skipped` and `skipped_steps`.
    """

    def __init__(self, params, defaults, clip_norm=None, clip_value=None, clip_norm_type=2.0, clip_per_tensor=False,
                 skip_nonfinite=False):
        if clip_norm is not None:
            _check_number(clip_norm, "clip_norm", minimum=0.0)
        if clip_value is not None:
            _check_number(clip_value, "clip_value", minimum=0.0)
        if clip_norm is not None and clip_value is not None:
            raise ValueError("clip_norm, clip_value: pass at most one of them")
        if clip_per_tensor and clip_norm is None:
            raise ValueError("clip_per_tensor: needs clip_norm")
        _check_number(clip_norm_type, "clip_norm_type", minimum=0.0, low_open=True)  # inf is allowed
        clip_norm_type = float(clip_norm_type)
        self.defaults = dict(defaults)
        self.clip_norm = None if clip_norm is None else float(clip_norm)
        self.clip_value = None if clip_value is None else float(clip_value)
        self.clip_norm_type = clip_norm_type
        self.clip_per_tensor = bool(clip_per_tensor)
        self.skip_nonfinite = bool(skip_nonfinite)
        self.param_groups = []
        self.state = {}
        self._norm_table = _core.TensorTable()
        self._tables = {}
        self._norm_state = None  # (4,) float64 on the device: norm, scale, non-finite flag, non-finite count
        self._scales = None
        self._last_norm = None
        params = _param_list(params, "params")
        if not params:
            raise ValueError("params: the optimizer got an empty parameter list")
        if not isinstance(params[0], dict):
            params = [{"params": params}]
        for group in params:
            self.add_param_group(group)

    # ---- groups -------------------------------------------------------------------------------------------------
    def add_param_group(self, param_group):
        """Adds a group: a dict with "params" and any hyperparameters that override the optimizer's defaults."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group: expected a dict, got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError("param_group: missing the \"params\" entry")
        group = dict(param_group)
        index = len(self.param_groups)
        where = "params" if index == 0 else f"param_groups[{index}]['params']"
        params = _param_list(group["params"], where)
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{where}[{i}]: expected a gradcore.nn.Parameter (a leaf Tensor), "
                                f"got {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"{where}[{i}]: can't optimize a non-leaf Tensor (the result of an op); "
                                 "optimize the Parameters it was computed from")
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self._check_group(group)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if len({id(p) for p in params}) != len(params) or any(id(p) in seen for p in params):
            raise ValueError(f"{where}: a parameter appears more than once (in this group or in two groups)")
        existing = [p for g in self.param_groups for p in g["params"]]
        reference = existing[0] if existing else (params[0] if params else None)
        for i, p in enumerate(params):
            if p.device != reference.device:
                raise ValueError(f"{where}[{i}]: on {p.device} but other parameters are on {reference.device}; "
                                 "an optimizer's parameters must all be on one device")
            if p.dtype != reference.dtype:
                raise ValueError(f"{where}[{i}]: dtype {p.dtype} but other parameters are {reference.dtype}; "
                                 "use one optimizer per dtype")
        group["params"] = params
        self.param_groups.append(group)

    def _check_group(self, group):  # pragma: no cover - abstract
        raise NotImplementedError

    # ---- gradients ----------------------------------------------------------------------------------------------
    def zero_grad(self, set_to_none=True):
        """Drops every gradient (set_to_none=True, the default) or fills them with zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.zero_()

    # ---- the step -----------------------------------------------------------------------------------------------
    @no_grad()
    def step(self, closure=None):
        """One update of every parameter that has a gradient. Returns closure()'s loss when a closure is given."""
        loss = None
        if closure is not None and not callable(closure):
            raise TypeError(f"closure: expected a function returning the loss, got {type(closure).__name__}")
        if closure is not None:
            with enable_grad():
                loss = closure()
        launches = self._plan_launches()
        if not launches:
            return loss
        state, grads = self.state, []
        for _, params, _, _ in launches:
            for p in params:  # shapes, dtypes and devices are checked by the kernels' table on every rebuild
                if p not in state:
                    state[p] = self._init_state(p, self._group_of(p))
                p._data._bump_version()  # updated in place below: a graph that saved p can no longer run backward
                grads.append(p.grad._data)
        scales, nonfinite = self._norm_pass(grads, launches[0][1][0].device)
        offset = 0
        for key, params, local_groups, groups in launches:
            table = self._tables.get(key)
            if table is None:
                table = self._tables[key] = _core.TensorTable()
            self._launch(table, key, params, grads[offset:offset + len(params)], local_groups, groups, scales,
                         offset, nonfinite)
            offset += len(params)
        return loss

    def _plan_launches(self):
        """[(key, params, local group of each param, groups), ...]: the parameters with gradients, grouped into fused
        launches of up to 64 groups sharing the same launch kind (e.g. amsgrad on or off); a param's local group is
        its group's position among the launch's groups."""
        buckets = {}
        for gi, group in enumerate(self.param_groups):
            params = [p for p in group["params"] if p.grad is not None]
            if params:
                buckets.setdefault(self._launch_kind(group), []).append((gi, params))
        launches = []
        for kind, groups in buckets.items():
            for start in range(0, len(groups), _MAX_GROUPS_PER_LAUNCH):
                batch = groups[start:start + _MAX_GROUPS_PER_LAUNCH]
                params, local_groups = [], []
                for local, (_, members) in enumerate(batch):
                    params += members
                    local_groups += [local] * len(members)
                launches.append(((kind, tuple(gi for gi, _ in batch)), params, local_groups,
                                 [self.param_groups[gi] for gi, _ in batch]))
        return launches

    def _group_of(self, p):
        for group in self.param_groups:
            if any(q is p for q in group["params"]):
                return group
        raise KeyError("parameter not in this optimizer")

    def _norm_pass(self, grads, device):
        """The global norm, the clip scales and the non-finite flag, on the device. Returns (scales, flag state)."""
        if self.clip_norm is None and not self.skip_nonfinite:
            return None, None
        if self._norm_state is None or self._norm_state.device != device:
            previous = self._norm_state
            self._norm_state = _core.zeros([4], "float64", device)
            if previous is not None:
                self._norm_state.copy_(previous.to(device))
        if self.clip_norm is not None and (self._scales is None or self._scales.shape != (len(grads),)
                                           or self._scales.device != device):
            self._scales = _core.zeros([len(grads)], "float64", device)
        self._last_norm = _core.grad_norm(self._norm_table, grads, self.clip_norm_type, self.clip_norm,
                                          self.clip_per_tensor, self._norm_state,
                                          self._scales if self.clip_norm is not None else None)
        return (self._scales if self.clip_norm is not None else None,
                self._norm_state if self.skip_nonfinite else None)

    def _launch_kind(self, group):  # pragma: no cover - abstract
        raise NotImplementedError

    def _init_state(self, p, group):  # pragma: no cover - abstract
        raise NotImplementedError

    def _launch(self, table, key, params, grads, local_groups, groups, scales, offset, nonfinite):
        raise NotImplementedError  # pragma: no cover - abstract

    @staticmethod
    def _zeros_like(p):
        return Tensor(_core.zeros(list(p.shape), p.dtype, p.device))

    @staticmethod
    def _new_step(p):
        return Tensor(_core.zeros([1], "float64", p.device))

    # ---- reporting ----------------------------------------------------------------------------------------------
    @property
    def last_grad_norm(self):
        """The global gradient norm (0-d Tensor) computed by the last step with clip_norm or skip_nonfinite."""
        return None if self._last_norm is None else Tensor(self._last_norm)

    @property
    def last_step_skipped(self):
        """True when the last step found non-finite gradients and, with skip_nonfinite=True, changed nothing.
        Reading it waits for the device (the flag lives there)."""
        if not self.skip_nonfinite or self._norm_state is None:
            return False
        return bool(self._norm_state.numpy()[2] != 0)

    @property
    def skipped_steps(self):
        """How many steps skip_nonfinite=True has skipped so far (reading it waits for the device)."""
        if not self.skip_nonfinite or self._norm_state is None:
            return 0
        return int(self._norm_state.numpy()[3])

    # ---- state --------------------------------------------------------------------------------------------------
    def state_dict(self):
        """{"state": {index: {name: numpy array or float}}, "param_groups": [{hyperparameters, "params": [index]}]}:
        host copies, with parameters numbered in group order as in PyTorch."""
        index = {}
        groups = []
        for group in self.param_groups:
            entry = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            entry["params"] = []
            for p in group["params"]:
                index[id(p)] = len(index)
                entry["params"].append(index[id(p)])
            groups.append(entry)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p in self.state:
                    state[index[id(p)]] = {
                        name: (float(value.numpy()[0]) if name == "step" else np.array(value.numpy(), copy=True))
                        for name, value in self.state[p].items()
                    }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restores hyperparameters and per-parameter state (copied onto each parameter's device and dtype), so that
        training continues exactly where the saved optimizer stopped."""
        if not isinstance(state_dict, dict):
            raise TypeError(f"state_dict: expected a dict (from state_dict()), got {type(state_dict).__name__}")
        if "state" not in state_dict or "param_groups" not in state_dict:
            raise ValueError("state_dict: expected a dict with \"state\" and \"param_groups\" (from state_dict())")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"state_dict: has {len(saved_groups)} parameter groups, this optimizer "
                             f"{len(self.param_groups)}")
        by_index = {}
        for gi, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            lacking = [k for k in self.defaults if k not in saved]
            if lacking:  # e.g. Adam's state (betas, eps) offered to SGD (momentum, nesterov)
                raise ValueError(f"state_dict: param_groups[{gi}] lacks {lacking}, which {type(self).__name__} "
                                 "needs: is it another optimizer's state?")
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"state_dict: param_groups[{gi}] has {len(saved['params'])} parameters, this "
                                 f"optimizer's has {len(group['params'])}")
            for saved_index, p in zip(saved["params"], group["params"]):
                by_index[saved_index] = p
        new_state = {}
        for saved_index, entries in state_dict["state"].items():
            if saved_index not in by_index:
                raise ValueError(f"state_dict: state for parameter {saved_index}, which no group lists")
            p = by_index[saved_index]
            restored = {}
            for name, value in entries.items():
                if name == "step":  # a (1,) float64 counter on the parameter's device
                    step = float(value.item() if hasattr(value, "item") else value)
                    restored[name] = _host_to(np.array([step], dtype=np.float64), p.device)
                    continue
                host = value.numpy() if isinstance(value, Tensor) else np.asarray(value)
                if tuple(host.shape) != p.shape:
                    raise ValueError(f"state_dict: state[{saved_index}][{name!r}] has shape {tuple(host.shape)}, "
                                     f"the parameter {p.shape}")
                restored[name] = _host_to(np.array(host, dtype=p.dtype, order="C", copy=True), p.device)
            new_state[p] = restored
        for saved, group in zip(saved_groups, self.param_groups):
            for key, value in saved.items():
                if key != "params":
                    group[key] = copy.deepcopy(value)
            self._check_group(group)
        self.state = new_state

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(k for k in group if k != "params"):
                lines.append(f"    {key}: {group[key]}")
        return "\n".join(lines) + "\n)"
