"""Comparisons and selection (issue #18 point 7): ==, !=, <, <=, >, >= and the logical ops on every dtype with
broadcasting and Python numbers (bool results, PyTorch's promotion), where, clamp, maximum and minimum against numpy,
their float64 gradients by gradcheck and by PyTorch's rules at ties and bounds, CUDA against the CPU, bad input."""
import numpy as np
import pytest

import gradcore
import gradcore.functional as F
from reference import comparison as ref
from tolerance import DEVICES, DTYPES, assert_close, assert_cuda_matches_cpu

ALL_DTYPES = ["float32", "float64", "int64", "bool"]
COMPARISONS = ["eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor"]
OPERATORS = {"eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "lt": lambda a, b: a < b,
             "le": lambda a, b: a <= b, "gt": lambda a, b: a > b, "ge": lambda a, b: a >= b}
BROADCASTS = {"same": ((3, 4), (3, 4)), "row": ((3, 4), (4,)), "column": ((3, 4), (3, 1)),
              "scalar_tensor": ((3, 4), ()), "both_sides": ((2, 1, 4), (3, 1)), "b_is_larger": ((4,), (2, 3, 4))}


def _values(shape, dtype, seed):
    """Small integers (so that ties and equal elements occur), with a NaN among the floats."""
    rng = np.random.default_rng(seed)
    v = rng.integers(-2, 3, size=shape)
    if dtype == "bool":
        return v > 0
    v = v.astype(dtype)
    if dtype in DTYPES and v.size > 2:
        v.reshape(-1)[1] = np.nan
    return v


def _smooth(shape, seed, dtype="float64", device="cpu", requires_grad=False):
    values = np.random.default_rng(seed).standard_normal(shape)
    return gradcore.tensor(values, dtype=dtype, device=device, requires_grad=requires_grad)


# ---- comparisons ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", list(BROADCASTS))
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("op", COMPARISONS)
def test_comparisons_match_numpy(op, dtype, case, device):
    a_shape, b_shape = BROADCASTS[case]
    a_np, b_np = _values(a_shape, dtype, 0), _values(b_shape, dtype, 1)
    a, b = gradcore.tensor(a_np, device=device), gradcore.tensor(b_np, device=device)
    out = getattr(F, op)(a, b)
    expected = ref.compare(op, a_np, b_np)
    assert out.dtype == "bool" and out.shape == expected.shape and out.device == a.device
    np.testing.assert_array_equal(out.numpy(), expected)
    if op in OPERATORS:
        np.testing.assert_array_equal(OPERATORS[op](a, b).numpy(), expected)
        np.testing.assert_array_equal(getattr(a, op)(b).numpy(), expected)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_comparisons_with_python_numbers_on_either_side(dtype, device):
    x_np = _values((2, 5), dtype, 2)
    x = gradcore.tensor(x_np, device=device)
    for number in ([0, 1, -1, 0.5, True] if dtype != "bool" else [True, False, 0, 1, 0.5]):
        for name, op in OPERATORS.items():
            np.testing.assert_array_equal(op(x, number).numpy(), op(x_np, number), err_msg=f"x {name} {number!r}")
            np.testing.assert_array_equal(op(number, x).numpy(), op(number, x_np), err_msg=f"{number!r} {name} x")


def test_promotion_between_dtypes():
    i = gradcore.tensor([1, 2, 3])
    f = gradcore.tensor([1.5, 2.0, 2.5])
    np.testing.assert_array_equal((i < f).numpy(), [True, False, False])  # compared in float32, not truncated
    np.testing.assert_array_equal((i > 2.5).numpy(), [False, False, True])
    np.testing.assert_array_equal((gradcore.tensor([True, False]) == gradcore.tensor([1, 2])).numpy(), [True, False])
    big = gradcore.tensor([2**62, 2**62 + 1])  # int64 against an int stays exact
    np.testing.assert_array_equal((big == 2**62 + 1).numpy(), [False, True])
    f64 = gradcore.tensor(np.array([0.1]))
    assert (gradcore.tensor([0.1]) == f64).item() is False  # float32 0.1 compared in float64
    assert (gradcore.tensor([0.1]) == 0.1).item() is True  # the number takes the tensor's float32


def test_nan_compares_unequal():
    x = gradcore.tensor([np.nan, 1.0])
    np.testing.assert_array_equal((x == x).numpy(), [False, True])
    np.testing.assert_array_equal((x != x).numpy(), [True, False])
    np.testing.assert_array_equal((x < 2).numpy(), [False, True])


