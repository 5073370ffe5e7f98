"""The fused convolution + ReLU (ops/conv_relu.py, the epilogue in conv2d.h): forward against the numpy reference,
the same bits as F.relu(F.conv2d(...)) / F.relu(F.conv_transpose2d(...)) for the output and every gradient on each
kernel path, float64 gradcheck, the same bits at 1, 2 and 3 threads, nn.Sequential fusing [conv, ReLU] pairs only
when no hook is there to see them, CUDA (emulated device) against the CPU, and bad input."""
import textwrap

import numpy as np
import pytest

import gradcore as gc
from gradcore import _core, nn
from gradcore.functional import conv2d, conv_transpose2d, relu
from gradcore.ops.conv_relu import Conv2dReLU, ConvTranspose2dReLU, conv2d_relu, conv_transpose2d_relu
from isolated import outputs_for_thread_counts
from reference import conv2d as ref
from tolerance import DTYPES, assert_close, assert_cuda_matches_cpu, cuda_and_cpu_with_grads, forward_tol

# name: (N, C_in, H, W, C_out, (kH, kW), stride, padding, dilation, groups); the comment says which CPU kernel runs
CONV = {
    "gemm_strips_into_y": (3, 4, 9, 10, 6, (3, 3), 1, 1, 1, 1),  # P >= nr: C stored straight into y
    "gemm_scratch_small_output": (3, 3, 5, 5, 5, (3, 3), 2, 0, 1, 1),  # P < nr: C through a scratch copy
    "gemm_groups_stride2_same": (2, 4, 9, 8, 6, (3, 3), 2, "same", 1, 2),
    "seed_enc2_k288": (2, 32, 14, 14, 64, (3, 3), 2, "same", 1, 1),  # K > kKc: two blocks of the reduction
    "winograd_3x3_stride1": (1, 32, 9, 9, 64, (3, 3), 1, 1, 1, 1),  # stride-1 3x3, many channels
    "depthwise": (2, 3, 7, 7, 3, (3, 3), 2, 1, 1, 3),
    "pointwise": (2, 5, 6, 7, 4, (1, 1), 1, 0, 1, 1),  # stride 1, K = 5: the few-channel kernel
    "few_channels_k9": (3, 1, 11, 13, 10, (3, 3), 1, 1, 1, 1),  # the few-channel kernel's tiles and edges
}
# conv_transpose2d: (N, C_in, H, W, C_out, (kH, kW), stride, padding, output_padding, dilation, groups)
CONVT = {
    "gemm_col2im_few_channels": (2, 6, 5, 4, 3, (3, 3), 2, 1, 1, 1, 1),  # < 16 output channels: GEMM + col2im
    "stride_decomposed_seed_dec2": (2, 64, 7, 7, 32, (3, 3), 2, "same", 0, 1, 1),
    "stride_decomposed_stride3_dilation2": (1, 16, 4, 5, 16, (3, 2), 3, (2, 1), 1, 2, 1),
    "winograd_3x3_stride1": (1, 32, 9, 9, 32, (3, 3), 1, 1, 0, 1, 1),
    "depthwise": (2, 3, 5, 6, 3, (3, 3), 2, 1, 0, 1, 3),
    "pointwise_groups2": (2, 4, 5, 5, 6, (1, 1), 1, 0, 0, 1, 2),
}
SMALL_CONV = ["gemm_strips_into_y", "gemm_scratch_small_output", "gemm_groups_stride2_same", "depthwise", "pointwise",
              "few_channels_k9"]
SMALL_CONVT = ["gemm_col2im_few_channels", "stride_decomposed_stride3_dilation2", "depthwise", "pointwise_groups2"]


