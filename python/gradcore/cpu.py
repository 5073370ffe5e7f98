"""gradcore.cpu: the CPU allocator's cache (torch.cuda.empty_cache's counterpart for host memory).

Freed CPU blocks of 32 MiB and more (a large batch's activations, a ConvLSTM's gate arrays) are kept, up to 1 GiB,
and handed to the next request of the same size, which saves the page faults of fresh memory (csrc/array.cpp).
The process therefore keeps that memory after the tensors are gone; empty_cache() gives it back to the OS.
"""
from __future__ import annotations

from . import _core


def memory_stats() -> dict:
    """The large-block cache's counters: `cached_bytes` (freed blocks kept for reuse, bytes) and `cached_blocks`."""
    return _core.cpu_memory_stats()


def empty_cache():
    """Returns the cached free blocks, and the heap's free pages, to the OS. Live tensors are untouched; the next
    large allocation takes fresh memory (slower once: its pages fault in again)."""
    _core.cpu_empty_cache()
