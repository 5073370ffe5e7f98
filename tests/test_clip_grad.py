"""clip_grad_norm_ and clip_grad_value_ against numpy (tests/reference/optim.py): norm types 2, 1, 3 and inf, global
and per-tensor clipping, non-finite gradients, determinism and bad input."""
import math

import numpy as np
import pytest

import gradcore as gc
from reference.optim import clip_grads_by_norm, grad_norm
from tolerance import DEVICES, DTYPES, assert_close, assert_cuda_matches_cpu, forward_tol

SIZES = [(1,), (3, 5), (70001,), (1024, 1024)]


def params_with_grads(sizes, dtype, device, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    grads = [(scale * rng.standard_normal(s)).astype(dtype) for s in sizes]
    params = []
    for g in grads:
        p = gc.nn.Parameter(gc.zeros(g.shape, dtype=dtype, device=device))
        p.grad = gc.tensor(g, dtype=dtype, device=device)
        params.append(p)
    return params, [g.astype(np.float64) for g in grads]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf], ids=["l2", "l1", "l3", "inf"])
@pytest.mark.parametrize("per_tensor", [False, True], ids=["global", "per-tensor"])
def test_clip_grad_norm_matches_reference(norm_type, per_tensor, dtype, device):
    params, grads = params_with_grads(SIZES, dtype, device)
    max_norm = 0.5
    expected, expected_norm = clip_grads_by_norm(grads, max_norm, norm_type, per_tensor)
    total = gc.clip_grad_norm_(params, max_norm, norm_type=norm_type, per_tensor=per_tensor)
    assert isinstance(total, gc.Tensor) and total.shape == () and total.dtype == dtype
    assert total.device == params[0].device
    assert_close(total, expected_norm, name="norm", **forward_tol(dtype))
    for i, (p, e) in enumerate(zip(params, expected)):
        assert_close(p.grad, e, name=f"grad {i}", **forward_tol(dtype))


def test_per_tensor_clips_each_tensor_to_its_own_norm():
    params, grads = params_with_grads([(10,), (20,)], "float64", "cpu", scale=3.0)
    params[1].grad = gc.tensor(np.full(20, 1e-3), dtype="float64")
    gc.clip_grad_norm_(params, 1.0, per_tensor=True)
    assert np.linalg.norm(params[0].grad.numpy()) == pytest.approx(1.0, rel=1e-5)
    assert_close(params[1].grad, np.full(20, 1e-3), atol=0, rtol=0)  # already below max_norm: unchanged


def test_norm_below_max_norm_leaves_gradients_unchanged():
    params, grads = params_with_grads([(4,), (5,)], "float32", "cpu", scale=0.01)
    total = gc.clip_grad_norm_(params, 10.0)
    assert total.item() == pytest.approx(grad_norm(grads), rel=1e-6)
    for p, g in zip(params, grads):
        assert_close(p.grad, g, atol=0, rtol=0)


def test_single_tensor_and_string_inf_accepted():
    params, grads = params_with_grads([(6,)], "float64", "cpu")
    total = gc.clip_grad_norm_(params[0], 1e9, norm_type="inf")
    assert total.item() == pytest.approx(np.max(np.abs(grads[0])))


def test_parameters_without_grad_are_ignored_and_empty_gives_zero():
    params, grads = params_with_grads([(4,)], "float32", "cpu")
    extra = gc.nn.Parameter(gc.ones(3))
    total = gc.clip_grad_norm_(params + [extra], 1.0)
    assert total.item() == pytest.approx(grad_norm(grads), rel=1e-6)
    assert extra.grad is None
    assert gc.clip_grad_norm_([extra], 1.0).item() == 0.0


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_error_if_nonfinite_raises_and_leaves_gradients(bad):
    params, grads = params_with_grads([(4,), (50000,)], "float32", "cpu")
    grads_np = params[1].grad.numpy()
    grads_np[777] = bad
    before = [p.grad.numpy().copy() for p in params]
    with pytest.raises(RuntimeError, match="non-finite"):
        gc.clip_grad_norm_(params, 1.0, error_if_nonfinite=True)
    for p, b in zip(params, before):
        np.testing.assert_array_equal(p.grad.numpy(), b)


def test_nonfinite_without_error_follows_pytorch():
    # NaN norm -> NaN scale -> every gradient NaN; inf norm -> scale 0 -> finite gradients become 0.
    params, _ = params_with_grads([(3,), (4,)], "float64", "cpu")
    params[0].grad.numpy()[0] = math.nan
    assert math.isnan(gc.clip_grad_norm_(params, 1.0).item())
    assert np.isnan(params[1].grad.numpy()).all()
    params, _ = params_with_grads([(3,), (4,)], "float64", "cpu")
    params[0].grad.numpy()[0] = math.inf
    assert gc.clip_grad_norm_(params, 1.0).item() == math.inf
    assert_close(params[1].grad, np.zeros(4), atol=0, rtol=0)


