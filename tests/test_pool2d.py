"""2-d pooling: max_pool2d, avg_pool2d, adaptive_avg_pool2d against loop-by-loop numpy references over kernel,
stride, padding, dilation and ceil_mode; output-size edges of ceil_mode; first-index ties and NaN; float64
gradcheck (overlapping windows included); bitwise determinism; CUDA against CPU; the modules; argument errors."""
import numpy as np
import pytest

import gradcore
import gradcore.functional as F
from gradcore import nn
from reference import pool2d as ref
from tolerance import DEVICES, DTYPES, assert_close, assert_cuda_matches_cpu, forward_tol

# (input shape, kernel_size, stride, padding, dilation, ceil_mode)
MAX_CASES = [
    ((2, 3, 8, 8), 2, None, 0, 1, False),
    ((1, 2, 7, 9), 3, 2, 1, 1, False),
    ((1, 2, 7, 9), 3, 2, 1, 1, True),
    ((2, 1, 10, 11), (3, 2), (2, 3), (1, 0), (2, 1), False),
    ((2, 1, 10, 11), (3, 2), (2, 3), (1, 1), (2, 2), True),
    ((1, 3, 5, 5), 3, 1, 1, 1, False),           # overlapping windows
    ((1, 1, 6, 6), 4, 3, 2, 1, True),            # ceil_mode adds a window that starts inside the input
    ((1, 1, 5, 5), 2, 2, 1, 1, True),            # ... and one that would start in the right padding is dropped
]
AVG_CASES = [
    ((2, 3, 8, 8), 2, None, 0, False, True),
    ((1, 2, 7, 9), 3, 2, 1, False, True),
    ((1, 2, 7, 9), 3, 2, 1, False, False),
    ((1, 2, 7, 9), 3, 2, 1, True, True),
    ((1, 2, 7, 9), 3, 2, 1, True, False),
    ((2, 1, 6, 5), (3, 2), (2, 1), (1, 1), True, True),
    ((1, 1, 5, 5), 2, 2, 1, True, True),
]


def _id(case):
    return "-".join(str(v).replace(" ", "") for v in case)


def _x(shape, dtype, device, seed=0, requires_grad=False):
    x = np.random.default_rng(seed).standard_normal(shape)
    return gradcore.tensor(x, dtype=dtype, device=device, requires_grad=requires_grad)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", MAX_CASES, ids=_id)
def test_max_pool2d_matches_numpy(case, dtype, device):
    shape, k, s, p, d, ceil = case
    x = _x(shape, dtype, device)
    y = F.max_pool2d(x, k, s, p, d, ceil)
    expected, _ = ref.max_pool2d(x.numpy(), k, s, p, d, ceil)
    assert y.shape == expected.shape and y.dtype == dtype
    assert_close(y, expected, atol=0, rtol=0)  # a max is exact


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", AVG_CASES, ids=_id)
def test_avg_pool2d_matches_numpy(case, dtype, device):
    shape, k, s, p, ceil, count_pad = case
    x = _x(shape, dtype, device)
    y = F.avg_pool2d(x, k, s, p, ceil, count_pad)
    expected = ref.avg_pool2d(x.numpy(), k, s, p, ceil, count_pad)
    assert y.shape == expected.shape
    assert_close(y, expected, **forward_tol(dtype))


@pytest.mark.parametrize("device", DEVICES)
def test_avg_pool2d_divisor_override(device):
    x = _x((1, 2, 6, 6), "float64", device)
    assert_close(F.avg_pool2d(x, 3, 2, 1, divisor_override=4), ref.avg_pool2d(x.numpy(), 3, 2, 1, divisor_override=4))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size,out", [((8, 8), 1), ((7, 9), (3, 4)), ((5, 5), 5), ((4, 6), (6, 8)), ((10, 3), (4, None))])
