"""The main job's training step (zero grads, forward through encoder and decoder, MSE, backward, Adam) against
the same network in PyTorch: CPU at --threads (2) threads, GPU eager with cuDNN.

    python -m bench.autoencoder_step [--device cuda] [--quick] [--breakdown] [--unfused]

Targets: <= 0.5x PyTorch's step time on CPU at B=25 and B=256 (issue 19); <= 0.33x PyTorch eager on GPU (issue 6).
--breakdown prints, after the table, where each case's step spends its time: per phase (zero_grad, forward, backward,
optimizer), per op and C++ call, the Python/autograd overhead left over, and the C++ phase timer's kernel phases
(bench/breakdown.py).
FLOPs count the convolutions' multiply-adds (x2) of forward, backward-data and backward-weight (3x forward).

Where the time went (issue 19, 2026-12-07; 1 thread, CPU time per step, so that the shared machine's load, ~9,
does not swamp it; B=25 without BatchNorm, ~21 ms): the three conv kernels ~19 ms (90%: forward, backward-input,
backward-weight of 2 convs and 3 transposed convs); ReLU ~0.95 ms (forward 0.33-0.41, backward 0.52-0.6: the
largest piece outside the convs, and the one a conv epilogue would remove); Python (modules, checks, tape, engine)
~0.3-0.4 ms, which does not shrink with threads; bias-gradient sums 0.25; fused_adam 0.12-0.14; first gradients
copied into .grad 0.06; sigmoid, MSE and the seed gradient ~0.15. Rerun with --breakdown (wall time, any thread
count) before changing anything.
Since (session 4): mse_loss is one node (one pass each way, the mean inside: sigmoid + MSE forward and backward
146 -> 87 us at 1 thread), grad mode is read without an exception (~1 us per op), Adam was checked (one vectorised
pass, threaded, ~52 GB/s: 40 us at 2 threads). Left: sigmoid's scalar expf (~50 us; a vector exp changes the
bits), the bias-gradient sums (~37 GB/s), the first gradients' clones (~25 us; stealing needs a storage use count).

ReLU fused into the convolutions (issue 19, 2026-12-07; nn.Sequential runs [conv, ReLU] and [BatchNorm2d, ReLU] as
one node, nn/fusion.py; --unfused runs the modules one by one): 1 thread, CPU-time minima of 40 interleaved steps
(load 11-16 on 2 cores), unfused -> fused: B=256 step 152.8 -> 147.6 ms (forward 52.1 -> 47.2), +BN 176.4 -> 173.8
(forward 58.2 -> 54.2); B=25 14.56 -> 14.35, +BN 15.96 -> 15.65. The forward ReLU passes are gone (the epilogue
runs in registers: the GEMM micro-kernel's store, the stride-decomposed tiles); backward still pays one mask pass
(now with the bias gradient summed in it), since every backward kernel reads gy and the mask would have to go into
each of them.

Outside the convolutions (issue 19, session 6, 2026-12-07; B=25, per-call minima inside the step, 1 thread, load 5-13
on 2 cores): the four conv + ReLU backward masks were the largest piece, 0.63-0.69 ms, ~4x their time on warm data:
y comes back from forward cold and the mask was written into a fresh block. The engine now knows which gradients
only it holds (autograd._propagate; Function.fresh_gradients) and lets the mask overwrite those (0.40-0.43 ms; B=256
10.7-10.9 -> 8.6-9.4 ms) and hands them to the leaves as .grad without the 10 clones; the output sigmoid splits
across threads from 4,096 elements (49 -> 27 us at 2 threads). Pure Python (measured with every kernel replaced by a
replay of its first result) is ~130 us a step under load (forward ~58, backward ~50, optimizer
~20): a few percent of the 2-thread step, most of it per node (apply, the args checks, the engine's bookkeeping).
Left: the masks' cold reads of y (a bitmask saved by the forward: measured in session 7 as a separate pass, a net
loss, and at most ~1-2% from the kernels' stores: cpu/conv2d_relu.cpp's header), fused_adam
~0.1 ms at 1 thread, the loss's three kernel calls (~35 us), the sigmoid's scalar expf.

The Python layer alone (issue 19, session 8): bench/python_overhead.py replays every kernel call and times what is
left, per phase and per stretch between two kernels. Warm, 1 thread: 123-125 -> 96-97 us a step (+BN 187-196 ->
158); in the real step perf puts libpython at ~8% of the kernels' samples, ~0.7 ms at 1 thread, ~10% less than
before: the Python between kernels runs on caches the kernels emptied, ~3-4x its warm time.
"""
from __future__ import annotations

