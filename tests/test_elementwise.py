"""Elementwise arithmetic with broadcasting and the activations: forward against numpy (float32 and float64),
float64 gradients by gradcheck, broadcast gradients summed back to each operand, and bad operands."""
import numpy as np
import pytest

import gradcore
import gradcore.functional as F
from reference import elementwise as ref
from tolerance import DEVICES, DTYPES, assert_close, assert_cuda_matches_cpu, forward_tol

BINARY = {"add": (F.add, ref.add), "sub": (F.sub, ref.sub), "mul": (F.mul, ref.mul), "div": (F.div, ref.div)}

# (a's shape, b's shape): every broadcast a training loop uses.
BROADCASTS = {
    "same": ((3, 4), (3, 4)),
    "scalar_tensor": ((3, 4), ()),
    "tensor_is_scalar": ((), (3, 4)),
    "row": ((3, 4), (4,)),
    "column": ((3, 4), (3, 1)),
    "leading_dims": ((2, 3, 4), (3, 4)),
    "size1_both_sides": ((2, 1, 4), (1, 3, 1)),
    "b_is_larger": ((4,), (2, 3, 4)),
}


def _values(shape, seed, positive=False, away_from_zero=False):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    if positive:
        return np.abs(x) + 0.2
    if away_from_zero:  # keeps kinks (relu at 0) and poles (1/b) out of a finite-difference step's reach
        return np.sign(x) * (np.abs(x) + 0.2) if np.ndim(x) else float(np.sign(x) * (abs(x) + 0.2))
    return x


def _make(values, dtype, device, requires_grad=False):
    return gradcore.tensor(np.asarray(values), dtype=dtype, device=device, requires_grad=requires_grad)


# ---- binary ops -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", list(BROADCASTS))
@pytest.mark.parametrize("op", list(BINARY))
def test_binary_forward_matches_numpy(op, case, dtype, device):
    a_shape, b_shape = BROADCASTS[case]
    a_np = _values(a_shape, 0)
    b_np = _values(b_shape, 1, away_from_zero=(op == "div"))
    a, b = _make(a_np, dtype, device), _make(b_np, dtype, device)
    ours, reference = BINARY[op]
    out = ours(a, b)
    # The reference sees the same (rounded) inputs, computed in float64.
    expected = reference(a.numpy().astype(np.float64), b.numpy().astype(np.float64))
    assert out.shape == expected.shape and out.dtype == dtype and out.device == a.device
    assert_close(out, expected, **forward_tol(dtype), name=f"{op} {case}")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", list(BROADCASTS))
@pytest.mark.parametrize("op", list(BINARY))
def test_binary_gradcheck(op, case, device):
    a_shape, b_shape = BROADCASTS[case]
    a = _make(_values(a_shape, 2), "float64", device, requires_grad=True)
    b = _make(_values(b_shape, 3, away_from_zero=(op == "div")), "float64", device, requires_grad=True)
    assert gradcore.gradcheck(BINARY[op][0], [a, b])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", ["scalar_tensor", "row", "column", "leading_dims", "size1_both_sides", "b_is_larger"])
