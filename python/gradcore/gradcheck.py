"""gradcheck: analytic gradients against numpy central differences, in float64.

For a function f of tensors, gradcheck draws a fixed random cotangent v of f's output shape and compares the
analytic gradient of <v, f(inputs)> (one backward pass) with the central difference
    (<v, f(x + eps e_i)> - <v, f(x - eps e_i)>) / (2 eps)
for every element i of every input that requires grad. Inputs are promoted to float64 first: float32 rounding
(~1e-7 relative) divided by eps swamps any real error, which is the confusion this tool exists to avoid.
"""
from __future__ import annotations

import numpy as np

from .autograd import grad
from .tensor import Tensor, tensor


class GradcheckError(AssertionError):
    pass


def _index(flat, shape):
    """A flat position as a plain tuple of ints, e.g. (1, 2) (numpy 2 would print np.int64(1))."""
    return tuple(int(i) for i in np.unravel_index(flat, shape))


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _projected(fn, inputs, cotangents):
    outputs = _as_tuple(fn(*inputs))
    total = 0.0
    for out, v in zip(outputs, cotangents):
        total += float(np.sum(out.numpy().astype(np.float64) * v))
    return total


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, seed=0, max_report=5):
    """True when every analytic input gradient matches central differences: |analytic - numeric| <=
    atol + rtol * |numeric| elementwise. Otherwise raises GradcheckError listing the worst mismatches (or
    returns False with raise_exception=False).

    fn: takes the inputs (Tensors; also other values, passed through) and returns a Tensor or a tuple of them.
    inputs: a sequence; Tensors with requires_grad=True are checked (all Tensors when none requires grad).
    """
    if not callable(fn):
        raise TypeError(f"fn: expected a function of the inputs, got {type(fn).__name__}")
    inputs = list(_as_tuple(inputs))
    tensors = [i for i, x in enumerate(inputs) if isinstance(x, Tensor)]
    if not tensors:
        raise TypeError("inputs: expected at least one gradcore.Tensor")
    checked = [i for i in tensors if inputs[i].requires_grad] or tensors
    # float64 copies: the check itself must not be float32 noise.
    work = list(inputs)
    for i in tensors:
        work[i] = tensor(inputs[i].numpy().astype(np.float64), dtype="float64", device=inputs[i].device,
                         requires_grad=i in checked)

    outputs = _as_tuple(fn(*work))
    rng = np.random.default_rng(seed)
    cotangents = [rng.standard_normal(out.shape) for out in outputs]
    seeds = [tensor(v, dtype="float64", device=out.device) for v, out in zip(cotangents, outputs)]
    differentiable = [(o, s) for o, s in zip(outputs, seeds) if o.requires_grad]
    if not differentiable:
        raise GradcheckError("gradcheck: no output depends on an input that requires grad")
    analytic = grad([o for o, _ in differentiable], [work[i] for i in checked],
                    grad_outputs=[s for _, s in differentiable], allow_unused=True)

    failures, report = [], []
    for position, i in enumerate(checked):
        base = work[i].numpy().astype(np.float64).copy()
        numeric = np.zeros(base.size)
        for k in range(base.size):
            for sign in (+1.0, -1.0):
                probe = base.copy()
                probe.flat[k] += sign * eps
                shifted = list(work)
                shifted[i] = tensor(probe, dtype="float64", device=work[i].device)
                numeric[k] += sign * _projected(fn, shifted, cotangents)
        numeric = (numeric / (2 * eps)).reshape(base.shape)
        a = analytic[position]
        a = np.zeros(base.shape) if a is None else a.numpy().astype(np.float64)
        excess = np.abs(a - numeric) - (atol + rtol * np.abs(numeric))
        bad = ~(excess <= 0)  # a NaN on either side (analytic or numeric) is a mismatch, not a pass
        if np.any(bad):
            worst = np.argsort(-np.nan_to_num(excess, nan=np.inf).ravel())[:min(max_report, int(bad.sum()))]
            lines = [f"  input {i} {_index(w, base.shape)}: analytic {a.flat[w]:.8g}, numeric "
                     f"{numeric.flat[w]:.8g}, |diff| {abs(a.flat[w] - numeric.flat[w]):.3g}" for w in worst]
            failures.append(i)
            report.append(f"input {i} (shape {base.shape}): {int(bad.sum())} of {base.size} elements "
                          f"outside atol={atol}, rtol={rtol}; worst:\n" + "\n".join(lines))
    if failures:
        if raise_exception:
            raise GradcheckError("gradcheck failed\n" + "\n".join(report))
        return False
    return True
