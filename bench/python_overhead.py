"""The Python layer's own cost in the seeds' training step (bench/autoencoder_step.py's network, B=25, 1 thread).

    python -m bench.python_overhead [--batch-norm] [--segments] [--cold] [--steps N]

Every gradcore._core function replays the result it returned, call by call, in one recorded step, so what is timed
is Python alone: modules, argument checks, Function.apply, the engine, the optimizer's wrapper, and the pybind11
crossings of the few calls left real (same_layout, Array attributes). Printed: per phase (zero_grad, forward, loss,
backward, optimizer) the minimum and median over --steps steps, wall us; with --segments, each stretch of Python
between two kernel calls. --cold copies 2 x 2 MiB before each replayed call (a kernel's cache traffic at B=25; the
copies' time is taken out), so the Python runs on cold caches as it does between real kernels: ~3-4x the warm
time, and sensitive to the other processes' load. bench/breakdown.py measures the same share inside the real step
(wall time, with hooks); this one isolates it.

Issue 19, session 8 (2026-12-08; 1 thread, load 5-7 on 2 cores, warm, min of 5000 steps, base 0b75707 -> now, runs
interleaved): B=25 total 123-125 -> 96-97 us (forward 55 -> 40, loss 7 -> 6, backward 47 -> 39.5, optimizer 13.7
-> 10); +BN 187-196 -> 158 (forward 95-100 -> 72.5). Per segment, the node-to-node stretches cost 3.5-7.5 us warm
(12-25 us cold), the stretches inside a node's backward 0.2-0.7; the largest are the end of backward + the optimizer
up to fused_adam (15 -> 11.8 warm, ~43 cold) and the engine's start (topological sort, seed: ~9). In the real step
perf's samples put libpython at 8.75% -> 7.9% of _core's (1 thread, 3+3 runs): the cold cost per stretch shrinks
less than the warm one, much of it being the interpreter's own code and data fetched again after each kernel.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import gradcore as gc
from gradcore import _core
from gradcore import functional as F
from gradcore.examples.autoencoder import build
from gradcore.optim import Adam

_LEFT_REAL = ("same_layout", "set_num_threads", "get_num_threads")  # cheap, or not kernels
_PHASES = ("zero_grad", "forward", "loss", "backward", "optimizer")


class _Replay:
    """Swaps gradcore._core's functions for recorders, then for players returning the recorded results in order;
    with cold=True each played call first evicts the caches. Records when each call starts and ends."""

    def __init__(self, cold):
        self.cold = cold
        self.results, self.names, self.position = [], [], 0
        self.evict_ns = 0
        self.marks = []  # (start, end) ns of each played call
        self._source = np.ones(1 << 19, np.float32)  # 2 MiB
        self._sink = np.empty_like(self._source)
        self._real = {name: fn for name, fn in vars(_core).items()
                      if callable(fn) and not isinstance(fn, type) and name not in _LEFT_REAL}

    def record(self):
        for name, fn in self._real.items():
            setattr(_core, name, self._recorder(name, fn))

    def play(self):
        for name in self._real:
            setattr(_core, name, self._player)

    def restore(self):
        for name, fn in self._real.items():
            setattr(_core, name, fn)

    def rewind(self):
        self.position, self.evict_ns = 0, 0
        self.marks.clear()

    def _recorder(self, name, fn):
        def call(*args, **kwargs):
            result = fn(*args, **kwargs)
            self.results.append(result)
            self.names.append(name)
            return result
        return call

    def _player(self, *args, **kwargs):
        start = time.perf_counter_ns()
        if self.cold:
            np.copyto(self._sink, self._source)
            np.copyto(self._sink, self._source)
        result = self.results[self.position]
        self.position += 1
        end = time.perf_counter_ns()
        self.evict_ns += end - start
        self.marks.append((start, end))
        return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-norm", action="store_true", help="the +BN network")
    parser.add_argument("--segments", action="store_true", help="also time each stretch between kernel calls")
    parser.add_argument("--cold", action="store_true", help="evict the caches before each replayed kernel call")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 5000 warm, 1000 cold)")
    args = parser.parse_args(argv)
    steps = args.steps or (1000 if args.cold else 5000)
    gc.set_num_threads(1)
    encoder, decoder = build(batch_norm=args.batch_norm, seed=0, device="cpu")
    optimizer = Adam(list(encoder.parameters()) + list(decoder.parameters()), lr=1e-3, weight_decay=1e-4)
    x = gc.tensor(np.random.default_rng(0).random((25, 1, 28, 28)), dtype="float32")
    replay = _Replay(args.cold)
    clock = time.perf_counter_ns

    def step():
        # (phase boundaries in ns, with the evicting copies' time so far, which is taken out of each phase)
        t = [(clock(), replay.evict_ns)]
        optimizer.zero_grad()
        t.append((clock(), replay.evict_ns))
        y = decoder(encoder(x))
        t.append((clock(), replay.evict_ns))
        loss = F.mse_loss(y, x)
        t.append((clock(), replay.evict_ns))
        loss.backward()
        t.append((clock(), replay.evict_ns))
        optimizer.step()
        t.append((clock(), replay.evict_ns))
        return [(b - a) - (eb - ea) for (a, ea), (b, eb) in zip(t, t[1:])], t[0][0], t[-1][0]

    for _ in range(3):
        step()
    replay.record()
    step()
    replay.play()
    try:
        phases, segments = [], []
        for i in range(steps + 200):
            replay.rewind()
            times, start, end = step()
            if i < 200:
                continue
            phases.append(times)
            if args.segments:  # from each call's end (or the step's start) to the next call's start
                ends = [start] + [e for _, e in replay.marks]
                segments.append([s - e for (s, _), e in zip(replay.marks + [(end, end)], ends)])
    finally:
        replay.restore()
    phases = np.array(phases) / 1e3
    print(f"pure Python of the B=25{' +BN' if args.batch_norm else ''} step, us ({'cold' if args.cold else 'warm'}, "
          f"1 thread, {steps} steps): min (median)")
    for name, column in zip(_PHASES, phases.T):
        print(f"  {name:10s} {column.min():8.1f} ({np.median(column):.1f})")
    print(f"  {'total':10s} {phases.min(0).sum():8.1f} ({np.median(phases, 0).sum():.1f})  (sums of the phases' values)")
    if args.segments:
        segments = np.array(segments) / 1e3
        names = ["(step start)"] + replay.names + ["(step end)"]
        for k, column in enumerate(segments.T):
            print(f"  {names[k] + ' -> ' + names[k + 1]:62s} {column.min():7.1f} ({np.median(column):.1f})")


if __name__ == "__main__":
    main()