def test_counting_matches_is_an_int64_sum():
    prediction = gradcore.tensor([0, 2, 1, 1, 3])
    labels = gradcore.tensor([0, 1, 1, 1, 2])
    correct = (prediction == labels).sum()
    assert correct.dtype == "int64" and correct.item() == 3
    assert (prediction == labels).float().mean().item() == pytest.approx(0.6)


def test_comparison_results_do_not_require_grad():
    x = _smooth((3,), 0, requires_grad=True)
    mask = x > 0
    assert mask.dtype == "bool" and not mask.requires_grad and mask.is_leaf


def test_bool_operators_and_truth_value():
    a = gradcore.tensor([True, True, False, False])
    b = gradcore.tensor([True, False, True, False])
    np.testing.assert_array_equal((a & b).numpy(), [True, False, False, False])
    np.testing.assert_array_equal((a | b).numpy(), [True, True, True, False])
    np.testing.assert_array_equal((a ^ b).numpy(), [False, True, True, False])
    np.testing.assert_array_equal((~a).numpy(), [False, False, True, True])
    np.testing.assert_array_equal((a & True).numpy(), a.numpy())
    np.testing.assert_array_equal(F.logical_not(gradcore.tensor([0.0, 2.0, np.nan])).numpy(), [True, False, False])
    assert bool(gradcore.tensor([3]) == 3) is True and bool(gradcore.tensor(0.0)) is False
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(a)
    with pytest.raises(TypeError, match="other: & is defined for bool tensors"):
        a & gradcore.tensor([1, 2, 3, 4])


def test_tensors_stay_hashable_and_compare_to_other_objects_by_identity():
    x = gradcore.tensor([1.0, 2.0])
    assert {x: 1}[x] == 1 and x in {x}
    assert (x == None) is False and (x != "a") is True  # noqa: E711 (Python's fallback, as PyTorch)
    with pytest.raises(TypeError):
        x < "a"  # noqa: B015


# ---- where ----------------------------------------------------------------------------------------------------
WHERE_SHAPES = {"same": ((3, 4), (3, 4), (3, 4)), "broadcast_values": ((3, 4), (4,), (3, 1)),
                "broadcast_condition": ((4,), (3, 4), (3, 4)), "all_differ": ((2, 1, 1), (1, 3, 1), (4,))}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("case", list(WHERE_SHAPES))
def test_where_matches_numpy(case, dtype, device):
    c_shape, a_shape, b_shape = WHERE_SHAPES[case]
    c_np = np.random.default_rng(3).random(c_shape) < 0.5
    a_np, b_np = _values(a_shape, dtype, 4), _values(b_shape, dtype, 5)
    out = gradcore.where(gradcore.tensor(c_np, device=device), gradcore.tensor(a_np, device=device),
                         gradcore.tensor(b_np, device=device))
    expected = ref.where(c_np, a_np, b_np)
    assert out.dtype == dtype and out.shape == expected.shape
    np.testing.assert_array_equal(out.numpy(), expected)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", list(WHERE_SHAPES))
def test_where_gradients(case, device):
    c_shape, a_shape, b_shape = WHERE_SHAPES[case]
    c_np = np.random.default_rng(6).random(c_shape) < 0.5
    condition = gradcore.tensor(c_np, device=device)
    a = _smooth(a_shape, 7, device=device, requires_grad=True)
    b = _smooth(b_shape, 8, device=device, requires_grad=True)
    assert gradcore.gradcheck(lambda x, y: gradcore.where(condition, x, y), [a, b])
    out = gradcore.where(condition, a, b)
    g = np.random.default_rng(9).standard_normal(out.shape)
    out.backward(gradcore.tensor(g, dtype="float64", device=device))
    ga, gb = ref.where_grads(c_np, g, a_shape, b_shape)
    assert_close(a.grad, ga, atol=0, rtol=0, name="input.grad")
    assert_close(b.grad, gb, atol=0, rtol=0, name="other.grad")


def test_where_with_numbers_and_as_a_method():
    x = gradcore.tensor([-1.0, 2.0, -3.0], requires_grad=True)
    y = gradcore.where(x > 0, x, 0.0)
    np.testing.assert_array_equal(y.numpy(), [0.0, 2.0, 0.0])
    assert y.dtype == "float32"
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(x.where(x < 0, 5.0).numpy(), [-1.0, 5.0, -3.0])
    i = gradcore.where(gradcore.tensor([True, False]), 1, gradcore.tensor([7, 8]))
    assert i.dtype == "int64" and i.tolist() == [1, 8]


