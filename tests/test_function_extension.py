"""A user's own op: a gradcore.Function subclass spelled as in PyTorch (static forward(ctx, ...) and
backward(ctx, ...) over Tensors, called through apply), checked against numpy and by gradcheck, and the
contract's edges: no graph inside forward, None gradients, several outputs, wrong gradients rejected clearly."""
import numpy as np
import pytest

import gradcore
import gradcore.functional as F
from tolerance import DEVICES, DTYPES, assert_close, forward_tol


class Softsign(gradcore.Function):
    """The worked example of gradcore.Function's docstring: y = scale * x / (1 + |x|), dy/dx = scale / (1 + |x|)^2."""

    @staticmethod
    def forward(ctx, x, scale=1.0):
        ctx.save_for_backward(x)
        ctx.scale = scale
        return scale * x / (1 + x.abs())

    @staticmethod
    def backward(ctx, grad_y):
        (x,) = ctx.saved_tensors
        grad_x = grad_y * ctx.scale / (1 + x.abs()) ** 2 if ctx.needs_input_grad[0] else None
        return grad_x, None


class WrongSoftsign(Softsign):
    """The same forward with a planted bug in backward: the square is missing."""

    @staticmethod
    def backward(ctx, grad_y):
        (x,) = ctx.saved_tensors
        return grad_y * ctx.scale / (1 + x.abs()), None


def _randn(shape, seed, dtype="float64", device="cpu", requires_grad=True):
    values = np.random.default_rng(seed).standard_normal(shape)
    return gradcore.tensor(values, dtype=dtype, device=device, requires_grad=requires_grad)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("device", DEVICES)
def test_worked_example_matches_numpy(device, dtype):
    x = _randn((3, 5), 0, dtype=dtype, device=device)
    y = Softsign.apply(x, 2.0)
    xn = x.numpy().astype(np.float64)
    assert y.dtype == dtype and y.device == x.device and y.requires_grad and not y.is_leaf
    assert_close(y, 2.0 * xn / (1 + np.abs(xn)), **forward_tol(dtype))
    v = np.random.default_rng(1).standard_normal((3, 5))
    y.backward(gradcore.tensor(v, dtype=dtype, device=device))
    assert_close(x.grad, v * 2.0 / (1 + np.abs(xn)) ** 2, **forward_tol(dtype))


@pytest.mark.parametrize("device", DEVICES)
def test_gradcheck_passes_the_right_backward_and_flags_a_wrong_one(device):
    x = _randn((4, 3), 2, device=device)
    assert gradcore.gradcheck(Softsign.apply, [x, 0.5]) is True
    with pytest.raises(gradcore.GradcheckError, match=r"input 0 \(shape \(4, 3\)\)"):
        gradcore.gradcheck(WrongSoftsign.apply, [x, 0.5])


def test_forward_runs_without_recording_a_graph():
    seen = {}

    class Probe(gradcore.Function):
        @staticmethod
        def forward(ctx, x):
            seen["grad_enabled"] = gradcore.is_grad_enabled()
            seen["x_requires_grad"] = x.requires_grad  # the caller's Tensor, as given
            inner = x * 2.0
            seen["inner"] = (inner.requires_grad, inner.is_leaf)
            return inner

        @staticmethod
        def backward(ctx, g):
            seen["backward_grad_enabled"] = gradcore.is_grad_enabled()
            return g * 2.0

    x = _randn((3,), 3)
    y = Probe.apply(x)
    assert seen == {"grad_enabled": False, "x_requires_grad": True, "inner": (False, True)}
    assert y._node is not None and type(y._node) is Probe  # the output is Probe's, not the inner multiply's
    y.sum().backward()
    assert seen["backward_grad_enabled"] is False
    assert_close(x.grad, np.full(3, 2.0), atol=0, rtol=0)
    assert not x.grad.requires_grad and x.grad.is_leaf


def test_no_graph_when_no_input_requires_grad_or_under_no_grad():
    x = _randn((2,), 4, requires_grad=False)
    assert not Softsign.apply(x).requires_grad
    with gradcore.no_grad():
        y = Softsign.apply(_randn((2,), 4))
    assert not y.requires_grad and y.is_leaf


