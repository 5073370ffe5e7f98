"""BatchNorm2d and functional.batch_norm against the numpy reference (tests/reference/batch_norm.py) and float64
finite differences, on every device; CUDA against CPU for the same inputs."""
import numpy as np
import pytest

import gradcore as gc
from gradcore import nn
import gradcore.functional as F
from reference import batch_norm as ref
from tolerance import DEVICES, DTYPES, assert_close, assert_cuda_matches_cpu, forward_tol

# (N, C, H, W): H*W a multiple of 4, odd H*W, one image, a long channel, and on CUDA both the one-block-per-channel
# path and the path with several partial sums per channel.
SHAPES = [(2, 3, 4, 5), (4, 2, 3, 3), (1, 3, 1, 2), (3, 5, 7, 7), (16, 4, 32, 32), (64, 3, 15, 15)]
SHAPE_IDS = ["2x3x4x5", "4x2x3x3", "1x3x1x2", "3x5x7x7", "16x4x32x32", "64x3x15x15"]


def _rng(seed=0):
    return np.random.default_rng(seed)


def _inputs(shape, seed=0, offset=0.0, scale=1.0):
    """x, weight, bias, running_mean, running_var as float64 numpy arrays."""
    rng = _rng(seed)
    c = shape[1]
    x = offset + scale * rng.standard_normal(shape)
    return (x, 1.0 + 0.5 * rng.standard_normal(c), 0.5 * rng.standard_normal(c), 0.3 * rng.standard_normal(c),
            0.5 + rng.random(c))


def _t(a, dtype, device, requires_grad=False):
    return gc.tensor(np.asarray(a), dtype=dtype, device=device, requires_grad=requires_grad)


def _rounded(a, dtype):
    """What the reference sees: the same values the kernels read (float32 inputs rounded once)."""
    return np.asarray(a).astype(dtype).astype(np.float64)


# ---- forward ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
def test_forward_train_matches_reference(shape, dtype, device, affine):
    x, w, b, rm, rv = (_rounded(a, dtype) for a in _inputs(shape))
    w, b = (w, b) if affine else (None, None)
    running_mean, running_var = _t(rm, dtype, device), _t(rv, dtype, device)
    y = F.batch_norm(_t(x, dtype, device), running_mean, running_var, w if w is None else _t(w, dtype, device),
                     b if b is None else _t(b, dtype, device), training=True, momentum=0.1, eps=1e-5)
    y_ref, rm_ref, rv_ref = ref.forward_train(x, w, b, rm, rv, 0.1, 1e-5)
    assert y.dtype == dtype and y.device.startswith(device)
    assert_close(y, y_ref, name="y", **forward_tol(dtype))
    assert_close(running_mean, rm_ref, name="running_mean", **forward_tol(dtype))
    assert_close(running_var, rv_ref, name="running_var", **forward_tol(dtype))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_forward_eval_matches_reference(shape, dtype, device):
    x, w, b, rm, rv = (_rounded(a, dtype) for a in _inputs(shape, seed=1))
    running_mean, running_var = _t(rm, dtype, device), _t(rv, dtype, device)
    y = F.batch_norm(_t(x, dtype, device), running_mean, running_var, _t(w, dtype, device), _t(b, dtype, device),
                     training=False, eps=1e-3)
    assert_close(y, ref.forward_eval(x, rm, rv, w, b, 1e-3), name="y", **forward_tol(dtype))
    # evaluation leaves the running statistics alone
    assert_close(running_mean, rm, name="running_mean", atol=0, rtol=0)
    assert_close(running_var, rv, name="running_var", atol=0, rtol=0)


@pytest.mark.parametrize("device", DEVICES)
def test_training_without_running_stats(device):
    x, w, b, _, _ = _inputs((3, 2, 4, 4), seed=2)
    y = F.batch_norm(_t(x, "float64", device), None, None, _t(w, "float64", device), _t(b, "float64", device))
    y_ref, _, _ = ref.forward_train(x, w, b, None, None, 0.1, 1e-5)
    assert_close(y, y_ref, name="y", **forward_tol("float64"))


