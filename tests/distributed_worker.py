"""One rank of the multi-process tests in test_distributed.py, run as `mpirun -np N python distributed_worker.py
<scenario>`. Each scenario checks its own results (an AssertionError aborts the job through the excepthook that
init_process_group installs) and prints "OK <rank>", plus "DIGEST <hex>" where two runs are compared bitwise."""
import hashlib
import sys

import numpy as np

import gradcore as gc
import gradcore.distributed as dist
import gradcore.functional as F
from gradcore.nn.parallel import DistributedDataParallel


def collectives(rank, world):
    # all_reduce: rank r holds r + 1 everywhere, so the sum is world*(world+1)/2, the max is world.
    t = gc.tensor(np.full((3, 4), rank + 1.0, np.float32))
    dist.all_reduce(t, op="sum")
    assert np.array_equal(t.numpy(), np.full((3, 4), world * (world + 1) / 2, np.float32)), t
    t = gc.tensor(np.full(5, rank + 1.0))
    dist.all_reduce(t, op="avg")
    assert np.array_equal(t.numpy(), np.full(5, (world + 1) / 2)), t
    t = gc.tensor(np.arange(4, dtype=np.int64) * (rank + 1))
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    assert t.dtype == "int64" and t.tolist() == [0, world, 2 * world, 3 * world], t

    # The sum adds ranks in order 0..N-1: compare with that order computed locally from every rank's data.
    rows = [np.random.default_rng([7, r]).standard_normal(1000).astype(np.float32) * 10 ** r for r in range(world)]
    t = gc.tensor(rows[rank])
    dist.all_reduce(t)
    expected = rows[0].copy()
    for r in range(1, world):
        expected += rows[r]
    assert np.array_equal(t.numpy(), expected), "all_reduce sum is not the rank-order sum"

    # broadcast: everyone takes rank 1's values (when there is a rank 1).
    src = min(1, world - 1)
    b = gc.tensor(np.full((2, 2), float(rank)))
    dist.broadcast(b, src=src)
    assert np.array_equal(b.numpy(), np.full((2, 2), float(src))), b

    # all_gather: entry r holds rank r's tensor.
    out = [gc.zeros(3) for _ in range(world)]
    dist.all_gather(out, gc.tensor([rank, rank, rank], dtype="float32"))
    assert [o.tolist() for o in out] == [[float(r)] * 3 for r in range(world)], out
    dist.barrier()


def _model(seed):
    gc.manual_seed(seed + 100 * dist.get_rank())  # different on purpose: DDP must broadcast rank 0's weights
    return gc.nn.Sequential(gc.nn.Linear(6, 16), gc.nn.Tanh(), gc.nn.Linear(16, 1))


def _data():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((72, 6)).astype(np.float32)  # 72 = 9 global batches of 8 (2 ranks x 4)
    y = (np.sin(x.sum(axis=1, keepdims=True)) + 0.1 * rng.standard_normal((72, 1))).astype(np.float32)
    return x, y


def _train(model, loader, steps, lr=0.05):
    opt = gc.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    done = 0
    while done < steps:
        for x, y in loader:
            opt.zero_grad()
            loss = F.mse_loss(model(x), y)
            loss.backward()
            opt.step()
            done += 1
            if done == steps:
                break
    return [p.numpy().copy() for p in model.parameters()]


def equivalence(rank, world, backend="mpi"):
    """N ranks with per-rank batch B, 50 steps == 1 process with batch N*B (same seed, same initial weights).
    backend "nccl-stand-in": DDP's device-bucket reducer over the MPI stand-in (the digest must be the same)."""
    if backend == "nccl-stand-in":
        _stand_in_for_nccl()
    x, y = _data()
    per_rank_batch = 4
    ddp = DistributedDataParallel(_model(0))
    initial = [p.numpy().copy() for p in ddp.module.parameters()]
    sharded = gc.data.DataLoader((x, y), batch_size=per_rank_batch, seed=5, num_replicas=world, rank=rank)
    final = _train(ddp, sharded, steps=50)

    single = _model(0)
    for p, v in zip(single.parameters(), initial):
        p.copy_(gc.tensor(v))
    whole = gc.data.DataLoader((x, y), batch_size=per_rank_batch * world, seed=5)
    reference = _train(single, whole, steps=50)
    for a, b in zip(final, reference):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert any(not np.array_equal(a, v) for a, v in zip(final, initial)), "training did not move the weights"

    # Every rank holds the same bits, and the digest lets the test compare two launches.
    digest = hashlib.sha256(b"".join(a.tobytes() for a in final)).hexdigest()
    mine = gc.tensor(np.frombuffer(bytes.fromhex(digest), dtype=np.uint8).astype(np.int64))
    everyone = [gc.zeros(32, dtype="int64") for _ in range(world)]
    dist.all_gather(everyone, mine)
    assert all(e.tolist() == mine.tolist() for e in everyone), "ranks ended with different weights"
    print(f"DIGEST {digest}", flush=True)


