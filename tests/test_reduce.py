"""sum, mean and reshape: forward against numpy over every axis pattern, gradients by gradcheck, bitwise
determinism, and the accuracy that accumulating float32 sums in double buys."""
import os
import subprocess
import sys

import numpy as np
import pytest

import gradcore
from reference import reduce as ref
from tolerance import DEVICES, DTYPES, assert_close, assert_cuda_matches_cpu, forward_tol

AXES = {"all": None, "first": 0, "middle": 1, "last": 2, "negative": -1, "pair": (0, 2), "negative_pair": (-1, -3),
        "tuple_of_one": (1,), "every_axis_listed": (0, 1, 2), "none_listed": ()}


def _tensor(shape, dtype, device, seed=0, requires_grad=False):
    values = np.random.default_rng(seed).standard_normal(shape)
    return gradcore.tensor(values, dtype=dtype, device=device, requires_grad=requires_grad)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("keepdims", [False, True], ids=["dropdims", "keepdims"])
@pytest.mark.parametrize("axes", list(AXES))
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_forward_matches_numpy(reduction, axes, keepdims, dtype, device):
    x = _tensor((3, 4, 5), dtype, device)
    axis = AXES[axes]
    out = getattr(x, reduction)(axis=axis, keepdims=keepdims)
    expected = getattr(ref, reduction)(x.numpy(), axis=axis, keepdims=keepdims)
    assert out.shape == expected.shape and out.dtype == dtype and out.device == x.device
    assert_close(out, expected, **forward_tol(dtype), name=f"{reduction} {axes}")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("keepdims", [False, True], ids=["dropdims", "keepdims"])
@pytest.mark.parametrize("axes", ["all", "first", "negative", "pair", "none_listed"])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_gradcheck(reduction, axes, keepdims, device):
    x = _tensor((2, 3, 4), "float64", device, seed=1, requires_grad=True)
    fn = getattr(gradcore.functional, reduction)
    assert gradcore.gradcheck(lambda t: fn(t, axis=AXES[axes], keepdims=keepdims), [x])


@pytest.mark.parametrize("device", DEVICES)
def test_mean_gradient_is_one_over_the_count(device):
    x = _tensor((4, 6), "float64", device, requires_grad=True)
    x.mean(axis=0).sum().backward()
    assert_close(x.grad, np.full((4, 6), 0.25), atol=0, rtol=0)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 4, 5), (6, -1), (-1,), (5, 1, -1, 2), ()], ids=str)
def test_reshape(shape, dtype, device):
    n = 60 if shape != () else 1
    values = np.arange(n, dtype=np.float64).reshape((3, 4, 5) if n == 60 else ())
    x = gradcore.tensor(values, dtype=dtype, device=device, requires_grad=True)
    y = x.reshape(shape)
    assert y.shape == ref.reshape(values, shape).shape
    assert_close(y, ref.reshape(values, shape), atol=0, rtol=0)
    assert_close(x.reshape(*shape) if shape else x.reshape(()), y, atol=0, rtol=0)
    if dtype == "float64" and n > 1:
        assert gradcore.gradcheck(lambda t: t.reshape(shape) * t.reshape(shape), [x])


def test_reshape_shares_storage_and_flatten():
    x = gradcore.zeros(2, 3)
    y = x.reshape(3, 2)
    y.fill_(1.0)
    assert x.numpy().sum() == 6.0
    assert gradcore.zeros(2, 3, 4).flatten(1).shape == (2, 12)
    assert gradcore.zeros(2, 3, 4).flatten().shape == (24,)


