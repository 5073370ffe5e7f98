"""The classifier example's training step (zero grads, forward through the CNN, softmax cross-entropy, backward,
Adam) against the same network in PyTorch: CPU at --threads (2) threads, GPU eager with cuDNN. Both in training
mode (BatchNorm batch statistics, dropout masks drawn every step).

    python -m bench.classifier [--device cuda] [--quick]

FLOPs count the convolutions' and the linear layer's multiply-adds (x2) of forward, backward-data and
backward-weight (3x forward). The per-op costs of pooling and cross-entropy are in bench/classify_ops.py.
"""
from __future__ import annotations

import argparse

import numpy as np

import gradcore as gc
from bench.harness import Case, add_common_args, run_suite, setup
from gradcore import functional as F
from gradcore.examples.classifier import CLASSES, DEFAULTS, build
from gradcore.optim import Adam


def step_flops(batch):
    forward_macs = 1 * 16 * 9 * 28 * 28 + 16 * 32 * 9 * 14 * 14 + 32 * 7 * 7 * CLASSES
    return 3 * 2 * forward_macs * batch


def _data(batch):
    rng = np.random.default_rng(0)
    return rng.random((batch, 1, 28, 28)).astype(np.float32), rng.integers(0, CLASSES, batch)


def ours(batch, device):
    model = build(seed=0, device=device)
    optimizer = Adam(model.parameters(), lr=DEFAULTS["lr"])
    x_np, y_np = _data(batch)
    x = gc.tensor(x_np, device=device)
    y = gc.tensor(y_np, dtype="int64", device=device)

    def step():
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    return step


def reference(torch, batch, device):
    nn = torch.nn
    dev = "cuda" if device.startswith("cuda") else "cpu"
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(DEFAULTS["dropout"]), nn.Linear(32 * 7 * 7, CLASSES)).to(dev)
    optimizer = torch.optim.Adam(model.parameters(), lr=DEFAULTS["lr"])
    x_np, y_np = _data(batch)
    x, y = torch.from_numpy(x_np).to(dev), torch.from_numpy(y_np).to(dev)

    def step():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    return step


def cases(args, torch):
    batches = [64] if args.quick else [64, 256]
    out = []
    for batch in batches:
        ref = reference(torch, batch, args.device) if torch is not None else None
        out.append(Case(f"classifier step B={batch}", ours(batch, args.device), ref, flops=step_flops(batch),
                        params=dict(batch=batch)))
    return out


def main(argv=None):
    args = add_common_args(argparse.ArgumentParser(description=__doc__)).parse_args(argv)
    torch = setup(args)
    if torch is not None and args.device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
    return run_suite("classifier", cases(args, torch), args, torch,
                     settings=dict(cudnn_benchmark=args.device.startswith("cuda")))


if __name__ == "__main__":
    main()
