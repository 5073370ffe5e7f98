"""DistributedDataParallel: one model replica per rank, gradients averaged over ranks (PyTorch's name).

At wrap time rank 0's parameters and buffers are broadcast, so every replica starts equal. Each forward pass in
training mode (gradients enabled, outside no_sync()) asks autograd to call back once the following backward has
finished; the callback averages every parameter's gradient over the ranks, bucket by bucket.

Buckets: the parameters in reverse registration order (roughly the order backward produces their gradients),
grouped by dtype and device into flat buffers of at most `bucket_mb` megabytes. Each bucket is one collective,
reduced with gradcore.distributed's fixed rank-order sum, buckets in a fixed order: runs are bitwise reproducible.

Not yet: the buckets are reduced after backward, not while backward still runs (no overlap of communication with
computation; autograd has no per-leaf "gradient is final" hook yet). A parameter without a gradient on this rank
contributes zeros, and gets the averaged gradient like the others (every rank must send the same buckets).
"""
from __future__ import annotations

import contextlib

import numpy as np

from .. import autograd
from .. import distributed as dist
from .._checks import real
from ..tensor import from_numpy
from .module import Module


class DistributedDataParallel(Module):
    def __init__(self, module, bucket_mb=25, broadcast_buffers=True):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"module: expected a gradcore.nn.Module, got {type(module).__name__}")
        self.bucket_mb = real(bucket_mb, "bucket_mb", 0, low_open=True)
        dist.get_world_size()  # raises a clear error when init_process_group() was not called
        self.module = module
        self.broadcast_buffers = bool(broadcast_buffers)
        self._require_sync = True
        self._sync_state()
        self._buckets = self._make_buckets()

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
        for p in reversed([p for p in self.module.parameters() if p.requires_grad]):
            kind = (p.dtype, p.device)
            bucket = open_by_kind.get(kind)
            nbytes = p.numel * np.dtype(p.dtype).itemsize
            if bucket is None or (bucket["bytes"] and bucket["bytes"] + nbytes > limit):
                bucket = {"params": [], "bytes": 0, "dtype": p.dtype}
                open_by_kind[kind] = bucket
                buckets.append(bucket)
            bucket["params"].append(p)
            bucket["bytes"] += nbytes
        return buckets

    # ---- forward and the gradient average --------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        if self.training and self.broadcast_buffers:
            for b in self.module.buffers():  # rank 0's running statistics, as PyTorch's broadcast_buffers=True
                dist.broadcast(b, src=0)
        if self.training and self._require_sync and autograd.is_grad_enabled():
            autograd.queue_callback(("ddp", id(self)), self._average_gradients)
        return self.module(*args, **kwargs)

    def _average_gradients(self):
        group = dist._require_group("DistributedDataParallel")
        for bucket in self._buckets:
            params = bucket["params"]
            flat = np.concatenate([
                (p.grad.numpy() if p.grad is not None else np.zeros(p.shape, bucket["dtype"])).reshape(-1)
                for p in params])
            averaged = dist._reduce_array(group, flat, dist.ReduceOp.AVG)
            offset = 0
            for p in params:
                piece = averaged[offset:offset + p.numel].reshape(p.shape)
                offset += p.numel
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
        return f"bucket_mb={self.bucket_mb}, buckets={len(self._buckets)}"
