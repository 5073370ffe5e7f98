"""DistributedDataParallel: one model replica per rank, gradients averaged over ranks (PyTorch's name).

At wrap time rank 0's parameters and buffers are broadcast, so every replica starts equal.

Buckets: the parameters in reverse registration order (roughly the order backward produces their gradients),
grouped by dtype and device into groups of at most `bucket_mb` megabytes, fixed at wrap time.

Overlap. Every parameter has a post-accumulate-grad hook (autograd runs it once the parameter's gradient is
complete for this backward). When every parameter of a bucket has its gradient, and every bucket before it has
started, the bucket's collective starts without blocking while the rest of backward runs. Buckets start strictly
in bucket order on every rank, because both MPI and NCCL match collectives by the order they are started in. At
the end of backward (autograd.queue_callback) the remaining buckets start, and each bucket is reduced as
gradcore.distributed.all_reduce does: the ranks' buffers added in rank order 0..N-1, then divided by N. The
arithmetic, element by element, does not depend on when a bucket started, so the results are bitwise those of a
reduction after backward, and two runs are bitwise equal.

Backends. The process group's backend picks the bucket reducer, once, at wrap time (_bucket_reducer); the rest of
this file does not know which one runs:
- "mpi" (_MpiBucketReducer): a bucket is a flat host buffer (numpy), sent with MPI's non-blocking Iallgather on a
  communicator of DDP's own; the rank-order sum runs on the host. With one Python thread, MPI progresses a started
  collective inside MPI calls: each hook tests the buckets in flight, which moves them on.
- "nccl" (_NcclBucketReducer): a bucket is a flat buffer on the rank's GPU, concatenated from the gradients there,
  gathered with ncclAllGather and summed in rank order by gradcore's kernels, all enqueued on gradcore's stream:
  no gradient is copied to the host, and the host never waits for the GPU. Starting a bucket enqueues its
  collective behind the backward kernels that produced its gradients and ahead of those that follow; with one
  stream the GPU runs them in that order (the host enqueues the rest of backward meanwhile), so the collective
  does not yet run beside later backward kernels (that needs a second stream and events: a later change). It
  shares the group's NCCL communicator and stream with every other collective (SyncBatchNorm's backward
  all_reduce): on one stream the order of enqueueing is the order of running, so every rank must enqueue them in
  the same order, which the same model and the fixed bucket order give.

Unused parameters. Each rank records which parameters of a bucket produced a gradient in this backward; the
counts over ranks are exact integers (under "mpi" one flag per parameter at the end of the bucket's buffer, under
"nccl" one small host Allgather of the flags over MPI at the end, keeping the GPU buffers to gradients only). A
parameter that got no gradient on some rank contributes zeros (or the gradient it holds from earlier no_sync()
passes). With find_unused_parameters=False (PyTorch's default) that raises a RuntimeError on every rank at the
end of that backward, naming the parameters (PyTorch errors too, at the next forward, or hangs); the collectives
have all completed by then, so the ranks stay in step. With find_unused_parameters=True it is PyTorch's
behaviour: a parameter used on some ranks gets the average (zeros from the others); one used on no rank keeps its
`.grad` untouched (None if it had none).
"""
from __future__ import annotations

import contextlib

import numpy as np

from .. import _core
from .. import autograd
from .. import distributed as dist
from .._checks import real
from ..tensor import Tensor, from_numpy
from .module import Module


class _Bucket:
    """A fixed group of parameters (one dtype and device), and during one backward which of them got a gradient.
    The reducer keeps its own buffers for the bucket in `state` between start() and finish()."""

    def __init__(self, dtype, device):
        self.dtype, self.device = dtype, device
        self.params, self.names, self.offsets, self.sizes = [], [], [], []
        self.numel = 0
        self.nbytes = 0

    def add(self, name, p):
        self.params.append(p)
        self.names.append(name)
        self.offsets.append(self.numel)
        self.sizes.append(p.numel)
        self.numel += p.numel
        self.nbytes += p.numel * np.dtype(p.dtype).itemsize

    def reset(self):
        self.used = [False] * len(self.params)  # this rank's gradient arrived in this backward
        self.missing = len(self.params)
        self.state = None


# ---- bucket reducers: how a bucket's gradients are averaged over the ranks, one per backend ---------------------
# The interface: start(bucket) begins the bucket's collective without blocking, from the gradients its parameters
# hold now (p.grad; None counts as zeros) and bucket.used; progress() lets started collectives move on;
# finish(buckets) waits for every started bucket and writes the averaged gradients into `.grad`, returning, per
# bucket, how many ranks produced each parameter's gradient (host integers). A parameter no rank produced keeps
# its `.grad` untouched.