def no_sync(rank, world):
    """Two micro-batches accumulated under no_sync, the last one synced: the average of every rank's sum."""
    x, y = _data()
    ddp = DistributedDataParallel(_model(1))
    shards = [(x[8 * rank + 4 * k: 8 * rank + 4 * k + 4], y[8 * rank + 4 * k: 8 * rank + 4 * k + 4]) for k in range(2)]
    with ddp.no_sync():
        F.mse_loss(ddp(gc.tensor(shards[0][0])), gc.tensor(shards[0][1])).backward()
    local_first = [p.grad.numpy().copy() for p in ddp.parameters()]
    F.mse_loss(ddp(gc.tensor(shards[1][0])), gc.tensor(shards[1][1])).backward()
    synced = [p.grad.numpy().copy() for p in ddp.parameters()]

    # Reference: each rank's two micro-batch gradients summed, averaged over ranks, computed in one process.
    expected = None
    for r in range(world):
        for k in range(2):
            ddp.module.zero_grad()
            lo = 8 * r + 4 * k
            F.mse_loss(ddp.module(gc.tensor(x[lo:lo + 4])), gc.tensor(y[lo:lo + 4])).backward()
            grads = [p.grad.numpy().copy() for p in ddp.module.parameters()]
            expected = grads if expected is None else [e + g for e, g in zip(expected, grads)]
    expected = [e / world for e in expected]
    assert world == 1 or any(not np.allclose(a, e) for a, e in zip(local_first, expected))
    for a, e in zip(synced, expected):
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-6)


def fit_from_rank_0(rank, world):
    """gc.train.fit on a DDP model: the epoch summary is printed once per job, by rank 0."""
    x, y = _data()
    model = DistributedDataParallel(_model(2))
    loader = gc.data.DataLoader((x, y), batch_size=4, seed=1, num_replicas=world, rank=rank)
    history = gc.train.fit(loader, model=model, loss_fn=F.mse_loss, optimizer=gc.optim.SGD(model.parameters(), lr=0.01),
                           epochs=1, health=False, progress=True)
    assert len(history.step_loss) == len(loader) == 72 // (4 * world)

    # Health checks run (and warn) on rank 0 only: a network whose ReLUs are all dead warns once per job.
    dead = DistributedDataParallel(gc.nn.Sequential(gc.nn.Linear(6, 16), gc.nn.ReLU(), gc.nn.Linear(16, 1)))
    with gc.no_grad():
        dead.module[0].bias.fill_(-100.0)
    history = gc.train.fit(loader, model=dead, loss_fn=F.mse_loss, optimizer=gc.optim.SGD(dead.parameters(), lr=0.01),
                           epochs=1, health=True, health_every=2, progress=False)
    assert bool(history.health) == (rank == 0), history.health


class _TwiceUsed(gc.nn.Module):
    """Uses `inner` twice per forward, so each of its parameters gets its gradient from two nodes."""

    def __init__(self):
        super().__init__()
        self.inner = gc.nn.Linear(5, 5)
        self.head = gc.nn.Linear(5, 2)

    def forward(self, x):
        return self.head(self.inner(self.inner(x).tanh()))


def _fixed_order_average(local_grads, world):
    """The reference: every rank's local gradients, summed in rank order 0..N-1, divided by N (float32)."""
    device = dist._require_group("test").device or "cpu"  # the "nccl" backend gathers tensors on its device
    out = []
    for g in local_grads:
        rows = [gc.zeros(*g.shape, device=device) for _ in range(world)]
        dist.all_gather(rows, gc.tensor(g, device=device))
        total = rows[0].numpy().copy()
        for r in range(1, world):
            total += rows[r].numpy()
        out.append(total / np.float32(world))
    return out