def test_reshape_errors_name_the_shape():
    x = gradcore.zeros(2, 3)
    with pytest.raises(ValueError, match="shape: cannot reshape"):
        x.reshape(4, 2)
    with pytest.raises(ValueError, match="shape: only one dimension may be -1"):
        x.reshape(-1, -1)
    with pytest.raises(ValueError, match="shape: cannot reshape"):
        x.reshape(-1, 4)
    with pytest.raises(ValueError, match="shape"):
        x.reshape(-2, 3)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_axis_errors(reduction):
    x = gradcore.zeros(2, 3)
    with pytest.raises(ValueError, match="axis: 2 is out of range"):
        getattr(x, reduction)(axis=2)
    with pytest.raises(ValueError, match="axis: -3 is out of range"):
        getattr(x, reduction)(axis=(0, -3))


def test_empty_reductions():
    assert gradcore.zeros(0, 3).sum().item() == 0.0
    assert_close(gradcore.zeros(0, 3).sum(axis=0), np.zeros(3), atol=0, rtol=0)
    with pytest.raises(ValueError, match="mean"):
        gradcore.zeros(0, 3).mean(axis=0)


# ---- determinism and accuracy ---------------------------------------------------------------------------------
LARGE = {"all": ((1 << 20) + 123, None), "rows": ((64, 40000), 1), "columns": ((40000, 64), 0),
         "middle": ((16, 20000, 4), 1)}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", list(LARGE))
def test_sum_is_bitwise_deterministic(case, dtype, device):
    shape, axis = LARGE[case]
    x = _tensor(shape, dtype, device, seed=2)
    first = x.sum(axis=axis).numpy().copy()
    for _ in range(3):
        np.testing.assert_array_equal(x.sum(axis=axis).numpy(), first)
    assert_close(first, ref.sum(x.numpy(), axis=axis), **forward_tol(dtype), name=case)


_THREAD_SCRIPT = """
import sys, numpy as np, gradcore
x = gradcore.tensor(np.random.default_rng(3).standard_normal((300, 5000)), dtype="float32")
sys.stdout.write(x.sum().numpy().tobytes().hex() + x.sum(axis=0).numpy().tobytes().hex()[:4000])
"""


def test_sum_does_not_depend_on_thread_count():
    results = set()
    for threads in ("1", "2", "3"):
        env = dict(os.environ, OMP_NUM_THREADS=threads)
        done = subprocess.run([sys.executable, "-c", _THREAD_SCRIPT], env=env, capture_output=True, text=True,
                              check=True)
        results.add(done.stdout)
    assert len(results) == 1


@pytest.mark.parametrize("device", DEVICES)
def test_float32_sum_of_a_million_accumulates_in_double(device):
    n = 1_000_000
    # 2^24 followed by a million ones: a float32 accumulator stalls at 2^24 (each +1 rounds away).
    values = np.ones(n + 1, np.float32)
    values[0] = 2.0 ** 24
    x = gradcore.tensor(values, device=device)
    assert x.sum().item() == 2.0 ** 24 + n
    # Random data: the result is the float32 rounding of the exact sum (within half an ulp, plus slack).
    r = np.random.default_rng(4).uniform(0.0, 1.0, n).astype(np.float32)
    exact = np.sum(r.astype(np.float64))
    got = gradcore.tensor(r, device=device).sum().item()
    assert abs(got - exact) <= abs(exact) * 2.0 ** -23
    assert abs(gradcore.tensor(r, device=device).mean().item() - exact / n) <= abs(exact / n) * 2.0 ** -22


# Each of the CUDA sum's paths: a short reduction (a thread per kept element), one chunk per kept element (a block
# each), several chunks (blocks, then their partials in order); and LARGE's shapes.
CUDA_PATHS = {"short": ((3, 70000), 0), "one_chunk": ((50, 300), 1)}


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", list(LARGE) + list(CUDA_PATHS))
def test_cuda_sum_matches_cpu(case, dtype):
    shape, axis = LARGE[case] if case in LARGE else CUDA_PATHS[case]
    values = np.random.default_rng(5).standard_normal(shape)
    cpu = gradcore.tensor(values, dtype=dtype).sum(axis=axis)
    gpu = gradcore.tensor(values, dtype=dtype, device="cuda").sum(axis=axis)
    assert_cuda_matches_cpu(gpu, cpu, dtype, name=case)
