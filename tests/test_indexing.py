"""Indexing (x[i], x[a:b:s], x[..., None], combinations, one integer index array), index_select and gather:
forward against numpy references (exact: pure data movement), float64 gradients by finite differences, repeated
indices summed in index order (the same bits as numpy's np.add.at, on every device and thread count), int64 and bool
tensors moved by the same kernels, CUDA against CPU, and bad input."""
import numpy as np
import pytest

import gradcore as gc
from gradcore import functional as F
from reference import indexing as ref
from tolerance import DEVICES, DTYPES, assert_cuda_matches_cpu, cuda_and_cpu_with_grads

SHAPE = (4, 5, 6)


def _t(shape=SHAPE, dtype="float64", device="cpu", seed=0, requires_grad=False):
    values = np.random.default_rng(seed).standard_normal(shape)
    return gc.tensor(values, dtype=dtype, device=device, requires_grad=requires_grad)


def _long(values, device="cpu"):
    return gc.tensor(np.asarray(values, dtype=np.int64), dtype="int64", device=device)


def _same(actual, expected):
    """Pure data movement, or sums in the promised order: the exact values, shape and dtype."""
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}"
    assert actual.numpy().dtype == expected.dtype, f"dtype {actual.numpy().dtype} != {expected.dtype}"
    np.testing.assert_array_equal(actual.numpy(), expected)


