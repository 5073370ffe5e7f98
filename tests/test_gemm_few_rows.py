"""The GEMM's path for fewer rows than a panel (a batch of 1 to 7: csrc/cpu/gemm.h, gemm_few_rows) runs several
outputs side by side (groups of 8 dot products for a transposed B such as linear's weight; groups of 4 column strips
for a plain B such as linear's input gradient G W). Each output gets exactly the operations, in the order, it got
alone: the same bits in a group, alone, at the edge, and on 1, 2 or 3 threads; and the right values (numpy)."""
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
