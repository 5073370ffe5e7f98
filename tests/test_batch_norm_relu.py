"""The fused batch_norm + ReLU (ops/batch_norm.py's batch_norm_relu, the epilogue in csrc/epilogue.h): the same bits as
F.relu(F.batch_norm(...)) for the output, the running statistics and every gradient, in training and evaluation,
float64 gradcheck, nn.Sequential fusing [BatchNorm2d, ReLU] (the seed network's +BN variant), CUDA (emulated device)
against the CPU, and bad input."""
import numpy as np
import pytest

import gradcore as gc
from gradcore import _core, nn
from gradcore.functional import batch_norm, relu
from gradcore.ops.batch_norm import batch_norm_relu
from tolerance import DTYPES, assert_close, assert_cuda_matches_cpu, cuda_and_cpu_with_grads

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