import argparse

import numpy as np

import gradcore as gc
from bench.harness import Case, add_common_args, run_suite, setup
from gradcore import functional as F
from gradcore.examples.autoencoder import build
from gradcore.optim import Adam

# (C_in, C_out, spatial positions at which the 3x3 kernel is applied per input of the layer) for the seed network
# on 28x28: convs are counted per output position, transposed convs per input position.
_LAYERS = [(1, 32, 14 * 14), (32, 64, 7 * 7), (64, 64, 7 * 7), (64, 32, 14 * 14), (32, 1, 28 * 28)]


def step_flops(batch):
    forward_macs = sum(cin * cout * 9 * positions for cin, cout, positions in _LAYERS)
    return 3 * 2 * forward_macs * batch


def ours(batch, device, batch_norm, fuse=True):
    encoder, decoder = build(batch_norm=batch_norm, seed=0, device=device)
    encoder.fuse_activations = decoder.fuse_activations = fuse  # [conv, ReLU] pairs as one op (nn/fusion.py)
    optimizer = Adam(list(encoder.parameters()) + list(decoder.parameters()), lr=1e-3, weight_decay=1e-4)
    x = gc.tensor(np.random.default_rng(0).random((batch, 1, 28, 28)), dtype="float32", device=device)

    def step():
        optimizer.zero_grad()
        loss = F.mse_loss(decoder(encoder(x)), x)
        loss.backward()
        optimizer.step()
        return loss

    return step


def reference(torch, batch, device, batch_norm):
    nn = torch.nn
    dev = "cuda" if device.startswith("cuda") else "cpu"

    def hidden(conv, channels):
        return [conv, nn.BatchNorm2d(channels), nn.ReLU()] if batch_norm else [conv, nn.ReLU()]

    torch.manual_seed(0)
    encoder = nn.Sequential(*hidden(nn.Conv2d(1, 32, 3, 2, 1), 32), *hidden(nn.Conv2d(32, 64, 3, 2, 1), 64)).to(dev)
    # padding=1, output_padding=1 doubles the size like our padding="same" at the same cost; the window differs:
    # ours crops the full 15-pixel output to [0, 14) (MATLAB's rule), PyTorch's takes [1, 15) plus a bias-only row.
    decoder = nn.Sequential(
        *hidden(nn.ConvTranspose2d(64, 64, 3, 2, 1, output_padding=1), 64),
        *hidden(nn.ConvTranspose2d(64, 32, 3, 2, 1, output_padding=1), 32),
        nn.ConvTranspose2d(32, 1, 3, 1, 1), nn.Sigmoid()).to(dev)
    optimizer = torch.optim.Adam(list(encoder.parameters()) + list(decoder.parameters()), lr=1e-3,
                                 weight_decay=1e-4)
    x = torch.from_numpy(np.random.default_rng(0).random((batch, 1, 28, 28)).astype(np.float32)).to(dev)

    def step():
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(decoder(encoder(x)), x)
        loss.backward()
        optimizer.step()
        return loss

    return step


def cases(args, torch):
    batches = [25] if args.quick else [25, 256]
    out = []
    for batch_norm in (False, True):
        for batch in batches:
            name = f"autoencoder step B={batch}{' +BN' if batch_norm else ''}"
            ref = reference(torch, batch, args.device, batch_norm) if torch is not None else None
            out.append(Case(name, ours(batch, args.device, batch_norm, fuse=not args.unfused), ref,
                            flops=step_flops(batch), params=dict(batch=batch, batch_norm=batch_norm,
                                                                 fused=not args.unfused)))
    return out


def main(argv=None):
    parser = add_common_args(argparse.ArgumentParser(description=__doc__))
    parser.add_argument("--unfused", action="store_true",
                        help="run every module on its own (no fused conv + ReLU), to measure the fusion")
    args = parser.parse_args(argv)
    torch = setup(args)
    if torch is not None and args.device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
    return run_suite("autoencoder_step", cases(args, torch), args, torch,
                     settings=dict(cudnn_benchmark=args.device.startswith("cuda")))


if __name__ == "__main__":
    main()