def test_backward_may_use_ops_and_return_none_for_inputs():
    class ScaleBy(gradcore.Function):
        """y = a * b with a Tensor b that gets no gradient (a constant the caller supplies)."""

        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(b)
            return a * b

        @staticmethod
        def backward(ctx, g):
            (b,) = ctx.saved_tensors
            return F.mul(g, b), None

    a, b = _randn((2, 3), 5), _randn((2, 3), 6)
    ScaleBy.apply(a, b).sum().backward()
    assert_close(a.grad, b.numpy(), atol=0, rtol=0)
    assert b.grad is None


def test_needs_input_grad_says_which_gradients_are_wanted():
    seen = []

    class Record(gradcore.Function):
        @staticmethod
        def forward(ctx, a, b, factor):
            seen.append(ctx.needs_input_grad)
            return a * b * factor

        @staticmethod
        def backward(ctx, g):
            return g, g, None

    a, b = _randn((2,), 7), _randn((2,), 8, requires_grad=False)
    Record.apply(a, b, 3.0)
    assert seen == [(True, False, False)]


def test_several_outputs_each_get_a_gradient_zeros_for_an_unused_one():
    class SinCosLike(gradcore.Function):
        """(x^2, 3x): backward receives one gradient per output."""

        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x, x * 3.0

        @staticmethod
        def backward(ctx, g_square, g_triple):
            (x,) = ctx.saved_tensors
            return g_square * 2.0 * x + g_triple * 3.0

    x = _randn((4,), 9)
    square, triple = SinCosLike.apply(x)
    assert square.requires_grad and triple.requires_grad
    square.sum().backward()  # triple unused: its gradient arrives as zeros
    assert_close(x.grad, 2.0 * x.numpy(), atol=1e-12, rtol=0)
    assert gradcore.gradcheck(SinCosLike.apply, [_randn((3,), 10)]) is True


def test_an_input_returned_as_it_is_becomes_an_output_of_the_node():
    class Identity(gradcore.Function):
        @staticmethod
        def forward(ctx, x):
            return x

        @staticmethod
        def backward(ctx, g):
            return g * 1.0

    x = _randn((3,), 11)
    y = Identity.apply(x)
    assert y is not x and x.is_leaf and not y.is_leaf
    (y * y).sum().backward()
    assert_close(x.grad, 2 * x.numpy(), atol=1e-12, rtol=0)


def test_mark_non_differentiable_outputs_get_no_gradient():
    class ValueAndMask(gradcore.Function):
        @staticmethod
        def forward(ctx, x):
            mask = F.relu(x) / (x.abs() + 1e-300)  # 1 where x > 0, else 0
            ctx.mark_non_differentiable(mask)
            ctx.save_for_backward(mask)
            return x * mask, mask

        @staticmethod
        def backward(ctx, g, g_mask):
            (mask,) = ctx.saved_tensors
            return g * mask

    x = gradcore.tensor([-1.0, 2.0, 3.0], dtype="float64", requires_grad=True)
    y, mask = ValueAndMask.apply(x)
    assert y.requires_grad and not mask.requires_grad
    y.sum().backward()
    assert_close(x.grad, [0.0, 1.0, 1.0], atol=1e-12, rtol=0)


