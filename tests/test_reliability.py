"""Regression tests for the reliability issue (#15): no crash, no silent wrong answer, from any Python call.
Code that crashed the interpreter runs in a child process (tests/isolated.py), so a regression fails one test."""
import math
import pickle
import threading

import numpy as np
import pytest

import gradcore as gc
from isolated import assert_runs_cleanly

F = gc.functional


# ---- 1. crashes ------------------------------------------------------------------------------------------------

def test_clip_grad_norm_from_two_threads_on_different_parameters():
    assert_runs_cleanly("""
        import threading
        import gradcore as gc

        def worker(seed, sizes):
            params = [gc.randn(n, requires_grad=True) for n in sizes]
            for p in params:
                p.grad = gc.randn(n := p.numel)
            for _ in range(300):
                gc.clip_grad_norm_(params, 0.5)

        threads = [threading.Thread(target=worker, args=(i, sizes))
                   for i, sizes in enumerate([[100000, 7, 3000], [5, 70000, 200, 9, 40000]])]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print("ok")
    """)


@pytest.mark.parametrize("shape", [(2**62 + 1, 4), (2**61, 4), (3, 2**62, 2**62)], ids=str)
def test_a_shape_whose_element_count_overflows_is_refused(shape):
    with pytest.raises(ValueError, match=r"shape: .* elements"):
        gc.zeros(*shape)


def test_a_dimension_beyond_int64_is_refused_naming_the_shape():
    with pytest.raises(ValueError, match=r"shape: expected integers in \[0, 2\*\*63\)"):
        gc.zeros(2**64)
    with pytest.raises(TypeError, match="shape: expected integers"):
        gc.zeros(2.5)


def test_an_empty_dimension_makes_any_shape_empty():
    assert gc.zeros(0, 2**62, 2**62).numel == 0


def test_reshape_into_an_overflowing_shape_is_refused():
    with pytest.raises(ValueError, match="shape: .* elements"):
        gc.zeros(6).reshape(2**62, 2**62, -1)


def test_an_allocation_too_large_for_memory_is_a_memory_error_saying_what_was_asked():
    with pytest.raises(MemoryError, match=r"cannot allocate \d+ bytes for a float32 array of shape"):
        gc.zeros(2**50, 4)


def test_overflowing_shapes_fed_to_ops_do_not_crash():
    assert_runs_cleanly("""
        import gradcore as gc
        for make in (lambda: gc.zeros(2**62 + 1, 4), lambda: gc.zeros(2**31, 2**31, 4, 4)):
            try:
                x = make()
            except ValueError:
                continue
            raise SystemExit(f"made a tensor of shape {x.shape} and numel {x.numel}")
    """)


# ---- 2. silent wrong answers -----------------------------------------------------------------------------------

@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "no_bias"])
def test_conv2d_with_zero_input_channels_is_the_bias(groups, with_bias):
    from reference import conv2d as ref
    x = gc.randn(2, 0, 5, 4, dtype="float64")
    w = gc.randn(4, 0, 3, 3, dtype="float64")
    b = gc.randn(4, dtype="float64") if with_bias else None
    for _ in range(3):  # fresh allocations each time: uninitialised memory would differ
        y = F.conv2d(x, w, b, padding=1, groups=groups)
        expected = ref.conv2d(x.numpy(), w.numpy(), None if b is None else b.numpy(), padding=(1, 1, 1, 1),
                              groups=groups)
        np.testing.assert_array_equal(y.numpy(), expected)


@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "no_bias"])
def test_conv_transpose2d_with_zero_input_channels_is_the_bias(with_bias):
    x = gc.randn(2, 0, 3, 3, dtype="float64")
    w = gc.randn(0, 5, 3, 3, dtype="float64")
    b = gc.randn(5, dtype="float64") if with_bias else None
    for _ in range(3):
        y = F.conv_transpose2d(x, w, b, stride=2)
        expected = np.broadcast_to(b.numpy()[None, :, None, None] if with_bias else 0.0, (2, 5, 7, 7))
        np.testing.assert_array_equal(y.numpy(), expected)


def test_conv2d_with_zero_input_channels_has_gradients_of_the_right_shapes():
    x = gc.randn(2, 0, 5, 4, requires_grad=True)
    w = gc.randn(3, 0, 3, 3, requires_grad=True)
    b = gc.randn(3, requires_grad=True)
    F.conv2d(x, w, b).sum().backward()
    assert x.grad.shape == x.shape and w.grad.shape == w.shape
    np.testing.assert_array_equal(b.grad.numpy(), np.full(3, 2 * 3 * 2, np.float32))


