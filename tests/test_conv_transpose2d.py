"""conv_transpose2d: forward against the numpy scatter reference, float64 gradcheck, the adjoint identity with
conv2d, padding="same" and output_size, CUDA against CPU, and bad input."""
import textwrap

import numpy as np
import pytest

import gradcore as gc
from gradcore.functional import conv2d, conv_transpose2d
from gradcore.ops.conv_transpose2d import same_cropping
from isolated import outputs_for_thread_counts
from reference import conv2d as ref
from tolerance import DTYPES, assert_close, assert_cuda_matches_cpu, cuda_and_cpu_with_grads, forward_tol

# name: (N, C_in, H, W, C_out, (kH, kW), stride, padding, output_padding, dilation, groups)
SWEEP = {
    "1x1": (2, 3, 4, 5, 2, (1, 1), 1, 0, 0, 1, 1),
    "3x3_stride2_pad1_outpad1": (2, 3, 4, 3, 2, (3, 3), 2, 1, 1, 1, 1),
    "5x5_stride3": (1, 2, 3, 4, 2, (5, 5), 3, 2, (2, 0), 1, 1),
    "2x3_nonsquare_stride": (2, 2, 3, 5, 3, (2, 3), (2, 3), (0, 1), (1, 2), 1, 1),
    "4x1_kernel_batch1": (1, 2, 5, 3, 3, (4, 1), 1, (1, 0), 0, 1, 1),
    "dilation2": (1, 2, 4, 4, 2, (3, 3), 1, 1, 0, 2, 1),
    "stride2_dilation2": (2, 2, 3, 4, 2, (2, 3), 2, 0, 1, (2, 1), 1),
    "groups2": (2, 4, 4, 3, 6, (3, 3), 1, 1, 0, 1, 2),
    "depthwise_stride2": (2, 3, 4, 4, 3, (3, 3), 2, 1, 1, 1, 3),
    "padding_wider_than_kernel": (1, 2, 6, 7, 2, (2, 2), 1, 1, 0, 3, 1),
    "same_stride2_k3": (2, 2, 3, 4, 3, (3, 3), 2, "same", 0, 1, 1),
    "same_stride2_k4": (1, 2, 3, 3, 2, (4, 4), 2, "same", 0, 1, 1),
    "same_stride3_k2_outpad": (1, 2, 3, 2, 2, (2, 2), 3, "same", 0, 1, 1),
    "valid_stride2": (2, 2, 3, 3, 2, (3, 3), 2, "valid", 0, 1, 1),
    # output_padding up to max(stride, dilation) - 1 (PyTorch's bound): past stride - 1, the extra rows hold what the
    # padding cropped at the bottom/right and then zeros, plus the bias.
    "outpad2_stride1_dilation3": (2, 2, 4, 3, 2, (3, 3), 1, 1, 2, 3, 1),
    "outpad_stride2_dilation3": (1, 2, 3, 4, 3, (2, 3), 2, (1, 0), (2, 1), 3, 1),
    "outpad_dilation2_groups2": (2, 4, 3, 3, 4, (3, 2), 1, (2, 1), (1, 1), 2, 2),
}
LARGE = {
    "seed_decoder_64_32": (5, 64, 7, 7, 32, (3, 3), 2, "same", 0, 1, 1),
    "seed_decoder_32_1": (5, 32, 14, 14, 1, (3, 3), 2, "same", 0, 1, 1),
    "k4_stride2_c40": (2, 40, 9, 8, 24, (4, 4), 2, 1, 0, 1, 1),
    # stride 1 with C_out * kH * kW <= 27: the few-channel input-gradient kernel (cpu/conv2d_few_channels.cpp), over
    # C_in > 256 channels too (two of the GEMM's blocks of the reduction, added as the GEMM adds them)
    "seed_decoder_32_1_stride1": (5, 32, 28, 28, 1, (3, 3), 1, 1, 0, 1, 1),
    "few_channels_300_to_2": (2, 300, 5, 6, 2, (3, 3), 1, 1, 0, 1, 1),
}
# Strided layers with 16 or more output channels per group run the CPU's stride-decomposed kernel (one stride-1
# correlation per output phase, csrc/cpu/conv2d_stride_decomposed.h) instead of GEMM + col2im: its shapes, with
# channel counts that leave a partial vector, phases without taps (dilation 2 or a 1x1 kernel at stride 2: those
# pixels get the bias only), taps reading past either edge, and groups.
DECOMPOSED = {
    "decomposed_stride2_odd_17ch": (2, 5, 5, 7, 17, (3, 3), 2, 1, 1, 1, 1),
    "decomposed_stride3_k5": (1, 3, 4, 3, 16, (5, 5), 3, 2, (2, 1), 1, 1),
    "decomposed_stride2_dilation2": (2, 4, 3, 4, 20, (3, 3), 2, (1, 2), 1, 2, 1),
    "decomposed_k1_stride2": (1, 16, 3, 3, 16, (1, 1), 2, 0, 1, 1, 1),
    "decomposed_nonsquare_stride": (1, 3, 3, 5, 16, (2, 3), (2, 3), (0, 1), (1, 2), 1, 1),
    "decomposed_padding_wider_than_kernel": (1, 4, 5, 4, 16, (2, 2), 2, 3, 0, 2, 1),
    "decomposed_same_groups2": (2, 6, 4, 4, 40, (3, 3), 2, "same", 0, 1, 2),
    "decomposed_outpad_stride2_dilation3": (1, 3, 3, 4, 24, (2, 3), 2, (1, 0), (2, 1), 3, 1),
}