def make_conv(case, dtype, device="cpu", seed=0):
    n, c_in, h, w, c_out, kernel, _, _, _, groups = case
    rng = np.random.default_rng(seed)
    arrays = (rng.standard_normal((n, c_in, h, w)),
              rng.standard_normal((c_out, c_in // groups) + kernel) / np.sqrt(c_in // groups * kernel[0] * kernel[1]),
              rng.standard_normal(c_out) * 0.3)
    return [gc.tensor(a, dtype=dtype, device=device, requires_grad=True) for a in arrays]


def make_convt(case, dtype, device="cpu", seed=0):
    n, c_in, h, w, c_out, kernel, *_, groups = case
    rng = np.random.default_rng(seed)
    arrays = (rng.standard_normal((n, c_in, h, w)),
              rng.standard_normal((c_in, c_out // groups) + kernel) / np.sqrt(c_in // groups * kernel[0] * kernel[1]),
              rng.standard_normal(c_out) * 0.3)
    return [gc.tensor(a, dtype=dtype, device=device, requires_grad=True) for a in arrays]


def conv_options(case):
    _, _, _, _, _, _, stride, padding, dilation, groups = case
    return dict(stride=stride, padding=padding, dilation=dilation, groups=groups)


def convt_options(case):
    _, _, _, _, _, _, stride, padding, output_padding, dilation, groups = case
    return dict(stride=stride, padding=padding, output_padding=output_padding, dilation=dilation, groups=groups)


def fused_and_unfused(kind, case, dtype, device="cpu", seed=0):
    """{"fused": ..., "unfused": ...}, each [y, x.grad, weight.grad, bias.grad] after backward of one cotangent."""
    results = {}
    for mode in ("fused", "unfused"):
        if kind == "conv":
            x, w, b = make_conv(case, dtype, device, seed)
            opts = conv_options(case)
            y = conv2d_relu(x, w, b, **opts) if mode == "fused" else relu(conv2d(x, w, b, **opts))
        else:
            x, w, b = make_convt(case, dtype, device, seed)
            opts = convt_options(case)
            y = conv_transpose2d_relu(x, w, b, **opts) if mode == "fused" else relu(conv_transpose2d(x, w, b, **opts))
        g = np.random.default_rng(seed + 1).standard_normal(y.shape)
        y.backward(gc.tensor(g, dtype=dtype, device=device))
        results[mode] = [t.numpy().copy() for t in (y, x.grad, w.grad, b.grad)]
    return results


def assert_bitwise(results):
    for name, a, b in zip(("y", "x.grad", "weight.grad", "bias.grad"), results["fused"], results["unfused"]):
        assert a.dtype == b.dtype and a.shape == b.shape, name
        assert np.array_equal(a.view(np.uint8), b.view(np.uint8)), f"{name}: fused and unfused bits differ"


# ---- forward against the reference ---------------------------------------------------------------------------------
def reference_pads(case):
    _, _, h, w, _, kernel, stride, padding, dilation, _ = case
    s = (stride, stride) if isinstance(stride, int) else stride
    d = (dilation, dilation) if isinstance(dilation, int) else dilation
    if padding == "same":
        return s, ref.same_padding(h, kernel[0], s[0], d[0]) + ref.same_padding(w, kernel[1], s[1], d[1]), d
    p = (padding, padding) if isinstance(padding, int) else padding
    return s, (p[0], p[0], p[1], p[1]), d


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(CONV))
def test_conv2d_relu_matches_reference(name, dtype):
    case = CONV[name]
    x, w, b = make_conv(case, dtype)
    stride, pads, dilation = reference_pads(case)
    expected = np.maximum(ref.conv2d(x.numpy(), w.numpy(), b.numpy(), stride, pads, dilation, case[-1]), 0)
    y = conv2d_relu(x, w, b, **conv_options(case))
    assert_close(y, expected, name=name, **forward_tol(dtype))
    assert (y.numpy() >= 0).all() and (y.numpy() == 0).any()  # the ReLU did cut something


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(CONVT))
def test_conv_transpose2d_relu_matches_reference(name, dtype):
    case = CONVT[name]
    x, w, b = make_convt(case, dtype)
    plain = conv_transpose2d(x, w, b, **convt_options(case)).numpy().astype(np.float64)
    y = conv_transpose2d_relu(x, w, b, **convt_options(case))
    # the unfused result is checked against numpy in test_conv_transpose2d.py; here the ReLU on top of it
    assert_close(y, np.maximum(plain, 0), name=name, atol=0, rtol=0)
    if case[7] != "same":
        n, c_in, h, wd, c_out, kernel, stride, padding, output_padding, dilation, groups = case
        s, p, op, d = [(v, v) if isinstance(v, int) else v for v in (stride, padding, output_padding, dilation)]
        expected = ref.conv_transpose2d(x.numpy(), w.numpy(), b.numpy(), s, (p[0], p[0], p[1], p[1]), op, d, groups)
        assert_close(y, np.maximum(expected, 0), name=name, **forward_tol(dtype))


# ---- the same bits as the unfused pair --------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(CONV))
def test_conv2d_relu_bitwise_equals_unfused(name, dtype):
    assert_bitwise(fused_and_unfused("conv", CONV[name], dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(CONVT))
def test_conv_transpose2d_relu_bitwise_equals_unfused(name, dtype):
    assert_bitwise(fused_and_unfused("convt", CONVT[name], dtype))


def test_large_bias_gradient_sums_over_several_chunks_bitwise():
    """N H W above the sum's chunk (16384 elements per partial): the fused bias gradient adds the chunks' partials
    in _core.sum's order."""
    assert_bitwise(fused_and_unfused("conv", (40, 2, 30, 30, 3, (3, 3), 1, 1, 1, 1), "float32"))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 9, 7, 7), (2, 7, 5, 3), (25, 32, 28, 28), (23, 5, 27, 29), (1, 4, 2, 2)],
                         ids=lambda s: "x".join(map(str, s)))