class _MpiBucketReducer:
    """Backend "mpi": host buffers, MPI Iallgather on a communicator of DDP's own, the rank-order sum on the host.

    DDP's own communicator: the bucket collectives in flight during backward never interleave with other
    collectives there (SyncBatchNorm's backward all_reduce), whose order MPI would otherwise have to match on
    every rank."""

    def __init__(self, group):
        self.comm = group.comm.Dup()
        self.world = self.comm.Get_size()
        self.started = []

    def start(self, bucket):
        flat = np.zeros(bucket.numel + len(bucket.params), dtype=bucket.dtype)  # zeros: an unused parameter's share
        for slot, p in enumerate(bucket.params):
            if p.grad is not None:
                offset = bucket.offsets[slot]
                flat[offset:offset + p.numel] = p.grad.numpy().reshape(-1)
            flat[bucket.numel + slot] = bucket.used[slot]
        gathered = np.empty((self.world, flat.size), dtype=flat.dtype)
        bucket.state = (flat, gathered, self.comm.Iallgather(flat, gathered))
        self.started.append(bucket.state[2])

    def progress(self):
        """Lets MPI move the started collectives on (one thread: it progresses them inside MPI calls)."""
        if self.started:
            self.started[0].Testall(self.started)

    def finish(self, buckets):
        requests = [b.state[2] for b in buckets]
        requests[0].Waitall(requests)
        self.started = []
        counts = []
        for bucket in buckets:
            rows = bucket.state[1]
            total = rows[0].copy()  # rank order 0..N-1, as distributed.all_reduce: the same bits on every rank
            for r in range(1, self.world):
                total += rows[r]
            used_on = total[bucket.numel:].astype(np.int64)  # how many ranks produced each gradient (exact)
            averaged = total[:bucket.numel]
            averaged /= averaged.dtype.type(self.world)
            for slot, p in enumerate(bucket.params):
                if used_on[slot]:
                    offset = bucket.offsets[slot]
                    self._write_grad(p, averaged[offset:offset + p.numel].reshape(p.shape))
            bucket.state = None
            counts.append(used_on)
        return counts

    @staticmethod
    def _write_grad(p, piece):
        if p.grad is not None and p.device == "cpu":
            p.grad.numpy()[...] = piece
        else:
            g = from_numpy(np.ascontiguousarray(piece))
            p.grad = g if p.device == "cpu" else g.to(p.device)


class _NcclBucketReducer:
    """Backend "nccl": device buffers on the rank's GPU, ncclAllGather and the rank-order sum by gradcore's
    kernels, all on gradcore's stream (module docstring); only the used-flags travel through host memory (MPI)."""

    def __init__(self, group):
        self.group = group
        self.world = group.size
        self.comm = group.comm.Dup()  # for the used-flags only

    def start(self, bucket):
        with autograd.no_grad():
            pieces = [(p.grad._data if p.grad is not None else _core.zeros(list(p.shape), bucket.dtype, bucket.device))
                      .reshape([p.numel]) for p in bucket.params]
            # One parameter: its gradient itself is the buffer (stream order: gathered before it is overwritten).
            flat = Tensor(pieces[0] if len(pieces) == 1 else _core.concat(pieces, 0))
            bucket.state = (flat, dist._gathered_on_device(self.group, flat))

    def progress(self):
        pass  # NCCL runs the enqueued collectives on the GPU: nothing to drive from the host

    def finish(self, buckets):
        with autograd.no_grad():
            flags = np.array([u for b in buckets for u in b.used], dtype=np.int64)
            everyone = np.empty((self.world, flags.size), dtype=np.int64)
            self.comm.Allgather(flags, everyone)
            used_on_all = everyone.sum(axis=0)  # integers: exact in any order
            counts, at = [], 0
            for bucket in buckets:
                used_on = used_on_all[at:at + len(bucket.params)]
                at += len(bucket.params)
                averaged = dist._rank_order_sum(bucket.state[1], average=True)
                pieces = _core.split(averaged._data, bucket.sizes, 0) if len(bucket.params) > 1 else [averaged._data]
                for slot, (p, piece) in enumerate(zip(bucket.params, pieces)):
                    if not used_on[slot]:
                        continue
                    piece = piece.reshape(list(p.shape))
                    if p.grad is not None:
                        p.grad._data.copy_(piece)
                    else:
                        p.grad = Tensor(piece)
                bucket.state = None
                counts.append(used_on)
            return counts


def _bucket_reducer(group):
    """The one place where the backend decides how DDP moves gradients."""
    return {"mpi": _MpiBucketReducer, "nccl": _NcclBucketReducer}[group.backend](group)


