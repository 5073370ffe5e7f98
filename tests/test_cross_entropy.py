"""cross_entropy and nll_loss: numpy references over shapes ((C), (N, C), (N, C, d1, d2)), reductions, class
weights, ignore_index, label smoothing and probability targets; PyTorch's normaliser for 'mean' (the sum of the
target classes' weights; NaN when every target is ignored); stability for huge logits; float64 gradcheck of the
fused backward (and of the probability target); bad class indices; CUDA against CPU; the modules; torch."""
import numpy as np
import pytest

import gradcore
import gradcore.functional as F
from gradcore import nn
from reference import cross_entropy as ref
from reference import softmax as ref_softmax
from tolerance import DEVICES, DTYPES, assert_close, assert_cuda_matches_cpu, forward_tol

REDUCTIONS = ["mean", "sum", "none"]
SHAPES = [(7,), (5, 4), (3, 4, 2, 3), (2, 33, 3)]  # (C), (N, C), (N, C, d1, d2), (N, C, d1)


def _class_axis(shape):
    return 0 if len(shape) == 1 else 1


def _labels_shape(shape):
    return tuple(d for i, d in enumerate(shape) if i != _class_axis(shape))


def _data(shape, seed=0, ignore=False):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 2
    C = shape[_class_axis(shape)]
    t = rng.integers(0, C, _labels_shape(shape))
    if ignore and t.size > 1:
        t.flat[::3] = -100
    w = rng.uniform(0.2, 2.0, C)
    probs = ref_softmax.softmax(rng.standard_normal(shape), _class_axis(shape))
    return x, t, w, probs


def _tensors(x, t, w, dtype, device, requires_grad=False):
    X = gradcore.tensor(x, dtype=dtype, device=device, requires_grad=requires_grad)
    T = gradcore.tensor(np.asarray(t), dtype="int64", device=device)
    W = None if w is None else gradcore.tensor(w, dtype=dtype, device=device)
    return X, T, W


def _sid(shape):
    return "x".join(map(str, shape))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("shape", SHAPES, ids=_sid)
def test_class_index_targets_match_numpy(shape, smoothing, weighted, reduction, dtype, device):
    x, t, w, _ = _data(shape, 1, ignore=True)
    w = w if weighted else None
    X, T, W = _tensors(x, t, w, dtype, device)
    out = F.cross_entropy(X, T, W, reduction=reduction, label_smoothing=smoothing)
    expected = ref.cross_entropy(X.numpy(), t, w, -100, reduction, smoothing)
    assert out.shape == np.shape(expected) and out.dtype == dtype
    assert_close(out, expected, **forward_tol(dtype))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("shape", SHAPES, ids=_sid)
def test_nll_loss_matches_numpy(shape, weighted, reduction, dtype, device):
    x, t, w, _ = _data(shape, 2, ignore=True)
    w = w if weighted else None
    logp = ref_softmax.log_softmax(x, _class_axis(shape))
    X, T, W = _tensors(logp, t, w, dtype, device)
    out = F.nll_loss(X, T, W, reduction=reduction)
    assert_close(out, ref.nll_loss(X.numpy(), t, w, -100, reduction), **forward_tol(dtype))
    # log_softmax then nll_loss is cross_entropy
    X2 = gradcore.tensor(x, dtype=dtype, device=device)
    assert_close(F.nll_loss(F.log_softmax(X2, _class_axis(shape)), T, W, reduction=reduction),
                 F.cross_entropy(X2, T, W, reduction=reduction).numpy(), **forward_tol(dtype))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.3])
@pytest.mark.parametrize("shape", SHAPES, ids=_sid)
def test_probability_targets_match_numpy(shape, smoothing, reduction, dtype, device):
    x, _, w, probs = _data(shape, 3)
    X = gradcore.tensor(x, dtype=dtype, device=device)
    P = gradcore.tensor(probs, dtype=dtype, device=device)
    W = gradcore.tensor(w, dtype=dtype, device=device)
    out = F.cross_entropy(X, P, W, reduction=reduction, label_smoothing=smoothing)
    assert_close(out, ref.cross_entropy(X.numpy(), P.numpy(), w, -100, reduction, smoothing), **forward_tol(dtype))


@pytest.mark.parametrize("device", DEVICES)
def test_mean_divides_by_the_weights_of_the_targets_not_ignored(device):
    x = np.zeros((4, 3))  # every log-probability is -log 3
    X, T, W = _tensors(x, [0, 2, -100, 2], [1.0, 5.0, 3.0], "float64", device)
    out = F.cross_entropy(X, T, W).item()
    assert out == pytest.approx((1 + 3 + 3) * np.log(3) / (1 + 3 + 3))
    _, T2, _ = _tensors(x, [1, 1, 1, -7], None, "float64", device)
    assert F.cross_entropy(X, T2, ignore_index=-7).item() == pytest.approx(np.log(3))