def test_backward_mask_and_bias_sum_have_the_unfused_bits(shape, dtype):
    """_core.conv_relu_backward(g, y) is _core.binary(g, y, relu_backward) and _core.sum of it over (N, H, W), bit for
    bit: channels side by side and one at a time (C not a multiple of four), planes not a multiple of eight long,
    and planes cut by the sum's 16384-element chunks (23 x 27 x 29) at offsets inside a group of eight; y holds
    zeros, -0, NaN and inf, g holds large and tiny values (the double sums' order shows)."""
    rng = np.random.default_rng(5)
    g = rng.standard_normal(shape) * np.exp(rng.uniform(-20, 20, shape))
    y = np.maximum(rng.standard_normal(shape), 0)
    y.flat[::7] = -0.0
    y.flat[3::11] = np.nan
    y.flat[5::13] = np.inf
    ga, ya = gc.tensor(g, dtype=dtype)._data, gc.tensor(y, dtype=dtype)._data
    gm, db = _core.conv_relu_backward(ga, ya, True)
    masked = _core.binary(ga, ya, _core.BinaryOp.relu_backward)
    assert np.array_equal(gm.numpy(), masked.numpy())
    assert np.array_equal(db.numpy(), _core.sum(masked, [0, 2, 3]).numpy())
    assert _core.conv_relu_backward(ga, ya, False)[1] is None


def test_nan_and_negative_zero_as_the_unfused_pair():
    """relu keeps NaN (PyTorch's rule) and turns -0 into +0; backward lets the gradient through a NaN output."""
    x = gc.tensor(np.array([[[[np.nan, -1.0, 2.0, 0.0]]]]), requires_grad=True)
    w = gc.tensor(np.ones((1, 1, 1, 1)), requires_grad=True)
    b = gc.tensor(np.array([-0.0]), requires_grad=True)
    results = {}
    for mode, fn in (("fused", lambda: conv2d_relu(x, w, b)), ("unfused", lambda: relu(conv2d(x, w, b)))):
        for t in (x, w, b):
            t.grad = None
        y = fn()
        y.backward(gc.tensor(np.array([[[[1.0, 2.0, 3.0, 4.0]]]])))
        results[mode] = [t.numpy().copy() for t in (y, x.grad, w.grad, b.grad)]
    assert_bitwise(results)
    assert np.isnan(results["fused"][0][0, 0, 0, 0]) and not np.signbit(results["fused"][0][0, 0, 0, 3])


