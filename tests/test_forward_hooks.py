"""nn.Module.register_forward_hook, as in PyTorch: hook(module, inputs, output) after forward, a returned value
replaces the output, the handle's remove() (or leaving `with handle:`) unregisters it."""
import numpy as np
import pytest

import gradcore
from gradcore import nn


def _x():
    return gradcore.tensor(np.array([[-1.0, 2.0], [3.0, -4.0]], dtype=np.float32))


def test_hook_sees_the_module_the_positional_inputs_and_the_output():
    relu = nn.ReLU()
    seen = []
    relu.register_forward_hook(lambda module, inputs, output: seen.append((module, inputs, output)))
    x = _x()
    y = relu(x)
    assert len(seen) == 1
    module, inputs, output = seen[0]
    assert module is relu and isinstance(inputs, tuple) and inputs[0] is x and output is y


def test_hooks_run_in_registration_order_and_a_returned_value_replaces_the_output():
    relu = nn.ReLU()
    order = []
    relu.register_forward_hook(lambda m, i, o: order.append("first"))
    relu.register_forward_hook(lambda m, i, o: (order.append("second"), o * 2.0)[1])
    relu.register_forward_hook(lambda m, i, o: order.append(float(o.numpy()[1, 0])))  # sees the replaced output
    y = relu(_x())
    assert order == ["first", "second", 6.0]
    np.testing.assert_array_equal(y.numpy(), [[0.0, 4.0], [6.0, 0.0]])


def test_remove_and_context_manager_unregister():
    relu = nn.ReLU()
    calls = []
    handle = relu.register_forward_hook(lambda m, i, o: calls.append(1))
    relu(_x())
    handle.remove()
    handle.remove()  # idempotent
    relu(_x())
    assert calls == [1]
    with relu.register_forward_hook(lambda m, i, o: calls.append(2)):
        relu(_x())
    relu(_x())
    assert calls == [1, 2]


def test_hooks_fire_for_submodules_inside_a_network_and_in_no_grad():
    net = nn.Sequential(nn.ReLU(), nn.Sigmoid())
    names = []
    for name, module in net.named_modules():
        module.register_forward_hook(lambda m, i, o, name=name: names.append(name))
    with gradcore.no_grad():
        net(_x())
    assert names == ["0", "1", ""]  # children finish before their parent


def test_a_hook_that_is_not_callable_is_refused():
    with pytest.raises(TypeError, match="hook"):
        nn.ReLU().register_forward_hook("not a function")
