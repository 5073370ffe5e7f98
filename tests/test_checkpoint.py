"""gradcore.save / gradcore.load: safetensors + JSON metadata, atomic writes, exact resumption."""
import os

import numpy as np
import pytest

import gradcore
from gradcore import nn
from gradcore import functional as F
from gradcore.data import DataLoader
from tolerance import assert_close
from toy_training import MomentumSGD, Scale


def _net(seed=0):
    return nn.Sequential(Scale(3, seed=seed), nn.Tanh(), Scale(3, seed=seed + 1), nn.Sigmoid())


def _train(net, optimizer, loader, epochs, start_epoch=0):
    losses = []
    for epoch in range(start_epoch, epochs):
        loader.set_epoch(epoch)
        for (x,) in loader:
            optimizer.zero_grad()
            loss = F.mse_loss(net(x), x * 0.5)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    return losses


def test_round_trip_of_module_optimizer_and_metadata(tmp_path):
    net = _net()
    opt = MomentumSGD(net.parameters())
    loader = DataLoader(np.random.default_rng(0).random((20, 3)).astype(np.float32), 5)
    _train(net, opt, loader, 1)
    path = tmp_path / "ckpt.safetensors"
    gradcore.save(path, net, optimizer=opt, epoch=1, note="hello", lrs=[0.1, 0.01])

    fresh = _net(seed=7)
    fresh_opt = MomentumSGD(fresh.parameters(), lr=0.5, momentum=0.0)
    ckpt = gradcore.load(path, fresh, optimizer=fresh_opt)
    for (name, a), (_, b) in zip(net.state_dict().items(), fresh.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert ckpt.metadata == {"epoch": 1, "note": "hello", "lrs": [0.1, 0.01]}
    assert fresh_opt.param_groups[0]["lr"] == 0.1 and fresh_opt.param_groups[0]["momentum"] == 0.9
    assert fresh_opt.param_groups[0]["betas"] == (0.9, 0.999), "tuples come back as tuples"
    assert fresh_opt.steps == opt.steps and set(fresh_opt.state) == set(opt.state), "integer keys restored"
    for i in opt.state:
        np.testing.assert_array_equal(fresh_opt.state[i]["momentum_buffer"], opt.state[i]["momentum_buffer"])


def test_file_is_plain_safetensors(tmp_path):
    from safetensors.numpy import load_file

    net = _net()
    path = tmp_path / "plain.safetensors"
    gradcore.save(path, net)
    tensors = load_file(str(path))
    assert set(tensors) == {f"model/{k}" for k in net.state_dict()}
    np.testing.assert_array_equal(tensors["model/0.weight"], net.state_dict()["0.weight"])


OPTIMIZERS = {
    "momentum_sgd": lambda params: MomentumSGD(params),
    "adam": lambda params: gradcore.optim.Adam(params, lr=0.05, weight_decay=1e-4),
    "adamw_amsgrad": lambda params: gradcore.optim.AdamW(params, lr=0.05, amsgrad=True),
}


@pytest.mark.parametrize("make_optimizer", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
def test_resuming_gives_the_same_next_losses(tmp_path, make_optimizer):
    data = np.random.default_rng(1).random((30, 3)).astype(np.float32)
    net = _net()
    opt = make_optimizer(net.parameters())
    unbroken = _train(net, opt, DataLoader(data, 7, seed=3), epochs=4)

    first = _net()
    first_opt = make_optimizer(first.parameters())
    before = _train(first, first_opt, DataLoader(data, 7, seed=3), epochs=2)
    path = tmp_path / "resume.safetensors"
    gradcore.save(path, first, optimizer=first_opt, epoch=2)
    del first, first_opt

    resumed = _net(seed=11)  # different initial values: everything must come from the file
    resumed_opt = make_optimizer(resumed.parameters())
    ckpt = gradcore.load(path, resumed, optimizer=resumed_opt)
    after = _train(resumed, resumed_opt, DataLoader(data, 7, seed=3), epochs=4, start_epoch=ckpt.metadata["epoch"])
    assert before + after == unbroken, "bitwise-equal losses after resuming"


def test_dict_of_modules(tmp_path):
    encoder, decoder = _net(0), _net(5)
    path = tmp_path / "two.safetensors"
    gradcore.save(path, {"encoder": encoder, "decoder": decoder})
    enc2, dec2 = _net(1), _net(2)
    ckpt = gradcore.load(path, {"encoder": enc2, "decoder": dec2})
    assert "encoder.0.weight" in ckpt.state and "decoder.2.bias" in ckpt.state
    assert_close(dec2[2].bias, decoder[2].bias, atol=0, rtol=0)
    assert_close(enc2[0].weight, encoder[0].weight, atol=0, rtol=0)


def test_state_dict_of_arrays_and_tensors(tmp_path):
    path = tmp_path / "state.safetensors"
    state = {"w": np.arange(6, dtype=np.float64).reshape(2, 3), "t": gradcore.ones(4), "count": np.array(3.0)}
    gradcore.save(path, state)
    ckpt = gradcore.load(path)
    np.testing.assert_array_equal(ckpt.state["w"], state["w"])
    assert ckpt.state["t"].dtype == np.float32 and ckpt.optimizer is None
    assert ckpt.state["count"].shape == () and ckpt.state["count"] == 3.0, "0-d arrays stay 0-d"


def test_a_crash_mid_write_leaves_the_old_file_intact(tmp_path, monkeypatch):
    net = _net()
    path = tmp_path / "ckpt.safetensors"
    gradcore.save(path, net, epoch=1)
    old = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full (simulated)")

    with monkeypatch.context() as m:
        m.setattr(os, "fsync", crash)  # the temporary file is written, then the "machine dies" before the rename
        with pytest.raises(OSError, match="simulated"):
            gradcore.save(path, _net(seed=3), epoch=2)
    assert path.read_bytes() == old
    assert gradcore.load(path).metadata["epoch"] == 1
    assert os.listdir(tmp_path) == ["ckpt.safetensors"], "no temporary file left behind"

    with monkeypatch.context() as m:
        m.setattr(os, "replace", crash)
        with pytest.raises(OSError, match="simulated"):
            gradcore.save(path, _net(seed=3), epoch=3)
    assert path.read_bytes() == old and os.listdir(tmp_path) == ["ckpt.safetensors"]


def test_errors(tmp_path):
    net = _net()
    with pytest.raises(TypeError, match="module_or_state"):
        gradcore.save(tmp_path / "x", [1, 2])
    with pytest.raises(TypeError, match="metadata"):
        gradcore.save(tmp_path / "x", net, when=object())
    with pytest.raises(TypeError, match="optimizer"):
        gradcore.save(tmp_path / "x", net, optimizer=object())
    path = tmp_path / "ok.safetensors"
    gradcore.save(path, net)
    with pytest.raises(ValueError, match="optimizer"):
        gradcore.load(path, net, optimizer=MomentumSGD(net.parameters()))
    with pytest.raises(KeyError, match="missing"):
        gradcore.load(path, nn.Sequential(Scale(3)))
    from safetensors.numpy import save_file
    foreign = tmp_path / "foreign.safetensors"
    save_file({"a": np.zeros(2, np.float32)}, str(foreign))
    with pytest.raises(ValueError, match="without gradcore metadata"):
        gradcore.load(foreign)


# ---- reliability (#15): stale temporaries, corrupt files, strictness, the optimizer's type ------------------------

def test_a_save_killed_mid_write_leaves_a_temporary_that_the_next_save_removes(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    path = tmp_path / "big.safetensors"
    child = subprocess.Popen([sys.executable, "-c", f"""
import os, time
import numpy as np
import gradcore
os.fsync = lambda fd: time.sleep(60)  # the bytes are written; the process is killed before the rename
gradcore.save({str(path)!r}, {{"w": np.zeros(100000, np.float32)}})
"""], env=dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p)))
    try:
        deadline = time.time() + 60
        while not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")] and time.time() < deadline:
            time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    stale = [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
    assert len(stale) == 1 and f"-{child.pid}." in stale[0]
    gradcore.save(path, _net())
    assert os.listdir(tmp_path) == ["big.safetensors"]


def test_the_temporary_file_of_a_save_still_running_is_kept(tmp_path):
    import subprocess
    import sys

    from gradcore.checkpoint import _writer_tag

    writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        host = _writer_tag().rsplit("-", 1)[0]
        busy = tmp_path / f".ckpt.safetensors.{host}-{writer.pid}.abcd1234.tmp"
        busy.write_bytes(b"partial")
        elsewhere = tmp_path / ".ckpt.safetensors.otherhost-999999999.abcd1234.tmp"  # no such pid here; another host
        elsewhere.write_bytes(b"partial")
        gradcore.save(tmp_path / "ckpt.safetensors", _net())
        assert busy.exists() and elsewhere.exists()
    finally:
        writer.kill()
        writer.wait()


def _saved(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    net = _net()
    opt = gradcore.optim.Adam(net.parameters(), lr=0.1)
    _train(net, opt, DataLoader(np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3), 2), 1)
    gradcore.save(path, net, optimizer=opt)
    return path, net, opt


def test_a_flipped_bit_in_the_tensor_data_raises_naming_the_file(tmp_path):
    path, net, _ = _saved(tmp_path)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x10  # inside the last tensor's bytes
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"ckpt.safetensors.* is corrupt: the checksum of tensor"):
        gradcore.load(path, _net())


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_an_unreadable_file_raises_naming_it(tmp_path, damage):
    path, _, _ = _saved(tmp_path)
    data = path.read_bytes()
    path.write_bytes({"truncated": data[:len(data) // 2], "garbage": os.urandom(300), "empty": b""}[damage])
    with pytest.raises(ValueError, match=r"path: '.*ckpt.safetensors' is not a readable checkpoint"):
        gradcore.load(path)


def test_a_directory_or_a_missing_file_raises_naming_it(tmp_path):
    with pytest.raises(IsADirectoryError, match=r"path: '.*' is a directory"):
        gradcore.load(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"path: no checkpoint file '.*nothing.safetensors'"):
        gradcore.load(tmp_path / "nothing.safetensors")


def test_strict_false_says_which_keys_it_dropped(tmp_path):
    path, _, _ = _saved(tmp_path)
    bigger = nn.Sequential(Scale(3), nn.Tanh(), Scale(3), nn.Sigmoid(), Scale(3))
    with pytest.warns(UserWarning, match=r"missing keys \['4.weight', '4.bias'\].*unexpected keys \[\]"):
        ckpt = gradcore.load(path, bigger, strict=False)
    assert ckpt.missing_keys == ["4.weight", "4.bias"] and ckpt.unexpected_keys == []


def test_entries_of_another_dtype_raise_unless_strict_false_which_casts_with_a_warning(tmp_path):
    path, net, _ = _saved(tmp_path)
    wide = _net().double()
    with pytest.raises(TypeError, match=r"0.weight \(float32 in the file, float64 in the module\)"):
        gradcore.load(path, wide)
    with pytest.warns(UserWarning, match="cast to the module's dtype"):
        gradcore.load(path, wide, strict=False)
    assert_close(wide[0].weight, net[0].weight, atol=0, rtol=0)


def test_an_adam_checkpoint_does_not_load_into_sgd(tmp_path):
    path, _, _ = _saved(tmp_path)
    net = _net()
    before = [p.numpy().copy() for p in net.parameters()]
    with pytest.raises(ValueError, match="holds the state of a Adam optimizer, which a SGD cannot load"):
        gradcore.load(path, net, optimizer=gradcore.optim.SGD(net.parameters(), lr=0.1))
    assert all((a == p.numpy()).all() for a, p in zip(before, net.parameters())), "nothing loaded"
    adam_state = gradcore.load(path).optimizer
    with pytest.raises(ValueError, match=r"param_groups\[0\] lacks .*momentum.* SGD needs"):
        gradcore.optim.SGD(net.parameters(), lr=0.1).load_state_dict(adam_state)


def test_a_changed_digit_in_the_metadata_raises_naming_the_file(tmp_path):
    path, _, _ = _saved(tmp_path)
    data = path.read_bytes()
    lr = b'lr\\": 0.1'  # inside the JSON string that safetensors stores as metadata
    assert data.count(lr) == 1
    path.write_bytes(data.replace(lr, b'lr\\": 0.7'))  # still valid JSON, one hyperparameter off
    with pytest.raises(ValueError, match=r"ckpt.safetensors.* is corrupt: its metadata does not match"):
        gradcore.load(path, _net())