@pytest.mark.parametrize("device", DEVICES)
def test_all_targets_ignored_gives_nan_for_mean_and_zero_for_sum(device):
    X, T, _ = _tensors(np.ones((3, 4)), [-100, -100, -100], None, "float32", device)
    X.requires_grad_()
    mean = F.cross_entropy(X, T)
    assert np.isnan(mean.item())
    assert F.cross_entropy(X, T, reduction="sum").item() == 0.0
    F.cross_entropy(X, T, reduction="sum").backward()
    assert np.array_equal(X.grad.numpy(), np.zeros((3, 4)))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_stable_for_huge_logits(dtype, device):
    x = np.array([[1e4, 0.0, -1e4], [-1e4, 1e4, 1e4], [500.0, 501.0, 499.0]])
    X, T, _ = _tensors(x, [0, 0, 2], None, dtype, device, requires_grad=True)
    out = F.cross_entropy(X, T, reduction="none")
    assert np.all(np.isfinite(out.numpy()))
    assert_close(out, ref.cross_entropy(x.astype(dtype), [0, 0, 2], reduction="none"), **forward_tol(dtype))
    out.sum().backward()
    expected = ref_softmax.softmax(x, 1) - np.eye(3)[[0, 0, 2]]
    assert_close(X.grad, expected, **forward_tol(dtype))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(5,), (4, 3), (2, 3, 2, 2)], ids=_sid)
def test_gradcheck_class_indices(shape, reduction, device):
    x, t, w, _ = _data(shape, 4, ignore=True)
    X, T, W = _tensors(x, t, w, "float64", device, requires_grad=True)
    assert gradcore.gradcheck(lambda a: F.cross_entropy(a, T, W, reduction=reduction, label_smoothing=0.1), [X])
    assert gradcore.gradcheck(lambda a: F.cross_entropy(a, T, reduction=reduction), [X])
    assert gradcore.gradcheck(lambda a: F.nll_loss(a, T, W, reduction=reduction), [X])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gradcheck_probability_targets_input_and_target(reduction, device):
    x, _, w, probs = _data((3, 4, 2), 5)
    X = gradcore.tensor(x, dtype="float64", device=device, requires_grad=True)
    P = gradcore.tensor(probs, dtype="float64", device=device, requires_grad=True)
    W = gradcore.tensor(w, dtype="float64", device=device)
    assert gradcore.gradcheck(lambda a, q: F.cross_entropy(a, q, W, reduction=reduction, label_smoothing=0.25),
                              [X, P])