# ---- gradients -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", [(2, 3, 2, 3), (3, 2, 1, 1), (1, 2, 3, 3)], ids=["2x3x2x3", "3x2x1x1", "1x2x3x3"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_gradcheck_x_weight_bias(shape, training, device):
    x, w, b, rm, rv = _inputs(shape, seed=3)
    xs = _t(x, "float64", device, requires_grad=True)
    ws = _t(w, "float64", device, requires_grad=True)
    bs = _t(b, "float64", device, requires_grad=True)
    running_mean, running_var = _t(rm, "float64", device), _t(rv, "float64", device)

    def fn(x, w, b):
        # The running statistics are read (eval) but never updated here, so every probe sees the same function.
        if training:
            return F.batch_norm(x, None, None, w, b, training=True)
        return F.batch_norm(x, running_mean, running_var, w, b, training=False)

    assert gc.gradcheck(fn, [xs, ws, bs])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_gradcheck_without_affine(training, device):
    x, _, _, rm, rv = _inputs((2, 3, 2, 2), seed=4)
    running_mean, running_var = _t(rm, "float64", device), _t(rv, "float64", device)

    def fn(x):
        if training:
            return F.batch_norm(x, None, None, training=True)
        return F.batch_norm(x, running_mean, running_var, training=False)

    assert gc.gradcheck(fn, [_t(x, "float64", device, requires_grad=True)])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES[3:], ids=SHAPE_IDS[3:])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_backward_matches_reference(shape, dtype, device, training):
    x, w, b, rm, rv = (_rounded(a, dtype) for a in _inputs(shape, seed=5))
    dy = _rounded(_rng(6).standard_normal(shape), dtype)
    xs, ws, bs = (_t(a, dtype, device, requires_grad=True) for a in (x, w, b))
    y = F.batch_norm(xs, _t(rm, dtype, device), _t(rv, dtype, device), ws, bs, training=training)
    y.backward(_t(dy, dtype, device))
    if training:
        dx_ref, dw_ref, db_ref = ref.backward_train(dy, x, w, 1e-5)
    else:
        dx_ref, dw_ref, db_ref = ref.backward_eval(dy, x, rm, rv, w, 1e-5)
    tol = forward_tol(dtype)
    assert_close(xs.grad, dx_ref, name="dx", **tol)
    # dweight and dbias are sums over N*H*W terms of size ~1: absolute error grows with their magnitude
    assert_close(ws.grad, dw_ref, name="dweight", **tol)
    assert_close(bs.grad, db_ref, name="dbias", **tol)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", [(4, 3, 5, 5), (16, 4, 32, 32)], ids=["4x3x5x5", "16x4x32x32"])
def test_backward_only_weight_and_bias(shape, device):
    """Input that needs no gradient (a first layer): dweight and dbias alone."""
    x, w, b, _, _ = _inputs(shape, seed=7)
    dy = _rng(8).standard_normal(x.shape)
    ws, bs = _t(w, "float64", device, requires_grad=True), _t(b, "float64", device, requires_grad=True)
    F.batch_norm(_t(x, "float64", device), None, None, ws, bs).backward(_t(dy, "float64", device))
    _, dw_ref, db_ref = ref.backward_train(dy, x, w, 1e-5)
    assert_close(ws.grad, dw_ref, name="dweight", **forward_tol("float64"))
    assert_close(bs.grad, db_ref, name="dbias", **forward_tol("float64"))


