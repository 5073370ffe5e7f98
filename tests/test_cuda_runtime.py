"""gradcore.cuda: what the build contains, what the machine offers, and the caching allocator's statistics.
A CUDA error surfacing as a RuntimeError naming the kernel is not provoked here: no kernel fails on valid input."""
import pathlib
import re

import numpy as np
import pytest

import gradcore
from tolerance import assert_close


def test_version_matches_the_package_metadata():
    pyproject = (pathlib.Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    declared = re.search(r'^version\s*=\s*"([^"]+)"', pyproject, re.MULTILINE).group(1)
    assert gradcore.__version__ == declared


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
