"""softmax and log_softmax: numpy references over every dim of several shapes, stability for huge logits, -inf
and NaN rows, float64 gradcheck, bitwise determinism, CUDA against CPU, the modules and argument errors."""
import numpy as np
import pytest

import gradcore
import gradcore.functional as F
from gradcore import nn
from reference import softmax as ref
from tolerance import DEVICES, DTYPES, assert_close, assert_cuda_matches_cpu, forward_tol

FUNCS = {"softmax": (F.softmax, ref.softmax), "log_softmax": (F.log_softmax, ref.log_softmax)}
SHAPES_AND_DIMS = [((7,), 0), ((4, 10), 1), ((4, 10), 0), ((3, 5, 6), 1), ((2, 3, 4, 5), -1), ((2, 3, 4, 5), 1),
                   ((2, 70, 3), 1), ((3, 100), -1), ((5, 1), 1)]


def _ids(case):
    return f"{'x'.join(map(str, case[0]))}-dim{case[1]}"


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", SHAPES_AND_DIMS, ids=_ids)
@pytest.mark.parametrize("name", list(FUNCS))
def test_forward_matches_numpy(name, case, dtype, device):
    shape, dim = case
    x_np = np.random.default_rng(0).standard_normal(shape) * 3
    x = gradcore.tensor(x_np, dtype=dtype, device=device)
    ours, reference = FUNCS[name]
    y = ours(x, dim)
    assert y.shape == x.shape and y.dtype == dtype
    assert_close(y, reference(x.numpy(), dim), **forward_tol(dtype), name=name)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_rows_sum_to_one_and_tensor_methods_agree(dtype, device):
    x = gradcore.tensor(np.random.default_rng(1).standard_normal((6, 9)), dtype=dtype, device=device)
    y = x.softmax(1)
    assert_close(y.numpy().sum(axis=1), np.ones(6), **forward_tol(dtype))
    assert np.array_equal(x.log_softmax(-1).numpy(), F.log_softmax(x, 1).numpy())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_stable_for_huge_logits(dtype, device):
    x_np = np.array([[1000.0, 0.0, -1000.0], [1e4, 1e4, 1e4], [-1e4, -1e4 + 1, -1e4 + 2], [88.0, 89.0, 200.0]])
    x = gradcore.tensor(x_np, dtype=dtype, device=device)
    log_y = F.log_softmax(x, 1).numpy()
    assert np.all(np.isfinite(log_y))
    assert_close(log_y, ref.log_softmax(x_np.astype(dtype), 1), **forward_tol(dtype))
    y = F.softmax(x, 1).numpy()
    assert np.all(np.isfinite(y))
    assert_close(y, ref.softmax(x_np.astype(dtype), 1), **forward_tol(dtype))
    assert y[0, 2] == 0.0  # e^-2000 underflows to exactly 0


@pytest.mark.parametrize("device", DEVICES)
def test_minus_infinity_entries_get_zero_probability_and_nan_spreads_over_its_row(device):
    x = gradcore.tensor([[0.0, -np.inf, 0.0], [np.nan, 1.0, 2.0], [-np.inf, -np.inf, -np.inf]], device=device)
    y = F.softmax(x, 1).numpy()
    assert_close(y[0], [0.5, 0.0, 0.5])
    assert np.all(np.isnan(y[1]))  # as PyTorch: a NaN logit poisons its row
    assert np.all(np.isnan(y[2]))  # all -inf: 0/0
    assert F.log_softmax(x, 1).numpy()[0, 1] == -np.inf


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", [((3, 5), 1), ((3, 5), 0), ((2, 3, 4), 1), ((4,), 0)], ids=_ids)
@pytest.mark.parametrize("name", list(FUNCS))
def test_gradcheck(name, case, device):
    shape, dim = case
    x = gradcore.tensor(np.random.default_rng(2).standard_normal(shape), dtype="float64", device=device,
                        requires_grad=True)
    assert gradcore.gradcheck(lambda a: FUNCS[name][0](a, dim), [x])


def test_zero_dim_and_empty_inputs():
    s = gradcore.tensor(np.float64(3.0))
    assert F.softmax(s, 0).item() == 1.0 and F.log_softmax(s, -1).item() == 0.0
    e = gradcore.zeros(0, 4)
    assert F.softmax(e, 1).shape == (0, 4)


def test_dtype_argument_casts_first():
    x = gradcore.tensor([[1.0, 2.0]])
    y = F.softmax(x, 1, dtype="float64")
    assert y.dtype == "float64"


def test_results_are_bitwise_reproducible_across_thread_counts():
    x = gradcore.tensor(np.random.default_rng(3).standard_normal((64, 300)).astype(np.float32))
    before = gradcore.get_num_threads()
    results = []
    try:
        for threads in (1, 2, 3):
            gradcore.set_num_threads(threads)
            for name in FUNCS:
                results.append((name, threads, FUNCS[name][0](x, 1).numpy().copy(), FUNCS[name][0](x, 0).numpy()))
    finally:
        gradcore.set_num_threads(before)
    for name, _, a, b in results:
        first = next(r for r in results if r[0] == name)
        assert np.array_equal(a, first[2]) and np.array_equal(b, first[3])


def test_modules():
    x = gradcore.tensor(np.random.default_rng(4).standard_normal((2, 5)))
    assert np.array_equal(nn.Softmax(dim=1)(x).numpy(), F.softmax(x, 1).numpy())
    assert np.array_equal(nn.LogSoftmax(dim=-1)(x).numpy(), F.log_softmax(x, 1).numpy())
    assert "dim=1" in repr(nn.Softmax(dim=1))


def test_argument_errors():
    x = gradcore.zeros(2, 3)
    with pytest.raises(ValueError, match="dim: 2 is out of range"):
        F.softmax(x, 2)
    with pytest.raises(TypeError, match="dim: expected an int"):
        F.log_softmax(x, 1.0)
    with pytest.raises(TypeError, match="dim"):
        F.softmax(x)
    with pytest.raises(TypeError, match="input: expected a gradcore.Tensor"):
        F.softmax(np.zeros((2, 3)), 1)
    with pytest.raises(TypeError, match="dim"):
        nn.Softmax()(x)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", [((33, 10), 1), ((4, 700), 1), ((3, 7, 65), 1), ((2, 5, 3), 2), ((40, 3), 0)],
                         ids=_ids)
@pytest.mark.parametrize("name", list(FUNCS))
def test_cuda_matches_cpu_forward_and_backward(name, case, dtype):
    shape, dim = case
    rng = np.random.default_rng(5)
    x_np, g_np = rng.standard_normal(shape) * 4, rng.standard_normal(shape)
    results = {}
    for device in ("cpu", "cuda"):
        x = gradcore.tensor(x_np, dtype=dtype, device=device, requires_grad=True)
        y = FUNCS[name][0](x, dim)
        y.backward(gradcore.tensor(g_np, dtype=dtype, device=device))
        results[device] = {"y": y.numpy(), "dx": x.grad.numpy()}
    assert_cuda_matches_cpu(results["cuda"], results["cpu"], dtype, name=name)
    again = FUNCS[name][0](gradcore.tensor(x_np, dtype=dtype, device="cuda"), dim).numpy()
    assert np.array_equal(again, results["cuda"]["y"])  # run to run, bitwise
