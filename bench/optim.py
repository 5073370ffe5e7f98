"""Fused Adam (+ global-norm clipping) against PyTorch: bandwidth-bound, so GB/s is the number to read.

    python -m bench.optim [--device cuda] [--params N] [--tensors 200] [--quick]

Defaults: 100M float32 parameters in 200 tensors on a GPU (PyTorch reference: torch.optim.Adam(fused=True) plus
torch.nn.utils.clip_grad_norm_), 10M on the CPU (PyTorch's CPU Adam, fused where it supports it).
Bytes per parameter: Adam reads p, g, m, v and writes p, m, v: 28 bytes in float32. With clipping the norm pass
reads g once more: 32 bytes. clip_grad_norm_ alone reads g for the norm, then reads and writes it to scale it:
12 bytes. The target on an H100 is >= 90% of HBM bandwidth and faster than PyTorch fused.
"""
from __future__ import annotations

import argparse

import numpy as np

import gradcore as gc
from bench.harness import Case, add_common_args, run_suite, setup


def tensor_sizes(total, count, seed=0):
    """`count` sizes summing to `total`, varied like a network's (a few large matrices, many small vectors)."""
    rng = np.random.default_rng(seed)
    weights = rng.lognormal(mean=0.0, sigma=1.5, size=count)
    sizes = np.maximum(1, np.floor(total * weights / weights.sum())).astype(np.int64)
    sizes[np.argmax(sizes)] += total - sizes.sum()
    return [int(s) for s in sizes]


def cases(args, torch):
    on_gpu = args.device.startswith("cuda")
    total = args.params or ((1 << 20) if args.quick else (100_000_000 if on_gpu else 10_000_000))
    count = min(args.tensors, total)
    sizes = tensor_sizes(total, count)
    rng = np.random.default_rng(1)
    init = [rng.standard_normal(n).astype(np.float32) for n in sizes]
    grads = [rng.standard_normal(n).astype(np.float32) for n in sizes]
    settings = dict(params=total, tensors=count, dtype="float32", lr=1e-3, clip_norm=1.0)

    def ours(clip_norm):
        params = [gc.nn.Parameter(gc.tensor(x, device=args.device)) for x in init]
        for p, g in zip(params, grads):
            p.grad = gc.tensor(g, device=args.device)
        opt = gc.optim.Adam(params, lr=1e-3, clip_norm=clip_norm)
        return opt.step, params

    adam_clip, params_clip = ours(1.0)
    adam, params_plain = ours(None)

    def clip_only():
        return gc.clip_grad_norm_(params_plain, 1e30)  # scale 1: the gradients keep their values

    ref_adam_clip = ref_adam = ref_clip = None
    if torch is not None:
        device = "cuda" if on_gpu else "cpu"

        def torch_setup():
            tp = [torch.nn.Parameter(torch.from_numpy(x.copy()).to(device)) for x in init]
            for p, g in zip(tp, grads):
                p.grad = torch.from_numpy(g).to(device)
            try:
                opt = torch.optim.Adam(tp, lr=1e-3, fused=True)
                settings["reference"] = "torch.optim.Adam(fused=True)"
            except (RuntimeError, TypeError):  # older PyTorch without fused CPU Adam
                opt = torch.optim.Adam(tp, lr=1e-3, foreach=True)
                settings["reference"] = "torch.optim.Adam(foreach=True)"
            return tp, opt

        tp_clip, topt_clip = torch_setup()
        tp_plain, topt_plain = torch_setup()

        def ref_adam_clip():
            torch.nn.utils.clip_grad_norm_(tp_clip, 1.0)
            topt_clip.step()

        ref_adam = topt_plain.step

        def ref_clip():
            return torch.nn.utils.clip_grad_norm_(tp_plain, 1e30)

    shape = dict(params=total, tensors=count)
    return [
        Case(f"adam+clip_norm {total / 1e6:.0f}M/{count}", adam_clip, ref_adam_clip, flops=20 * total,
             bytes=32 * total, params=dict(op="adam+clip_norm", bytes_per_param=32, **shape)),
        Case(f"adam {total / 1e6:.0f}M/{count}", adam, ref_adam, flops=17 * total, bytes=28 * total,
             params=dict(op="adam", bytes_per_param=28, **shape)),
        Case(f"clip_grad_norm_ {total / 1e6:.0f}M/{count}", clip_only, ref_clip, flops=3 * total, bytes=12 * total,
             params=dict(op="clip_grad_norm_", bytes_per_param=12, **shape)),
    ], settings


def main(argv=None):
    parser = add_common_args(argparse.ArgumentParser(description=__doc__))
    parser.add_argument("--params", type=int, default=None, help="total parameters (default 100M GPU, 10M CPU)")
    parser.add_argument("--tensors", type=int, default=200, help="number of parameter tensors")
    args = parser.parse_args(argv)
    torch = setup(args)
    suite_cases, settings = cases(args, torch)
    with gc.no_grad():
        return run_suite("optim", suite_cases, args, torch, settings=settings)


if __name__ == "__main__":
    main()
