"""The CPU's Winograd F(2x2, 3x3) path (csrc/cpu/conv2d_winograd.cpp), taken by conv2d's forward and input gradient
(and so by conv_transpose2d's forward and input gradient) for stride-1, dilation-1, 3x3 kernels with many channels:
against the float64 numpy reference, at the edges of its 2x2 output tiles, with padding 0..2, for one image and for
many channels, bitwise the same on 1, 2 and 3 threads, and actually taken (the phase timer counts its phases)."""
import textwrap

import numpy as np
import pytest

import gradcore as gc
from gradcore import _core
from gradcore.functional import conv2d, conv_transpose2d
from isolated import outputs_for_thread_counts
from reference import conv2d as ref
from tolerance import DTYPES, assert_close, float32_error_units, forward_tol

# name: (N, C_in, H, W, C_out, padding (h, w)); stride 1, dilation 1, 3x3, groups 1, and enough channels and pixels
# that the forward and the input gradient both take the Winograd path (C_in >= 32, C_out >= 64, C_in >= 64 or
# 2 C_in > C_out, at least 64 outputs per channel, or 49 with C_in C_out >= 128^2: conv2d_winograd.cpp).
CASES = {
    "odd_sizes_cut_edge_tiles": (2, 40, 9, 11, 64, (1, 1)),
    "one_row_of_outputs": (2, 40, 3, 70, 64, (0, 1)),  # H smaller than a tile
    "one_column_of_outputs": (1, 40, 70, 1, 64, (1, 1)),  # W smaller than a tile
    "padding0": (2, 40, 10, 11, 64, (0, 0)),
    "padding2": (2, 40, 7, 6, 64, (2, 2)),
    "padding2_by_0": (1, 40, 10, 9, 72, (2, 0)),
    "one_image_many_channels": (1, 96, 10, 12, 80, (1, 1)),
    "reduction_past_one_gemm_block": (1, 300, 8, 8, 70, (1, 1)),  # C_in > 256 (kKc), C_out > 64 (two row blocks)
    "three_row_blocks": (2, 80, 8, 8, 130, (1, 1)),
    "many_small_images": (40, 128, 7, 7, 128, (1, 1)),  # tile blocks that span several images
    "wide_rows": (1, 40, 9, 70, 64, (1, 1)),  # a tile row longer than a tile block
}


def make(case, dtype, seed=0, requires_grad=False):
    n, c_in, h, w, c_out, _ = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c_in, h, w))
    weight = rng.standard_normal((c_out, c_in, 3, 3)) / np.sqrt(c_in * 9)
    bias = rng.standard_normal(c_out)
    return [gc.tensor(a, dtype=dtype, requires_grad=requires_grad) for a in (x, weight, bias)]


def pads(case):
    ph, pw = case[-1]
    return (ph, ph, pw, pw)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(CASES))
def test_forward_matches_reference(name, dtype):
    case = CASES[name]
    x, weight, bias = make(case, dtype)
    expected = ref.conv2d(x.numpy(), weight.numpy(), bias.numpy(), (1, 1), pads(case), (1, 1))
    assert_close(conv2d(x, weight, bias, padding=case[-1]), expected, name=name, **forward_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(CASES))
