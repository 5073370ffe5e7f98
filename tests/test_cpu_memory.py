"""gradcore.cpu: the CPU allocator keeps freed blocks of 32 MiB and more for reuse (csrc/array.cpp), and
gradcore.cpu.empty_cache() gives them back to the OS, as torch.cuda.empty_cache() does for a GPU's cache."""
import os

import numpy as np

import gradcore as gc

MiB = 1 << 20


def _resident_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _cache_a_large_block(mib=40):
    x = gc.ones(mib * MiB // 4)  # float32, every page written
    del x


def test_a_freed_large_block_is_cached_and_empty_cache_releases_it():
    gc.cpu.empty_cache()
    assert gc.cpu.memory_stats() == {"cached_bytes": 0, "cached_blocks": 0}
    _cache_a_large_block()
    stats = gc.cpu.memory_stats()
    assert stats["cached_blocks"] == 1
    assert stats["cached_bytes"] == 40 * MiB  # 2 MiB-rounded, and 40 MiB already is
    gc.cpu.empty_cache()
    assert gc.cpu.memory_stats() == {"cached_bytes": 0, "cached_blocks": 0}


def test_empty_cache_returns_the_memory_to_the_os():
    gc.cpu.empty_cache()
    _cache_a_large_block(64)
    cached = _resident_bytes()
    gc.cpu.empty_cache()
    assert cached - _resident_bytes() >= 48 * MiB  # the 64 MiB block's pages leave the process


def test_small_blocks_are_not_cached():
    gc.cpu.empty_cache()
    x = gc.ones(8 * MiB // 4)
    del x
    assert gc.cpu.memory_stats()["cached_blocks"] == 0


def test_live_tensors_survive_and_allocation_works_after_empty_cache():
    live = gc.full((12 * MiB,), 3.0)  # 48 MiB, in use: not the cache's to free
    _cache_a_large_block()
    gc.cpu.empty_cache()
    assert gc.cpu.memory_stats()["cached_blocks"] == 0
    assert float(live.numpy()[::MiB].sum()) == 3.0 * 12
    again = gc.zeros(40 * MiB // 4)  # fresh memory, zero-filled as asked
    assert not np.any(again.numpy())
    del again
    assert gc.cpu.memory_stats()["cached_blocks"] == 1
    gc.cpu.empty_cache()


def test_empty_cache_on_an_empty_cache_is_harmless():
    gc.cpu.empty_cache()
    gc.cpu.empty_cache()
    assert gc.cpu.memory_stats()["cached_bytes"] == 0
