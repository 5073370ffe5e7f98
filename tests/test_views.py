"""Views and shapes (transpose, x.T, permute, flatten, unsqueeze, squeeze, expand, nn.Flatten): forward against
numpy's own view functions (exact: pure data movement), float64 gradients by finite differences, storage sharing for
the reshapes, bitwise determinism over thread counts, CUDA against CPU, and bad input."""
import warnings

import numpy as np
import pytest

import gradcore as gc
from gradcore import functional as F
from tolerance import DEVICES, DTYPES, assert_close, assert_cuda_matches_cpu, cuda_and_cpu_with_grads


def _t(shape, dtype="float64", device="cpu", seed=0, requires_grad=False):
    values = np.random.default_rng(seed).standard_normal(shape)
    return gc.tensor(values, dtype=dtype, device=device, requires_grad=requires_grad)


def _same(actual, expected):
    """Pure data movement: the exact values, shape and dtype."""
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}"
    np.testing.assert_array_equal(actual.numpy(), expected)


PERMUTATIONS = {  # (shape, dims)
    "matrix": ((3, 5), (1, 0)),
    "nchw_to_nhwc": ((2, 3, 4, 5), (0, 2, 3, 1)),
    "nhwc_to_nchw": ((2, 4, 5, 3), (0, 3, 1, 2)),
    "reverse": ((2, 3, 4), (2, 1, 0)),
    "negative_dims": ((2, 3, 4), (-1, 0, -2)),
    "size_one_dims": ((1, 3, 1, 4), (3, 2, 0, 1)),
    "identity": ((2, 3), (0, 1)),
    "empty": ((0, 3, 2), (2, 0, 1)),
    "eight_dims": ((2, 1, 3, 2, 1, 2, 3, 2), (7, 6, 5, 4, 3, 2, 1, 0)),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", list(PERMUTATIONS))
def test_permute_matches_numpy(case, dtype, device):
    shape, dims = PERMUTATIONS[case]
    x = _t(shape, dtype, device)
    expected = np.transpose(x.numpy(), dims)
    _same(x.permute(*dims), expected)
    _same(x.permute(dims), expected)
    _same(F.permute(x, dims), expected)
    assert x.permute(dims).dtype == dtype and x.permute(dims).device == x.device


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dims", [(0, 1), (1, 0), (0, 2), (-1, -3), (1, 1), (2, -1)], ids=str)
def test_transpose_matches_numpy(dims, device):
    x = _t((2, 3, 4), device=device)
    _same(x.transpose(*dims), np.swapaxes(x.numpy(), *dims))
    _same(F.transpose(x, *dims), np.swapaxes(x.numpy(), *dims))


def test_T_transposes_a_matrix_and_leaves_a_scalar():
    x = _t((3, 5))
    _same(x.T, x.numpy().T)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning for 0 or 2 dimensions
        _same(gc.tensor(2.0).T, np.float32(2.0))
        x.T
    with pytest.warns(UserWarning, match="deprecated"):  # PyTorch: reverses the dimensions, and warns
        _same(_t((2, 3, 4)).T, np.transpose(_t((2, 3, 4)).numpy()))
    with pytest.warns(UserWarning, match="deprecated"):
        _same(_t((4,)).T, _t((4,)).numpy())


FLATTEN = [((2, 3, 4), 0, -1), ((2, 3, 4), 1, -1), ((2, 3, 4), 0, 1), ((2, 3, 4), -2, -1), ((2, 3, 4), 1, 1),
           ((2, 3, 4, 5), 1, 2), ((5,), 0, 0), ((2, 0, 3), 1, 2), ((), 0, -1)]


@pytest.mark.parametrize("shape,start,end", FLATTEN, ids=str)
def test_flatten_matches_numpy_and_shares_storage(shape, start, end):
    x = _t(shape)
    y = gc.flatten(x, start, end)
    if shape:
        s, e = start % len(shape), end % len(shape)
        expected_shape = shape[:s] + (int(np.prod(shape[s:e + 1])),) + shape[e + 1:]
    else:
        expected_shape = (1,)  # PyTorch: a 0-d tensor flattens to one element
    _same(y, x.numpy().reshape(expected_shape))
    assert x.flatten(start, end).shape == y.shape == F.flatten(x, start_dim=start, end_dim=end).shape
    assert y.numel == 0 or y._data.data_ptr == x._data.data_ptr  # a reshape: no copy


def test_flatten_defaults_and_module():
    x = _t((2, 3, 4, 5))
    assert x.flatten().shape == (120,)
    assert x.flatten(1).shape == (2, 60)
    layer = gc.nn.Flatten()
    assert layer(x).shape == (2, 60) and repr(layer) == "Flatten(start_dim=1, end_dim=-1)"
    assert gc.nn.Flatten(0, 2)(x).shape == (24, 5)
    x.requires_grad_(True)
    gc.nn.Flatten()(x).sum().backward()
    assert_close(x.grad, np.ones(x.shape), atol=0, rtol=0)


@pytest.mark.parametrize("dim", [0, 1, 2, 3, -1, -4], ids=str)
def test_unsqueeze_matches_numpy(dim):
    x = _t((2, 3, 4))
    y = x.unsqueeze(dim)
    _same(y, np.expand_dims(x.numpy(), dim))
    _same(F.unsqueeze(x, dim), np.expand_dims(x.numpy(), dim))
    assert y._data.data_ptr == x._data.data_ptr


@pytest.mark.parametrize("shape,dim,expected", [
    ((1, 3, 1, 4), None, (3, 4)), ((1, 3, 1, 4), 0, (3, 1, 4)), ((1, 3, 1, 4), 2, (1, 3, 4)),
    ((1, 3, 1, 4), 1, (1, 3, 1, 4)),  # a dimension of another length stays (PyTorch)
    ((1, 3, 1, 4), (0, 2), (3, 4)), ((1, 3, 1, 4), -2, (1, 3, 4)), ((1, 1), (), (1, 1)), ((1,), None, ()),
    ((), 0, ()), ((), None, ())], ids=str)
def test_squeeze(shape, dim, expected):
    x = _t(shape)
    y = x.squeeze(dim) if dim is not None else x.squeeze()
    _same(y, x.numpy().reshape(expected))
    assert F.squeeze(x, dim).shape == expected


EXPANDS = [((3, 1), (3, 4)), ((3, 1), (-1, 4)), ((1,), (5,)), ((2, 1, 4), (3, 2, 5, 4)), ((), (2, 3)),
           ((1, 1), (2, 0)), ((4,), (2, 3, 4)), ((2, 3), (2, 3)), ((2, 3), (-1, -1))]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,sizes", EXPANDS, ids=str)
def test_expand_matches_numpy(shape, sizes, dtype, device):
    x = _t(shape, dtype, device)
    target = tuple(n if n != -1 else shape[k - (len(sizes) - len(shape))] for k, n in enumerate(sizes))
    expected = np.broadcast_to(x.numpy(), target)
    _same(x.expand(*sizes), expected)
    _same(x.expand(sizes), expected)
    _same(x.expand_as(gc.zeros(*target)), expected)


def test_contiguous_is_the_tensor_itself():
    x = _t((3, 4))
    y = x.transpose(0, 1)
    assert y.is_contiguous() and y.contiguous() is y  # every result above is a contiguous copy or a reshape


def test_views_that_change_nothing_share_storage():
    x = _t((2, 3))
    for y in (x.expand(2, 3), x.permute(0, 1), x.transpose(1, 1), x.squeeze(0), x.flatten(1)):
        assert y._data.data_ptr == x._data.data_ptr and y.shape == x.shape
    row = _t((1, 5))
    for y, shape in ((row.T, (5, 1)), (row.expand(1, 1, 5), (1, 1, 5)), (row[None].permute(1, 0, 2), (1, 1, 5))):
        assert y._data.data_ptr == row._data.data_ptr and y.shape == shape  # only length-1 dimensions move
        _same(y, row.numpy().reshape(shape))


@pytest.mark.parametrize("device", DEVICES)
def test_gradients_by_finite_differences(device):
    x = _t((2, 3, 4), device=device, requires_grad=True)
    m = _t((3, 1), device=device, seed=1, requires_grad=True)
    gc.gradcheck(lambda t: t.permute(2, 0, 1), [x])
    gc.gradcheck(lambda t: t.transpose(0, 2) * t.transpose(0, 2), [x])
    gc.gradcheck(lambda t: t.flatten(1) * 2.0, [x])
    gc.gradcheck(lambda t: t.unsqueeze(1).squeeze(), [x])
    gc.gradcheck(lambda t: t.expand(2, 3, 4), [m])  # gradient summed over the repeated dimensions
    gc.gradcheck(lambda t: t.T.expand(5, 1, 3) * t.T, [m])
    gc.gradcheck(lambda t: t.permute(1, 2, 0).reshape(3, 8).T, [x])


def test_expand_gradient_sums_each_repeat():
    x = gc.tensor([[1.0], [2.0]], dtype="float64", requires_grad=True)
    y = x.expand(3, 2, 4)
    (y * gc.tensor(np.arange(24.0).reshape(3, 2, 4))).sum().backward()
    expected = np.arange(24.0).reshape(3, 2, 4).sum(axis=(0, 2)).reshape(2, 1)
    assert_close(x.grad, expected, atol=0, rtol=0)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape,strides,offset", [
    ((40, 50), (1, 40), 0),             # a transpose (tiled on the CPU)
    ((3, 40, 33), (1, 3, 120), 0),      # NHWC -> NCHW-like, with a batch dimension
    ((7, 9), (60, 2), 5),               # a strided slice
    ((2, 1, 5), (30, 99, 3), 1),        # a length-1 dimension with any stride
    ((4, 6), (0, 1), 0)], ids=str)