BASIC_KEYS = {
    "int": 1, "negative_int": -1, "two_ints": (2, -3), "all_ints": (3, 4, 5), "slice": slice(1, 3),
    "slice_step": slice(None, None, 2), "slice_clamped": slice(-10, 10, 3), "slice_empty": slice(3, 1),
    "slice_negative_bounds": slice(-3, -1), "int_then_slice": (1, slice(1, None, 2)),
    "slice_then_int": (slice(None), 2), "middle_int": (slice(None), -2, slice(1, 4)),
    "none_last": (Ellipsis, None), "none_first": None, "none_middle": (slice(None), None, 1),
    "ellipsis_int": (Ellipsis, 3), "int_ellipsis_int": (1, Ellipsis, -1), "ellipsis_alone": Ellipsis,
    "full": slice(None), "everything": (1, None, slice(0, 4, 3), Ellipsis, None),
    "rows_contiguous": slice(1, 3), "empty_tuple": (),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", list(BASIC_KEYS))
def test_basic_indexing_matches_numpy(case, dtype, device):
    x = _t(dtype=dtype, device=device)
    key = BASIC_KEYS[case]
    _same(x[key], ref.getitem(x.numpy(), key))
    assert x[key].device == x.device


def test_views_of_all_of_x_in_order_share_storage():
    x = _t()
    for key in (slice(None), Ellipsis, (None, Ellipsis), (Ellipsis, None), ()):
        assert x[key]._data.data_ptr == x._data.data_ptr
    assert x[1:3]._data.data_ptr != x._data.data_ptr  # the rest are copies (our tensors are contiguous)


def test_iteration_yields_the_rows():
    x = _t((3, 2))
    rows = list(x)
    assert len(rows) == 3
    for k, row in enumerate(rows):
        _same(row, x.numpy()[k])
    with pytest.raises(TypeError, match="0-d"):
        iter(gc.tensor(1.0))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", ["int", "slice_step", "middle_int", "everything", "slice_empty"])
def test_basic_indexing_gradient(case, device):
    key = BASIC_KEYS[case]
    x = _t(device=device, requires_grad=True)
    gc.gradcheck(lambda t: t[key], [x])
    g = np.random.default_rng(1).standard_normal(ref.getitem(x.numpy(), key).shape)
    x[key].backward(gc.tensor(g, dtype="float64", device=device))
    scatter = np.zeros(SHAPE)  # the reference: g written back at the places x[key] read
    np.add.at(scatter, _reference_positions(key), g)
    _same(x.grad, scatter)


def _reference_positions(key):
    """The flat positions of x that x[key] reads, as an index into x, for the reference scatter."""
    positions = ref.getitem(np.arange(np.prod(SHAPE)).reshape(SHAPE), key)
    return np.unravel_index(positions, SHAPE)


def test_slices_of_large_tensors_are_identical_for_any_thread_count():
    x = _t((256, 70, 33), "float32", seed=4)
    expected = x.numpy()[3:-3:2, :, 1:30]
    previous = gc.get_num_threads()
    try:
        for threads in (1, 2, 3):
            gc.set_num_threads(threads)
            _same(x[3:-3:2, :, 1:30], expected)
    finally:
        gc.set_num_threads(previous)


# ---- integer index arrays: x[idx], index_select, gather ----------------------------------------------------------
ARRAY_KEYS = {  # PyTorch's placement: integers select first, the index's dimensions stand where it stands
    "list": [2, 0, 3],
    "repeated": [1, 1, 3, 1],
    "negative_wraps": [-1, 0, -4],
    "numpy": np.array([3, 2], dtype=np.int32),
    "numpy_uint": np.array([1, 0], dtype=np.uint8),
    "two_d": [[0, 1], [3, 3], [2, 0]],
    "empty": [],
    "middle_dim": (slice(None), [4, 0, 4]),
    "last_dim": (Ellipsis, [5, -6, 0]),
    "after_int": (1, slice(None), [2, 0]),  # numpy would give (2, 5); PyTorch (5, 2)
    "with_none": (None, slice(1, 3), [[4], [0]]),
    "with_slice_step": ([3, 1], slice(None, None, 2), -1),
    "zero_d": (np.int64(2),),  # a numpy integer scalar is an integer
    "zero_d_array": np.array(2),  # a 0-d index array: its (no) dimensions replace the first
}


def _key_on(key, device):
    """The same key with its index array as an int64 tensor (on `device`)."""
    items = key if isinstance(key, tuple) else (key,)
    converted = tuple(_long(item, device) if isinstance(item, (list, np.ndarray)) else item for item in items)
    return converted if isinstance(key, tuple) else converted[0]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("as_tensor", [False, True], ids=["python_index", "int64_tensor_index"])
@pytest.mark.parametrize("case", list(ARRAY_KEYS))
def test_index_array_matches_numpy(case, as_tensor, device):
    x = _t(device=device)
    key = ARRAY_KEYS[case]
    expected = ref.getitem(x.numpy(), key)
    _same(x[_key_on(key, device) if as_tensor else key], expected)
    if as_tensor and device != "cpu":
        _same(x[_key_on(key, "cpu")], expected)  # a CPU index for a CUDA tensor, as PyTorch allows


def test_pytorch_placement_differs_from_numpy():
    x = _t()
    assert x[1, :, [2, 0]].shape == (5, 2)
    assert x.numpy()[1, :, [2, 0]].shape == (2, 5)  # numpy's rule, which PyTorch (and we) do not follow


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", ["repeated", "negative_wraps", "two_d", "middle_dim", "after_int", "with_none"])
def test_index_array_gradient(case, device):
    key = ARRAY_KEYS[case]
    x = _t(device=device, requires_grad=True)
    gc.gradcheck(lambda t: t[key], [x])
    g = np.random.default_rng(2).standard_normal(ref.getitem(x.numpy(), key).shape)
    x[key].backward(gc.tensor(g, dtype="float64", device=device))
    scatter = np.zeros(SHAPE)  # np.add.at adds repeated places one after the other, in index order
    np.add.at(scatter, _reference_positions(key), g)
    _same(x.grad, scatter)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [0, 1, 2, -1])
