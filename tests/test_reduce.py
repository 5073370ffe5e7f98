"""sum, mean and reshape: forward against numpy over every axis pattern, gradients by gradcheck, bitwise
determinism, and the accuracy that accumulating float32 sums in double buys."""

import numpy as np
import pytest

import gradcore
from isolated import outputs_for_thread_counts
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
    results = set(outputs_for_thread_counts(_THREAD_SCRIPT))
    assert len(results) == 1


def sum_in_documented_order(x):
    """sum over (N, H, W) of x (N, C, H, W) in the CPU's order (reduce.h): per channel, the reduced range r = n*H*W + q
    in chunks of 16384; within a chunk, each image's stretch in eight lanes (element j of the stretch into lane j % 8
    for the whole groups of eight, the rest into lane 0, each lane added in order), the lanes combined as
    ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)) and added to the chunk's sum; the chunks' sums added in order. All in float64,
    one addition at a time (np.cumsum)."""
    n, c, h, w = x.shape
    hw, r_total, chunk = h * w, n * h * w, 16384
    out = np.zeros(c)
    for k in range(c):
        flat = x[:, k].reshape(-1).astype(np.float64)
        total = 0.0
        for begin in range(0, r_total, chunk):
            acc = 0.0
            r = begin
            end = min(r_total, begin + chunk)
            while r < end:
                take = min(hw - r % hw, end - r)
                stretch = flat[r:r + take]
                groups = take // 8
                lanes = np.cumsum(stretch[:8 * groups].reshape(groups, 8), axis=0)[-1] if groups else np.zeros(8)
                for v in stretch[8 * groups:]:
                    lanes[0] = lanes[0] + v
                acc += ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))
                r += take
            total += acc
        out[k] = total
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 9, 7, 7), (2, 6, 5, 3), (23, 5, 27, 29), (4, 1, 2, 2)],
                         ids=lambda s: "x".join(map(str, s)))
def test_bias_gradient_sum_has_the_documented_order(shape, dtype):
    """A bias gradient's sum (over N, H, W) has the bits of its documented order: several channels summed side by side
    and one at a time (C not a multiple of four), stretches not a multiple of eight long, and stretches cut by the
    16384-element chunks (23 x 27 x 29) inside a group of eight; values over forty orders of magnitude, so that any
    other order shows."""
    rng = np.random.default_rng(7)
    x = (rng.standard_normal(shape) * np.exp(rng.uniform(-20, 20, shape))).astype(dtype)
    got = gradcore.tensor(x).sum(dim=(0, 2, 3)).numpy()
    assert np.array_equal(got, sum_in_documented_order(x).astype(dtype))


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


# ==== PyTorch's keywords: dim and keepdim (axis and keepdims stay as aliases) =====================================
def test_dim_and_keepdim_are_the_names_axis_and_keepdims_their_aliases():
    x = _tensor((3, 4, 5), "float64", "cpu")
    for name in ("sum", "mean"):
        expected = getattr(ref, name)(x.numpy(), axis=(0, 2), keepdims=True)
        assert_close(getattr(x, name)(dim=(0, 2), keepdim=True), expected, atol=1e-12, rtol=0)
        assert_close(getattr(x, name)((0, 2), True), expected, atol=1e-12, rtol=0)
        assert_close(getattr(x, name)(axis=(0, 2), keepdims=True), expected, atol=1e-12, rtol=0)
        with pytest.raises(TypeError, match="dim: given twice"):
            getattr(x, name)(dim=0, axis=0)
        with pytest.raises(TypeError, match="keepdim: given twice"):
            getattr(x, name)(0, keepdim=True, keepdims=True)
        with pytest.raises(ValueError, match="dim: 3 is out of range"):
            getattr(x, name)(dim=3)


