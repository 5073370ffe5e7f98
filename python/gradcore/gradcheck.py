"""gradcheck: analytic gradients against numpy central differences, in float64.

For a function f of tensors, gradcheck draws a fixed random cotangent v of f's output shape and compares the
analytic gradient of <v, f(inputs)> (one backward pass) with the central difference
    (<v, f(x + eps e_i)> - <v, f(x - eps e_i)>) / (2 eps)
for every element i of every input that requires grad, or, with samples=k, for k elements of each input drawn at
random (seeded, so a failure reproduces): two forward passes per element checked, so a 784 x 200 weight is checked
in seconds instead of minutes. Inputs are promoted to float64 first: float32 rounding (~1e-7 relative) divided by
eps swamps any real error, which is the confusion this tool exists to avoid.

A failure reports, per input, how many checked elements are outside the tolerance, the worst of them, and the
aggregate relative error ||numeric - analytic|| / ||numeric + analytic|| over the elements checked (about 1e-10 for
a right gradient in float64; a wrong one shows as a sizeable fraction of 1).
"""
from __future__ import annotations

import numpy as np

from ._checks import integer
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


def _aggregate_error(numeric, analytic):
    """||numeric - analytic|| / ||numeric + analytic||: 0 for a perfect match, 1 when one side is zero and the
    other not, near 1 or above when the signs disagree (0 when both are zero)."""
    denominator = np.linalg.norm(numeric + analytic)
    difference = np.linalg.norm(numeric - analytic)
    return 0.0 if difference == 0 else float(difference / denominator) if denominator else float("inf")


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, seed=0, max_report=5, samples=None):
    """True when every analytic input gradient matches central differences: |analytic - numeric| <=
    atol + rtol * |numeric| elementwise. Otherwise raises GradcheckError listing the worst mismatches and the
    aggregate ||numeric - analytic|| / ||numeric + analytic|| per input (or returns False with
    raise_exception=False).

    fn: takes the inputs (Tensors; also other values, passed through) and returns a Tensor or a tuple of them.
    inputs: a sequence; Tensors with requires_grad=True are checked (all Tensors when none requires grad).
    samples: None checks every element; an int k checks k elements of each input (all of a smaller one), drawn
    without replacement by a generator seeded with `seed`, so the same elements are checked on every run.
    """
    if not callable(fn):
        raise TypeError(f"fn: expected a function of the inputs, got {type(fn).__name__}")
    if samples is not None:
        samples = integer(samples, "samples", 1)
    seed = integer(seed, "seed", 0)
    max_report = integer(max_report, "max_report", 1)
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
        if samples is None or samples >= base.size:
            positions = np.arange(base.size)
            what = f"{base.size} elements"
        else:  # one generator per input, so adding an input does not change which elements another one checks
            positions = np.sort(np.random.default_rng((seed, i)).choice(base.size, samples, replace=False))
            what = f"{samples} sampled elements (of {base.size}, seed {seed})"
        numeric = np.zeros(positions.size)
        probe = base.copy()
        for n, k in enumerate(positions):
            for sign in (+1.0, -1.0):
                probe.flat[k] = base.flat[k] + sign * eps
                shifted = list(work)
                shifted[i] = tensor(probe, dtype="float64", device=work[i].device)
                numeric[n] += sign * _projected(fn, shifted, cotangents)
            probe.flat[k] = base.flat[k]
        numeric = numeric / (2 * eps)
        a = analytic[position]
        a = np.zeros(positions.size) if a is None else a.numpy().astype(np.float64).ravel()[positions]
        excess = np.abs(a - numeric) - (atol + rtol * np.abs(numeric))
        bad = ~(excess <= 0)  # a NaN on either side (analytic or numeric) is a mismatch, not a pass
        if np.any(bad):
            worst = np.argsort(-np.nan_to_num(excess, nan=np.inf))[:min(max_report, int(bad.sum()))]
            lines = [f"  input {i} {_index(positions[w], base.shape)}: analytic {a[w]:.8g}, numeric "
                     f"{numeric[w]:.8g}, |diff| {abs(a[w] - numeric[w]):.3g}" for w in worst]
            failures.append(i)
            report.append(f"input {i} (shape {base.shape}): {int(bad.sum())} of {what} outside atol={atol}, "
                          f"rtol={rtol}; ||numeric - analytic|| / ||numeric + analytic|| = "
                          f"{_aggregate_error(numeric, a):.3g}; worst:\n" + "\n".join(lines))
    if failures:
        if raise_exception:
            raise GradcheckError("gradcheck failed\n" + "\n".join(report))
        return False
    return True
