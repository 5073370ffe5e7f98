"""int64 and bool tensors (issue #18 point 5): PyTorch's dtype inference in gradcore.tensor, conversions between all
four dtypes on both devices (against a numpy reference of PyTorch's rules), numpy/DLPack/checkpoint round trips,
non-float tensors never requiring grad, the float kernels refusing them by name, int64 sums, and promotion of
int64/bool operands in float arithmetic."""
import numpy as np
import pytest

import gradcore
from gradcore import _core
from reference import dtypes as ref
from tolerance import DEVICES, assert_close

ALL_DTYPES = ["float32", "float64", "int64", "bool"]


# ---- gradcore.tensor infers dtypes as PyTorch ---------------------------------------------------------------------
INFERENCE = {
    "python_ints": ([1, 2], "int64"),
    "python_int_scalar": (3, "int64"),
    "python_bools": ([True, False], "bool"),
    "python_bool_scalar": (True, "bool"),
    "bools_and_ints": ([True, 2], "int64"),
    "python_floats": ([1.0, 2.0], "float32"),
    "ints_and_one_float": ([1, 2.5], "float32"),
    "nested_ints": ([[1, 2], [3, 4]], "int64"),
    "numpy_int64": (np.array([1, 2], dtype=np.int64), "int64"),
    "numpy_int32": (np.array([1, 2], dtype=np.int32), "int64"),
    "numpy_uint8": (np.array([1, 255], dtype=np.uint8), "int64"),
    "numpy_int64_scalar": (np.int64(7), "int64"),
    "numpy_bool": (np.array([True, False]), "bool"),
    "numpy_float64": (np.array([1.5]), "float64"),
    "numpy_float64_scalar": (np.float64(1.5), "float64"),
    "numpy_float32": (np.array([1.5], dtype=np.float32), "float32"),
    "numpy_float16": (np.array([1.5], dtype=np.float16), "float32"),
}


@pytest.mark.parametrize("case", list(INFERENCE))
def test_tensor_infers_the_dtype_pytorch_does(case):
    data, dtype = INFERENCE[case]
    t = gradcore.tensor(data)
    assert t.dtype == dtype
    np.testing.assert_array_equal(t.numpy(), np.asarray(data).astype(dtype))


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_tensor_of_a_tensor_keeps_its_dtype(dtype):
    t = gradcore.tensor([0, 1, 3], dtype=dtype)
    assert gradcore.tensor(t).dtype == dtype


def test_dtype_spellings():
    assert gradcore.int64 == gradcore.long == "int64" and gradcore.bool == "bool"
    for spelling, name in [(gradcore.int64, "int64"), (np.int64, "int64"), (int, "int64"), (bool, "bool"),
                           (np.bool_, "bool"), (float, "float64"), (np.dtype("int64"), "int64")]:
        assert gradcore.zeros(2, dtype=spelling).dtype == name


def test_a_uint64_too_large_for_int64_is_refused():
    with pytest.raises(ValueError, match="data: .* does not fit int64"):
        gradcore.tensor(np.array([2**63], dtype=np.uint64))


# ---- gradients: only float tensors carry them ----------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["int64", "bool"])
def test_non_float_tensors_cannot_require_grad(dtype):
    words = "only Tensors of floating point dtype can require gradients"
    with pytest.raises(TypeError, match=words):
        gradcore.tensor([1, 0], dtype=dtype, requires_grad=True)
    with pytest.raises(TypeError, match=words):
        gradcore.zeros(2, dtype=dtype, requires_grad=True)
    with pytest.raises(TypeError, match=words):
        gradcore.full((2,), 1, dtype=dtype, requires_grad=True)
    t = gradcore.tensor([1, 0], dtype=dtype)
    with pytest.raises(TypeError, match=words):
        t.requires_grad = True
    with pytest.raises(TypeError, match=words):
        t.requires_grad_()
    with pytest.raises(TypeError, match=words):
        gradcore.nn.Parameter(t)
    assert not t.requires_grad and not t.is_floating_point()


def test_conversion_to_int64_leaves_the_graph():
    x = gradcore.tensor([1.5, -2.5], requires_grad=True)
    labels = x.long()
    assert labels.dtype == "int64" and not labels.requires_grad and labels.is_leaf
    np.testing.assert_array_equal(labels.numpy(), [1, -2])
    y = (x * 2.0).to(dtype="float64")  # float -> float stays differentiable
    y.sum().backward()
    assert_close(x.grad, [2.0, 2.0], atol=0, rtol=0)


