"""conv2d: forward against the numpy reference, float64 gradcheck for x, weight and bias over a sweep of options,
determinism (bitwise, also across thread counts), CUDA against CPU, and bad input."""
import textwrap

import numpy as np
import pytest

import gradcore as gc
from gradcore import _core
from gradcore.functional import conv2d
from gradcore.ops.conv2d import conv2d_padding
from isolated import outputs_for_thread_counts
from reference import conv2d as ref
from tolerance import DEVICES, DTYPES, assert_close, assert_cuda_matches_cpu, cuda_and_cpu_with_grads, forward_tol

# name: (N, C_in, H, W, C_out, (kH, kW), stride, padding, dilation, groups)
SWEEP = {
    "1x1": (2, 3, 5, 6, 4, (1, 1), 1, 0, 1, 1),
    "3x3_pad1": (2, 3, 7, 6, 5, (3, 3), 1, 1, 1, 1),
    "5x5_stride2": (1, 2, 9, 8, 3, (5, 5), 2, 2, 1, 1),
    "2x3_stride3x2_nonsquare": (2, 2, 8, 10, 3, (2, 3), (3, 2), (1, 0), 1, 1),
    "4x1_kernel_batch1": (1, 3, 7, 5, 2, (4, 1), 1, (2, 0), 1, 1),
    "dilation2": (1, 2, 9, 7, 3, (3, 3), 1, 2, 2, 1),
    "stride2x1_dilation1x2": (2, 2, 8, 9, 3, (3, 2), (2, 1), 1, (1, 2), 1),
    "groups2": (2, 4, 6, 5, 6, (3, 3), 1, 1, 1, 2),
    "depthwise_stride2": (2, 3, 7, 7, 3, (3, 3), 2, 1, 1, 3),
    "depthwise_multiplier2": (1, 2, 6, 7, 4, (3, 3), 1, 1, 1, 2),
    "depthwise_dilation2_wide_padding": (1, 3, 6, 7, 3, (3, 2), 1, (3, 1), 2, 3),
    "short_im2col_one_input_channel": (2, 1, 6, 5, 6, (1, 2), 1, (1, 0), 1, 1),
    "short_im2col_groups2": (1, 2, 5, 5, 8, (1, 1), 1, 1, 1, 2),
    "depthwise_same_even_kernel": (2, 2, 5, 6, 2, (2, 4), 1, "same", 1, 2),
    "padding_wider_than_kernel": (1, 2, 4, 5, 2, (2, 2), 1, 3, 1, 1),
    "same_stride1_even_kernel": (1, 2, 6, 5, 3, (2, 4), 1, "same", 1, 1),
    "same_stride2_odd_size": (2, 2, 7, 6, 3, (3, 3), 2, "same", 1, 1),
    "same_stride3_dilation2": (1, 2, 8, 7, 2, (3, 2), 3, "same", 2, 1),
    "valid_stride2": (2, 2, 9, 8, 3, (3, 3), 2, "valid", 1, 1),
    # 16 input channels at stride > 1: the input gradient runs the CPU's stride-decomposed kernel, here with padding
    # wider than the kernel (taps that reach no pixel of a phase) and with stride 3 and dilation 2
    "stride2_wide_padding_16_channels": (1, 16, 4, 5, 2, (3, 3), 2, 4, 1, 1),
    "stride3_dilation2_16_channels": (2, 16, 7, 8, 3, (2, 3), 3, (2, 1), 2, 1),
}
# Larger shapes that cross the CPU GEMM's tile and block edges (K > 256, several row panels and column strips).
LARGE = {
    "k288_p49_stride2": (3, 32, 14, 14, 64, (3, 3), 2, 1, 1, 1),
    "k576_pointwise_like": (2, 64, 9, 11, 20, (3, 3), 1, 1, 1, 1),
    "pointwise_c64": (2, 64, 7, 9, 33, (1, 1), 1, 0, 1, 1),
    "seed_layer1": (5, 1, 28, 28, 32, (3, 3), 2, "same", 1, 1),
    "depthwise_c16": (2, 16, 15, 13, 16, (3, 3), 1, 1, 1, 16),
    "depthwise_stride2_dilation2": (3, 8, 11, 10, 8, (3, 2), 2, (2, 1), 2, 8),
    "batch17_two_images_per_gemm": (17, 8, 5, 6, 12, (3, 3), 1, 1, 1, 1),
    "batch17_pointwise_groups2": (17, 8, 4, 5, 6, (1, 1), 1, 0, 1, 2),
    "weight_grad_in_two_image_blocks": (3, 64, 56, 56, 16, (3, 3), 1, 1, 1, 1),
    "wide_rows_stride2": (2, 3, 37, 40, 8, (3, 3), 2, (1, 2), 1, 1),
    "c_out300_two_blocks_of_gy_rows": (2, 8, 6, 5, 300, (3, 3), 1, 1, 1, 1),
    "wide_rows_same_even_kernel_groups2": (2, 4, 17, 20, 6, (2, 4), 1, "same", 1, 2),
    "wide_rows_dilation2_wide_padding": (2, 4, 20, 24, 6, (3, 3), 1, 3, 2, 1),
    # stride 1 with K = C_in * kH * kW <= 27: the few-channel kernel (cpu/conv2d_few_channels.cpp), over bands of
    # rows, partial channel panels and pixel strips that cross row ends
    "few_channels_seed_dec3_input_grad": (5, 1, 28, 28, 32, (3, 3), 1, 1, 1, 1),
    "few_channels_k27_13_out_odd_width": (2, 3, 19, 37, 13, (3, 3), 1, (1, 2), 1, 1),
    "few_channels_5x5_dilation2x1": (2, 1, 30, 23, 9, (5, 5), 1, (4, 1), (2, 1), 1),
}