def test_a_zero_dimensional_tensor_has_dimension_zero():
    x = gradcore.tensor(2.5, dtype="float64")
    for fn in (lambda t: t.sum(0), lambda t: t.mean(-1), lambda t: t.amax(0), lambda t: t.amin(-1)):
        y = fn(x)
        assert y.shape == () and y.item() == 2.5
    with pytest.raises(ValueError, match="dim: 1 is out of range for a tensor of 0 dimensions"):
        x.sum(1)


# ==== amax, amin, max(), min() ======================================================================================
EXTREME_DIMS = {"all": None, "first": 0, "last": -1, "middle": 1, "pair": (0, 2), "negative_pair": (-1, -3)}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("keepdim", [False, True], ids=["dropdim", "keepdim"])
@pytest.mark.parametrize("dims", list(EXTREME_DIMS))
@pytest.mark.parametrize("largest", [True, False], ids=["amax", "amin"])
def test_amax_amin_match_numpy(largest, dims, keepdim, dtype, device):
    x = _tensor((3, 4, 5), dtype, device, seed=6)
    dim = EXTREME_DIMS[dims]
    fn = gradcore.functional.amax if largest else gradcore.functional.amin
    out = fn(x, dim, keepdim) if dim is not None else fn(x, keepdim=keepdim)
    expected, _ = ref.extreme(x.numpy(), dim, keepdim, largest)
    assert out.shape == expected.shape and out.dtype == dtype and out.device == x.device
    assert_close(out, expected, atol=0, rtol=0, name=f"{dims}")  # a pick, not arithmetic: exact


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dims", ["all", "middle", "pair"])
@pytest.mark.parametrize("largest", [True, False], ids=["amax", "amin"])
def test_amax_amin_gradcheck(largest, dims, device):
    x = _tensor((2, 3, 4), "float64", device, seed=7, requires_grad=True)  # distinct values: no ties
    fn = gradcore.functional.amax if largest else gradcore.functional.amin
    assert gradcore.gradcheck(lambda t: fn(t, EXTREME_DIMS[dims] or ()), [x])


@pytest.mark.parametrize("device", DEVICES)
def test_amax_gradient_is_split_evenly_among_ties(device):
    values = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, -1.0], [5.0, 4.0, 4.0, 4.0]])
    x = gradcore.tensor(values, dtype="float64", device=device, requires_grad=True)
    g = np.array([1.0, 3.0, 2.0])
    x.amax(1).backward(gradcore.tensor(g, dtype="float64", device=device))
    expected = ref.extreme_grad(values, g, 1, largest=True, split_ties=True)
    assert_close(x.grad, expected, atol=0, rtol=0)
    assert_close(x.grad, [[0, 0.5, 0.5, 0], [1, 1, 1, 0], [2, 0, 0, 0]], atol=0, rtol=0)
    x.grad = None
    x.amin(1).sum().backward()
    assert_close(x.grad, [[0, 0, 0, 1], [0, 0, 0, 1], [0, 1 / 3, 1 / 3, 1 / 3]], atol=1e-15, rtol=0)


@pytest.mark.parametrize("device", DEVICES)
def test_max_without_dim_is_the_value_with_its_gradient_split_among_ties(device):
    x = gradcore.tensor([[1.0, 7.0], [7.0, -2.0]], dtype="float64", device=device, requires_grad=True)
    m = x.max()
    assert m.shape == () and m.item() == 7.0 and isinstance(m, gradcore.Tensor)
    m.backward()
    assert_close(x.grad, [[0, 0.5], [0.5, 0]], atol=0, rtol=0)
    assert gradcore.functional.min(x).item() == -2.0


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_propagates_through_amax_and_amin(dtype, device):
    nan, inf = float("nan"), float("inf")
    values = np.array([[1.0, nan, 3.0, nan], [-inf, 2.0, inf, 0.0], [nan, nan, nan, nan]])
    x = gradcore.tensor(values, dtype=dtype, device=device, requires_grad=True)
    for fn, largest in ((gradcore.functional.amax, True), (gradcore.functional.amin, False)):
        out = fn(x, 1)
        expected, _ = ref.extreme(values, 1, largest=largest)
        np.testing.assert_array_equal(out.numpy(), expected.astype(dtype))
        assert np.isnan(fn(x).item())
    x.amax(1).sum().backward()  # the NaNs of a NaN row share its gradient (NaN ties with NaN)
    assert_close(x.grad, ref.extreme_grad(values, np.ones(3), 1), atol=0, rtol=0)