def overlap(rank, world):
    """Buckets start while backward runs, and the averaged gradients are bitwise the fixed-order average."""
    rng = np.random.default_rng([3, rank])
    x, y = gc.tensor(rng.standard_normal((6, 5)).astype(np.float32)), gc.tensor(rng.standard_normal((6, 2)).astype(np.float32))
    for bucket_mb in (1e-6, 25):  # one bucket per parameter; one bucket for all
        gc.manual_seed(9)
        ddp = DistributedDataParallel(_TwiceUsed(), bucket_mb=bucket_mb)
        with ddp.no_sync():  # this rank's own gradients, for the reference
            F.mse_loss(ddp(x), y).backward()
        expected = _fixed_order_average([p.grad.numpy().copy() for p in ddp.parameters()], world)
        ddp.zero_grad()

        started_when_first_layer_done = []
        first = ddp.module.inner.weight  # registration order: inner first, so its bucket is the last one
        handle = first.register_post_accumulate_grad_hook(lambda p: started_when_first_layer_done.append(ddp._next_bucket))
        F.mse_loss(ddp(x), y).backward()
        handle.remove()
        for p, e in zip(ddp.parameters(), expected):
            assert np.array_equal(p.grad.numpy(), e), f"bucket_mb={bucket_mb}: not the fixed-order average"
        if bucket_mb < 1:
            # 4 buckets (head.bias, head.weight, inner.bias, inner.weight): the head's two were in flight before
            # the first layer's gradient was complete.
            assert len(ddp._buckets) == 4 and started_when_first_layer_done == [2], started_when_first_layer_done
        else:
            assert len(ddp._buckets) == 1 and started_when_first_layer_done == [0]


class _WithSpare(gc.nn.Module):
    def __init__(self):
        super().__init__()
        self.used = gc.nn.Linear(3, 1)
        self.sometimes = gc.nn.Linear(3, 1)  # used on rank 0 only
        self.never = gc.nn.Linear(3, 1)

    def forward(self, x):
        out = self.used(x)
        return out + self.sometimes(x) if dist.get_rank() == 0 else out


def unused(rank, world, device="cpu"):
    x = gc.tensor(np.full((2, 3), rank + 1.0, np.float32), device=device)
    gc.manual_seed(4)
    strict = DistributedDataParallel(_WithSpare().to(device))
    try:
        strict(x).sum().backward()
    except RuntimeError as e:
        message = str(e)
    else:
        raise AssertionError("find_unused_parameters=False: a parameter without gradient must raise")
    assert "find_unused_parameters=True" in message and "never.weight (on 0 of" in message, message
    assert (world == 1) == ("sometimes.weight" not in message), message
    dist.barrier()  # every rank raised after its collectives completed: still in step

    gc.manual_seed(4)
    lenient = DistributedDataParallel(_WithSpare().to(device), find_unused_parameters=True)
    with lenient.no_sync():
        lenient(x).sum().backward()
    local = {n: (p.grad.numpy().copy() if p.grad is not None else None) for n, p in lenient.module.named_parameters()}
    lenient.zero_grad()
    lenient(x).sum().backward()
    grads = dict(lenient.module.named_parameters())
    assert grads["never.weight"].grad is None and grads["never.bias"].grad is None  # unused everywhere: untouched
    # used on rank 0 only: rank 0's gradient plus zeros from the others, divided by the world size
    zeros = np.zeros_like(grads["used.weight"].numpy())
    sometimes = _fixed_order_average([local["sometimes.weight"] if rank == 0 else zeros], world)[0]
    assert np.array_equal(grads["sometimes.weight"].grad.numpy(), sometimes)
    assert np.array_equal(grads["used.weight"].grad.numpy(), _fixed_order_average([local["used.weight"]], world)[0])


