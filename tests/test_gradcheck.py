"""gradcheck itself: it passes correct gradients, catches a planted wrong one and reports the worst mismatch,
and does its arithmetic in float64 whatever the inputs' dtype."""
import re

import numpy as np
import pytest

import gradcore
import gradcore.functional as F
from gradcore import _core
from tolerance import DEVICES, assert_close


def _randn(shape, seed, dtype="float64", device="cpu", requires_grad=True):
    values = np.random.default_rng(seed).standard_normal(shape)
    return gradcore.tensor(values, dtype=dtype, device=device, requires_grad=requires_grad)


class ScaledSquare(gradcore.Function):
    """y = x^2 with a backward of `factor` * 2x: factor 1 is right, anything else is a planted bug."""

    factor = 1.0

    def forward(self, x):
        self.save_for_backward(x)
        return _core.binary(x, x, _core.BinaryOp.mul)

    def backward(self, g):
        (x,) = self.saved
        two_x = _core.unary(x, _core.UnaryOp.affine, 2.0 * self.factor)
        return _core.binary(g, two_x, _core.BinaryOp.mul)


class WrongSquare(ScaledSquare):
    factor = 1.1


@pytest.mark.parametrize("device", DEVICES)
def test_passes_correct_gradients(device):
    x, y = _randn((3, 4), 0, device=device), _randn((4,), 1, device=device)
    assert gradcore.gradcheck(lambda a, b: (F.tanh(a * b) + a).sum(axis=0), [x, y]) is True
    assert gradcore.gradcheck(ScaledSquare.apply, [x]) is True
    # Several outputs, and a non-Tensor argument passed through untouched.
    assert gradcore.gradcheck(lambda a, scale: (a * scale, F.exp(a)), [x, 3.0]) is True


def test_a_planted_wrong_gradient_fails_and_reports_the_worst_mismatch():
    x = _randn((2, 5), 2)
    with pytest.raises(gradcore.GradcheckError) as info:
        gradcore.gradcheck(WrongSquare.apply, [x])
    message = str(info.value)
    assert "input 0 (shape (2, 5))" in message and "analytic" in message and "numeric" in message
    # Recompute, independently, which element is worst: |0.1 * 2x * v| grows with |x v| for the cotangent v that
    # gradcheck draws (seed 0, the output's shape).
    v = np.random.default_rng(0).standard_normal((2, 5))
    diff = np.abs(0.2 * x.numpy() * v)
    excess = diff - (1e-5 + 1e-3 * np.abs(2 * x.numpy() * v))
    worst = np.unravel_index(np.argmax(excess), (2, 5))
    first_row = re.search(r"input 0 \((\d+), (\d+)\): analytic", message)
    assert first_row and tuple(int(g) for g in first_row.groups()) == tuple(int(i) for i in worst), message
    assert f"{int(np.sum(excess > 0))} of 10 elements" in message


def test_names_only_the_input_whose_gradient_is_wrong():
    a, b = _randn((3,), 3), _randn((3,), 4)
    with pytest.raises(gradcore.GradcheckError) as info:
        gradcore.gradcheck(lambda p, q: WrongSquare.apply(q) + p, [a, b])
    assert "input 1 (shape (3,))" in str(info.value) and "input 0 " not in str(info.value)


def test_raise_exception_false_returns_false():
    x = _randn((4,), 5)
    assert gradcore.gradcheck(WrongSquare.apply, [x], raise_exception=False) is False
    assert gradcore.gradcheck(ScaledSquare.apply, [x], raise_exception=False) is True


def test_nan_gradients_are_failures():
    x = gradcore.tensor([-1.0, -2.0], dtype="float64", requires_grad=True)  # log is NaN left of 0
    assert gradcore.gradcheck(F.log, [x], raise_exception=False) is False


def test_float32_inputs_are_promoted_to_float64():
    seen = []

    def fn(t):
        seen.append(t.dtype)
        return F.exp(t * t)

    x = _randn((3, 3), 6, dtype="float32")
    assert gradcore.gradcheck(fn, [x])
    assert set(seen) == {"float64"}
    assert x.dtype == "float32" and x.grad is None  # the caller's tensor is untouched
    # The same check in float32 arithmetic would be noise: eps=1e-6 is below float32's resolution around 1.
    x32 = x.numpy()
    noisy = (np.exp((x32 + np.float32(1e-6)) ** 2) - np.exp((x32 - np.float32(1e-6)) ** 2)) / np.float32(2e-6)
    exact = 2 * x32.astype(np.float64) * np.exp(x32.astype(np.float64) ** 2)
    with pytest.raises(AssertionError):
        assert_close(noisy, exact, atol=1e-5, rtol=1e-3)


