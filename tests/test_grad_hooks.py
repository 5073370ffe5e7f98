"""Tensor.register_post_accumulate_grad_hook: a leaf's hook runs once per backward, right after its gradient is
complete (PyTorch's semantics), which is what DistributedDataParallel starts its bucket reductions from."""
import numpy as np
import pytest

import gradcore as gc


def leaf(values, dtype="float64"):
    return gc.tensor(np.asarray(values, dtype=dtype), requires_grad=True)


def record_into(log, name):
    """A hook that logs (name, the leaf's gradient at that moment)."""
    return lambda t: log.append((name, t.grad.numpy().copy()))


def test_the_hook_sees_the_complete_gradient_of_a_leaf_used_by_several_nodes():
    w = leaf([1.0, 2.0])
    x = leaf([3.0, 4.0])
    log = []
    w.register_post_accumulate_grad_hook(record_into(log, "w"))
    # w feeds three nodes (w*x, w*w, w.sum()) whose backward runs at different points of the walk.
    loss = (w * x).sum() + (w * w).sum() * 2.0 + w.sum()
    loss.backward()
    assert [name for name, _ in log] == ["w"]  # once, not once per use
    np.testing.assert_array_equal(log[0][1], x.numpy() + 4.0 * w.numpy() + 1.0)
    np.testing.assert_array_equal(log[0][1], w.grad.numpy())


def test_the_hook_runs_once_per_backward_and_sees_the_accumulated_grad():
    w = leaf([1.0, -1.0])
    log = []
    w.register_post_accumulate_grad_hook(record_into(log, "w"))
    for _ in range(3):
        (w * 3.0).sum().backward()
    assert [g.tolist() for _, g in log] == [[3.0, 3.0], [6.0, 6.0], [9.0, 9.0]]


def test_a_hook_runs_before_the_rest_of_backward_when_its_leaf_is_done_early():
    # The last layer's weight is final after its node; the first layer's only at the end of the walk.
    first, last = leaf(np.ones((3, 3))), leaf(np.ones((3, 3)))
    x = gc.tensor(np.eye(3))
    order = []
    first.register_post_accumulate_grad_hook(lambda t: order.append("first"))
    last.register_post_accumulate_grad_hook(lambda t: order.append("last"))
    ((x @ first).tanh() @ last).sum().backward()
    assert order == ["last", "first"]


def test_hooks_run_in_registration_order_and_may_change_grad_in_place():
    w = leaf([2.0])
    seen = []
    w.register_post_accumulate_grad_hook(lambda t: t.grad.add_(t.grad))  # doubles it
    w.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.item()))
    (w * w).sum().backward()
    assert seen == [8.0] and w.grad.item() == 8.0


def test_no_gradient_reaching_the_leaf_means_no_call():
    used, unused = leaf([1.0]), leaf([1.0])
    calls = []
    used.register_post_accumulate_grad_hook(lambda t: calls.append("used"))
    unused.register_post_accumulate_grad_hook(lambda t: calls.append("unused"))
    (used * 2.0).sum().backward()
    assert calls == ["used"] and unused.grad is None


def test_a_leaf_passed_as_the_output_itself_gets_its_hook():
    w = leaf([1.0, 2.0])
    calls = []
    w.register_post_accumulate_grad_hook(lambda t: calls.append(t.grad.tolist()))
    w.backward(gc.tensor([1.0, 1.0], dtype="float64"))
    assert calls == [[1.0, 1.0]]


def test_autograd_grad_leaves_grad_alone_and_calls_no_hook():
    w = leaf([1.0, 2.0])
    calls = []
    w.register_post_accumulate_grad_hook(lambda t: calls.append(1))
    (g,) = gc.grad((w * w).sum(), [w])
    assert g.tolist() == [2.0, 4.0] and calls == [] and w.grad is None


def test_remove_unregisters_the_hook():
    w = leaf([1.0])
    calls = []
    handle = w.register_post_accumulate_grad_hook(lambda t: calls.append(1))
    (w * 2.0).sum().backward()
    handle.remove()
    handle.remove()  # idempotent
    (w * 2.0).sum().backward()
    assert calls == [1]


def test_bad_registrations_raise():
    w = leaf([1.0])
    with pytest.raises(TypeError, match="hook"):
        w.register_post_accumulate_grad_hook("not callable")
    with pytest.raises(RuntimeError, match="non-leaf"):
        (w * 2.0).register_post_accumulate_grad_hook(lambda t: None)
    with pytest.raises(RuntimeError, match="require grad"):
        gc.tensor([1.0]).register_post_accumulate_grad_hook(lambda t: None)


def test_parameters_of_a_module_work_as_leaves():
    gc.manual_seed(0)
    net = gc.nn.Sequential(gc.nn.Linear(4, 3), gc.nn.Tanh(), gc.nn.Linear(3, 2))
    done = []
    for name, p in net.named_parameters():
        p.register_post_accumulate_grad_hook(lambda t, name=name: done.append(name))
    net(gc.randn(5, 4)).sum().backward()
    assert sorted(done) == sorted(name for name, _ in net.named_parameters())
    assert set(done[:2]) == {"2.weight", "2.bias"}  # the last layer's gradients are complete first
