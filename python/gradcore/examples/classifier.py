"""A digit classifier: a small CNN trained in a plain custom loop on the embedded synthetic digits and their labels
(or on MNIST idx files you already have).

    python -m gradcore.examples.classifier [--epochs N] [--batch-size B] [--device cpu|cuda] [--seed S]
                                           [--mnist DIR] [--train-size N] [--test-size N] [--out DIR]
                                           [--distributed]

Data-parallel over MPI: `mpirun -np 2 python -m gradcore.examples.classifier --distributed` (--batch-size per
rank; the BatchNorm statistics stay per rank, as PyTorch's default; rank 0 alone prints, plots and saves).

The network (PyTorch's usual first CNN):
    conv(1->16, 3x3, pad 1) + BatchNorm2d + ReLU + max_pool(2)      28 -> 14
    conv(16->32, 3x3, pad 1) + BatchNorm2d + ReLU + max_pool(2)     14 -> 7
    flatten, dropout(0.25), linear(32*7*7 -> 10)                    logits
trained by Adam on the softmax cross-entropy of the logits against the labels. Dropout and BatchNorm switch to
evaluation behaviour (model.eval()) for the held-out accuracy after each epoch.

--mnist DIR trains on the idx files of MNIST already on disk (train-images-idx3-ubyte, train-labels-idx1-ubyte,
t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each optionally .gz): nothing is downloaded.

Writes to --out: confusion.png (held-out confusion matrix), loss.png and accuracy.png (per epoch; need matplotlib)
and classifier.safetensors (the model and Adam state).
"""
from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass, field

import numpy as np

import gradcore
from gradcore import nn
from gradcore import functional as F
from gradcore.data import DataLoader, load_idx, synthetic_digits
from gradcore.examples import default_device, global_sums, start_distributed
from gradcore.nn.parallel import DistributedDataParallel
from gradcore.optim import Adam

# The default run sees 3 x 12,000 digits; measured on this project's shared 2-core machine: see the README.
DEFAULTS = dict(epochs=3, batch_size=64, train_size=12_000, test_size=2_000, lr=2e-3, dropout=0.25)
CLASSES = 10


class DigitCNN(nn.Module):
    """Two conv blocks (conv + BatchNorm2d + ReLU + 2x2 max pooling), then dropout and a linear layer."""

    def __init__(self, dropout=DEFAULTS["dropout"], generator=None):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),    # 28 -> 14
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),   # 14 -> 7
        )
        self.dropout = nn.Dropout(dropout, generator=generator)
        self.fc = nn.Linear(32 * 7 * 7, CLASSES)

    def forward(self, x):
        return self.fc(self.dropout(self.features(x).flatten(1)))


def build(seed=0, device="cpu", dropout=DEFAULTS["dropout"]):
    """The CNN, initialised from `seed`; its dropout masks come from a generator seeded alike."""
    gradcore.manual_seed(seed)
    return DigitCNN(dropout, gradcore.Generator(seed)).to(device)


MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
               "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def _find(directory, name):
    for candidate in (name, name + ".gz", name.replace("-idx", ".idx"), name.replace("-idx", ".idx") + ".gz"):
        path = os.path.join(directory, candidate)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(f"--mnist: no {name}[.gz] in {directory!r}")


def load_mnist(directory):
    """((train images, labels), (test images, labels)) from MNIST idx files: images float32 (n, 1, 28, 28) in
    [0, 1], labels int64."""
    out = []
    for split in ("train", "test"):
        images = load_idx(_find(directory, MNIST_FILES[split][0]))
        labels = load_idx(_find(directory, MNIST_FILES[split][1]))
        if images.ndim != 3 or labels.shape != images.shape[:1]:
            raise ValueError(f"--mnist: {split} images {images.shape} and labels {labels.shape} do not match")
        out.append(((images.astype(np.float32) / 255.0)[:, None], labels.astype(np.int64)))
    return tuple(out)