def test_broadcast_gradients_are_summed_to_each_operand(case, device):
    a_shape, b_shape = BROADCASTS[case]
    a_np, b_np = _values(a_shape, 4), _values(b_shape, 5)
    a = _make(a_np, "float64", device, requires_grad=True)
    b = _make(b_np, "float64", device, requires_grad=True)
    out_shape = np.broadcast_shapes(a_shape, b_shape)
    v = _values(out_shape, 6)
    (a * b * _make(v, "float64", device)).sum().backward()
    # d/da sum(v a b) = v b, summed over a's broadcast dimensions; likewise for b.
    assert a.grad.shape == a_shape and b.grad.shape == b_shape
    assert_close(a.grad, ref.unbroadcast(v * b_np, a_shape), atol=1e-12, rtol=1e-12, name="a.grad")
    assert_close(b.grad, ref.unbroadcast(v * a_np, b_shape), atol=1e-12, rtol=1e-12, name="b.grad")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_python_numbers_on_either_side(dtype, device):
    x_np = _values((2, 3), 7, away_from_zero=True)
    x = _make(x_np, dtype, device)
    x64 = x.numpy().astype(np.float64)
    cases = {
        "x + 2": (x + 2, x64 + 2), "2 + x": (2 + x, 2 + x64), "x - 2": (x - 2, x64 - 2), "2 - x": (2 - x, 2 - x64),
        "x * 3": (x * 3, x64 * 3), "3 * x": (3 * x, 3 * x64), "x / 4": (x / 4, x64 / 4), "4 / x": (4 / x, 4 / x64),
        "-x": (-x, -x64), "x ** 2": (x ** 2, x64 ** 2),
    }
    for name, (ours, expected) in cases.items():
        assert ours.dtype == dtype, name
        assert_close(ours, expected, **forward_tol(dtype), name=name)


@pytest.mark.parametrize("device", DEVICES)
def test_python_numbers_gradcheck(device):
    x = _make(_values((2, 3), 8, away_from_zero=True), "float64", device, requires_grad=True)
    for fn in (lambda t: t + 2, lambda t: 2 - t, lambda t: 3 * t, lambda t: t / 4, lambda t: 4 / t,
               lambda t: 0 / t, lambda t: -t):
        assert gradcore.gradcheck(fn, [x])


# ---- unary ops ------------------------------------------------------------------------------------------------
UNARY = {
    "neg": (F.neg, ref.neg, {}),
    "exp": (F.exp, ref.exp, {}),
    "log": (F.log, ref.log, {"positive": True}),
    "pow2": (lambda x: F.pow(x, 2), lambda x: ref.pow(x, 2), {}),
    "pow3": (lambda x: F.pow(x, 3.0), lambda x: ref.pow(x, 3.0), {}),
    "pow_half": (lambda x: F.pow(x, 0.5), lambda x: ref.pow(x, 0.5), {"positive": True}),
    "pow_minus1": (lambda x: F.pow(x, -1), lambda x: ref.pow(x, -1.0), {"away_from_zero": True}),
    "relu": (F.relu, ref.relu, {"away_from_zero": True}),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.2), lambda x: ref.leaky_relu(x, 0.2), {"away_from_zero": True}),
    "leaky_relu_default": (F.leaky_relu, ref.leaky_relu, {"away_from_zero": True}),
    "sigmoid": (F.sigmoid, ref.sigmoid, {}),
    "tanh": (F.tanh, ref.tanh, {}),
    "sqrt": (F.sqrt, np.sqrt, {"positive": True}),
    "abs": (F.abs, np.abs, {"away_from_zero": True}),
    # issue #18 point 7
    "cos": (F.cos, ref.cos, {}),
    "sin": (F.sin, ref.sin, {}),
    "log1p": (F.log1p, ref.log1p, {"positive": True}),
    "expm1": (F.expm1, ref.expm1, {}),
    "softplus": (F.softplus, ref.softplus, {}),
    "softplus_beta_threshold": (lambda x: F.softplus(x, beta=2.0, threshold=1.5),
                                lambda x: ref.softplus(x, 2.0, 1.5), {"away_from_zero": True}),
    "gelu": (F.gelu, ref.gelu, {}),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), ref.gelu_tanh, {}),
    "silu": (F.silu, ref.silu, {}),
    "elu": (F.elu, ref.elu, {"away_from_zero": True}),
    "elu_alpha": (lambda x: F.elu(x, alpha=0.3), lambda x: ref.elu(x, 0.3), {"away_from_zero": True}),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", list(UNARY))
def test_unary_forward_matches_numpy(op, dtype, device):
    ours, reference, domain = UNARY[op]
    x = _make(_values((4, 5), 9, **domain) * 2.0, dtype, device)
    out = ours(x)
    assert out.shape == (4, 5) and out.dtype == dtype and out.device == x.device
    assert_close(out, reference(x.numpy().astype(np.float64)), **forward_tol(dtype), name=op)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op", list(UNARY))