def test_extreme_of_nothing_raises_but_empty_kept_dimensions_are_fine():
    x = gradcore.zeros(0, 3)
    for call in (lambda: x.amax(), lambda: x.amax(0), lambda: x.amin(dim=(0, 1)), lambda: x.max()):
        with pytest.raises(ValueError, match="hold no elements"):
            call()
    assert x.amax(1).shape == (0,) and x.amin(1, keepdim=True).shape == (0, 1)


# ==== var and std ===================================================================================================
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("correction", [0, 1, 2.5])
@pytest.mark.parametrize("dims", ["all", "middle", "negative_pair"])
@pytest.mark.parametrize("keepdim", [False, True], ids=["dropdim", "keepdim"])
def test_var_std_match_numpy(keepdim, dims, correction, dtype, device):
    x = _tensor((3, 4, 5), dtype, device, seed=8)
    dim = EXTREME_DIMS[dims]
    for name in ("var", "std"):
        out = getattr(x, name)(dim, keepdim=keepdim, correction=correction)
        expected = getattr(ref, name)(x.numpy(), dim, correction, keepdim)
        assert out.shape == expected.shape and out.dtype == dtype
        assert_close(out, expected, **forward_tol(dtype), name=f"{name} {dims}")


def test_var_spellings_unbiased_and_axis():
    x = _tensor((4, 6), "float64", "cpu", seed=9)
    biased = ref.var(x.numpy(), 1, correction=0)
    for out in (x.var(1, unbiased=False), x.var(1, False), x.var(axis=1, correction=0), x.var(dim=1, correction=0)):
        assert_close(out, biased, atol=1e-12, rtol=0)
    assert_close(x.var(True), ref.var(x.numpy()), atol=1e-12, rtol=0)  # torch.var(x, True): positional unbiased
    assert_close(x.std(), ref.std(x.numpy()), atol=1e-12, rtol=0)
    with pytest.raises(TypeError, match="unbiased: given together with correction"):
        x.var(1, unbiased=True, correction=1)
    with pytest.raises(TypeError, match="correction: expected a number"):
        x.var(correction="1")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["var", "std"])
def test_var_std_gradcheck(name, device):
    x = _tensor((3, 5), "float64", device, seed=10, requires_grad=True)
    assert gradcore.gradcheck(lambda t: getattr(t, name)(1, keepdim=True), [x])
    assert gradcore.gradcheck(lambda t: getattr(t, name)(correction=0), [x])


def test_var_of_too_few_elements_is_nan_or_inf_as_pytorch():
    assert np.isnan(gradcore.tensor([3.0]).var().item())  # 0 / 0
    assert np.isinf(gradcore.tensor([1.0, 2.0]).var(correction=3).item())  # 0.5 / max(0, -1)
    assert gradcore.tensor([1.0, 2.0]).var(correction=2).item() == np.inf
    with pytest.raises(ValueError, match="var: the reduced dimensions .* hold no elements"):
        gradcore.zeros(0, 2).var(0)