def test_backward_from_many_threads_into_one_shared_leaf_loses_no_update():
    w = gc.zeros(1 << 20, requires_grad=True)
    runs_per_thread, threads = 10, 4

    def worker():
        for _ in range(runs_per_thread):
            (w * 1.0).sum().backward()  # adds 1 to every element of w.grad

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    np.testing.assert_array_equal(w.grad.numpy(), np.full(1 << 20, runs_per_thread * threads, np.float32))


def _sigmoid_square_graph():
    x = gc.tensor([1.0, -2.0, 0.5], requires_grad=True)
    y = x.sigmoid()  # saves its output y for backward
    return x, y, (y * y).sum()


@pytest.mark.parametrize("modify", [lambda y: y.fill_(0.0), lambda y: y.zero_(), lambda y: y.copy_(gc.ones(3)),
                                    lambda y: y.detach().fill_(2.0), lambda y: y.reshape(3, 1).fill_(2.0)],
                         ids=["fill_", "zero_", "copy_", "through_detach", "through_reshape"])
def test_modifying_a_saved_value_in_place_makes_backward_raise(modify):
    x, y, loss = _sigmoid_square_graph()
    modify(y)
    with pytest.raises(RuntimeError, match="modified by an inplace operation.*expected version 0"):
        loss.backward()


def test_modifying_a_value_after_backward_or_one_not_saved_is_fine():
    x, y, loss = _sigmoid_square_graph()
    loss.backward()
    y.fill_(0.0)
    a = gc.tensor([1.0, 2.0], requires_grad=True)
    b = a + 1.0  # affine saves its input a, not b
    c = (b * 2.0).sum()
    b.fill_(5.0)
    c.backward()
    np.testing.assert_array_equal(a.grad.numpy(), [2.0, 2.0])


def test_an_optimizer_step_between_forward_and_backward_makes_backward_raise():
    w = gc.tensor([1.0, 2.0], requires_grad=True)
    opt = gc.optim.SGD([w], lr=0.1)
    (w * w).sum().backward()
    loss = (w * w).sum()
    opt.step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_relu_keeps_nan_and_passes_its_gradient_as_pytorch():
    x = gc.tensor([float("nan"), -1.0, 0.0, 2.0], requires_grad=True)
    y = F.relu(x)
    np.testing.assert_array_equal(y.numpy(), [np.nan, 0.0, 0.0, 2.0])
    y.backward(gc.ones(4))
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 0.0, 0.0, 1.0])


@pytest.mark.parametrize("bad", [1.5, -0.1, float("nan"), float("inf")], ids=str)
def test_binary_cross_entropy_refuses_inputs_outside_0_1(bad):
    p = gc.tensor([0.2, bad, 0.7])
    with pytest.raises(ValueError, match=r"binary_cross_entropy: input: expected probabilities in \[0, 1\]"):
        F.binary_cross_entropy(p, gc.tensor([0.0, 1.0, 1.0]))


def test_binary_cross_entropy_accepts_the_ends_of_0_1():
    loss = F.binary_cross_entropy(gc.tensor([0.0, 1.0, 0.5]), gc.tensor([0.0, 1.0, 1.0]), reduction="none")
    np.testing.assert_allclose(loss.numpy(), [0.0, 0.0, math.log(2)], rtol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_gradient_of_x_to_the_power_0_is_0_everywhere(dtype):
    x = gc.tensor([0.0, -2.0, 3.0], dtype=dtype, requires_grad=True)
    (x ** 0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 0.0])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("peephole", [False, True], ids=["no_peephole", "zero_peephole"])
def test_conv_lstm_gates_carry_an_infinite_cell_state_as_the_equations_do(dtype, peephole):
    # pre = 0: i = f = o = 1/2, g = 0, so c' = c / 2 = +-inf and h' = tanh(c') / 2 = +-1/2.
    pre = gc.zeros(1, 4, 1, 3, dtype=dtype)
    c = gc.tensor(np.array([np.inf, -np.inf, 2.0]).reshape(1, 1, 1, 3), dtype=dtype)
    w = gc.zeros(3, 1, 1, 3, dtype=dtype) if peephole else None
    h, c_next = F.conv_lstm_gates(pre, c, w)
    np.testing.assert_allclose(c_next.numpy().ravel(), [np.inf, -np.inf, 1.0], rtol=1e-6)
    np.testing.assert_allclose(h.numpy().ravel(), [0.5, -0.5, 0.5 * np.tanh(1.0)], rtol=1e-6)


