"""DataLoader: seeded mini-batches over in-memory arrays, as gradcore Tensors.

The order of epoch e is a permutation drawn from numpy's PCG64 seeded with (seed, e), so a run that resumes at
epoch e (`loader.set_epoch(e)`) sees exactly the batches an unbroken run would have seen. The last partial batch
is kept by default (drop_last=False), as MATLAB's minibatchqueue does.

Sharding for data-parallel training (num_replicas, rank), as PyTorch's DistributedSampler: every rank draws the
same seeded permutation of the epoch and keeps every num_replicas-th index starting at its rank. So with per-rank
batch B, the k-th batches of the N ranks together hold exactly the k-th batch of an unsharded loader with batch N*B
(same seed): averaging the ranks' gradients reproduces the single-process step. When the sample count is not a
multiple of num_replicas, drop_last=False pads the permutation by repeating its first indices (every rank then
has the same number of batches, so no rank waits in a collective the others never reach; at most num_replicas-1
samples are seen twice per epoch), and drop_last=True drops the tail instead.
"""
from __future__ import annotations

import math

import numpy as np

from .._checks import integer as _integer
from ..tensor import Tensor, _device_name, from_numpy


class DataLoader:
    """Iterates over `arrays` (a numpy array, a Tensor, or a tuple/list of them sharing their first dimension)
    in batches of `batch_size`, yielding a tuple with one entry per array.

    Arrays become gradcore Tensors on `device`: float64 stays float64, other floats become float32, integer arrays
    (class labels) int64 and boolean arrays bool, as PyTorch's loaders give them. Other kinds stay numpy arrays.
    Each `for` loop over the loader is one epoch; the epoch counter advances at the end of every full pass.
    """

    def __init__(self, arrays, batch_size, shuffle=True, drop_last=False, seed=0, device="cpu", num_replicas=None,
                 rank=None):
        if isinstance(arrays, (np.ndarray, Tensor)):
            arrays = (arrays,)
        if not isinstance(arrays, (tuple, list)) or not arrays:
            raise TypeError(f"arrays: expected an array or a non-empty tuple of arrays, got {type(arrays).__name__}")
        self.arrays = tuple(a.numpy() if isinstance(a, Tensor) else np.asarray(a) for a in arrays)
        for i, a in enumerate(self.arrays):
            if a.ndim == 0:
                raise ValueError(f"arrays[{i}]: expected an array with a first (sample) dimension, got a 0-d array")
        lengths = {len(a) for a in self.arrays}
        if len(lengths) != 1:
            raise ValueError(f"arrays: every array needs the same first dimension, got lengths "
                             f"{[len(a) for a in self.arrays]}")
        self.batch_size = _integer(batch_size, "batch_size", 1)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.seed = _integer(seed, "seed", 0)  # checked here, not first when iterated
        self.device = _device_name(device)
        self.epoch = 0
        self.num_replicas, self.rank = _shard_arguments(num_replicas, rank)

    @property
    def num_samples(self):
        """Samples this rank serves per epoch (all of them when unsharded)."""
        total, replicas = len(self.arrays[0]), self.num_replicas
        if self.drop_last:
            return total // replicas
        return math.ceil(total / replicas)

    def __len__(self):
        """Batches per epoch."""
        if self.drop_last:
            return self.num_samples // self.batch_size
        return math.ceil(self.num_samples / self.batch_size)

    def set_epoch(self, epoch):
        """The epoch whose order the next pass uses (for resuming a run)."""
        self.epoch = _integer(epoch, "epoch", 0)

    def order(self, epoch=None):
        """Sample indices of one epoch's pass on this rank, in the order they are served."""
        epoch = self.epoch if epoch is None else epoch
        total = len(self.arrays[0])
        if not self.shuffle:
            full = np.arange(total)
        else:
            full = np.random.default_rng([self.seed, int(epoch)]).permutation(total)
        if self.num_replicas == 1:
            return full
        padded = self.num_samples * self.num_replicas  # even shards: pad (drop_last=False) or cut (True)
        if padded > total:
            full = np.concatenate([full, np.resize(full, padded - total)])
        return full[self.rank:padded:self.num_replicas]

    def _convert(self, array):
        if array.dtype.kind in "iu":  # class labels and indices: int64, as PyTorch's loaders give them
            array = array.astype(np.int64, copy=False)
        elif array.dtype.kind == "b":
            pass
        elif array.dtype.kind != "f":
            return array
        elif array.dtype != np.float64:
            array = array.astype(np.float32, copy=False)
        t = from_numpy(np.ascontiguousarray(array))
        return t if self.device == "cpu" else t.to(self.device)

    def __iter__(self):
        order = self.order()
        stop = len(self) * self.batch_size if self.drop_last else self.num_samples
        for begin in range(0, stop, self.batch_size):
            idx = order[begin:begin + self.batch_size]
            if not self.shuffle and self.num_replicas == 1:  # contiguous slices: one copy, no gather
                idx = slice(begin, begin + len(idx))
            yield tuple(self._convert(np.array(a[idx], copy=True)) for a in self.arrays)
        self.epoch += 1


def _shard_arguments(num_replicas, rank):
    """(num_replicas, rank) checked; both None means one unsharded process."""
    if num_replicas is None and rank is None:
        return 1, 0
    if num_replicas is None or rank is None:
        raise ValueError(f"num_replicas, rank: give both (e.g. dist.get_world_size(), dist.get_rank()) or "
                         f"neither, got num_replicas={num_replicas!r}, rank={rank!r}")
    num_replicas = _integer(num_replicas, "num_replicas", 1)
    rank = _integer(rank, "rank", 0)
    if rank >= num_replicas:
        raise ValueError(f"rank: expected a rank in [0, {num_replicas}), got {rank}")
    return num_replicas, rank
