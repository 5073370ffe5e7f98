"""BatchNorm2d forward (training and evaluation) and training backward against PyTorch: cuDNN on a GPU, PyTorch's
native kernels on the CPU. Both sides are called at the op level (our _core entry points, the aten ops), so neither
pays for autograd or modules and the kernels are what is compared.

    python -m bench.batch_norm [--device cuda] [--quick] [--peak-gbps 3350]

Bandwidth-bound: read GB/s. The harness's GB/s counts the minimum bytes (x read once, y or dx written once);
the second table counts what a two-pass algorithm must move when the tensor does not fit in cache (training
forward reads x twice; training backward reads x and dy twice) and gives it as a fraction of the device's peak.
"""
from __future__ import annotations

import argparse

import numpy as np

import gradcore as gc
from gradcore import _core
from bench.harness import Case, add_common_args, run_suite, setup

SHAPES = [(25, 32, 14, 14), (32, 64, 28, 28), (64, 128, 14, 14), (32, 512, 7, 7), (128, 64, 28, 28),
          (64, 64, 56, 56), (256, 64, 56, 56)]
QUICK_SHAPES = [(25, 32, 14, 14), (32, 64, 28, 28)]
EPS = 1e-5

# Peak HBM bandwidth by device name, for GPUs whose properties do not say (GB/s).
KNOWN_PEAKS = {"H100 SXM": 3350.0, "H100 80GB HBM3": 3350.0, "H100 PCIe": 2000.0, "H100 NVL": 3900.0,
               "H200": 4800.0, "A100-SXM4-80GB": 2039.0, "A100-SXM4-40GB": 1555.0, "A100-PCIE": 1555.0}


def peak_gbps(args, torch):
    """The device's peak memory bandwidth in GB/s: --peak-gbps, else the memory clock and bus width PyTorch
    reports (double data rate), else a table of known parts."""
    if args.peak_gbps:
        return args.peak_gbps
    if not args.device.startswith("cuda") or torch is None or not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    clock_khz, bus_bits = getattr(props, "memory_clock_rate", 0), getattr(props, "memory_bus_width", 0)
    if clock_khz and bus_bits:
        return 2 * clock_khz * 1e3 * bus_bits / 8 / 1e9
    for key, value in KNOWN_PEAKS.items():
        if key in props.name:
            return value
    return None


def torch_ops(torch, device):
    """(forward_train, forward_eval, backward_train) for PyTorch: cuDNN on CUDA, native kernels on the CPU."""
    aten = torch.ops.aten
    if device == "cuda" and torch.backends.cudnn.is_available():
        def forward_train(x, w, b, rm, rv):
            return aten.cudnn_batch_norm(x, w, b, rm, rv, True, 0.1, EPS)  # (y, save_mean, save_var, reserve)

        def forward_eval(x, w, b, rm, rv):
            return aten.cudnn_batch_norm(x, w, b, rm, rv, False, 0.1, EPS)[0]

        def backward_train(dy, x, w, rm, rv, saved):
            _, save_mean, save_var, reserve = saved
            return aten.cudnn_batch_norm_backward(x, dy, w, rm, rv, save_mean, save_var, EPS, reserve)

        return "cuDNN", forward_train, forward_eval, backward_train

    def forward_train(x, w, b, rm, rv):
        return aten.native_batch_norm(x, w, b, rm, rv, True, 0.1, EPS)  # (y, save_mean, save_invstd)

    def forward_eval(x, w, b, rm, rv):
        return aten.native_batch_norm(x, w, b, rm, rv, False, 0.1, EPS)[0]

    def backward_train(dy, x, w, rm, rv, saved):
        _, save_mean, save_invstd = saved
        return aten.native_batch_norm_backward(dy, x, w, rm, rv, save_mean, save_invstd, True, EPS,
                                               [True, True, True])

    return "PyTorch native", forward_train, forward_eval, backward_train


