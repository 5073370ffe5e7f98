"""gradcore.train.fit: custom steps and the standard step, History, health warnings, plots, resumption."""
import numpy as np
import pytest

import gradcore
from gradcore import nn
from gradcore import functional as F
from gradcore.data import DataLoader
from gradcore.diagnostics import GradcoreHealthWarning
from gradcore.train import History, evaluate, fit
from toy_training import MomentumSGD, Scale


def _data(n=40, seed=0):
    x = np.random.default_rng(seed).normal(size=(n, 4)).astype(np.float32)
    return x, np.tanh(0.8 * x + 0.1).astype(np.float32)


def _net(seed=0):
    return nn.Sequential(Scale(4, seed=seed), nn.Tanh(), Scale(4, seed=seed + 1))


def test_fit_with_model_loss_and_optimizer_learns():
    x, y = _data()
    net = _net()
    opt = MomentumSGD(net.parameters(), lr=0.05)
    history = fit(DataLoader((x, y), 8), model=net, loss_fn=F.mse_loss, optimizer=opt, epochs=6,
                  val_data=DataLoader(_data(16, seed=1), 8, shuffle=False), progress=False)
    assert isinstance(history, History)
    assert len(history.loss) == len(history.val_loss) == 6 and len(history.step_loss) == 6 * 5
    assert history.loss[-1] < 0.3 * history.loss[0] and history.val_loss[-1] < history.val_loss[0]
    assert history.warnings == []
    assert [r["step"] for r in history.health] == [0, 25], "health_every=25 steps, counted over the run"
    assert set(history.health[0]["layers"]) == {"0", "2"}
    assert all(v["update_ratio"] > 0 for v in history.health[1]["layers"].values())


def test_custom_step_is_called_once_per_batch_and_matches_a_plain_loop():
    x, y = _data()

    def run(use_fit):
        net = _net()
        opt = MomentumSGD(net.parameters(), lr=0.05)
        loader = DataLoader((x, y), 8, seed=4)

        def step(batch):
            xb, yb = batch
            opt.zero_grad()
            loss = F.mse_loss(net(xb), yb)
            loss.backward()
            opt.step()
            return loss

        if use_fit:
            return fit(loader, step, epochs=3, progress=False).step_loss
        losses = []
        for epoch in range(3):
            loader.set_epoch(epoch)
            losses += [step(batch).item() for batch in loader]
        return losses

    assert run(use_fit=True) == run(use_fit=False)


def test_reconstruction_batches_train_against_the_input():
    x, _ = _data()
    net = _net()
    history = fit(DataLoader(x, 10), model=net, loss_fn=F.mse_loss, optimizer=MomentumSGD(net.parameters(), 0.05),
                  epochs=3, progress=False)
    assert history.loss[-1] < history.loss[0]


def test_fit_warns_naming_the_layer_whose_gradients_vanish():
    x, y = _data()
    net = nn.Sequential(Scale(4), nn.Tanh(), Scale(4, weight=1e-12))  # gradients to layer "0" scaled by 1e-12
    opt = MomentumSGD(net.parameters(), lr=0.05)
    with pytest.warns(GradcoreHealthWarning) as caught:
        history = fit(DataLoader((x, y), 8), model=net, loss_fn=F.mse_loss, optimizer=opt, epochs=2,
                      health_every=2, progress=False)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1
    assert messages[0].startswith("layer '0' at step 0: relative gradient ||grad||/||w|| over the last layer's")
    assert "3.57e-14, healthy >= 0.001" in messages[0]
    assert [r["step"] for r in history.health if r["findings"]] == [0], "then it recovers: silence"


def test_fit_flags_a_constant_output():
    x, y = _data()
    net = nn.Sequential(Scale(4, weight=0.0), nn.Sigmoid())
    opt = MomentumSGD(net.parameters(), lr=0.0)
    with pytest.warns(GradcoreHealthWarning, match="output collapsed: held-out output spread"):
        fit(DataLoader((x, y), 8), model=net, loss_fn=F.mse_loss, optimizer=opt, epochs=1,
            val_data=DataLoader((x, y), 8), progress=False)


