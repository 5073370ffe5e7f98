"""Conventions a PyTorch user expects: float(t) / int(t) on one-element tensors, gradcore.full(size, fill_value),
state_dict() values that are detached Tensors, and help(gradcore.functional) listing the functions."""
import math
import pydoc

import numpy as np
import pytest

import gradcore
import gradcore.functional as F
from gradcore import nn
from tolerance import DEVICES, DTYPES, assert_close


# ---- float(t), int(t) ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("device", DEVICES)
def test_float_and_int_of_a_one_element_tensor(device, dtype):
    for shape in [(), (1,), (1, 1, 1)]:
        t = gradcore.full(shape, -2.75, dtype=dtype, device=device)
        assert float(t) == -2.75 and type(float(t)) is float
        assert int(t) == -2 and type(int(t)) is int  # truncated toward zero, as int(-2.75) and PyTorch
    assert int(gradcore.tensor([2.9], dtype=dtype, device=device)) == 2
    x = gradcore.tensor([1.5, 2.0], dtype=dtype, device=device, requires_grad=True)
    loss = (x * x).sum()
    assert float(loss) == 6.25  # a tensor that is part of a graph converts too (PyTorch's rule)
    assert math.isclose(float(loss) / 2, 3.125)


def test_float_and_int_need_exactly_one_element():
    for t in [gradcore.zeros(2), gradcore.zeros(0), gradcore.zeros(1, 3)]:
        with pytest.raises(ValueError, match=r"float\(\): only a tensor with one element .* got shape"):
            float(t)
        with pytest.raises(ValueError, match=r"int\(\): only a tensor with one element"):
            int(t)
    with pytest.raises(ValueError, match="NaN"):
        int(gradcore.tensor(float("nan")))
    with pytest.raises(OverflowError):
        int(gradcore.tensor(float("inf")))
    assert math.isnan(float(gradcore.tensor(float("nan"))))


# ---- gradcore.full(size, fill_value) ------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("device", DEVICES)
def test_full_takes_pytorchs_argument_names(device, dtype):
    t = gradcore.full(size=(2, 3), fill_value=0.25, dtype=dtype, device=device)
    assert t.shape == (2, 3) and t.dtype == dtype and t.device.startswith(device)
    assert_close(t, np.full((2, 3), 0.25), atol=0, rtol=0)
    assert gradcore.full([4], 7).shape == (4,) and float(gradcore.full([4], 7).sum()) == 28.0
    assert gradcore.full((), -1.0).shape == ()
    assert gradcore.full((2,), gradcore.tensor(3.0)).tolist() == [3.0, 3.0]  # a one-element tensor as the value
    assert gradcore.full((2,), 1.0, requires_grad=True).requires_grad
    assert math.isinf(gradcore.full((1,), float("-inf")).item())


def test_full_bad_arguments():
    with pytest.raises(TypeError, match="fill_value: expected a number"):
        gradcore.full((2,), "a")
    with pytest.raises(TypeError, match="fill_value"):
        gradcore.full((2,), None)
    with pytest.raises(ValueError, match="shape"):
        gradcore.full((2, -1), 1.0)


# ---- state_dict() holds Tensors -----------------------------------------------------------------------------------
def _net():
    gradcore.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ReLU())


@pytest.mark.parametrize("device", DEVICES)
def test_state_dict_values_are_detached_tensor_copies(device):
    net = _net().to(device)
    state = net.state_dict()
    own = dict(list(net.named_parameters()) + list(net.named_buffers()))
    assert list(state) == list(own)
    for name, value in state.items():
        assert type(value) is gradcore.Tensor, name  # a plain Tensor, not a Parameter
        assert not value.requires_grad and value.is_leaf, name
        assert value.shape == own[name].shape and value.dtype == own[name].dtype, name
        assert value.device == own[name].device, name
        assert_close(value, own[name].numpy(), atol=0, rtol=0, name=name)
    state["0.weight"].fill_(5.0)  # a copy: a snapshot of the weights, not a view
    assert not np.any(net[0].weight.numpy() == 5.0)


@pytest.mark.parametrize("device", DEVICES)
def test_load_state_dict_takes_tensors_and_numpy(device):
    net, other = _net().to(device), _net().to(device)
    with gradcore.no_grad():
        for p in other.parameters():
            p.fill_(0.5)
    weight = other[0].weight
    assert other.load_state_dict(net.state_dict()) == ([], [])
    assert other[0].weight is weight  # in place: an optimizer's references stay valid
    for (name, a), (_, b) in zip(net.state_dict().items(), other.state_dict().items()):
        assert_close(b, a.numpy(), atol=0, rtol=0, name=name)
    numpy_state = {k: np.asarray(v, np.float64) * 2 for k, v in net.state_dict().items()}
    other.load_state_dict(numpy_state)  # numpy arrays, of another dtype: converted to the parameter's
    assert other[0].weight.dtype == "float32"
    assert_close(other[0].weight, numpy_state["0.weight"], atol=1e-6, rtol=1e-6)
    cpu_state = {k: v.to("cpu", dtype="float64") for k, v in net.state_dict().items()}
    other.load_state_dict(cpu_state)  # Tensors on another device and of another dtype
    assert_close(other[0].weight, net[0].weight.numpy(), atol=0, rtol=0)


def test_checkpoints_still_round_trip(tmp_path):
    net = _net()
    path = tmp_path / "net.safetensors"
    gradcore.save(path, net, epoch=3)
    fresh = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ReLU())
    ckpt = gradcore.load(path, fresh)
    assert ckpt.metadata == {"epoch": 3}
    for (name, a), (_, b) in zip(net.state_dict().items(), fresh.state_dict().items()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)
    gradcore.save(tmp_path / "dict.safetensors", net.state_dict())  # a state_dict of Tensors saves as it is
    gradcore.save(tmp_path / "both.safetensors", {"encoder": net})


# ---- help(gradcore.functional) ------------------------------------------------------------------------------------
def test_help_of_functional_lists_every_function():
    text = pydoc.render_doc(F, renderer=pydoc.plaintext)
    functions = text[text.index("FUNCTIONS"):]
    for name in F.__all__:
        # pydoc shows an alias as "clip = clamp(...)"
        assert f"\n    {name}(" in functions or f"\n    {name} = " in functions, name
        assert callable(getattr(F, name))
    for name in ["conv2d", "conv_transpose2d", "batch_norm", "mse_loss", "relu", "sum", "mean"]:
        assert name in F.__all__
    description = text[text.index("DESCRIPTION"):text.index("FUNCTIONS")]
    assert "elementwise: abs, add," in description and "conv2d: conv2d" in description