def test_checks_only_inputs_that_require_grad():
    x, frozen = _randn((3,), 7), _randn((3,), 8, requires_grad=False)
    # frozen's gradient would be wrong (WrongSquare), but it is not checked because it does not require grad.
    assert gradcore.gradcheck(lambda a, b: a * WrongSquare.apply(b), [x, frozen])


def test_bad_arguments():
    with pytest.raises(TypeError, match="inputs: expected at least one gradcore.Tensor"):
        gradcore.gradcheck(lambda a: a, [1.0])
    x = _randn((2,), 9)
    with pytest.raises(gradcore.GradcheckError, match="no output depends"):
        gradcore.gradcheck(lambda a: gradcore.ones(2, dtype="float64"), [x])


# ---- samples=k: a few random elements per input, for weights too big to check whole --------------------------------
def test_samples_checks_a_large_weight_in_seconds():
    """A dense layer's 784 x 200 weight (as a 1x1 convolution): 156800 elements would take 313600 forward passes;
    samples=20 takes 40 per input."""
    import time

    x = _randn((2, 784, 1, 1), 21)
    w = _randn((200, 784, 1, 1), 22) * 0.05
    w = w.detach().requires_grad_()
    calls = []

    def layer(a, weight):
        calls.append(1)
        return F.tanh(F.conv2d(a, weight))

    start = time.perf_counter()
    assert gradcore.gradcheck(layer, [x, w], samples=20) is True
    assert time.perf_counter() - start < 30
    assert len(calls) == 1 + 2 * 20 * 2  # the analytic pass, then two probes per sampled element of each input


def test_samples_are_seeded_and_distinct():
    """The same seed checks the same elements; each element at most once; a small input is checked whole."""
    probed = []

    def fn(a):
        probed.append(a.numpy().copy())
        return a * a

    x = _randn((50,), 23)
    gradcore.gradcheck(fn, [x], samples=7, seed=3)
    first = probed[1:]
    changed = sorted({int(np.flatnonzero(p != x.numpy())[0]) for p in first})
    assert len(changed) == 7 and all(0 <= c < 50 for c in changed)
    probed.clear()
    gradcore.gradcheck(fn, [x], samples=7, seed=3)
    assert sorted({int(np.flatnonzero(p != x.numpy())[0]) for p in probed[1:]}) == changed
    probed.clear()
    gradcore.gradcheck(fn, [_randn((4,), 24)], samples=7)
    assert len(probed) == 1 + 2 * 4  # fewer elements than samples: all of them, once


def test_samples_still_flag_a_wrong_gradient_and_report_the_aggregate():
    x = _randn((30, 40), 25)
    with pytest.raises(gradcore.GradcheckError) as info:
        gradcore.gradcheck(WrongSquare.apply, [x], samples=10)
    message = str(info.value)
    assert "of 10 sampled elements (of 1200, seed 0)" in message
    # The aggregate: the analytic gradient is 1.1 times the numeric one, so ||n - a|| / ||n + a|| = 0.1 / 2.1.
    ratio = float(re.search(r"\|\|numeric - analytic\|\| / \|\|numeric \+ analytic\|\| = ([0-9.e-]+)", message)[1])
    assert abs(ratio - 0.1 / 2.1) < 1e-4, message
    rows = re.findall(r"input 0 \((\d+), (\d+)\): analytic ([-0-9.e]+), numeric ([-0-9.e]+)", message)
    assert 1 <= len(rows) <= 5
    for r, c, analytic, numeric in rows:  # each reported element is a real one, with its own numbers
        v = np.random.default_rng(0).standard_normal((30, 40))[int(r), int(c)]
        expected = 2 * x.numpy()[int(r), int(c)] * v
        assert abs(float(numeric) - expected) < 1e-6 * max(1, abs(expected))
        assert abs(float(analytic) - 1.1 * expected) < 1e-6 * max(1, abs(expected))


def test_the_full_check_reports_the_aggregate_too():
    with pytest.raises(gradcore.GradcheckError, match=r"= 0.0476"):
        gradcore.gradcheck(WrongSquare.apply, [_randn((3, 4), 26)])


@pytest.mark.parametrize("value, error", [(0, ValueError), (-3, ValueError), (2.5, TypeError), ("5", TypeError),
                                          (True, TypeError)])
def test_bad_samples(value, error):
    with pytest.raises(error, match="samples"):
        gradcore.gradcheck(ScaledSquare.apply, [_randn((3,), 27)], samples=value)