def test_index_select_matches_numpy(dim, dtype, device):
    x = _t(dtype=dtype, device=device, requires_grad=True)
    n = SHAPE[dim]
    index = np.array([n - 1, 0, n - 1, 1, n - 1, 0])
    for given in (index, index.tolist(), _long(index, device)):
        _same(gc.index_select(x, dim, given), ref.index_select(x.numpy(), dim, index))
        _same(x.index_select(dim, given), ref.index_select(x.numpy(), dim, index))
    y = gc.index_select(x, dim, index)
    g = np.random.default_rng(3).standard_normal(y.shape).astype(dtype)
    y.backward(gc.tensor(g, dtype=dtype, device=device))
    _same(x.grad, ref.index_select_backward(g, index, SHAPE, dim))  # bitwise: sums in index order
    assert gc.index_select(x, dim, _long(1)).shape == tuple(1 if k == dim % 3 else s for k, s in enumerate(SHAPE))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim,index_shape", [(0, (7, 5, 6)), (1, (4, 9, 6)), (2, (4, 5, 2)), (-1, (2, 3, 8)),
                                             (1, (1, 1, 1)), (0, (0, 5, 6))], ids=str)
def test_gather_matches_numpy(dim, index_shape, dtype, device):
    x = _t(dtype=dtype, device=device, requires_grad=True)
    index = np.random.default_rng(4).integers(0, SHAPE[dim], index_shape)
    y = gc.gather(x, dim, _long(index, device))
    _same(y, ref.gather(x.numpy(), dim % 3, index))
    _same(x.gather(dim, index), ref.gather(x.numpy(), dim % 3, index))
    g = np.random.default_rng(5).standard_normal(index_shape).astype(dtype)
    y.backward(gc.tensor(g, dtype=dtype, device=device))
    _same(x.grad, ref.gather_backward(g, index, SHAPE, dim % 3))


def test_gather_of_zero_dimensional_tensors():
    x = gc.tensor(3.0, dtype="float64", requires_grad=True)
    y = gc.gather(x, 0, _long(0))
    assert y.shape == () and y.item() == 3.0
    (y * 2.0).backward()
    assert x.grad.item() == 2.0


@pytest.mark.parametrize("device", DEVICES)
def test_index_gradients_by_finite_differences(device):
    x = _t((3, 4), device=device, requires_grad=True)
    gc.gradcheck(lambda t: gc.index_select(t, 1, [3, 3, 0, 3]), [x])
    gc.gradcheck(lambda t: gc.gather(t, 1, [[0, 0, 3], [1, 2, 1], [3, 3, 3]]), [x])
    gc.gradcheck(lambda t: gc.gather(t, 0, [[2, 0, 2, 2]]) * t[[2], :], [x])
    gc.gradcheck(lambda t: t[[0, 2, 0]][:, 1:].T, [x])


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_repeated_index_sums_are_identical_for_any_thread_count(threads):
    """Many repeats of few rows (an embedding's gradient): each sum runs in index order, so the bits never depend on
    the number of threads, and equal numpy's sequential np.add.at."""
    rng = np.random.default_rng(6)
    x = gc.tensor(rng.standard_normal((50, 300)), dtype="float32", requires_grad=True)
    index = rng.integers(0, 50, 4000)
    g = rng.standard_normal((4000, 300)).astype(np.float32)
    previous = gc.get_num_threads()
    try:
        gc.set_num_threads(threads)
        x.grad = None
        x[index].backward(gc.tensor(g))
        _same(x.grad, ref.index_select_backward(g, index, (50, 300), 0))
        rows = gc.tensor(rng.standard_normal((4000, 50)), dtype="float32", requires_grad=True)
        picked = rng.integers(0, 50, (4000, 30))
        gc.gather(rows, 1, picked).backward(gc.tensor(g[:, :30]))
        _same(rows.grad, ref.gather_backward(g[:, :30], picked, (4000, 50), 1))
    finally:
        gc.set_num_threads(previous)


