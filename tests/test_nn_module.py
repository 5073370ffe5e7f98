"""nn.Module bookkeeping (parameters, buffers, state dicts, modes, devices), Sequential, the activation modules
and the initializers in nn.init (their statistics, orthogonality and seeding)."""
import math
import re

import numpy as np
import pytest

import gradcore
import gradcore.functional as F
from gradcore import nn
from gradcore.nn import init
from tolerance import DEVICES, assert_close


class Affine(nn.Module):
    def __init__(self, features, seed=0):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.weight = nn.Parameter(gradcore.tensor(rng.standard_normal(features), dtype="float32"))
        self.bias = nn.Parameter(gradcore.zeros(features))

    def forward(self, x):
        return x * self.weight + self.bias


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(Affine(3, 1), nn.Tanh())
        self.scale = nn.Parameter(gradcore.ones(1))
        self.decoder = Affine(3, 2)
        self.register_buffer("steps", gradcore.zeros(()))

    def forward(self, x):
        return self.decoder(self.encoder(x)) * self.scale


def test_parameters_and_names_in_registration_order():
    net = Net()
    names = [name for name, _ in net.named_parameters()]
    assert names == ["scale", "encoder.0.weight", "encoder.0.bias", "decoder.weight", "decoder.bias"]
    assert [id(p) for p in net.parameters()] == [id(p) for _, p in net.named_parameters()]
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in net.parameters())
    assert [name for name, _ in net.named_buffers()] == ["steps"]
    assert [name for name, _ in net.named_modules()] == ["", "encoder", "encoder.0", "encoder.1", "decoder"]


def test_a_shared_parameter_is_listed_once():
    net = nn.Sequential(Affine(2), Affine(2))
    net[1].weight = net[0].weight
    assert len(list(net.parameters())) == 3


def test_assignment_keeps_registrations_straight():
    net = Net()
    net.steps = gradcore.ones(())  # a buffer reassigned stays a buffer
    assert [name for name, _ in net.named_buffers()] == ["steps"]
    assert float(net.state_dict()["steps"]) == 1.0
    with pytest.raises(TypeError, match="scale: cannot assign a Tensor to a parameter"):
        net.scale = gradcore.ones(1)
    net.scale = None
    assert "scale" not in dict(net.named_parameters())
    net.decoder = Affine(3, 5)  # a new submodule replaces the old one
    assert_close(dict(net.named_parameters())["decoder.weight"], Affine(3, 5).weight, atol=0, rtol=0)
    with pytest.raises(AttributeError, match=re.escape("call super().__init__() before assigning")):
        class Broken(nn.Module):
            def __init__(self):
                self.weight = nn.Parameter(gradcore.zeros(1))
        Broken()


def test_state_dict_round_trip():
    net, other = Net(), Net()
    other.decoder.weight.fill_(7.0)
    state = net.state_dict()
    assert list(state) == ["scale", "encoder.0.weight", "encoder.0.bias", "decoder.weight", "decoder.bias", "steps"]
    assert all(isinstance(v, gradcore.Tensor) and not v.requires_grad and v.is_leaf for v in state.values())
    state["decoder.bias"].fill_(3.0)  # a copy: editing it leaves the module alone
    assert net.decoder.bias.numpy().sum() == 0.0
    weight = other.decoder.weight
    assert other.load_state_dict(state) == ([], [])
    assert other.decoder.weight is weight  # loaded in place: optimizers keep their references
    assert_close(other.decoder.weight, net.decoder.weight, atol=0, rtol=0)
    assert_close(other.decoder.bias, np.full(3, 3.0), atol=0, rtol=0)
    # Tensors and float64 arrays load too (converted to the parameter's dtype).
    other.load_state_dict({k: gradcore.tensor(np.asarray(v, np.float64)) for k, v in net.state_dict().items()})
    assert other.decoder.weight.dtype == "float32"