def test_adaptive_avg_pool2d_matches_numpy(size, out, dtype, device):
    x = _x((2, 3) + size, dtype, device)
    y = F.adaptive_avg_pool2d(x, out)
    expected_out = (out[0], size[1] if out[1] is None else out[1]) if isinstance(out, tuple) else out
    assert_close(y, ref.adaptive_avg_pool2d(x.numpy(), expected_out), **forward_tol(dtype))


@pytest.mark.parametrize("size,k,s,p,d,expected", [
    (5, 2, 2, 0, 1, (2, 3)), (6, 2, 2, 0, 1, (3, 3)), (5, 2, 2, 1, 1, (3, 3)), (7, 3, 2, 1, 1, (4, 4)),
    (6, 3, 3, 1, 1, (2, 3)), (1, 1, 2, 0, 1, (1, 1)), (10, 3, 4, 1, 2, (2, 3)),
])
def test_output_size_rules_with_and_without_ceil_mode(size, k, s, p, d, expected):
    x = gradcore.zeros(1, 1, size, size)
    for ceil, want in zip((False, True), expected):
        assert F.max_pool2d(x, k, s, p, d, ceil).shape == (1, 1, want, want)
        assert ref.output_size(size, k, s, p, d, ceil) == want
        if d == 1:
            assert F.avg_pool2d(x, k, s, p, ceil).shape == (1, 1, want, want)


@pytest.mark.parametrize("device", DEVICES)
def test_max_pool2d_ties_go_to_the_first_cell_and_gradient_follows(device):
    x = gradcore.tensor(np.ones((1, 1, 4, 4)), dtype="float64", device=device, requires_grad=True)
    F.max_pool2d(x, 2).sum().backward()
    expected = np.zeros((4, 4))
    expected[0::2, 0::2] = 1.0  # the top-left cell of each window wins every tie
    assert np.array_equal(x.grad.numpy()[0, 0], expected)


@pytest.mark.parametrize("device", DEVICES)
def test_max_pool2d_overlapping_windows_sum_their_gradients(device):
    x_np = np.zeros((1, 1, 3, 3))
    x_np[0, 0, 1, 1] = 5.0  # the max of all four 2x2 windows (stride 1)
    x = gradcore.tensor(x_np, device=device, requires_grad=True)
    y = F.max_pool2d(x, 2, 1)
    assert np.array_equal(y.numpy(), np.full((1, 1, 2, 2), 5.0))
    y.backward(gradcore.tensor([[[[1.0, 2.0], [3.0, 4.0]]]], dtype="float64", device=device))
    assert x.grad.numpy()[0, 0, 1, 1] == 10.0 and x.grad.numpy().sum() == 10.0


@pytest.mark.parametrize("device", DEVICES)
def test_max_pool2d_nan_wins_and_padding_never_does(device):
    x = gradcore.tensor([[[[-5.0, -6.0], [np.nan, -7.0]]]], device=device)
    assert np.isnan(F.max_pool2d(x, 2).item())
    neg = gradcore.tensor(-np.ones((1, 1, 3, 3)) * 3, device=device)
    assert np.all(F.max_pool2d(neg, 3, 1, 1).numpy() == -3.0)  # padding (-inf) never beats a real cell


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", MAX_CASES[:6], ids=_id)
def test_max_pool2d_gradcheck(case, device):
    shape, k, s, p, d, ceil = case
    # Distinct values so that no window has a tie within the finite-difference step.
    values = np.random.default_rng(1).permutation(int(np.prod(shape))).reshape(shape) * 0.01
    x = gradcore.tensor(values, dtype="float64", device=device, requires_grad=True)
    assert gradcore.gradcheck(lambda a: F.max_pool2d(a, k, s, p, d, ceil), [x], eps=1e-4)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", AVG_CASES, ids=_id)
def test_avg_pool2d_gradcheck(case, device):
    shape, k, s, p, ceil, count_pad = case
    x = _x(shape, "float64", device, 2, requires_grad=True)
    assert gradcore.gradcheck(lambda a: F.avg_pool2d(a, k, s, p, ceil, count_pad), [x])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("size,out", [((7, 9), (3, 4)), ((4, 6), (6, 8)), ((5, 5), 1)])