def sync_batchnorm(rank, world):
    """R ranks x batch 4 through SyncBatchNorm == one process with batch 4R through BatchNorm2d: output, input,
    weight and bias gradients, running statistics, and the evaluation output after two steps."""
    for dtype, tol in (("float32", dict(rtol=2e-5, atol=2e-6)), ("float64", dict(rtol=1e-12, atol=1e-13))):
        rng = np.random.default_rng(21)
        shape = (4 * world, 3, 5, 6)
        xs = [(2.0 + 3.0 * rng.standard_normal(shape)).astype(dtype) for _ in range(2)]
        gs = [rng.standard_normal(shape).astype(dtype) for _ in range(2)]
        mine = slice(4 * rank, 4 * rank + 4)

        gc.manual_seed(1)
        sync = gc.nn.SyncBatchNorm.convert_sync_batchnorm(gc.nn.Sequential(gc.nn.BatchNorm2d(3, dtype=dtype)))
        ref = gc.nn.BatchNorm2d(3, dtype=dtype)
        with gc.no_grad():
            for m in (sync[0], ref):
                m.weight.copy_(gc.tensor(np.array([0.5, 1.5, -2.0]), dtype=dtype))
                m.bias.copy_(gc.tensor(np.array([0.1, -0.3, 0.7]), dtype=dtype))
        assert isinstance(sync[0], gc.nn.SyncBatchNorm)
        for x_all, g_all in zip(xs, gs):
            sync.zero_grad()
            ref.zero_grad()
            x = gc.tensor(x_all[mine], requires_grad=True)
            y = sync(x)
            (y * gc.tensor(g_all[mine])).sum().backward()
            x_ref = gc.tensor(x_all, requires_grad=True)
            y_ref = ref(x_ref)
            (y_ref * gc.tensor(g_all)).sum().backward()

            np.testing.assert_allclose(y.numpy(), y_ref.numpy()[mine], **tol)
            np.testing.assert_allclose(x.grad.numpy(), x_ref.grad.numpy()[mine], **tol)
            for p, p_ref in ((sync[0].weight, ref.weight), (sync[0].bias, ref.bias)):
                total = p.grad.clone()
                dist.all_reduce(total)  # each rank's own sum; the ranks' sums together are the reference's
                np.testing.assert_allclose(total.numpy(), p_ref.grad.numpy(), **tol)
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                np.testing.assert_allclose(getattr(sync[0], name).numpy(), getattr(ref, name).numpy(), **tol)
        sync.eval()
        ref.eval()
        np.testing.assert_allclose(sync(gc.tensor(xs[0][mine])).numpy(), ref(gc.tensor(xs[0])).numpy()[mine], **tol)

    # Under DistributedDataParallel, 3 SGD steps: the same weights as one process with the whole batch.
    rng = np.random.default_rng(8)
    x_all = rng.standard_normal((4 * world, 2, 6, 6)).astype(np.float32)
    y_all = rng.standard_normal((4 * world, 1)).astype(np.float32)

    def net():
        gc.manual_seed(3)
        return gc.nn.Sequential(gc.nn.Conv2d(2, 3, 3), gc.nn.BatchNorm2d(3), gc.nn.ReLU(), gc.nn.Flatten(),
                                gc.nn.Linear(48, 1))
    ddp = DistributedDataParallel(gc.nn.SyncBatchNorm.convert_sync_batchnorm(net()), bucket_mb=1e-4)
    single = net()
    for model, x, y in ((ddp, x_all[4 * rank:4 * rank + 4], y_all[4 * rank:4 * rank + 4]), (single, x_all, y_all)):
        opt = gc.optim.SGD(model.parameters(), lr=0.1)
        for _ in range(3):
            opt.zero_grad()
            F.mse_loss(model(gc.tensor(x)), gc.tensor(y)).backward()
            opt.step()
    for a, b in zip(ddp.module.parameters(), single.parameters()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ddp.module[1].running_var.numpy(), single[1].running_var.numpy(), rtol=1e-5)

    # Uneven batches (the last partial batch): rank r holds r + 2 samples; counts are all-reduced too.
    rng = np.random.default_rng(5)
    sizes = [r + 2 for r in range(world)]
    x_all = rng.standard_normal((sum(sizes), 2, 3)).astype(np.float64)  # (N, C, L): any (N, C, *) input
    start = sum(sizes[:rank])
    y = gc.nn.SyncBatchNorm(2, dtype="float64")(gc.tensor(x_all[start:start + sizes[rank]]))
    y_ref = gc.nn.BatchNorm2d(2, dtype="float64")(gc.tensor(x_all.reshape(-1, 2, 3, 1))).numpy().reshape(x_all.shape)
    np.testing.assert_allclose(y.numpy(), y_ref[start:start + sizes[rank]], rtol=1e-12, atol=1e-13)