def test_load_state_dict_errors():
    net = Net()
    state = net.state_dict()
    bad = dict(state, **{"decoder.weight": np.zeros(4, np.float32)})
    with pytest.raises(ValueError, match=r"decoder.weight expected shape \(3,\), got \(4,\)"):
        net.load_state_dict(bad)
    missing = {k: v for k, v in state.items() if k != "encoder.0.bias"}
    with pytest.raises(KeyError, match=r"missing keys \['encoder.0.bias'\]"):
        net.load_state_dict(missing)
    with pytest.raises(KeyError, match=r"unexpected keys \['extra'\]"):
        net.load_state_dict(dict(state, extra=np.zeros(1)))
    assert net.load_state_dict(dict(missing, extra=np.zeros(1)), strict=False) == (["encoder.0.bias"], ["extra"])


def test_train_and_eval_reach_every_submodule():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    net.encoder.train(False)
    assert net.training and not net.encoder.training and not net.encoder[0].training


def test_zero_grad_and_requires_grad():
    net = Net()
    net(gradcore.ones(2, 3)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(np.all(p.grad.numpy() == 0) for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    net.requires_grad_(False)
    assert not net(gradcore.ones(2, 3)).requires_grad


@pytest.mark.parametrize("device", DEVICES)
def test_to_moves_in_place_keeping_identities(device):
    net = Net()
    params = list(net.parameters())
    before = net.state_dict()
    net.to(device).double()
    assert [id(p) for p in net.parameters()] == [id(p) for p in params]
    assert all(p.dtype == "float64" and p.device.startswith(device) for p in net.parameters())
    assert net.steps.dtype == "float64"
    for name, value in net.state_dict().items():
        assert_close(value, before[name], atol=1e-7, rtol=1e-7, name=name)
    out = net(gradcore.ones(2, 3, dtype="float64", device=device))
    assert out.device.startswith(device)


def test_sequential():
    first, second = Affine(2, 3), nn.ReLU()
    seq = nn.Sequential(first, second)
    assert len(seq) == 2 and seq[0] is first and seq[-1] is second and list(seq) == [first, second]
    x = gradcore.tensor([[-1.0, 2.0]])
    assert_close(seq(x), F.relu(first(x)), atol=0, rtol=0)
    seq.append(nn.Sigmoid())
    assert len(seq) == 3 and [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias"]
    with pytest.raises(TypeError, match="Sequential: argument 1 must be a Module"):
        nn.Sequential(first, lambda t: t)
    assert "Affine" in repr(seq) and "(2): Sigmoid()" in repr(seq)


def test_activation_modules_are_the_functional_ops():
    x = gradcore.tensor(np.linspace(-3, 3, 13))
    assert_close(nn.ReLU()(x), F.relu(x), atol=0, rtol=0)
    assert_close(nn.LeakyReLU(0.3)(x), F.leaky_relu(x, 0.3), atol=0, rtol=0)
    assert_close(nn.Sigmoid()(x), F.sigmoid(x), atol=0, rtol=0)
    assert_close(nn.Tanh()(x), F.tanh(x), atol=0, rtol=0)
    assert "negative_slope=0.3" in repr(nn.LeakyReLU(0.3))


# ---- nn.init --------------------------------------------------------------------------------------------------
SHAPE = (300, 200, 2)  # fan_in = 400, fan_out = 600; 120000 draws: a std estimate within ~0.5%


def _draw(fn, *args, seed=0, shape=SHAPE, dtype="float32", device="cpu", **kwargs):
    t = gradcore.zeros(*shape, dtype=dtype, device=device)
    out = fn(t, *args, generator=gradcore.Generator(seed), **kwargs)
    assert out is t
    return t.numpy().astype(np.float64)


@pytest.mark.parametrize("device", DEVICES)
def test_normal_initializers_have_the_right_std(device):
    fan_in, fan_out = 400, 600
    cases = {
        "glorot_normal": (_draw(init.glorot_normal_, device=device), math.sqrt(2 / (fan_in + fan_out))),
        "glorot_normal_gain": (_draw(init.glorot_normal_, gain=2.0, device=device), 2 * math.sqrt(2 / 1000)),
        "he_normal": (_draw(init.he_normal_, device=device), math.sqrt(2 / fan_in)),
        "he_normal_fan_out": (_draw(init.he_normal_, mode="fan_out", device=device), math.sqrt(2 / fan_out)),
        "he_normal_leaky": (_draw(init.he_normal_, negative_slope=0.5, device=device), math.sqrt(2 / 1.25 / fan_in)),
        "normal": (_draw(init.normal_, mean=0.0, std=0.3, device=device), 0.3),
    }
    for name, (values, std) in cases.items():
        assert abs(values.mean()) < 0.02 * std, name
        assert abs(values.std() / std - 1) < 0.02, name


@pytest.mark.parametrize("device", DEVICES)
def test_uniform_initializers_have_the_right_limits(device):
    cases = {
        "glorot_uniform": (_draw(init.glorot_uniform_, device=device), math.sqrt(6 / 1000)),
        "he_uniform": (_draw(init.he_uniform_, device=device), math.sqrt(6 / 400)),
        "he_uniform_fan_out": (_draw(init.he_uniform_, mode="fan_out", device=device), math.sqrt(6 / 600)),
        "uniform": (_draw(init.uniform_, -0.25, 0.25, device=device), 0.25),
    }
    for name, (values, limit) in cases.items():
        assert values.min() >= -limit and values.max() <= limit, name
        assert values.max() > 0.99 * limit and values.min() < -0.99 * limit, name  # the whole interval is used
        assert abs(values.std() / (limit / math.sqrt(3)) - 1) < 0.02, name
    shifted = _draw(init.uniform_, 1.0, 3.0)
    assert shifted.min() >= 1.0 and shifted.max() <= 3.0 and abs(shifted.mean() - 2.0) < 0.01


def test_explicit_fans():
    values = _draw(init.he_normal_, fan=(50, 7))
    assert abs(values.std() / math.sqrt(2 / 50) - 1) < 0.02
    assert init.fans((8, 4, 3, 3)) == (36, 72)
    with pytest.raises(ValueError, match="fans: need a weight of at least 2 dimensions"):
        init.glorot_uniform_(gradcore.zeros(5))
    with pytest.raises(ValueError, match="mode: expected"):
        init.he_normal_(gradcore.zeros(3, 3), mode="fan_avg")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", [(6, 10), (10, 6), (8, 8), (4, 3, 2, 2)], ids=str)
def test_orthogonal(shape, device):
    w = _draw(init.orthogonal_, gain=1.5, shape=shape, dtype="float64", device=device).reshape(shape[0], -1)
    rows, cols = w.shape
    gram = w @ w.T if rows <= cols else w.T @ w
    assert_close(gram, 2.25 * np.eye(min(rows, cols)), atol=1e-10, rtol=0, name="gram")


@pytest.mark.parametrize("fn", [init.glorot_uniform_, init.glorot_normal_, init.he_normal_, init.he_uniform_,
                                init.uniform_, init.normal_, init.orthogonal_], ids=lambda f: f.__name__)
def test_initializers_are_seeded(fn):
    a, b, c = _draw(fn, seed=5, shape=(20, 30)), _draw(fn, seed=5, shape=(20, 30)), _draw(fn, seed=6, shape=(20, 30))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    gradcore.manual_seed(9)
    d = fn(gradcore.zeros(20, 30)).numpy().copy()
    gradcore.manual_seed(9)
    np.testing.assert_array_equal(d, fn(gradcore.zeros(20, 30)).numpy())


def test_constant_initializers():
    t = gradcore.full((3, 2), 5.0)
    assert np.all(init.zeros_(t).numpy() == 0.0)
    assert np.all(init.ones_(t).numpy() == 1.0)
    assert np.all(init.constant_(t, -2.5).numpy() == -2.5)
    with pytest.raises(TypeError, match="tensor: expected a gradcore.Tensor"):
        init.uniform_(np.zeros((2, 2)))
