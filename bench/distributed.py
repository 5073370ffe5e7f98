"""Data-parallel costs on the CPU backend: python -m bench.distributed [--ranks 1 2] [--repeats 10]

Launches `mpirun -np N` for each N in --ranks (--btl sm: shared memory, or tcp: loopback; --oversubscribe) and prints, per world size:
- all_reduce of float32 buffers (1, 4, 16 MiB): median time and the bus bandwidth, size * 2(N-1)/N / time, the
  figure NCCL's tests report (what each rank must move for a sum). Our sum is an Allgather plus a rank-order add,
  which moves size * (N-1) per rank: reproducibility costs bandwidth that a fixed-order tree would get back.
- one DistributedDataParallel training step of an MLP (4 x Linear 512, per-rank batch 64: weak scaling), median
  time; scaling efficiency = step time at 1 rank / step time at N ranks (1.0 is perfect).
- the same for the autoencoder example's step (encoder and decoder each wrapped, Adam, per-rank batch 25), and its
  throughput in digits/s over all ranks. The ranks share the machine's cores: with OMP threads per rank set so
  that ranks x threads = cores, weak scaling on one machine shows the communication and Python overhead of
  data parallelism, not a speed-up (that needs ranks on separate cores or machines).
With --json PATH, also writes JSON with the machine, commit and settings.
No reference is timed: PyTorch's gloo backend would need a second launcher.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

SIZES_MIB = (1, 4, 16)


def rank_main(repeats):
    """One rank's measurements; rank 0 prints one JSON line."""
    import numpy as np

    import gradcore as gc
    import gradcore.distributed as dist
    import gradcore.functional as F

    dist.init_process_group("mpi")
    world = dist.get_world_size()
    result = {"world_size": world, "all_reduce": [], "threads": gc.get_num_threads()}

    def timed(fn):
        fn()  # warm-up
        times = []
        for _ in range(repeats):
            dist.barrier()
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    for mib in SIZES_MIB:
        t = gc.zeros(mib * 1024 * 1024 // 4)
        seconds = timed(lambda: dist.all_reduce(t, op="avg"))
        bus = mib * 1024 * 1024 * 2 * (world - 1) / world / seconds / 1e9 if world > 1 else None
        result["all_reduce"].append({"mib": mib, "seconds": seconds, "bus_gbps": bus})

    gc.manual_seed(0)
    net = gc.nn.Sequential(gc.nn.Linear(512, 512), gc.nn.ReLU(), gc.nn.Linear(512, 512), gc.nn.ReLU(),
                           gc.nn.Linear(512, 512), gc.nn.ReLU(), gc.nn.Linear(512, 10))
    model = gc.nn.parallel.DistributedDataParallel(net)
    opt = gc.optim.SGD(model.parameters(), lr=0.01)
    rng = np.random.default_rng(dist.get_rank())
    x = gc.tensor(rng.standard_normal((64, 512)).astype(np.float32))
    y = gc.tensor(rng.standard_normal((64, 10)).astype(np.float32))

    def step():
        # batch (fixed), forward, loss, backward (gradients averaged over ranks at its end), update
        opt.zero_grad()
        F.mse_loss(model(x), y).backward()
        opt.step()

    result["step_seconds"] = timed(step)

    from gradcore.examples.autoencoder import build

    encoder, decoder = build(seed=0)
    encoder = gc.nn.parallel.DistributedDataParallel(encoder)
    decoder = gc.nn.parallel.DistributedDataParallel(decoder)
    adam = gc.optim.Adam(list(encoder.parameters()) + list(decoder.parameters()), lr=1e-3)
    digits = gc.tensor(rng.random((25, 1, 28, 28)).astype(np.float32))

    def autoencoder_step():
        # batch (fixed, 25 per rank), forward through both networks, loss, backward (two DDP wrappers), update
        adam.zero_grad()
        F.mse_loss(decoder(encoder(digits)), digits).backward()
        adam.step()

    result["autoencoder_step_seconds"] = timed(autoencoder_step)
    # The same step without the wrappers (no communication), timed with the same ranks running: what sharing the
    # cores costs, apart from data parallelism's own cost.
    plain_encoder, plain_decoder = encoder.module, decoder.module

    def plain_step():
        adam.zero_grad()
        F.mse_loss(plain_decoder(plain_encoder(digits)), digits).backward()
        adam.step()

    result["autoencoder_plain_step_seconds"] = timed(plain_step)
    result["autoencoder_digits_per_second"] = 25 * world / result["autoencoder_step_seconds"]
    if dist.get_rank() == 0:
        print("RESULT " + json.dumps(result), flush=True)
    dist.destroy_process_group()


def launch(ranks, repeats, btl):
    launcher = shutil.which("mpirun")
    if launcher is None:
        raise SystemExit("mpirun not found: pip install \".[distributed]\"")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    transport = ["--mca", "btl", "self,sm"] if btl == "sm" else ["--mca", "btl", "self,tcp", "--mca",
                                                                 "btl_tcp_if_include", "lo"]
    cmd = [launcher, "-np", str(ranks), "--oversubscribe"] + transport
    cmd += ["--allow-run-as-root"] if os.geteuid() == 0 else []
    cmd += [sys.executable, "-m", "bench.distributed", "--rank-main", "--repeats", str(repeats)]
    done = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=600)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise SystemExit(f"mpirun -np {ranks} failed:\n{done.stdout}\n{done.stderr}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--btl", choices=["sm", "tcp"], default="sm",
                        help="shared memory (one machine) or TCP over loopback (what crossing machines costs more of)")
    parser.add_argument("--json", default=None)
    parser.add_argument("--rank-main", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rank_main:
        return rank_main(args.repeats)

    from bench.harness import commit, device_name

    if shutil.which("mpirun") is None:  # `bench.run --suite all` goes on without it
        print("skipping distributed: mpirun not found (pip install \".[distributed]\")", file=sys.stderr)
        return
    results = [launch(n, args.repeats, args.btl) for n in args.ranks]
    base = next((r["step_seconds"] for r in results if r["world_size"] == 1), None)
    print(f"{'ranks':>5} {'all_reduce MiB':>14} {'ms':>9} {'bus GB/s':>9}")
    for r in results:
        for a in r["all_reduce"]:
            bus = f"{a['bus_gbps']:9.2f}" if a["bus_gbps"] is not None else f"{'-':>9}"
            print(f"{r['world_size']:>5} {a['mib']:>14} {a['seconds'] * 1e3:9.2f} {bus}")
    print(f"{'ranks':>5} {'DDP step ms':>12} {'efficiency':>11}   (per-rank batch 64, MLP 4 x 512)")
    for r in results:
        eff = f"{base / r['step_seconds']:11.2f}" if base else f"{'-':>11}"
        print(f"{r['world_size']:>5} {r['step_seconds'] * 1e3:12.2f} {eff}")
    base = next((r["autoencoder_step_seconds"] for r in results if r["world_size"] == 1), None)
    print(f"{'ranks':>5} {'AE step ms':>12} {'efficiency':>11} {'digits/s':>9} {'no-DDP step ms':>15}   "
          "(autoencoder, per-rank batch 25)")
    for r in results:
        eff = f"{base / r['autoencoder_step_seconds']:11.2f}" if base else f"{'-':>11}"
        print(f"{r['world_size']:>5} {r['autoencoder_step_seconds'] * 1e3:12.2f} {eff} "
              f"{r['autoencoder_digits_per_second']:9.0f} {r['autoencoder_plain_step_seconds'] * 1e3:15.2f}")
    if not args.json:
        return
    out = args.json
    with open(out, "w") as f:
        json.dump({"suite": "distributed", "device": device_name("cpu", None), "cpus": os.cpu_count(),
                   "commit": commit(), "settings": {"repeats": args.repeats, "sizes_mib": SIZES_MIB, "btl": args.btl},
                   "results": results}, f, indent=1)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