def test_unary_gradcheck(op, device):
    ours, _, domain = UNARY[op]
    x = _make(_values((3, 4), 10, **domain), "float64", device, requires_grad=True)
    assert gradcore.gradcheck(ours, [x])


def test_tensor_methods_are_the_functional_ops():
    x = _make(_values((2, 2), 11, positive=True), "float64", "cpu")
    for method, fn in (("exp", F.exp), ("log", F.log), ("relu", F.relu), ("sigmoid", F.sigmoid), ("tanh", F.tanh),
                       ("sqrt", F.sqrt), ("abs", F.abs), ("leaky_relu", F.leaky_relu), ("cos", F.cos),
                       ("sin", F.sin), ("log1p", F.log1p), ("expm1", F.expm1)):
        assert_close(getattr(x, method)(), fn(x), atol=0, rtol=0, name=method)
    assert_close(abs(-x), x, atol=0, rtol=0, name="abs()")
    assert_close(x.pow(3), x ** 3, atol=0, rtol=0, name="pow")


@pytest.mark.parametrize("device", DEVICES)
def test_sqrt_and_abs(device):
    x_np = _values((3, 4), 15, away_from_zero=True)
    x = _make(x_np, "float64", device, requires_grad=True)
    assert_close(F.abs(x), np.abs(x_np), atol=0, rtol=0, name="abs")
    assert_close(F.sqrt(F.abs(x)), np.sqrt(np.abs(x_np)), atol=1e-15, rtol=1e-15, name="sqrt")
    assert gradcore.gradcheck(F.abs, [x])
    assert gradcore.gradcheck(lambda t: F.sqrt(F.abs(t)), [x])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_and_tanh_are_stable_for_large_inputs(dtype, device):
    x_np = np.array([-1e4, -800.0, -100.0, -30.0, -1e-3, 0.0, 1e-3, 30.0, 100.0, 800.0, 1e4])
    x = _make(x_np, dtype, device, requires_grad=True)
    s = F.sigmoid(x)
    assert np.all(np.isfinite(s.numpy()))
    assert_close(s, ref.sigmoid(x_np), **forward_tol(dtype), name="sigmoid")
    s.sum().backward()
    assert np.all(np.isfinite(x.grad.numpy()))
    assert_close(x.grad, ref.sigmoid(x_np) * (1 - ref.sigmoid(x_np)), **forward_tol(dtype), name="sigmoid'")
    t = F.tanh(x)
    assert_close(t, np.tanh(x_np), **forward_tol(dtype), name="tanh")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_and_tanh_limits_subnormal_tail_and_nan(dtype, device):
    # sigmoid(x) for x below ~-87 is e^x: subnormal in float32 down to ~-103.9, then 0; -inf gives 0, +inf 1, tanh
    # +-1; NaN stays NaN. Below float32's smallest normal the result may be flushed to 0 (CUDA's exp overflows to inf
    # there, as PyTorch's CPU sigmoid gives 0), but never stops at a floor (the old host expf clamp gave 6e-39).
    x_np = np.array([-np.inf, -110.0, -103.0, -100.0, -95.0, -88.5, -87.5, -86.5, np.inf, np.nan])
    x = _make(x_np, dtype, device)
    s, t = F.sigmoid(x).numpy(), F.tanh(x).numpy()
    with np.errstate(over="ignore"):
        expected = 1.0 / (1.0 + np.exp(-x_np))
    np.testing.assert_allclose(s[:-1], expected[:-1], rtol=2e-6, atol=np.finfo(np.float32).tiny / 4)
    np.testing.assert_array_equal(s[[0, 8]], [0.0, 1.0])
    np.testing.assert_array_equal(t[[0, 8]], [-1.0, 1.0])
    assert np.isnan(s[-1]) and np.isnan(t[-1])


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
def test_cuda_matches_cpu_for_every_op(dtype):
    a_np, b_np = _values((5, 7), 12), _values((7,), 13, away_from_zero=True)
    pos = _values((5, 7), 14, positive=True)
    for name, (ours, _) in BINARY.items():
        cpu = ours(_make(a_np, dtype, "cpu"), _make(b_np, dtype, "cpu"))
        gpu = ours(_make(a_np, dtype, "cuda"), _make(b_np, dtype, "cuda"))
        assert_cuda_matches_cpu(gpu, cpu, dtype, name=name)
    for name, (ours, _, domain) in UNARY.items():
        values = pos if domain.get("positive") else a_np
        assert_cuda_matches_cpu(ours(_make(values, dtype, "cuda")), ours(_make(values, dtype, "cpu")), dtype, name=name)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