def test_clip_grad_norm_raises_when_a_float32_norm_overflows_to_inf():
    p = gc.zeros(2, requires_grad=True)
    p.grad = gc.tensor([3e38, 3e38])  # each finite; the norm, 4.2e38, is above float32's largest 3.4e38
    with pytest.raises(RuntimeError, match="non-finite"):
        gc.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    np.testing.assert_array_equal(p.grad.numpy(), np.float32([3e38, 3e38]))  # left alone
    assert math.isinf(gc.clip_grad_norm_([p], 1.0).item())


def test_clip_grad_norm_of_float64_gradients_near_float32_max_is_finite():
    p = gc.zeros(2, dtype="float64", requires_grad=True)
    p.grad = gc.tensor(np.array([3e38, 3e38]))
    norm = gc.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    assert norm.item() == pytest.approx(math.sqrt(2) * 3e38)


@pytest.mark.parametrize("shape", [(3.9, 2), (2.0, 4), (True, 8), ("2", 4)], ids=str)
def test_reshape_refuses_dimensions_that_are_not_integers(shape):
    with pytest.raises(TypeError, match="shape: expected integers"):
        gc.zeros(8).reshape(*shape)


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(batch_size=True), TypeError, "batch_size: expected an integer, got True"),
    (dict(batch_size=2.0), TypeError, "batch_size: expected an integer"),
    (dict(batch_size=0), ValueError, "batch_size: expected an integer >= 1"),
    (dict(batch_size=2, seed=-1), ValueError, "seed: expected an integer >= 0"),
    (dict(batch_size=2, seed=1.5), TypeError, "seed: expected an integer"),
], ids=["batch_size_True", "batch_size_float", "batch_size_0", "seed_negative", "seed_float"])
def test_data_loader_checks_its_integers_when_made(kwargs, error, words):
    with pytest.raises(error, match=words):
        gc.data.DataLoader(np.zeros((4, 2)), **kwargs)


def test_data_loader_refuses_a_0d_array_naming_it():
    with pytest.raises(ValueError, match=r"arrays\[1\]: expected an array with a first"):
        gc.data.DataLoader((np.zeros((4, 2)), np.float64(3.0)), 2)


@pytest.mark.parametrize("ndim", [9, 17])
def test_sum_over_more_than_8_dimensions_raises_instead_of_a_wrong_number(ndim):
    x = gc.zeros(*([2] * ndim))
    with pytest.raises(ValueError, match="x: sum supports at most 8 dimensions"):
        x.sum(tuple(range(0, ndim, 2)))


def test_sum_over_8_dimensions_matches_numpy():
    a = np.random.default_rng(0).random([2, 3] * 4)
    for axes in [(0, 2, 4, 6), (1, 3, 5, 7), None]:
        np.testing.assert_allclose(gc.tensor(a).sum(axes).numpy(), a.sum(axes), rtol=1e-12)


# ---- 3. valid input refused ------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_numpy_array_that_went_through_pickle_is_accepted(dtype):
    a = pickle.loads(pickle.dumps(np.arange(6, dtype=dtype).reshape(2, 3)))
    assert a.dtype is not np.dtype(dtype)  # the case that was refused: an equal dtype, another object
    np.testing.assert_array_equal(gc.from_numpy(a).numpy(), a)
    np.testing.assert_array_equal(gc.tensor(a).numpy(), a)
    assert gc.tensor(a).dtype == dtype


def test_a_numpy_array_from_another_process_is_accepted():
    import multiprocessing
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        a = pool.apply(np.ones, ((2, 2),))
    np.testing.assert_array_equal(gc.from_numpy(a).numpy(), np.ones((2, 2)))


def test_a_byte_swapped_array_is_refused_by_from_numpy_and_converted_by_tensor():
    a = np.arange(3, dtype=">f8")
    with pytest.raises(TypeError, match="array: expected dtype float32, float64, int64 or bool in native byte order"):
        gc.from_numpy(a)
    np.testing.assert_array_equal(gc.tensor(a).numpy(), [0.0, 1.0, 2.0])


def test_a_thread_count_far_beyond_the_machine_is_refused_instead_of_crashing():
    with pytest.raises(ValueError, match=r"n: expected an integer <= 4096, got 100000"):
        gc.set_num_threads(100000)
    assert_runs_cleanly("""
        import gradcore as gc
        gc.set_num_threads(4096)
        x = gc.randn(1 << 16)
        assert (x * x).sum().item() > 0
    """)
