"""gradcore.diagnostics: the device-side statistics, HealthMonitor's checks (scale-free, once per N steps, one
read-back per check), the findings' wording, the one-shot checks and the host-side helpers.
The reproductions of real failures and the no-false-alarm runs are in test_health_failures.py."""
import math
import warnings

import numpy as np
import pytest

import gradcore
from gradcore import diagnostics, nn
from gradcore import functional as F
from gradcore.diagnostics import GradcoreHealthWarning, HealthMonitor, Thresholds
from gradcore.diagnostics import statistics as S
from gradcore.optim import SGD
from toy_training import Scale


def _x(n=8, features=4, seed=0):
    return gradcore.tensor(np.random.default_rng(seed).normal(size=(n, features)), dtype="float32")


def _net(seed=0):
    return nn.Sequential(Scale(4, seed=seed), nn.Tanh(), Scale(4, seed=seed + 1))


def _train(net, monitor, steps, lr=0.05, target=lambda x: x * 0.5, shown=lambda y, t: (y, t)):
    """SGD steps on fresh batches; monitor.step(loss, *shown(output, target)) after each update. Returns the new
    findings."""
    opt = SGD(net.parameters(), lr=lr)
    found = []
    for i in range(steps):
        x = _x(seed=i)
        t = target(x)
        opt.zero_grad()
        y = net(x)
        loss = F.mse_loss(y, t)
        loss.backward()
        opt.step()
        found += monitor.step(loss, *shown(y, t))
    return found


def _checks(findings):
    return {(f.check, f.layer) for f in findings}


# ---- device-side statistics -----------------------------------------------------------------------------------------
def test_statistics_match_their_numpy_definitions():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(6, 3, 2, 2)).astype(np.float32)
    spread = a.astype(np.float64).std(axis=0).mean()
    assert S.batch_spread(gradcore.tensor(a)).item() == pytest.approx(spread, rel=1e-5)
    assert S.sum_squares(gradcore.tensor(a)).item() == pytest.approx(float((a.astype(np.float64) ** 2).sum()),
                                                                      rel=1e-5)

    relu = np.maximum(a, 0)
    relu[:, 0] = 0.0  # channel 0 is dead for the whole batch
    dead = 1.0 - (relu > 0).any(axis=0).mean()
    assert S.dead_fraction(gradcore.tensor(relu)).item() == pytest.approx(dead, abs=1e-6)
    assert dead == diagnostics.dead_relu_fraction(relu) >= 4 / 12

    z = rng.normal(size=(50, 40)) + np.linspace(-10, 10, 40)  # units from saturated low to saturated high
    sig, tanh = 1 / (1 + np.exp(-z)), np.tanh(z)
    expect_sig = ((4 * sig * (1 - sig)).mean(axis=0) < S.SATURATED_GAIN).mean()
    expect_tanh = ((1 - tanh ** 2).mean(axis=0) < S.SATURATED_GAIN).mean()
    assert 0 < expect_sig < 1 and 0 < expect_tanh < 1
    assert S.saturated_fraction(gradcore.tensor(sig), "sigmoid").item() == pytest.approx(expect_sig, abs=1e-9)
    assert S.saturated_fraction(gradcore.tensor(tanh), "tanh").item() == pytest.approx(expect_tanh, abs=1e-9)


def test_a_constant_batch_has_zero_spread_whatever_its_value():
    for value in (0.0, 7e-5, 0.5, 1e6):
        y = gradcore.full([5, 1, 3, 3], value)
        assert S.batch_spread(y).item() == 0.0