def test_input_gradient_matches_reference(name, dtype):
    """The input gradient is a stride-1 3x3 convolution of gy with the flipped kernel, offset by 2 - padding."""
    case = CASES[name]
    x, weight, bias = make(case, dtype, requires_grad=True)
    y = conv2d(x, weight, bias, padding=case[-1])
    gy = np.random.default_rng(1).standard_normal(y.shape)
    y.backward(gc.tensor(gy, dtype=dtype))
    expected = ref.conv2d_grad_input(gy, weight.numpy(), x.shape[2:], (1, 1), pads(case), (1, 1))
    # gx sums C_out * 9 products of unit-sized gy and weights of size 1/sqrt(C_in * 9): at most a few units, as the
    # forward's outputs are, so the forward's tolerance applies.
    assert_close(x.grad, expected, name=f"{name} x.grad", **forward_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv_transpose2d_stride1_with_bias(dtype):
    """conv_transpose2d's forward is conv2d's input gradient plus the bias: the Winograd path adds it."""
    rng = np.random.default_rng(2)
    x = gc.tensor(rng.standard_normal((2, 24, 9, 8)), dtype=dtype)
    weight = gc.tensor(rng.standard_normal((24, 20, 3, 3)) / np.sqrt(24 * 9), dtype=dtype)
    bias = gc.tensor(rng.standard_normal(20), dtype=dtype)
    expected = ref.conv_transpose2d(x.numpy(), weight.numpy(), bias.numpy(), (1, 1), (1, 1, 1, 1))
    assert_close(conv_transpose2d(x, weight, bias, padding=1), expected, **forward_tol(dtype))


def test_gradients_match_finite_differences():
    case = (1, 40, 8, 8, 64, (1, 1))
    x, weight, bias = make(case, "float64", requires_grad=True)
    assert gc.gradcheck(lambda a, b, c: conv2d(a, b, c, padding=1), [x, weight, bias], samples=60)


def test_float32_error_is_within_a_few_ulps_of_the_terms():
    """Winograd's transforms add and subtract inputs before the products, so its float32 rounding differs from the
    direct sum's. Bound: |y - y_exact| <= 8 * 2^-24 * sum |w| |x| over the products of each output (the direct
    method's own error grows like this with the number of terms). The worst ratio is printed: measured 1.97 for
    Winograd, 2.08 for the direct GEMM before it (same inputs), so the bound leaves a margin of 4."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 64, 16, 16))
    w = rng.standard_normal((64, 64, 3, 3)) / np.sqrt(64 * 9)
    y = conv2d(gc.tensor(x, dtype="float32"), gc.tensor(w, dtype="float32"), padding=1).numpy().astype(np.float64)
    ratio = float32_error_units(y, ref.conv2d, x, w, None, (1, 1), (1, 1, 1, 1))
    print(f"worst |error| / (2^-24 sum |w x|): {ratio:.3g}")
    assert ratio <= 8


THREAD_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import gradcore as gc
    rng = np.random.default_rng(0)
    out = []
    for n, c_in, h, w, c_out in [(5, 40, 13, 15, 64), (2, 80, 8, 9, 70)]:
        x = gc.tensor(rng.standard_normal((n, c_in, h, w)), dtype="float32", requires_grad=True)
        wt = gc.tensor(rng.standard_normal((c_out, c_in, 3, 3)) / 10, dtype="float32", requires_grad=True)
        y = gc.functional.conv2d(x, wt, padding=1)
        y.backward(gc.tensor(rng.standard_normal(y.shape), dtype="float32"))
        out += [y.numpy().ravel(), x.grad.numpy().ravel()]
    np.save(sys.argv[1], np.concatenate(out))
""")


def test_bitwise_identical_for_any_thread_count(tmp_path):
    outputs = outputs_for_thread_counts(THREAD_SCRIPT, tmp_path)
    assert np.array_equal(outputs[0], outputs[1]) and np.array_equal(outputs[0], outputs[2])


def winograd_calls():
    return _core.phase_times(reset=True).get("conv2d_winograd/weight_transform", (0.0, 0))[1]


def test_taken_for_forward_and_input_gradient(phase_timing):
    x, weight, bias = make(CASES["odd_sizes_cut_edge_tiles"], "float32", requires_grad=True)
    y = conv2d(x, weight, bias, padding=1)
    assert winograd_calls() == 1
    y.sum().backward()
    assert winograd_calls() == 1  # the input gradient (the weight gradient has its own kernel)


def test_input_gradient_alone_for_few_output_channels(phase_timing):
    """The direct input gradient (GEMM then col2im) is slower than the direct forward, so Winograd pays there with
    fewer channels: 16 -> 16 takes it for the input gradient only."""
    x = gc.tensor(np.ones((2, 16, 10, 10)), dtype="float32", requires_grad=True)
    weight = gc.tensor(np.ones((16, 16, 3, 3)), dtype="float32")
    y = conv2d(x, weight, padding=1)
    assert winograd_calls() == 0
    y.sum().backward()
    assert winograd_calls() == 1


@pytest.mark.parametrize("stride, dilation, groups, c_in, c_out, size", [
    (2, 1, 1, 40, 64, 16), (1, 2, 1, 40, 64, 16), (1, 1, 2, 40, 64, 16), (1, 1, 1, 16, 64, 16),
    (1, 1, 1, 40, 32, 16), (1, 1, 1, 64, 64, 6), (1, 1, 1, 256, 256, 4)])
def test_not_taken_outside_its_rule(phase_timing, stride, dilation, groups, c_in, c_out, size):
    x = gc.zeros(1, c_in, size, size)
    weight = gc.zeros(c_out, c_in // groups, 3, 3)
    conv2d(x, weight, stride=stride, dilation=dilation, groups=groups, padding=1)
    assert winograd_calls() == 0