# ==== gradcore.linalg.vector_norm ===================================================================================
ORDS = [2, 1, float("inf"), float("-inf"), 0, 3, 0.5, -1.5]
NORM_DIMS = {"all": None, "last": -1, "pair": (0, 2)}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("keepdim", [False, True], ids=["dropdim", "keepdim"])
@pytest.mark.parametrize("dims", list(NORM_DIMS))
@pytest.mark.parametrize("ord", ORDS, ids=str)
def test_vector_norm_matches_numpy(ord, dims, keepdim, dtype, device):
    values = np.random.default_rng(11).standard_normal((3, 4, 5))
    values[0, 0, :2] = 0.0  # zeros count for ord 0 and make |x|^p with p < 0 infinite
    x = gradcore.tensor(values, dtype=dtype, device=device)
    out = gradcore.linalg.vector_norm(x, ord, NORM_DIMS[dims], keepdim)
    expected = ref.vector_norm(x.numpy(), ord, NORM_DIMS[dims], keepdim)
    assert out.shape == expected.shape and out.dtype == dtype and out.device == x.device
    assert_close(out, expected, **forward_tol(dtype), name=f"ord {ord}")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("ord", [2, 1, float("inf"), float("-inf"), 3, 0.5, 1.5, -1.5], ids=str)
def test_vector_norm_gradcheck(ord, device):
    x = _tensor((3, 4), "float64", device, seed=12, requires_grad=True)  # no zeros, no ties
    assert gradcore.gradcheck(lambda t: gradcore.linalg.vector_norm(t, ord, dim=1), [x])
    assert gradcore.gradcheck(lambda t: gradcore.linalg.vector_norm(t, ord), [x])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("ord", [2, 1, float("inf"), 3, 0.5, 1.5, 0], ids=str)
def test_vector_norm_gradient_at_zero_is_zero(ord, device):
    """PyTorch's choice: the norm's gradient at x = 0 (and for p < 1 at each zero element) is 0, not NaN."""
    x = gradcore.zeros(2, 3, dtype="float64", device=device, requires_grad=True)
    gradcore.linalg.vector_norm(x, ord, dim=1).sum().backward()
    assert_close(x.grad, np.zeros((2, 3)), atol=0, rtol=0)
    values = np.array([[0.0, 2.0, -1.0], [0.0, 0.0, 0.0]])
    y = gradcore.tensor(values, dtype="float64", device=device, requires_grad=True)
    g = np.array([1.5, -2.0])
    gradcore.linalg.vector_norm(y, ord, dim=1).backward(gradcore.tensor(g, dtype="float64", device=device))
    assert_close(y.grad, ref.vector_norm_grad(values, g, ord, dim=1), atol=1e-12, rtol=1e-12)


def test_vector_norm_arguments():
    x = gradcore.tensor([[3.0, -4.0], [0.0, 0.0]])
    assert gradcore.linalg.vector_norm(x, dim=1).tolist() == [5.0, 0.0]
    y = gradcore.linalg.vector_norm(x, dtype="float64")
    assert y.dtype == "float64" and y.item() == 5.0
    assert gradcore.linalg.vector_norm(x, ord=float("inf")).item() == 4.0
    assert gradcore.linalg.vector_norm(gradcore.zeros(0, 3), dim=0).tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(TypeError, match="ord: expected a number"):
        gradcore.linalg.vector_norm(x, ord="fro")
    with pytest.raises(ValueError, match="ord: expected a number, got nan"):
        gradcore.linalg.vector_norm(x, ord=float("nan"))
    with pytest.raises(TypeError, match="dtype"):
        gradcore.linalg.vector_norm(x, dtype="int8")
    for ord in (float("inf"), float("-inf"), -1):
        with pytest.raises(ValueError, match="norm of an empty range is undefined"):
            gradcore.linalg.vector_norm(gradcore.zeros(0, 3), ord, dim=0)


# ==== determinism: bitwise, run after run and for any thread count; CUDA against CPU ================================
# Shapes that reach every path: a short reduction, one chunk, several chunks (> kReduceChunk = 16384 reduced elements).
EXTREME_LARGE = {"rows": ((8, 40000), 1), "columns": ((40000, 8), 0), "all": ((70000,), None),
                 "short": ((300, 50), 1), "one_chunk": ((20, 500), 1)}