# ---- clamp -------------------------------------------------------------------------------------------------------
CLAMP_BOUNDS = {"both": (-0.5, 0.7), "min_only": (-0.5, None), "max_only": (None, 0.7), "min_above_max": (1.0, -1.0),
                "integer_bounds": (-1, 1)}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bounds", list(CLAMP_BOUNDS))
def test_clamp_matches_numpy(bounds, dtype, device):
    low, high = CLAMP_BOUNDS[bounds]
    x_np = np.concatenate([np.random.default_rng(10).standard_normal(20), [np.nan, np.inf, -np.inf, -0.5, 0.7]])
    x = gradcore.tensor(x_np, dtype=dtype, device=device)
    out = x.clamp(low, high)
    assert out.dtype == dtype
    rounded = [None if v is None else float(np.asarray(v, dtype=dtype)) for v in (low, high)]  # bounds in dtype
    expected = ref.clamp(x.numpy().astype(np.float64), *rounded).astype(dtype)
    np.testing.assert_array_equal(out.numpy(), expected)  # selection only: exact, NaN stays NaN
    np.testing.assert_array_equal(F.clip(x, min=low, max=high).numpy(), expected)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("bounds", list(CLAMP_BOUNDS))
def test_clamp_gradient_passes_inside_and_at_the_bounds(bounds, device):
    low, high = CLAMP_BOUNDS[bounds]
    x_np = np.array([-2.0, -0.5, -0.1, 0.0, 0.3, 0.7, 1.0, 2.0])  # the bounds themselves included
    x = gradcore.tensor(x_np, dtype="float64", device=device, requires_grad=True)
    g = np.arange(1.0, 9.0)
    x.clamp(min=low, max=high).backward(gradcore.tensor(g, dtype="float64", device=device))
    assert_close(x.grad, ref.clamp_grad(x_np, g, low, high), atol=0, rtol=0, name="clamp'")
    away = gradcore.tensor([-1.3, -0.2, 0.4, 1.5], dtype="float64", device=device, requires_grad=True)
    assert gradcore.gradcheck(lambda t: t.clamp(min=low, max=high), [away])


@pytest.mark.parametrize("device", DEVICES)
def test_clamp_with_tensor_bounds(device):
    x = _smooth((3, 4), 11, device=device, requires_grad=True)
    low = _smooth((4,), 12, device=device, requires_grad=True)
    high = gradcore.tensor(np.full((3, 1), 0.8), dtype="float64", device=device, requires_grad=True)
    out = gradcore.clamp(x, low, high)
    x_np, low_np, high_np = x.numpy(), low.numpy(), high.numpy()
    assert_close(out, np.minimum(np.maximum(x_np, low_np), high_np), atol=0, rtol=0, name="clamp")
    assert gradcore.gradcheck(lambda a, b, c: gradcore.clamp(a, b, c), [x, low, high])
    g = np.random.default_rng(13).standard_normal((3, 4))
    out.backward(gradcore.tensor(g, dtype="float64", device=device))
    inside = (x_np >= low_np) & (x_np <= high_np)
    assert_close(x.grad, np.where(inside, g, 0.0), atol=0, rtol=0, name="x.grad")
    below = (x_np < low_np) & (low_np < high_np)
    assert_close(low.grad, np.where(below, g, 0.0).sum(axis=0), atol=1e-15, rtol=0, name="min.grad")
    above = (x_np > high_np) | (high_np < low_np)
    assert_close(high.grad, np.where(above, g, 0.0).sum(axis=1, keepdims=True), atol=1e-15, rtol=0, name="max.grad")
    mixed = gradcore.clamp(x, min=low, max=0.5)  # a number with a tensor
    assert_close(mixed, np.minimum(np.maximum(x_np, low_np), 0.5), atol=0, rtol=0, name="clamp(tensor, number)")