# ---- item, conversion methods, factories -----------------------------------------------------------------------
def test_item_returns_a_python_int_or_bool():
    assert type(gradcore.tensor([7]).item()) is int and gradcore.tensor([7]).item() == 7
    assert gradcore.tensor(True).item() is True
    assert type(gradcore.tensor([2.5]).item()) is float
    assert gradcore.tensor(2**62).item() == 2**62  # exact: no detour through float


def test_conversion_methods():
    x = gradcore.tensor([-1.7, 0.0, 2.9])
    assert x.long().dtype == "int64" and x.bool().dtype == "bool" and x.long().float().dtype == "float32"
    assert x.double().dtype == "float64"
    np.testing.assert_array_equal(x.long().numpy(), [-1, 0, 2])  # truncation toward zero
    np.testing.assert_array_equal(x.bool().numpy(), [True, False, True])
    assert x.to("int64").dtype == x.to(gradcore.int64).dtype == x.to(dtype=int).dtype == "int64"
    b = gradcore.tensor([True, False])
    np.testing.assert_array_equal(b.float().numpy(), [1.0, 0.0])
    np.testing.assert_array_equal(b.long().numpy(), [1, 0])


@pytest.mark.parametrize("device", DEVICES)
def test_factories_take_int64_and_bool(device):
    z = gradcore.zeros(2, 3, dtype="int64", device=device)
    assert z.dtype == "int64" and z.device != "" and not z.numpy().any()
    o = gradcore.ones(4, dtype="bool", device=device)
    assert o.dtype == "bool" and o.numpy().all()
    f = gradcore.full((2,), -5, dtype="int64", device=device)
    np.testing.assert_array_equal(f.numpy(), [-5, -5])
    assert gradcore.full((2,), 2**62 + 1, device=device).numpy()[0] == 2**62 + 1  # exact beyond 2**53
    # dtype=None infers from the value, as torch.full
    assert gradcore.full((1,), 3).dtype == "int64"
    assert gradcore.full((1,), True).dtype == "bool"
    assert gradcore.full((1,), 3.0).dtype == "float32"
    assert gradcore.zeros_like(f).dtype == "int64" and gradcore.ones_like(o).dtype == "bool"


# ---- conversions between every pair of dtypes, both devices ------------------------------------------------------
SOURCE_VALUES = [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 1.7, -1.7, 2.9, -2.9, 255.0, 1e9, -3e12, 2.0**40 + 0.5]
SPECIAL_VALUES = [np.nan, np.inf, -np.inf, 2.0**63, -2.0**63, 1e30, -1e30]


def _source(dtype, values=SOURCE_VALUES):
    if dtype == "bool":
        return np.array([True, False, True, True, False])
    if dtype == "int64":
        return np.array([0, 1, -1, 7, -7, 2**40, -(2**53) - 1, 2**62, -(2**63), 2**63 - 1], dtype=np.int64)
    return np.array(values, dtype=dtype)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("target", ALL_DTYPES)
@pytest.mark.parametrize("source", ALL_DTYPES)
def test_conversion_matches_pytorchs_rule(source, target, device):
    values = _source(source)
    t = gradcore.tensor(values, device=device)
    assert t.dtype == source
    out = t.to(dtype=target)
    assert out.dtype == target and out.device == t.device
    np.testing.assert_array_equal(out.numpy(), ref.cast(values, target))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("source", ["float32", "float64"])
def test_nan_inf_and_out_of_range_floats_to_int64(source, device):
    """The value the x86 instruction (and so PyTorch on the CPU) gives, on both devices: INT64_MIN."""
    values = _source(source, SPECIAL_VALUES)
    out = gradcore.tensor(values, device=device).long()
    np.testing.assert_array_equal(out.numpy(), ref.cast(values, "int64"))
    assert out.numpy()[0] == np.iinfo(np.int64).min
    np.testing.assert_array_equal(gradcore.tensor(values, device=device).bool().numpy(), [True] * len(values))


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_copies_between_devices_keep_the_bits(dtype):
    values = _source(dtype)
    c = gradcore.tensor(values).cuda()
    assert c.dtype == dtype
    np.testing.assert_array_equal(c.clone().cpu().numpy(), values)
    d = gradcore.zeros(*values.shape, dtype=dtype, device="cuda")
    d.copy_(gradcore.tensor(values))
    np.testing.assert_array_equal(d.numpy(), values)
    d.fill_(1)
    np.testing.assert_array_equal(d.numpy(), np.ones_like(values))


# ---- numpy, DLPack, checkpoints ----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["int64", "bool"])
def test_numpy_round_trip_shares_memory(dtype):
    a = np.array([1, 0, 1], dtype=dtype)
    t = gradcore.from_numpy(a)
    assert t.dtype == dtype
    a[1] = 1
    assert t.numpy()[1] == 1 and t.numpy().dtype == np.dtype(dtype)