# ---- running statistics and the module ---------------------------------------------------------------------------

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("momentum", [0.1, 0.5, None], ids=["m0.1", "m0.5", "cumulative"])
def test_running_stats_after_several_steps(momentum, dtype, device):
    bn = nn.BatchNorm2d(3, momentum=momentum, dtype=dtype, device=device)
    rm, rv = np.zeros(3), np.ones(3)
    batches = [_rounded(_inputs((4, 3, 3, 5), seed=10 + k, offset=k - 2.0, scale=1.0 + k)[0], dtype)
               for k in range(5)]
    for k, x in enumerate(batches, start=1):
        bn(_t(x, dtype, device))
        factor = 1.0 / k if momentum is None else momentum
        _, rm, rv = ref.forward_train(x, None, None, rm, rv, factor, 1e-5)
    assert bn.num_batches_tracked.item() == 5
    assert_close(bn.running_mean, rm, name="running_mean", **forward_tol(dtype))
    assert_close(bn.running_var, rv, name="running_var", **forward_tol(dtype))
    if momentum is None:  # the cumulative average is the plain mean of the batch statistics
        means = [ref.batch_stats(x)[0] for x in batches]
        assert_close(bn.running_mean, np.mean(means, axis=0), name="cumulative mean", **forward_tol(dtype))


@pytest.mark.parametrize("device", DEVICES)
def test_eval_after_train_uses_running_stats(device):
    bn = nn.BatchNorm2d(4, device=device, dtype="float64")
    gc.nn.init.normal_(bn.weight, 1.0, 0.2, generator=gc.Generator(1))
    gc.nn.init.normal_(bn.bias, 0.0, 0.2, generator=gc.Generator(2))
    w, b = bn.weight.numpy().copy(), bn.bias.numpy().copy()
    rm, rv = np.zeros(4), np.ones(4)
    for k in range(3):
        x = _inputs((5, 4, 3, 3), seed=20 + k, offset=1.0, scale=2.0)[0]
        y = bn(_t(x, "float64", device))
        y_ref, rm, rv = ref.forward_train(x, w, b, rm, rv, 0.1, 1e-5)
        assert_close(y, y_ref, name=f"train step {k}", **forward_tol("float64"))
    bn.eval()
    before = bn.running_mean.numpy().copy()
    x = _inputs((2, 4, 3, 3), seed=30)[0]
    assert_close(bn(_t(x, "float64", device)), ref.forward_eval(x, rm, rv, w, b, 1e-5), name="eval",
                 **forward_tol("float64"))
    assert bn.num_batches_tracked.item() == 3  # evaluation does not count batches
    assert_close(bn.running_mean, before, name="running_mean unchanged by eval", atol=0, rtol=0)


@pytest.mark.parametrize("device", DEVICES)
def test_train_eval_switch_inside_sequential(device):
    model = nn.Sequential(nn.BatchNorm2d(3, device=device), nn.ReLU(), nn.BatchNorm2d(3, device=device))
    x = _rounded(_inputs((4, 3, 4, 4), seed=40, offset=2.0)[0], "float32")
    model(_t(x, "float32", device))  # one training step updates both layers' statistics
    first, second = model[0], model[2]
    assert first.num_batches_tracked.item() == 1 and second.num_batches_tracked.item() == 1

    model.eval()
    assert not first.training and not second.training
    h = np.maximum(ref.forward_eval(x, first.running_mean.numpy(), first.running_var.numpy(), None, None, 1e-5), 0)
    expected = ref.forward_eval(h, second.running_mean.numpy(), second.running_var.numpy(), None, None, 1e-5)
    assert_close(model(_t(x, "float32", device)), expected, name="eval output", **forward_tol("float32"))
    assert first.num_batches_tracked.item() == 1

    model.train()
    assert first.training and second.training
    out = model(_t(x, "float32", device))
    assert_close(out.numpy().mean(axis=(0, 2, 3)), np.zeros(3), name="train output mean", atol=1e-5)
    assert second.num_batches_tracked.item() == 2


@pytest.mark.parametrize("device", DEVICES)
def test_without_tracking_eval_uses_batch_stats(device):
    bn = nn.BatchNorm2d(2, track_running_stats=False, affine=False, device=device, dtype="float64")
    assert bn.running_mean is None and bn.num_batches_tracked is None
    assert list(bn.parameters()) == [] and list(bn.buffers()) == []
    x = _inputs((3, 2, 4, 4), seed=50, offset=3.0)[0]
    y_ref, _, _ = ref.forward_train(x, None, None, None, None, 0.1, 1e-5)
    assert_close(bn(_t(x, "float64", device)), y_ref, name="train", **forward_tol("float64"))
    bn.eval()
    assert_close(bn(_t(x, "float64", device)), y_ref, name="eval", **forward_tol("float64"))


