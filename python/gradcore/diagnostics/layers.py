"""What the health checks call a layer, and host-side per-layer measurements for one-off inspection.

A layer is a module that owns parameters directly: "encoder.0" for the first conv of an encoder, a ConvLSTM cell, a
BatchNorm2d, an nn.Linear, or a user's module holding its own `readout_weight`. Its norms are L2 norms over
all of its own parameters. A model is a Module or a {prefix: Module} mapping (an encoder and a decoder built as two
separate networks).

grad_norms / snapshot / update_ratios / dead_relu_fraction read back to the host as they go: handy in a notebook,
too slow for a training loop on a GPU. HealthMonitor (monitor.py) measures the same on the device and reads back
once per check.
"""
from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np

from ..nn.module import Module
from ..tensor import Tensor


def named_modules(model):
    """(name, module) pairs of a Module or of a {prefix: Module} mapping."""
    if isinstance(model, Module):
        yield from model.named_modules()
    elif isinstance(model, dict):
        for prefix, m in model.items():
            if not isinstance(m, Module):
                raise TypeError(f"model[{prefix!r}]: expected a gradcore.nn.Module, got {type(m).__name__}")
            yield from m.named_modules(prefix)
    else:
        raise TypeError(f"model: expected a gradcore.nn.Module or a dict of them, got {type(model).__name__}")


def layers(model):
    """layer name -> (module, [(parameter name, Parameter)]) for the modules that own parameters, in registration
    order. A module reached twice (shared) is listed once."""
    out, seen = OrderedDict(), set()
    for name, module in named_modules(model):
        own = [(n, p) for n, p in module._parameters.items() if p is not None]
        if own and id(module) not in seen:
            seen.add(id(module))
            out[name or type(module).__name__] = (module, own)
    return out


def _sq(t):
    a = t.numpy().astype(np.float64).ravel()
    return float(np.dot(a, a))


def grad_norms(model, per="layer"):
    """L2 norms of the gradients: per layer (default) or per parameter ("encoder.0.weight").
    A layer none of whose trainable parameters has a .grad maps to None."""
    if per not in ("layer", "parameter"):
        raise ValueError(f"per: expected \"layer\" or \"parameter\", got {per!r}")
    out = OrderedDict()
    for layer, (_, params) in layers(model).items():
        trainable = [(n, p) for n, p in params if p.requires_grad]
        if per == "parameter":
            for n, p in trainable:
                out[f"{layer}.{n}"] = None if p.grad is None else math.sqrt(_sq(p.grad))
            continue
        grads = [p.grad for _, p in trainable if p.grad is not None]
        if trainable:
            out[layer] = math.sqrt(sum(_sq(g) for g in grads)) if grads else None
    return out


def snapshot(model):
    """Host copies of every parameter, keyed by layer then parameter name (take one before optimizer.step())."""
    return OrderedDict((layer, OrderedDict((n, np.array(p.numpy(), dtype=np.float64)) for n, p in params))
                       for layer, (_, params) in layers(model).items())


def update_ratios(before, model):
    """Per layer ||w_after - w_before|| / ||w_before|| given snapshot(model) taken before a step. Around 1e-3 is
    healthy; far below means the layer barely learns, far above that it thrashes."""
    ratios = OrderedDict()
    for layer, (_, params) in layers(model).items():
        if layer not in before:
            continue
        delta = weight = 0.0
        for n, p in params:
            old = before[layer][n]
            diff = (p.numpy().astype(np.float64) - old).ravel()
            delta += float(np.dot(diff, diff))
            weight += float(np.dot(old.ravel(), old.ravel()))
        ratios[layer] = math.sqrt(delta / weight) if weight > 0 else math.inf if delta > 0 else 0.0
    return ratios


def dead_relu_fraction(activation):
    """Fraction of units (every feature or channel-position after the batch axis) that are <= 0 for every sample
    of the batch: such units pass no gradient at all."""
    a = activation.numpy() if isinstance(activation, Tensor) else np.asarray(activation)
    if a.ndim < 2:
        raise ValueError(f"activation: expected a batch (N, ...) of at least 2 dimensions, got shape {a.shape}")
    alive = (a > 0).any(axis=0)
    return float(1.0 - alive.mean())
