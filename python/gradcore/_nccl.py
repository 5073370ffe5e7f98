"""NCCL through ctypes, loaded at run time: gradcore.distributed's "nccl" backend (GPU memory to GPU memory).

Nothing here is imported by `import gradcore`, and nothing loads libnccl until init_process_group("nccl") asks
for it, so a CPU machine never loads NCCL and `pip install` needs no NCCL to build. The library comes from, in
order: the nvidia-nccl-cu13 wheel (`pip install nvidia-nccl-cu13`, or the "nccl" extra), whose layout is
nvidia/nccl/lib/libnccl.so.2, found through the nvidia.nccl package's path, else through the installed
distribution's file list (importlib.metadata); else the system's libnccl.so.2 (the dynamic loader's search path).

The calls are NCCL's documented C API (nccl.h, NCCL 2.x): ncclGetVersion, ncclGetUniqueId, ncclCommInitRank,
ncclAllReduce, ncclBroadcast, ncclAllGather, ncclCommDestroy, ncclCommAbort, ncclGetErrorString,
ncclGetLastError. Every collective is enqueued on gradcore's stream of the device (gradcore._core.cuda_stream),
so it is ordered after the kernels that wrote its input and before those that read its output, without a host
synchronisation.

ncclCommInitRank uses the calling thread's current CUDA device. libnccl carries its own copy of the CUDA runtime,
which adopts the driver context current on the thread, so the rank's device is made current through the driver
API (libcuda: the device's primary context, the one the CUDA runtime uses) before the communicator is created.

Status: the library loading, the version query and the unique id (created on rank 0, broadcast over MPI) were
run on a CPU machine with the wheel (NCCL 2.32); the communicator and the collectives have not yet run on GPUs.
"""
from __future__ import annotations

import ctypes
import importlib.metadata
import importlib.util
import os

WHEEL = "nvidia-nccl-cu13"
LIBRARY = "libnccl.so.2"
UNIQUE_ID_BYTES = 128  # NCCL_UNIQUE_ID_BYTES

# ncclDataType_t and ncclRedOp_t values from nccl.h
DATA_TYPES = {"float32": 7, "float64": 8, "int64": 4, "bool": 1}  # bool travels as ncclUint8
REDUCE_OPS = {"sum": 0, "max": 2}


class UniqueId(ctypes.Structure):
    _fields_ = [("internal", ctypes.c_char * UNIQUE_ID_BYTES)]


def _wheel_candidates():
    """Where the nvidia-nccl-cu13 wheel's libnccl.so.2 would be, if the wheel is installed (nothing is loaded)."""
    paths = []
    try:
        spec = importlib.util.find_spec("nvidia.nccl")
    except (ImportError, ValueError):
        spec = None
    if spec is not None:
        for folder in spec.submodule_search_locations or []:
            paths.append(os.path.join(folder, "lib", LIBRARY))
    try:
        files = importlib.metadata.files(WHEEL) or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for f in files:
        if f.name == LIBRARY:
            paths.append(str(f.locate()))
    return paths


def library_path():
    """The libnccl.so.2 of the nvidia-nccl-cu13 wheel if it is installed, else None (the system's is tried then)."""
    for path in _wheel_candidates():
        if os.path.isfile(path):
            return os.path.abspath(path)
    return None


_lib = None


def load():
    """The NCCL library (loaded once), with the argument and result types of the calls used here set. Raises a
    RuntimeError saying how to install NCCL when neither the wheel nor a system libnccl.so.2 is found."""
    global _lib
    if _lib is not None:
        return _lib
    path = library_path()
    try:
        lib = ctypes.CDLL(path or LIBRARY, mode=ctypes.RTLD_GLOBAL)
    except OSError as e:
        where = path or f"the system's {LIBRARY}"
        raise RuntimeError(f'init_process_group: backend "nccl" needs NCCL, which could not be loaded from {where} '
                           f'({e}); install it with pip install {WHEEL} (or pip install "gradcore[nccl]"), or use '
                           f'backend "mpi"') from None
    vp, i, sz = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t
    signatures = {
        "ncclGetVersion": [ctypes.POINTER(i)],
        "ncclGetUniqueId": [ctypes.POINTER(UniqueId)],
        "ncclCommInitRank": [ctypes.POINTER(vp), i, UniqueId, i],
        "ncclCommDestroy": [vp],
        "ncclCommAbort": [vp],
        "ncclAllReduce": [vp, vp, sz, i, i, vp, vp],
        "ncclBroadcast": [vp, vp, sz, i, i, vp, vp],
        "ncclAllGather": [vp, vp, sz, i, vp, vp],
    }
    for name, argtypes in signatures.items():
        fn = getattr(lib, name)
        fn.argtypes = argtypes
        fn.restype = i
    lib.ncclGetErrorString.argtypes = [i]
    lib.ncclGetErrorString.restype = ctypes.c_char_p
    lib.ncclGetLastError.argtypes = [vp]
    lib.ncclGetLastError.restype = ctypes.c_char_p
    lib.path = path or LIBRARY
    _lib = lib
    return lib