def test_module_state_and_parameters():
    bn = nn.BatchNorm2d(5)
    assert [n for n, _ in bn.named_parameters()] == ["weight", "bias"]
    assert list(bn.state_dict()) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    assert_close(bn.weight, np.ones(5), atol=0, rtol=0)
    assert_close(bn.running_var, np.ones(5), atol=0, rtol=0)
    bn(gc.randn(2, 5, 3, 3, generator=gc.Generator(0)))
    copy = nn.BatchNorm2d(5)
    copy.load_state_dict(bn.state_dict())
    assert_close(copy.running_mean, bn.running_mean, atol=0, rtol=0)
    assert copy.num_batches_tracked.item() == 1
    bn.reset_running_stats()
    assert bn.num_batches_tracked.item() == 0
    assert_close(bn.running_mean, np.zeros(5), atol=0, rtol=0)
    assert "BatchNorm2d(5, eps=1e-05, momentum=0.1" in repr(bn)


def test_module_trains_weight_and_bias():
    bn = nn.BatchNorm2d(3, dtype="float64")
    x, _, _, _, _ = _inputs((4, 3, 2, 2), seed=60)
    dy = _rng(61).standard_normal(x.shape)
    bn(_t(x, "float64", "cpu")).backward(_t(dy, "float64", "cpu"))
    _, dw_ref, db_ref = ref.backward_train(dy, x, np.ones(3), 1e-5)
    assert_close(bn.weight.grad, dw_ref, name="dweight", **forward_tol("float64"))
    assert_close(bn.bias.grad, db_ref, name="dbias", **forward_tol("float64"))


# ---- numerics ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("device", DEVICES)
def test_large_offset_float32(device):
    """Mean 1e4 against a spread of 1: a naive E[x^2] - E[x]^2 in float32 would lose every digit of the variance."""
    shape = (8, 4, 16, 16)
    x, w, b, rm, rv = _inputs(shape, seed=70, offset=1e4)
    x = _rounded(x, "float32")
    running_mean, running_var = _t(rm, "float32", device), _t(rv, "float32", device)
    xs = _t(x, "float32", device, requires_grad=True)
    ws = _t(w, "float32", device, requires_grad=True)
    y = F.batch_norm(xs, running_mean, running_var, ws, _t(b, "float32", device), momentum=0.5)
    w32, b32 = _rounded(w, "float32"), _rounded(b, "float32")
    y_ref, rm_ref, rv_ref = ref.forward_train(x, w32, b32, _rounded(rm, "float32"), _rounded(rv, "float32"), 0.5,
                                              1e-5)
    tol = forward_tol("float32")
    assert_close(y, y_ref, name="y", **tol)
    assert_close(running_mean, rm_ref, name="running_mean", **tol)
    assert_close(running_var, rv_ref, name="running_var", **tol)

    dy = _rounded(_rng(71).standard_normal(shape), "float32")
    y.backward(_t(dy, "float32", device))
    dx_ref, dw_ref, _ = ref.backward_train(dy, x, w32, 1e-5)
    assert_close(xs.grad, dx_ref, name="dx", **tol)
    assert_close(ws.grad, dw_ref, name="dweight", **tol)


@pytest.mark.parametrize("device", DEVICES)
def test_large_offset_eval_float32(device):
    x, w, b, _, _ = _inputs((4, 3, 8, 8), seed=72, offset=-3e4)
    x = _rounded(x, "float32")
    rm, rv = np.full(3, -3e4, dtype=np.float32).astype(np.float64), _rounded([0.9, 1.1, 1.0], "float32")
    y = F.batch_norm(_t(x, "float32", device), _t(rm, "float32", device), _t(rv, "float32", device),
                     _t(w, "float32", device), _t(b, "float32", device), training=False)
    expected = ref.forward_eval(x, rm, rv, _rounded(w, "float32"), _rounded(b, "float32"), 1e-5)
    assert_close(y, expected, name="y", **forward_tol("float32"))