# ---- float64 finite differences -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", SMALL_CONV)
def test_conv2d_relu_gradcheck(name):
    case = CONV[name]
    x, w, b = make_conv(case, "float64")
    assert gc.gradcheck(lambda a, c, d: conv2d_relu(a, c, d, **conv_options(case)), [x, w, b])


@pytest.mark.parametrize("name", SMALL_CONVT)
def test_conv_transpose2d_relu_gradcheck(name):
    case = CONVT[name]
    x, w, b = make_convt(case, "float64")
    assert gc.gradcheck(lambda a, c, d: conv_transpose2d_relu(a, c, d, **convt_options(case)), [x, w, b])


def test_gradcheck_without_bias_and_frozen_weight():
    case = CONV["gemm_groups_stride2_same"]
    x, w, _ = make_conv(case, "float64")
    w.requires_grad_(False)
    assert gc.gradcheck(lambda a: conv2d_relu(a, w, None, **conv_options(case)), [x])


# ---- threads ----------------------------------------------------------------------------------------------------------
THREAD_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import gradcore as gc
    from gradcore.examples.autoencoder import build
    encoder, decoder = build(seed=0)
    x = gc.tensor(np.random.default_rng(0).random((25, 1, 28, 28)), dtype="float32")
    y = decoder(encoder(x))
    ((y - x) * (y - x)).sum().backward()
    params = list(encoder.parameters()) + list(decoder.parameters())
    np.save(sys.argv[1], np.concatenate([y.numpy().ravel()] + [p.grad.numpy().ravel() for p in params]))
""")


def test_seed_network_bitwise_identical_for_any_thread_count(tmp_path):
    """The seed autoencoder's [conv, ReLU] pairs run fused (nn.Sequential): output and every parameter gradient."""
    outputs = outputs_for_thread_counts(THREAD_SCRIPT, tmp_path)
    assert np.array_equal(outputs[0], outputs[1]) and np.array_equal(outputs[0], outputs[2])


# ---- nn.Sequential fusion ---------------------------------------------------------------------------------------------
def seed_like():
    gc.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3, stride=2, padding="same"), nn.ReLU(),
                         nn.ConvTranspose2d(8, 16, 3, stride=2, padding="same"), nn.ReLU(),
                         nn.Conv2d(16, 4, 3, padding=1), nn.Sigmoid())


def step(net, x):
    for p in net.parameters():
        p.grad = None
    y = net(x)
    (y * y).sum().backward()
    return y, [y.numpy().copy()] + [p.grad.numpy().copy() for p in net.parameters()]


def node_types(y):
    """The Function classes on the tape from y back to the leaves (one path: the nets here are chains)."""
    types, node = [], y._node
    while node is not None:
        types.append(type(node).__name__)
        parents = [t._node for t in node.inputs if t is not None and getattr(t, "_node", None) is not None] \
            if hasattr(node, "inputs") else []
        node = parents[0] if parents else None
    return types


X = np.random.default_rng(5).random((3, 1, 12, 12))


def test_sequential_fuses_conv_relu_pairs_with_the_same_bits():
    net = seed_like()
    y_fused, fused = step(net, gc.tensor(X, dtype="float32"))
    net.fuse_activations = False
    y_plain, plain = step(net, gc.tensor(X, dtype="float32"))
    for a, b in zip(fused, plain):
        assert np.array_equal(a, b)
    assert {"Conv2dReLU", "ConvTranspose2dReLU"} <= set(node_types(y_fused))
    assert not {"Conv2dReLU", "ConvTranspose2dReLU"} & set(node_types(y_plain))