# ---- HealthMonitor: cadence, measurements, synchronisation ----------------------------------------------------------
def test_checks_run_on_the_first_step_and_every_n_and_measure_the_step_just_taken():
    net = _net()
    monitor = HealthMonitor(net, every=3, warn=False)
    opt = SGD(net.parameters(), lr=0.05)
    def weights():
        return {name: np.concatenate([p.numpy().ravel() for p in m.parameters()]).astype(np.float64)
                for name, m in (("0", net[0]), ("2", net[2]))}

    losses = []
    for i in range(7):
        if i == 3:  # the check at step 3 measures the update of step 3 alone
            before = weights()
        x = _x(seed=i)
        opt.zero_grad()
        loss = F.mse_loss(net(x), x * 0.5)
        loss.backward()
        opt.step()
        if i == 3:
            after = weights()
        losses.append(loss.item())
        monitor.step(loss)
    assert [r["step"] for r in monitor.records] == [0, 3, 6]
    assert monitor.losses == pytest.approx(losses, rel=1e-6)
    first, second = monitor.records[0], monitor.records[1]
    assert first["layers"]["0"]["update_ratio"] is None, "no copy of the weights before the first step"
    for name in ("0", "2"):  # over the weights after the step
        assert second["layers"][name]["update_ratio"] == pytest.approx(
            np.linalg.norm(after[name] - before[name]) / np.linalg.norm(after[name]), rel=1e-4)
    for name, module in (("0", net[0]), ("2", net[2])):  # gradients are those of the last step (step 6)
        g = np.concatenate([p.grad.numpy().ravel() for p in module.parameters()])
        w = np.concatenate([p.numpy().ravel() for p in module.parameters()])
        assert monitor.records[2]["layers"][name]["grad_ratio"] == pytest.approx(
            np.linalg.norm(g) / np.linalg.norm(w), rel=1e-4)
    assert monitor.records[2]["order"] == ["0", "2"], "forward order, from the hooks"


def test_nothing_is_read_back_between_checks_and_once_per_check(monkeypatch):
    net = _net()
    monitor = HealthMonitor(net, every=4, warn=False)
    reads = []
    numpy = gradcore.Tensor.numpy

    def counting_numpy(self):
        reads.append(self.shape)
        return numpy(self)

    opt = SGD(net.parameters(), lr=0.05)
    per_step = []
    for i in range(9):
        x = _x(seed=i)
        opt.zero_grad()
        y = net(x)
        loss = F.mse_loss(y, x * 0.5)
        loss.backward()
        opt.step()
        with monkeypatch.context() as m:
            m.setattr(gradcore.Tensor, "numpy", counting_numpy)
            reads.clear()
            monitor.step(loss, y, x * 0.5)
            per_step.append(len(reads))
    assert per_step == [1, 0, 0, 0, 1, 0, 0, 0, 1], "one stacked read-back per check, none in between"
    assert len(monitor.losses) == 9


def test_activation_hooks_record_only_the_check_steps_training_forward():
    relu = nn.ReLU()
    net = nn.Sequential(Scale(4), relu, Scale(4, seed=1))
    monitor = HealthMonitor(net, every=2, warn=False)
    calls = []
    original = S.dead_fraction
    try:
        S.dead_fraction = lambda y: calls.append(1) or original(y)
        for step in range(4):
            with gradcore.no_grad():
                net(_x())  # an evaluation pass: never recorded
            loss = F.mse_loss(net(_x()), _x())
            monitor.step(loss)
    finally:
        S.dead_fraction = original
    assert len(calls) == 2, "the forwards of steps 0 and 2 only"
    assert set(monitor.records[0]["activations"]) == {"1"}
    monitor.remove()
    assert not relu._forward_hooks and not net[0]._forward_hooks


# ---- the checks -----------------------------------------------------------------------------------------------------
def test_a_healthy_net_raises_nothing():
    net = _net()
    monitor = HealthMonitor(net, every=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GradcoreHealthWarning)
        assert _train(net, monitor, 30) == []
    r = monitor.records[-1]
    assert 0.5 < r["spread_ratio"] < 2 and r["first_last"]["ratio"] > 0.1


def test_the_collapse_check_is_scale_free():
    # The same healthy run, output and target scaled by 1e-6: an absolute threshold would call it collapsed.
    ratios = {}
    for scale in (1.0, 1e-6):
        net = _net()
        monitor = HealthMonitor(net, every=1, warn=False)
        assert _train(net, monitor, 5, shown=lambda y, t, s=scale: (y * s, t * s)) == []
        ratios[scale] = [r["spread_ratio"] for r in monitor.records]
    assert ratios[1e-6] == pytest.approx(ratios[1.0], rel=1e-4)


@pytest.mark.parametrize("value", [0.0, 7e-5, 0.5, 1e6], ids=lambda v: f"constant={v:g}")
def test_a_constant_output_of_any_value_is_a_collapse(value):
    net = _net()
    monitor = HealthMonitor(net, every=1, warn=False)
    found = _train(net, monitor, 3, shown=lambda y, t: (y * 0.0 + value, t))
    collapse = [f for f in found if f.check == "collapse"]
    assert len(collapse) == 1 and collapse[0].step == 1, "not at the first check (a net may start constant)"
    assert collapse[0].value == 0.0 and collapse[0].layer == "2", "the signal is lost at the last layer"