def geometry(case):
    """stride, (top, bottom, left, right), output_padding, dilation as the reference wants them."""
    _, _, h, w, _, kernel, stride, padding, output_padding, dilation, _ = case
    s = (stride, stride) if isinstance(stride, int) else stride
    d = (dilation, dilation) if isinstance(dilation, int) else dilation
    op = (output_padding, output_padding) if isinstance(output_padding, int) else output_padding
    if padding == "same":
        (top, bottom), op_h = ref.same_cropping(h, kernel[0], s[0], d[0])
        (left, right), op_w = ref.same_cropping(w, kernel[1], s[1], d[1])
        return s, (top, bottom, left, right), (op_h, op_w), d
    if padding == "valid":
        return s, (0, 0, 0, 0), op, d
    p = (padding, padding) if isinstance(padding, int) else padding
    return s, (p[0], p[0], p[1], p[1]), op, d


def make(case, dtype, device="cpu", seed=0, requires_grad=False):
    n, c_in, h, w, c_out, kernel, _, _, _, _, groups = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c_in, h, w))
    # weights of size 1/sqrt(C_in), as an initialised layer's: outputs of a few units, whose float32 rounding the
    # forward tolerance bounds on every path (the stride-2 Winograd kernel, which adds inputs before it multiplies,
    # missed it by 30% with unit weights on seed_decoder_64_32, at outputs near 0 summing ~150 terms of size ~1)
    weight = rng.standard_normal((c_in, c_out // groups) + kernel) / np.sqrt(c_in)
    bias = rng.standard_normal(c_out)
    return [gc.tensor(a, dtype=dtype, device=device, requires_grad=requires_grad) for a in (x, weight, bias)]


def run(case, x, weight, bias, **extra):
    _, _, _, _, _, _, stride, padding, output_padding, dilation, groups = case
    return conv_transpose2d(x, weight, bias, stride=stride, padding=padding, output_padding=output_padding,
                            groups=groups, dilation=dilation, **extra)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(SWEEP) + list(LARGE) + list(DECOMPOSED))
def test_forward_matches_reference(name, dtype):
    case = {**SWEEP, **LARGE, **DECOMPOSED}[name]
    x, weight, bias = make(case, dtype)
    stride, pads, op, dilation = geometry(case)
    expected = ref.conv_transpose2d(x.numpy(), weight.numpy(), bias.numpy(), stride, pads, op, dilation, case[-1])
    assert_close(run(case, x, weight, bias), expected, name=name, **forward_tol(dtype))


@pytest.mark.parametrize("name", list(SWEEP) + list(DECOMPOSED))
def test_gradients_match_finite_differences(name):
    case = {**SWEEP, **DECOMPOSED}[name]
    x, weight, bias = make(case, "float64", requires_grad=True)
    assert gc.gradcheck(lambda a, b, c: run(case, a, b, c), [x, weight, bias])


@pytest.mark.parametrize("name", ["groups2", "3x3_stride2_pad1_outpad1", "dilation2", "k4_stride2_c40"])
def test_adjoint_of_conv2d(name):
    """<conv_transpose2d(x, w), z> == <x, conv2d(z, w)> with the same stride, padding, dilation and groups."""
    case = {**SWEEP, **LARGE}[name]
    x, weight, _ = make(case, "float64")
    stride, (top, _, left, _), _, dilation = geometry(case)
    y = run(case, x, weight, None)
    z = gc.tensor(np.random.default_rng(5).standard_normal(y.shape))
    back = conv2d(z, weight, stride=stride, padding=(top, left), dilation=dilation, groups=case[-1])
    assert_close(np.sum(y.numpy() * z.numpy()), np.sum(x.numpy() * back.numpy()), atol=1e-9, rtol=1e-10)


def test_same_gives_input_times_stride():
    for (h, w), k, s in (((3, 4), (3, 3), 2), ((5, 5), (4, 2), 3), ((7, 2), (1, 1), 2), ((4, 4), (5, 5), 1)):
        x = gc.zeros(1, 2, h, w)
        weight = gc.zeros(2, 3, *k)
        assert conv_transpose2d(x, weight, stride=s, padding="same").shape == (1, 3, h * s, w * s)
    assert same_cropping(3, 2, 1) == ((0, 1), 0)  # odd pixel cropped at the bottom/right
    assert same_cropping(2, 3, 1) == ((0, 0), 1)
    for size, kernel, stride, dilation in [(3, 3, 2, 1), (4, 4, 2, 1), (3, 2, 3, 1), (5, 3, 1, 2), (2, 1, 4, 1)]:
        assert same_cropping(kernel, stride, dilation) == ref.same_cropping(size, kernel, stride, dilation)


def test_output_size_picks_output_padding():
    case = SWEEP["3x3_stride2_pad1_outpad1"]
    x, weight, bias = make(case, "float64")
    stride, pads, _, dilation = geometry(case)
    for size in ((7, 5), (8, 6), (7, 6)):
        y = conv_transpose2d(x, weight, bias, stride=2, padding=1, output_size=size)
        assert y.shape[2:] == size
        op = (size[0] - 7, size[1] - 5)
        assert_close(y, ref.conv_transpose2d(x.numpy(), weight.numpy(), bias.numpy(), stride, pads, op, dilation),
                     atol=1e-12, rtol=1e-10)
    assert conv_transpose2d(x, weight, stride=2, padding=1, output_size=(2, 3, 8, 6)).shape == (2, 2, 8, 6)


def test_bitwise_deterministic():
    case = LARGE["seed_decoder_64_32"]
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
    out = []
    # (the last two: the few-channel kernels at stride 1, one image in bands, and 48 images whose 4.8 MB x and
    # x.grad are read with prefetches and written by non-temporal stores: cpu/streaming.h)
    for n, c_in, h, c_out, stride, dtype in ((25, 64, 7, 64, 2, "float32"), (3, 8, 5, 17, 3, "float32"),
                                             (4, 16, 6, 16, 2, "float64"), (1, 16, 30, 2, 1, "float64"),
                                             (48, 32, 28, 1, 1, "float32")):
        x = gc.tensor(rng.standard_normal((n, c_in, h, h)), dtype=dtype, requires_grad=True)
        w = gc.tensor(rng.standard_normal((c_in, c_out, 3, 3)), dtype=dtype, requires_grad=True)
        b = gc.tensor(rng.standard_normal(c_out), dtype=dtype)
        y = gc.functional.conv_transpose2d(x, w, b, stride=stride, padding="same")
        y.backward(gc.tensor(rng.standard_normal(y.shape), dtype=dtype))
        out += [y.numpy().ravel(), x.grad.numpy().ravel(), w.grad.numpy().ravel()]
    np.save(sys.argv[1], np.concatenate([a.astype("float64") for a in out]))
""")


def test_bitwise_identical_for_any_thread_count(tmp_path):
    outputs = outputs_for_thread_counts(THREAD_SCRIPT, tmp_path)
    assert np.array_equal(outputs[0], outputs[1]) and np.array_equal(outputs[0], outputs[2])


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


# ---- bad input ---------------------------------------------------------------------------------------------------
def test_output_size_out_of_reach():
    x, weight = gc.zeros(1, 2, 4, 3), gc.zeros(2, 2, 3, 3)
    with pytest.raises(ValueError, match=r"output_size: \(9, 5\) cannot be reached: dimension 0 can be 7 to 8"):
        conv_transpose2d(x, weight, stride=2, padding=1, output_size=(9, 5))
    with pytest.raises(ValueError, match="output_size: .* cannot be reached"):
        conv_transpose2d(x, weight, stride=2, padding=1, output_size=(7, 4))
    with pytest.raises(TypeError, match="output_size: expected"):
        conv_transpose2d(x, weight, output_size=(7,))


def test_output_padding_must_be_below_stride_or_dilation():
    x, weight = gc.zeros(1, 2, 4, 3), gc.zeros(2, 2, 3, 3)
    with pytest.raises(ValueError, match="output_padding: expected values smaller than stride"):
        conv_transpose2d(x, weight, stride=2, output_padding=2)
    with pytest.raises(ValueError, match=r"smaller than stride \(1, 1\) or dilation \(3, 3\).*got \(3, 0\)"):
        conv_transpose2d(x, weight, dilation=3, output_padding=(3, 0))
    assert conv_transpose2d(x, weight, dilation=3, output_padding=(2, 1)).shape == (1, 2, 12, 10)
    assert conv_transpose2d(x, weight, stride=(1, 2), dilation=(2, 1), output_padding=(1, 1)).shape == (1, 2, 9, 8)
    with pytest.raises(ValueError, match="output_padding: must be 0 with padding=\"same\""):
        conv_transpose2d(x, weight, stride=2, padding="same", output_padding=1)


def test_channels_and_groups():
    with pytest.raises(ValueError, match="weight: shape .* expects 3 input channels"):
        conv_transpose2d(gc.zeros(1, 2, 4, 4), gc.zeros(3, 2, 3, 3))
    with pytest.raises(ValueError, match="x: 3 input channels are not divisible by groups=2"):
        conv_transpose2d(gc.zeros(1, 3, 4, 4), gc.zeros(3, 2, 3, 3), groups=2)


def test_output_not_positive():
    with pytest.raises(ValueError, match="padding: the output size"):
        conv_transpose2d(gc.zeros(1, 1, 1, 1), gc.zeros(1, 1, 3, 3), padding=2)


@pytest.mark.parametrize("argument, value", [("stride", 0), ("dilation", (1, 0)), ("padding", -1),
                                             ("output_padding", -1)])
def test_ranges(argument, value):
    with pytest.raises(ValueError, match=f"{argument}: expected values >="):
        conv_transpose2d(gc.zeros(1, 1, 4, 4), gc.zeros(1, 1, 3, 3), **{argument: value})


def test_wrong_rank_and_mixed_dtypes():
    with pytest.raises(ValueError, match="weight: expected 4 dimensions"):
        conv_transpose2d(gc.zeros(1, 1, 4, 4), gc.zeros(1, 1, 3))
    with pytest.raises(TypeError, match="weight: expected dtype float32"):
        conv_transpose2d(gc.zeros(1, 1, 4, 4), gc.zeros(1, 1, 3, 3, dtype="float64"))
    with pytest.raises(TypeError, match="bias: expected dtype float32"):
        conv_transpose2d(gc.zeros(1, 1, 4, 4), gc.zeros(1, 1, 3, 3), gc.zeros(1, dtype="float64"))


@pytest.mark.cuda
def test_mixed_devices():
    with pytest.raises(ValueError, match="weight: expected device cpu"):
        conv_transpose2d(gc.zeros(1, 1, 4, 4), gc.zeros(1, 1, 3, 3, device="cuda"))