@pytest.mark.parametrize("hooked", [0, 1, 2, 3])
def test_a_forward_hook_on_either_module_disables_that_pair(hooked):
    net = seed_like()
    seen = []
    handle = net[hooked].register_forward_hook(lambda m, inputs, out: seen.append(out.numpy().copy()))
    y, hooked_run = step(net, gc.tensor(X, dtype="float32"))
    types = node_types(y)
    pair_fused = "Conv2dReLU" if hooked >= 2 else "ConvTranspose2dReLU"  # the other pair still fuses
    pair_split = "ConvTranspose2dReLU" if hooked >= 2 else "Conv2dReLU"
    assert pair_fused in types and pair_split not in types
    assert len(seen) == 1
    if hooked % 2 == 0:  # the conv's hook sees the conv's own output, before the ReLU
        assert (seen[0] < 0).any()
    handle.remove()
    net.fuse_activations = False
    _, plain = step(net, gc.tensor(X, dtype="float32"))
    for a, b in zip(hooked_run, plain):
        assert np.array_equal(a, b)


def test_health_monitor_sees_every_layer():
    """gradcore.diagnostics hooks each layer: with it attached, nothing fuses and each ReLU's output is seen."""
    from gradcore.diagnostics import HealthMonitor

    net = seed_like()
    monitor = HealthMonitor(net)
    y = net(gc.tensor(X, dtype="float32"))
    assert not {"Conv2dReLU", "ConvTranspose2dReLU"} & set(node_types(y))
    monitor.remove()
    assert "Conv2dReLU" in node_types(net(gc.tensor(X, dtype="float32")))


def test_subclasses_and_other_activations_are_not_fused():
    class MyReLU(nn.ReLU):
        def forward(self, x):
            return relu(x) * 2

    gc.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), MyReLU(), nn.Conv2d(4, 4, 3), nn.LeakyReLU())
    x = gc.tensor(X, dtype="float32")
    y = net(x)
    assert "Conv2dReLU" not in node_types(y)
    assert np.array_equal(y.numpy(), net[3](net[2](net[1](net[0](x)))).numpy())


def test_fused_node_in_eval_and_no_grad():
    net = seed_like()
    net.eval()
    with gc.no_grad():
        y = net(gc.tensor(X, dtype="float32"))
    net.fuse_activations = False
    with gc.no_grad():
        assert np.array_equal(y.numpy(), net(gc.tensor(X, dtype="float32")).numpy())


# ---- CUDA (the emulated device runs these without a GPU) ------------------------------------------------------------
@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind,name", [("conv", n) for n in CONV] + [("convt", n) for n in CONVT])
def test_cuda_matches_cpu(kind, name, dtype):
    case = (CONV if kind == "conv" else CONVT)[name]

    def build(device):
        if kind == "conv":
            x, w, b = make_conv(case, dtype, device)
            return conv2d_relu(x, w, b, **conv_options(case)), {"x": x, "weight": w, "bias": b}
        x, w, b = make_convt(case, dtype, device)
        return conv_transpose2d_relu(x, w, b, **convt_options(case)), {"x": x, "weight": w, "bias": b}

    results = cuda_and_cpu_with_grads(build, dtype)
    assert_cuda_matches_cpu(results["cuda"], results["cpu"], dtype)


@pytest.mark.cuda
@pytest.mark.parametrize("kind,name", [("conv", "gemm_groups_stride2_same"), ("convt", "gemm_col2im_few_channels"),
                                       ("convt", "stride_decomposed_seed_dec2")])
def test_cuda_fused_bitwise_equals_unfused(kind, name):
    assert_bitwise(fused_and_unfused(kind, (CONV if kind == "conv" else CONVT)[name], "float32", device="cuda"))


@pytest.mark.cuda
def test_cuda_sequential_fuses():
    net = seed_like().cuda()
    y, fused = step(net, gc.tensor(X, dtype="float32", device="cuda"))
    assert "Conv2dReLU" in node_types(y)
    net.fuse_activations = False
    _, plain = step(net, gc.tensor(X, dtype="float32", device="cuda"))
    for a, b in zip(fused, plain):
        assert np.array_equal(a, b)


# ---- bad input ------------------------------------------------------------------------------------------------------
def test_unknown_activation():
    x, w = gc.zeros(1, 1, 3, 3), gc.zeros(1, 1, 3, 3)
    with pytest.raises(ValueError, match="activation"):
        _core.conv2d_forward(x._data, w._data, None, activation="gelu")
    with pytest.raises(ValueError, match="activation"):
        _core.conv_transpose2d_forward(x._data, w._data, None, (5, 5), activation="sigmoid")


