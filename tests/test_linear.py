"""F.linear and nn.Linear: forward against the numpy reference for any leading dimensions, float64 gradcheck, the
seeds' dense layers (784 <-> 200, batch 1 to 256) against the numpy gradient formulas, a dense sigmoid autoencoder
checked by finite differences, PyTorch's initialisation (and the init= choices, seeded), determinism across thread
counts, CUDA against CPU, and bad input."""
import math
import textwrap

import numpy as np
import pytest

import gradcore as gc
from gradcore import nn
from gradcore.functional import linear
from isolated import outputs_for_thread_counts
from reference import matmul as ref
from tolerance import DEVICES, DTYPES, assert_close, assert_cuda_matches_cpu, cuda_and_cpu_with_grads, forward_tol

# name: (shape of x, out_features)
SHAPES = {
    "vector_input": ((5,), 3),
    "batch": ((4, 5), 3),
    "two_leading_dims": ((2, 3, 5), 4),
    "one_feature_in_and_out": ((6, 1), 1),
    "batch_of_one": ((1, 7), 2),
}
# The seeds' dense layers: the autoencoder's 784 -> 200 -> 784 at batch 1 to 256.
SEED = {f"{n_in}to{n_out}_batch{batch}": ((batch, n_in), n_out)
        for n_in, n_out in ((784, 200), (200, 784)) for batch in (1, 25, 256)}


def make(x_shape, out_features, dtype, device="cpu", seed=0, requires_grad=False, bias=True):
    rng = np.random.default_rng(seed)
    in_features = x_shape[-1]
    arrays = [rng.standard_normal(x_shape), rng.standard_normal((out_features, in_features)) / np.sqrt(in_features),
              rng.standard_normal(out_features)]
    tensors = [gc.tensor(a, dtype=dtype, device=device, requires_grad=requires_grad) for a in arrays]
    return tensors if bias else tensors[:2] + [None]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("name", list(SHAPES) + list(SEED))
def test_forward_matches_reference(name, with_bias, dtype):
    x, w, b = make(*{**SHAPES, **SEED}[name], dtype, bias=with_bias)
    y = linear(x, w, b)
    expected = ref.linear(x.numpy(), w.numpy(), None if b is None else b.numpy())
    assert y.shape == x.shape[:-1] + (w.shape[0],)
    assert_close(y, expected, name=name, **forward_tol(dtype))


@pytest.mark.parametrize("name", list(SHAPES))
def test_gradients_match_finite_differences(name):
    x, w, b = make(*SHAPES[name], "float64", requires_grad=True)
    assert gc.gradcheck(lambda p, q, r: linear(p, q, r), [x, w, b])
    x, w, _ = make(*SHAPES[name], "float64", requires_grad=True, bias=False)
    assert gc.gradcheck(lambda p, q: linear(p, q), [x, w])


@pytest.mark.parametrize("name", list(SEED))
def test_seed_layer_gradients_match_reference(name):
    x, w, b = make(*SEED[name], "float64", requires_grad=True)
    y = linear(x, w, b)
    g = np.random.default_rng(1).standard_normal(y.shape)
    y.backward(gc.tensor(g, dtype="float64"))
    gx, gw, gb = ref.linear_grads(x.numpy(), w.numpy(), g)
    assert_close(x.grad, gx, atol=1e-10, rtol=1e-9, name="x.grad")
    assert_close(w.grad, gw, atol=1e-10, rtol=1e-9, name="weight.grad")
    assert_close(b.grad, gb, atol=1e-10, rtol=1e-9, name="bias.grad")


def test_one_dimensional_weight_follows_pytorch():
    x = gc.tensor(np.arange(6.0).reshape(2, 3), dtype="float64", requires_grad=True)
    w = gc.tensor([1.0, 2.0, 3.0], dtype="float64", requires_grad=True)
    assert_close(linear(x, w), [8.0, 26.0])
    assert gc.gradcheck(lambda p, q: linear(p, q, gc.tensor(0.5, dtype="float64")), [x, w])