def _with_ties(shape, dtype, device, seed, requires_grad=False):
    """Rounded normal values: many exact ties, so the first-index rule and the tie split are exercised."""
    values = np.round(np.random.default_rng(seed).standard_normal(shape) * 4) / 4
    return gradcore.tensor(values, dtype=dtype, device=device, requires_grad=requires_grad)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", list(EXTREME_LARGE))
def test_large_reductions_are_bitwise_deterministic_and_right(case, device):
    shape, dim = EXTREME_LARGE[case]
    x = _with_ties(shape, "float32", device, seed=13, requires_grad=True)

    def run():
        x.grad = None
        out = {"amax": x.amax(dim if dim is not None else ()), "norm": gradcore.linalg.vector_norm(x, 2, dim),
               "var": x.var(dim)}
        (out["amax"].sum() + out["norm"].sum()).backward()
        return {k: v.numpy().tobytes() for k, v in out.items()}, x.grad.numpy().tobytes()

    first = run()
    assert run() == first
    assert_close(x.amax(dim if dim is not None else ()), ref.extreme(x.numpy(), dim)[0], atol=0, rtol=0)
    assert_close(gradcore.linalg.vector_norm(x, 2, dim), ref.vector_norm(x.numpy(), 2, dim), atol=1e-5, rtol=1e-5)


_EXTREME_THREAD_SCRIPT = """
import sys, numpy as np, gradcore
values = np.round(np.random.default_rng(3).standard_normal((40, 20000)) * 4) / 4
x = gradcore.tensor(values, dtype="float32", requires_grad=True)
parts = [x.amax(1), x.amin(), gradcore.linalg.vector_norm(x, 3, 1), gradcore.linalg.vector_norm(x), x.var(0)]
(parts[0].sum() + parts[2].sum()).backward()
sys.stdout.write("".join(p.numpy().tobytes().hex()[:2000] for p in parts) + x.grad.numpy().tobytes().hex()[:8000])
"""


def test_new_reductions_do_not_depend_on_thread_count():
    results = set(outputs_for_thread_counts(_EXTREME_THREAD_SCRIPT))
    assert len(results) == 1


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", list(EXTREME_LARGE))
def test_cuda_amax_amin_match_cpu(case, dtype):
    shape, dim = EXTREME_LARGE[case]

    def build(device, largest):
        x = _with_ties(shape, dtype, device, seed=14, requires_grad=True)
        fn = gradcore.functional.amax if largest else gradcore.functional.amin
        return fn(x, dim if dim is not None else ()), {"x": x}

    from tolerance import cuda_and_cpu_with_grads
    for largest in (True, False):
        results = cuda_and_cpu_with_grads(lambda device: build(device, largest), dtype)
        assert_cuda_matches_cpu(results["cuda"], results["cpu"], dtype, name=f"{case} largest={largest}")
        np.testing.assert_array_equal(results["cuda"]["y"], results["cpu"]["y"])  # a pick: the same element


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ord", [2, 1, float("inf"), 0, 3, 0.5], ids=str)
@pytest.mark.parametrize("case", ["rows", "columns", "all", "short", "one_chunk"])
def test_cuda_vector_norm_and_var_match_cpu(case, ord, dtype):
    shape, dim = EXTREME_LARGE[case]

    def build(device):
        x = _with_ties(shape, dtype, device, seed=15, requires_grad=True)
        y = gradcore.linalg.vector_norm(x, ord, dim) + (x.var(dim) if ord == 2 else 0.0)
        return y, {"x": x}

    from tolerance import cuda_and_cpu_with_grads
    results = cuda_and_cpu_with_grads(build, dtype)
    assert_cuda_matches_cpu(results["cuda"], results["cpu"], dtype, name=f"{case} ord={ord}")


