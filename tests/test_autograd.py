"""The tape: backward, accumulation, gradcore.grad, value_and_grad, no_grad, networks built apart and chained,
and the errors for misuse."""
import numpy as np
import pytest

import gradcore
import gradcore.functional as F
from gradcore import nn
from tolerance import DEVICES, assert_close


def _randn(shape, device, seed, requires_grad=True):
    values = np.random.default_rng(seed).standard_normal(shape)
    return gradcore.tensor(values, dtype="float64", device=device, requires_grad=requires_grad)


@pytest.mark.parametrize("device", DEVICES)
def test_backward_fills_leaf_gradients(device):
    x, w = _randn((3, 4), device, 0), _randn((4,), device, 1)
    loss = (x * w).sum()
    loss.backward()
    assert_close(x.grad, np.broadcast_to(w.numpy(), (3, 4)), atol=0, rtol=0, name="x.grad")
    assert_close(w.grad, x.numpy().sum(axis=0), atol=1e-12, rtol=1e-12, name="w.grad")
    assert x.grad.device == x.device and x.grad.dtype == "float64" and not x.grad.requires_grad


@pytest.mark.parametrize("device", DEVICES)
def test_grad_accumulates_across_backward_calls(device):
    x = _randn((5,), device, 2)
    for _ in range(2):
        (x * x).sum().backward()
    assert_close(x.grad, 4 * x.numpy(), atol=1e-12, rtol=1e-12)
    x.grad = None
    (x * 3.0).sum().backward()
    assert_close(x.grad, np.full(5, 3.0), atol=0, rtol=0)  # a fresh buffer starts at zero


