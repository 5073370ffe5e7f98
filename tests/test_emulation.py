"""The emulated CUDA device (a GRADCORE_CUDA=EMULATE build): it says it is one, and it catches the bugs it exists to
catch. Its self-test kernels (csrc/cuda/emulation/self_test.cu) each carry one such bug; a crash-level bug must stop
the process with a message naming the kernel, so those run in a subprocess. The last test runs every kernel family
forward and in reversed thread and block order and asks for bitwise-equal results: a race would change them."""
import os
import subprocess
import sys

import numpy as np
import pytest

import gradcore
import gradcore.functional as F

pytestmark = pytest.mark.skipif(not gradcore.cuda.is_emulated(), reason="needs the emulated device "
                                "(GRADCORE_CUDA=EMULATE build)")


def _self_test_in_subprocess(name):
    code = ("from gradcore import _core\n"
            "try:\n"
            f"    _core.cuda_emulation_self_test({name!r}); _core.cuda_synchronize(0)\n"
            "except RuntimeError as error:\n"
            "    print('RuntimeError:', error)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(gradcore.__file__))] +
                                                      ([os.environ["PYTHONPATH"]] if "PYTHONPATH" in os.environ else [])))
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


def test_the_build_says_it_is_the_emulated_device():
    assert gradcore.cuda.compiled() and gradcore.cuda.is_available()
    assert gradcore.cuda.is_emulated()
    assert gradcore.cuda.device_count() == 1
    assert "emulated" in gradcore.cuda.get_device_name()
    with pytest.raises(ValueError, match="order"):
        gradcore.cuda.set_emulated_thread_order("backwards")


def test_fresh_device_memory_reads_as_nan():
    fresh = gradcore.Tensor(gradcore._core.empty([64], "float32", "cuda")).numpy()
    assert np.isnan(fresh).all()


def test_shared_memory_a_block_never_wrote_reads_as_nan():
    out = np.array(gradcore._core.cuda_emulation_self_test("unwritten_shared"))
    assert np.array_equal(out[:32], np.arange(32))
    assert np.isnan(out[32:]).all()


def test_a_shared_memory_race_changes_with_the_thread_order():
    order = gradcore.cuda.emulated_thread_order()
    try:
        gradcore.cuda.set_emulated_thread_order("forward")
        forward = np.array(gradcore._core.cuda_emulation_self_test("shared_race"))
        gradcore.cuda.set_emulated_thread_order("reversed")
        reversed_ = np.array(gradcore._core.cuda_emulation_self_test("shared_race"))
    finally:
        gradcore.cuda.set_emulated_thread_order(order)
    assert not np.array_equal(forward, reversed_, equal_nan=True)


def test_warp_shuffles_and_votes():
    out = np.array(gradcore._core.cuda_emulation_self_test("warp_reduce"))
    assert np.array_equal(out, np.full(64, 496.0))


@pytest.mark.parametrize("name, words", [
    ("skipped_barrier", "thread(s) wait at __syncthreads"),
    ("exited_lane_shuffle", "has exited"),
])
def test_a_broken_kernel_stops_the_process_naming_it(name, words):
    result = _self_test_in_subprocess(name)
    assert result.returncode != 0, result.stdout
    assert f"kernel {name}" in result.stderr and words in result.stderr, result.stderr


@pytest.mark.skipif(not getattr(gradcore._core, "address_sanitizer", False),
                    reason="needs the emulated device built with AddressSanitizer (GRADCORE_SANITIZE=ON)")
def test_address_sanitizer_stops_a_kernel_that_reads_past_its_buffer():
    result = _self_test_in_subprocess("out_of_bounds")
    assert result.returncode != 0, result.stdout
    assert "heap-buffer-overflow" in result.stderr, result.stderr[-3000:]


def test_an_illegal_address_becomes_a_runtime_error():
    result = _self_test_in_subprocess("illegal_address")
    assert "RuntimeError:" in result.stdout and "cudaErrorIllegalAddress" in result.stdout, result.stdout + result.stderr
    assert "kernel illegal_address" in result.stderr