@pytest.mark.cuda
def test_cuda_nan_tie_and_zero_rules_match_cpu():
    """The same picks and the same gradient rules on both devices: NaN rows, ties, a row of zeros."""
    nan = float("nan")
    values = np.array([[1.0, nan, 3.0, nan], [0.0, 0.0, 0.0, 0.0], [2.0, 2.0, -2.0, 1.0]])
    out = {}
    for device in ("cpu", "cuda"):
        x = gradcore.tensor(values, dtype="float64", device=device, requires_grad=True)
        (x.amax(1).sum() + x.amin(1).sum()).backward()
        extreme_grad = x.grad.numpy().copy()
        x.grad = None
        gradcore.linalg.vector_norm(x, 2, 1).sum().backward()
        out[device] = (x.amax(1).numpy(), x.amin(1).numpy(), extreme_grad, x.grad.numpy())
    for a, b in zip(out["cuda"], out["cpu"]):
        np.testing.assert_array_equal(a, b)
    assert np.all(out["cpu"][3][1] == 0.0)  # the zero row's norm gradient: 0, not NaN


# ==== max(dim), min(dim), argmax, argmin: int64 indices, the first of ties =========================================
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("keepdim", [False, True], ids=["dropdim", "keepdim"])
@pytest.mark.parametrize("dim", [0, 1, 2, -1, -3])
@pytest.mark.parametrize("largest", [True, False], ids=["max", "min"])
def test_max_min_dim_return_values_and_first_indices(largest, dim, keepdim, dtype, device):
    x = _with_ties((3, 4, 5), dtype, device, seed=16)
    result = x.max(dim, keepdim) if largest else x.min(dim, keepdim=keepdim)
    values, indices = result  # a named tuple, unpacked as in PyTorch
    assert type(result).__name__ == ("max" if largest else "min")
    assert result.values is values and result.indices is indices
    expected_values, expected_indices = ref.extreme(x.numpy(), dim, keepdim, largest)
    assert values.dtype == dtype and indices.dtype == "int64" and indices.device == x.device
    assert not indices.requires_grad
    assert_close(values, expected_values, atol=0, rtol=0)
    np.testing.assert_array_equal(indices.numpy(), expected_indices)
    arg = (x.argmax if largest else x.argmin)(dim, keepdim)
    assert arg.dtype == "int64"
    np.testing.assert_array_equal(arg.numpy(), expected_indices)


@pytest.mark.parametrize("device", DEVICES)
def test_argmax_without_dim_indexes_the_flattened_tensor(device):
    values = np.array([[1.0, 9.0, 9.0], [9.0, -1.0, -1.0]])
    x = gradcore.tensor(values, device=device)
    a = x.argmax()
    assert a.shape == () and a.dtype == "int64" and a.item() == 1  # the first of the three 9s
    assert x.argmin().item() == 4
    assert x.argmax(keepdim=True).shape == (1, 1) and x.argmax(keepdim=True).numpy().item() == 1
    assert x.argmin(dim=1).tolist() == [0, 1]


@pytest.mark.parametrize("device", DEVICES)
def test_nan_wins_max_min_argmax_with_the_first_nans_index(device):
    nan = float("nan")
    values = np.array([[1.0, nan, 3.0, nan], [4.0, 2.0, 4.0, 0.0]])
    x = gradcore.tensor(values, dtype="float64", device=device)
    for largest in (True, False):
        v, i = x.max(1) if largest else x.min(1)
        assert np.isnan(v.numpy()[0]) and i.tolist()[0] == 1
        assert i.tolist()[1] == (0 if largest else 3)
        assert (x.argmax(1) if largest else x.argmin(1)).tolist() == i.tolist()
    assert x.argmax().item() == 1 and x.argmin().item() == 1