def test_adaptive_avg_pool2d_gradcheck(size, out, device):
    x = _x((1, 2) + size, "float64", device, 3, requires_grad=True)
    assert gradcore.gradcheck(lambda a: F.adaptive_avg_pool2d(a, out), [x])


def test_unbatched_input_gives_an_unbatched_output():
    x = _x((3, 6, 6), "float32", "cpu")
    assert F.max_pool2d(x, 2).shape == (3, 3, 3)
    assert F.avg_pool2d(x, 3, 1, 1).shape == (3, 6, 6)
    assert F.adaptive_avg_pool2d(x, 2).shape == (3, 2, 2)
    assert np.array_equal(F.max_pool2d(x, 2).numpy(), F.max_pool2d(x.reshape(1, 3, 6, 6), 2).numpy()[0])


def test_bitwise_reproducible_across_thread_counts():
    x = _x((8, 16, 24, 24), "float32", "cpu", 4, requires_grad=True)
    before = gradcore.get_num_threads()
    outputs = []
    try:
        for threads in (1, 2, 3):
            gradcore.set_num_threads(threads)
            x.grad = None
            y = F.max_pool2d(x, 3, 2, 1) + F.avg_pool2d(x, 3, 2, 1)
            (y * y).sum().backward()
            outputs.append((y.numpy().copy(), x.grad.numpy().copy()))
    finally:
        gradcore.set_num_threads(before)
    for y, g in outputs[1:]:
        assert np.array_equal(y, outputs[0][0]) and np.array_equal(g, outputs[0][1])


def test_modules():
    x = _x((2, 3, 8, 8), "float32", "cpu")
    assert np.array_equal(nn.MaxPool2d(2)(x).numpy(), F.max_pool2d(x, 2).numpy())
    assert np.array_equal(nn.MaxPool2d(3, 2, 1, ceil_mode=True)(x).numpy(), F.max_pool2d(x, 3, 2, 1, 1, True).numpy())
    assert np.array_equal(nn.AvgPool2d(3, 1, 1, count_include_pad=False)(x).numpy(),
                          F.avg_pool2d(x, 3, 1, 1, count_include_pad=False).numpy())
    assert nn.AdaptiveAvgPool2d((1, 1))(x).shape == (2, 3, 1, 1)
    assert "kernel_size=2, stride=2" in repr(nn.MaxPool2d(2))


def test_argument_errors():
    x = gradcore.zeros(1, 1, 4, 4)
    with pytest.raises(ValueError, match=r"padding: expected at most half the kernel size \(2, 2\)"):
        F.max_pool2d(x, 2, padding=2)
    with pytest.raises(ValueError, match="padding"):
        F.avg_pool2d(x, 3, padding=2)
    with pytest.raises(ValueError, match="too small"):
        F.max_pool2d(x, 5)
    with pytest.raises(ValueError, match="too small"):
        F.max_pool2d(x, 3, dilation=2)
    with pytest.raises(ValueError, match="kernel_size"):
        F.max_pool2d(x, 0)
    with pytest.raises(ValueError, match="stride"):
        F.avg_pool2d(x, 2, stride=0)
    with pytest.raises(TypeError, match="kernel_size"):
        F.max_pool2d(x, 1.5)
    with pytest.raises(ValueError, match=r"input: max_pool2d expected a 3-d \(C, H, W\) or 4-d"):
        F.max_pool2d(gradcore.zeros(4, 4), 2)
    with pytest.raises(ValueError, match="non-zero sizes"):
        F.avg_pool2d(gradcore.zeros(1, 0, 4, 4), 2)
    with pytest.raises(ValueError, match="output_size"):
        F.adaptive_avg_pool2d(x, 0)
    with pytest.raises(TypeError, match="output_size"):
        F.adaptive_avg_pool2d(x, "big")
    with pytest.raises(ValueError, match="divisor_override"):
        F.avg_pool2d(x, 2, divisor_override=0)
    with pytest.raises(TypeError, match="input: expected a gradcore.Tensor"):
        F.max_pool2d(np.zeros((1, 1, 4, 4)), 2)
    with pytest.raises(ValueError, match="kernel_size"):
        nn.MaxPool2d(0)