# ---- maximum and minimum ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", list(BROADCASTS))
@pytest.mark.parametrize("op", ["maximum", "minimum"])
def test_maximum_minimum_match_numpy(op, case, dtype, device):
    a_shape, b_shape = BROADCASTS[case]
    a_np, b_np = _values(a_shape, dtype, 14), _values(b_shape, dtype, 15)  # ties and a NaN included
    out = getattr(gradcore, op)(gradcore.tensor(a_np, device=device), gradcore.tensor(b_np, device=device))
    expected = getattr(ref, op)(a_np, b_np)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out.numpy(), expected)  # NaN where either is NaN, as numpy and PyTorch


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", list(BROADCASTS))
@pytest.mark.parametrize("op", ["maximum", "minimum"])
def test_maximum_minimum_gradients_split_ties_evenly(op, case, device):
    a_shape, b_shape = BROADCASTS[case]
    rng = np.random.default_rng(16)
    a_np = rng.integers(-2, 3, size=a_shape).astype(np.float64)  # many ties
    b_np = rng.integers(-2, 3, size=b_shape).astype(np.float64)
    a = gradcore.tensor(a_np, device=device, requires_grad=True)
    b = gradcore.tensor(b_np, device=device, requires_grad=True)
    out = getattr(gradcore, op)(a, b)
    g = rng.standard_normal(out.shape)
    out.backward(gradcore.tensor(g, device=device))
    ga, gb = ref.extremum_grads(op, a_np, b_np, g)
    assert_close(a.grad, ga, atol=1e-15, rtol=0, name="input.grad")
    assert_close(b.grad, gb, atol=1e-15, rtol=0, name="other.grad")
    # away from ties, finite differences agree
    a2 = _smooth(a_shape, 17, device=device, requires_grad=True)
    b2 = _smooth(b_shape, 18, device=device, requires_grad=True)
    assert gradcore.gradcheck(getattr(gradcore, op), [a2, b2])


def test_maximum_as_a_method():
    a, b = gradcore.tensor([1.0, 5.0]), gradcore.tensor([3.0, 2.0])
    assert a.maximum(b).tolist() == [3.0, 5.0] and a.minimum(b).tolist() == [1.0, 2.0]


# ---- CUDA against the CPU -----------------------------------------------------------------------------------------
@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
def test_cuda_matches_cpu(dtype):
    results = {}
    for device in ("cpu", "cuda"):
        x = _smooth((5, 7), 19, dtype=dtype, device=device, requires_grad=True)
        y = _smooth((7,), 20, dtype=dtype, device=device, requires_grad=True)
        c = x > y
        outputs = [c, F.logical_xor(x > 0, y < 0), gradcore.where(c, x, y), x.clamp(-0.3, 0.4),
                   gradcore.clamp(x, y, 0.9), gradcore.maximum(x, y), gradcore.minimum(x, y)]
        total = outputs[2].sum() + outputs[3].sum() + outputs[4].sum() + outputs[5].sum() + outputs[6].sum()
        total.backward()
        results[device] = [o.float() if o.dtype == "bool" else o for o in outputs] + [x.grad, y.grad]
    assert_cuda_matches_cpu(results["cuda"], results["cpu"], dtype)


# ---- bad input -------------------------------------------------------------------------------------------------
def test_bad_input_names_the_argument():
    x = gradcore.tensor([1.0, 2.0])
    with pytest.raises(TypeError, match="condition: expected a bool tensor, got float32"):
        gradcore.where(x, x, x)
    with pytest.raises(TypeError, match="input: expected a gradcore.Tensor or a Python number"):
        gradcore.where(x > 0, [1.0, 2.0], x)
    with pytest.raises(TypeError, match="input, other: expected at least one gradcore.Tensor"):
        gradcore.where(x > 0, 1.0, 2.0)
    with pytest.raises(ValueError, match="other: shape .* does not broadcast"):
        gradcore.where(x > 0, x, gradcore.zeros(3))
    with pytest.raises(ValueError, match="min, max: at least one"):
        x.clamp()
    with pytest.raises(TypeError, match="min: expected a number"):
        x.clamp(min="a")
    with pytest.raises(TypeError, match="input: expected a float32 or float64 tensor, got int64"):
        gradcore.tensor([1, 2]).clamp(0, 1)
    with pytest.raises(TypeError, match="other: expected dtype float32"):
        gradcore.maximum(x, gradcore.tensor([1.0, 2.0], dtype="float64"))
    with pytest.raises(TypeError, match="other: expected a gradcore.Tensor or a Python number"):
        F.eq(x, "a")
    with pytest.raises(ValueError, match=r"b: shape .* does not broadcast"):
        x == gradcore.zeros(3)
