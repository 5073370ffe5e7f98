"""The fused batch_norm + ReLU (ops/batch_norm.py's batch_norm_relu, the epilogue in csrc/epilogue.h): the same bits as
F.relu(F.batch_norm(...)) for the output, the running statistics and every gradient, in training and evaluation,
float64 gradcheck, the backward kernels' folded mask against a separate relu_backward, the same bits at 1, 2 and 3
threads, nn.Sequential fusing [BatchNorm2d, ReLU] (the seed network's +BN variant), CUDA (emulated device) against the
CPU, and bad input."""
import numpy as np
import pytest

import gradcore as gc
from gradcore import _core, nn
from gradcore.functional import batch_norm, relu
from gradcore.ops.batch_norm import batch_norm_relu
from isolated import outputs_for_thread_counts
from tolerance import DEVICES, DTYPES, assert_close, assert_cuda_matches_cpu, cuda_and_cpu_with_grads

SHAPES = {"seed_enc1": (4, 32, 14, 14), "odd_plane": (3, 5, 7, 3), "one_pixel": (6, 4, 1, 1)}


def inputs(shape, dtype, device="cpu", seed=0, affine=True):
    rng = np.random.default_rng(seed)
    c = shape[1]
    x = gc.tensor(rng.standard_normal(shape) * 2 + 0.5, dtype=dtype, device=device, requires_grad=True)
    w = gc.tensor(rng.standard_normal(c), dtype=dtype, device=device, requires_grad=True) if affine else None
    b = gc.tensor(rng.standard_normal(c), dtype=dtype, device=device, requires_grad=True) if affine else None
    stats = [gc.tensor(rng.random(c) * 0.5, dtype=dtype, device=device),
             gc.tensor(rng.random(c) + 0.5, dtype=dtype, device=device)]
    return x, w, b, stats


def run(fused, shape, dtype, training, device="cpu", affine=True):
    x, w, b, (rm, rv) = inputs(shape, dtype, device, affine=affine)
    if fused:
        y = batch_norm_relu(x, rm, rv, w, b, training=training, momentum=0.1, eps=1e-5)
    else:
        y = relu(batch_norm(x, rm, rv, w, b, training=training, momentum=0.1, eps=1e-5))
    y.backward(gc.tensor(np.random.default_rng(1).standard_normal(shape), dtype=dtype, device=device))
    out = [y, x.grad, rm, rv] + ([w.grad, b.grad] if affine else [])
    return [t.numpy().copy() for t in out]