def test_strided_scatter_is_the_adjoint_of_strided_copy(shape, strides, offset, device):
    """The copy reads numpy's as_strided view of the same strides; the scatter writes g exactly there, zeros elsewhere
    (its adjoint)."""
    x = _t((4000,), device=device, seed=5)
    if 0 in strides:  # an expand reads elements twice: no scatter for it, only the copy
        expected = np.lib.stride_tricks.as_strided(x.numpy()[offset:], shape, [8 * s for s in strides])
        _same(gc.Tensor(gc._core.strided_copy(x._data, list(shape), list(strides), offset)), expected)
        with pytest.raises(ValueError, match="one place"):
            gc._core.strided_scatter(_t(shape)._data, [4000], list(strides), offset)
        return
    expected = np.lib.stride_tricks.as_strided(x.numpy()[offset:], shape, [8 * s for s in strides])
    copied = gc.Tensor(gc._core.strided_copy(x._data, list(shape), list(strides), offset))
    _same(copied, expected)
    g = _t(shape, device=device, seed=6)
    scattered = gc.Tensor(gc._core.strided_scatter(g._data, [4000], list(strides), offset)).numpy()
    written = np.zeros(4000)
    np.lib.stride_tricks.as_strided(written[offset:], shape, [8 * s for s in strides])[...] = g.numpy()
    np.testing.assert_array_equal(scattered, written)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_large_copies_are_identical_for_any_thread_count(threads):
    """Past the OpenMP threshold the rows are split between threads; the result must not depend on it."""
    x = _t((64, 96, 130), "float32", seed=3)
    reference = np.transpose(x.numpy(), (2, 0, 1))
    previous = gc.get_num_threads()
    try:
        gc.set_num_threads(threads)
        _same(x.permute(2, 0, 1), reference)
        _same(x[:, 1::3, 5:-5], x.numpy()[:, 1::3, 5:-5])
    finally:
        gc.set_num_threads(previous)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
