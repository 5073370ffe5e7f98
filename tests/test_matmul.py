"""matmul and a @ b: PyTorch's shape rules (1-D promotion and removal, broadcast batch dimensions), forward against
the numpy reference, float64 gradcheck, gradients of shapes that cross the CPU GEMM's blocking against the numpy
formulas, the kernel's transposed reads and bias, determinism (bitwise, also across thread counts), CUDA against
CPU, and bad input."""
import textwrap

import numpy as np
import pytest

import gradcore as gc
from gradcore import _core
from isolated import outputs_for_thread_counts
from reference import matmul as ref
from tolerance import DEVICES, DTYPES, assert_close, assert_cuda_matches_cpu, cuda_and_cpu_with_grads, forward_tol

# name: (shape of a, shape of b)
SHAPES = {
    "dot_1d_1d": ((5,), (5,)),
    "matrix_vector": ((3, 5), (5,)),
    "vector_matrix": ((5,), (5, 4)),
    "matrix_matrix": ((3, 5), (5, 4)),
    "batched_same_batch": ((2, 3, 5), (2, 5, 4)),
    "batched_times_matrix": ((2, 3, 5), (5, 4)),
    "matrix_times_batched": ((3, 5), (2, 5, 4)),
    "vector_times_batched": ((5,), (2, 5, 4)),
    "batched_times_vector": ((2, 3, 5), (5,)),
    "broadcast_batch_1_vs_n": ((2, 1, 3, 5), (4, 5, 2)),
    "broadcast_batch_both_ways": ((3, 1, 2, 4), (1, 2, 4, 3)),
    "batch_of_one": ((1, 3, 5), (5, 2)),
    "column_times_row": ((4, 1), (1, 3)),
    "single_element": ((1, 1), (1, 1)),
}
# Shapes that cross the CPU GEMM's edges: K > 256 (two reduction blocks), several row panels and column strips, the
# seeds' dense layers, and batches whose items each cross them.
LARGE = {
    "k520_two_reduction_blocks": ((37, 520), (520, 70)),
    "seed_encoder_batch256": ((256, 784), (784, 200)),
    "seed_decoder_batch25": ((25, 200), (200, 784)),
    "batched_broadcast_k300": ((3, 1, 40, 300), (2, 300, 33)),
    "batched_times_matrix_k300": ((4, 17, 300), (300, 45)),
    "long_dot": ((3000,), (3000,)),
}
CUDA_SMALL = {**SHAPES, "k300_batched_broadcast": ((2, 1, 20, 300), (3, 300, 9)), "long_dot": ((2100,), (2100,)),
              "matrix_vector_k1500": ((70, 1500), (1500,))}


