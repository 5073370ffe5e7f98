"""DistributedDataParallel: one model replica per rank, gradients averaged over ranks (PyTorch's name).

At wrap time rank 0's parameters and buffers are broadcast, so every replica starts equal.

Buckets: the parameters in reverse registration order (roughly the order backward produces their gradients),
grouped by dtype and device into flat buffers of at most `bucket_mb` megabytes, fixed at wrap time.

Overlap. Every parameter has a post-accumulate-grad hook (autograd runs it once the parameter's gradient is
complete for this backward). The hook copies the gradient into its bucket's flat buffer; when a bucket is full,
and every bucket before it has started, its collective starts without blocking (MPI Iallgather) while the rest
of backward runs. Buckets start strictly in bucket order on every rank, because MPI matches non-blocking
collectives by the order they are started in. At the end of backward (autograd.queue_callback) the remaining
buckets start, every one is waited for, and each is reduced as gradcore.distributed.all_reduce does: the ranks'
buffers added in rank order 0..N-1, then divided by N. The arithmetic, element by element, does not depend on
when a bucket started, so the results are bitwise those of a reduction after backward, and two runs are bitwise
equal. With one Python thread, MPI progresses a started collective inside MPI calls: each hook tests the buckets
in flight, which moves them on.

Unused parameters. Each bucket carries one flag per parameter, 1 where this rank produced a gradient, summed
with the gradients (exact). A parameter that got no gradient on some rank contributes zeros. With
find_unused_parameters=False (PyTorch's default) that raises a RuntimeError on every rank at the end of that
backward, naming the parameters (PyTorch errors too, at the next forward, or hangs); the collectives have all
completed by then, so the ranks stay in step. With find_unused_parameters=True it is PyTorch's behaviour: a
parameter used on some ranks gets the average (zeros from the others); one used on no rank keeps its `.grad`
untouched (None if it had none).
"""
from __future__ import annotations

import contextlib

import numpy as np

from .. import autograd
from .. import distributed as dist
from .._checks import real
from ..tensor import from_numpy
from .module import Module


class _Bucket:
    """A fixed group of parameters and, during one backward, its flat buffer: gradients, then one used-flag each."""

    def __init__(self, dtype):
        self.dtype = dtype
        self.params, self.names, self.offsets = [], [], []
        self.numel = 0
        self.nbytes = 0

    def add(self, name, p):
        self.params.append(p)
        self.names.append(name)
        self.offsets.append(self.numel)
        self.numel += p.numel
        self.nbytes += p.numel * np.dtype(p.dtype).itemsize

    def reset(self):
        self.flat = np.zeros(self.numel + len(self.params), dtype=self.dtype)  # zeros: an unused parameter's share
        self.missing = len(self.params)
        self.gathered = None
        self.request = None


class DistributedDataParallel(Module):
    def __init__(self, module, bucket_mb=25, broadcast_buffers=True, find_unused_parameters=False):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"module: expected a gradcore.nn.Module, got {type(module).__name__}")
        self.bucket_mb = real(bucket_mb, "bucket_mb", 0, low_open=True)
        dist.get_world_size()  # raises a clear error when init_process_group() was not called
        self.module = module
        self.broadcast_buffers = bool(broadcast_buffers)
        self.find_unused_parameters = bool(find_unused_parameters)
        self._require_sync = True
        self._armed = False  # True from a syncing forward until the end of its backward
        self._sync_state()
        # A communicator of its own: the bucket collectives in flight during backward never interleave with other
        # collectives there (SyncBatchNorm's backward all_reduce), whose order MPI would otherwise have to match
        # on every rank.
        self._comm = dist._require_group("DistributedDataParallel").comm.Dup()
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
                bucket = _Bucket(p.dtype)
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
            offset = bucket.offsets[slot]
            bucket.flat[offset:offset + p.numel] = p.grad.numpy().reshape(-1)
            bucket.flat[bucket.numel + slot] = 1
            bucket.missing -= 1
            if bucket.missing == 0:
                self._start_ready_buckets()
            self._progress()
        return hook

    def _start(self, bucket):
        bucket.gathered = np.empty((self._comm.Get_size(), bucket.flat.size), dtype=bucket.flat.dtype)
        bucket.request = self._comm.Iallgather(bucket.flat, bucket.gathered)

    def _start_ready_buckets(self):
        while self._next_bucket < len(self._buckets) and self._buckets[self._next_bucket].missing == 0:
            self._start(self._buckets[self._next_bucket])
            self._next_bucket += 1

    def _progress(self):
        """Lets MPI move the started collectives on (one thread: it progresses them inside MPI calls)."""
        in_flight = [b.request for b in self._buckets[:self._next_bucket] if b.request is not None]
        if in_flight:
            in_flight[0].Testall(in_flight)

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
            for slot, p in enumerate(bucket.params):
                if bucket.flat[bucket.numel + slot] == 0 and p.grad is not None:
                    offset = bucket.offsets[slot]
                    bucket.flat[offset:offset + p.numel] = p.grad.numpy().reshape(-1)
            self._start(bucket)
        self._next_bucket = len(self._buckets)
        requests = [b.request for b in self._buckets]
        requests[0].Waitall(requests)
        world = self._comm.Get_size()
        partly_unused = []
        for bucket in self._buckets:
            rows = bucket.gathered
            total = rows[0].copy()  # rank order 0..N-1, as distributed.all_reduce: the same bits on every rank
            for r in range(1, world):
                total += rows[r]
            used_on = total[bucket.numel:]  # how many ranks produced each parameter's gradient (exact)
            averaged = total[:bucket.numel]
            averaged /= averaged.dtype.type(world)
            for slot, p in enumerate(bucket.params):
                if used_on[slot] < world:
                    partly_unused.append((bucket.names[slot], int(used_on[slot])))
                    if used_on[slot] == 0:
                        continue  # used on no rank: .grad stays as it was (PyTorch)
                offset = bucket.offsets[slot]
                self._write_grad(p, averaged[offset:offset + p.numel].reshape(p.shape))
            bucket.flat = bucket.gathered = bucket.request = None
        if partly_unused and not self.find_unused_parameters:
            listed = ", ".join(f"{name} (on {used} of {world} ranks)" for name, used in partly_unused)
            raise RuntimeError(
                f"DistributedDataParallel: parameters received no gradient in this backward on some ranks: {listed}. "
                "They were not used to compute the loss there. Pass find_unused_parameters=True to average the "
                "gradients of the ranks that used them (zeros from the others), or set requires_grad=False on "
                "parameters that are never used.")

    @staticmethod
    def _write_grad(p, piece):
        if p.grad is not None and p.device == "cpu":
            p.grad.numpy()[...] = piece
        else:
            g = from_numpy(np.ascontiguousarray(piece))
            p.grad = g if p.device == "cpu" else g.to(p.device)

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
