"""gradcore.cuda: what the build contains, what the machine offers, and the caching allocator's statistics.
A faulting kernel is provoked in a child process (a DLPack capsule for an address nothing owns), since the fault
poisons the process's CUDA context."""
import pathlib
import re

import numpy as np
import pytest

import gradcore
from tolerance import assert_close


def test_the_version_has_one_home():
    """pyproject.toml declares no version of its own: scikit-build-core reads gradcore.__version__ from __init__.py."""
    root = pathlib.Path(__file__).resolve().parents[1]
    pyproject = (root / "pyproject.toml").read_text()
    assert not re.search(r'^version\s*=', pyproject, re.MULTILINE)
    assert re.search(r'^dynamic\s*=\s*\["version"\]', pyproject, re.MULTILINE)
    source = re.search(r'^input\s*=\s*"([^"]+)"', pyproject, re.MULTILINE).group(1)
    declared = re.search(r'^__version__\s*=\s*"([^"]+)"', (root / source).read_text(), re.MULTILINE).group(1)
    assert gradcore.__version__ == declared and re.fullmatch(r"\d+\.\d+\.\d+", declared)


def test_compiled_and_available_are_consistent():
    compiled, available, count = gradcore.cuda.compiled(), gradcore.cuda.is_available(), gradcore.cuda.device_count()
    assert isinstance(compiled, bool) and isinstance(available, bool) and isinstance(count, int)
    assert compiled == gradcore._core.cuda_compiled()
    assert available == (compiled and count > 0)
    if not compiled:
        assert count == 0


def test_runtime_calls_without_a_device_raise_clearly():
    if gradcore.cuda.is_available():
        pytest.skip("a CUDA device is present")
    for call in (gradcore.cuda.memory_stats, gradcore.cuda.synchronize, gradcore.cuda.empty_cache,
                 gradcore.cuda.reset_peak_memory_stats):
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            call()


@pytest.mark.cuda
def test_bad_device_arguments():
    with pytest.raises(ValueError, match="device: expected"):
        gradcore.cuda.memory_stats("gpu")
    with pytest.raises(ValueError, match="device"):
        gradcore.zeros(2, device=f"cuda:{gradcore.cuda.device_count()}")


@pytest.mark.cuda
def test_memory_stats_are_readable_and_track_live_memory():
    gradcore.cuda.synchronize()
    stats = gradcore.cuda.memory_stats()
    for key in ("allocated_bytes", "peak_allocated_bytes", "reserved_bytes", "peak_reserved_bytes", "allocations",
                "requests", "frees"):
        assert isinstance(stats[key], int) and stats[key] >= 0, key
    assert stats["reserved_bytes"] >= stats["allocated_bytes"]
    big = gradcore.zeros(1 << 20, device="cuda")  # 4 MiB
    gradcore.cuda.synchronize()
    during = gradcore.cuda.memory_stats()
    assert during["allocated_bytes"] >= stats["allocated_bytes"] + (4 << 20)
    assert during["requests"] == stats["requests"] + 1
    del big
    gradcore.cuda.synchronize()
    after = gradcore.cuda.memory_stats()
    assert after["frees"] == during["frees"] + 1
    assert after["allocated_bytes"] < during["allocated_bytes"]
    assert after["reserved_bytes"] >= after["allocated_bytes"]  # the freed block stays cached


@pytest.mark.cuda
def test_a_warm_loop_allocates_no_new_device_memory():
    x = gradcore.randn(256, 512, device="cuda", generator=gradcore.Generator(0), requires_grad=True)
    w = gradcore.randn(512, device="cuda", generator=gradcore.Generator(1), requires_grad=True)

    def step():
        loss = gradcore.functional.mse_loss((x * w).tanh().sum(axis=1), gradcore.zeros(256, device="cuda"))
        loss.backward()
        x.grad = w.grad = None

    for _ in range(3):  # warm-up: the pool grows to the loop's working set
        step()
    gradcore.cuda.synchronize()
    warm = gradcore.cuda.memory_stats()
    for _ in range(20):
        step()
    gradcore.cuda.synchronize()
    later = gradcore.cuda.memory_stats()
    assert later["requests"] > warm["requests"]  # the loop did allocate tensors...
    assert later["allocations"] == warm["allocations"]  # ...all served from cached blocks
    assert later["reserved_bytes"] == warm["reserved_bytes"]
    assert later["requests"] - later["frees"] == warm["requests"] - warm["frees"]  # nothing leaked