@dataclass
class Result:
    model: nn.Module
    optimizer: object
    test_accuracy: float
    confusion: np.ndarray                             # (10, 10): rows true class, columns predicted
    train_loss: list = field(default_factory=list)    # mean training cross-entropy per epoch
    test_loss: list = field(default_factory=list)     # held-out cross-entropy per epoch
    train_accuracy: list = field(default_factory=list)
    test_accuracies: list = field(default_factory=list)
    seconds: float = 0.0


def _labels(y, device):
    return y if isinstance(y, gradcore.Tensor) else gradcore.tensor(y, dtype="int64", device=device)


def evaluate(model, loader, device):
    """(mean cross-entropy, accuracy, confusion matrix) over the loader, in evaluation mode."""
    model.eval()
    total, correct, count = 0.0, 0, 0
    confusion = np.zeros((CLASSES, CLASSES), dtype=np.int64)
    with gradcore.no_grad():
        for x, y in loader:
            logits = model(x)
            total += F.cross_entropy(logits, _labels(y, device), reduction="sum").item()
            predicted = logits.numpy().argmax(axis=1)
            truth = y.numpy() if isinstance(y, gradcore.Tensor) else np.asarray(y)
            np.add.at(confusion, (truth, predicted), 1)
            correct += int((predicted == truth).sum())
            count += len(truth)
    model.train()
    return total / count, correct / count, confusion


def train(epochs=DEFAULTS["epochs"], batch_size=DEFAULTS["batch_size"], device=None, seed=0,
          train_size=DEFAULTS["train_size"], test_size=DEFAULTS["test_size"], lr=DEFAULTS["lr"], mnist=None,
          steps=None, progress=True, log=print, distributed=False):
    """Trains the classifier and returns a Result. Everything derives from `seed` (data, weights, batch order,
    dropout masks). steps: stop each epoch after this many steps (a short run).
    distributed: data-parallel over the ranks of gradcore.distributed (initialised here if it is not yet), each
    rank on its shard with batch_size; only rank 0 logs and shows progress. The Result holds the unwrapped model."""
    from tqdm.auto import tqdm

    rank, world = start_distributed(distributed)
    if rank != 0:
        log, progress = (lambda *args, **kwargs: None), False
    device = device or default_device()
    if mnist:
        (train_images, train_labels), (test_images, test_labels) = load_mnist(mnist)
        source = f"MNIST from {mnist}"
    else:
        train_images, train_labels = synthetic_digits(train_size, seed=seed)
        test_images, test_labels = synthetic_digits(test_size, seed=seed + 10_000)
        source = "synthetic digits"
    shard = dict(num_replicas=world, rank=rank) if distributed else {}
    train_loader = DataLoader((train_images, train_labels), batch_size, shuffle=True, seed=seed, device=device,
                              **shard)
    test_loader = DataLoader((test_images, test_labels), 500, shuffle=False, device=device)

    plain = build(seed, device)
    model = DistributedDataParallel(plain) if distributed else plain
    optimizer = Adam(model.parameters(), lr=lr)
    ranks = f" on {world} ranks (batch {batch_size} each)" if distributed else ""
    log(f"classifier on {device}{ranks}: {len(train_images)} training / {len(test_images)} held-out {source}, batch "
        f"{batch_size}, {epochs} epochs, seed {seed}")
    result = Result(plain, optimizer, test_accuracy=float("nan"), confusion=np.zeros((CLASSES, CLASSES), np.int64))
    started = time.perf_counter()

    for epoch in range(epochs):
        train_loader.set_epoch(epoch)
        bar = tqdm(total=train_loader.num_samples, desc=f"epoch {epoch + 1}/{epochs}", unit="digit", unit_scale=True,
                   disable=not progress, dynamic_ncols=True)
        loss_sum, correct, seen, epoch_started = 0.0, 0, 0, time.perf_counter()
        for step, (x, y) in enumerate(train_loader):
            if steps is not None and step >= steps:
                break
            # batch: images x (B, 1, 28, 28) in [0, 1], labels y (B) int64
            target = _labels(y, device)
            optimizer.zero_grad()
            # forward: logits (B, 10)
            logits = model(x)
            # loss: softmax cross-entropy, fused (log_softmax is never formed as log(softmax))
            loss = F.cross_entropy(logits, target)
            # backward
            loss.backward()
            # update
            optimizer.step()

            value = loss.item()
            loss_sum += value * len(x)
            correct += int((logits.numpy().argmax(axis=1) == target.numpy()).sum())
            seen += len(x)
            bar.update(len(x))
            bar.set_postfix(loss=f"{value:.4f}", acc=f"{correct / seen:.3f}")
        bar.close()

        loss_sum, correct, seen = global_sums([loss_sum, correct, seen], distributed)  # every rank's digits
        test_loss, test_accuracy, confusion = evaluate(plain, test_loader, device)
        result.train_loss.append(loss_sum / seen)
        result.train_accuracy.append(correct / seen)
        result.test_loss.append(test_loss)
        result.test_accuracies.append(test_accuracy)
        result.test_accuracy, result.confusion = test_accuracy, confusion
        log(f"epoch {epoch + 1}/{epochs}: train loss {loss_sum / seen:.4f} (accuracy {correct / seen:.4f}), "
            f"held-out loss {test_loss:.4f}, held-out accuracy {test_accuracy:.4f}, "
            f"{seen / (time.perf_counter() - epoch_started):.0f} digits/s")

    result.seconds = time.perf_counter() - started
    if not result.test_accuracies:
        _, result.test_accuracy, result.confusion = evaluate(plain, test_loader, device)
    return result


