"""linear and matmul, forward and backward, against PyTorch (CPU, 2 threads by default; cuBLAS on a GPU).

    python -m bench.linear [--device cuda] [--quick]

Shapes: the seeds' dense autoencoder layers (784 -> 200 and 200 -> 784) at batch 1, 25 and 256; large square
matrices (1024 and 2048); a batched matmul. For each layer:
  forward   ours: gradcore.functional.linear (y = x W^T + b, the bias added inside the GEMM); PyTorch: F.linear
  backward  dx = G W, dW = G^T x, db = the column sums of G: ours the three _core calls Linear.backward makes
            (transposed reads, no transpose copied); PyTorch mm(G, W), mm(G.t(), x), G.sum(0)
  step      forward + backward through each library's autograd (sum of y times a fixed G), Python overhead included
Square matmul: forward c = a b and backward (dA = G B^T, dB = A^T G) likewise.
"""
from __future__ import annotations

import argparse

import numpy as np

import gradcore as gc
from bench.harness import Case, add_common_args, run_suite, setup
from gradcore import _core

LAYERS = {f"linear {n_in}->{n_out} batch {batch}": (batch, n_in, n_out)
          for n_in, n_out in ((784, 200), (200, 784)) for batch in (1, 25, 256)}
SQUARE = {"matmul 1024^3": (1, 1024, 1024, 1024), "matmul 2048^3": (1, 2048, 2048, 2048),
          "bmm 64 x 128^3": (64, 128, 128, 128)}
QUICK_SQUARE = ["matmul 1024^3", "bmm 64 x 128^3"]


def linear_cases(name, shape, device, torch, dtype="float32"):
    batch, n_in, n_out = shape
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((batch, n_in)).astype(dtype)
    w_np = (rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)).astype(dtype)
    b_np = rng.standard_normal(n_out).astype(dtype)
    g_np = rng.standard_normal((batch, n_out)).astype(dtype)
    x, w, b, g = (gc.tensor(a, device=device) for a in (x_np, w_np, b_np, g_np))
    xa, wa, ga = x._data, w._data, g._data
    xr, wr, br = (gc.tensor(a, device=device, requires_grad=True) for a in (x_np, w_np, b_np))

    def ours_step():
        for t in (xr, wr, br):
            t.grad = None
        (gc.functional.linear(xr, wr, br) * g).sum().backward()

    ours = {
        "forward": lambda: gc.functional.linear(x, w, b),
        "backward": lambda: (_core.matmul(ga, wa), _core.matmul(ga, xa, transpose_a=True), _core.sum(ga, [0])),
        "step": ours_step,
    }
    refs = {}
    if torch is not None:
        dev = "cuda" if device.startswith("cuda") else "cpu"
        tx, tw, tb, tg = (torch.from_numpy(a).to(dev) for a in (x_np, w_np, b_np, g_np))
        txr, twr, tbr = (t.clone().requires_grad_() for t in (tx, tw, tb))

        def ref_step():
            for t in (txr, twr, tbr):
                t.grad = None
            (torch.nn.functional.linear(txr, twr, tbr) * tg).sum().backward()

        refs = {
            "forward": lambda: torch.nn.functional.linear(tx, tw, tb),
            "backward": lambda: (torch.mm(tg, tw), torch.mm(tg.t(), tx), tg.sum(0)),
            "step": ref_step,
        }
    macs = batch * n_in * n_out
    flops = {"forward": 2.0 * macs, "backward": 4.0 * macs, "step": 6.0 * macs}
    elem = np.dtype(dtype).itemsize
    sizes = batch * n_in + n_in * n_out + batch * n_out
    return [Case(f"{name} {kind}", ours[kind], refs.get(kind), flops=flops[kind],
                 bytes=sizes * elem * (1 if kind == "forward" else 2), params=dict(layer=name, pass_=kind))
            for kind in ("forward", "backward", "step")]


def square_cases(name, shape, device, torch, dtype="float32"):
    batch, m, k, n = shape
    lead = (batch,) if batch > 1 else ()
    rng = np.random.default_rng(0)
    a_np = rng.standard_normal(lead + (m, k)).astype(dtype)
    b_np = (rng.standard_normal(lead + (k, n)) / np.sqrt(k)).astype(dtype)
    g_np = rng.standard_normal(lead + (m, n)).astype(dtype)
    a, b, g = (gc.tensor(t, device=device)._data for t in (a_np, b_np, g_np))
    ours = {
        "forward": lambda: _core.matmul(a, b),
        "backward": lambda: (_core.matmul(g, b, transpose_b=True), _core.matmul(a, g, transpose_a=True)),
    }
    refs = {}
    if torch is not None:
        dev = "cuda" if device.startswith("cuda") else "cpu"
        ta, tb, tg = (torch.from_numpy(t).to(dev) for t in (a_np, b_np, g_np))
        refs = {
            "forward": lambda: torch.matmul(ta, tb),
            "backward": lambda: (torch.matmul(tg, tb.transpose(-1, -2)), torch.matmul(ta.transpose(-1, -2), tg)),
        }
    macs = batch * m * k * n
    elem = np.dtype(dtype).itemsize
    sizes = batch * (m * k + k * n + m * n)
    return [Case(f"{name} {kind}", ours[kind], refs.get(kind), flops=(2.0 if kind == "forward" else 4.0) * macs,
                 bytes=sizes * elem * (1 if kind == "forward" else 2), params=dict(layer=name, pass_=kind))
            for kind in ("forward", "backward")]


def main(argv=None):
    parser = add_common_args(argparse.ArgumentParser(description=__doc__))
    parser.add_argument("--layers", default=None, help="comma-separated substrings selecting cases")
    args = parser.parse_args(argv)
    torch = setup(args)
    if args.device.startswith("cuda") and torch is not None:  # compare FP32 with FP32
        torch.backends.cuda.matmul.allow_tf32 = False
    squares = QUICK_SQUARE if args.quick else list(SQUARE)
    names = list(LAYERS) + squares
    if args.layers:
        names = [n for n in names if any(part in n for part in args.layers.split(","))]
    cases = []
    with gc.no_grad():
        for name in names:
            if name in LAYERS:
                cases += linear_cases(name, LAYERS[name], args.device, torch)
            else:
                cases += square_cases(name, SQUARE[name], args.device, torch)
    return run_suite("linear", cases, args, torch, settings=dict(cases=names))


if __name__ == "__main__":
    main()