def test_a_nearly_constant_output_is_a_collapse_once_the_loss_stops_falling():
    thresholds = Thresholds(loss_window=6, update_ratio=(0.0, 0.3))  # a frozen net is the point here
    net = _net()
    monitor = HealthMonitor(net, every=1, thresholds=thresholds, warn=False)
    opt = SGD(net.parameters(), lr=0.0)  # frozen: the loss does not fall
    for step in range(8):
        x = _x(seed=step % 2)
        opt.zero_grad()
        y = net(x)
        loss = F.mse_loss(y, x)
        loss.backward()
        opt.step()
        found = monitor.step(loss, y * 0.01, x)  # 1% of the target's spread: small, above collapse_now
        assert bool(found) == (step == 5), (step, found)  # 6 losses seen, the mean stopped falling
        if found:
            collapse = found[0]
    assert collapse.check == "collapse" and "the loss stopped falling" in collapse.healthy
    assert 0.005 < collapse.value < 0.02
    assert monitor.records[-1]["findings"][0].check == "collapse", "still recorded, not warned again"


def test_a_spread_that_falls_below_a_tenth_of_its_best_is_a_collapse():
    net = _net()
    monitor = HealthMonitor(net, every=1, thresholds=Thresholds(update_ratio=(0.0, 0.3)), warn=False)
    scales = iter([1.0, 1.0, 0.2, 0.03, 0.02])  # 0.03 < 0.05 and < 0.1 x the best (~1)
    found = _train(net, monitor, 5, lr=0.0, target=lambda x: x, shown=lambda y, t: (y * next(scales), t))
    assert [(f.check, f.step) for f in found] == [("collapse", 3)]


def test_a_graph_cut_between_two_networks_names_the_cut_off_one():
    encoder, decoder = Scale(4), Scale(4, seed=1)
    monitor = HealthMonitor({"encoder": encoder, "decoder": decoder}, warn=False)
    x = _x()
    y = decoder(encoder(x).detach())  # the encoder gets no gradient
    F.mse_loss(y, x).backward()
    found = monitor.step(F.mse_loss(y, x), y, x)
    assert _checks(found) == {("no_gradient", "encoder")}
    assert "graph cut" in found[0].message


def test_dead_relus_and_saturated_sigmoids_name_their_module():
    net = nn.Sequential(Scale(4, weight=200.0), nn.Sigmoid(), Scale(4, seed=2), nn.ReLU())
    net[2].bias.copy_(np.full(4, -100.0, np.float32))  # layer 3's units never fire
    monitor = HealthMonitor(net, warn=False)
    x = _x()
    y = net(x)
    loss = F.mse_loss(y, x)
    loss.backward()
    found = monitor.step(loss)
    acts = monitor.records[0]["activations"]
    assert acts["1"]["fraction"] == 1.0 and acts["3"]["fraction"] == 1.0
    assert {("saturated", "1"), ("dead", "3")} <= _checks(found)


def test_a_first_layer_starving_behind_a_saturated_tanh_is_named():
    net = nn.Sequential(Scale(4, weight=60.0), nn.Tanh(), Scale(4, seed=1))  # tanh'(60 x) ~ 0
    monitor = HealthMonitor(net, warn=False)
    x = _x()
    y = net(x)
    loss = F.mse_loss(y, x)
    loss.backward()
    found = monitor.step(loss, y, x)
    starving = [f for f in found if f.check == "first_last"]
    assert len(starving) == 1 and starving[0].layer == "0" and starving[0].value < 1e-3
    assert "'2'" in starving[0].message, "it names the last layer it is compared with"
    assert ("saturated", "1") in _checks(found)


@pytest.mark.parametrize("lr, direction", [(1e-9, "barely learns"), (50.0, "thrashes")])
def test_update_to_weight_ratios_outside_the_band(lr, direction):
    # Reported from the third measured check on (the median of the checks so far, up to 5).
    net = _net()
    monitor = HealthMonitor(net, every=1, warn=False)
    found = _train(net, monitor, 4, lr=lr)
    updates = [f for f in found if f.check == "update_ratio"]
    assert {f.layer for f in updates} == {"0", "2"} and all(f.step == 3 for f in updates)
    assert all(direction in f.hint for f in updates)