@pytest.mark.parametrize("device", DEVICES)
def test_norm_is_deterministic(device):
    params, _ = params_with_grads([(123457,), (3,), (65536,)], "float32", device, seed=2)
    norms = [gc.clip_grad_norm_(params, 1e30).item() for _ in range(3)]
    assert norms[0] == norms[1] == norms[2]


def test_norm_does_not_depend_on_the_thread_count():
    params, _ = params_with_grads([(300001,), (5,)], "float32", "cpu", seed=3)
    threads = gc.get_num_threads()
    try:
        norms = []
        for n in (1, max(2, threads)):
            gc.set_num_threads(n)
            norms.append(gc.clip_grad_norm_(params, 1e30).item())
    finally:
        gc.set_num_threads(threads)
    assert norms[0] == norms[1]


@pytest.mark.cuda
@pytest.mark.parametrize("norm_type", [2.0, math.inf])
def test_cuda_matches_cpu(norm_type):
    cpu, _ = params_with_grads(SIZES, "float32", "cpu", seed=4)
    cuda, _ = params_with_grads(SIZES, "float32", "cuda", seed=4)
    a = gc.clip_grad_norm_(cpu, 0.5, norm_type=norm_type)
    b = gc.clip_grad_norm_(cuda, 0.5, norm_type=norm_type)
    assert_cuda_matches_cpu(b, a, "float32", name="total norm")
    assert_cuda_matches_cpu([p.grad for p in cuda], [q.grad for q in cpu], "float32", name="clipped grads")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_clip_grad_value(dtype, device):
    params, grads = params_with_grads(SIZES[:3], dtype, device, seed=5)
    assert gc.clip_grad_value_(params, 0.7) is None
    for p, g in zip(params, grads):
        limit = float(np.array(0.7, dtype=dtype))  # the clip value rounded to the gradients' dtype
        assert_close(p.grad, np.clip(g, -limit, limit), atol=0, rtol=0)


@pytest.mark.parametrize("call,error,match", [
    (lambda ps: gc.clip_grad_norm_(ps, -1.0), ValueError, "max_norm"),
    (lambda ps: gc.clip_grad_norm_(ps, 1.0, norm_type=0.0), ValueError, "norm_type"),
    (lambda ps: gc.clip_grad_norm_(ps, 1.0, norm_type=-2), ValueError, "norm_type"),
    (lambda ps: gc.clip_grad_norm_(3.0, 1.0), TypeError, "parameters"),
    (lambda ps: gc.clip_grad_norm_([np.zeros(2)], 1.0), TypeError, r"parameters\[0\]"),
    (lambda ps: gc.clip_grad_value_(ps, -0.5), ValueError, "clip_value"),
    (lambda ps: gc.clip_grad_value_(ps, math.nan), ValueError, "clip_value"),
])
def test_bad_input(call, error, match):
    params, _ = params_with_grads([(3,)], "float32", "cpu")
    with pytest.raises(error, match=match):
        call(params)


def test_mixed_dtypes_rejected():
    a, _ = params_with_grads([(3,)], "float32", "cpu")
    b, _ = params_with_grads([(3,)], "float64", "cpu")
    with pytest.raises(ValueError, match="dtypes"):
        gc.clip_grad_norm_(a + b, 1.0)


def test_table_cache_tells_buffers_at_one_address_apart_by_size():
    # Two views of one numpy buffer start at the same address; their sizes differ by 65536, which the cache key
    # once folded away (numel << 48), so the second call reused the first call's table (a 1-element walk).
    from gradcore import _core
    backing = np.ones(1 + 65536, dtype=np.float64)
    table = _core.TensorTable()
    state = _core.zeros([4], "float64", "cpu")
    small = _core.from_numpy(backing[:1])
    large = _core.from_numpy(backing)
    assert small.data_ptr == large.data_ptr
    assert _core.grad_norm(table, [small], 2.0, None, False, state, None).numpy() == 1.0
    norm = _core.grad_norm(table, [large], 2.0, None, False, state, None).numpy()
    assert norm == math.sqrt(65537.0) and table.builds == 2


@pytest.mark.parametrize("device", DEVICES)
def test_a_parameter_listed_twice_is_clipped_once(device):
    params, grads = params_with_grads([(5,), (70000,)], "float64", device, seed=6)
    expected, expected_norm = clip_grads_by_norm(grads, 0.5)
    norm = gc.clip_grad_norm_([params[0], params[1], params[0]], 0.5)
    assert_close(norm, expected_norm, name="norm", **forward_tol("float64"))
    for i, (p, e) in enumerate(zip(params, expected)):
        assert_close(p.grad, e, name=f"grad {i}", **forward_tol("float64"))
