"""The one tolerance helper every test uses, and the device list for CPU/CUDA twins.

assert_close(actual, expected, atol, rtol) passes when |actual - expected| <= atol + rtol * |expected| everywhere
(numpy's rule) and otherwise fails listing the worst mismatches with their indices.
assert_cuda_matches_cpu(cuda, cpu, dtype) is the one CUDA-against-CPU check, with one tolerance policy; every CUDA
test compares through it (bitwise checks of run-to-run determinism on one device are another matter: they use
exact equality on purpose).
"""
import numbers

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


# CUDA against CPU: both devices run the same algorithm, each in its own fixed order of summation (and a GPU may
# contract a * b + c into one FMA), so they differ by rounding alone, which grows with the size of the values summed.
# One policy for every CUDA test: the dtype's forward tolerance times CUDA_SLACK, with atol scaled by the largest
# magnitude among the CPU values. An indexing or synchronisation bug is off by far more than this.
CUDA_SLACK = 10


def assert_cuda_matches_cpu(cuda, cpu, dtype, name="value"):
    """cuda and cpu are one value each (a Tensor, a numpy array or a list of numbers), or equal-length lists or
    dicts of them; every pair must agree within the policy above. Tensors may be on either device."""
    if isinstance(cpu, dict):
        assert list(cuda) == list(cpu), f"{name}: CUDA results {list(cuda)} != CPU results {list(cpu)}"
        pairs = [(cuda[k], cpu[k], f"{name}: {k}" if name != "value" else str(k)) for k in cpu]
    elif isinstance(cpu, (list, tuple)) and cpu and not isinstance(cpu[0], numbers.Number):
        assert len(cuda) == len(cpu), f"{name}: {len(cuda)} CUDA results != {len(cpu)} CPU results"
        pairs = [(g, c, f"{name}[{k}]") for k, (g, c) in enumerate(zip(cuda, cpu))]
    else:
        pairs = [(cuda, cpu, name)]
    tol = forward_tol(dtype)
    for got, expected, what in pairs:
        expected = to_numpy(expected)
        scale = max(1.0, float(np.nanmax(np.abs(expected)))) if expected.size else 1.0
        assert_close(got, expected, atol=tol["atol"] * CUDA_SLACK * scale, rtol=tol["rtol"] * CUDA_SLACK, name=what)


def cuda_and_cpu_with_grads(build, dtype, seed=4):
    """Runs build(device) -> (output, {name: input tensor}) on the CPU and the CUDA device, backpropagates the same
    random cotangent on each, and returns {device: {"y": output, "<name>.grad": ...}} for assert_cuda_matches_cpu."""
    results = {}
    for device in ("cpu", "cuda"):
        y, inputs = build(device)
        g = np.random.default_rng(seed).standard_normal(y.shape)
        y.backward(gradcore.tensor(g, dtype=dtype, device=device))
        results[device] = {"y": y.numpy(), **{f"{k}.grad": t.grad.numpy() for k, t in inputs.items()}}
    return results


def float32_error_units(got, bilinear, a, b, *args):
    """The worst |got - bilinear(a, b)| in units of 2^-24 * bilinear(|a|, |b|): a float32 result's rounding error
    against the float64 exact value, relative to the magnitude of the terms each output sums (a, b: the float32
    operands, widened; bilinear: a numpy reference such as conv2d(x, w, *args)). A direct sum's error grows like this
    with its number of terms, so fewer-multiplies paths (Winograd) state their bounds in these units."""
    a, b = (np.asarray(v, dtype=np.float32).astype(np.float64) for v in (a, b))
    exact, scale = bilinear(a, b, *args), bilinear(np.abs(a), np.abs(b), *args)
    return np.max(np.abs(np.asarray(got, dtype=np.float64) - exact) / (scale * 2.0**-24))
