"""The GEMM's path for fewer rows than a panel (a batch of 1 to 7: csrc/cpu/gemm.h, gemm_few_rows) runs several
outputs side by side (groups of 8 dot products for a transposed B such as linear's weight; groups of 4 column strips
for a plain B such as linear's input gradient G W). Each output gets exactly the operations, in the order, it got
alone: the same bits in a group, alone, at the edge, and on 1, 2 or 3 threads; and the right values (numpy).
A product with one reduction step (K = 1: a batch-1 weight gradient G^T x) is written straight from the two vectors,
each element rounded as the micro-kernel rounds it, fma(a, b, 0) then the bias or C added."""
import numpy as np
import pytest

import gradcore as gc
from gradcore import _core
from gradcore.functional import linear
from tolerance import DTYPES, assert_close, forward_tol


def _arrays(dtype, seed, *shapes):
    rng = np.random.default_rng(seed)
    return [gc.tensor(rng.standard_normal(s), dtype=dtype) for s in shapes]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", [1, 3, 7])
@pytest.mark.parametrize("k", [15, 200, 257, 784])
def test_grouped_dot_products_equal_each_output_alone(k, rows, dtype):
    # 13 outputs: 8 in a group, 5 one at a time; each output computed alone (one row of W) must match its column.
    x, w, b = _arrays(dtype, 0, (rows, k), (13, k), (13,))
    y = linear(x, w, b).numpy()
    for j in range(13):
        alone = linear(x, w[j:j + 1], b[j:j + 1]).numpy()
        assert alone.tobytes() == np.ascontiguousarray(y[:, j:j + 1]).tobytes(), f"output {j}"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", [1, 2, 7])
@pytest.mark.parametrize("k", [1, 200, 300])
def test_grouped_strips_equal_each_strip_alone(k, rows, dtype):
    # G (rows x k) @ W (k x n): n = 4 strips (a group) + 1 strip + a partial strip, strip width = 2 vectors.
    strip = 2 * 64 // np.dtype(dtype).itemsize
    n = 5 * strip + 5
    g, w = _arrays(dtype, 1, (rows, k), (k, n))
    c = _core.matmul(g._data, w._data).numpy()
    for j0 in range(0, n, strip):
        cols = w.numpy()[:, j0:j0 + strip]
        alone = _core.matmul(g._data, gc.tensor(cols, dtype=dtype)._data).numpy()
        assert alone.tobytes() == np.ascontiguousarray(c[:, j0:j0 + strip]).tobytes(), f"strip at {j0}"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 784, 200), (1, 200, 784), (5, 300, 37)])
def test_values_match_numpy(shape, dtype):
    m, k, n = shape
    x, w, b, g = _arrays(dtype, 2, (m, k), (n, k), (n,), (m, n))
    xn, wn, bn, gn = (t.numpy().astype(np.float64) for t in (x, w, b, g))
    assert_close(linear(x, w, b), xn @ wn.T + bn, **forward_tol(dtype), name="x W^T + b")
    assert_close(gc.Tensor(_core.matmul(g._data, w._data)), gn @ wn, **forward_tol(dtype), name="G W")


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_bitwise_the_same_on_1_2_and_3_threads(threads):
    # (3, 784, 200) is over the GEMM's parallel threshold: its column blocks spread over the threads.
    x, w, b, g = _arrays("float32", 3, (3, 784), (200, 784), (200,), (3, 200))
    before = gc.get_num_threads()
    try:
        gc.set_num_threads(1)
        expected = [linear(x, w, b).numpy().copy(), _core.matmul(g._data, w._data).numpy().copy()]
        gc.set_num_threads(threads)
        got = [linear(x, w, b).numpy(), _core.matmul(g._data, w._data).numpy()]
    finally:
        gc.set_num_threads(before)
    for e, o in zip(expected, got):
        assert e.tobytes() == o.tobytes()


def test_batch_of_one_gradcheck():
    x, w, b = _arrays("float64", 4, (1, 37), (19, 37), (19,))
    for t in (x, w, b):
        t.requires_grad_()
    assert gc.gradcheck(linear, [x, w, b])


def test_linear_without_grad_saves_nothing_and_with_grad_saves_its_inputs():
    x, w, b = _arrays("float32", 5, (1, 8), (3, 8), (3,))
    y = linear(x, w, b)
    assert y._node is None  # nothing recorded
    w.requires_grad_()
    y = linear(x, w, b)
    assert len(y._node.saved_arrays) == 2


def _outer_operands(dtype, m, n, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((m, 1)), rng.standard_normal((1, n))
    a[::7] *= 1e-30  # products that underflow: fma(a, b, 0) keeps the sign of a tiny negative product (-0)
    b[0, ::5] *= -1e-30
    a[::11] = 0.0  # exact zeros of both signs: fma(a, b, +0) of an exact -0 is +0
    b[0, ::13] = -0.0
    return a.astype(dtype), b.astype(dtype)


def _fma_with_zero(a, b):
    """fma(a, b, +0) for float32 operands, exactly: the float64 product of two float32s is exact, + 0.0 turns an exact
    -0 into +0, and the one rounding to float32 happens at the end."""
    return ((a.astype(np.float64) * b.astype(np.float64)) + 0.0).astype(np.float32)


@pytest.mark.parametrize("shape", [(8, 1), (9, 33), (200, 784), (784, 200), (1000, 7)])
def test_outer_product_is_fma_from_zero_for_every_element(shape):
    m, n = shape
    a, b = _outer_operands("float32", m, n, 6)
    c = _core.matmul(gc.tensor(a)._data, gc.tensor(b)._data).numpy()
    assert c.tobytes() == _fma_with_zero(a, b).tobytes()
    bias = np.random.default_rng(7).standard_normal(n).astype(np.float32)
    with_bias = _core.matmul(gc.tensor(a)._data, gc.tensor(b)._data, bias=gc.tensor(bias)._data).numpy()
    assert with_bias.tobytes() == (_fma_with_zero(a, b) + bias).tobytes()


@pytest.mark.parametrize("dtype", DTYPES)
def test_outer_product_rows_equal_the_same_rows_in_a_small_batch(dtype):
    # rows 0..6 of a 200-row outer product against the same rows as a batch of 7 (the few-rows path)
    a, b = _outer_operands(dtype, 200, 300, 8)
    c = _core.matmul(gc.tensor(a, dtype=dtype)._data, gc.tensor(b, dtype=dtype)._data).numpy()
    few = _core.matmul(gc.tensor(a[:7], dtype=dtype)._data, gc.tensor(b, dtype=dtype)._data).numpy()
    assert few.tobytes() == np.ascontiguousarray(c[:7]).tobytes()


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_outer_product_bitwise_the_same_on_1_2_and_3_threads(threads):
    a, b = _outer_operands("float32", 1000, 300, 9)  # 300k outputs: over the GEMM's parallel threshold
    a_t, b_t = gc.tensor(a)._data, gc.tensor(b)._data
    before = gc.get_num_threads()
    try:
        gc.set_num_threads(threads)
        got = _core.matmul(a_t, b_t).numpy()
    finally:
        gc.set_num_threads(before)
    assert got.tobytes() == _fma_with_zero(a, b).tobytes()


def test_batch_one_weight_gradient_through_linear():
    x, w, b = _arrays("float64", 10, (1, 30), (20, 30), (20,))
    w.requires_grad_()
    (linear(x, w, b) * gc.tensor(np.arange(20.0))).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), np.arange(20.0)[:, None] * x.numpy())
