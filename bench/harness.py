"""The benchmark harness every suite uses.

A suite builds a list of `Case`s: our callable, an optional reference callable (PyTorch), and the bytes moved and
floating-point operations of one call. `run_suite` warms each up, times the median of repeats (CUDA events on a
GPU, perf_counter on the CPU), prints a table of times, ratios (ours / reference: below 1.0 means we are faster),
GB/s and TFLOP/s with the geometric mean of the ratios, and writes JSON with the device, commit and settings.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import gradcore
from gradcore.examples import default_device


@dataclass
class Case:
    name: str
    ours: Callable[[], object]
    reference: Optional[Callable[[], object]] = None
    flops: float = 0.0  # floating-point operations of one call
    bytes: float = 0.0  # bytes read + written by one call (the minimum a perfect kernel moves)
    params: dict = field(default_factory=dict)


def add_common_args(parser: argparse.ArgumentParser):
    parser.add_argument("--device", default=default_device(), help="default: cuda on a real GPU, else cpu")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for gradcore and PyTorch")
    parser.add_argument("--no-reference", action="store_true", help="skip PyTorch")
    parser.add_argument("--out", default=None, help="JSON path (default bench/results/<date>-<device>-<suite>.json)")
    parser.add_argument("--quick", action="store_true", help="smaller shapes / fewer repeats (smoke test)")
    parser.add_argument("--breakdown", action="store_true",
                        help="after the table, where each case's time goes: per phase, op, C++ call and kernel phase "
                             "(bench/breakdown.py)")
    return parser


def torch_or_none():
    try:
        import torch
    except ImportError:
        return None
    return torch


def setup(args):
    """Thread counts and device checks shared by all suites; returns torch or None."""
    gradcore.set_num_threads(args.threads)
    torch = None if args.no_reference else torch_or_none()
    if torch is not None:
        torch.set_num_threads(args.threads)
    if args.device.startswith("cuda") and not gradcore.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device (or gradcore built without CUDA)")
    return torch


def _sync(device, torch):
    if device.startswith("cuda"):
        gradcore.cuda.synchronize()
        if torch is not None and torch.cuda.is_available():
            torch.cuda.synchronize()


def measure(fn, device, warmup, repeats, kind="ours", torch=None):
    """Median seconds of one call of fn, after warmup calls."""
    for _ in range(warmup):
        fn()
    _sync(device, torch)
    times = []
    for _ in range(repeats):
        if device.startswith("cuda") and kind == "ours":
            start, end = gradcore._core.CudaEvent(), gradcore._core.CudaEvent()
            start.record()
            fn()
            end.record()
            times.append(start.elapsed_ms(end) / 1e3)
        elif device.startswith("cuda"):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        else:
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def commit():
    try:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True).stdout.strip()
        return sha + ("-dirty" if dirty else "") if sha else "unknown"
    except OSError:
        return "unknown"


def device_name(device, torch):
    if device.startswith("cuda") and torch is not None and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def geomean(values):
    values = [v for v in values if v and v > 0 and math.isfinite(v)]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def run_suite(suite, cases, args, torch=None, settings=None):
    """Times every case, prints the table, writes the JSON, and returns the result dict."""
    rows = []
    header = f"{'case':44s} {'ours ms':>10s} {'ref ms':>10s} {'ratio':>7s} {'GB/s':>8s} {'TFLOP/s':>8s}"
    print(f"\n== {suite} on {args.device} ({device_name(args.device, torch)}) ==")
    print(header)
    for case in cases:
        ours = measure(case.ours, args.device, args.warmup, args.repeats, "ours", torch)
        ref = None
        if case.reference is not None and torch is not None:
            ref = measure(case.reference, args.device, args.warmup, args.repeats, "reference", torch)
        ratio = ours / ref if ref else None
        row = dict(name=case.name, ours_s=ours, reference_s=ref, ratio=ratio,
                   gbps=case.bytes / ours / 1e9 if case.bytes else None,
                   tflops=case.flops / ours / 1e12 if case.flops else None,
                   reference_gbps=case.bytes / ref / 1e9 if case.bytes and ref else None,
                   reference_tflops=case.flops / ref / 1e12 if case.flops and ref else None, **case.params)
        rows.append(row)
        fmt = lambda v, spec: format(v, spec) if v is not None else "-"  # noqa: E731
        print(f"{case.name:44s} {ours * 1e3:10.3f} {fmt(ref and ref * 1e3, '10.3f'):>10s} {fmt(ratio, '7.2f'):>7s} "
              f"{fmt(row['gbps'], '8.1f'):>8s} {fmt(row['tflops'], '8.3f'):>8s}")
    gm = geomean([r["ratio"] for r in rows])
    print(f"geomean ratio (ours / reference, < 1 is faster): {gm:.3f}" if gm else "no reference timings")
    if getattr(args, "breakdown", False) and not args.device.startswith("cuda"):
        from bench.breakdown import breakdown_json, measure_breakdown, print_breakdown
        for case, row in zip(cases, rows):
            b = measure_breakdown(case.ours, repeats=args.repeats, warmup=args.warmup)
            print_breakdown(case.name, b)
            row["breakdown"] = breakdown_json(b)
    result = dict(suite=suite, device=args.device, device_name=device_name(args.device, torch), commit=commit(),
                  date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                  gradcore_version=gradcore.__version__, torch_version=getattr(torch, "__version__", None),
                  threads=args.threads, warmup=args.warmup, repeats=args.repeats, settings=settings or {},
                  geomean_ratio=gm, cases=rows)
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                   f"{datetime.date.today().isoformat()}-{args.device.split(':')[0]}-{suite}.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(result, f, indent=2)
    print(f"wrote {out}")
    return result