def _every_kernel_family(dtype):
    """Runs one of each kernel (and each branch worth a different code path) on the device; returns the results."""
    g = gradcore.Generator(7)
    d = dict(dtype=dtype, device="cuda")

    def leaf(*shape):
        return gradcore.randn(*shape, generator=g, requires_grad=True, **d)

    out = []
    x, w, b = leaf(2, 4, 9, 9), leaf(6, 2, 3, 3), leaf(6)
    y = F.conv2d(x, w, b, stride=2, padding=1, groups=2)                       # forward, groups
    wt = leaf(4, 3, 3, 3)
    z = F.conv_transpose2d(x, wt, None, stride=2, padding="same")              # transposed
    big = leaf(1, 8, 40, 40)                                                   # a long reduction: split-K
    wk = leaf(8, 8, 3, 3)
    u = F.conv2d(big, wk, padding=1)
    rm, rv = gradcore.zeros(6, **d), gradcore.ones(6, **d)
    bn = F.batch_norm(y, rm, rv, weight=leaf(6), bias=leaf(6), training=True)
    bn_eval = F.batch_norm(y.detach(), rm, rv, training=False)
    h, c = leaf(2, 3, 5, 5), leaf(2, 3, 5, 5)
    frame = leaf(2, 4, 5, 5)
    h2, c2 = F.conv_lstm_cell(frame, h, c, leaf(12, 7, 3, 3), leaf(12), peephole=leaf(3, 3, 5, 5))
    cat = F.cat([y, y * 2.0], dim=1)
    loss = (bn.sigmoid().sum() + z.tanh().mean() + u.relu().sum(axis=(0, 2)).sum() + (h2 * c2).sum()
            + F.mse_loss(cat, gradcore.zeros_like(cat)))
    loss.backward()
    params = [x, w, b, wt, big, wk, h, c, frame]
    out += [t.numpy() for t in (y, z, u, bn, bn_eval, h2, c2, cat, loss, rm, rv)]
    out += [p.grad.numpy() for p in params]
    norm = gradcore.clip_grad_norm_(params, 1.0)
    out.append(norm.numpy() if isinstance(norm, gradcore.Tensor) else np.asarray(norm))
    for opt in (gradcore.optim.Adam(params, lr=1e-2, clip_norm=0.5, amsgrad=True),
                gradcore.optim.SGD(params, lr=1e-2, momentum=0.9, clip_value=0.1)):
        for _ in range(2):
            opt.step()
        out += [p.numpy().copy() for p in params]
    return out


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_kernel_gives_the_same_bits_in_reversed_thread_order(dtype):
    order = gradcore.cuda.emulated_thread_order()
    try:
        gradcore.cuda.set_emulated_thread_order("forward")
        forward = _every_kernel_family(dtype)
        gradcore.cuda.set_emulated_thread_order("reversed")
        reversed_ = _every_kernel_family(dtype)
    finally:
        gradcore.cuda.set_emulated_thread_order(order)
    assert len(forward) == len(reversed_)
    for i, (a, b) in enumerate(zip(forward, reversed_)):
        assert a.tobytes() == b.tobytes(), f"result {i} differs between thread orders"


def test_dynamic_shared_memory():
    out = np.array(gradcore._core.cuda_emulation_self_test("dynamic_shared"))
    assert np.array_equal(out, np.arange(63, -1, -1))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_gets_its_own_device_thread():
    assert (gradcore.ones(4, device="cuda") * 2.0).numpy().tolist() == [2.0] * 4  # the parent's device thread runs
    pid = os.fork()
    if pid == 0:  # the child: no device thread was copied; its first launch must start one, not wait forever
        import signal
        signal.alarm(60)
        code = 1
        try:
            code = 0 if (gradcore.ones(4, device="cuda") * 3.0).numpy().tolist() == [3.0] * 4 else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
