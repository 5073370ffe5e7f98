"""gradcore.data: synthetic digits, IDX files, DataLoader."""
import gzip

import numpy as np
import pytest

import gradcore
from gradcore.data import DataLoader, load_idx, synthetic_digits
from tolerance import DEVICES


# ---- synthetic_digits -------------------------------------------------------------------------------------------
def test_synthetic_digits_shapes_dtypes_and_range():
    images, labels = synthetic_digits(300, seed=1)
    assert images.shape == (300, 1, 28, 28) and images.dtype == np.float32
    assert labels.shape == (300,) and labels.dtype == np.int64
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert set(np.unique(labels)) == set(range(10))
    assert (images.reshape(300, -1).max(axis=1) > 0.5).all(), "every digit has ink"
    ink = images.mean()
    assert 0.05 < ink < 0.25, f"mean intensity {ink} far from MNIST's ~0.13"


def test_synthetic_digits_other_size():
    images, _ = synthetic_digits(10, size=16, seed=0)
    assert images.shape == (10, 1, 16, 16)


def test_synthetic_digits_deterministic_per_seed():
    a, la = synthetic_digits(50, seed=3)
    b, lb = synthetic_digits(50, seed=3)
    c, _ = synthetic_digits(50, seed=4)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
    assert not np.array_equal(a, c)


def test_synthetic_digits_vary_within_a_class():
    images, labels = synthetic_digits(200, seed=0)
    sevens = images[labels == 7].reshape(-1, 28 * 28)
    pairwise = np.abs(sevens[:, None] - sevens[None]).mean(axis=-1)
    assert pairwise[np.triu_indices(len(sevens), 1)].min() > 0.01, "jitter makes every sample different"


def test_synthetic_digits_carry_their_label():
    # A nearest-class-mean classifier trained on one seed recognises digits of another: the label is in the image.
    train, train_labels = synthetic_digits(2000, seed=0)
    test, test_labels = synthetic_digits(500, seed=1)
    means = np.stack([train[train_labels == d].reshape(-1, 784).mean(0) for d in range(10)])
    dist = ((test.reshape(-1, 1, 784) - means[None]) ** 2).sum(-1)
    accuracy = (dist.argmin(1) == test_labels).mean()
    assert accuracy > 0.6, f"nearest-mean accuracy {accuracy:.2f}"


@pytest.mark.parametrize("n", [-1, 2.5, "10"])
def test_synthetic_digits_bad_n(n):
    with pytest.raises(ValueError, match="n:"):
        synthetic_digits(n)


def test_synthetic_digits_bad_size():
    with pytest.raises(ValueError, match="size:"):
        synthetic_digits(3, size=4)


# ---- load_idx ---------------------------------------------------------------------------------------------------
def _idx_bytes(array, code):
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("dtype,code", [(np.uint8, 0x08), (np.int32, 0x0C), (np.float32, 0x0D)],
                         ids=["uint8", "int32", "float32"])
def test_load_idx_round_trip(tmp_path, compressed, dtype, code):
    rng = np.random.default_rng(0)
    array = (rng.random((4, 5, 3)) * 200).astype(dtype)
    data = _idx_bytes(array, code)
    path = tmp_path / ("x.idx.gz" if compressed else "x.idx")
    path.write_bytes(gzip.compress(data) if compressed else data)
    loaded = load_idx(path)
    assert loaded.dtype == np.dtype(dtype) and loaded.dtype.isnative
    np.testing.assert_array_equal(loaded, array)


def test_load_idx_labels_file(tmp_path):
    labels = np.array([5, 0, 4, 1, 9], dtype=np.uint8)
    path = tmp_path / "labels-idx1-ubyte"
    path.write_bytes(_idx_bytes(labels, 0x08))
    np.testing.assert_array_equal(load_idx(str(path)), labels)


