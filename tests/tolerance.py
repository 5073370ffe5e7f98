"""The one tolerance helper every test uses, and the device list for CPU/CUDA twins.

assert_close(actual, expected, atol, rtol) passes when |actual - expected| <= atol + rtol * |expected| everywhere
(numpy's rule) and otherwise fails listing the worst mismatches with their indices.
"""
import numpy as np
import pytest

import gradcore

# Parametrise a test over this list: the CUDA case carries the `cuda` marker and skips without a device.
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]
DTYPES = ["float32", "float64"]

# Forward tolerances by dtype (relative to a float64 numpy reference).
FORWARD_TOL = {"float32": dict(atol=1e-5, rtol=1e-4), "float64": dict(atol=1e-12, rtol=1e-10)}


def to_numpy(x):
    if isinstance(x, gradcore.Tensor):
        return x.numpy().astype(np.float64)
    return np.asarray(x, dtype=np.float64)


def assert_close(actual, expected, atol=1e-6, rtol=1e-5, name="value", max_report=5):
    a, e = to_numpy(actual), to_numpy(expected)
    assert a.shape == e.shape, f"{name}: shape {a.shape} != expected {e.shape}"
    excess = np.abs(a - e) - (atol + rtol * np.abs(e))
    bad = ~(excess <= 0)  # NaN counts as a mismatch
    if bad.any():
        order = np.argsort(-np.nan_to_num(excess, nan=np.inf).ravel())[:max_report]
        at = lambda flat: tuple(int(j) for j in np.unravel_index(flat, a.shape))  # noqa: E731 (plain ints)
        rows = [f"  at {at(i)}: got {a.flat[i]:.9g}, expected {e.flat[i]:.9g}, "
                f"|diff| {abs(a.flat[i] - e.flat[i]):.3g}" for i in order]
        raise AssertionError(f"{name}: {int(bad.sum())} of {a.size} elements outside atol={atol}, rtol={rtol}; "
                             "worst:\n" + "\n".join(rows))


def forward_tol(dtype):
    return FORWARD_TOL[dtype]


def assert_cuda_matches_cpu(build, dtype, devices=("cpu", "cuda"), seed=4, slack=10):
    """Runs build(device) -> (output, {name: input tensor}) on each device, backpropagates the same random cotangent,
    and checks the output and every input's .grad agree (forward tolerance times `slack`, scaled by magnitude)."""
    results = {}
    for device in devices:
        y, inputs = build(device)
        g = np.random.default_rng(seed).standard_normal(y.shape)
        y.backward(gradcore.tensor(g, dtype=dtype, device=device))
        results[device] = {"y": y.numpy(), **{f"{k}.grad": t.grad.numpy() for k, t in inputs.items()}}
    tol = forward_tol(dtype)
    reference, other = results[devices[0]], results[devices[1]]
    for what, expected in reference.items():
        scale = max(1.0, float(np.abs(expected).max())) if expected.size else 1.0
        assert_close(other[what], expected, atol=tol["atol"] * scale * slack, rtol=tol["rtol"] * slack, name=what)
