"""The classifier's ops, forward + backward per call, against PyTorch: max/avg pooling at the shapes of a small CNN's
feature maps, and softmax cross-entropy over a batch of logits. Both sides go through their autograd (a leaf that
requires grad, the op, backward with a fixed cotangent), so each case times what a training step pays for the op.

    python -m bench.classify_ops [--device cuda] [--quick]
"""
from __future__ import annotations

import argparse

import numpy as np

import gradcore as gc
from gradcore import functional as F
from bench.harness import Case, add_common_args, run_suite, setup

POOL_SHAPES = [(64, 32, 28, 28), (64, 64, 14, 14), (256, 64, 56, 56)]
CE_SHAPES = [(64, 10), (256, 1000), (4096, 10)]


def _pool_cases(args, torch, shape, name, ours_fn, torch_fn):
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal(shape).astype(np.float32)
    x = gc.tensor(x_np, device=args.device, requires_grad=True)
    with gc.no_grad():
        out_shape = ours_fn(x).shape
    g = gc.tensor(rng.standard_normal(out_shape).astype(np.float32), device=args.device)

    def ours():
        x.grad = None
        ours_fn(x).backward(g)

    reference = None
    if torch is not None:
        dev = "cuda" if args.device.startswith("cuda") else "cpu"
        tx = torch.from_numpy(x_np).to(dev).requires_grad_()
        tg = torch.from_numpy(g.numpy()).to(dev)

        def reference():
            tx.grad = None
            torch_fn(tx).backward(tg)

    n_in, n_out = int(np.prod(shape)), int(np.prod(out_shape))
    return Case(f"{name} {'x'.join(map(str, shape))}", ours, reference, bytes=4 * (2 * n_in + 2 * n_out),
                params=dict(op=name, shape=list(shape)))


def _ce_case(args, torch, shape):
    rng = np.random.default_rng(1)
    x_np = rng.standard_normal(shape).astype(np.float32)
    t_np = rng.integers(0, shape[1], shape[0])
    x = gc.tensor(x_np, device=args.device, requires_grad=True)
    t = gc.tensor(t_np, dtype="int64", device=args.device)

    def ours():
        x.grad = None
        F.cross_entropy(x, t).backward()

    reference = None
    if torch is not None:
        dev = "cuda" if args.device.startswith("cuda") else "cpu"
        tx = torch.from_numpy(x_np).to(dev).requires_grad_()
        tt = torch.from_numpy(t_np).to(dev)

        def reference():
            tx.grad = None
            torch.nn.functional.cross_entropy(tx, tt).backward()

    n = int(np.prod(shape))
    return Case(f"cross_entropy {shape[0]}x{shape[1]}", ours, reference, bytes=4 * 3 * n,
                params=dict(op="cross_entropy", shape=list(shape)))


def cases(args, torch):
    tf = torch.nn.functional if torch is not None else None
    pools = POOL_SHAPES[:2] if args.quick else POOL_SHAPES
    out = []
    for shape in pools:
        out.append(_pool_cases(args, torch, shape, "max_pool2d 2x2", lambda a: F.max_pool2d(a, 2),
                               tf and (lambda a: tf.max_pool2d(a, 2))))
        out.append(_pool_cases(args, torch, shape, "max_pool2d 3x3/2 pad 1", lambda a: F.max_pool2d(a, 3, 2, 1),
                               tf and (lambda a: tf.max_pool2d(a, 3, 2, 1))))
        out.append(_pool_cases(args, torch, shape, "avg_pool2d 2x2", lambda a: F.avg_pool2d(a, 2),
                               tf and (lambda a: tf.avg_pool2d(a, 2))))
    for shape in CE_SHAPES[:2] if args.quick else CE_SHAPES:
        out.append(_ce_case(args, torch, shape))
    return out


def main(argv=None):
    args = add_common_args(argparse.ArgumentParser(description=__doc__)).parse_args(argv)
    torch = setup(args)
    return run_suite("classify_ops", cases(args, torch), args, torch)


if __name__ == "__main__":
    main()
