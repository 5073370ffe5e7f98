"""dropout and dropout2d: the mask comes from the Generator (same seed, same mask, on every device), kept elements
are scaled by 1 / (1 - p), the gradient goes through the same mask, eval mode and p = 0 are the identity, p = 1
gives zeros, dropout2d zeroes whole channels; the modules follow train()/eval(); argument errors."""
import numpy as np
import pytest

import gradcore
import gradcore.functional as F
from gradcore import nn
from tolerance import DEVICES, DTYPES, assert_close, assert_cuda_matches_cpu


def _x(shape, dtype="float32", device="cpu", requires_grad=False):
    x = np.random.default_rng(0).uniform(1.0, 2.0, shape)  # no zeros, so a zero output means dropped
    return gradcore.tensor(x, dtype=dtype, device=device, requires_grad=requires_grad)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_kept_elements_are_scaled_and_the_mask_follows_the_numpy_draw(p, dtype, device):
    x = _x((20, 30), dtype, device)
    y = F.dropout(x, p, generator=gradcore.Generator(7)).numpy()
    keep = np.random.default_rng(7).random((20, 30)) >= p
    expected = np.where(keep, x.numpy().astype(np.float64) / (1 - p), 0.0)
    assert_close(y, expected, atol=1e-6 if dtype == "float32" else 1e-14, rtol=1e-6 if dtype == "float32" else 1e-14)


def test_drop_rate_is_close_to_p():
    y = F.dropout(gradcore.ones(200, 500), 0.3, generator=gradcore.Generator(1)).numpy()
    assert abs((y == 0).mean() - 0.3) < 0.01
    assert abs(y.mean() - 1.0) < 0.02  # the 1 / (1 - p) scale keeps the expectation


@pytest.mark.parametrize("device", DEVICES)
def test_gradient_uses_the_same_mask(device):
    x = _x((6, 7), "float64", device, requires_grad=True)
    y = F.dropout(x, 0.4, generator=gradcore.Generator(3))
    y.sum().backward()
    keep = np.random.default_rng(3).random((6, 7)) >= 0.4
    assert np.array_equal(x.grad.numpy(), np.where(keep, 1 / 0.6, 0.0))
    assert np.array_equal(y.numpy() == 0, ~keep)


def test_gradcheck_with_a_fixed_mask():
    x = _x((3, 4), "float64", requires_grad=True)
    assert gradcore.gradcheck(lambda a: F.dropout(a, 0.5, generator=gradcore.Generator(5)), [x])
    assert gradcore.gradcheck(lambda a: F.dropout2d(a, 0.5, generator=gradcore.Generator(5)),
                              [_x((2, 3, 2, 2), "float64", requires_grad=True)])


def test_same_seed_same_mask_and_the_default_generator_is_seeded_by_manual_seed():
    x = _x((10, 10))
    a = F.dropout(x, 0.5, generator=gradcore.Generator(11)).numpy()
    b = F.dropout(x, 0.5, generator=gradcore.Generator(11)).numpy()
    assert np.array_equal(a, b)
    gradcore.manual_seed(11)
    c = F.dropout(x, 0.5).numpy()
    assert np.array_equal(a, c)
    assert not np.array_equal(c, F.dropout(x, 0.5).numpy())  # the generator moved on


@pytest.mark.parametrize("device", DEVICES)
def test_identity_cases_and_p_one(device):
    x = _x((4, 5), device=device, requires_grad=True)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    assert F.dropout2d(x.reshape(1, 4, 5, 1), 0.7, training=False).shape == (1, 4, 5, 1)
    y = F.dropout(x, 1.0)
    assert np.array_equal(y.numpy(), np.zeros((4, 5)))
    y.sum().backward()
    assert np.array_equal(x.grad.numpy(), np.zeros((4, 5)))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", [(4, 6, 3, 5), (6, 3, 5)])
def test_dropout2d_zeroes_whole_channels(shape, device):
    x = _x(shape, device=device)
    y = F.dropout2d(x, 0.5, generator=gradcore.Generator(2)).numpy()
    planes = y.reshape(-1, shape[-2] * shape[-1])
    dropped = np.all(planes == 0, axis=1)
    kept = np.all(planes != 0, axis=1)
    assert np.all(dropped | kept) and dropped.any() and kept.any()
    expected_keep = np.random.default_rng(2).random(shape[:-2] + (1, 1)).reshape(-1) >= 0.5
    assert np.array_equal(kept, expected_keep)
    assert_close(planes[kept], x.numpy().reshape(planes.shape)[kept] * 2.0)


def test_modules_respect_train_and_eval():
    x = _x((8, 8))
    drop = nn.Dropout(0.5, generator=gradcore.Generator(4))
    y = drop(x).numpy()
    assert (y == 0).any()
    assert np.array_equal(y, F.dropout(x, 0.5, generator=gradcore.Generator(4)).numpy())
    drop.eval()
    assert drop(x) is x
    model = nn.Sequential(nn.Dropout2d(0.5), nn.Dropout(0.2))
    model.eval()
    assert model(x.reshape(1, 8, 8, 1)).numpy().reshape(8, 8).tolist() == x.numpy().tolist()
    model.train()
    assert not np.array_equal(model(x.reshape(1, 8, 8, 1)).numpy().reshape(8, 8), x.numpy())
    assert "p=0.5" in repr(drop)


def test_argument_errors():
    x = _x((2, 3))
    for p, err in [(-0.1, ValueError), (1.5, ValueError), (float("nan"), ValueError), ("0.5", TypeError),
                   (None, TypeError)]:
        with pytest.raises(err, match="p"):
            F.dropout(x, p)
        with pytest.raises(err, match="p"):
            nn.Dropout(p)
    with pytest.raises(TypeError, match="generator"):
        F.dropout(x, 0.5, generator=3)
    with pytest.raises(TypeError, match="generator"):
        F.dropout(x, 0.5, training=False, generator="g")
    with pytest.raises(ValueError, match=r"input: dropout2d expected a 3-d"):
        F.dropout2d(x, 0.5)
    with pytest.raises(TypeError, match="input: expected a gradcore.Tensor"):
        F.dropout(np.ones(3), 0.5)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
def test_cuda_and_cpu_draw_the_same_mask(dtype):
    results = {}
    for device in ("cpu", "cuda"):
        x = _x((3, 4, 5, 6), dtype, device, requires_grad=True)
        y = F.dropout(x, 0.3, generator=gradcore.Generator(9)) + F.dropout2d(x, 0.6, generator=gradcore.Generator(9))
        y.sum().backward()
        results[device] = {"y": y.numpy(), "dx": x.grad.numpy()}
    assert np.array_equal(results["cuda"]["y"] == 0, results["cpu"]["y"] == 0)
    assert_cuda_matches_cpu(results["cuda"], results["cpu"], dtype)
