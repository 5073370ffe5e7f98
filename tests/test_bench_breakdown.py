"""bench/breakdown.py, the bench's --breakdown: it accounts for a step's whole time (each phase's rows sum to the
phase), attributes C++ calls to the op and phase they ran in, changes no result, and leaves nothing patched."""
import os
import sys

import numpy as np

import gradcore as gc
from gradcore import _core, nn
from gradcore import functional as F
from gradcore.autograd import Function
from gradcore.optim import Adam
from gradcore.optim.optimizer import Optimizer

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository root, for bench/
from bench.breakdown import breakdown_rows, measure_breakdown  # noqa: E402


def make_step(fuse=False):
    """A small conv step; the modules one by one unless fuse (then the first conv and its ReLU are one node)."""
    gc.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 1, 3, padding=1), nn.Sigmoid())
    model.fuse_activations = fuse
    optimizer = Adam(model.parameters(), lr=1e-3)
    x = gc.tensor(np.random.default_rng(0).random((2, 1, 8, 8)), dtype="float32")

    def step():
        optimizer.zero_grad()
        loss = F.mse_loss(model(x), x)
        loss.backward()
        optimizer.step()
        return loss

    return model, step


def test_rows_account_for_every_phase_and_ops_are_attributed():
    _, step = make_step()
    b = measure_breakdown(step, repeats=3, warmup=1)
    rows = breakdown_rows(b)
    for phase in ("zero_grad", "forward", "backward", "optimizer"):
        in_phase = sum(ms for p, _, _, ms in rows if p == phase)
        assert np.isclose(in_phase, b["phase_s"][phase] * 1e3, rtol=1e-6, atol=1e-9)
    assert np.isclose(sum(b["phase_s"].values()), b["instrumented_s"], rtol=1e-6)
    calls = {what: c for p, what, c, _ in rows if p == "forward"}
    assert calls["Conv2d 1->4: _core.conv2d_forward"] == 1 and calls["Conv2d 4->1: _core.conv2d_forward"] == 1
    assert calls["Unary relu: _core.unary(relu)"] == 1
    backward = {what: c for p, what, c, _ in rows if p == "backward"}
    assert backward["Conv2d 4->1: _core.conv2d_backward_input"] == 1
    assert {what for p, what, _, _ in rows if p == "optimizer"} >= {"_core.fused_adam (outside ops)"}
    assert set(b["kernel_phases"]) >= {"conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight"}


def test_fused_conv_relu_is_labelled_as_its_layer():
    _, step = make_step(fuse=True)
    rows = breakdown_rows(measure_breakdown(step, repeats=1, warmup=1))
    forward = {what: c for p, what, c, _ in rows if p == "forward"}
    assert forward["Conv2dReLU 1->4: _core.conv2d_forward"] == 1 and "Unary relu: _core.unary(relu)" not in forward
    backward = {what for p, what, _, _ in rows if p == "backward"}
    assert "Conv2dReLU 1->4: _core.conv_relu_backward" in backward


def test_changes_no_result_and_unpatches_everything():
    originals = (_core.binary, _core.conv2d_forward, _core.Array.__dict__["clone"], Optimizer.__dict__["step"],
                 Optimizer.__dict__["zero_grad"], gc.Tensor.__dict__["backward"],
                 {cls: dict(cls.__dict__) for cls in Function.__subclasses__()})
    model_b, step_b = make_step()
    measure_breakdown(step_b, repeats=1, warmup=1)  # four steps: warm-up, plain, the hooks' warm-up, measured
    model_c, step_c = make_step()
    for _ in range(4):
        step_c()
    for pb, pc in zip(model_b.parameters(), model_c.parameters()):
        assert np.array_equal(pb.numpy(), pc.numpy())
    now = (_core.binary, _core.conv2d_forward, _core.Array.__dict__["clone"], Optimizer.__dict__["step"],
           Optimizer.__dict__["zero_grad"], gc.Tensor.__dict__["backward"],
           {cls: dict(cls.__dict__) for cls in Function.__subclasses__()})
    assert now[:6] == originals[:6] and now[6] == originals[6]
    assert _core.phase_times() == {}  # the phase timer is off again
