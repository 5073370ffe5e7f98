"""csrc/cpu/parallel.h's TaskShares: the convolution loops hand their tasks out in contiguous shares, one per thread
asked for, each thread taking from its own share first and then from the others'. A team smaller than the thread
count asked for (OMP_THREAD_LIMIT below it) leaves shares without an owner: the threads that do run must take them
over, and every task must run once, so the results keep the bits of one thread. The script reaches every loop that
uses TaskShares: the stride-2 Winograd forward (and so the transposed convolutions' input gradients), the transposed
Winograd path (and so the convolutions' input gradients), the stride-2 Winograd weight gradient's image groups, the
stride-1 Winograd forward, the few-channel and the stride-decomposed kernels (and, beside them, the GEMM forward and
input gradient of a 5x5 kernel, which keep schedule(dynamic, 1))."""
import os
import subprocess
import sys
import textwrap

import numpy as np

SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import gradcore as gc
    F = gc.functional
    rng = np.random.default_rng(0)
    t = lambda *shape: gc.tensor(rng.standard_normal(shape), dtype="float32", requires_grad=True)  # noqa: E731
    results = []
    def run(y, *inputs):
        y.backward(gc.tensor(rng.standard_normal(y.shape), dtype="float32"))
        results.extend(a.numpy().ravel() for a in (y,) + tuple(i.grad for i in inputs))
    x, w = t(9, 32, 14, 14), t(64, 32, 3, 3)
    run(F.conv2d(x, w, stride=2, padding="same"), x, w)           # stride-2 Winograd forward; transposed input grad
    x, w = t(9, 64, 14, 14), t(64, 32, 3, 3)
    run(F.conv_transpose2d(x, w, stride=2, padding="same"), x, w)  # transposed Winograd; stride-2 weight gradient
    x, w = t(9, 32, 14, 14), t(32, 32, 3, 3)
    run(F.conv2d(x, w, padding=1), x, w)                           # stride-1 Winograd forward
    x, w = t(9, 16, 12, 12), t(24, 16, 5, 5)
    run(F.conv2d(x, w, padding=2), x, w)                           # GEMM forward and input gradient (dynamic)
    x, w = t(9, 1, 28, 28), t(32, 1, 3, 3)
    run(F.conv2d(x, w, padding=1), x, w)                           # few-channel kernel
    x, w = t(9, 32, 28, 28), t(32, 1, 3, 3)
    run(F.conv_transpose2d(x, w, padding=1), x, w)                 # stride-decomposed kernel
    np.save(sys.argv[1], np.concatenate(results))
""")


def _outputs(tmp_path, settings):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    env.pop("OMP_THREAD_LIMIT", None)
    outputs = []
    for i, extra in enumerate(settings):
        path = str(tmp_path / f"run{i}.npy")
        subprocess.run([sys.executable, "-c", SCRIPT, path], env=dict(env, **extra), check=True, capture_output=True)
        outputs.append(np.load(path))
    return outputs


def test_a_team_smaller_than_the_thread_count_still_runs_every_task_with_the_same_bits(tmp_path):
    one, *others = _outputs(tmp_path, [
        {"OMP_NUM_THREADS": "1"},
        {"OMP_NUM_THREADS": "3", "OMP_THREAD_LIMIT": "1"},  # three shares, one thread takes all of them
        {"OMP_NUM_THREADS": "3", "OMP_THREAD_LIMIT": "2"},  # the third share has no owner
        {"OMP_NUM_THREADS": "2"},
    ])
    assert np.isfinite(one).all()
    for other in others:
        assert np.array_equal(one, other)
