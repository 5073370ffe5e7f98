"""gradcore.cuda: is CUDA compiled in, is a device usable, and the caching allocator's statistics."""
from __future__ import annotations

from . import _core


def compiled() -> bool:
    """True when this build of gradcore contains the CUDA kernels."""
    return _core.cuda_compiled()


def is_emulated() -> bool:
    """True when the CUDA kernels run on the emulated device (a build with GRADCORE_CUDA=EMULATE): the same .cu
    sources compiled as host C++ and run on the CPU, a test double for CI, not a backend. False in every other build."""
    return _core.cuda_emulated()


def set_emulated_thread_order(order: str):
    """Emulated device only: "reversed" runs each block's threads, and the blocks, in reverse order between
    barriers; "forward" (the default) restores the usual order. A kernel whose results differ between the two has a
    race (a missing __syncthreads, threads sharing a shared-memory slot)."""
    if order not in ("forward", "reversed"):
        raise ValueError(f"order: expected \"forward\" or \"reversed\", got {order!r}")
    if not is_emulated():
        raise RuntimeError("the thread order can only be set on the emulated CUDA device (GRADCORE_CUDA=EMULATE)")
    _core.cuda_set_emulated_thread_order(order == "reversed")


def emulated_thread_order() -> str:
    """"forward" or "reversed" on the emulated device (see set_emulated_thread_order); "forward" elsewhere."""
    return "reversed" if _core.cuda_emulated_thread_order_reversed() else "forward"


def device_count() -> int:
    """Usable CUDA devices (0 without a driver or a GPU; never raises)."""
    return _core.cuda_device_count() if compiled() else 0


def is_available() -> bool:
    """True when the CUDA kernels are compiled in and a device is present."""
    return device_count() > 0


def _index(device):
    if device is None:
        return 0
    if isinstance(device, int) and not isinstance(device, bool) and device >= 0:
        return device
    if isinstance(device, str) and device in ("cuda",):
        return 0
    if isinstance(device, str) and device.startswith("cuda:") and device[5:].isdigit():
        return int(device[5:])
    raise ValueError(f"device: expected a CUDA device index or \"cuda:N\", got {device!r}")


def _require(device):
    index = _index(device)  # a malformed device is named before the question of availability
    if not is_available():
        raise RuntimeError("CUDA is not available: " + ("no CUDA device or driver was found" if compiled()
                           else "gradcore was built without CUDA"))
    return index


def get_device_name(device=None) -> str:
    """The device's name, as the CUDA runtime reports it ("gradcore emulated CUDA device (on the CPU)" when emulated)."""
    return _core.cuda_device_name(_require(device))


def synchronize(device=None):
    """Waits for the device's stream to finish its queued work."""
    _core.cuda_synchronize(_require(device))


def memory_stats(device=None) -> dict:
    """The caching allocator's counters: allocated/reserved bytes now and at peak; `requests` and `frees` (every
    tensor allocated and released); `allocations`, the requests that made the pool take new device memory.
    `allocations` and `reserved_bytes` stop growing once a training loop is warm: blocks are reused from the pool."""
    return _core.cuda_memory_stats(_require(device))


def reset_peak_memory_stats(device=None):
    _core.cuda_reset_peak_memory_stats(_require(device))


def empty_cache(device=None):
    """Returns the pool's cached free blocks to the driver."""
    _core.cuda_empty_cache(_require(device))