def test_a_gradient_of_another_dtype_is_cast_to_the_inputs():
    class HalfPrecisionGrad(gradcore.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2.0

        @staticmethod
        def backward(ctx, g):
            return (g * 2.0).to(dtype="float32")

    x = _randn((3,), 12)
    HalfPrecisionGrad.apply(x).sum().backward()
    assert x.grad.dtype == "float64"
    assert_close(x.grad, np.full(3, 2.0), atol=0, rtol=0)


def test_the_graph_is_freed_after_backward_unless_retained():
    x = _randn((3,), 13)
    y = Softsign.apply(x).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert_close(x.grad, 2 / (1 + np.abs(x.numpy())) ** 2, atol=1e-12, rtol=0)
    with pytest.raises(RuntimeError, match="Softsign: backward through this graph a second time"):
        y.backward()


def test_a_saved_tensor_modified_in_place_raises_at_backward():
    x = _randn((3,), 14)
    y = Softsign.apply(x * 1.0)
    x_used = y._node.saved_tensors[0]
    x_used.fill_(0.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_works_inside_a_module_trained_by_an_optimizer():
    class SoftsignLayer(gradcore.nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = gradcore.nn.Parameter(gradcore.ones(3, dtype="float64"))

        def forward(self, x):
            return Softsign.apply(x * self.weight)

    layer = SoftsignLayer()
    opt = gradcore.optim.SGD(layer.parameters(), lr=0.1)
    x = _randn((3,), 15, requires_grad=False)
    loss0 = F.mse_loss(layer(x), gradcore.zeros(3, dtype="float64"))
    loss0.backward()
    opt.step()
    loss1 = F.mse_loss(layer(x), gradcore.zeros(3, dtype="float64"))
    assert float(loss1) < float(loss0)


# ---- a backward that breaks the contract raises, naming the Function and the position ----------------------------
def _broken(backward, forward=None):
    def default_forward(ctx, a, b, factor):
        return a * b * factor

    return type("Broken", (gradcore.Function,), {
        "forward": staticmethod(forward or default_forward), "backward": staticmethod(backward)})


def _run(fn):
    a, b = _randn((2, 3), 16), _randn((2, 3), 17)
    fn.apply(a, b, 2.0).sum().backward()


def test_wrong_number_of_gradients_raises():
    with pytest.raises(RuntimeError, match=r"Broken.backward returned 2 gradients; expected 3, one per argument"):
        _run(_broken(lambda ctx, g: (g, g)))
    with pytest.raises(RuntimeError, match=r"Broken.backward returned 1 gradient; expected 3"):
        _run(_broken(lambda ctx, g: g))
    _run(_broken(lambda ctx, g: (g, g, None, None)))  # trailing Nones past the arguments are allowed (PyTorch)


def test_wrong_shape_of_a_gradient_raises():
    with pytest.raises(RuntimeError, match=r"Broken.backward: gradient 1: has shape \(3,\); expected \(2, 3\)"):
        _run(_broken(lambda ctx, g: (g, g.sum(axis=0), None)))


def test_a_gradient_that_is_not_a_tensor_raises():
    with pytest.raises(TypeError, match=r"Broken.backward: gradient 0: expected a Tensor or None, got ndarray"):
        _run(_broken(lambda ctx, g: (g.numpy(), g, None)))


def test_a_gradient_for_a_non_tensor_argument_raises():
    with pytest.raises(RuntimeError, match=r"gradient 2: returned a Tensor for argument 2 of forward, which is a "
                                           r"float"):
        _run(_broken(lambda ctx, g: (g, g, g)))


def test_forward_returning_a_non_tensor_raises():
    with pytest.raises(TypeError, match=r"Broken.forward: expected it to return a Tensor or a tuple of Tensors, "
                                        r"got ndarray"):
        _run(_broken(lambda ctx, g: (g, g, None), forward=lambda ctx, a, b, factor: a.numpy()))


def test_save_for_backward_takes_tensors_only():
    def forward(ctx, a, b, factor):
        ctx.save_for_backward(a, factor)
        return a * b

    with pytest.raises(TypeError, match=r"save_for_backward: argument 1: expected a Tensor or None, got float"):
        _run(_broken(lambda ctx, g: (g, g, None), forward=forward))


def test_a_tensor_that_requires_grad_passed_by_keyword_raises():
    x = _randn((2,), 18)
    with pytest.raises(TypeError, match=r"Softsign.apply: argument 'scale' is a Tensor that requires grad"):
        Softsign.apply(x, scale=_randn((2,), 19))
    assert_close(Softsign.apply(x, scale=3.0), 3 * x.numpy() / (1 + np.abs(x.numpy())), atol=1e-12, rtol=0)


def test_the_internal_form_is_unchanged():
    """The ops' own Functions (instance forward over _core Arrays) still take their fast path."""
    from gradcore.ops.elementwise import Unary

    assert not Unary._tensor_api and Softsign._tensor_api and WrongSoftsign._tensor_api
    x = _randn((3,), 20)
    assert gradcore.gradcheck(F.tanh, [x]) is True
