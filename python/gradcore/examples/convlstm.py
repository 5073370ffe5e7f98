"""Next-frame prediction on synthetic moving digits with a ConvLSTM.

    python -m gradcore.examples.convlstm [--steps 200] [--device cpu|cuda] [--distributed]

Data-parallel over MPI: `mpirun -np 2 python -m gradcore.examples.convlstm --distributed`. Each rank draws its
own sequences (--batch per rank), DistributedDataParallel averages the gradients, and rank 0 alone logs, watches
the training health and reports.

Each sequence is one digit glyph (a 5x7 bitmap font, scaled 2x) moving at a constant velocity of -1, 0 or +1 pixel
per frame along each axis (not both 0) and bouncing off the borders, drawn on the fly from a seed (no download).
A 2-layer ConvLSTM reads frames 1..T-1 and a 1x1 convolution with a sigmoid reads out its prediction of the next
frame at every step. Training uses Adam with gradient-norm clipping, watched by a diagnostics.HealthMonitor
(warnings name the layer). At the end it prints the held-out MSE beside
the copy-last-frame baseline (predict frame t+1 = frame t), which the model must beat, and exits with status 1 if
it does not. The MSE of a blank prediction is printed too: it shows how much of each frame is ink.

The default run (200 steps, about 0.2 s each on 2 idle CPU cores) ends near 0.3x the baseline's MSE.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import gradcore as gc
from gradcore import diagnostics, nn
from gradcore import functional as F
from gradcore.examples import start_distributed
from gradcore.nn.parallel import DistributedDataParallel

# 5x7 glyphs of the digits, one string per row ('#' is ink).
_FONT = {
    0: [" ### ", "#   #", "#  ##", "# # #", "##  #", "#   #", " ### "],
    1: ["  #  ", " ##  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "],
    2: [" ### ", "#   #", "    #", "   # ", "  #  ", " #   ", "#####"],
    3: ["#####", "   # ", "  #  ", "   # ", "    #", "#   #", " ### "],
    4: ["   # ", "  ## ", " # # ", "#  # ", "#####", "   # ", "   # "],
    5: ["#####", "#    ", "#### ", "    #", "    #", "#   #", " ### "],
    6: ["  ## ", " #   ", "#    ", "#### ", "#   #", "#   #", " ### "],
    7: ["#####", "    #", "   # ", "  #  ", " #   ", " #   ", " #   "],
    8: [" ### ", "#   #", "#   #", " ### ", "#   #", "#   #", " ### "],
    9: [" ### ", "#   #", "#   #", " ####", "    #", "   # ", " ##  "],
}


def glyph(digit, scale=2):
    bitmap = np.array([[ch == "#" for ch in row] for row in _FONT[digit]], dtype=np.float32)
    return np.kron(bitmap, np.ones((scale, scale), dtype=np.float32))


def moving_digits(n, frames, size, seed, max_speed=1):
    """(n, frames, 1, size, size) float32 in [0, 1]: one digit per sequence moving with bounces."""
    rng = np.random.default_rng(seed)
    out = np.zeros((n, frames, 1, size, size), dtype=np.float32)
    for s in range(n):
        g = glyph(int(rng.integers(10)))
        gh, gw = g.shape
        y, x = int(rng.integers(0, size - gh + 1)), int(rng.integers(0, size - gw + 1))
        vy, vx = 0, 0
        while vy == 0 and vx == 0:
            vy, vx = (int(v) for v in rng.integers(-max_speed, max_speed + 1, size=2))
        for t in range(frames):
            out[s, t, 0, y:y + gh, x:x + gw] = g
            # Move, reflecting off the borders.
            y, x = y + vy, x + vx
            if not 0 <= y <= size - gh:
                vy = -vy
                y = -y if y < 0 else 2 * (size - gh) - y
            if not 0 <= x <= size - gw:
                vx = -vx
                x = -x if x < 0 else 2 * (size - gw) - x
    return out


class NextFramePredictor(nn.Module):
    """ConvLSTM over the frames, then a 1x1 convolution + sigmoid per step: the predicted next frame."""

    def __init__(self, hidden=(16, 16), kernel_size=3, generator=None):
        super().__init__()
        self.rnn = nn.ConvLSTM(1, list(hidden), kernel_size, num_layers=len(hidden), generator=generator)
        self.readout_weight = nn.Parameter(gc.zeros(1, hidden[-1], 1, 1))
        nn.init.glorot_uniform_(self.readout_weight, generator=generator)
        self.readout_bias = nn.Parameter(gc.full([1], -2.0))  # frames are mostly background: start dark

    def forward(self, frames):
        n, t, _, h, w = frames.shape
        states, _ = self.rnn(frames)                                   # (N, T, hidden, H, W)
        flat = states.reshape(n * t, states.shape[2], h, w)
        logits = F.conv2d(flat, self.readout_weight, self.readout_bias)
        return F.sigmoid(logits).reshape(n, t, 1, h, w)


def evaluate(model, frames, device, batch=32):
    """Held-out MSE over frames 2..T of the model's next-frame predictions, of copying the last frame, and of a
    blank frame (which shows how much of the image is ink)."""
    model_sq = baseline_sq = blank_sq = count = 0.0
    with gc.no_grad():
        for start in range(0, len(frames), batch):
            seq = frames[start:start + batch]
            pred = model(gc.tensor(seq[:, :-1], device=device)).numpy()
            target = seq[:, 1:]
            model_sq += float(np.sum((pred - target) ** 2, dtype=np.float64))
            baseline_sq += float(np.sum((seq[:, :-1] - target) ** 2, dtype=np.float64))
            blank_sq += float(np.sum(target ** 2, dtype=np.float64))
            count += target.size
    return model_sq / count, baseline_sq / count, blank_sq / count


def train(steps=200, batch=16, frames=10, size=24, hidden=(16, 16), lr=3e-3, clip=1.0, seed=0, device="cpu",
          health_every=10, log=print, distributed=False):
    """Trains a NextFramePredictor; returns (model, health) with health the diagnostics.HealthMonitor that watched
    the run (its findings are warned as they appear; None on ranks other than 0).
    distributed: data-parallel over the ranks of gradcore.distributed (initialised here if it is not yet): each
    rank draws `batch` sequences of its own per step, DistributedDataParallel averages the gradients (so every
    rank clips the same norm and takes the same step), and only rank 0 logs and runs the health checks. The model
    returned is the unwrapped network."""
    rank, world = start_distributed(distributed)
    if rank != 0:
        log = lambda line: None  # noqa: E731
    plain = NextFramePredictor(hidden, generator=gc.Generator(seed)).to(device)
    model = DistributedDataParallel(plain) if distributed else plain
    optimizer = gc.optim.Adam(model.parameters(), lr=lr)
    health = diagnostics.HealthMonitor(plain, every=health_every) if rank == 0 else None
    start = time.perf_counter()
    for step in range(1, steps + 1):
        # batch: fresh sequences every step (a new seed per step, and per rank), inputs frames 1..T-1, targets 2..T
        step_seed = seed * 1_000_003 + step
        seq = moving_digits(batch, frames, size, seed=step_seed if world == 1 else [step_seed, rank])
        inputs, targets = gc.tensor(seq[:, :-1], device=device), gc.tensor(seq[:, 1:], device=device)
        # forward, loss
        prediction = model(inputs)
        loss = F.mse_loss(prediction, targets)
        # backward
        optimizer.zero_grad()
        loss.backward()
        # clip, update
        norm = gc.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        # health, every health_every steps: the predictions must follow the targets, the layers learn
        if health is not None:
            health.step(loss, prediction, targets)
        if step % 25 == 0 or step == 1:
            log(f"step {step:5d}  train MSE {loss.item():.5f}  grad norm {norm.item():.3f}  "
                f"{time.perf_counter() - start:6.1f}s")
    if health is not None:
        health.remove()
    return plain, health


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--size", type=int, default=24, help="frame height and width")
    parser.add_argument("--hidden", type=int, nargs="+", default=[16, 16], help="channels per ConvLSTM layer")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--clip", type=float, default=1.0, help="max gradient norm")
    parser.add_argument("--held-out", type=int, default=128, help="held-out sequences")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--health-every", type=int, default=10, help="steps between training-health checks")
    parser.add_argument("--device", default="cuda" if gc.cuda.is_available() else "cpu")
    parser.add_argument("--distributed", action="store_true",
                        help="data-parallel over MPI ranks: mpirun -np N python -m gradcore.examples.convlstm "
                             "--distributed (--batch per rank)")
    args = parser.parse_args(argv)

    rank, world = start_distributed(args.distributed)
    say = print if rank == 0 else (lambda *a, **k: None)  # the ranks hold the same weights: one report
    held_out = moving_digits(args.held_out, args.frames, args.size, seed=10_000 + args.seed)
    ranks = f" on {world} ranks ({args.batch} sequences each)" if args.distributed else ""
    say(f"ConvLSTM next-frame prediction: {args.steps} steps of {args.batch} sequences of {args.frames} "
        f"{args.size}x{args.size} frames, hidden {args.hidden}, on {args.device}{ranks}")
    model, health = train(args.steps, args.batch, args.frames, args.size, args.hidden, args.lr, args.clip, args.seed,
                          args.device, args.health_every, log=lambda line: print(line, flush=True),
                          distributed=args.distributed)
    model_mse, baseline_mse, blank_mse = evaluate(model, held_out, args.device)
    say(f"held-out MSE: ConvLSTM {model_mse:.5f}   copy-last-frame baseline {baseline_mse:.5f}   "
        f"(blank frame {blank_mse:.5f})   ConvLSTM / baseline {model_mse / baseline_mse:.3f}")
    if health is not None and health.findings:
        say(f"{len(health.findings)} training-health warning(s); see above")
    if args.distributed:
        from gradcore import distributed as dist

        dist.destroy_process_group()
    if model_mse >= baseline_mse:
        say("the model did not beat the copy-last-frame baseline")
        raise SystemExit(1)
    say("the model beats the copy-last-frame baseline")


if __name__ == "__main__":
    main()