@pytest.mark.parametrize("dtype", ["int64", "bool"])
def test_dlpack_both_ways(dtype):
    a = np.array([[1, 0], [0, 1]], dtype=dtype)
    t = gradcore.from_dlpack(a)
    assert t.dtype == dtype
    np.testing.assert_array_equal(t.numpy(), a)
    back = np.from_dlpack(t)
    assert back.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(back, a)


def test_dlpack_refuses_other_integer_types():
    with pytest.raises(TypeError, match="x: expected a float32, float64, int64 or bool tensor"):
        gradcore.from_dlpack(np.array([1, 2], dtype=np.int32))


def test_from_numpy_refuses_other_integer_types():
    with pytest.raises(TypeError, match="array: expected dtype float32, float64, int64 or bool"):
        gradcore.from_numpy(np.array([1, 2], dtype=np.int32))


def test_checkpoint_keeps_int64_and_bool(tmp_path):
    path = str(tmp_path / "state.gc")
    labels = gradcore.tensor([3, 1, 2**40])
    mask = gradcore.tensor([True, False])
    gradcore.save(path, {"labels": labels, "mask": mask})
    loaded = gradcore.load(path)
    assert loaded.state["labels"].dtype == np.int64 and loaded.state["mask"].dtype == np.bool_
    np.testing.assert_array_equal(loaded.state["labels"], labels.numpy())
    np.testing.assert_array_equal(loaded.state["mask"], mask.numpy())


def test_module_dtype_conversion_leaves_int64_buffers():
    m = gradcore.nn.Module()
    m.register_buffer("steps", gradcore.tensor([5]))
    m.register_buffer("scale", gradcore.tensor([0.5]))
    m.double()
    assert m.steps.dtype == "int64" and m.scale.dtype == "float64"


# ---- the float kernels refuse int64 and bool, naming the argument ---------------------------------------------------
@pytest.mark.parametrize("dtype", ["int64", "bool"])
def test_float_ops_refuse_non_float_tensors(dtype):
    x = gradcore.tensor([1, 0, 1], dtype=dtype)
    message = f"x: expected a float32 or float64 tensor, got {dtype}"
    for op in (gradcore.functional.exp, gradcore.functional.relu, gradcore.functional.sigmoid,
               gradcore.functional.mean):
        with pytest.raises(TypeError, match=message):
            op(x)
    image = gradcore.zeros(1, 1, 3, 3, dtype=dtype)
    with pytest.raises(TypeError, match=f"x: expected a float32 or float64 tensor, got {dtype}"):
        gradcore.functional.conv2d(image, gradcore.zeros(1, 1, 1, 1))
    with pytest.raises(TypeError, match=f"weight: expected a float32 or float64 tensor, got {dtype}"):
        gradcore.functional.conv2d(gradcore.zeros(1, 1, 3, 3), gradcore.zeros(1, 1, 1, 1, dtype=dtype))


def test_the_kernels_refuse_non_float_arrays_that_skip_the_python_checks():
    """The last line of defence: a binding reached directly never reinterprets int64 bits as floats."""
    a = _core.zeros([2, 2], "int64", "cpu")
    with pytest.raises(TypeError, match="x: expected a float32 or float64 tensor, got int64"):
        _core.unary(a, _core.UnaryOp.exp)
    with pytest.raises(TypeError, match="expected a float32 or float64 tensor, got int64"):
        _core.conv2d_forward(_core.zeros([1, 1, 3, 3], "int64", "cpu"), _core.zeros([1, 1, 1, 1], "int64", "cpu"),
                             None)


# ---- sums of int64 and bool ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("axis", [None, 0, 1, (0, 1)], ids=["all", "rows", "columns", "both"])
@pytest.mark.parametrize("dtype", ["int64", "bool"])
def test_sum_of_int64_and_bool_is_an_exact_int64(dtype, axis, device):
    rng = np.random.default_rng(1)
    values = rng.integers(-2**40, 2**40, size=(37, 300)) if dtype == "int64" else rng.random((37, 300)) < 0.3
    out = gradcore.tensor(values, device=device).sum(axis=axis)
    assert out.dtype == "int64"
    np.testing.assert_array_equal(out.numpy(), ref.integer_sum(values, axis=axis))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", [(3, 40000), (0, 5), (5, 0)], ids=["chunked", "no_rows", "empty_reduction"])