def test_dense_sigmoid_autoencoder_gradient_by_finite_differences():
    """The seeds' 784-200-784 sigmoid autoencoder, shrunk to 12-5-12 so that every weight is checked."""
    g = gc.Generator(3)
    model = nn.Sequential(nn.Linear(12, 5, dtype="float64", generator=g), nn.Sigmoid(),
                          nn.Linear(5, 12, dtype="float64", generator=g), nn.Sigmoid())
    x = gc.tensor(np.random.default_rng(0).random((4, 12)), dtype="float64")

    def loss(w1, b1, w2, b2):  # the model's forward, with its parameters as inputs
        h = gc.functional.sigmoid(linear(x, w1, b1))
        return gc.functional.mse_loss(gc.functional.sigmoid(linear(h, w2, b2)), x)

    inputs = [p.detach().clone().requires_grad_() for p in model.parameters()]
    assert np.array_equal(gc.functional.mse_loss(model(x), x).numpy(), loss(*inputs).numpy())
    assert gc.gradcheck(loss, inputs)


def test_matches_torch_when_installed():
    torch = pytest.importorskip("torch")
    for name, case in {**SHAPES, **SEED}.items():
        x, w, b = make(*case, "float64", requires_grad=True)
        tx, tw, tb = (torch.tensor(t.numpy(), requires_grad=True) for t in (x, w, b))
        y, ty = linear(x, w, b), torch.nn.functional.linear(tx, tw, tb)
        assert_close(y, ty.detach().numpy(), atol=1e-10, rtol=1e-10, name=name)
        g = np.random.default_rng(2).standard_normal(y.shape)
        y.backward(gc.tensor(g, dtype="float64"))
        ty.backward(torch.tensor(g))
        for ours, theirs, what in ((x, tx, "x"), (w, tw, "weight"), (b, tb, "bias")):
            assert_close(ours.grad, theirs.grad.numpy(), atol=1e-10, rtol=1e-10, name=f"{name}: {what}.grad")


# ---- nn.Linear ---------------------------------------------------------------------------------------------------
def test_module_shapes_parameters_and_repr():
    layer = nn.Linear(784, 200)
    assert layer.weight.shape == (784 * 0 + 200, 784) and layer.bias.shape == (200,)
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"]
    assert repr(layer) == "Linear(in_features=784, out_features=200, bias=True, init='kaiming_uniform')"
    assert nn.Linear(3, 2, bias=False).bias is None
    assert list(nn.Linear(3, 2, bias=False).state_dict()) == ["weight"]
    y = layer(gc.randn(2, 5, 784))
    assert y.shape == (2, 5, 200)
    assert nn.Linear(3, 2, dtype="float64").weight.dtype == "float64"


def test_default_init_is_pytorchs():
    """weight and bias uniform on [-1/sqrt(in), 1/sqrt(in)] (kaiming_uniform_ with a=sqrt(5), then the bias rule)."""
    layer = nn.Linear(400, 300, generator=gc.Generator(0))
    bound = 1 / math.sqrt(400)
    w, b = layer.weight.numpy(), layer.bias.numpy()
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.01 * bound  # a uniform's std is limit / sqrt(3)
    assert abs(w.mean()) < 0.01 * bound and b.std() > 0.4 * bound  # the bias is drawn too, not zero
    torch = pytest.importorskip("torch")
    t = torch.nn.Linear(400, 300)
    assert abs(t.weight.detach().numpy().std() - w.std()) < 0.01 * bound
    assert abs(np.abs(t.bias.detach().numpy()).max() - np.abs(b).max()) < 0.02 * bound


@pytest.mark.parametrize("init, std_of_fans, bias_zero", [
    ("he_normal", lambda i, o: math.sqrt(2 / i), True),
    ("glorot_uniform", lambda i, o: math.sqrt(2 / (i + o)), True),
    ("kaiming_uniform", lambda i, o: math.sqrt(1 / (3 * i)), False),
])
def test_init_choices(init, std_of_fans, bias_zero):
    layer = nn.Linear(500, 200, init=init, generator=gc.Generator(1))
    assert abs(layer.weight.numpy().std() / std_of_fans(500, 200) - 1) < 0.02
    assert np.all(layer.bias.numpy() == 0) == bias_zero
    assert layer.init == init