def sync_batchnorm_gradcheck(rank, world):
    """float64 central differences of the whole R-rank computation against SyncBatchNorm's backward.

    Rank r holds x_r (N_r, C, L) with uneven N_r = r + 2, its copy weight_r and bias_r of the parameters (equal on
    every rank, as DistributedDataParallel keeps them: the backward assumes it, as PyTorch's does), and a fixed
    cotangent g_r; the scalar is L = sum over ranks of sum(y_r * g_r). Analytic: each rank's backward of its own
    sum(y_r * g_r) (SyncBatchNorm's backward all-reduces, so x_r.grad is dL/dx_r; weight_r and bias_r reach y_r
    only). Numeric: for every element of every rank's x, weight and bias in turn, all ranks run the forward with
    that one element of its owner moved by +-eps and all-reduce their sums (the whole job is the function)."""
    sizes, channels, length, eps = [r + 2 for r in range(world)], 2, 3, 1e-6
    rng = np.random.default_rng([13, rank])
    x0 = 1.5 + 2.0 * rng.standard_normal((sizes[rank], channels, length))
    g = gc.tensor(rng.standard_normal(x0.shape))
    w0, b0 = np.array([0.8, -1.3]), np.array([0.4, -0.2])
    for affine in (True, False):
        m = gc.nn.SyncBatchNorm(channels, affine=affine, dtype="float64")
        mine = {"x": x0} if not affine else {"x": x0, "weight": w0, "bias": b0}

        def job_loss(values):
            with gc.no_grad():
                if affine:
                    m.weight.copy_(gc.tensor(values["weight"]))
                    m.bias.copy_(gc.tensor(values["bias"]))
                total = (m(gc.tensor(values["x"])) * g).sum().reshape(1)
                dist.all_reduce(total)
            return total.item()

        x = gc.tensor(x0, requires_grad=True)
        job_loss(mine)  # sets weight and bias to w0, b0
        m.zero_grad()
        (m(x) * g).sum().backward()
        analytic = {"x": x.grad.numpy()}
        if affine:
            analytic.update(weight=m.weight.grad.numpy(), bias=m.bias.grad.numpy())

        shapes = {"x": lambda r: (sizes[r], channels, length), "weight": lambda r: (channels,),
                  "bias": lambda r: (channels,)}
        checked = 0
        for owner in range(world):
            for name in mine:
                numeric = np.zeros(shapes[name](owner))
                for i in range(numeric.size):
                    for sign in (1.0, -1.0):
                        values = dict(mine)
                        if owner == rank:
                            values[name] = mine[name].copy()
                            values[name].flat[i] += sign * eps
                        numeric.flat[i] += sign * job_loss(values) / (2 * eps)
                if owner == rank:
                    np.testing.assert_allclose(analytic[name], numeric, rtol=1e-6, atol=1e-8,
                                               err_msg=f"affine={affine}: d/d{name} on rank {rank}")
                    checked += numeric.size
        assert checked == x0.size + (2 * channels if affine else 0)


def sync_batchnorm_uneven_and_eval(rank, world):
    """Uneven batches (rank r holds r + 2 samples): the output and the running statistics are those of one
    BatchNorm2d over the concatenated batch (the unbiased variance uses the global count). Eval mode normalises
    with the running statistics, with no collective: rank 0 alone evaluates while the others wait."""
    sizes = [r + 2 for r in range(world)]
    rng = np.random.default_rng(17)
    xs = [rng.standard_normal((sum(sizes), 3, 2, 2)) * 2.0 + 1.0 for _ in range(3)]
    start = sum(sizes[:rank])
    mine = slice(start, start + sizes[rank])
    sync = gc.nn.SyncBatchNorm(3, momentum=0.3, dtype="float64")
    ref = gc.nn.BatchNorm2d(3, momentum=0.3, dtype="float64")
    for x_all in xs:
        y = sync(gc.tensor(x_all[mine]))
        y_ref = ref(gc.tensor(x_all))
        np.testing.assert_allclose(y.numpy(), y_ref.numpy()[mine], rtol=1e-12, atol=1e-13)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        np.testing.assert_allclose(getattr(sync, name).numpy(), getattr(ref, name).numpy(), rtol=1e-12, atol=1e-14)
    sync.eval()
    ref.eval()
    if rank == 0:
        probe = rng.standard_normal((1, 3, 2, 2))  # a batch of one is fine: no batch statistics in eval mode
        x = gc.tensor(probe, requires_grad=True)
        y = sync(x)
        expected = (probe - ref.running_mean.numpy().reshape(1, 3, 1, 1)) / np.sqrt(
            ref.running_var.numpy().reshape(1, 3, 1, 1) + ref.eps)
        np.testing.assert_allclose(y.numpy(), expected, rtol=1e-12, atol=1e-13)  # weight 1, bias 0
        y.sum().backward()  # eval's gradient: the per-channel scale 1/sqrt(running_var + eps), no all_reduce
        np.testing.assert_allclose(x.grad.numpy(), np.broadcast_to(
            1 / np.sqrt(ref.running_var.numpy().reshape(1, 3, 1, 1) + ref.eps), probe.shape), rtol=1e-12)
    dist.barrier()


