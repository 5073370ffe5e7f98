"""Elementwise and reduction ops against PyTorch: bandwidth-bound, so GB/s is the number to read.

    python -m bench.elementwise [--device cuda] [--quick]
"""
from __future__ import annotations

import argparse

import numpy as np

import gradcore as gc
from bench.harness import Case, add_common_args, run_suite, setup


def cases(args, torch):
    sizes = [1 << 16, 1 << 20] if args.quick else [1 << 16, 1 << 20, 1 << 24]
    out = []
    for n in sizes:
        x_np = np.random.default_rng(0).standard_normal(n).astype(np.float32)
        x = gc.tensor(x_np, device=args.device)
        y = gc.tensor(x_np[::-1].copy(), device=args.device)
        tx = ty = None
        if torch is not None:
            dev = "cuda" if args.device.startswith("cuda") else "cpu"
            tx, ty = torch.from_numpy(x_np).to(dev), torch.from_numpy(x_np[::-1].copy()).to(dev)
        out.append(Case(f"add n={n}", lambda x=x, y=y: x + y, tx is not None and (lambda: tx + ty) or None,
                        flops=n, bytes=12 * n, params=dict(op="add", n=n)))
        out.append(Case(f"sigmoid n={n}", lambda x=x: x.sigmoid(), tx is not None and (lambda: tx.sigmoid()) or None,
                        flops=4 * n, bytes=8 * n, params=dict(op="sigmoid", n=n)))
        out.append(Case(f"sum n={n}", lambda x=x: x.sum(), tx is not None and (lambda: tx.sum()) or None,
                        flops=n, bytes=4 * n, params=dict(op="sum", n=n)))
    return out


def main(argv=None):
    args = add_common_args(argparse.ArgumentParser(description=__doc__)).parse_args(argv)
    torch = setup(args)
    with gc.no_grad():
        return run_suite("elementwise", cases(args, torch), args, torch)


if __name__ == "__main__":
    main()