def test_init_is_seeded_by_the_generator():
    a, b = nn.Linear(20, 10, generator=gc.Generator(7)), nn.Linear(20, 10, generator=gc.Generator(7))
    c = nn.Linear(20, 10, generator=gc.Generator(8))
    assert np.array_equal(a.weight.numpy(), b.weight.numpy()) and np.array_equal(a.bias.numpy(), b.bias.numpy())
    assert not np.array_equal(a.weight.numpy(), c.weight.numpy())
    gc.manual_seed(5)
    d = nn.Linear(20, 10)
    gc.manual_seed(5)
    assert np.array_equal(d.weight.numpy(), nn.Linear(20, 10).weight.numpy())


def test_a_tiny_relu_regressor_learns():
    g = gc.Generator(0)
    model = nn.Sequential(nn.Linear(1, 16, generator=g), nn.ReLU(), nn.Linear(16, 16, generator=g), nn.ReLU(),
                          nn.Linear(16, 1, generator=g))
    optimizer = gc.optim.Adam(model.parameters(), lr=1e-2)
    rng = np.random.default_rng(0)
    losses = []
    for _ in range(300):
        xs = rng.uniform(-2, 2, size=(32, 1)).astype(np.float32)
        optimizer.zero_grad()
        loss = gc.functional.mse_loss(model(gc.tensor(xs)), gc.tensor(np.sin(1.5 * xs)))
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.mean(losses[-30:]) < 0.1 * np.mean(losses[:10])


def test_diagnostics_report_linear_layers_like_conv_layers():
    """Per-layer gradient norms, update ratios and forward gains name the Linear layers, as they name convolutions;
    the update ratio looks at the weight (2-D), not the bias."""
    g = gc.Generator(0)
    model = nn.Sequential(nn.Linear(4, 8, generator=g), nn.ReLU(), nn.Linear(8, 2, generator=g))
    x, target = gc.randn(16, 4, generator=g), gc.randn(16, 2, generator=g)
    optimizer = gc.optim.SGD(model.parameters(), lr=0.1)
    monitor = gc.diagnostics.HealthMonitor(model, every=1, warn=False)
    for _ in range(3):
        optimizer.zero_grad()
        y = model(x)
        loss = gc.functional.mse_loss(y, target)
        loss.backward()
        optimizer.step()
        monitor.step(loss, y, target)
    assert list(gc.diagnostics.grad_norms(model)) == ["0", "2"]
    assert list(monitor.layers) == ["0", "2"] and "1" in monitor.activations
    last = monitor.records[-1]["layers"]
    for name in ("0", "2"):
        assert last[name]["grad_norm"] > 0 and last[name]["update_ratio"] > 0 and last[name]["gain"] > 0
    w = model[0].weight.numpy().astype(np.float64)
    assert abs(last["0"]["weight_norm"] - np.sqrt((w ** 2).sum())) < 1e-5, "the weight's norm, the bias left out"


# ---- determinism -------------------------------------------------------------------------------------------------
THREAD_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import gradcore as gc
    rng = np.random.default_rng(0)
    parts = []
    for batch in (1, 25, 256):
        x = gc.tensor(rng.standard_normal((batch, 784)).astype(np.float32), requires_grad=True)
        layer = gc.nn.Linear(784, 200, generator=gc.Generator(0))
        y = layer(x)
        y.backward(gc.tensor(rng.standard_normal(y.shape).astype(np.float32)))
        parts += [y.numpy().ravel(), x.grad.numpy().ravel(), layer.weight.grad.numpy().ravel(),
                  layer.bias.grad.numpy().ravel()]
    np.save(sys.argv[1], np.concatenate(parts))