def test_health_every_and_monitor_with_a_custom_step():
    x, y = _data()
    encoder, decoder = Scale(4), Scale(4, seed=1)
    opt = MomentumSGD(list(encoder.parameters()) + list(decoder.parameters()), lr=0.05)

    def step(batch):
        xb, yb = batch
        opt.zero_grad()
        out = decoder(encoder(xb).tanh())
        loss = F.mse_loss(out, yb)
        loss.backward()
        opt.step()
        return loss, out

    history = fit(DataLoader((x, y), 8), step, epochs=2, monitor={"encoder": encoder, "decoder": decoder},
                  health_every=2, progress=False)
    assert [(r["epoch"], r["step"]) for r in history.health] == [(0, 0), (0, 2), (0, 4), (1, 6), (1, 8)]
    assert set(history.health[0]["layers"]) == {"encoder", "decoder"}
    assert history.health[0]["spread_ratio"] > 0.1, "the output was compared with the batch's target"


def test_progress_bar_and_loss_png(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    x, y = _data()
    net = _net()
    fit(DataLoader((x, y), 8), model=net, loss_fn=F.mse_loss, optimizer=MomentumSGD(net.parameters(), 0.05),
        epochs=2, val_data=DataLoader((x, y), 8), plot_dir=tmp_path)
    out = capsys.readouterr()
    assert "epoch 2/2: loss" in out.out and "held-out" in out.out and "samples/s" in out.out
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_image_grid_png(tmp_path):
    pytest.importorskip("matplotlib")
    from gradcore import plots

    images = np.random.default_rng(0).random((6, 1, 8, 8))
    path = plots.image_grid(tmp_path / "grid.png", [images, images[::-1]], row_titles=["a", "b"])
    assert open(path, "rb").read(4) == b"\x89PNG"
    assert plots.image_grid(tmp_path / "one.png", images[:, 0]).endswith("one.png")


def test_resume_with_start_epoch_continues_the_run(tmp_path):
    x, y = _data()

    def make():
        net = _net()
        return net, MomentumSGD(net.parameters(), lr=0.05)

    net, opt = make()
    unbroken = fit(DataLoader((x, y), 8, seed=2), model=net, loss_fn=F.mse_loss, optimizer=opt, epochs=4,
                   progress=False)

    net, opt = make()
    path = tmp_path / "ckpt.safetensors"
    first = fit(DataLoader((x, y), 8, seed=2), model=net, loss_fn=F.mse_loss, optimizer=opt, epochs=2,
                progress=False, on_epoch_end=lambda e, h: gradcore.save(path, net, opt, epoch=e + 1))
    net, opt = make()
    ckpt = gradcore.load(path, net, opt)
    rest = fit(DataLoader((x, y), 8, seed=2), model=net, loss_fn=F.mse_loss, optimizer=opt, epochs=4,
               start_epoch=ckpt.metadata["epoch"], progress=False)
    assert first.step_loss + rest.step_loss == unbroken.step_loss


def test_evaluate_restores_training_mode():
    x, y = _data()
    net = _net()
    loss, out = evaluate(DataLoader((x, y), 8, shuffle=False), model=net, loss_fn=F.mse_loss)
    assert net.training and out.shape == (8, 4)
    expected = F.mse_loss(net(gradcore.tensor(x)), gradcore.tensor(y)).item()
    assert loss == pytest.approx(expected, rel=1e-5)


def test_bad_arguments():
    x, y = _data()
    with pytest.raises(ValueError, match="step="):
        fit(DataLoader((x, y), 8), model=_net())
    with pytest.raises(ValueError, match="val_step"):
        fit(DataLoader((x, y), 8), lambda b: 0.0, val_data=[(x, y)])
    with pytest.raises(ValueError, match="epochs"):
        fit(DataLoader((x, y), 8), lambda b: 0.0, epochs=-1)
    with pytest.raises(TypeError, match="loss or"):
        fit(DataLoader((x, y), 8), lambda b: (1.0, 2.0, 3.0), progress=False)