def checkpoint(rank, world, directory):
    """A DDP model saved under N ranks: one file, written by rank 0, without "module." prefixes; it loads into a
    plain model and into a wrapped one (with the optimizer state); the test then loads it in one process."""
    x, y = _data()
    ddp = DistributedDataParallel(_model(3))
    opt = gc.optim.Adam(ddp.parameters(), lr=1e-2)
    _train_with(ddp, opt, gc.data.DataLoader((x, y), batch_size=4, seed=2, num_replicas=world, rank=rank), steps=3)
    path = f"{directory}/ddp.safetensors"
    written = gc.save(path, ddp, optimizer=opt, step=3)
    assert written == (path if rank == 0 else None), written
    # The PyTorch habit: a wrapped model's own state_dict() (keys "module.<name>"), saved by rank 0 alone.
    if rank == 0:
        assert all(k.startswith("module.") for k in ddp.state_dict())
        gc.save(f"{directory}/prefixed.safetensors", dict(ddp.state_dict()))
    dist.barrier()  # the files exist before any rank reads them

    trained = [p.numpy().copy() for p in ddp.module.parameters()]
    plain = _model(4)
    loaded = gc.load(path, plain)
    assert sorted(loaded.state) == sorted(n for n, _ in plain.named_parameters()), list(loaded.state)
    assert all(np.array_equal(p.numpy(), t) for p, t in zip(plain.parameters(), trained))
    other = _model(5)
    gc.load(f"{directory}/prefixed.safetensors", other)
    assert all(np.array_equal(p.numpy(), t) for p, t in zip(other.parameters(), trained))

    # Resume under DDP: the same next step as the uninterrupted run.
    resumed = DistributedDataParallel(_model(6))
    resumed_opt = gc.optim.Adam(resumed.parameters(), lr=1e-2)
    gc.load(path, resumed, optimizer=resumed_opt)
    batch = [gc.tensor(a[4 * rank:4 * rank + 4]) for a in (x, y)]
    for model, o in ((ddp, opt), (resumed, resumed_opt)):
        o.zero_grad()
        F.mse_loss(model(batch[0]), batch[1]).backward()
        o.step()
    assert all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(ddp.parameters(), resumed.parameters()))
    print(f"DIGEST {hashlib.sha256(b''.join(t.tobytes() for t in trained)).hexdigest()}", flush=True)


def load_checkpoint(rank, world, directory, digest):
    """The file a 2-rank job wrote, loaded under this world size into a wrapped model: the same weights."""
    ddp = DistributedDataParallel(_model(7))
    opt = gc.optim.Adam(ddp.parameters(), lr=1e-2)
    ckpt = gc.load(f"{directory}/ddp.safetensors", ddp, optimizer=opt)
    assert ckpt.metadata == {"step": 3} and len(opt.state_dict()["state"]) == 4
    weights = b"".join(p.numpy().tobytes() for p in ddp.module.parameters())
    assert hashlib.sha256(weights).hexdigest() == digest


def _train_with(model, opt, loader, steps):
    done = 0
    for xb, yb in loader:
        opt.zero_grad()
        F.mse_loss(model(xb), yb).backward()
        opt.step()
        done += 1
        if done == steps:
            return


def nccl_unique_id(rank, world):
    """The NCCL library loads (no GPU needed for this), and rank 0's unique id reaches every rank over MPI."""
    from gradcore import _nccl

    lib = _nccl.load()
    assert _nccl.version(lib) >= 21800, _nccl.version(lib)
    uid = _nccl.broadcast_unique_id(lib, dist._require_group("test").comm)
    mine = gc.tensor(np.frombuffer(bytes(uid), dtype=np.uint8).astype(np.int64))
    everyone = [gc.zeros(_nccl.UNIQUE_ID_BYTES, dtype="int64") for _ in range(world)]
    dist.all_gather(everyone, mine)
    assert all(e.tolist() == everyone[0].tolist() for e in everyone) and any(everyone[0].tolist())