def shape_cases(shape, args, torch, reference):
    """The three cases of one shape (a function of its own, so each closure keeps its own tensors)."""
    device = "cuda" if args.device.startswith("cuda") else "cpu"
    rng = np.random.default_rng(0)
    c = shape[1]
    x_np = (rng.standard_normal(shape) * 2 + 1).astype(np.float32)
    dy_np = rng.standard_normal(shape).astype(np.float32)
    w_np = (1 + 0.1 * rng.standard_normal(c)).astype(np.float32)
    b_np = (0.1 * rng.standard_normal(c)).astype(np.float32)
    x, dy = gc.tensor(x_np, device=args.device), gc.tensor(dy_np, device=args.device)
    w, b = gc.tensor(w_np, device=args.device), gc.tensor(b_np, device=args.device)
    rm, rv = gc.zeros(c, device=args.device), gc.ones(c, device=args.device)
    _, save_mean, save_invstd = _core.batch_norm_forward_train(x._data, w._data, b._data, rm._data, rv._data, 0.1,
                                                               EPS)
    refs = [None, None, None]
    if reference is not None:
        _, t_train, t_eval, t_backward = reference
        tx, tdy, tw, tb = (torch.from_numpy(a).to(device) for a in (x_np, dy_np, w_np, b_np))
        trm, trv = torch.zeros(c, device=device), torch.ones(c, device=device)
        saved = t_train(tx, tw, tb, trm, trv)
        refs = [lambda: t_train(tx, tw, tb, trm, trv), lambda: t_eval(tx, tw, tb, trm, trv),
                lambda: t_backward(tdy, tx, tw, trm, trv, saved)]

    numel = int(np.prod(shape))
    size = numel * 4
    name = "x".join(map(str, shape))
    params = dict(shape=list(shape), dtype="float32")
    return [
        Case(f"forward train {name}",
             lambda: _core.batch_norm_forward_train(x._data, w._data, b._data, rm._data, rv._data, 0.1, EPS), refs[0],
             flops=8 * numel, bytes=2 * size, params=dict(params, op="forward_train", moved_bytes=3 * size)),
        Case(f"forward eval {name}", lambda: _core.batch_norm_forward_eval(x._data, rm._data, rv._data, w._data,
                                                                            b._data, EPS), refs[1],
             flops=2 * numel, bytes=2 * size, params=dict(params, op="forward_eval", moved_bytes=2 * size)),
        Case(f"backward train {name}",
             lambda: _core.batch_norm_backward_train(dy._data, x._data, w._data, save_mean, save_invstd),
             refs[2], flops=10 * numel, bytes=3 * size,
             params=dict(params, op="backward_train", moved_bytes=5 * size)),
    ]


def cases(args, torch):
    device = "cuda" if args.device.startswith("cuda") else "cpu"
    reference = torch_ops(torch, device) if torch is not None else None
    out = []
    for shape in QUICK_SHAPES if args.quick else SHAPES:
        out += shape_cases(shape, args, torch, reference)
    return out


def print_bandwidth(result, peak):
    """Achieved bandwidth over the bytes a two-pass algorithm moves (params moved_bytes in the JSON) and its
    fraction of the device's peak (settings peak_gbps)."""
    print(f"\n{'case':44s} {'moved GB/s':>11s} {'ref GB/s':>9s} {'of peak':>8s} {'ref of peak':>12s}"
          + (f"   (peak {peak:.0f} GB/s)" if peak else "   (peak unknown: pass --peak-gbps)"))
    fmt = lambda v, spec: format(v, spec) if v is not None else "-"  # noqa: E731
    for row in result["cases"]:
        ours = row["moved_bytes"] / row["ours_s"] / 1e9
        ref = row["moved_bytes"] / row["reference_s"] / 1e9 if row["reference_s"] else None
        print(f"{row['name']:44s} {ours:11.1f} {fmt(ref, '9.1f'):>9s} {fmt(peak and ours / peak, '8.1%'):>8s} "
              f"{fmt(peak and ref and ref / peak, '12.1%'):>12s}")


def main(argv=None):
    parser = add_common_args(argparse.ArgumentParser(description=__doc__))
    parser.add_argument("--peak-gbps", type=float, default=None, help="the device's peak memory bandwidth")
    args = parser.parse_args(argv)
    torch = setup(args)
    peak = peak_gbps(args, torch)
    device = "cuda" if args.device.startswith("cuda") else "cpu"
    reference_name = torch_ops(torch, device)[0] if torch is not None else None
    with gc.no_grad():
        result = run_suite("batch_norm", cases(args, torch), args, torch,
                           settings=dict(reference=reference_name, peak_gbps=peak, dtype="float32"))
    print_bandwidth(result, peak)
    return result


if __name__ == "__main__":
    main()