def test_one_small_update_among_normal_ones_is_not_a_finding():
    net = _net()
    monitor = HealthMonitor(net, every=1, warn=False)
    opt = SGD(net.parameters(), lr=0.05)
    for i in range(6):
        opt.param_groups[0]["lr"] = 1e-9 if i == 4 else 0.05  # one step barely moves the weights
        x = _x(seed=i)
        opt.zero_grad()
        loss = F.mse_loss(net(x), x * 0.5)
        loss.backward()
        opt.step()
        assert monitor.step(loss) == []
    assert monitor.records[4]["layers"]["0"]["update_ratio"] < 1e-8


def test_non_finite_gradients_are_named():
    net = _net()
    monitor = HealthMonitor(net, warn=False)
    x = _x()
    loss = F.mse_loss(net(x), x)
    loss.backward()
    net[2].weight.grad.copy_(np.array([1.0, np.nan, 0.0, 0.0], np.float32))
    assert ("nonfinite", "2") in _checks(monitor.step(loss))


def test_a_finding_names_the_layer_value_healthy_range_and_fix():
    net = _net()
    monitor = HealthMonitor(net, every=1, warn=False)
    finding = [f for f in _train(net, monitor, 4, lr=1e-9) if f.layer == "0"][0]
    message = str(finding)
    assert message.startswith("layer '0' at step 3: update-to-weight ratio (median of the last 3 checks) ")
    assert f"{finding.value:.3g}" in message and "healthy 3e-05..0.3" in message
    assert "learning rate too low" in message and "init" in message


def test_a_finding_is_warned_once_while_it_persists():
    net = _net()
    monitor = HealthMonitor(net, every=1)
    with pytest.warns(GradcoreHealthWarning) as caught:
        found = _train(net, monitor, 8, lr=1e-9)
    assert len(caught) == 2 and len(found) == 2  # layers "0" and "2", at step 3 only
    assert all(len(r["findings"]) == 2 for r in monitor.records[3:]), "recorded at every check"


def test_fit_runs_the_monitor_and_keeps_its_records():
    x = np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32)
    net = _net()
    history = gradcore.train.fit(gradcore.data.DataLoader((x, np.tanh(x)), 8), model=net, loss_fn=F.mse_loss,
                                 optimizer=SGD(net.parameters(), lr=0.05), epochs=2, health_every=2, progress=False)
    assert [(r["epoch"], r["step"]) for r in history.health] == [(0, 0), (0, 2), (0, 4), (1, 6), (1, 8)]
    assert history.warnings == [] and history.health[1]["layers"]["0"]["update_ratio"] > 0
    assert not net[0]._forward_hooks, "fit removes its hooks"


# ---- one-shot checks and host helpers ------------------------------------------------------------------------------
def test_check_output_compares_the_spread_with_the_targets():
    x = _x()
    assert diagnostics.check_output(x * 0.9, x) == []
    assert diagnostics.check_output(x * 1e-7, x * 1e-7) == [], "scale-free"
    found = diagnostics.check_output(x * 0.0 + 0.3, x, name="held-out reconstruction")
    assert len(found) == 1 and found[0].check == "collapse" and "held-out reconstruction" in str(found[0])
    assert diagnostics.spread_ratio(np.ones((4, 3)), x.numpy()[:4, :3]) == 0.0


def test_check_gradients_names_a_cut_and_a_starving_first_layer():
    encoder, decoder = Scale(4), Scale(4, seed=1)
    x = _x()
    F.mse_loss(decoder(encoder(x).detach()), x).backward()
    found = diagnostics.check_gradients({"encoder": encoder, "decoder": decoder})
    assert _checks(found) == {("no_gradient", "encoder")}

    net = nn.Sequential(Scale(4, weight=60.0), nn.Tanh(), Scale(4, seed=1))
    F.mse_loss(net(x), x).backward()
    assert _checks(diagnostics.check_gradients(net)) == {("first_last", "0")}
    assert diagnostics.check_gradients(_net()) == [], "no gradients at all: nothing to compare"