def pads_of(case):
    _, _, h, w, _, kernel, stride, padding, dilation, _ = case
    s = (stride, stride) if isinstance(stride, int) else stride
    d = (dilation, dilation) if isinstance(dilation, int) else dilation
    if padding == "same":
        return s, ref.same_padding(h, kernel[0], s[0], d[0]) + ref.same_padding(w, kernel[1], s[1], d[1]), d
    if padding == "valid":
        return s, (0, 0, 0, 0), d
    p = (padding, padding) if isinstance(padding, int) else padding
    return s, (p[0], p[0], p[1], p[1]), d


def make(case, dtype, device="cpu", seed=0, requires_grad=False):
    n, c_in, h, w, c_out, kernel, _, _, _, groups = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c_in, h, w))
    weight = rng.standard_normal((c_out, c_in // groups) + kernel) / np.sqrt(c_in // groups * kernel[0] * kernel[1])
    bias = rng.standard_normal(c_out)
    return [gc.tensor(a, dtype=dtype, device=device, requires_grad=requires_grad) for a in (x, weight, bias)]


def run(case, x, weight, bias):
    _, _, _, _, _, _, stride, padding, dilation, groups = case
    return conv2d(x, weight, bias, stride=stride, padding=padding, dilation=dilation, groups=groups)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(SWEEP) + list(LARGE))
def test_forward_matches_reference(name, dtype):
    case = {**SWEEP, **LARGE}[name]
    x, weight, bias = make(case, dtype)
    stride, pads, dilation = pads_of(case)
    expected = ref.conv2d(x.numpy(), weight.numpy(), bias.numpy(), stride, pads, dilation, case[-1])
    assert_close(run(case, x, weight, bias), expected, name=name, **forward_tol(dtype))


@pytest.mark.parametrize("name", list(SWEEP))
def test_gradients_match_finite_differences(name):
    case = SWEEP[name]
    x, weight, bias = make(case, "float64", requires_grad=True)
    assert gc.gradcheck(lambda a, b, c: run(case, a, b, c), [x, weight, bias])


def test_gradients_without_bias_and_with_frozen_weight():
    case = SWEEP["groups2"]
    x, weight, _ = make(case, "float64")
    x.requires_grad_(True)
    assert gc.gradcheck(lambda a: run(case, a, weight, None), [x])


@pytest.mark.parametrize("name", list(LARGE))
def test_large_gradients_match_reference(name):
    """Shapes too big for finite differences (they cross the CPU GEMM's blocking): full x, weight and bias gradients
    against the numpy gradient formulas."""
    case = LARGE[name]
    x, weight, bias = make(case, "float64", requires_grad=True)
    stride, pads, dilation = pads_of(case)
    y = run(case, x, weight, bias)
    gy = np.random.default_rng(1).standard_normal(y.shape)
    y.backward(gc.tensor(gy, dtype="float64"))
    groups = case[-1]
    expected_x = ref.conv2d_grad_input(gy, weight.numpy(), x.shape[2:], stride, pads, dilation, groups)
    expected_w = ref.conv2d_grad_weight(x.numpy(), gy, weight.shape[2:], stride, pads, dilation, groups)
    assert_close(x.grad, expected_x, atol=1e-10, rtol=1e-9, name="x.grad")
    assert_close(weight.grad, expected_w, atol=1e-9, rtol=1e-9, name="weight.grad")
    assert_close(bias.grad, gy.sum(axis=(0, 2, 3)), atol=1e-9, rtol=1e-9, name="bias.grad")


def test_reference_gradients_agree_with_finite_differences():
    """The numpy gradient formulas used above, checked once against central differences of the numpy forward."""
    case = SWEEP["stride2x1_dilation1x2"]
    x, weight, _ = make(case, "float64")
    stride, pads, dilation = pads_of(case)
    xv, wv = x.numpy().copy(), weight.numpy().copy()
    gy = np.random.default_rng(2).standard_normal(ref.conv2d(xv, wv, None, stride, pads, dilation).shape)
    gx = ref.conv2d_grad_input(gy, wv, xv.shape[2:], stride, pads, dilation)
    gw = ref.conv2d_grad_weight(xv, gy, wv.shape[2:], stride, pads, dilation)
    for array, grad in ((xv, gx), (wv, gw)):
        for flat in np.random.default_rng(3).choice(array.size, size=5, replace=False):
            saved = array.flat[flat]
            values = []
            for delta in (1e-6, -1e-6):
                array.flat[flat] = saved + delta
                values.append(np.sum(ref.conv2d(xv, wv, None, stride, pads, dilation) * gy))
            array.flat[flat] = saved
            assert abs((values[0] - values[1]) / 2e-6 - grad.flat[flat]) < 1e-6


def test_same_padding_puts_the_odd_pixel_bottom_right():
    assert conv2d_padding("same", (7, 6), (3, 4), (2, 1), (1, 1)) == (1, 1, 1, 2)  # totals 2 and 3
    assert conv2d_padding("same", (8, 8), (3, 3), (2, 2), (1, 1)) == (0, 1, 0, 1)  # total 1: all after
    for size, kernel, stride, dilation in [(7, 3, 2, 1), (8, 4, 3, 2), (5, 1, 4, 1), (6, 2, 1, 3), (1, 5, 2, 1)]:
        assert conv2d_padding("same", (size, 1), (kernel, 1), (stride, 1), (dilation, 1))[:2] == \
            ref.same_padding(size, kernel, stride, dilation)
    x, weight, bias = make(SWEEP["same_stride2_odd_size"], "float64")
    assert run(SWEEP["same_stride2_odd_size"], x, weight, bias).shape == (2, 3, 4, 3)  # ceil(7/2), ceil(6/2)


@pytest.mark.parametrize("name", ["3x3_pad1", "depthwise_stride2", "k288_p49_stride2"])
def test_bitwise_deterministic(name):
    case = {**SWEEP, **LARGE}[name]
    results = []
    for _ in range(2):
        x, weight, bias = make(case, "float32", requires_grad=True)
        y = run(case, x, weight, bias)
        y.backward(gc.tensor(np.random.default_rng(3).standard_normal(y.shape), dtype="float32"))
        results.append([t.numpy().copy() for t in (y, x.grad, weight.grad, bias.grad)])
    for a, b in zip(*results):
        assert np.array_equal(a, b)


THREAD_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import gradcore as gc
    rng = np.random.default_rng(0)
    x = gc.tensor(rng.standard_normal((25, 32, 14, 14)), requires_grad=True)
    w = gc.tensor(rng.standard_normal((64, 32, 3, 3)), requires_grad=True)
    y = gc.functional.conv2d(x, w, stride=2, padding="same")
    y.backward(gc.tensor(rng.standard_normal(y.shape)))
    np.save(sys.argv[1], np.concatenate([y.numpy().ravel(), x.grad.numpy().ravel(), w.grad.numpy().ravel()]))
""")


def test_bitwise_identical_for_any_thread_count(tmp_path):
    outputs = outputs_for_thread_counts(THREAD_SCRIPT, tmp_path)
    assert np.array_equal(outputs[0], outputs[1]) and np.array_equal(outputs[0], outputs[2])


FEW_CHANNELS_THREAD_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import gradcore as gc
    rng = np.random.default_rng(0)
    x = gc.tensor(rng.standard_normal((25, 1, 28, 28)), dtype="float32", requires_grad=True)
    w = gc.tensor(rng.standard_normal((32, 1, 3, 3)), dtype="float32", requires_grad=True)
    b = gc.tensor(rng.standard_normal(32), dtype="float32")
    y = gc.functional.conv2d(x, w, b, padding=1)
    y.backward(gc.tensor(rng.standard_normal(y.shape), dtype="float32"))
    # conv_transpose2d 32 -> 1 (the seed decoder's last layer): its input gradient is the conv2d 1 -> 32 above
    z = gc.tensor(rng.standard_normal((25, 32, 28, 28)), dtype="float32", requires_grad=True)
    u = gc.functional.conv_transpose2d(z, w, padding=1)
    u.backward(gc.tensor(rng.standard_normal(u.shape), dtype="float32"))
    np.save(sys.argv[1], np.concatenate([a.numpy().ravel() for a in (y, x.grad, w.grad, z.grad)]))
""")


