"""Regression tests for the reliability issue (#15): no crash, no silent wrong answer, from any Python call.
Code that crashed the interpreter runs in a child process (tests/isolated.py), so a regression fails one test."""
import math
import pickle
import threading

import numpy as np
import pytest

import gradcore as gc
from isolated import assert_runs_cleanly

F = gc.functional


# ---- 1. crashes ------------------------------------------------------------------------------------------------

def test_clip_grad_norm_from_two_threads_on_different_parameters():
    assert_runs_cleanly("""
        import threading
        import gradcore as gc

        def worker(seed, sizes):
            params = [gc.randn(n, requires_grad=True) for n in sizes]
            for p in params:
                p.grad = gc.randn(n := p.numel)
            for _ in range(300):
                gc.clip_grad_norm_(params, 0.5)

        threads = [threading.Thread(target=worker, args=(i, sizes))
                   for i, sizes in enumerate([[100000, 7, 3000], [5, 70000, 200, 9, 40000]])]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print("ok")
    """)


@pytest.mark.parametrize("shape", [(2**62 + 1, 4), (2**61, 4), (3, 2**62, 2**62)], ids=str)
def test_a_shape_whose_element_count_overflows_is_refused(shape):
    with pytest.raises(ValueError, match=r"shape: .* elements"):
        gc.zeros(*shape)


def test_a_dimension_beyond_int64_is_refused_naming_the_shape():
    with pytest.raises(ValueError, match=r"shape: expected integers in \[0, 2\*\*63\)"):
        gc.zeros(2**64)
    with pytest.raises(TypeError, match="shape: expected integers"):
        gc.zeros(2.5)


def test_an_empty_dimension_makes_any_shape_empty():
    assert gc.zeros(0, 2**62, 2**62).numel == 0


def test_reshape_into_an_overflowing_shape_is_refused():
    with pytest.raises(ValueError, match="shape: .* elements"):
        gc.zeros(6).reshape(2**62, 2**62, -1)


def test_an_allocation_too_large_for_memory_is_a_memory_error_saying_what_was_asked():
    with pytest.raises(MemoryError, match=r"cannot allocate \d+ bytes for a float32 array of shape"):
        gc.zeros(2**50, 4)


def test_overflowing_shapes_fed_to_ops_do_not_crash():
    assert_runs_cleanly("""
        import gradcore as gc
        for make in (lambda: gc.zeros(2**62 + 1, 4), lambda: gc.zeros(2**31, 2**31, 4, 4)):
            try:
                x = make()
            except ValueError:
                continue
            raise SystemExit(f"made a tensor of shape {x.shape} and numel {x.numel}")
    """)