def test_empty_batch_is_valid():
    x = gradcore.zeros(0, 3, 4, 4, requires_grad=True)
    y = F.max_pool2d(x, 2)
    assert y.shape == (0, 3, 2, 2)
    y.sum().backward()
    assert x.grad.shape == (0, 3, 4, 4)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", ["max", "max-ceil-dilated", "avg", "avg-ceil-nopad", "adaptive"])
def test_cuda_matches_cpu_forward_and_backward(op, dtype):
    fns = {
        "max": lambda a: F.max_pool2d(a, 3, 2, 1),
        "max-ceil-dilated": lambda a: F.max_pool2d(a, (3, 2), (2, 1), 1, (2, 1), True),
        "avg": lambda a: F.avg_pool2d(a, 3, 2, 1),
        "avg-ceil-nopad": lambda a: F.avg_pool2d(a, 3, 2, 1, True, False),
        "adaptive": lambda a: F.adaptive_avg_pool2d(a, (3, 5)),
    }
    rng = np.random.default_rng(6)
    x_np = rng.standard_normal((2, 3, 9, 11))
    x_np[0, 0, :2, :2] = 1.5  # a tie, which both devices must give to the first cell
    results = {}
    for device in ("cpu", "cuda"):
        x = gradcore.tensor(x_np, dtype=dtype, device=device, requires_grad=True)
        y = fns[op](x)
        g_np = np.random.default_rng(7).standard_normal(y.shape)
        y.backward(gradcore.tensor(g_np, dtype=dtype, device=device))
        results[device] = {"y": y.numpy(), "dx": x.grad.numpy()}
    assert_cuda_matches_cpu(results["cuda"], results["cpu"], dtype, name=op)
    if op.startswith("max"):  # values and routing are exact
        assert np.array_equal(results["cuda"]["y"], results["cpu"]["y"])
        assert np.array_equal(results["cuda"]["dx"], results["cpu"]["dx"])


@pytest.mark.parametrize("device", DEVICES)
def test_a_dilated_window_with_no_input_cell_gives_minus_infinity_and_no_gradient(device):
    # H = 1, kernel 2, dilation 2, padding 1: the window's two rows are -1 and 1, both outside the input.
    x = gradcore.tensor(np.arange(3.0).reshape(1, 1, 1, 3), device=device, requires_grad=True)
    y = F.max_pool2d(x, (2, 1), 1, (1, 0), (2, 1), ceil_mode=True)
    assert y.shape == (1, 1, 1, 3) and np.all(y.numpy() == -np.inf)
    y.backward(gradcore.ones(1, 1, 1, 3, dtype="float64", device=device))
    assert np.array_equal(x.grad.numpy(), np.zeros((1, 1, 1, 3)))