@pytest.mark.parametrize("device", DEVICES)
def test_constant_channel(device):
    """Zero variance: y = bias exactly, no NaN, and the gradient stays finite (invstd = 1/sqrt(eps))."""
    x = np.full((3, 2, 2, 2), 7.0)
    xs = _t(x, "float64", device, requires_grad=True)
    bs = _t([0.5, -1.0], "float64", device)
    y = F.batch_norm(xs, None, None, None, bs)
    assert_close(y, np.broadcast_to(np.array([0.5, -1.0]).reshape(1, 2, 1, 1), x.shape), name="y", atol=0, rtol=0)
    y.backward(_t(_rng(80).standard_normal(x.shape), "float64", device))
    assert np.all(np.isfinite(xs.grad.numpy()))


def _one_training_step(device, dtype, x, dy):
    running_mean, running_var = gc.zeros(x.shape[1], dtype=dtype, device=device), gc.ones(x.shape[1], dtype=dtype,
                                                                                        device=device)
    xs = _t(x, dtype, device, requires_grad=True)
    ws = gc.ones(x.shape[1], dtype=dtype, device=device, requires_grad=True)
    y = F.batch_norm(xs, running_mean, running_var, ws, None)
    y.backward(_t(dy, dtype, device))
    return [a.numpy().copy() for a in (y, running_mean, running_var, xs.grad, ws.grad)]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_deterministic(dtype, device):
    """Bitwise identical results run after run, and (CPU) for any thread count."""
    shape = (32, 8, 16, 16)
    x = _inputs(shape, seed=90, offset=5.0)[0]
    dy = _rng(91).standard_normal(shape)
    first = _one_training_step(device, dtype, x, dy)
    threads = gc.get_num_threads()
    try:
        for n in ([1, 2, threads] if device == "cpu" else [threads, threads]):
            gc.set_num_threads(n)
            again = _one_training_step(device, dtype, x, dy)
            for a, b in zip(first, again):
                assert np.array_equal(a, b), f"results differ with {n} threads"
    finally:
        gc.set_num_threads(threads)


# ---- CUDA against CPU --------------------------------------------------------------------------------------------