def test_grad_norms_per_layer_and_parameter():
    net = _net()
    x = _x()
    F.mse_loss(net(x), x * 0.5).backward()
    per_param = diagnostics.grad_norms(net, per="parameter")
    assert list(per_param) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    for name, p in net.named_parameters():
        assert per_param[name] == pytest.approx(np.linalg.norm(p.grad.numpy()), rel=1e-6)
    per_layer = diagnostics.grad_norms(net)
    assert per_layer["0"] == pytest.approx(math.hypot(per_param["0.weight"], per_param["0.bias"]), rel=1e-6)


def test_host_update_ratios():
    net = _net()
    before = diagnostics.snapshot(net)
    opt = SGD(net.parameters(), lr=0.01)
    x = _x()
    F.mse_loss(net(x), x * 0.5).backward()
    opt.step()
    ratios = diagnostics.update_ratios(before, net)
    for layer, index in (("0", 0), ("2", 2)):
        w0 = np.concatenate([before[layer]["weight"], before[layer]["bias"]])
        w1 = np.concatenate([net[index].weight.numpy(), net[index].bias.numpy()])
        assert ratios[layer] == pytest.approx(np.linalg.norm(w1 - w0) / np.linalg.norm(w0), rel=1e-5)


def test_warn_also_writes_above_the_progress_bar(capsys):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        diagnostics.warn(["layer 'x': something"])
    assert caught[0].category is GradcoreHealthWarning
    assert "gradcore health: layer 'x'" in capsys.readouterr().out


def test_bad_arguments():
    net = _net()
    with pytest.raises(TypeError, match="model"):
        HealthMonitor([1, 2])
    with pytest.raises(ValueError, match="every"):
        HealthMonitor(net, every=0)
    with pytest.raises(TypeError, match="thresholds"):
        HealthMonitor(net, thresholds={"dead": 0.5})
    with pytest.raises(ValueError, match="update_ratio"):
        Thresholds(update_ratio=(1e-2, 1e-3))
    with pytest.raises(ValueError, match="loss_window"):
        Thresholds(loss_window=1)
    monitor = HealthMonitor(net, warn=False)
    with pytest.raises(ValueError, match="loss"):
        monitor.step(_x())
    with pytest.raises(TypeError, match="loss"):
        monitor.step("0.5")
    with pytest.raises(TypeError, match="output"):
        monitor.step(0.5, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="per"):
        diagnostics.grad_norms(Scale(2), per="module")
    with pytest.raises(ValueError, match="activation"):
        diagnostics.dead_relu_fraction(np.zeros(3))
    with pytest.raises(ValueError, match="kind"):
        S.saturated_fraction(_x(), "relu")


@pytest.mark.cuda
def test_cuda_measures_what_the_cpu_measures_with_one_read_back_per_check(monkeypatch):
    runs = {}
    for device in ("cpu", "cuda"):
        net = nn.Sequential(Scale(4), nn.ReLU(), Scale(4, seed=1), nn.Sigmoid()).to(device)
        monitor = HealthMonitor(net, every=2, warn=False)
        opt = SGD(net.parameters(), lr=0.05)
        reads = []
        numpy = gradcore.Tensor.numpy
        for i in range(5):
            x = _x(seed=i).to(device)
            opt.zero_grad()
            y = net(x)
            loss = F.mse_loss(y, x.sigmoid())
            loss.backward()
            opt.step()
            with monkeypatch.context() as m:
                m.setattr(gradcore.Tensor, "numpy", lambda self: reads.append(1) or numpy(self))
                monitor.step(loss, y, x.sigmoid())
        assert len(reads) == 3, f"{device}: one read-back per check (steps 0, 2, 4)"
        runs[device] = monitor.records
    for cpu, cuda in zip(runs["cpu"], runs["cuda"]):
        assert cuda["spread_ratio"] == pytest.approx(cpu["spread_ratio"], rel=1e-4)
        for name in cpu["layers"]:
            for key in ("grad_ratio", "update_ratio", "gain"):
                if cpu["layers"][name][key] is not None:
                    assert cuda["layers"][name][key] == pytest.approx(cpu["layers"][name][key], rel=1e-3), (name, key)
        assert {n: a["fraction"] for n, a in cuda["activations"].items()} == pytest.approx(
            {n: a["fraction"] for n, a in cpu["activations"].items()})