@pytest.mark.parametrize("device", DEVICES)
def test_int64_and_bool_tensors_are_moved_too(device):
    """labels[perm] is how a loader shuffles labels: the copy and gather kernels move 8- and 1-byte elements."""
    labels = _long(np.arange(10) * 7 - 20, device)
    perm = np.random.default_rng(7).permutation(10)
    _same(labels[perm], (np.arange(10) * 7 - 20)[perm])
    _same(labels[_long(perm, device)], (np.arange(10) * 7 - 20)[perm])
    _same(labels[2:9:3], (np.arange(10) * 7 - 20)[2:9:3])
    table = np.arange(24, dtype=np.int64).reshape(2, 3, 4) - 5
    t = _long(table, device)
    _same(t.permute(2, 0, 1), np.transpose(table, (2, 0, 1)))
    _same(t[:, None, 1:, ::2].expand(2, 3, 2, 2), np.broadcast_to(table[:, None, 1:, ::2], (2, 3, 2, 2)))
    _same(gc.gather(t, 2, _long([[[3, 0]] * 3] * 2, device)), np.take_along_axis(table, np.array([[[3, 0]] * 3] * 2), 2))
    flags = gc.tensor(table % 3 == 0, dtype="bool", device=device)
    _same(flags.transpose(0, 2), np.swapaxes(table % 3 == 0, 0, 2))
    _same(flags[1, ::2], (table % 3 == 0)[1, ::2])
    _same(flags.index_select(1, [2, 2, 0]), np.take(table % 3 == 0, [2, 2, 0], axis=1))
    _same(flags[[1, 0]].unsqueeze(0).expand(2, 2, 3, 4), np.broadcast_to((table % 3 == 0)[[1, 0]], (2, 2, 3, 4)))


@pytest.mark.parametrize("device", DEVICES)
def test_out_of_range_indices_raise_index_errors_before_any_kernel(device):
    x = _t(device=device)
    for index in ([0, 4], [-5], _long([9], device), _long([-5], device)):
        with pytest.raises(IndexError, match="index: .* out of bounds for dimension 0 with size 4"):
            x[index]
    with pytest.raises(IndexError, match="negative"):
        gc.index_select(x, 1, _long([-1], device))
    with pytest.raises(IndexError, match="size 6"):
        gc.gather(x, 2, _long(np.full((4, 5, 6), 6), device))
    with pytest.raises(IndexError, match="negative"):
        gc.gather(x, 2, _long(np.full((4, 5, 6), -1), device))
    assert gc.index_select(x, 0, _long([3], device)).shape == (1, 5, 6)  # the device is still healthy


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
def test_cuda_matches_cpu(dtype):
    index = np.random.default_rng(8).integers(-4, 4, 11)
    picked = np.random.default_rng(9).integers(0, 5, (4, 7, 6))

    def build(device):
        x = _t(dtype=dtype, device=device, requires_grad=True)
        y = x[index, 1:, None] * 2.0
        z = gc.gather(x[:, :, 1:4], 1, _long(picked[:, :, :3], device)).index_select(0, [3, 3, 1])
        return y.sum(axis=(1, 2)) + z.sum(axis=(1, 2)).sum(), {"x": x}

    results = cuda_and_cpu_with_grads(build, dtype)
    assert_cuda_matches_cpu(results["cuda"], results["cpu"], dtype)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
def test_cuda_repeated_index_sums_are_numpys_bits(dtype):
    """The same sums in the same order as on the CPU: bitwise equal to np.add.at, in either emulated thread order."""
    rng = np.random.default_rng(10)
    x = gc.tensor(rng.standard_normal((20, 33)), dtype=dtype, device="cuda", requires_grad=True)
    index = rng.integers(0, 20, 500)
    g = rng.standard_normal((500, 33)).astype(dtype)
    x[index].backward(gc.tensor(g, dtype=dtype, device="cuda"))
    _same(x.grad, ref.index_select_backward(g, index, (20, 33), 0))
    rows = gc.tensor(rng.standard_normal((20, 33)), dtype=dtype, device="cuda", requires_grad=True)
    picked = rng.integers(0, 33, (20, 40))
    g_rows = rng.standard_normal((20, 40)).astype(dtype)
    gc.gather(rows, 1, _long(picked, "cuda")).backward(gc.tensor(g_rows, dtype=dtype, device="cuda"))
    _same(rows.grad, ref.gather_backward(g_rows, picked, (20, 33), 1))