def test_cuda_gradients_match_cpu_for_every_op(dtype):
    # The backward rules are kernels too (relu_backward, pow_backward, ...), and broadcasting's backward sums.
    a_np, b_np = _values((5, 7), 15), _values((7,), 16, away_from_zero=True)
    pos = _values((5, 7), 17, positive=True)
    for name, (ours, _, domain) in UNARY.items():
        values = pos if domain.get("positive") else _values((5, 7), 18, away_from_zero=domain.get("away_from_zero"))
        grads = {}
        for device in ("cpu", "cuda"):
            x = _make(values, dtype, device, requires_grad=True)
            ours(x).sum().backward()
            grads[device] = x.grad
        assert_cuda_matches_cpu(grads["cuda"], grads["cpu"], dtype, name=f"{name}'")
    for name, (ours, _) in BINARY.items():
        grads = {}
        for device in ("cpu", "cuda"):
            a, b = _make(a_np, dtype, device, requires_grad=True), _make(b_np, dtype, device, requires_grad=True)
            ours(a, b).sum().backward()
            grads[device] = (a.grad, b.grad)
        assert_cuda_matches_cpu(grads["cuda"], grads["cpu"], dtype, name=f"d{name}/d(a, b)")


# ---- bad operands ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("op", list(BINARY))
def test_mixed_dtypes_raise_naming_the_operand(op):
    a, b = gradcore.zeros(2, 3, dtype="float32"), gradcore.zeros(2, 3, dtype="float64")
    with pytest.raises(TypeError, match="b: expected dtype float32"):
        BINARY[op][0](a, b)


@pytest.mark.cuda
@pytest.mark.parametrize("op", list(BINARY))
def test_mixed_devices_raise_naming_the_operand(op):
    a, b = gradcore.zeros(2, 3), gradcore.zeros(2, 3, device="cuda")
    with pytest.raises(ValueError, match="b: expected device cpu"):
        BINARY[op][0](a, b)


@pytest.mark.parametrize("op", list(BINARY))
@pytest.mark.parametrize("shapes", [((2, 3), (2,)), ((2, 3), (3, 3)), ((4, 1, 3), (2, 2))])
def test_shapes_that_do_not_broadcast_name_the_operand(op, shapes):
    a, b = gradcore.zeros(*shapes[0]), gradcore.zeros(*shapes[1])
    with pytest.raises(ValueError, match=r"b: shape .* does not broadcast with a's shape"):
        BINARY[op][0](a, b)


def test_non_tensor_operands_raise_naming_the_operand():
    x = gradcore.zeros(2)
    with pytest.raises(TypeError, match="b: expected a gradcore.Tensor"):
        F.add(x, [1.0, 2.0])
    with pytest.raises(TypeError, match="x: expected a gradcore.Tensor"):
        F.exp(np.zeros(2))
    with pytest.raises(TypeError, match="exponent"):
        F.pow(x, x)