def test_fused_backward_is_softmax_minus_one_hot_over_n():
    x, t, _, _ = _data((6, 5), 6)
    X, T, _ = _tensors(x, t, None, "float64", "cpu", requires_grad=True)
    F.cross_entropy(X, T).backward()
    assert_close(X.grad, (ref_softmax.softmax(x, 1) - np.eye(5)[t]) / 6, atol=1e-15, rtol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
def test_bad_class_indices_raise_naming_position_and_value(device):
    X, T, _ = _tensors(np.zeros((3, 4)), [0, 4, 1], None, "float32", device)
    with pytest.raises(ValueError, match=r"target: class index 4 at position \(1,\) is out of range for 4 classes"):
        F.cross_entropy(X, T)
    _, T, _ = _tensors(np.zeros((3, 4)), [0, 1, -1], None, "float32", device)
    with pytest.raises(ValueError, match=r"class index -1 at position \(2,\)"):
        F.nll_loss(X, T)
    _, T, _ = _tensors(np.zeros((3, 4)), [0, 1, -1], None, "float32", device)
    assert np.isfinite(F.cross_entropy(X, T, ignore_index=-1).item())


def test_argument_errors():
    X, T, W = _tensors(np.zeros((3, 4)), [0, 1, 2], [1.0, 1.0, 1.0, 1.0], "float32", "cpu")
    with pytest.raises(ValueError, match="target: cross_entropy expected class indices"):
        F.cross_entropy(X, gradcore.tensor([0, 1], dtype="int64"))
    with pytest.raises(ValueError, match="target"):
        F.cross_entropy(X, gradcore.zeros(3))  # float labels of the position shape
    with pytest.raises(ValueError, match="weight: expected one weight per class"):
        F.cross_entropy(X, T, gradcore.ones(3))
    with pytest.raises(TypeError, match="weight"):
        F.cross_entropy(X, T, gradcore.ones(4, dtype="float64"))
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.cross_entropy(X, T, reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(X, T, label_smoothing=1.5)
    with pytest.raises(TypeError, match="ignore_index"):
        F.cross_entropy(X, T, ignore_index=1.5)
    with pytest.raises(ValueError, match="ignore_index"):
        F.cross_entropy(X, gradcore.zeros(3, 4), ignore_index=1)
    with pytest.raises(ValueError, match="weight must not require grad"):
        F.cross_entropy(X, T, gradcore.ones(4, requires_grad=True))
    with pytest.raises(TypeError, match="input: expected a gradcore.Tensor"):
        F.cross_entropy(np.zeros((3, 4)), T)
    with pytest.raises(TypeError, match="target: expected a gradcore.Tensor"):
        F.cross_entropy(X, [0, 1, 2])
    with pytest.raises(ValueError, match="input"):
        F.cross_entropy(gradcore.tensor(1.0), gradcore.tensor(0, dtype="int64"))
    with pytest.raises(TypeError, match="target: expected an int64 tensor, got float32"):
        F.nll_loss(X, gradcore.zeros(3, 4))
    with pytest.raises(ValueError, match=r"target: nll_loss expected class indices \(int64\) of shape \(3,\)"):
        F.nll_loss(X, gradcore.tensor([[0, 1]]))
    with pytest.raises(TypeError, match="target: expected an int64, float32 or float64 tensor, got bool"):
        F.cross_entropy(X, gradcore.zeros(3, dtype="bool"))
    with pytest.raises(TypeError, match="label_smoothing"):
        nn.CrossEntropyLoss(label_smoothing="0.1")


def test_modules():
    x, t, w, _ = _data((4, 5), 7, ignore=True)
    X, T, W = _tensors(x, t, w, "float32", "cpu")
    assert np.array_equal(nn.CrossEntropyLoss()(X, T).numpy(), F.cross_entropy(X, T).numpy())
    module = nn.CrossEntropyLoss(weight=W, reduction="sum", label_smoothing=0.1)
    assert np.array_equal(module(X, T).numpy(),
                          F.cross_entropy(X, T, W, reduction="sum", label_smoothing=0.1).numpy())
    assert "weight" in dict(module.named_buffers())
    logp = F.log_softmax(X, 1)
    assert np.array_equal(nn.NLLLoss(W)(logp, T).numpy(), F.nll_loss(logp, T, W).numpy())
    assert repr(nn.CrossEntropyLoss()) == "CrossEntropyLoss(reduction='mean', label_smoothing=0.0)"


def test_bitwise_reproducible_across_thread_counts():
    x, t, _, _ = _data((512, 37), 8)
    before = gradcore.get_num_threads()
    seen = []
    try:
        for threads in (1, 2, 3):
            gradcore.set_num_threads(threads)
            X, T, _ = _tensors(x, t, None, "float32", "cpu", requires_grad=True)
            loss = F.cross_entropy(X, T, label_smoothing=0.1)
            loss.backward()
            seen.append((loss.item(), X.grad.numpy().copy()))
    finally:
        gradcore.set_num_threads(before)
    for value, grad in seen[1:]:
        assert value == seen[0][0] and np.array_equal(grad, seen[0][1])


def test_matches_torch():
    torch = pytest.importorskip("torch")
    for shape in SHAPES:
        x, t, w, probs = _data(shape, 9, ignore=True)
        for reduction in REDUCTIONS:
            for smoothing in (0.0, 0.15):
                tx = torch.tensor(x, requires_grad=True)
                want = torch.nn.functional.cross_entropy(tx, torch.tensor(t), torch.tensor(w), reduction=reduction,
                                                         label_smoothing=smoothing)
                want.sum().backward()
                X, T, W = _tensors(x, t, w, "float64", "cpu", requires_grad=True)
                got = F.cross_entropy(X, T, W, reduction=reduction, label_smoothing=smoothing)
                got.sum().backward()
                assert_close(got, want.detach().numpy(), 1e-12, 1e-10)
                assert_close(X.grad, tx.grad.numpy(), 1e-12, 1e-10)
                want = torch.nn.functional.cross_entropy(torch.tensor(x), torch.tensor(probs), torch.tensor(w),
                                                         reduction=reduction, label_smoothing=smoothing)
                got = F.cross_entropy(X, gradcore.tensor(probs), W, reduction=reduction, label_smoothing=smoothing)
                assert_close(got, want.numpy(), 1e-12, 1e-10)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ["index-mean", "index-smooth-weighted-none", "spatial-sum", "probs-mean", "nll"])
def test_cuda_matches_cpu(case, dtype):
    shape = (3, 5, 2, 3) if case == "spatial-sum" else (37, 45)
    x, t, w, probs = _data(shape, 10, ignore=True)
    results = {}
    for device in ("cpu", "cuda"):
        X, T, W = _tensors(x, t, w, dtype, device, requires_grad=True)
        if case == "index-mean":
            y = F.cross_entropy(X, T)
        elif case == "index-smooth-weighted-none":
            y = F.cross_entropy(X, T, W, reduction="none", label_smoothing=0.2)
        elif case == "spatial-sum":
            y = F.cross_entropy(X, T, W, reduction="sum")
        elif case == "probs-mean":
            y = F.cross_entropy(X, gradcore.tensor(probs, dtype=dtype, device=device), W)
        else:
            y = F.nll_loss(X, T, W)
        g = np.random.default_rng(11).standard_normal(y.shape)
        y.backward(gradcore.tensor(g, dtype=dtype, device=device))
        results[device] = {"y": y.numpy(), "dx": X.grad.numpy()}
    assert_cuda_matches_cpu(results["cuda"], results["cpu"], dtype, name=case)