@pytest.mark.parametrize("device", DEVICES)
def test_max_dim_gradient_goes_to_the_index(device):
    values = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, -1.0]])
    x = gradcore.tensor(values, dtype="float64", device=device, requires_grad=True)
    g = np.array([2.0, -1.5])
    x.max(1).values.backward(gradcore.tensor(g, dtype="float64", device=device))
    assert_close(x.grad, ref.extreme_grad(values, g, 1, split_ties=False), atol=0, rtol=0)
    assert_close(x.grad, [[0, 2.0, 0, 0], [-1.5, 0, 0, 0]], atol=0, rtol=0)  # not split, unlike amax
    x.grad = None
    x.min(0, keepdim=True).values.sum().backward()
    assert_close(x.grad, ref.extreme_grad(values, np.ones(4), 0, largest=False, split_ties=False), atol=0, rtol=0)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_max_min_dim_gradcheck(dim, device):
    x = _tensor((3, 4, 2), "float64", device, seed=17, requires_grad=True)
    assert gradcore.gradcheck(lambda t: t.max(dim).values, [x])
    assert gradcore.gradcheck(lambda t: t.min(dim, keepdim=True).values, [x])


def test_max_dim_arguments():
    x = gradcore.zeros(2, 3)
    with pytest.raises(TypeError, match="dim: expected an int .* amax/amin reduce several"):
        x.max((0, 1))
    with pytest.raises(ValueError, match="dim: 2 is out of range"):
        x.argmax(2)
    with pytest.raises(ValueError, match="argmax: the reduced dimensions .* hold no elements"):
        gradcore.zeros(0, 3).argmax()
    with pytest.raises(ValueError, match="max: the reduced dimensions"):
        gradcore.zeros(0, 3).max(0)
    assert gradcore.zeros(0, 3).max(1).indices.shape == (0,)
    with pytest.raises(TypeError, match="x: expected"):
        gradcore.tensor([1, 2]).argmax()  # int64: the kernels take floats
    v, i = gradcore.tensor(4.0).max(0)  # a 0-d tensor: itself, at index 0
    assert v.item() == 4.0 and i.item() == 0


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", list(EXTREME_LARGE))
def test_large_max_dim_indices_are_deterministic_and_right(case, device):
    shape, dim = EXTREME_LARGE[case]
    x = _with_ties(shape, "float32", device, seed=18)
    if dim is None:
        first = x.argmax().item()
        assert first == ref.extreme(x.numpy())[1].item() and x.argmax().item() == first
        return
    values, indices = x.max(dim)
    np.testing.assert_array_equal(indices.numpy(), ref.extreme(x.numpy(), dim)[1])
    np.testing.assert_array_equal(x.max(dim).indices.numpy(), indices.numpy())
    np.testing.assert_array_equal(x.argmin(dim).numpy(), ref.extreme(x.numpy(), dim, largest=False)[1])


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", list(EXTREME_LARGE))
def test_cuda_max_dim_and_argmax_match_cpu(case, dtype):
    shape, dim = EXTREME_LARGE[case]
    dim = 0 if dim is None else dim

    def build(device):
        x = _with_ties(shape, dtype, device, seed=19, requires_grad=True)
        values, indices = x.max(dim)
        build.indices[device] = (indices.numpy(), x.argmin(dim).numpy(), x.argmax().numpy())
        return values, {"x": x}

    build.indices = {}
    from tolerance import cuda_and_cpu_with_grads
    results = cuda_and_cpu_with_grads(build, dtype)
    assert_cuda_matches_cpu(results["cuda"], results["cpu"], dtype, name=case)
    np.testing.assert_array_equal(results["cuda"]["x.grad"], results["cpu"]["x.grad"])  # g moved, not summed
    for a, b in zip(build.indices["cuda"], build.indices["cpu"]):
        np.testing.assert_array_equal(a, b)


def test_max_min_of_a_tensor_argument_is_the_elementwise_maximum_minimum():
    a, b = gradcore.tensor([1.0, 5.0, -2.0]), gradcore.tensor([3.0, 4.0, -2.0])
    assert a.max(b).tolist() == [3.0, 5.0, -2.0] and a.min(b).tolist() == [1.0, 4.0, -2.0]
