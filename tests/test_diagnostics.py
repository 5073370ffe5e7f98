"""gradcore.diagnostics: gradient norms, update ratios, dead ReLUs, and warnings that name the layer."""
import math
import warnings

import numpy as np
import pytest

import gradcore
from gradcore import diagnostics, nn
from gradcore import functional as F
from gradcore.diagnostics import GradcoreHealthWarning
from toy_training import MomentumSGD, Scale


def _x(n=8, features=4, seed=0):
    return gradcore.tensor(np.random.default_rng(seed).normal(size=(n, features)), dtype="float32")


def _backward(net, x):
    net.zero_grad()
    F.mse_loss(net(x), x * 0.5).backward()


def test_grad_norms_per_layer_and_parameter():
    net = nn.Sequential(Scale(4), nn.Tanh(), Scale(4, seed=1))
    x = _x()
    _backward(net, x)
    per_param = diagnostics.grad_norms(net, per="parameter")
    assert list(per_param) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    for name, p in net.named_parameters():
        assert per_param[name] == pytest.approx(np.linalg.norm(p.grad.numpy()), rel=1e-6)
    per_layer = diagnostics.grad_norms(net)
    assert list(per_layer) == ["0", "2"]
    assert per_layer["0"] == pytest.approx(math.hypot(per_param["0.weight"], per_param["0.bias"]), rel=1e-6)


def test_vanishing_gradients_name_the_layer():
    # The last layer's tiny weights scale every gradient that flows back to layer "0" down to ~1e-12.
    net = nn.Sequential(Scale(4), nn.Tanh(), Scale(4, weight=1e-12))
    _backward(net, _x())
    messages = diagnostics.check_gradients(net)
    assert len(messages) == 1 and "'0'" in messages[0] and "vanish" in messages[0]
    with pytest.warns(GradcoreHealthWarning, match="layer '0' gradients vanish"):
        diagnostics.warn(messages)
    assert diagnostics.check_gradients(net, vanish=1e-20) == [], "the threshold is configurable"


def test_exploding_and_missing_gradients():
    net = nn.Sequential(Scale(4), nn.Tanh(), Scale(4, weight=1e6))
    _backward(net, _x())
    assert any("'0'" in m and "explode" in m for m in diagnostics.check_gradients(net))

    encoder, decoder = Scale(4), Scale(4, seed=1)
    decoder.zero_grad()
    F.mse_loss(decoder(encoder(_x()).detach()), _x()).backward()  # a graph cut between the two networks
    messages = diagnostics.check_gradients({"encoder": encoder, "decoder": decoder})
    assert len(messages) == 1 and "'encoder'" in messages[0] and "no gradient" in messages[0]


def test_healthy_network_gives_no_warning():
    net = nn.Sequential(Scale(4), nn.Tanh(), Scale(4, seed=1))
    _backward(net, _x())
    assert diagnostics.check_gradients(net) == []
    assert diagnostics.check_output(net(_x())) == []


def test_constant_output_is_flagged():
    constant = gradcore.tensor(np.tile(np.random.default_rng(0).random((1, 1, 5, 5)), (6, 1, 1, 1)))
    messages = diagnostics.check_output(constant)
    assert len(messages) == 1 and "collapsed to a constant" in messages[0]
    net = nn.Sequential(Scale(4, weight=0.0), nn.Sigmoid())  # ignores its input: the same output for all
    assert diagnostics.check_output(net(_x()), name="decoder output")[0].startswith("decoder output collapsed")


def test_update_ratios():
    net = nn.Sequential(Scale(4), nn.Tanh(), Scale(4, seed=1))
    before = diagnostics.snapshot(net)
    opt = MomentumSGD(net.parameters(), lr=0.01)
    _backward(net, _x())
    opt.step()
    ratios = diagnostics.update_ratios(before, net)
    for layer, index in (("0", 0), ("2", 2)):
        w0 = np.concatenate([before[layer]["weight"], before[layer]["bias"]])
        w1 = np.concatenate([net[index].weight.numpy(), net[index].bias.numpy()])
        assert ratios[layer] == pytest.approx(np.linalg.norm(w1 - w0) / np.linalg.norm(w0), rel=1e-5)
        assert 0 < ratios[layer] < 1


def test_dead_relu_fraction_and_monitor():
    a = np.array([[1.0, 0.0, -1.0, 0.0], [0.0, 0.0, -2.0, 3.0]])
    assert diagnostics.dead_relu_fraction(a) == 0.5  # units 1 and 2 are never positive
    # Layer "1" sees inputs shifted far below zero: all its units are dead.
    net = nn.Sequential(Scale(4), nn.ReLU(), Scale(4, seed=2), nn.ReLU())
    net[2].bias.copy_(np.full(4, -100.0, np.float32))
    with diagnostics.ReLUMonitor(net) as relus:
        net(_x())
    assert set(relus.fractions) == {"1", "3"}
    assert relus.fractions["3"] == 1.0 and relus.fractions["1"] < 1.0
    messages = diagnostics.check_dead_relus(relus.fractions)
    assert len(messages) == 1 and "'3'" in messages[0]
    assert "forward" not in net[1].__dict__, "the hook is removed on exit"


def test_warn_also_writes_above_the_progress_bar(capsys):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        diagnostics.warn(["layer 'x' gradients vanish: norm 1e-40 < 1e-08"])
    assert caught[0].category is GradcoreHealthWarning
    assert "gradcore health: layer 'x'" in capsys.readouterr().out


def test_bad_arguments():
    with pytest.raises(TypeError, match="model"):
        diagnostics.grad_norms([1, 2])
    with pytest.raises(ValueError, match="per"):
        diagnostics.grad_norms(Scale(2), per="module")
    with pytest.raises(ValueError, match="activation"):
        diagnostics.dead_relu_fraction(np.zeros(3))