def test_load_idx_rejects_other_files(tmp_path):
    path = tmp_path / "not.idx"
    path.write_bytes(b"PK\x03\x04 a zip file")
    with pytest.raises(ValueError, match="not an IDX file"):
        load_idx(path)
    truncated = tmp_path / "short.idx"
    truncated.write_bytes(_idx_bytes(np.zeros((3, 4), np.uint8), 0x08)[:-2])
    with pytest.raises(ValueError, match="expected 12"):
        load_idx(truncated)


# ---- DataLoader -------------------------------------------------------------------------------------------------
def _data(n=10):
    x = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
    y = np.arange(n, dtype=np.int64)
    return x, y


def test_loader_keeps_the_last_partial_batch_and_covers_every_sample():
    x, y = _data(10)
    loader = DataLoader((x, y), batch_size=4, seed=0)
    batches = list(loader)
    assert len(loader) == 3 and [len(b[1]) for b in batches] == [4, 4, 2]
    xb, yb = batches[0]
    assert isinstance(xb, gradcore.Tensor) and xb.dtype == "float32" and xb.shape == (4, 2)
    assert isinstance(yb, gradcore.Tensor) and yb.dtype == "int64", "labels become int64 tensors, as in PyTorch"
    seen = np.concatenate([b[1].numpy() for b in batches])
    assert sorted(seen.tolist()) == list(range(10))
    for xb, yb in batches:  # rows stay paired across arrays
        np.testing.assert_array_equal(xb.numpy(), x[yb.numpy()])
    (_, small), = DataLoader((x[:3], np.array([1, 0, 2], np.uint8)), batch_size=3, shuffle=False)
    assert small.dtype == "int64" and small.tolist() == [1, 0, 2]
    (_, flags), = DataLoader((x[:2], np.array([True, False])), batch_size=2, shuffle=False)
    assert flags.dtype == "bool" and flags.tolist() == [True, False]


def test_loader_drop_last():
    x, y = _data(10)
    loader = DataLoader((x, y), batch_size=4, drop_last=True)
    assert len(loader) == 2 and [len(b[1]) for b in loader] == [4, 4]


def test_loader_order_is_deterministic_per_seed_and_epoch():
    x, y = _data(50)

    def orders(loader, epochs):
        return [np.concatenate([b[1] for b in loader]) for _ in range(epochs)]

    a = orders(DataLoader((x, y), 8, seed=1), 3)
    b = orders(DataLoader((x, y), 8, seed=1), 3)
    c = orders(DataLoader((x, y), 8, seed=2), 1)
    for ea, eb in zip(a, b):
        np.testing.assert_array_equal(ea, eb)
    assert not np.array_equal(a[0], a[1]), "each epoch reshuffles"
    assert not np.array_equal(a[0], c[0]), "the seed picks the order"
    resumed = DataLoader((x, y), 8, seed=1)
    resumed.set_epoch(2)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in resumed]), a[2])


def test_loader_without_shuffle_is_in_order():
    x, y = _data(7)
    loader = DataLoader((x, y), 3, shuffle=False)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in loader]), y)
    np.testing.assert_array_equal(next(iter(loader))[0].numpy(), x[:3])


def test_loader_single_array_and_float64():
    x = np.random.default_rng(0).random((5, 3))
    (batch,) = next(iter(DataLoader(x, 5, shuffle=False)))
    assert batch.dtype == "float64"
    np.testing.assert_array_equal(batch.numpy(), x)


def test_loader_bad_arguments():
    x, y = _data(10)
    with pytest.raises(ValueError, match="arrays"):
        DataLoader((x, y[:5]), 2)
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader((x, y), 0)
    with pytest.raises(TypeError, match="arrays"):
        DataLoader(5, 2)
    with pytest.raises(ValueError, match="device"):
        DataLoader((x, y), 2, device="gpu")


@pytest.mark.parametrize("device", DEVICES)
def test_loader_device(device):
    x, y = _data(6)
    xb, _ = next(iter(DataLoader((x, y), 3, device=device)))
    assert xb.device == ("cpu" if device == "cpu" else "cuda:0")