def make(shapes, dtype, device="cpu", seed=0, requires_grad=False):
    """a ~ N(0, 1) and b ~ N(0, 1/K), so that the products are ~N(0, 1) whatever the inner dimension K."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shapes[0])
    b = rng.standard_normal(shapes[1]) / np.sqrt(max(shapes[0][-1], 1))
    return [gc.tensor(t, dtype=dtype, device=device, requires_grad=requires_grad) for t in (a, b)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(SHAPES) + list(LARGE))
def test_forward_matches_reference_and_numpy_shape_rules(name, dtype):
    a, b = make({**SHAPES, **LARGE}[name], dtype)
    c = gc.matmul(a, b)
    expected = ref.matmul(a.numpy(), b.numpy())
    assert c.shape == np.matmul(a.numpy(), b.numpy()).shape == expected.shape
    assert c.dtype == dtype
    assert_close(c, expected, name=name, **forward_tol(dtype))


@pytest.mark.parametrize("name", list(SHAPES))
def test_gradients_match_finite_differences(name):
    a, b = make(SHAPES[name], "float64", requires_grad=True)
    assert gc.gradcheck(lambda p, q: p @ q, [a, b])


@pytest.mark.parametrize("name", list(LARGE))
def test_large_gradients_match_reference(name):
    a, b = make(LARGE[name], "float64", requires_grad=True)
    c = a @ b
    g = np.random.default_rng(1).standard_normal(c.shape)
    c.backward(gc.tensor(g, dtype="float64"))
    expected_a, expected_b = ref.matmul_grads(a.numpy(), b.numpy(), g)
    assert_close(a.grad, expected_a, atol=1e-10, rtol=1e-9, name="a.grad")
    assert_close(b.grad, expected_b, atol=1e-10, rtol=1e-9, name="b.grad")


def test_only_the_operand_that_needs_it_gets_a_gradient():
    a, b = make(SHAPES["broadcast_batch_1_vs_n"], "float64")
    b.requires_grad_(True)
    assert gc.gradcheck(lambda q: a @ q, [b])
    (a @ b).sum().backward()
    assert a.grad is None and b.grad.shape == b.shape


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("transpose_a", [False, True], ids=["a", "aT"])
@pytest.mark.parametrize("transpose_b", [False, True], ids=["b", "bT"])
def test_kernel_reads_transposes_through_strides_and_adds_the_bias(transpose_a, transpose_b, dtype):
    """_core.matmul(a, b, transpose_a, transpose_b, bias): what backward and linear call; op(X) is X^T where asked."""
    rng = np.random.default_rng(2)
    m, k, n = 19, 300, 37
    a = rng.standard_normal((2, k, m) if transpose_a else (2, m, k))
    b = rng.standard_normal((k, n) if not transpose_b else (n, k))
    bias = rng.standard_normal(n)
    op_a = np.swapaxes(a, -1, -2) if transpose_a else a
    op_b = b.T if transpose_b else b
    arrays = [gc.tensor(t, dtype=dtype)._data for t in (a, b, bias)]
    c = _core.matmul(arrays[0], arrays[1], transpose_a=transpose_a, transpose_b=transpose_b, bias=arrays[2])
    assert_close(np.asarray(gc.Tensor(c).numpy()), ref.matmul(op_a, op_b) + bias, **forward_tol(dtype))


@pytest.mark.parametrize("device", DEVICES)
def test_empty_reduction_gives_zeros_and_empty_shapes_work(device):
    a = gc.zeros(3, 0, device=device, requires_grad=True)
    b = gc.zeros(0, 2, device=device, requires_grad=True)
    c = a @ b
    assert c.shape == (3, 2) and np.array_equal(c.numpy(), np.zeros((3, 2)))
    c.sum().backward()
    assert a.grad.shape == (3, 0) and b.grad.shape == (0, 2)
    assert (gc.zeros(0, 4, device=device) @ gc.ones(4, 5, device=device)).shape == (0, 5)
    assert (gc.zeros(2, 0, 3, 4, device=device) @ gc.ones(4, 5, device=device)).shape == (2, 0, 3, 5)


def test_tensor_methods_and_operators():
    a, b = make(SHAPES["batched_times_matrix"], "float64")
    expected = ref.matmul(a.numpy(), b.numpy())
    for c in (a @ b, a.matmul(b), gc.matmul(a, b), gc.functional.matmul(a, b), b.__rmatmul__(a)):
        assert_close(c, expected, **forward_tol("float64"))
    with pytest.raises(TypeError, match="a: expected a gradcore.Tensor"):
        [[1.0] * 5] @ b  # noqa: B018 (the operator is the point)


def test_matches_torch_when_installed():
    torch = pytest.importorskip("torch")
    for name, (sa, sb) in {**SHAPES, **LARGE}.items():
        a, b = make((sa, sb), "float64", requires_grad=True)
        ta = torch.tensor(a.numpy(), requires_grad=True)
        tb = torch.tensor(b.numpy(), requires_grad=True)
        c, tc = a @ b, ta @ tb
        assert c.shape == tuple(tc.shape), name
        assert_close(c, tc.detach().numpy(), atol=1e-10, rtol=1e-10, name=name)
        g = np.random.default_rng(5).standard_normal(c.shape)
        c.backward(gc.tensor(g, dtype="float64"))
        tc.backward(torch.tensor(g))
        assert_close(a.grad, ta.grad.numpy(), atol=1e-10, rtol=1e-10, name=f"{name}: a.grad")
        assert_close(b.grad, tb.grad.numpy(), atol=1e-10, rtol=1e-10, name=f"{name}: b.grad")


# ---- determinism -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["k520_two_reduction_blocks", "batched_broadcast_k300"])
def test_bitwise_deterministic(name):
    results = []
    for _ in range(2):
        a, b = make(LARGE[name], "float32", requires_grad=True)
        c = a @ b
        c.backward(gc.tensor(np.random.default_rng(3).standard_normal(c.shape), dtype="float32"))
        results.append([t.numpy().copy() for t in (c, a.grad, b.grad)])
    for x, y in zip(*results):
        assert np.array_equal(x, y)


def test_a_row_gives_the_same_bits_alone_or_in_a_batch():
    """Fewer rows than a GEMM panel read B in place (no packing), with the packed path's operations in its order."""
    rng = np.random.default_rng(4)
    a = rng.standard_normal((20, 600)).astype(np.float32)
    b = gc.tensor(rng.standard_normal((600, 77)).astype(np.float32))
    together = (gc.tensor(a) @ b).numpy()
    for rows in (slice(0, 1), slice(3, 5), slice(7, 14)):
        assert np.array_equal((gc.tensor(a[rows]) @ b).numpy(), together[rows])


THREAD_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import gradcore as gc
    rng = np.random.default_rng(0)
    parts = []
    for sa, sb in [((256, 784), (784, 200)), ((3, 1, 40, 300), (2, 300, 33)), ((520, 300), (300, 530)),
                   ((5, 1000), (1000, 600)), ((1, 784), (784, 200))]:
        a = gc.tensor(rng.standard_normal(sa).astype(np.float32), requires_grad=True)
        b = gc.tensor(rng.standard_normal(sb).astype(np.float32), requires_grad=True)
        c = a @ b
        c.backward(gc.tensor(rng.standard_normal(c.shape).astype(np.float32)))
        parts += [c.numpy().ravel(), a.grad.numpy().ravel(), b.grad.numpy().ravel()]
    np.save(sys.argv[1], np.concatenate(parts))
