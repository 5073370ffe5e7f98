"""mse_loss and binary cross-entropy (probabilities and logits): forward against numpy for every reduction,
stability at extreme inputs, gradients by gradcheck, and argument errors."""
import numpy as np
import pytest

import gradcore
import gradcore.functional as F
from reference import elementwise as ref_ew
from reference import losses as ref
from tolerance import DEVICES, DTYPES, assert_close, assert_cuda_matches_cpu, forward_tol

REDUCTIONS = ["mean", "sum", "none"]


def _pair(shape, dtype, device, seed, kind):
    rng = np.random.default_rng(seed)
    if kind == "probabilities":
        x = rng.uniform(0.05, 0.95, shape)
    else:
        x = rng.standard_normal(shape) * 2.0
    t = rng.uniform(0.0, 1.0, shape)  # soft targets: the losses are defined for any t in [0, 1]
    t.flat[::3] = np.round(t.flat[::3])
    make = lambda v: gradcore.tensor(v, dtype=dtype, device=device)  # noqa: E731
    return make(x), make(t)


LOSSES = {
    "mse_loss": (F.mse_loss, ref.mse_loss, "values"),
    "binary_cross_entropy": (F.binary_cross_entropy, ref.binary_cross_entropy, "probabilities"),
    "binary_cross_entropy_with_logits": (F.binary_cross_entropy_with_logits, ref.binary_cross_entropy_with_logits,
                                         "values"),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("loss", list(LOSSES))
def test_forward_matches_numpy(loss, reduction, dtype, device):
    ours, reference, kind = LOSSES[loss]
    x, t = _pair((4, 6), dtype, device, 0, kind)
    out = ours(x, t, reduction=reduction)
    expected = reference(x.numpy().astype(np.float64), t.numpy().astype(np.float64), reduction)
    assert out.shape == np.shape(expected) and out.dtype == dtype and out.device == x.device
    assert_close(out, expected, **forward_tol(dtype), name=f"{loss} {reduction}")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("loss", list(LOSSES))
def test_gradcheck_input(loss, reduction, device):
    ours, _, kind = LOSSES[loss]
    x, t = _pair((3, 4), "float64", device, 1, kind)
    x.requires_grad_()
    assert gradcore.gradcheck(lambda a: ours(a, t, reduction=reduction), [x])


@pytest.mark.parametrize("device", DEVICES)
def test_mse_gradient_reaches_the_target(device):
    x, t = _pair((3, 4), "float64", device, 2, "values")
    x.requires_grad_()
    t.requires_grad_()
    assert gradcore.gradcheck(F.mse_loss, [x, t])
    F.mse_loss(x, t, reduction="sum").backward()
    assert_close(t.grad, -2 * (x.numpy() - t.numpy()), atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_with_logits_is_stable_for_huge_logits(dtype, device):
    z_np = np.array([-1000.0, -100.0, -30.0, -1.0, 0.0, 1.0, 30.0, 100.0, 1000.0] * 2)
    t_np = np.array([0.0] * 9 + [1.0] * 9)
    z = gradcore.tensor(z_np, dtype=dtype, device=device, requires_grad=True)
    t = gradcore.tensor(t_np, dtype=dtype, device=device)
    per_element = F.binary_cross_entropy_with_logits(z, t, reduction="none")
    assert np.all(np.isfinite(per_element.numpy()))
    # A logit of 100 on the wrong side costs ~100, not inf.
    assert_close(per_element, ref.binary_cross_entropy_with_logits(z_np, t_np, "none"), **forward_tol(dtype))
    F.binary_cross_entropy_with_logits(z, t, reduction="sum").backward()
    assert np.all(np.isfinite(z.grad.numpy()))
    assert_close(z.grad, ref_ew.sigmoid(z_np) - t_np, **forward_tol(dtype), name="d/dz")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_clamps_its_logs_at_saturated_probabilities(dtype, device):
    p_np = np.array([0.0, 1.0, 0.0, 1.0, 1e-30, 0.5])
    t_np = np.array([0.0, 1.0, 1.0, 0.0, 1.0, 0.5])
    p = gradcore.tensor(p_np, dtype=dtype, device=device)
    out = F.binary_cross_entropy(p, gradcore.tensor(t_np, dtype=dtype, device=device), reduction="none")
    assert np.all(np.isfinite(out.numpy()))
    assert_close(out, ref.binary_cross_entropy(p_np.astype(dtype), t_np, "none"), **forward_tol(dtype))
    assert out.numpy()[2] == pytest.approx(100.0)  # log 0 is clamped at -100 (PyTorch's convention)


@pytest.mark.parametrize("loss", list(LOSSES))
def test_argument_errors(loss):
    ours = LOSSES[loss][0]
    x = gradcore.full((2, 3), 0.5)
    with pytest.raises(ValueError, match=r"target must have input's shape \(2, 3\), got \(3,\)"):
        ours(x, gradcore.full((3,), 0.5))
    with pytest.raises(TypeError, match="target must have input's dtype float32, got float64"):
        ours(x, gradcore.full((2, 3), 0.5, dtype="float64"))
    with pytest.raises(ValueError, match="reduction must be one of"):
        ours(x, gradcore.full((2, 3), 0.5), reduction="avg")
    with pytest.raises(TypeError, match="target: expected a gradcore.Tensor"):
        ours(x, np.full((2, 3), 0.5))
    with pytest.raises(TypeError, match="input: expected a gradcore.Tensor"):
        ours([0.5], x)


@pytest.mark.parametrize("loss", ["binary_cross_entropy", "binary_cross_entropy_with_logits"])
def test_bce_target_must_not_require_grad(loss):
    x = gradcore.full((2,), 0.5, requires_grad=True)
    with pytest.raises(ValueError, match="target must not require grad"):
        LOSSES[loss][0](x, gradcore.full((2,), 0.5, requires_grad=True))


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss", list(LOSSES))
def test_cuda_matches_cpu(loss, dtype):
    ours, _, kind = LOSSES[loss]
    xc, tc = _pair((5, 7), dtype, "cpu", 3, kind)
    xg, tg = xc.to("cuda").requires_grad_(), tc.to("cuda")
    xc.requires_grad_()
    lc, lg = ours(xc, tc), ours(xg, tg)
    assert_cuda_matches_cpu(lg, lc, dtype, name="loss")
    lc.backward()
    lg.backward()
    assert_cuda_matches_cpu(xg.grad, xc.grad, dtype, name="grad")
