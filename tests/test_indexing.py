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
