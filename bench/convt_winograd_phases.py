"""Per-phase time of the stride-2 transposed-convolution Winograd kernel (csrc/cpu/conv_transpose2d_winograd.cpp) on
the seed network's three passes that run it, for A/B work on its transforms:

    PYTHONPATH=python:. python -m bench.convt_winograd_phases [--batch 25] [--calls 150]

dec1 and dec2 are conv_transpose2d forwards (64->64 7->14, 64->32 14->28), enc2 the input gradient of the 32->64
stride-2 conv (64 gy channels 7x7 -> 32 gx channels 14x14); all padding 1 with output_padding 1, as in
bench.autoencoder_step. One thread. For each phase (the kernel's GRADCORE_PHASE scopes, and the whole call), the
minimum over single calls: on a shared machine the minimum is the most repeatable number. Run two builds in
alternating processes and compare minima; the transforms' times depend on whether gy and gx are still in the caches
(they are, more than in a training step, when one call repeats), so read them beside the GEMM's.
"""
from __future__ import annotations

import argparse

import numpy as np

import gradcore as gc
from gradcore import _core

PASSES = {"dec1_fwd": (64, 7, 64), "dec2_fwd": (64, 14, 32), "enc2_bd": (64, 7, 32)}  # gy channels, size, gx channels


def phase_minima(batch, calls):
    rng = np.random.default_rng(0)
    out = {}
    for name, (k, size, c) in PASSES.items():
        gy = gc.tensor(rng.standard_normal((batch, k, size, size)), dtype="float32")._data
        w = gc.tensor(rng.standard_normal((k, c, 3, 3)) * 0.1, dtype="float32")._data
        call = lambda: _core.conv2d_backward_input(gy, w, (2 * size, 2 * size), (2, 2), (1, 1, 1, 1), (1, 1), 1)
        call()
        _core.set_phase_timing(True)
        best = {}
        try:
            for _ in range(calls):
                _core.phase_times(reset=True)
                call()
                for key, (seconds, _) in _core.phase_times(reset=True).items():
                    key = key.split("/")[-1]
                    best[key] = min(best.get(key, float("inf")), seconds * 1e3)
        finally:
            _core.set_phase_timing(False)
        out[name] = best
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=25)
    parser.add_argument("--calls", type=int, default=150)
    args = parser.parse_args(argv)
    gc.set_num_threads(1)
    for name, best in phase_minima(args.batch, args.calls).items():
        print(f"{name:9s} " + " ".join(f"{k}={v:.3f}" for k, v in sorted(best.items())) + "  (ms, 1 thread, minima)")


if __name__ == "__main__":
    main()
