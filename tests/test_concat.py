"""cat / stack / split / unbind: forward against numpy, gradients by float64 finite differences, CUDA against CPU,
bad input."""
import numpy as np
import pytest

import gradcore as gc
from gradcore import functional as F
from tolerance import DEVICES, DTYPES, assert_close, assert_cuda_matches_cpu


def _t(shape, seed, dtype="float64", device="cpu", requires_grad=False):
    values = np.random.default_rng(seed).standard_normal(shape)
    return gc.tensor(values, dtype=dtype, device=device, requires_grad=requires_grad)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [0, 1, 3, -1])
def test_cat_and_split_match_numpy(device, dtype, dim):
    shapes = [(2, 3, 4, 5), (2, 3, 4, 5), (2, 3, 4, 5)]
    pieces = [_t(s, k, dtype, device) for k, s in enumerate(shapes)]
    joined = F.cat(pieces, dim=dim)
    expected = np.concatenate([p.numpy() for p in pieces], axis=dim)
    np.testing.assert_array_equal(joined.numpy(), expected)  # pure data movement: exact
    sizes = [1, 0, 3 * shapes[0][dim] - 1]
    for got, want in zip(F.split(joined, sizes, dim=dim), np.split(expected, np.cumsum(sizes)[:-1], axis=dim)):
        np.testing.assert_array_equal(got.numpy(), want)


@pytest.mark.parametrize("device", DEVICES)
def test_cat_of_unequal_lengths_and_split_by_size(device):
    a, b = _t((2, 1, 3), 0, device=device), _t((2, 4, 3), 1, device=device)
    joined = F.cat([a, b], dim=1)
    np.testing.assert_array_equal(joined.numpy(), np.concatenate([a.numpy(), b.numpy()], axis=1))
    pieces = F.split(joined, 2, dim=1)
    assert [p.shape for p in pieces] == [(2, 2, 3), (2, 2, 3), (2, 1, 3)]
    np.testing.assert_array_equal(pieces[2].numpy(), b.numpy()[:, 3:])


@pytest.mark.parametrize("dim", [0, 1, 2])
def test_stack_and_unbind_match_numpy(dim):
    pieces = [_t((3, 4), k) for k in range(5)]
    stacked = F.stack(pieces, dim=dim)
    expected = np.stack([p.numpy() for p in pieces], axis=dim)
    np.testing.assert_array_equal(stacked.numpy(), expected)
    for k, piece in enumerate(F.unbind(stacked, dim=dim)):
        np.testing.assert_array_equal(piece.numpy(), np.take(expected, k, axis=dim))


def test_gradients_by_finite_differences():
    a = _t((2, 3, 2), 0, requires_grad=True)
    b = _t((2, 1, 2), 1, requires_grad=True)
    gc.gradcheck(lambda a, b: F.cat([a, b, a], dim=1), [a, b])
    gc.gradcheck(lambda a, b: F.split(F.cat([a, b], dim=1), [1, 3], dim=1), [a, b])
    gc.gradcheck(lambda a: F.stack([a, a * 2.0], dim=3), [a])
    # Only some slices used: the unused ones contribute zero gradient.
    gc.gradcheck(lambda a: F.unbind(a, dim=1)[2] * 3.0, [a])


def test_gradient_reaches_only_inputs_that_need_it():
    a = _t((2, 3), 0, requires_grad=True)
    b = _t((2, 3), 1)
    F.cat([a, b], dim=0).sum().backward()
    assert_close(a.grad, np.ones((2, 3)), atol=0, rtol=0)
    assert b.grad is None


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
def test_cuda_matches_cpu(dtype):
    pieces = [_t((2, k + 1, 5, 3), k, dtype) for k in range(3)]
    on_gpu = [p.to("cuda").requires_grad_(True) for p in pieces]
    on_cpu = [p.detach().requires_grad_(True) for p in pieces]
    seed = _t((2, 6, 5, 3), 9, dtype)
    for ps, device in ((on_cpu, "cpu"), (on_gpu, "cuda")):
        out = F.unbind(F.cat(ps, dim=1), dim=2)
        loss = sum((o * F.unbind(seed.to(device), dim=2)[k]).sum() for k, o in enumerate(out))
        loss.backward()
    assert_cuda_matches_cpu([g.grad for g in on_gpu], [c.grad for c in on_cpu], dtype, name="grads")


def test_bad_input():
    a, b = _t((2, 3), 0), _t((3, 3), 1)
    with pytest.raises(ValueError, match="tensors\\[1\\]"):
        F.cat([a, b], dim=1)
    with pytest.raises(TypeError, match="tensors\\[1\\]"):
        F.cat([a, a.float()], dim=0)
    with pytest.raises(ValueError, match="dim"):
        F.cat([a, a], dim=2)
    with pytest.raises(TypeError, match="tensors"):
        F.cat(a, dim=0)
    with pytest.raises(ValueError, match="tensors"):
        F.cat([], dim=0)
    with pytest.raises(TypeError, match="tensors\\[1\\]"):
        F.stack([a, np.zeros((2, 3))])
    with pytest.raises(ValueError, match="tensors\\[1\\]"):
        F.stack([a, b])
    with pytest.raises(ValueError, match="split_size_or_sections"):
        F.split(a, [1, 1], dim=1)
    with pytest.raises(ValueError, match="split_size_or_sections"):
        F.split(a, 0, dim=1)
    with pytest.raises(TypeError, match="x"):
        F.unbind([a], dim=0)
