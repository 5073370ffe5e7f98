"""The CPU phase timer behind the bench's breakdown: off by default, counts calls per named phase when on, and
never changes a result."""
import numpy as np

import gradcore as gc
from gradcore import _core
from gradcore import functional as F


def conv_step():
    rng = np.random.default_rng(0)
    x = gc.tensor(rng.random((2, 3, 9, 9)), dtype="float32", requires_grad=True)
    w = gc.tensor(rng.random((4, 3, 3, 3)), dtype="float32", requires_grad=True)
    F.conv2d(x, w, stride=2, padding=1).sum().backward()
    return x.grad.numpy().copy(), w.grad.numpy().copy()


def test_off_by_default_records_nothing():
    _core.phase_times(reset=True)
    conv_step()
    assert _core.phase_times() == {}


def test_on_records_each_conv_phase_once_per_call(phase_timing):
    conv_step()
    times = _core.phase_times(reset=False)
    for phase in ("conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight"):
        seconds, calls = times[phase]
        assert calls == 1 and seconds > 0
    conv_step()
    assert _core.phase_times()["conv2d_forward"][1] == 2  # reset=False kept the first call
    assert _core.phase_times() == {}  # the previous read reset every slot


def test_timing_does_not_change_results(phase_timing):
    timed = conv_step()
    _core.set_phase_timing(False)
    untimed = conv_step()
    for a, b in zip(timed, untimed):
        np.testing.assert_array_equal(a, b)