def test_cuda_matches_cpu(dtype):
    def build(device):
        x = _t((2, 3, 4, 5), dtype, device, requires_grad=True)
        m = _t((3, 1, 5), dtype, device, seed=1, requires_grad=True)
        y = x.permute(0, 2, 3, 1).transpose(1, 2).flatten(2) + m.expand(2, 3, 4, 5).transpose(1, 3).flatten(2)
        return y.unsqueeze(0).squeeze(0), {"x": x, "m": m}

    results = cuda_and_cpu_with_grads(build, dtype)
    assert_cuda_matches_cpu(results["cuda"], results["cpu"], dtype)


@pytest.mark.cuda
def test_cuda_copies_are_exact():
    x = _t((5, 7, 9), "float64", seed=2)
    on_gpu = x.to("cuda")
    _same(on_gpu.permute(1, 2, 0), np.transpose(x.numpy(), (1, 2, 0)))
    _same(on_gpu[None, :, 1].expand(3, 5, 9), np.broadcast_to(x.numpy()[None, :, 1], (3, 5, 9)))


def test_more_than_eight_dimensions_that_do_not_merge():
    x = _t((2,) * 9)
    with pytest.raises(ValueError, match="at most 8"):
        x.permute(*reversed(range(9)))
    assert x.permute(1, 0, *range(2, 9)).shape == (2,) * 9  # merges to fewer dimensions: fine


def test_bad_input():
    x = _t((2, 3, 4))
    with pytest.raises(ValueError, match="dims"):
        x.permute(0, 1)
    with pytest.raises(ValueError, match="dims"):
        x.permute(0, 1, 1)
    with pytest.raises(ValueError, match="dims"):
        x.permute(0, 1, 3)
    with pytest.raises(TypeError, match="dims"):
        x.permute(0, 1, 2.0)
    with pytest.raises(ValueError, match="dim1"):
        x.transpose(0, 3)
    with pytest.raises(TypeError, match="dim0"):
        x.transpose("a", 1)
    with pytest.raises(ValueError, match="start_dim"):
        x.flatten(2, 1)
    with pytest.raises(ValueError, match="end_dim"):
        x.flatten(0, 3)
    with pytest.raises(ValueError, match="dim"):
        x.unsqueeze(4)
    with pytest.raises(ValueError, match="dim"):
        x.squeeze(3)
    with pytest.raises(ValueError, match="sizes.*must match"):
        x.expand(2, 5, 4)
    with pytest.raises(ValueError, match="sizes"):
        x.expand(3, 4)
    with pytest.raises(ValueError, match="sizes.*leading"):
        x.expand(-1, 2, 3, 4)
    with pytest.raises(TypeError, match="sizes"):
        x.expand(2, 3, 4.0)
    with pytest.raises(TypeError, match="x"):
        F.permute(np.zeros((2, 3)), (1, 0))
    with pytest.raises(TypeError, match="start_dim"):
        gc.nn.Flatten(start_dim=1.5)