def nccl_collectives(rank, world):
    """Backend "nccl" on one GPU per rank: the collectives on CUDA tensors give the MPI backend's results (the sum
    in rank order, bitwise), and a CPU tensor is refused."""
    device = dist._require_group("test").device
    rows = [np.random.default_rng([7, r]).standard_normal(1000).astype(np.float32) * 10 ** r for r in range(world)]
    t = gc.tensor(rows[rank], device=device)
    dist.all_reduce(t)
    expected = rows[0].copy()
    for r in range(1, world):
        expected += rows[r]
    assert np.array_equal(t.numpy(), expected), "nccl all_reduce sum is not the rank-order sum"
    t = gc.tensor(np.full(5, rank + 1.0), device=device)
    dist.all_reduce(t, op="avg")
    assert np.array_equal(t.numpy(), np.full(5, (world + 1) / 2))
    t = gc.tensor(np.arange(4, dtype=np.int64) * (rank + 1), device=device)
    dist.all_reduce(t, op="max")
    assert t.tolist() == [0, world, 2 * world, 3 * world]
    b = gc.tensor(np.full((2, 2), float(rank)), device=device)
    dist.broadcast(b, src=world - 1)
    assert np.array_equal(b.numpy(), np.full((2, 2), float(world - 1)))
    out = [gc.zeros(3, device=device) for _ in range(world)]
    dist.all_gather(out, gc.tensor([rank] * 3, dtype="float32", device=device))
    assert [o.tolist() for o in out] == [[float(r)] * 3 for r in range(world)]
    if device != "cpu":
        try:
            dist.all_reduce(gc.zeros(3))
        except ValueError as e:
            assert "nccl" in str(e) and device in str(e)
        else:
            raise AssertionError("a CPU tensor under nccl must raise")


def nccl_ddp(rank, world):
    """DistributedDataParallel under backend "nccl": its device-bucket reducer, whose averaged gradients are bitwise
    the fixed-order average (one bucket per parameter, and one for all), with no host copy of any tensor during
    backward; unused parameters and no_sync() behave as under "mpi"."""
    from gradcore.nn.parallel import _NcclBucketReducer

    device = dist._require_group("test").device
    rng = np.random.default_rng([3, rank])
    x = gc.tensor(rng.standard_normal((6, 5)).astype(np.float32), device=device)
    y = gc.tensor(rng.standard_normal((6, 2)).astype(np.float32), device=device)
    for bucket_mb in (1e-6, 25):
        gc.manual_seed(9)
        ddp = DistributedDataParallel(_TwiceUsed().to(device), bucket_mb=bucket_mb)
        assert isinstance(ddp._reducer, _NcclBucketReducer)
        with ddp.no_sync():
            F.mse_loss(ddp(x), y).backward()
        local = [p.grad.numpy().copy() for p in ddp.parameters()]
        expected = _fixed_order_average(local, world)
        ddp.zero_grad(set_to_none=False)
        grads_before = [p.grad for p in ddp.parameters()]
        started_when_first_layer_done = []
        handle = ddp.module.inner.weight.register_post_accumulate_grad_hook(
            lambda p: started_when_first_layer_done.append(ddp._next_bucket))
        loss = F.mse_loss(ddp(x), y)
        with _no_host_reads():
            loss.backward()
        handle.remove()
        # one bucket per parameter: the head's two were started before the first layer's gradient was complete
        assert started_when_first_layer_done == ([2] if bucket_mb < 1 else [0]), started_when_first_layer_done
        for p, e in zip(ddp.parameters(), expected):
            assert p.grad.device == device and np.array_equal(p.grad.numpy(), e), f"bucket_mb={bucket_mb}"
        assert all(p.grad is g for p, g in zip(ddp.parameters(), grads_before)), "`.grad` is written in place"
        # no_sync: the first micro-batch's gradient stays local; the synced one averages the sum of both
        ddp.zero_grad()
        with ddp.no_sync():
            for _ in range(2):
                F.mse_loss(ddp(x), y).backward()
        accumulated = [p.grad.numpy().copy() for p in ddp.parameters()]
        ddp.zero_grad()
        with ddp.no_sync():
            F.mse_loss(ddp(x), y).backward()
        F.mse_loss(ddp(x), y).backward()
        for p, g in zip(ddp.parameters(), _fixed_order_average(accumulated, world)):
            assert np.array_equal(p.grad.numpy(), g), f"bucket_mb={bucket_mb}: no_sync"
    unused(rank, world, device)