# ---- issue #18 point 7: the smooth activations at their edges, division by a Python zero -------------------------
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_activations_stay_finite_for_large_inputs(dtype, device):
    x_np = np.array([-1e4, -800.0, -100.0, -30.0, -1e-3, 0.0, 1e-3, 30.0, 100.0, 800.0, 1e4])
    for name, (ours, reference, _) in UNARY.items():
        if name in ("softplus", "gelu", "gelu_tanh", "silu", "elu", "elu_alpha", "softplus_beta_threshold"):
            x = _make(x_np, dtype, device, requires_grad=True)
            y = ours(x)
            assert np.all(np.isfinite(y.numpy())), name
            assert_close(y, reference(x_np), **forward_tol(dtype), name=name)
            y.sum().backward()
            assert np.all(np.isfinite(x.grad.numpy())), f"{name}'"


@pytest.mark.parametrize("device", DEVICES)
def test_softplus_is_linear_above_the_threshold(device):
    # PyTorch: beta * x > threshold returns x itself, with gradient exactly 1.
    x = _make([20.5, 21.0, 3.0], "float64", device, requires_grad=True)
    y = F.softplus(x)
    assert y.numpy()[0] == 20.5 and y.numpy()[1] == 21.0
    y.sum().backward()
    assert x.grad.numpy()[0] == 1.0 and x.grad.numpy()[1] == 1.0 and x.grad.numpy()[2] < 1.0
    z = F.softplus(_make([1.0], "float64", device), beta=2.0, threshold=1.5)  # 2 * 1 > 1.5: linear
    assert z.numpy()[0] == 1.0


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_division_by_a_python_zero_gives_inf_and_nan(dtype, device):
    x = _make([1.0, -2.0, 0.0], dtype, device)
    np.testing.assert_array_equal((x / 0).numpy(), [np.inf, -np.inf, np.nan])
    np.testing.assert_array_equal((x / 0.0).numpy(), [np.inf, -np.inf, np.nan])
    np.testing.assert_array_equal((x / -0.0).numpy(), [-np.inf, np.inf, np.nan])
    np.testing.assert_array_equal((0 / x).numpy(), [0.0, -0.0, np.nan])
    np.testing.assert_array_equal((x / _make([0.0, 0.0, 0.0], dtype, device)).numpy(), [np.inf, -np.inf, np.nan])


def test_activation_modules():
    x = _make(_values((2, 3), 19), "float32", "cpu")
    for module, fn in [(gradcore.nn.GELU(), F.gelu), (gradcore.nn.GELU("tanh"), lambda t: F.gelu(t, "tanh")),
                       (gradcore.nn.SiLU(), F.silu), (gradcore.nn.ELU(0.5), lambda t: F.elu(t, 0.5)),
                       (gradcore.nn.Softplus(2.0, 10.0), lambda t: F.softplus(t, 2.0, 10.0))]:
        assert_close(module(x), fn(x), atol=0, rtol=0, name=repr(module))
    assert "approximate='tanh'" in repr(gradcore.nn.GELU("tanh"))
    with pytest.raises(ValueError, match="approximate"):
        gradcore.nn.GELU("erf")
    with pytest.raises(ValueError, match="beta"):
        gradcore.nn.Softplus(beta=0)


def test_costly_unary_ops_split_across_threads_give_the_same_bits(tmp_path):
    # The libm-bound ops run on every thread from 4,096 elements (csrc/cpu/elementwise.cpp), the cheap ones from
    # 32,768: 19,600 elements (the seeds' output sigmoid at B=25) runs split at 2 and 3 threads and on one at 1.
    from isolated import outputs_for_thread_counts
    code = """
        import sys
        import numpy as np
        from gradcore import _core
        x = _core.from_numpy(np.random.default_rng(0).standard_normal(19_600).astype(np.float32) * 4)
        U = _core.UnaryOp
        outs = [_core.unary(x, op, 0.0, 0.0).numpy() for op in (U.sigmoid, U.exp, U.tanh, U.softplus, U.gelu)]
        np.save(sys.argv[1], np.stack(outs))
    """
    outputs = outputs_for_thread_counts(code, tmp_path)
    assert np.array_equal(outputs[0], outputs[1]) and np.array_equal(outputs[0], outputs[2])