def test_few_channel_kernel_bitwise_identical_for_any_thread_count(tmp_path):
    outputs = outputs_for_thread_counts(FEW_CHANNELS_THREAD_SCRIPT, tmp_path)
    assert np.array_equal(outputs[0], outputs[1]) and np.array_equal(outputs[0], outputs[2])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ["none", "relu"])
def test_few_channel_kernel_has_the_gemm_bits(dtype, activation):
    """The few-channel kernel (groups 1, stride 1, K <= 27) and the im2col GEMM sum the same products in the same
    order: a groups=2 convolution (the GEMM, one input channel per group) gives, per group, the bits of the groups=1
    convolution of that group's channel (the few-channel kernel)."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 2, 13, 21))
    w = rng.standard_normal((22, 1, 3, 3))
    b = rng.standard_normal(22)
    t = lambda a: gc.tensor(np.ascontiguousarray(a), dtype=dtype)  # noqa: E731
    args = ((1, 1), (1, 1, 2, 0), (1, 1))
    both = _core.conv2d_forward(t(x)._data, t(w)._data, t(b)._data, *args, 2, activation).numpy()
    for g in range(2):
        out = slice(11 * g, 11 * g + 11)
        one = _core.conv2d_forward(t(x[:, g:g + 1])._data, t(w[out])._data, t(b[out])._data, *args, 1, activation)
        assert np.array_equal(one.numpy(), both[:, out])


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(SWEEP) + list(LARGE))
def test_cuda_matches_cpu(name, dtype):
    case = {**SWEEP, **LARGE}[name]

    def build(device):
        x, weight, bias = make(case, dtype, device=device, requires_grad=True)
        return run(case, x, weight, bias), {"x": x, "weight": weight, "bias": bias}

    results = cuda_and_cpu_with_grads(build, dtype)
    assert_cuda_matches_cpu(results["cuda"], results["cpu"], dtype)


@pytest.mark.cuda
def test_cuda_bitwise_deterministic():
    case = LARGE["k288_p49_stride2"]
    results = []
    for _ in range(2):
        x, weight, bias = make(case, "float32", device="cuda", requires_grad=True)
        y = run(case, x, weight, bias)
        y.backward(gc.tensor(np.ones(y.shape), dtype="float32", device="cuda"))
        results.append([t.numpy() for t in (y, x.grad, weight.grad)])
    for a, b in zip(*results):
        assert np.array_equal(a, b)


# ---- bad input ---------------------------------------------------------------------------------------------------
def tensors(x_shape, w_shape, dtype="float32"):
    return gc.zeros(*x_shape, dtype=dtype), gc.zeros(*w_shape, dtype=dtype)


def test_channels_not_divisible_by_groups():
    x, w = tensors((1, 3, 5, 5), (4, 1, 3, 3))
    with pytest.raises(ValueError, match="x: 3 input channels are not divisible by groups=2"):
        conv2d(x, w, groups=2)
    x, w = tensors((1, 4, 5, 5), (3, 2, 3, 3))
    with pytest.raises(ValueError, match="weight: 3 output channels"):
        conv2d(x, w, groups=2)


def test_weight_channels_must_match_input():
    x, w = tensors((1, 4, 5, 5), (2, 3, 3, 3))
    with pytest.raises(ValueError, match="weight: shape"):
        conv2d(x, w)


def test_kernel_larger_than_padded_input():
    x, w = tensors((1, 1, 4, 4), (1, 1, 5, 3))
    with pytest.raises(ValueError, match="weight: the dilated kernel"):
        conv2d(x, w)
    x, w = tensors((1, 1, 4, 4), (1, 1, 3, 3))
    with pytest.raises(ValueError, match="weight: the dilated kernel"):
        conv2d(x, w, dilation=2)
    assert conv2d(x, w, dilation=2, padding=1).shape == (1, 1, 2, 2)


@pytest.mark.parametrize("argument, value", [("stride", 0), ("stride", (1, -1)), ("dilation", 0), ("padding", -1)])
def test_stride_dilation_padding_ranges(argument, value):
    x, w = tensors((1, 1, 5, 5), (1, 1, 3, 3))
    with pytest.raises(ValueError, match=f"{argument}: expected values >="):
        conv2d(x, w, **{argument: value})


def test_bad_argument_types():
    x, w = tensors((1, 1, 5, 5), (1, 1, 3, 3))
    with pytest.raises(TypeError, match="stride: expected an int or a pair"):
        conv2d(x, w, stride=(1, 2, 3))
    with pytest.raises(ValueError, match="padding: expected an int, a pair"):
        conv2d(x, w, padding="full")
    with pytest.raises(ValueError, match="groups: expected an integer >= 1"):
        conv2d(x, w, groups=0)
    with pytest.raises(TypeError, match="x: expected a gradcore.Tensor"):
        conv2d(np.zeros((1, 1, 5, 5)), w)


def test_wrong_weight_rank():
    x, w = tensors((1, 1, 5, 5), (1, 1, 3))
    with pytest.raises(ValueError, match="weight: expected 4 dimensions"):
        conv2d(x, w)
    with pytest.raises(ValueError, match="x: expected 4 dimensions"):
        conv2d(gc.zeros(1, 5, 5), gc.zeros(1, 1, 3, 3))


def test_mixed_dtypes():
    x = gc.zeros(1, 1, 5, 5, dtype="float32")
    w = gc.zeros(1, 1, 3, 3, dtype="float64")
    with pytest.raises(TypeError, match="weight: expected dtype float32"):
        conv2d(x, w)
    with pytest.raises(TypeError, match="bias: expected dtype float32"):
        conv2d(x, gc.zeros(1, 1, 3, 3), gc.zeros(1, dtype="float64"))


def test_bias_shape():
    x, w = tensors((1, 1, 5, 5), (2, 1, 3, 3))
    with pytest.raises(ValueError, match=r"bias: expected shape \(2,\)"):
        conv2d(x, w, gc.zeros(3))


@pytest.mark.cuda
def test_mixed_devices():
    x = gc.zeros(1, 1, 5, 5)
    w = gc.zeros(1, 1, 3, 3, device="cuda")
    with pytest.raises(ValueError, match="weight: expected device cpu"):
        conv2d(x, w)


@pytest.mark.cuda
def test_cuda_rejects_stride_beyond_32_bits():
    # The CUDA kernels index in int; a stride of 2**32 would narrow to 0 (the CPU has no such limit).
    x = gc.zeros(1, 1, 5, 5, device="cuda")
    w = gc.zeros(1, 1, 3, 3, device="cuda")
    with pytest.raises(ValueError, match="x: .*too large for the CUDA conv2d kernels"):
        conv2d(x, w, stride=(2**32, 1))


@pytest.mark.parametrize("device", DEVICES)
def test_empty_batch(device):
    x = gc.zeros(0, 2, 5, 5, device=device, requires_grad=True)
    w = gc.ones(3, 2, 3, 3, device=device, requires_grad=True)
    y = conv2d(x, w, padding=1)
    assert y.shape == (0, 3, 5, 5)
    y.sum().backward()
    assert np.array_equal(w.grad.numpy(), np.zeros((3, 2, 3, 3)))
