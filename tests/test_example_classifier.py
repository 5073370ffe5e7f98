"""The digit classifier example (issue 13 point 4): a short CPU run learns, the outputs are written, the network's
shapes and train/eval behaviour are right, and MNIST idx files are read from a directory."""
import gzip
import os

import numpy as np
import pytest

import gradcore
from gradcore.examples import classifier

# The example's last layer is nn.Linear, which the dense branch (issue #18) brings; until it is merged there is
# nothing to run.
pytestmark = pytest.mark.skipif(not hasattr(gradcore.nn, "Linear"), reason="needs nn.Linear (issue #18, dense)")


def _quiet(*args, **kwargs):
    pass


def test_a_short_cpu_run_learns_well_above_chance(tmp_path):
    # 2 epochs of 1,500 digits (about 50 Adam steps): chance is 10%.
    result = classifier.train(epochs=2, batch_size=64, train_size=1500, test_size=300, device="cpu", seed=1,
                              progress=False, log=_quiet)
    assert result.test_accuracy > 0.7, result.test_accuracies
    assert result.train_loss[-1] < result.train_loss[0]
    assert result.confusion.sum() == 300 and np.trace(result.confusion) == round(result.test_accuracy * 300)
    classifier.write_outputs(result, str(tmp_path), log=_quiet)
    assert os.path.exists(tmp_path / "classifier.safetensors")
    if gradcore.plots.available():
        for name in ("confusion.png", "loss.png", "accuracy.png"):
            assert os.path.getsize(tmp_path / name) > 0


def test_network_shapes_and_dropout_only_in_training():
    model = classifier.build(seed=0)
    x = gradcore.tensor(gradcore.data.synthetic_digits(4, seed=2)[0])
    assert model(x).shape == (4, 10)
    model.eval()
    a, b = model(x).numpy(), model(x).numpy()
    assert np.array_equal(a, b)  # no dropout, running BatchNorm statistics
    model.train()
    assert not np.array_equal(model(x).numpy(), model(x).numpy())  # fresh dropout masks


def _write_idx(path, array, code):
    header = bytes([0, 0, code, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())


def test_mnist_directory_is_read_from_idx_files(tmp_path):
    images, labels = gradcore.data.synthetic_digits(120, seed=3)
    raw = (images[:, 0] * 255).round().astype(np.uint8)
    for split, count in (("train", 100), ("t10k", 20)):
        part = slice(0, 100) if split == "train" else slice(100, 120)
        _write_idx(tmp_path / f"{split}-images-idx3-ubyte.gz", raw[part], 0x08)
        _write_idx(tmp_path / f"{split}-labels-idx1-ubyte.gz", labels[part].astype(np.uint8), 0x08)
    (train_x, train_y), (test_x, test_y) = classifier.load_mnist(str(tmp_path))
    assert train_x.shape == (100, 1, 28, 28) and train_x.dtype == np.float32 and train_x.max() <= 1.0
    assert np.array_equal(test_y, labels[100:]) and train_y.dtype == np.int64
    result = classifier.train(epochs=1, batch_size=50, device="cpu", mnist=str(tmp_path), progress=False, log=_quiet)
    assert result.confusion.sum() == 20
    with pytest.raises(FileNotFoundError, match="--mnist"):
        classifier.load_mnist(str(tmp_path / "missing"))


@pytest.mark.cuda
def test_the_same_loop_runs_on_cuda():
    result = classifier.train(epochs=1, batch_size=32, train_size=64, test_size=32, device="cuda", steps=2,
                              progress=False, log=_quiet)
    assert np.isfinite(result.train_loss[0]) and result.confusion.sum() == 32