@pytest.mark.parametrize("device", DEVICES)
def test_a_tensor_used_twice_accumulates(device):
    x = _randn((2, 3), device, 3)
    (x * x + x + x.exp()).sum().backward()
    assert_close(x.grad, 2 * x.numpy() + 1 + np.exp(x.numpy()), atol=1e-12, rtol=1e-12)
    # A diamond: a feeds b and c, both feed the output.
    y = _randn((4,), device, 4)
    a = y * 2.0
    b, c = a.tanh(), a * a
    (b + c).sum().backward()
    t = np.tanh(2 * y.numpy())
    assert_close(y.grad, 2 * (1 - t ** 2) + 8 * y.numpy(), atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
def test_grad_returns_gradients_without_touching_dot_grad(device):
    x, y, unused = _randn((3,), device, 5), _randn((3,), device, 6), _randn((3,), device, 7)
    out = (x * y).sum()
    gx, gy = gradcore.grad(out, [x, y], retain_graph=True)
    assert_close(gx, y, atol=0, rtol=0)
    assert_close(gy, x, atol=0, rtol=0)
    assert x.grad is None and y.grad is None and not gx.requires_grad
    assert_close(gradcore.grad(out, x, retain_graph=True), y, atol=0, rtol=0)  # a single input: a single Tensor
    with pytest.raises(RuntimeError, match=r"inputs\[1\].*allow_unused=True"):
        gradcore.grad(out, [x, unused], retain_graph=True)
    gx, gu = gradcore.grad(out, [x, unused], allow_unused=True)
    assert gu is None
    assert_close(gx, y, atol=0, rtol=0)


@pytest.mark.parametrize("device", DEVICES)
def test_grad_with_grad_outputs_and_intermediate_inputs(device):
    x = _randn((2, 3), device, 8)
    h = x * 3.0
    out = h * h
    v = _randn((2, 3), device, 9, requires_grad=False)
    gh, gx = gradcore.grad(out, [h, x], grad_outputs=v)
    assert_close(gh, 2 * h.numpy() * v.numpy(), atol=1e-12, rtol=1e-12, name="d/dh")
    assert_close(gx, 6 * h.numpy() * v.numpy(), atol=1e-12, rtol=1e-12, name="d/dx")


@pytest.mark.parametrize("device", DEVICES)
def test_value_and_grad(device):
    x, w = _randn((3,), device, 10, requires_grad=False), _randn((3,), device, 11, requires_grad=False)

    def loss(w, x):
        return (w * x).sum()

    value, gw = gradcore.value_and_grad(loss)(w, x)
    assert_close(value, np.sum(w.numpy() * x.numpy()), atol=1e-12, rtol=1e-12)
    assert not value.requires_grad
    assert_close(gw, x, atol=0, rtol=0)
    value, (gw, gx) = gradcore.value_and_grad(loss, argnums=(0, 1))(w, x)
    assert_close(gw, x, atol=0, rtol=0)
    assert_close(gx, w, atol=0, rtol=0)
    assert w.grad is None and not w.requires_grad  # the caller's tensors are left as they were


@pytest.mark.parametrize("device", DEVICES)
def test_value_and_grad_over_parameter_lists_with_aux(device):
    params = [nn.Parameter(_randn((4,), device, 12)), nn.Parameter(_randn((4,), device, 13))]
    x = _randn((4,), device, 14, requires_grad=False)

    def loss(params, x):
        w, b = params
        y = x * w + b
        return (y * y).mean(), y

    (value, aux), grads = gradcore.value_and_grad(loss, has_aux=True)(params, x)
    w, b = (p.numpy() for p in params)
    y = x.numpy() * w + b
    assert isinstance(grads, list) and len(grads) == 2
    assert_close(value, np.mean(y * y), atol=1e-12, rtol=1e-12)
    assert_close(aux, y, atol=1e-12, rtol=1e-12)
    assert_close(grads[0], 2 * y * x.numpy() / 4, atol=1e-12, rtol=1e-12, name="dw")
    assert_close(grads[1], 2 * y / 4, atol=1e-12, rtol=1e-12, name="db")
    assert all(p.grad is None for p in params)
    # A dict of parameters keeps its keys; a parameter the loss ignores gets zeros.
    named = {"w": params[0], "unused": params[1]}
    _, g = gradcore.value_and_grad(lambda p: (p["w"] * 2.0).sum())(named)
    assert set(g) == {"w", "unused"}
    assert_close(g["unused"], np.zeros(4), atol=0, rtol=0)
    with pytest.raises(TypeError, match="fn: expected a scalar"):
        gradcore.value_and_grad(lambda p: p[0] * 2.0)(params)


def test_no_grad_context_and_decorator():
    x = _randn((3,), "cpu", 15)
    with gradcore.no_grad():
        y = x * 2.0
        assert not gradcore.is_grad_enabled()
        with gradcore.enable_grad():
            z = x * 2.0
    assert gradcore.is_grad_enabled()
    assert not y.requires_grad and y.is_leaf and z.requires_grad

    @gradcore.no_grad()
    def recurse(n):
        assert not gradcore.is_grad_enabled()
        return x * 2.0 if n == 0 else recurse(n - 1)

    assert not recurse(3).requires_grad
    assert gradcore.is_grad_enabled()  # restored even after nested calls of the decorated function

    @gradcore.no_grad
    def bare(t):
        return t * 2.0

    assert not bare(x).requires_grad and gradcore.is_grad_enabled()
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()


def test_no_grad_restores_mode_after_an_exception():
    with pytest.raises(KeyError):
        with gradcore.no_grad():
            raise KeyError("inside")
    assert gradcore.is_grad_enabled()


class Affine(nn.Module):
    """y = x * weight + bias, elementwise: enough of a layer to chain networks without matmul."""

    def __init__(self, features, seed):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.weight = nn.Parameter(gradcore.tensor(rng.standard_normal(features), dtype="float64"))
        self.bias = nn.Parameter(gradcore.tensor(rng.standard_normal(features), dtype="float64"))

    def forward(self, x):
        return x * self.weight + self.bias


def _numeric_gradient(loss_fn, param, eps=1e-6):
    base = param.numpy().astype(np.float64).copy()
    grad = np.zeros_like(base)
    for k in range(base.size):
        for sign in (1.0, -1.0):
            probe = base.copy()
            probe.flat[k] += sign * eps
            param.copy_(gradcore.tensor(probe, dtype="float64"))
            with gradcore.no_grad():
                grad.flat[k] += sign * loss_fn().item()
        param.copy_(gradcore.tensor(base, dtype="float64"))
    return grad / (2 * eps)


@pytest.mark.parametrize("device", DEVICES)
def test_gradients_flow_across_separately_built_networks(device):
    encoder = nn.Sequential(Affine(5, 16), nn.Tanh(), Affine(5, 17)).to(device)
    decoder = nn.Sequential(Affine(5, 18), nn.Sigmoid()).to(device)
    x = _randn((3, 5), device, 19, requires_grad=False)
    target = gradcore.rand(3, 5, dtype="float64", device=device, generator=gradcore.Generator(20))

    def loss_fn():
        return F.mse_loss(decoder(encoder(x)), target)

    loss_fn().backward()
    params = list(encoder.parameters()) + list(decoder.parameters())
    assert len(params) == 6
    for p in params:
        assert p.grad is not None
        assert_close(p.grad, _numeric_gradient(loss_fn, p), atol=1e-8, rtol=1e-6)
    # Cutting the chain with detach() leaves the encoder without gradients.
    encoder.zero_grad()
    decoder.zero_grad()
    F.mse_loss(decoder(encoder(x).detach()), target).backward()
    assert all(p.grad is None for p in encoder.parameters())
    assert all(p.grad is not None for p in decoder.parameters())


def test_second_backward_needs_retain_graph():
    x = _randn((3,), "cpu", 21)
    loss = (x * x).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        loss.backward()
    x.grad = None
    loss = (x * x).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    assert_close(x.grad, 4 * x.numpy(), atol=1e-12, rtol=1e-12)


def test_backward_of_a_non_scalar_needs_a_gradient():
    x = _randn((2, 3), "cpu", 22)
    y = x * 2.0
    with pytest.raises(RuntimeError, match="gradient: needed for a non-scalar output of shape"):
        y.backward()
    with pytest.raises(ValueError, match=r"gradient: expected shape \(2, 3\)"):
        y.backward(gradcore.ones(3, dtype="float64"))
    with pytest.raises(TypeError, match="gradient: expected dtype float64"):
        y.backward(gradcore.ones(2, 3, dtype="float32"))
    with pytest.raises(TypeError, match="gradient: expected a Tensor"):
        y.backward(np.ones((2, 3)))
    y.backward(gradcore.full((2, 3), 0.5, dtype="float64"))
    assert_close(x.grad, np.ones((2, 3)), atol=0, rtol=0)


def test_custom_function_with_two_outputs_and_an_unused_one():
    from gradcore import _core

    class SplitScale(gradcore.Function):
        """(2x, 3x): the gradient of an output nobody used arrives as zeros."""

        def forward(self, x):
            return _core.unary(x, _core.UnaryOp.affine, 2.0), _core.unary(x, _core.UnaryOp.affine, 3.0)

        def backward(self, g2, g3):
            two = _core.unary(g2, _core.UnaryOp.affine, 2.0)
            return _core.binary(two, _core.unary(g3, _core.UnaryOp.affine, 3.0), _core.BinaryOp.add)

    x = _randn((4,), "cpu", 23)
    doubled, tripled = SplitScale.apply(x)
    assert doubled.requires_grad and tripled.requires_grad
    doubled.sum().backward()
    assert_close(x.grad, np.full(4, 2.0), atol=0, rtol=0)
    assert gradcore.gradcheck(lambda t: SplitScale.apply(t), [x])


def test_requires_grad_flags():
    x = gradcore.zeros(2)
    assert not (x * 2.0).requires_grad
    x.requires_grad_()
    y = x * 2.0
    assert y.requires_grad and not y.is_leaf
    with pytest.raises(RuntimeError, match="detach"):
        y.requires_grad_(False)


def test_grad_results_never_share_memory():
    x, y = _randn((2, 3), "cpu", 24), _randn((6,), "cpu", 25)
    v = _randn((6,), "cpu", 26, requires_grad=False)
    gx, gy = gradcore.grad(x.reshape(6) + y, [x, y], grad_outputs=v)
    gx.fill_(0.0)  # what an in-place gradient clip would do
    assert_close(gy, v, atol=0, rtol=0)
    assert_close(v, _randn((6,), "cpu", 26), atol=0, rtol=0)


def test_grad_of_an_output_with_respect_to_itself():
    x = _randn((3,), "cpu", 27)
    h = x * 2.0
    out = h.sum()
    g_out, g_h = gradcore.grad(out, [out, h])
    assert g_out.item() == 1.0
    assert_close(g_h, np.ones(3), atol=0, rtol=0)


def test_a_function_returning_a_mismatched_gradient_is_named():
    from gradcore import _core

    class WrongDtype(gradcore.Function):
        def forward(self, x):
            return x.clone()

        def backward(self, g):
            return g.astype("float32")

    class WrongShape(gradcore.Function):
        def forward(self, x):
            return x.clone()

        def backward(self, g):
            return _core.zeros([7], g.dtype, g.device)

    x = _randn((3,), "cpu", 28)
    with pytest.raises(RuntimeError, match=r"WrongDtype.backward returned a gradient of shape \(3,\), float32"):
        WrongDtype.apply(x).sum().backward()
    with pytest.raises(RuntimeError, match=r"WrongShape.backward returned a gradient of shape \(7,\)"):
        WrongShape.apply(x).sum().backward()


# ---- gradient ownership (autograd._propagate): a gradient only the engine holds is handed on without a copy ---------
# A leaf takes it as its .grad (PyTorch steals it likewise) and a fused conv + ReLU masks it in place; a gradient that
# anything else can see (a caller's grad_output, a value autograd.grad returns, one shared by two uses) never is.
def _conv_relu_chain(seed):
    from gradcore.ops.conv_relu import conv2d_relu
    rng = np.random.default_rng(seed)
    x = gradcore.tensor(rng.standard_normal((2, 3, 6, 6)), dtype="float64", requires_grad=True)
    w1 = gradcore.tensor(rng.standard_normal((4, 3, 3, 3)), dtype="float64", requires_grad=True)
    w2 = gradcore.tensor(rng.standard_normal((5, 4, 3, 3)), dtype="float64", requires_grad=True)
    b = gradcore.tensor(rng.standard_normal(4), dtype="float64", requires_grad=True)
    h = conv2d_relu(x, w1, b, padding=1)
    return x, w1, w2, b, h, conv2d_relu(h, w2, None, padding=1)


def test_a_stolen_gradient_belongs_to_its_leaf_alone():
    x, w1, w2, b, h, y = _conv_relu_chain(0)
    F.sigmoid(y).sum().backward(retain_graph=True)
    first = {name: t.grad.numpy().copy() for name, t in (("x", x), ("w1", w1), ("w2", w2), ("b", b))}
    F.sigmoid(y).sum().backward()  # the second backward adds in place into the (stolen) first gradients
    for name, t in (("x", x), ("w1", w1), ("w2", w2), ("b", b)):
        assert_close(t.grad, 2 * first[name], atol=0, rtol=0, name=name)  # x + x is exact
    assert len({t.grad._data.data_ptr for t in (x, w1, w2, b)}) == 4


def test_a_gradient_autograd_grad_returns_is_never_masked_in_place():
    x, w1, w2, b, h, y = _conv_relu_chain(1)
    s = F.sigmoid(h)  # the gradient reaching h is both captured and the fused conv + ReLU's input
    g_h, g_w1 = gradcore.grad(s.sum(), [h, w1], retain_graph=True)
    sig = 1 / (1 + np.exp(-h.numpy()))
    assert_close(g_h, sig * (1 - sig), atol=1e-15, rtol=1e-15, name="h")  # 0.25 where relu cut h to 0, not masked
    assert (h.numpy() == 0).any()
    expected = gradcore.grad(s.sum(), [w1])[0]
    assert_close(g_w1, expected, atol=0, rtol=0, name="w1")


def test_a_callers_grad_output_is_never_overwritten():
    x, w1, w2, b, h, y = _conv_relu_chain(2)
    seed = gradcore.tensor(np.random.default_rng(3).standard_normal(y.shape), dtype="float64")
    kept = seed.numpy().copy()
    y.backward(gradient=seed)
    assert_close(seed, kept, atol=0, rtol=0, name="grad_output")
    assert np.count_nonzero(y.numpy() == 0)  # the mask had elements to zero


def test_fused_conv_relu_gradients_match_the_unfused_ops_with_stolen_gradients():
    from gradcore.ops.conv_relu import conv2d_relu
    rng = np.random.default_rng(4)
    x = gradcore.tensor(rng.standard_normal((2, 3, 7, 7)), dtype="float32", requires_grad=True)
    w = gradcore.tensor(rng.standard_normal((4, 3, 3, 3)), dtype="float32", requires_grad=True)
    b = gradcore.tensor(rng.standard_normal(4), dtype="float32", requires_grad=True)
    got = []
    for fused in (True, False):
        for t in (x, w, b):
            t.grad = None
        y = conv2d_relu(x, w, b, padding=1) if fused else F.relu(F.conv2d(x, w, b, padding=1))
        F.mse_loss(F.sigmoid(y), gradcore.zeros(*y.shape)).backward()
        got.append([t.grad.numpy().copy() for t in (x, w, b)])
    for a, c in zip(*got):
        assert np.array_equal(a, c)


def test_elementwise_backward_overwrites_only_gradients_nobody_else_sees():
    rng = np.random.default_rng(6)
    x = gradcore.tensor(rng.standard_normal((4, 5)), dtype="float64", requires_grad=True)
    target = gradcore.tensor(rng.standard_normal((4, 5)), dtype="float64")
    t = F.exp(x)
    loss = F.mse_loss(F.tanh(F.sigmoid(t)), target)
    g_t, g_x = gradcore.grad(loss, [t, x], retain_graph=True)  # t's gradient is captured: exp's must not overwrite it
    e = np.exp(x.numpy())
    s = 1 / (1 + np.exp(-e))
    th = np.tanh(s)
    expected_t = 2 * (th - target.numpy()) / th.size * (1 - th ** 2) * s * (1 - s)
    assert_close(g_t, expected_t, atol=1e-14, rtol=1e-12, name="t")
    assert_close(g_x, expected_t * e, atol=1e-14, rtol=1e-12, name="x")
    loss.backward()
    assert_close(x.grad, g_x, atol=0, rtol=0, name="x.grad")