""")


def test_bitwise_identical_for_any_thread_count(tmp_path):
    outputs = outputs_for_thread_counts(THREAD_SCRIPT, tmp_path)
    assert np.array_equal(outputs[0], outputs[1]) and np.array_equal(outputs[0], outputs[2])


# ---- CUDA --------------------------------------------------------------------------------------------------------
@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(CUDA_SMALL))
def test_cuda_matches_cpu(name, dtype):
    def build(device):
        a, b = make(CUDA_SMALL[name], dtype, device=device, requires_grad=True)
        return a @ b, {"a": a, "b": b}

    results = cuda_and_cpu_with_grads(build, dtype)
    assert_cuda_matches_cpu(results["cuda"], results["cpu"], dtype)


@pytest.mark.cuda
@pytest.mark.parametrize("transpose_a", [False, True], ids=["a", "aT"])
@pytest.mark.parametrize("transpose_b", [False, True], ids=["b", "bT"])
def test_cuda_transposed_reads_and_bias_match_cpu(transpose_a, transpose_b):
    rng = np.random.default_rng(2)
    a = rng.standard_normal((2, 40, 70))
    b = rng.standard_normal((70, 70))
    bias = rng.standard_normal(70 if not transpose_a else 70)
    out = {}
    for device in ("cpu", "cuda"):
        arrays = [gc.tensor(t, dtype="float32", device=device)._data for t in (a, b, bias)]
        if transpose_a:  # (2, 40, 70) read as (2, 70, 40): 70 rows; b then needs 40 rows
            arrays[1] = gc.tensor(b[:40] if not transpose_b else b[:, :40], dtype="float32", device=device)._data
        out[device] = gc.Tensor(_core.matmul(arrays[0], arrays[1], transpose_a=transpose_a, transpose_b=transpose_b,
                                             bias=arrays[2])).numpy()
    assert_cuda_matches_cpu(out["cuda"], out["cpu"], "float32")


@pytest.mark.cuda
def test_cuda_bitwise_deterministic():
    results = []
    for _ in range(2):
        a, b = make(CUDA_SMALL["k300_batched_broadcast"], "float32", device="cuda", requires_grad=True)
        c = a @ b
        c.backward(gc.ones(*c.shape, device="cuda"))
        results.append([t.numpy() for t in (c, a.grad, b.grad)])
    for x, y in zip(*results):
        assert np.array_equal(x, y)


# ---- bad input ---------------------------------------------------------------------------------------------------
def test_zero_dimensional_operands():
    with pytest.raises(ValueError, match=r"a: matmul needs at least 1 dimension in both arguments, got shapes \(\)"):
        gc.matmul(gc.tensor(2.0), gc.ones(3))
    with pytest.raises(ValueError, match="b: matmul needs at least 1 dimension"):
        gc.ones(3) @ gc.tensor(2.0)


@pytest.mark.parametrize("sa, sb", [((2, 3), (4, 5)), ((3,), (4,)), ((2, 3), (4,)), ((3,), (4, 2)),
                                    ((2, 2, 3), (2, 4, 3))])
def test_inner_dimensions_must_match(sa, sb):
    with pytest.raises(ValueError, match=r"b: shape .* cannot be multiplied with a of shape"):
        gc.ones(*sa) @ gc.ones(*sb)


def test_batch_dimensions_must_broadcast():
    with pytest.raises(ValueError, match="b: the batch dimensions of shape .* do not broadcast"):
        gc.ones(2, 3, 4) @ gc.ones(3, 4, 5)


def test_mixed_dtypes_and_non_tensors():
    with pytest.raises(TypeError, match="b: expected dtype float32"):
        gc.ones(2, 3) @ gc.ones(3, 2, dtype="float64")
    with pytest.raises(TypeError, match="b: expected a gradcore.Tensor"):
        gc.matmul(gc.ones(2, 3), np.ones((3, 2)))
    with pytest.raises(TypeError, match="a: expected a gradcore.Tensor"):
        gc.matmul(None, gc.ones(3, 2))


def test_kernel_rejects_bad_bias():
    a, b = gc.ones(2, 3)._data, gc.ones(3, 4)._data
    with pytest.raises(ValueError, match=r"bias: expected shape \(4,\)"):
        _core.matmul(a, b, bias=gc.ones(3)._data)
    with pytest.raises(ValueError, match="a: expected at least 2 dimensions"):
        _core.matmul(gc.ones(3)._data, b)


@pytest.mark.cuda
def test_mixed_devices():
    with pytest.raises(ValueError, match="b: expected device cpu"):
        gc.ones(2, 3) @ gc.ones(3, 2, device="cuda")