def write_outputs(result, out, log=print):
    """confusion.png, loss.png, accuracy.png and classifier.safetensors in `out`."""
    from gradcore import plots

    os.makedirs(out, exist_ok=True)
    ckpt = gradcore.save(os.path.join(out, "classifier.safetensors"), {"model": result.model},
                         optimizer=result.optimizer, epochs=len(result.train_loss),
                         test_accuracy=result.test_accuracy)
    log(f"wrote {ckpt}")
    if not plots.available():
        log("matplotlib is not installed: skipping confusion.png, loss.png and accuracy.png "
            "(pip install 'gradcore[plots]')")
        return
    log("wrote " + plots.confusion_matrix(os.path.join(out, "confusion.png"), result.confusion,
                                          title=f"held-out accuracy {result.test_accuracy:.4f}"))
    log("wrote " + plots.loss_curve(os.path.join(out, "loss.png"), result.train_loss, result.test_loss,
                                    title="cross-entropy"))
    log("wrote " + plots.loss_curve(os.path.join(out, "accuracy.png"), result.train_accuracy,
                                    result.test_accuracies, title="accuracy", log_scale=False))


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m gradcore.examples.classifier", description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    p.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"])
    p.add_argument("--lr", type=float, default=DEFAULTS["lr"])
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda on a real GPU, else cpu)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mnist", default=None, metavar="DIR", help="train on MNIST idx files already in DIR")
    p.add_argument("--train-size", type=int, default=DEFAULTS["train_size"], help="synthetic training digits")
    p.add_argument("--test-size", type=int, default=DEFAULTS["test_size"], help="synthetic held-out digits")
    p.add_argument("--out", default="classifier-out", help="directory for the PNGs and the checkpoint")
    p.add_argument("--distributed", action="store_true",
                   help="data-parallel over MPI ranks: mpirun -np N python -m gradcore.examples.classifier "
                        "--distributed (--batch-size per rank)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    rank, _ = start_distributed(args.distributed)
    result = train(epochs=args.epochs, batch_size=args.batch_size, device=args.device, seed=args.seed,
                   train_size=args.train_size, test_size=args.test_size, lr=args.lr, mnist=args.mnist,
                   distributed=args.distributed)
    if rank == 0:  # the ranks hold the same weights: one report, one set of files
        print(f"\nheld-out accuracy {result.test_accuracy:.4f} in {result.seconds:.0f} s")
        write_outputs(result, args.out)
    if args.distributed:
        from gradcore import distributed as dist

        dist.destroy_process_group()
    return 0 if result.test_accuracy >= 0.9 else 1


if __name__ == "__main__":
    raise SystemExit(main())
