"""l1_loss, smooth_l1_loss and huber_loss: numpy references for every reduction and both dtypes, both sides of
the beta/delta boundary, gradients to input and target by float64 gradcheck, the modules (with MSELoss), CUDA
against CPU, and argument errors."""
import numpy as np
import pytest

import gradcore
import gradcore.functional as F
from gradcore import nn
from reference import losses as ref
from tolerance import DEVICES, DTYPES, assert_close, assert_cuda_matches_cpu, forward_tol

REDUCTIONS = ["mean", "sum", "none"]
LOSSES = {
    "l1": (lambda x, t, r: F.l1_loss(x, t, reduction=r), lambda x, t, r: ref.l1_loss(x, t, r)),
    "smooth_l1": (lambda x, t, r: F.smooth_l1_loss(x, t, reduction=r),
                  lambda x, t, r: ref.smooth_l1_loss(x, t, r)),
    "smooth_l1-beta0.3": (lambda x, t, r: F.smooth_l1_loss(x, t, reduction=r, beta=0.3),
                          lambda x, t, r: ref.smooth_l1_loss(x, t, r, 0.3)),
    "smooth_l1-beta0": (lambda x, t, r: F.smooth_l1_loss(x, t, reduction=r, beta=0.0),
                        lambda x, t, r: ref.smooth_l1_loss(x, t, r, 0.0)),
    "huber": (lambda x, t, r: F.huber_loss(x, t, reduction=r), lambda x, t, r: ref.huber_loss(x, t, r)),
    "huber-delta2.5": (lambda x, t, r: F.huber_loss(x, t, reduction=r, delta=2.5),
                       lambda x, t, r: ref.huber_loss(x, t, r, 2.5)),
}


def _pair(shape, dtype, device, seed, requires_grad=False):
    rng = np.random.default_rng(seed)
    # Differences spread over [-4, 4], none within 1e-3 of 0 or a beta/delta boundary (the kinks).
    d = rng.uniform(-4, 4, shape)
    for kink in (0.0, 0.3, 1.0, 2.5):
        for sign in (1, -1):
            near = np.abs(d - sign * kink) < 1e-2
            d[near] += 0.05
    t = rng.standard_normal(shape)
    make = lambda v: gradcore.tensor(v, dtype=dtype, device=device, requires_grad=requires_grad)  # noqa: E731
    return make(t + d), make(t)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("loss", list(LOSSES))
def test_forward_matches_numpy(loss, reduction, dtype, device):
    ours, reference = LOSSES[loss]
    x, t = _pair((5, 7), dtype, device, 0)
    out = ours(x, t, reduction)
    expected = reference(x.numpy().astype(np.float64), t.numpy().astype(np.float64), reduction)
    assert out.shape == np.shape(expected) and out.dtype == dtype
    assert_close(out, expected, **forward_tol(dtype), name=loss)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("loss", list(LOSSES))
def test_gradcheck_input_and_target(loss, reduction, device):
    x, t = _pair((3, 4), "float64", device, 1, requires_grad=True)
    assert gradcore.gradcheck(lambda a, b: LOSSES[loss][0](a, b, reduction), [x, t])


@pytest.mark.parametrize("device", DEVICES)
def test_quadratic_and_linear_pieces(device):
    x = gradcore.tensor([0.5, -0.5, 3.0, -3.0], dtype="float64", device=device, requires_grad=True)
    t = gradcore.zeros(4, dtype="float64", device=device)
    assert np.allclose(F.smooth_l1_loss(x, t, "none", beta=1.0).numpy(), [0.125, 0.125, 2.5, 2.5])
    assert np.allclose(F.huber_loss(x, t, "none", delta=2.0).numpy(), [0.125, 0.125, 4.0, 4.0])
    F.huber_loss(x, t, "sum", delta=2.0).backward()
    assert np.allclose(x.grad.numpy(), [0.5, -0.5, 2.0, -2.0])
    x.grad = None
    F.l1_loss(x, t, "sum").backward()
    assert np.array_equal(x.grad.numpy(), [1.0, -1.0, 1.0, -1.0])


def test_l1_gradient_is_zero_where_input_equals_target():
    x = gradcore.tensor([1.0, 2.0], requires_grad=True)
    F.l1_loss(x, gradcore.tensor([1.0, 0.0])).backward()
    assert np.array_equal(x.grad.numpy(), [0.0, 0.5])


def test_modules_match_the_functions():
    x, t = _pair((4, 3), "float32", "cpu", 2)
    for module, fn in [(nn.MSELoss(), lambda: F.mse_loss(x, t)), (nn.L1Loss(reduction="sum"), lambda: F.l1_loss(x, t, "sum")),
                       (nn.SmoothL1Loss(beta=0.5), lambda: F.smooth_l1_loss(x, t, beta=0.5)),
                       (nn.HuberLoss(reduction="none", delta=2.0), lambda: F.huber_loss(x, t, "none", 2.0))]:
        assert np.array_equal(module(x, t).numpy(), fn().numpy())
    assert "reduction='mean'" in repr(nn.MSELoss())


def test_argument_errors():
    x = gradcore.zeros(2, 3)
    for fn in (F.l1_loss, F.smooth_l1_loss, F.huber_loss):
        with pytest.raises(ValueError, match=r"target must have input's shape"):
            fn(x, gradcore.zeros(3))
        with pytest.raises(TypeError, match="target must have input's dtype"):
            fn(x, gradcore.zeros(2, 3, dtype="float64"))
        with pytest.raises(ValueError, match="reduction must be one of"):
            fn(x, x, reduction="avg")
        with pytest.raises(TypeError, match="input: expected a gradcore.Tensor"):
            fn([1.0], x)
    with pytest.raises(ValueError, match="beta"):
        F.smooth_l1_loss(x, x, beta=-1.0)
    with pytest.raises(ValueError, match="delta"):
        F.huber_loss(x, x, delta=0.0)
    with pytest.raises(TypeError, match="delta"):
        F.huber_loss(x, x, delta="1")
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss(reduction="avg")
    with pytest.raises(ValueError, match="beta"):
        nn.SmoothL1Loss(beta=float("nan"))


def test_matches_torch():
    torch = pytest.importorskip("torch")
    x, t = _pair((6, 5), "float64", "cpu", 3)
    tx, tt = torch.tensor(x.numpy()), torch.tensor(t.numpy())
    for r in REDUCTIONS:
        assert_close(F.l1_loss(x, t, r), torch.nn.functional.l1_loss(tx, tt, reduction=r).numpy(), 1e-12, 1e-12)
        assert_close(F.smooth_l1_loss(x, t, r, 0.7), torch.nn.functional.smooth_l1_loss(tx, tt, reduction=r,
                                                                                         beta=0.7).numpy(), 1e-12, 1e-12)
        assert_close(F.huber_loss(x, t, r, 1.5), torch.nn.functional.huber_loss(tx, tt, reduction=r,
                                                                                delta=1.5).numpy(), 1e-12, 1e-12)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss", list(LOSSES))
def test_cuda_matches_cpu(loss, dtype):
    results = {}
    for device in ("cpu", "cuda"):
        x, t = _pair((33, 17), dtype, device, 4, requires_grad=True)
        y = LOSSES[loss][0](x, t, "sum")
        y.backward()
        results[device] = {"y": y.numpy(), "dx": x.grad.numpy(), "dt": t.grad.numpy()}
    assert_cuda_matches_cpu(results["cuda"], results["cpu"], dtype, name=loss)
