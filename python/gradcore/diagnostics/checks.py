"""One-shot checks for code that is not a training loop (a held-out pass, a notebook cell). They read back to the
host at once; in a loop use HealthMonitor, which measures on the device and reads back once per check.
"""
from __future__ import annotations

import math

from ..tensor import Tensor
from . import statistics as S
from .findings import HINTS, Finding, Thresholds
from .layers import grad_norms, layers


def _tensor(value, name):
    if isinstance(value, Tensor):
        return value
    from ..tensor import tensor
    try:
        return tensor(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a gradcore.Tensor or an array, got {type(value).__name__}") from None


def spread_ratio(output, target):
    """The output's spread across the batch over the target's (see statistics.batch_spread): ~1 for a net that
    follows its input, 0 for a constant output of any value. None for a batch of fewer than 2."""
    output, target = _tensor(output, "output"), _tensor(target, "target")
    if output.ndim < 1 or output.shape[0] < 2 or target.ndim < 1 or target.shape[0] < 2:
        return None
    out, tgt = S.batch_spread(output).item(), S.batch_spread(target).item()
    return out / tgt if tgt > 0 else (math.inf if out > 0 else math.nan)


def check_output(output, target, name="output", threshold=None):
    """Findings when the output has collapsed: its spread across the batch is below `threshold` (default
    Thresholds().collapse) of the target's (pass the input as target for an autoencoder), or it is not finite.
    Meant for a held-out pass after some training, when a healthy net's ratio is near 1."""
    threshold = Thresholds().collapse if threshold is None else float(threshold)
    ratio = spread_ratio(output, target)
    if ratio is None:
        return []
    if not math.isfinite(ratio):
        return [Finding("nonfinite", None, ratio, "finite", f"{name} spread ratio", HINTS["nonfinite"])]
    if ratio < threshold:
        return [Finding("collapse", None, ratio, f">= {threshold:g}",
                        f"{name} spread across the batch over the target's", HINTS["collapse"])]
    return []


def check_gradients(model, first_last=None):
    """Findings from the gradients now in .grad: layers that got none while others did (a graph cut), non-finite
    norms, and a first layer (in registration order) whose ||grad|| / ||w|| is below `first_last` (default
    Thresholds().first_last) of the last layer's."""
    first_last = Thresholds().first_last if first_last is None else float(first_last)
    norms = grad_norms(model)
    found = []
    if any(v is not None for v in norms.values()):
        found += [Finding("no_gradient", name, 0.0, "> 0", "received no gradient, gradient norm",
                          HINTS["no_gradient"]) for name, v in norms.items() if v is None]
    found += [Finding("nonfinite", name, v, "finite", "gradient norm", HINTS["nonfinite"])
              for name, v in norms.items() if v is not None and not math.isfinite(v)]
    ratios = {}
    for name, (_, params) in layers(model).items():
        if norms.get(name) is not None:
            w = math.sqrt(sum(S.sum_squares(p).item() for _, p in params))
            ratios[name] = norms[name] / w if w > 0 else math.inf
    names = list(ratios)
    if len(names) >= 2 and all(math.isfinite(ratios[n]) for n in (names[0], names[-1])) and ratios[names[-1]] > 0:
        r = ratios[names[0]] / ratios[names[-1]]
        if r < first_last:
            found.append(Finding("first_last", names[0], r, f">= {first_last:g}",
                                 f"relative gradient ||grad||/||w|| over the last layer's ({names[-1]!r})",
                                 HINTS["first_last"]))
    return found