@pytest.mark.cuda
def test_empty_cache_and_peak_reset():
    block = gradcore.zeros(1 << 22, device="cuda")  # 16 MiB
    del block
    gradcore.cuda.empty_cache()
    stats = gradcore.cuda.memory_stats()
    assert stats["reserved_bytes"] < (16 << 20) + stats["allocated_bytes"]
    gradcore.cuda.reset_peak_memory_stats()
    assert gradcore.cuda.memory_stats()["peak_allocated_bytes"] <= stats["allocated_bytes"] + (1 << 21)


@pytest.mark.cuda
def test_host_device_round_trip_is_exact():
    values = np.random.default_rng(2).standard_normal((33, 17))
    for dtype in ("float32", "float64"):
        t = gradcore.tensor(values, dtype=dtype, device="cuda")
        assert t.device == "cuda:0"
        assert_close(t.to("cpu"), values.astype(dtype), atol=0, rtol=0)
        assert_close(t.to(dtype="float64" if dtype == "float32" else "float32"), values.astype(dtype),
                     atol=1e-6, rtol=1e-6)


@pytest.mark.cuda
def test_out_of_device_memory_is_a_memory_error():
    with pytest.raises(MemoryError):
        gradcore.zeros(1 << 48, device="cuda")  # 1 PiB
    assert_close(gradcore.ones(3, device="cuda").to("cpu"), np.ones(3, dtype="float32"))  # the device still works


# A kernel that faults, in a child process (the fault poisons the CUDA context for the rest of the process): a
# DLPack capsule for 4 floats at a device address nothing owns, which fill_kernel then writes.
_FAULTING_KERNEL = """
import ctypes
from gradcore import _core

class Device(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]

class DataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]

class Tensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", Device), ("ndim", ctypes.c_int32), ("dtype", DataType),
                ("shape", ctypes.POINTER(ctypes.c_int64)), ("strides", ctypes.c_void_p),
                ("byte_offset", ctypes.c_uint64)]

class Managed(ctypes.Structure):
    _fields_ = [("dl_tensor", Tensor), ("manager_ctx", ctypes.c_void_p), ("deleter", ctypes.c_void_p)]

shape = (ctypes.c_int64 * 1)(4)
managed = Managed(Tensor(0x100, Device(2, 0), 1, DataType(2, 32, 1), shape, None, 0), None, None)
new_capsule = ctypes.pythonapi.PyCapsule_New
new_capsule.restype = ctypes.py_object
new_capsule.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
array = _core.from_dlpack_capsule(new_capsule(ctypes.addressof(managed), b"dltensor", None))
try:
    array.fill_(1.0)
    array.numpy()
except RuntimeError as error:
    print("RuntimeError:", error)
"""


@pytest.mark.cuda
@pytest.mark.parametrize("sync", ["0", "1"])
def test_a_faulting_kernel_surfaces_as_a_runtime_error(sync):
    import os
    import subprocess
    import sys
    env = dict(os.environ, GRADCORE_CUDA_SYNC=sync, CUDA_LAUNCH_BLOCKING="0")
    env["PYTHONPATH"] = os.pathsep.join([str(pathlib.Path(gradcore.__file__).parents[1])] +
                                        ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    out = subprocess.run([sys.executable, "-c", _FAULTING_KERNEL], env=env, capture_output=True, text=True,
                         timeout=120).stdout
    assert "RuntimeError:" in out and "cudaErrorIllegalAddress" in out, out
    if sync == "1":
        assert "CUDA error in fill_kernel" in out, out  # reported at the launch, naming the kernel
    else:
        assert "GRADCORE_CUDA_SYNC=1" in out, out  # reported by the copy, with the hint


@pytest.mark.cuda
def test_cuda_events_time_the_work_between_them():
    # The benchmarks' timer (bench/harness.py): two events on the device's stream, the milliseconds between them.
    start, end = gradcore._core.CudaEvent(), gradcore._core.CudaEvent()
    x = gradcore.randn(1 << 16, device="cuda", generator=gradcore.Generator(0))
    start.record()
    for _ in range(5):
        x = (x * 1.5).tanh()
    end.record()
    elapsed = start.elapsed_ms(end)
    assert 0.0 <= elapsed < 60_000.0
    assert end.elapsed_ms(start) <= 0.0  # in the other order, time runs backwards