def test_fused_functions_check_their_arguments_as_the_plain_ones():
    x, w = gc.zeros(1, 4, 5, 5), gc.zeros(3, 2, 3, 3)
    for fn in (conv2d, conv2d_relu):
        with pytest.raises(ValueError, match="weight"):
            fn(x, w)  # 4 input channels, weight expects 2
        with pytest.raises(TypeError, match="stride"):
            fn(x, gc.zeros(3, 4, 3, 3), stride="2")
    for fn in (conv_transpose2d, conv_transpose2d_relu):
        with pytest.raises(ValueError, match="output_padding"):
            fn(x, gc.zeros(4, 2, 3, 3), stride=2, output_padding=2)


def test_backward_mask_checks_its_arrays():
    g = gc.zeros(2, 3, 4, 4)._data
    with pytest.raises(ValueError, match="y"):
        _core.conv_relu_backward(g, gc.zeros(2, 3, 4, 5)._data, True)
    with pytest.raises(TypeError, match="y"):
        _core.conv_relu_backward(g, gc.zeros(2, 3, 4, 4, dtype="float64")._data, True)
    with pytest.raises(ValueError, match="grad_output"):
        _core.conv_relu_backward(gc.zeros(3, 4, 4)._data, gc.zeros(3, 4, 4)._data, False)


def test_empty_batch():
    x, w, b = gc.zeros(0, 2, 5, 5, requires_grad=True), gc.zeros(3, 2, 3, 3, requires_grad=True), \
        gc.zeros(3, requires_grad=True)
    y = conv2d_relu(x, w, b, padding=1)
    assert y.shape == (0, 3, 5, 5)
    y.sum().backward()
    assert np.array_equal(b.grad.numpy(), np.zeros(3)) and np.array_equal(w.grad.numpy(), np.zeros((3, 2, 3, 3)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv_relu_backward_in_place_writes_the_same_bits_over_grad_output(dtype):
    # What the autograd engine asks for when it alone holds the gradient (autograd._propagate): the mask written
    # over grad_output, whose version counter records the write; the result and the bias sum are the copy's bits.
    rng = np.random.default_rng(5)
    g = rng.standard_normal((3, 5, 9, 7)).astype(dtype)
    y = np.maximum(rng.standard_normal(g.shape), 0).astype(dtype)
    expected_gm, expected_db = _core.conv_relu_backward(_core.from_numpy(g.copy()), _core.from_numpy(y), True)
    target = _core.from_numpy(g.copy())
    version = target._version
    gm, db = _core.conv_relu_backward(target, _core.from_numpy(y), True, in_place=True)
    assert gm.data_ptr == target.data_ptr and target._version == version + 1
    assert np.array_equal(target.numpy(), expected_gm.numpy()) and np.array_equal(db.numpy(), expected_db.numpy())
    assert np.array_equal(target.numpy(), np.where(y <= 0, 0, g))


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
def test_cuda_conv_relu_backward_in_place_writes_the_same_bits_over_grad_output(dtype):
    # The CUDA kernel reads each element of grad_output before it writes gm there, as the CPU one does.
    rng = np.random.default_rng(6)
    g = rng.standard_normal((3, 5, 9, 7)).astype(dtype)
    y = np.maximum(rng.standard_normal(g.shape), 0).astype(dtype)
    on_cuda = lambda a: _core.from_numpy(a).to("cuda")  # noqa: E731
    expected_gm, expected_db = _core.conv_relu_backward(on_cuda(g.copy()), on_cuda(y), True)
    target = on_cuda(g.copy())
    gm, db = _core.conv_relu_backward(target, on_cuda(y), True, in_place=True)
    assert gm.data_ptr == target.data_ptr
    assert np.array_equal(target.numpy(), expected_gm.numpy()) and np.array_equal(db.numpy(), expected_db.numpy())
    assert np.array_equal(target.numpy(), np.where(y <= 0, 0, g))