@pytest.mark.parametrize("affine", [True, False], ids=["affine", "no_affine"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", list(SHAPES))
def test_bitwise_equals_unfused(shape, dtype, training, affine):
    fused = run(True, SHAPES[shape], dtype, training, affine=affine)
    plain = run(False, SHAPES[shape], dtype, training, affine=affine)
    for name, a, b in zip(("y", "x.grad", "running_mean", "running_var", "weight.grad", "bias.grad"), fused, plain):
        assert np.array_equal(a.view(np.uint8), b.view(np.uint8)), name
    assert (fused[0] == 0).any() and (fused[0] > 0).any()  # the ReLU cut something and kept something


def backward_kernel(training, g, x, w, y, needs=(True, True, True)):
    """(dx, dweight, dbias) from _core's backward of batch_norm (training: batch statistics of x) with the ReLU mask of
    y folded in (y None: no mask)."""
    c = x.shape[1]
    if training:
        _, mean, invstd = _core.batch_norm_forward_train(x, w, None, None, None, 0.1, 1e-5)
        return _core.batch_norm_backward_train(g, x, w, mean, invstd, *needs, y)
    rm = gc.tensor(np.linspace(-0.5, 0.5, c), dtype=x.dtype, device=x.device)._data
    rv = gc.tensor(np.linspace(0.5, 2.0, c), dtype=x.dtype, device=x.device)._data
    return _core.batch_norm_backward_eval(g, x, rm, rv, w, 1e-5, *needs, y)


@pytest.mark.parametrize("needs", [(True, True, True), (True, False, False), (False, True, True)],
                         ids=["all", "dx_only", "dweight_dbias"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 5, 7, 3), (2, 3, 6, 6), (4, 2, 1, 1)], ids=["odd_plane", "plane36", "1x1"])
@pytest.mark.parametrize("device", DEVICES)
def test_backward_kernel_masks_as_the_separate_relu_backward(device, shape, dtype, training, needs):
    """batch_norm_backward_*(g, ..., y) has the bits of batch_norm_backward_*(relu_backward(g, y), ...): the mask
    (0 where y <= 0, g elsewhere, a NaN y passing g) read in both passes over g, vector groups and tails alike."""
    rng = np.random.default_rng(6)
    x = gc.tensor(rng.standard_normal(shape) * 3 + 1, dtype=dtype, device=device)._data
    g = gc.tensor(rng.standard_normal(shape), dtype=dtype, device=device)._data
    y_np = np.maximum(rng.standard_normal(shape), 0)
    y_np.flat[::5] = -0.0
    y_np.flat[2::7] = np.nan
    y_np.flat[4::9] = np.inf
    y = gc.tensor(y_np, dtype=dtype, device=device)._data
    w = gc.tensor(rng.standard_normal(shape[1]), dtype=dtype, device=device)._data
    fused = backward_kernel(training, g, x, w, y, needs)
    masked = _core.binary(g, y, _core.BinaryOp.relu_backward)
    separate = backward_kernel(training, masked, x, w, None, needs)
    for name, a, b in zip(("dx", "dweight", "dbias"), fused, separate):
        assert (a is None) == (b is None), name
        if a is not None:
            assert np.array_equal(a.numpy().view(np.uint8), b.numpy().view(np.uint8)), name


def test_backward_kernel_checks_y():
    x = gc.randn(2, 3, 4, 4)._data
    g = gc.randn(2, 3, 4, 4)._data
    for training in (True, False):
        with pytest.raises(ValueError, match="y: expected shape"):
            backward_kernel(training, g, x, None, gc.zeros(2, 3, 4, 5)._data)
        with pytest.raises(TypeError, match="y: expected dtype float32"):
            backward_kernel(training, g, x, None, gc.zeros(2, 3, 4, 4, dtype="float64")._data)


THREAD_SCRIPT = """
import sys
import numpy as np
import gradcore as gc
from gradcore.ops.batch_norm import batch_norm_relu
rng = np.random.default_rng(0)
x = gc.tensor(rng.standard_normal((16, 32, 14, 14)), dtype="float32", requires_grad=True)
w = gc.tensor(rng.standard_normal(32), dtype="float32", requires_grad=True)
b = gc.tensor(rng.standard_normal(32), dtype="float32", requires_grad=True)
y = batch_norm_relu(x, None, None, w, b)
y.backward(gc.tensor(rng.standard_normal(y.shape), dtype="float32"))
np.save(sys.argv[1], np.concatenate([t.numpy().ravel() for t in (y, x.grad, w.grad, b.grad)]))
"""


def test_bitwise_identical_for_any_thread_count(tmp_path):
    outputs = outputs_for_thread_counts(THREAD_SCRIPT, tmp_path)
    assert np.array_equal(outputs[0], outputs[1]) and np.array_equal(outputs[0], outputs[2])


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_gradcheck(training):
    x, w, b, (rm, rv) = inputs((3, 2, 4, 3), "float64")
    assert gc.gradcheck(lambda a, c, d: batch_norm_relu(a, rm.clone(), rv.clone(), c, d, training=training),
                        [x, w, b])


def test_sequential_fuses_the_seed_plus_bn_pattern():
    """Conv -> BatchNorm2d -> ReLU: the conv stays on its own (a BatchNorm2d follows it), BatchNorm2d + ReLU fuse."""
    def build():
        gc.manual_seed(0)
        return nn.Sequential(nn.Conv2d(1, 8, 3, stride=2, padding="same"), nn.BatchNorm2d(8), nn.ReLU(),
                             nn.ConvTranspose2d(8, 4, 3, stride=2, padding="same"), nn.BatchNorm2d(4), nn.ReLU())

    x = gc.tensor(np.random.default_rng(2).random((4, 1, 10, 10)), dtype="float32")
    results = {}
    for fuse in (True, False):
        net = build()
        net.fuse_activations = fuse
        for mode in ("train", "eval"):
            getattr(net, mode)()
            y = net(x)
            (y * y).sum().backward()
            if mode == "train":
                assert (type(y._node).__name__ == "BatchNormTrainReLU") == fuse
        results[fuse] = [t.numpy().copy() for t in [y] + list(net.parameters()) + list(net.buffers())] + \
            [p.grad.numpy().copy() for p in net.parameters()]
    for a, b in zip(results[True], results[False]):
        assert np.array_equal(a, b)


def test_hook_on_batch_norm_disables_the_pair():
    gc.manual_seed(0)
    net = nn.Sequential(nn.BatchNorm2d(3), nn.ReLU())
    seen = []
    net[0].register_forward_hook(lambda m, i, out: seen.append(out))
    y = net(gc.tensor(np.random.default_rng(0).standard_normal((2, 3, 4, 4)), dtype="float32"))
    assert type(y._node).__name__ == "Unary" and (seen[0].numpy() < 0).any()


def test_sync_batch_norm_is_not_fused():
    net = nn.Sequential(nn.SyncBatchNorm(3), nn.ReLU())
    from gradcore.nn.fusion import fused_pair
    assert fused_pair(net[0], net[1]) is None


@pytest.mark.cuda
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_cuda_matches_cpu(dtype, training):
    def build(device):
        x, w, b, (rm, rv) = inputs(SHAPES["odd_plane"], dtype, device)
        return batch_norm_relu(x, rm, rv, w, b, training=training), {"x": x, "weight": w, "bias": b}

    results = cuda_and_cpu_with_grads(build, dtype)
    assert_cuda_matches_cpu(results["cuda"], results["cpu"], dtype)


@pytest.mark.cuda
def test_cuda_bitwise_equals_unfused():
    for a, b in zip(run(True, SHAPES["seed_enc1"], "float32", True, "cuda"),
                    run(False, SHAPES["seed_enc1"], "float32", True, "cuda")):
        assert np.array_equal(a, b)


def test_unknown_activation():
    x = gc.zeros(2, 3, 4, 4)._data
    stats = gc.zeros(3)._data
    with pytest.raises(ValueError, match="activation"):
        _core.batch_norm_forward_train(x, None, None, None, None, 0.1, 1e-5, "tanh")
    with pytest.raises(ValueError, match="activation"):
        _core.batch_norm_forward_eval(x, stats, stats, None, None, 1e-5, "RELU")


def test_fused_function_checks_its_arguments_as_the_plain_one():
    x = gc.zeros(2, 3, 4, 4)
    for fn in (batch_norm, batch_norm_relu):
        with pytest.raises(ValueError, match="running_mean"):
            fn(x, None, None, training=False)
        with pytest.raises(ValueError, match="momentum"):
            fn(x, None, None, training=True, momentum=None)
    assert_close(batch_norm_relu(x, None, None), np.zeros((2, 3, 4, 4)))