class _no_host_reads:
    """Inside: reading any tensor or array into host memory raises (the device reducer must not; the stand-in's
    own MPI transfer reads through _HOST_VIEW, as a real NCCL never would)."""
    names = ("numpy", "__array__", "item", "tolist")

    def __enter__(self):
        self.saved = {name: getattr(gc.Tensor, name) for name in self.names}
        self.saved_array = gc._core.Array.numpy
        for name in self.names:
            setattr(gc.Tensor, name, _refuse_host_read)
        gc._core.Array.numpy = _refuse_host_read

    def __exit__(self, *exc):
        for name, fn in self.saved.items():
            setattr(gc.Tensor, name, fn)
        gc._core.Array.numpy = self.saved_array


def _refuse_host_read(*args, **kwargs):
    raise AssertionError("a tensor was read into host memory during a backward under the nccl reducer")


_HOST_VIEW = gc._core.Array.numpy  # the stand-in's transfer (CPU arrays: a view of the tensor's memory)


class _MpiStandInForNccl:
    """The _nccl.Communicator interface done by MPI on host arrays: runs the "nccl" backend's Python path (the
    rank-order sum with gradcore ops, avg, broadcast, the all_gather rows, DDP's device-bucket reducer) on a
    machine without GPUs."""

    def __init__(self, comm):
        self.comm = comm

    def all_reduce(self, array, op):
        from mpi4py import MPI

        assert op == "max"  # the sum must go through all_gather + the rank-order additions
        self.comm.Allreduce(MPI.IN_PLACE, _HOST_VIEW(array), op=MPI.MAX)

    def broadcast(self, array, root):
        self.comm.Bcast(_HOST_VIEW(array), root=root)

    def all_gather(self, array, out):
        self.comm.Allgather(np.ascontiguousarray(_HOST_VIEW(array)), _HOST_VIEW(out))

    def destroy(self):
        pass


def _stand_in_for_nccl():
    """Makes the default group a "nccl" one whose communicator is the MPI stand-in, on device "cpu"."""
    group = dist._require_group("test")
    group.backend, group.nccl, group.device = "nccl", _MpiStandInForNccl(group.comm), "cpu"
    gc.cuda.synchronize = lambda device=None: None  # barrier() waits for the device: "cpu" has no queue to wait for


def nccl_python_path(rank, world):
    _stand_in_for_nccl()
    nccl_collectives(rank, world)
    nccl_ddp(rank, world)


def nccl_gpus(rank, world):
    """Backend "nccl" on one real GPU per rank: the collectives, then DistributedDataParallel's device buckets."""
    nccl_collectives(rank, world)
    nccl_ddp(rank, world)


def fail(rank, world):
    """Rank 1 raises while rank 0 waits in a collective: the job must stop with rank 1's error."""
    if rank == 1:
        raise ValueError("rank 1 failed on purpose")
    dist.barrier()


def exit_early(rank, world):
    """Rank 1 calls sys.exit(3) while rank 0 waits in a collective (SystemExit never reaches sys.excepthook)."""
    if rank == 1:
        sys.exit(3)
    dist.barrier()


def main():
    scenario = sys.argv[1]
    dist.init_process_group("nccl" if scenario == "nccl_gpus" else "mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    {"collectives": collectives, "equivalence": equivalence, "no_sync": no_sync, "fail": fail, "exit_early": exit_early,
     "fit": fit_from_rank_0, "overlap": overlap, "unused": unused,
     "sync_batchnorm": sync_batchnorm, "sync_batchnorm_gradcheck": sync_batchnorm_gradcheck,
     "sync_batchnorm_uneven_and_eval": sync_batchnorm_uneven_and_eval, "checkpoint": checkpoint,
     "load_checkpoint": load_checkpoint,
     "nccl_unique_id": nccl_unique_id, "nccl_gpus": nccl_gpus,
     "nccl_python_path": nccl_python_path}[scenario](rank, world, *sys.argv[2:])
    print(f"OK {rank}", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