class DistributedDataParallel(Module):
    def __init__(self, module, bucket_mb=25, broadcast_buffers=True, find_unused_parameters=False):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"module: expected a gradcore.nn.Module, got {type(module).__name__}")
        self.bucket_mb = real(bucket_mb, "bucket_mb", 0, low_open=True)
        group = dist._require_group("DistributedDataParallel")  # a clear error when init_process_group() was not called
        self.module = module
        self.broadcast_buffers = bool(broadcast_buffers)
        self.find_unused_parameters = bool(find_unused_parameters)
        self._require_sync = True
        self._armed = False  # True from a syncing forward until the end of its backward
        self._sync_state()
        self._reducer = _bucket_reducer(group)
        self._buckets = self._make_buckets()
        self._hook_handles = []
        for index, bucket in enumerate(self._buckets):
            for slot, p in enumerate(bucket.params):
                self._hook_handles.append(p.register_post_accumulate_grad_hook(self._gradient_ready_hook(index, slot)))

    # ---- wrap time ------------------------------------------------------------------------------------------
    def _sync_state(self):
        """Every rank takes rank 0's parameters and buffers."""
        for p in self.module.parameters():
            dist.broadcast(p, src=0)
        for b in self.module.buffers():
            dist.broadcast(b, src=0)

    def _make_buckets(self):
        limit = self.bucket_mb * 1024 * 1024
        buckets, open_by_kind = [], {}
        named = [(n, p) for n, p in self.module.named_parameters() if p.requires_grad]
        for name, p in reversed(named):
            kind = (p.dtype, p.device)
            bucket = open_by_kind.get(kind)
            nbytes = p.numel * np.dtype(p.dtype).itemsize
            if bucket is None or (bucket.nbytes and bucket.nbytes + nbytes > limit):
                bucket = _Bucket(p.dtype, p.device)
                open_by_kind[kind] = bucket
                buckets.append(bucket)
            bucket.add(name, p)
        return buckets

    # ---- forward: arm the gradient average for the coming backward ---------------------------------------------
    def forward(self, *args, **kwargs):
        if self.training and self.broadcast_buffers:
            for b in self.module.buffers():  # rank 0's running statistics, as PyTorch's broadcast_buffers=True
                dist.broadcast(b, src=0)
        if self.training and self._require_sync and autograd.is_grad_enabled():
            for bucket in self._buckets:
                bucket.reset()
            self._next_bucket = 0  # the next bucket to start: buckets start in this fixed order only
            self._armed = True
            autograd.queue_callback(("ddp", id(self)), self._finish_reduction)
        return self.module(*args, **kwargs)

    # ---- during backward -----------------------------------------------------------------------------------
    def _gradient_ready_hook(self, index, slot):
        def hook(p):
            if not self._armed:  # under no_sync(), or a backward that no syncing forward prepared
                return
            bucket = self._buckets[index]
            bucket.used[slot] = True
            bucket.missing -= 1
            if bucket.missing == 0:
                self._start_ready_buckets()
            self._reducer.progress()
        return hook

    def _start_ready_buckets(self):
        while self._next_bucket < len(self._buckets) and self._buckets[self._next_bucket].missing == 0:
            self._reducer.start(self._buckets[self._next_bucket])
            self._next_bucket += 1

    # ---- end of backward -----------------------------------------------------------------------------------
    def _finish_reduction(self):
        if not self._armed:
            return
        self._armed = False
        if not self._buckets:
            return
        # Buckets with a parameter that got no gradient in this backward start now, still in bucket order. Such a
        # parameter contributes the gradient it holds from earlier no_sync() passes, else zeros (as PyTorch).
        for bucket in self._buckets[self._next_bucket:]:
            self._reducer.start(bucket)
        self._next_bucket = len(self._buckets)
        counts = self._reducer.finish(self._buckets)
        world = dist.get_world_size()
        partly_unused = [(bucket.names[slot], int(used))
                         for bucket, used_on in zip(self._buckets, counts) for slot, used in enumerate(used_on)
                         if used < world]
        if partly_unused and not self.find_unused_parameters:
            listed = ", ".join(f"{name} (on {used} of {world} ranks)" for name, used in partly_unused)
            raise RuntimeError(
                f"DistributedDataParallel: parameters received no gradient in this backward on some ranks: {listed}. "
                "They were not used to compute the loss there. Pass find_unused_parameters=True to average the "
                "gradients of the ranks that used them (zeros from the others), or set requires_grad=False on "
                "parameters that are never used.")

    @contextlib.contextmanager
    def no_sync(self):
        """Forward/backward passes inside accumulate gradients locally without averaging; the first backward
        after a forward outside averages the accumulated sum (PyTorch's gradient-accumulation pattern)."""
        previous = self._require_sync
        self._require_sync = False
        try:
            yield
        finally:
            self._require_sync = previous

    def extra_repr(self):
        return (f"bucket_mb={self.bucket_mb}, buckets={len(self._buckets)}, "
                f"find_unused_parameters={self.find_unused_parameters}")