def test_matches_torch_on_random_configurations():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    for _ in range(60):
        H, W = (int(v) for v in rng.integers(1, 10, 2))
        k = tuple(int(v) for v in rng.integers(1, 4, 2))
        s, d = tuple(int(v) for v in rng.integers(1, 4, 2)), tuple(int(v) for v in rng.integers(1, 3, 2))
        p, ceil = tuple(int(rng.integers(0, k[i] // 2 + 1)) for i in range(2)), bool(rng.integers(2))
        x_np = np.round(rng.standard_normal((2, 2, H, W)) * 2) / 2  # many ties
        try:
            want = torch.nn.functional.max_pool2d(torch.tensor(x_np), k, s, p, d, ceil).numpy()
        except RuntimeError:
            with pytest.raises(ValueError):
                F.max_pool2d(gradcore.tensor(x_np), k, s, p, d, ceil)
            continue
        got = F.max_pool2d(gradcore.tensor(x_np), k, s, p, d, ceil).numpy()
        assert np.array_equal(got, want)
        want = torch.nn.functional.avg_pool2d(torch.tensor(x_np), k, s, p, ceil, bool(d[0] == 1)).numpy()
        assert_close(F.avg_pool2d(gradcore.tensor(x_np), k, s, p, ceil, bool(d[0] == 1)), want, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", MAX_CASES, ids=_id)
def test_return_indices_are_int64_flat_plane_indices_like_pytorch(case, device):
    shape, k, s, p, d, ceil = case
    x = _x(shape, "float64", device, 5)
    y, indices = F.max_pool2d(x, k, s, p, d, ceil, return_indices=True)
    expected_y, expected_indices = ref.max_pool2d(x.numpy(), k, s, p, d, ceil)
    assert indices.dtype == "int64" and indices.shape == y.shape and not indices.requires_grad
    assert np.array_equal(indices.numpy(), expected_indices)
    assert np.array_equal(y.numpy(), expected_y)


def test_return_indices_with_gradients_and_unbatched_input():
    x = _x((2, 6, 6), "float64", "cpu", 6, requires_grad=True)
    y, indices = F.max_pool2d(x, 2, return_indices=True)
    assert y.shape == (2, 3, 3) and indices.shape == (2, 3, 3)
    y.sum().backward()
    grad = x.grad.numpy().reshape(2, -1)
    for c in range(2):
        assert np.array_equal(np.flatnonzero(grad[c]), np.sort(indices.numpy()[c].ravel()))
    y2, i2 = nn.MaxPool2d(2, return_indices=True)(x)
    assert np.array_equal(i2.numpy(), indices.numpy())
    ties = gradcore.ones(1, 1, 4, 4)
    assert F.max_pool2d(ties, 2, return_indices=True)[1].numpy().ravel().tolist() == [0, 2, 8, 10]


@pytest.mark.cuda
def test_return_indices_match_on_cuda_and_cpu():
    x_np = np.round(np.random.default_rng(8).standard_normal((2, 3, 9, 11)))  # many ties
    got = [F.max_pool2d(gradcore.tensor(x_np, device=dev), 3, 2, 1, 1, True, return_indices=True)[1].numpy()
           for dev in ("cpu", "cuda")]
    assert np.array_equal(got[0], got[1])


# The CPU's vectorised path (csrc/cpu/pool2d.cpp) takes the whole windows of 2x2 stride-2 and 3x3 stride-1/2 max
# pooling; the windows clipped by padding or ceil_mode stay on the generic loop. Both must pick the same cell.
FAST_MAX_CASES = [
    ((2, 3, 9, 13), 2, 2, 0, True),    # the last column and row: ceil_mode windows clipped to one cell
    ((2, 3, 9, 12), 3, 2, 1, False),   # padded edges on every side
    ((2, 3, 8, 11), 3, 1, 1, False),   # overlapping windows
    ((1, 2, 6, 40), 2, 2, 0, False),   # rows longer than one vector
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", FAST_MAX_CASES, ids=_id)
def test_max_pool2d_whole_window_path_keeps_ties_nan_and_minus_infinity_rules(case, dtype):
    shape, k, s, p, ceil = case
    rng = np.random.default_rng(11)
    x_np = np.round(rng.standard_normal(shape) * 2) / 2        # many ties
    x_np[rng.random(shape) < 0.05] = np.nan                    # a NaN wins its window; a later NaN a former one
    x_np[rng.random(shape) < 0.05] = -np.inf                   # loses to anything, yet a window of them keeps a cell
    x_np[0, 0, :3, :3] = -np.inf
    y, indices = F.max_pool2d(gradcore.tensor(x_np, dtype=dtype), k, s, p, 1, ceil, return_indices=True)
    expected_y, expected_indices = ref.max_pool2d(x_np.astype(dtype), k, s, p, 1, ceil)
    assert np.array_equal(indices.numpy(), expected_indices)
    assert np.array_equal(y.numpy(), expected_y, equal_nan=True)