""")


def test_bitwise_identical_for_any_thread_count(tmp_path):
    outputs = outputs_for_thread_counts(THREAD_SCRIPT, tmp_path)
    assert np.array_equal(outputs[0], outputs[1]) and np.array_equal(outputs[0], outputs[2])


# ---- CUDA --------------------------------------------------------------------------------------------------------
CUDA_CASES = {**SHAPES, "seed_784to200_batch3": ((3, 784), 200), "batch_300_weight_grad_split": ((1100, 20), 6)}


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(CUDA_CASES))
def test_cuda_matches_cpu(name, dtype):
    def build(device):
        x, w, b = make(*CUDA_CASES[name], dtype, device=device, requires_grad=True)
        return linear(x, w, b), {"x": x, "weight": w, "bias": b}

    results = cuda_and_cpu_with_grads(build, dtype)
    assert_cuda_matches_cpu(results["cuda"], results["cpu"], dtype)


@pytest.mark.cuda
def test_cuda_module_matches_cpu_module():
    cpu = nn.Linear(30, 7, generator=gc.Generator(2))
    cuda = nn.Linear(30, 7, device="cuda", generator=gc.Generator(2))
    assert np.array_equal(cpu.weight.numpy(), cuda.weight.numpy())
    x = np.random.default_rng(0).standard_normal((5, 30))
    assert_cuda_matches_cpu(cuda(gc.tensor(x, dtype="float32", device="cuda")), cpu(gc.tensor(x, dtype="float32")),
                            "float32")


# ---- bad input ---------------------------------------------------------------------------------------------------
def test_feature_count_must_match():
    with pytest.raises(ValueError, match=r"x: expected a last dimension of 5 \(weight's in_features"):
        linear(gc.ones(2, 4), gc.ones(3, 5))
    with pytest.raises(ValueError, match=r"x: expected a last dimension of 784"):
        nn.Linear(784, 200)(gc.ones(2, 1, 28, 28))


def test_bad_ranks_and_bias():
    with pytest.raises(ValueError, match="x: expected at least 1 dimension"):
        linear(gc.tensor(1.0), gc.ones(3, 1))
    with pytest.raises(ValueError, match="weight: expected 2 dimensions"):
        linear(gc.ones(2, 3), gc.ones(1, 2, 3))
    with pytest.raises(ValueError, match=r"bias: expected shape \(2,\)"):
        linear(gc.ones(4, 3), gc.ones(2, 3), gc.ones(3))
    with pytest.raises(TypeError, match="bias: expected dtype float32"):
        linear(gc.ones(4, 3), gc.ones(2, 3), gc.ones(2, dtype="float64"))
    with pytest.raises(TypeError, match="weight: expected a gradcore.Tensor"):
        linear(gc.ones(4, 3), np.ones((2, 3)))


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(in_features=0, out_features=3), None, ""),
    (dict(in_features=-1, out_features=3), ValueError, "in_features: expected an integer >= 0"),
    (dict(in_features=2.5, out_features=3), TypeError, "in_features: expected an integer"),
    (dict(in_features=2, out_features="3"), TypeError, "out_features: expected an integer"),
    (dict(in_features=2, out_features=3, init="xavier"), ValueError, "init: expected one of"),
    (dict(in_features=2, out_features=3, bias=None), TypeError, "bias: expected True or False"),
    (dict(in_features=2, out_features=3, generator=3), TypeError, "generator: expected a gradcore.Generator"),
])
def test_module_arguments(kwargs, error, words):
    if error is None:
        layer = nn.Linear(**kwargs)
        assert layer(gc.ones(4, 0)).shape == (4, 3)
        return
    with pytest.raises(error, match=words):
        nn.Linear(**kwargs)


@pytest.mark.parametrize("device", DEVICES)
def test_empty_batch(device):
    layer = nn.Linear(3, 2, device=device)
    x = gc.zeros(0, 3, device=device, requires_grad=True)
    y = layer(x)
    assert y.shape == (0, 2)
    y.sum().backward()
    assert np.array_equal(layer.weight.grad.numpy(), np.zeros((2, 3)))
    assert np.array_equal(layer.bias.grad.numpy(), np.zeros(2))
