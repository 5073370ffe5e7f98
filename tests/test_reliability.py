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
