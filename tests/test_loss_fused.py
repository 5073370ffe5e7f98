"""mse_loss, l1_loss, smooth_l1_loss and huber_loss are one autograd node each, with the mean or sum inside it and a
one-pass backward (the reduction's gradient broadcast in the kernel, csrc/regression_loss.h). They give the same bits
as the ops they replace: sub, mul and mean for mse_loss ((x - t) * (x - t)); the per-element loss then mean or sum
for the others, forward and gradients, for every reduction, dtype and thread count."""
import numpy as np
import pytest

import gradcore
import gradcore.functional as F
from gradcore import _core
from gradcore.ops import reduce
from gradcore.ops.losses import _RegressionLoss
from tolerance import DEVICES, DTYPES

REDUCTIONS = ["mean", "sum", "none"]
R = _core.RegressionLoss


def _composed_mse(x, t, reduction):
    d = x - t
    loss = d * d
    return {"mean": reduce.mean, "sum": reduce.sum, "none": lambda v: v}[reduction](loss)


def _composed_regression(kind, param):
    """The loss as it was: the per-element node, then reduce.mean / reduce.sum as a node of its own."""
    def loss(x, t, reduction):
        per_element = _RegressionLoss.apply(x, t, kind, param, None)
        return {"mean": reduce.mean, "sum": reduce.sum, "none": lambda v: v}[reduction](per_element)
    return loss


LOSSES = {
    "mse_loss": (F.mse_loss, _composed_mse),
    "l1_loss": (F.l1_loss, _composed_regression(R.l1, 0.0)),
    "smooth_l1_loss": (lambda x, t, reduction: F.smooth_l1_loss(x, t, reduction, beta=0.7),
                       _composed_regression(R.smooth_l1, 0.7)),
    "huber_loss": (lambda x, t, reduction: F.huber_loss(x, t, reduction, delta=0.7), _composed_regression(R.huber, 0.7)),
}


def _leaves(shape, dtype, device, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * scale
    t = rng.standard_normal(shape) * scale
    t.flat[::5] = x.flat[::5]  # d = 0 exactly: the sign and kink cases
    make = lambda v: gradcore.tensor(v, dtype=dtype, device=device, requires_grad=True)  # noqa: E731
    return make(x), make(t)


def _run(fn, x, t, reduction, seed_grad=None):
    x.grad = t.grad = None
    out = fn(x, t, reduction)
    out.backward(seed_grad)
    return out.numpy().copy(), x.grad.numpy().copy(), t.grad.numpy().copy()


def _assert_same_bits(a, b):
    for u, v in zip(a, b):
        assert u.dtype == v.dtype and u.shape == v.shape
        assert u.tobytes() == v.tobytes()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("loss", list(LOSSES))
def test_the_same_bits_as_the_composed_ops(loss, reduction, dtype, device):
    fused, composed = LOSSES[loss]
    x, t = _leaves((25, 1, 28, 28), dtype, device, 0)
    seed = None if reduction != "none" else gradcore.randn(25, 1, 28, 28, dtype=dtype, device=device)
    _assert_same_bits(_run(fused, x, t, reduction, seed), _run(composed, x, t, reduction, seed))


@pytest.mark.parametrize("dtype", DTYPES)
def test_mse_gradient_is_twice_the_rounded_product_where_it_is_subnormal(dtype):
    # g d below the smallest normal number: 2 round(g d) (the composed g d + g d) and round(2 g d) differ there.
    tiny = np.finfo(dtype).tiny
    x, t = _leaves((64,), dtype, "cpu", 1)
    seed = gradcore.tensor(np.full(64, tiny * 0.37), dtype=dtype)
    fused = _run(F.mse_loss, x, t, "none", seed)
    _assert_same_bits(fused, _run(_composed_mse, x, t, "none", seed))
    d = x.numpy() - t.numpy()
    assert np.array_equal(fused[1], 2 * (seed.numpy() * d))


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("loss", list(LOSSES))
def test_bitwise_the_same_on_1_2_and_3_threads(loss, threads):
    fused, _ = LOSSES[loss]
    x, t = _leaves((64, 3, 32, 32), "float32", "cpu", 2)  # 196k elements: over the kernels' parallel threshold
    before = gradcore.get_num_threads()
    try:
        gradcore.set_num_threads(1)
        expected = _run(fused, x, t, "mean")
        gradcore.set_num_threads(threads)
        _assert_same_bits(_run(fused, x, t, "mean"), expected)
    finally:
        gradcore.set_num_threads(before)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("loss", list(LOSSES))
def test_gradcheck_input_and_target(loss, reduction):
    fused, _ = LOSSES[loss]
    x, t = _leaves((3, 5), "float64", "cpu", 3)
    assert gradcore.gradcheck(lambda a, b: fused(a, b, reduction), [x, t])


def test_mse_loss_is_one_node_whose_inputs_are_input_and_target():
    x, t = _leaves((4, 3), "float32", "cpu", 4)
    loss = F.mse_loss(x, t)
    assert isinstance(loss._node, _RegressionLoss)
    assert loss._node.inputs[0] is x and loss._node.inputs[1] is t


def test_only_the_wanted_gradients_are_computed():
    x, t = _leaves((4, 3), "float32", "cpu", 5)
    t.requires_grad_(False)
    F.mse_loss(x, t).backward()
    assert t.grad is None and x.grad is not None
    x.requires_grad_(False)
    t.requires_grad_(True)
    F.mse_loss(x, t).backward()
    np.testing.assert_allclose(t.grad.numpy(), -2 * (x.numpy() - t.numpy()) / 12, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("shape", [(), (1,), (0,), (1, 1)])
def test_tiny_and_empty_inputs(shape):
    x, t = _leaves(shape, "float64", "cpu", 6)
    for reduction in ("sum", "none") + (("mean",) if int(np.prod(shape)) else ()):
        _assert_same_bits(_run(F.mse_loss, x, t, reduction, None if reduction != "none" else gradcore.ones_like(x)),
                          _run(_composed_mse, x, t, reduction, None if reduction != "none" else gradcore.ones_like(x)))
    if int(np.prod(shape)) == 0:
        with pytest.raises(ValueError, match="hold no elements"):
            F.mse_loss(x, t)


def test_kernel_arguments_are_checked():
    x = gradcore.randn(3, 4)._data
    t = gradcore.randn(3, 4)._data
    with pytest.raises(ValueError, match="grad_output"):
        _core.regression_loss_backward(gradcore.randn(2, 4)._data, x, t, R.squared, 0.0)
    with pytest.raises(ValueError, match="scale"):
        _core.regression_loss_backward(gradcore.randn(3, 4)._data, x, t, R.squared, 0.0, 0.5)
    with pytest.raises(TypeError, match="grad_output"):
        _core.regression_loss_backward(gradcore.randn(1, dtype="float64")._data, x, t, R.squared, 0.0, 0.5)