def test_sum_of_int64_over_several_chunks_and_empty(shape, device):
    values = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape) * (2**30)
    out = gradcore.tensor(values, device=device).sum(axis=1)
    np.testing.assert_array_equal(out.numpy(), ref.integer_sum(values, axis=1))
    np.testing.assert_array_equal(gradcore.tensor(values, device=device).sum().numpy(), ref.integer_sum(values))


def test_int64_sum_wraps_on_overflow_as_pytorch():
    values = np.array([2**63 - 1, 1], dtype=np.int64)
    assert gradcore.tensor(values).sum().item() == -(2**63)


@pytest.mark.parametrize("device", DEVICES)
def test_counting_and_averaging_a_mask(device):
    mask = gradcore.tensor([True, False, True, True], device=device)
    assert mask.sum().item() == 3 and mask.sum().dtype == "int64"
    assert mask.float().mean().item() == 0.75
    with pytest.raises(TypeError, match="x: expected a float32 or float64 tensor, got bool"):
        mask.mean()  # as torch: mean of a bool or int64 tensor is refused; convert first


# ---- int64 and bool in float arithmetic: promotion to the float dtype -------------------------------------------
@pytest.mark.parametrize("float_dtype", ["float32", "float64"])
@pytest.mark.parametrize("other", ["int64", "bool"])
def test_int_with_float_tensor_promotes_to_the_float_dtype(other, float_dtype):
    f = gradcore.tensor([0.5, 1.5], dtype=float_dtype, requires_grad=True)
    i = gradcore.tensor([1, 0], dtype=other)
    for result, expected in [(f + i, [1.5, 1.5]), (i - f, [0.5, -1.5]), (f * i, [0.5, 0.0]), (i / f, [2.0, 0.0])]:
        assert result.dtype == float_dtype
        assert_close(result, expected, atol=0, rtol=1e-7)
    (f * i).sum().backward()
    assert_close(f.grad, [1.0, 0.0], atol=0, rtol=0)


def test_int_with_python_numbers():
    i = gradcore.tensor([3, -4])
    assert (i * 0.5).dtype == "float32" and (i + 1.5).dtype == "float32"
    assert_close(i / 2, [1.5, -2.0], atol=0, rtol=0)  # true division, as PyTorch
    assert (i / 2).dtype == "float32" and (1 / i).dtype == "float32"
    assert (i / gradcore.tensor([2, 2])).dtype == "float32"


# ---- int64 arithmetic that stays int64 ---------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
def test_int64_add_sub_mul_stay_exact_int64(device):
    rng = np.random.default_rng(3)
    a_np = rng.integers(-2**40, 2**40, size=(3, 4))
    b_np = rng.integers(-2**20, 2**20, size=(4,))
    a, b = gradcore.tensor(a_np, device=device), gradcore.tensor(b_np, device=device)
    for name, ours, expected in [("a + b", a + b, a_np + b_np), ("a - b", a - b, a_np - b_np),
                                 ("a * b", a * b, a_np * b_np), ("a + 7", a + 7, a_np + 7), ("7 - a", 7 - a, 7 - a_np),
                                 ("a * -3", a * -3, a_np * -3), ("-a", -a, -a_np), ("3 * a", 3 * a, 3 * a_np),
                                 ("a - 2**62", a - 2**62, a_np - 2**62)]:
        assert ours.dtype == "int64", name
        np.testing.assert_array_equal(ours.numpy(), expected, err_msg=name)
    mask = gradcore.tensor(a_np > 0, device=device)
    assert (a + mask).dtype == "int64" and (mask * 2).dtype == "int64"  # bool with int64 or an int: int64
    np.testing.assert_array_equal((mask * 2).numpy(), (a_np > 0) * 2)


def test_int64_arithmetic_wraps_on_overflow_as_pytorch():
    big = gradcore.tensor([2**63 - 1, -(2**63)])
    assert (big + 1).tolist() == [-(2**63), -(2**63) + 1]
    assert (big * 2).tolist() == [-2, 0]


def test_bool_with_bool_arithmetic_raises():
    with pytest.raises(TypeError, match="a: arithmetic that keeps an integer result is not supported for bool"):
        gradcore.tensor([True]) + gradcore.tensor([False])


@pytest.mark.cuda
def test_int64_arithmetic_cuda_matches_cpu():
    a_np = np.arange(-20, 20).reshape(8, 5) * (2**40 + 3)
    results = {}
    for device in ("cpu", "cuda"):
        a = gradcore.tensor(a_np, device=device)
        row = gradcore.tensor(a_np[0], device=device)
        results[device] = [(a * row).numpy(), (a - 5).numpy(), (a + a).numpy(), (-a).numpy()]
    for got, expected in zip(results["cuda"], results["cpu"]):
        np.testing.assert_array_equal(got, expected)