@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
# Beyond SHAPES: packs of 4 floats with partial sums per channel; packs of 2 floats (H*W = 2 mod 4) with partial sums
# (a branch no other shape reaches); no packs.
@pytest.mark.parametrize("shape", SHAPES + [(128, 16, 28, 28), (64, 2, 15, 14), (7, 3, 5, 3)],
                         ids=SHAPE_IDS + ["128x16x28x28", "64x2x15x14", "7x3x5x3"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_cuda_matches_cpu(shape, dtype, training):
    x, w, b, rm, rv = _inputs(shape, seed=100, offset=3.0, scale=2.0)
    dy = _rng(101).standard_normal(shape)
    results = {}
    for device in ("cpu", "cuda"):
        running_mean, running_var = _t(rm, dtype, device), _t(rv, dtype, device)
        xs, ws, bs = (_t(a, dtype, device, requires_grad=True) for a in (x, w, b))
        y = F.batch_norm(xs, running_mean, running_var, ws, bs, training=training)
        y.backward(_t(dy, dtype, device))
        results[device] = [y, running_mean, running_var, xs.grad, ws.grad, bs.grad]
    names = ["y", "running_mean", "running_var", "dx", "dweight", "dbias"]
    assert_cuda_matches_cpu(dict(zip(names, results["cuda"])), dict(zip(names, results["cpu"])), dtype)


@pytest.mark.cuda
def test_cuda_module_round_trip():
    model = nn.Sequential(nn.BatchNorm2d(4), nn.ReLU())
    model.cuda()
    x = gc.randn(8, 4, 6, 6, device="cuda", generator=gc.Generator(3))
    model(x)
    model.eval()
    y = model(x)
    assert y.device.startswith("cuda")
    model.cpu()
    assert_close(model(x.cpu()), y.cpu().numpy(), name="eval on cpu", **forward_tol("float32"))


# ---- bad input ---------------------------------------------------------------------------------------------------

def test_one_value_per_channel_in_training_raises():
    x = gc.randn(1, 3, 1, 1)
    with pytest.raises(ValueError, match="x: expected more than 1 value per channel"):
        F.batch_norm(x, gc.zeros(3), gc.ones(3))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm2d(3)(x)
    # evaluation normalises a single value fine
    y = F.batch_norm(x, gc.zeros(3), gc.ones(3), training=False)
    assert y.shape == (1, 3, 1, 1)


@pytest.mark.parametrize("argument", ["weight", "bias", "running_mean", "running_var"])
def test_wrong_channel_count_raises(argument):
    args = dict(running_mean=gc.zeros(3), running_var=gc.ones(3), weight=gc.ones(3), bias=gc.zeros(3))
    args[argument] = gc.ones(4)
    for training in (True, False):
        with pytest.raises(ValueError, match=f"{argument}: expected shape \\(3\\), one value per channel"):
            F.batch_norm(gc.randn(2, 3, 2, 2), training=training, **args)


def test_module_wrong_channels_or_rank_raises():
    bn = nn.BatchNorm2d(4, affine=False, track_running_stats=False)
    with pytest.raises(ValueError, match="x: expected 4 channels \\(num_features\\)"):
        bn(gc.randn(2, 3, 2, 2))
    with pytest.raises(ValueError, match="x: expected a 4-d input"):
        bn(gc.randn(2, 4, 2))


def test_non_4d_input_raises():
    with pytest.raises(ValueError, match="x: expected a 4-d array"):
        F.batch_norm(gc.randn(2, 3, 4), gc.zeros(3), gc.ones(3))
    with pytest.raises(TypeError, match="x: expected a gradcore.Tensor"):
        F.batch_norm(np.zeros((2, 3, 2, 2)), None, None)


def test_running_stats_of_another_dtype_raise():
    x = gc.randn(2, 3, 2, 2)
    with pytest.raises(TypeError, match="running_mean: expected dtype float32"):
        F.batch_norm(x, gc.zeros(3, dtype="float64"), gc.ones(3))
    with pytest.raises(TypeError, match="running_var: expected dtype float32"):
        F.batch_norm(x, gc.zeros(3), gc.ones(3, dtype="float64"), training=False)
    with pytest.raises(TypeError, match="weight: expected dtype float32"):
        F.batch_norm(x, None, None, gc.ones(3, dtype="float64"))


@pytest.mark.cuda
def test_running_stats_on_another_device_raise():
    x = gc.randn(2, 3, 2, 2, device="cuda")
    with pytest.raises(ValueError, match="running_mean: expected device cuda:0"):
        F.batch_norm(x, gc.zeros(3), gc.ones(3, device="cuda"))
    with pytest.raises(ValueError, match="running_var: expected device cuda:0"):
        F.batch_norm(x, gc.zeros(3, device="cuda"), gc.ones(3), training=False)


def test_other_bad_arguments_raise():
    x = gc.randn(2, 3, 2, 2)
    with pytest.raises(ValueError, match="running_mean, running_var: evaluation"):
        F.batch_norm(x, None, None, training=False)
    with pytest.raises(ValueError, match="momentum: None"):
        F.batch_norm(x, gc.zeros(3), gc.ones(3), momentum=None)
    with pytest.raises(ValueError, match="running_var: expected a tensor"):
        F.batch_norm(x, gc.zeros(3), None)
    with pytest.raises(ValueError, match="running_mean: running statistics are buffers"):
        F.batch_norm(x, gc.zeros(3, requires_grad=True), gc.ones(3))
    with pytest.raises(ValueError, match="num_features: expected an integer >= 1"):
        nn.BatchNorm2d(0)
    with pytest.raises(ValueError, match="momentum: expected a number <= 1.0"):
        nn.BatchNorm2d(3, momentum=2.0)