def check(lib, result, call, comm=None):
    if result != 0:
        detail = lib.ncclGetErrorString(result).decode(errors="replace")
        last = lib.ncclGetLastError(comm).decode(errors="replace") if lib.ncclGetLastError(comm) else ""
        raise RuntimeError(f"NCCL {call} failed: {detail} (ncclResult_t {result})" + (f": {last}" if last else ""))


def version(lib):
    """NCCL's version code, e.g. 23206 for 2.32.6."""
    code = ctypes.c_int()
    check(lib, lib.ncclGetVersion(ctypes.byref(code)), "ncclGetVersion")
    return code.value


def broadcast_unique_id(lib, mpi_comm):
    """A new unique id made by rank 0 (ncclGetUniqueId) and sent to every rank over MPI: how NCCL's ranks find
    each other. Every rank of mpi_comm must call this."""
    import numpy as np

    uid = UniqueId()
    if mpi_comm.Get_rank() == 0:
        check(lib, lib.ncclGetUniqueId(ctypes.byref(uid)), "ncclGetUniqueId")
    buffer = np.frombuffer(bytearray(bytes(uid)), dtype=np.uint8).copy()
    mpi_comm.Bcast(buffer, root=0)
    ctypes.memmove(ctypes.byref(uid), buffer.ctypes.data, UNIQUE_ID_BYTES)
    return uid


def make_device_current(device):
    """Makes CUDA device `device`'s primary context current on this thread through the driver API (module
    docstring), so that ncclCommInitRank creates the communicator on it."""
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError as e:
        raise RuntimeError(f'init_process_group: backend "nccl" needs the CUDA driver (libcuda.so.1): {e}') from None
    handle, context = ctypes.c_int(), ctypes.c_void_p()
    for call, result in (("cuInit", lambda: cuda.cuInit(0)),
                         ("cuDeviceGet", lambda: cuda.cuDeviceGet(ctypes.byref(handle), device)),
                         ("cuDevicePrimaryCtxRetain", lambda: cuda.cuDevicePrimaryCtxRetain(ctypes.byref(context),
                                                                                            handle)),
                         ("cuCtxSetCurrent", lambda: cuda.cuCtxSetCurrent(context))):
        code = result()
        if code != 0:
            raise RuntimeError(f"CUDA driver {call} failed for device {device} (CUresult {code})")


class Communicator:
    """One NCCL communicator over the ranks of an MPI communicator, one GPU per rank."""

    def __init__(self, mpi_comm, device):
        self.lib = load()
        self.device = device
        self.size = mpi_comm.Get_size()
        self.rank = mpi_comm.Get_rank()
        uid = broadcast_unique_id(self.lib, mpi_comm)
        make_device_current(device)
        handle = ctypes.c_void_p()
        check(self.lib, self.lib.ncclCommInitRank(ctypes.byref(handle), self.size, uid, self.rank),
              "ncclCommInitRank")
        self.handle = handle

    def _stream(self):
        from . import _core

        return ctypes.c_void_p(_core.cuda_stream(self.device))

    def all_reduce(self, array, op):
        """In place over a contiguous device buffer (a _core.Array); op "sum" or "max"."""
        check(self.lib, self.lib.ncclAllReduce(array.data_ptr, array.data_ptr, array.numel, DATA_TYPES[array.dtype],
                                               REDUCE_OPS[op], self.handle, self._stream()),
              "ncclAllReduce", self.handle)

    def broadcast(self, array, root):
        check(self.lib, self.lib.ncclBroadcast(array.data_ptr, array.data_ptr, array.numel, DATA_TYPES[array.dtype],
                                               root, self.handle, self._stream()),
              "ncclBroadcast", self.handle)

    def all_gather(self, array, out):
        """out (world, *array.shape) gets rank r's array in row r."""
        check(self.lib, self.lib.ncclAllGather(array.data_ptr, out.data_ptr, array.numel, DATA_TYPES[array.dtype],
                                               self.handle, self._stream()),
              "ncclAllGather", self.handle)

    def destroy(self):
        if self.handle is not None:
            check(self.lib, self.lib.ncclCommDestroy(self.handle), "ncclCommDestroy")
            self.handle = None

    def abort(self):
        if self.handle is not None:
            self.lib.ncclCommAbort(self.handle)
            self.handle = None
