"""Training health: per-layer gradient norms, update-to-weight ratios, dead ReLUs, and checks that name the layer.

Why: the seeds' autoencoder failed silently. Its encoder's gradients fell to 1e-40 and its output collapsed to a
constant (the mean image) while the loss looked merely "high". These checks turn such failures into warnings
that say which layer is affected:

  check_gradients(model)   a layer whose gradient norm is below `vanish` (1e-8), above `explode` (1e4), not
                           finite, or missing (the layer got no gradient at all: a graph cut between networks)
  check_output(y)          the output's standard deviation across the batch is ~0 (collapse to a constant)
  check_dead_relus(...)    a ReLU layer whose units are zero for every sample of the batch (beyond `max_dead`)

A layer is a module that owns parameters directly ("encoder.0" for the first conv of an encoder); its norm is
the L2 norm over all of its parameters. The check functions return messages; `warn()` emits them as
GradcoreHealthWarning (through tqdm.write too, so they show above a progress bar).
"""
from __future__ import annotations

import math
import warnings
from collections import OrderedDict

import numpy as np

from .nn.module import Module
from .tensor import Tensor

VANISH = 1e-8
EXPLODE = 1e4
MIN_OUTPUT_STD = 1e-6
MAX_DEAD = 0.9


class GradcoreHealthWarning(UserWarning):
    """A training-health problem: vanishing, exploding or missing gradients, a collapsed output, dead ReLUs."""


def _named_modules(model):
    """(name, module) pairs of a Module or of a {prefix: Module} mapping (an encoder and a decoder)."""
    if isinstance(model, Module):
        yield from model.named_modules()
    elif isinstance(model, dict):
        for prefix, m in model.items():
            yield from m.named_modules(prefix)
    else:
        raise TypeError(f"model: expected a gradcore.nn.Module or a dict of them, got {type(model).__name__}")


def _layers(model):
    """layer name -> [(parameter name, Parameter)] for modules that own parameters."""
    layers = OrderedDict()
    for name, module in _named_modules(model):
        own = [(n, p) for n, p in module._parameters.items() if p is not None]
        if own:
            layers[name or type(module).__name__] = own
    return layers


def _sq(t):
    a = t.numpy().astype(np.float64)
    return float(np.dot(a.ravel(), a.ravel()))


def grad_norms(model, per="layer"):
    """L2 norms of the gradients: per layer (default) or per parameter ("encoder.0.weight").
    A layer none of whose trainable parameters has a .grad maps to None."""
    if per not in ("layer", "parameter"):
        raise ValueError(f"per: expected \"layer\" or \"parameter\", got {per!r}")
    out = OrderedDict()
    for layer, params in _layers(model).items():
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
                       for layer, params in _layers(model).items())


def update_ratios(before, model):
    """Per layer ||w_after - w_before|| / ||w_before|| given snapshot(model) taken before a step. Around 1e-3 is
    healthy for Adam-like optimizers; far below means the layer barely learns, far above that it thrashes."""
    ratios = OrderedDict()
    for layer, params in _layers(model).items():
        if layer not in before:
            continue
        delta = weight = 0.0
        for n, p in params:
            old = before[layer][n]
            diff = p.numpy().astype(np.float64) - old
            delta += float(np.dot(diff.ravel(), diff.ravel()))
            weight += float(np.dot(old.ravel(), old.ravel()))
        ratios[layer] = math.sqrt(delta) / math.sqrt(weight) if weight > 0 else math.inf if delta > 0 else 0.0
    return ratios


def dead_relu_fraction(activation):
    """Fraction of units (every feature or channel-position after the batch axis) that are <= 0 for every sample
    of the batch: such units pass no gradient at all."""
    a = activation.numpy() if isinstance(activation, Tensor) else np.asarray(activation)
    if a.ndim < 2:
        raise ValueError(f"activation: expected a batch (N, ...) of at least 2 dimensions, got shape {a.shape}")
    alive = (a > 0).any(axis=0)
    return float(1.0 - alive.mean())


class ReLUMonitor:
    """Records the dead-unit fraction of every nn.ReLU module's output while active (a forward hook):

        with ReLUMonitor(model) as relus:
            model(x)
        relus.fractions   # {"encoder.1": 0.02, ...}
    """

    def __init__(self, model):
        from .nn.activation import ReLU

        self.targets = [(name, m) for name, m in _named_modules(model) if isinstance(m, ReLU)]
        self.fractions = OrderedDict()

    def __enter__(self):
        for name, m in self.targets:
            object.__setattr__(m, "forward", self._hooked(name, type(m).forward.__get__(m)))
        return self

    def _hooked(self, name, forward):
        def forward_and_record(x):
            y = forward(x)
            self.fractions[name] = dead_relu_fraction(y)
            return y
        return forward_and_record

    def __exit__(self, *exc):
        for _, m in self.targets:
            m.__dict__.pop("forward", None)
        return False


# ---- checks: each returns a list of messages naming the layer -----------------------------------------------------
def check_gradients(model, vanish=VANISH, explode=EXPLODE):
    """Messages for layers whose gradient norm is missing, below `vanish`, above `explode`, or not finite."""
    messages = []
    for layer, norm in grad_norms(model).items():
        if norm is None:
            messages.append(f"layer {layer!r} received no gradient: it is not connected to the loss "
                            "(a detach() or a graph rebuilt between networks?)")
        elif not math.isfinite(norm):
            messages.append(f"layer {layer!r} has a non-finite gradient norm ({norm})")
        elif norm < vanish:
            messages.append(f"layer {layer!r} gradients vanish: norm {norm:.3g} < {vanish:g}")
        elif norm > explode:
            messages.append(f"layer {layer!r} gradients explode: norm {norm:.3g} > {explode:g}")
    return messages


def check_output(output, name="output", min_std=MIN_OUTPUT_STD):
    """A message when the output has collapsed to a constant: the standard deviation across the batch, averaged
    over features, is below `min_std` (the seeds' autoencoder returned the mean image for every input)."""
    a = output.numpy() if isinstance(output, Tensor) else np.asarray(output)
    if a.ndim < 1 or a.shape[0] < 2:
        return []
    spread = float(a.astype(np.float64).std(axis=0).mean())
    if not math.isfinite(spread):
        return [f"{name} is not finite"]
    if spread < min_std:
        return [f"{name} collapsed to a constant: its std across the batch is {spread:.3g} < {min_std:g} "
                "(every input gives the same output)"]
    return []


def check_dead_relus(fractions, max_dead=MAX_DEAD):
    """Messages for ReLU layers (ReLUMonitor.fractions) with more than `max_dead` of their units dead."""
    return [f"layer {name!r}: {frac:.0%} of its ReLU units are dead (zero for the whole batch)"
            for name, frac in fractions.items() if frac > max_dead]


def warn(messages, stacklevel=2):
    """Emits each message as a GradcoreHealthWarning and prints it above any tqdm progress bar."""
    for message in messages:
        try:
            from tqdm import tqdm
            tqdm.write(f"gradcore health: {message}")
        except ImportError:  # pragma: no cover - tqdm is a dependency
            pass
        warnings.warn(message, GradcoreHealthWarning, stacklevel=stacklevel + 1)
    return messages
