"""The CPU's stride-2 3x3 forward through the input-phase decomposition with F(2, 2) on the even phase
(csrc/cpu/conv2d_winograd_stride2.cpp), taken by float32 conv2d's forward (and so by conv_transpose2d's input
gradient) for stride 2, dilation 1, 3x3, groups 1: against the float64 numpy reference at the edges of its 2x2
output tiles, with padding 0..2 and the asymmetric "same" padding, with bias and the fused ReLU, within a float32 error
bound, bitwise the same on 1, 2 and 3 threads, taken where its rule says and nowhere else."""
import textwrap

import numpy as np
import pytest

import gradcore as gc
from gradcore import _core
from gradcore.functional import conv2d, conv_transpose2d
from gradcore.ops.conv2d import conv2d_padding
from gradcore.ops.conv_relu import conv2d_relu, conv_transpose2d_relu
from isolated import outputs_for_thread_counts
from reference import conv2d as ref
from tolerance import assert_close, float32_error_units, forward_tol

# name: (N, C_in, H, W, C_out, padding); stride 2, dilation 1, 3x3, groups 1, float32, and inside the rule
# (conv2d_winograd_stride2.cpp: C_in, C_out >= 32, C_in C_out <= 128 x 256, outputs of at least 7x7, W + pad_left <= 31
# or at most 7 tiles per row).
CASES = {
    "seed_enc2_same_padding": (3, 32, 14, 14, 64, "same"),  # (0, 1, 0, 1): the odd pixel at the bottom/right
    "odd_sizes_odd_channels": (2, 33, 13, 15, 37, 1),  # 7x8 outputs: cut tiles; C not a multiple of 16
    "batch_one": (1, 32, 17, 14, 40, 1),
    "padding0": (2, 40, 15, 16, 36, 0),
    "padding2": (2, 36, 13, 12, 40, 2),
    "padding2_by_0": (1, 32, 14, 17, 48, (2, 0)),
    "reduction_past_one_gemm_block": (1, 70, 14, 14, 32, 1),  # 4 C_in = 280 > kKc = 256
    "three_row_panels": (2, 32, 15, 14, 130, 1),  # C_out past two 64-row blocks, a partial last panel
    "many_images_per_strip": (40, 32, 13, 14, 32, 1),  # a strip of 32 tiles spans several images and kinds
    "widest_rows_in_two_vectors": (1, 32, 14, 29, 32, 2),  # W + pad_left = 31
    # Problem::tile's order over groups of 32 images: two whole groups, whose strips of one kind interleave by image,
    # and a rest of 6 images whose kinds' partial strips come last; rows in one vector (input_transform_narrow)
    "two_groups_and_a_rest": (70, 32, 14, 14, 32, "same"),
    "two_groups_9x9_outputs": (65, 32, 18, 17, 32, 1),  # 16 whole, 4 + 4 cut tiles and a corner per image
}


def make(case, dtype="float32", seed=0, requires_grad=False):
    n, c_in, h, w, c_out, _ = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c_in, h, w))
    weight = rng.standard_normal((c_out, c_in, 3, 3)) / np.sqrt(c_in * 9)
    bias = rng.standard_normal(c_out)
    return [gc.tensor(a, dtype=dtype, requires_grad=requires_grad) for a in (x, weight, bias)]


def pads(case):
    return conv2d_padding(case[-1], case[2:4], (3, 3), (2, 2), (1, 1))


def winograd_s2_calls():
    return _core.phase_times(reset=True).get("conv2d_winograd_s2", (0.0, 0))[1]


@pytest.mark.parametrize("name", list(CASES))
def test_forward_matches_reference(name, phase_timing):
    case = CASES[name]
    x, weight, bias = make(case)
    y = conv2d(x, weight, bias, stride=2, padding=case[-1])
    assert winograd_s2_calls() == 1
    expected = ref.conv2d(x.numpy(), weight.numpy(), bias.numpy(), (2, 2), pads(case), (1, 1))
    assert_close(y, expected, name=name, **forward_tol("float32"))


@pytest.mark.parametrize("name", ["seed_enc2_same_padding", "odd_sizes_odd_channels", "three_row_panels"])
def test_without_bias(name):
    case = CASES[name]
    x, weight, _ = make(case)
    expected = ref.conv2d(x.numpy(), weight.numpy(), None, (2, 2), pads(case), (1, 1))
    assert_close(conv2d(x, weight, stride=2, padding=case[-1]), expected, name=name, **forward_tol("float32"))


@pytest.mark.parametrize("name", ["seed_enc2_same_padding", "odd_sizes_odd_channels", "many_images_per_strip"])
def test_fused_relu_stores_relu_of_the_sum(name, phase_timing):
    case = CASES[name]
    x, weight, bias = make(case)
    y = conv2d_relu(x, weight, bias, stride=2, padding=case[-1])
    assert winograd_s2_calls() == 1
    expected = np.maximum(ref.conv2d(x.numpy(), weight.numpy(), bias.numpy(), (2, 2), pads(case), (1, 1)), 0)
    assert_close(y, expected, name=name, **forward_tol("float32"))
    # the same bits as relu applied to the unfused output
    assert np.array_equal(y.numpy(), np.maximum(conv2d(x, weight, bias, stride=2, padding=case[-1]).numpy(), 0))


@pytest.mark.parametrize("shape", [(3, 64, 7, 7, 64), (2, 64, 14, 14, 32), (1, 40, 7, 8, 33)],
                         ids=["seed_dec1", "seed_dec2", "odd_channels"])
def test_conv_transpose2d_input_gradient(shape, phase_timing):
    """A stride-2 ConvTranspose2d's input gradient is the stride-2 conv2d forward of its output gradient."""
    n, c_in, h, w, c_out = shape
    rng = np.random.default_rng(3)
    x = gc.tensor(rng.standard_normal((n, c_in, h, w)), dtype="float32", requires_grad=True)
    weight = gc.tensor(rng.standard_normal((c_in, c_out, 3, 3)) / np.sqrt(c_in * 9), dtype="float32")
    y = conv_transpose2d(x, weight, stride=2, padding=1, output_padding=1)
    winograd_s2_calls()
    gy = rng.standard_normal(y.shape)
    y.backward(gc.tensor(gy, dtype="float32"))
    assert winograd_s2_calls() == 1
    expected = ref.conv2d(gy, weight.numpy(), None, (2, 2), (1, 1, 1, 1), (1, 1))
    assert_close(x.grad, expected, name="x.grad", **forward_tol("float32"))


def test_fused_conv_transpose2d_relu_input_gradient():
    rng = np.random.default_rng(5)
    x = gc.tensor(rng.standard_normal((2, 32, 7, 7)), dtype="float32", requires_grad=True)
    weight = gc.tensor(rng.standard_normal((32, 40, 3, 3)) / np.sqrt(32 * 9), dtype="float32")
    y = conv_transpose2d_relu(x, weight, stride=2, padding=1, output_padding=1)
    gy = rng.standard_normal(y.shape)
    y.backward(gc.tensor(gy, dtype="float32"))
    mask = y.numpy() > 0
    expected = ref.conv2d(gy * mask, weight.numpy(), None, (2, 2), (1, 1, 1, 1), (1, 1))
    assert_close(x.grad, expected, name="x.grad", **forward_tol("float32"))


@pytest.mark.parametrize("transposed", [False, True], ids=["conv2d", "conv_transpose2d"])
def test_gradients_match_finite_differences(transposed):
    """float64 takes the direct path (the rule is float32 only); the float64 gradients of the stride-2 layers whose
    float32 twins take this path still check against finite differences."""
    rng = np.random.default_rng(6)
    if transposed:
        args = [gc.tensor(rng.standard_normal(s), dtype="float64", requires_grad=True)
                for s in [(2, 16, 4, 5), (16, 16, 3, 3), (16,)]]
        fn = lambda a, b, c: conv_transpose2d(a, b, c, stride=2, padding=1, output_padding=1)  # noqa: E731
    else:
        args = make((2, 16, 7, 8, 16, 1), "float64", requires_grad=True)
        fn = lambda a, b, c: conv2d(a, b, c, stride=2, padding=1)  # noqa: E731
    assert gc.gradcheck(fn, args, samples=60)


def test_float32_error_is_within_a_few_ulps_of_the_terms():
    """The transforms subtract inputs before the products and the outputs add four partial sums, so the float32
    rounding differs from the direct sum's. Bound: |y - y_exact| <= 8 * 2^-24 * sum |w| |x| over the 9 C_in products
    of each output. The worst ratio is printed (see the header of conv2d_winograd_stride2.cpp)."""
    rng = np.random.default_rng(4)
    for n, c, h, c_out in [(8, 32, 14, 64), (4, 64, 28, 64), (2, 128, 14, 32)]:
        x = rng.standard_normal((n, c, h, h))
        w = rng.standard_normal((c_out, c, 3, 3)) / np.sqrt(c * 9)
        y = conv2d(gc.tensor(x, dtype="float32"), gc.tensor(w, dtype="float32"), stride=2, padding=1)
        y = y.numpy().astype(np.float64)
        ratio = float32_error_units(y, ref.conv2d, x, w, None, (2, 2), (1, 1, 1, 1))
        print(f"C_in {c}: worst |error| / (2^-24 sum |w x|): {ratio:.3g}")
        assert ratio <= 8


THREAD_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import gradcore as gc
    rng = np.random.default_rng(0)
    out = []
    for n, c_in, h, w, c_out in [(5, 32, 14, 14, 64), (3, 70, 15, 13, 40), (40, 32, 13, 14, 32), (70, 32, 14, 14, 32),
                                 (6, 32, 28, 28, 64)]:  # (the last: input_transform_rows)
        x = gc.tensor(rng.standard_normal((n, c_in, h, w)), dtype="float32")
        wt = gc.tensor(rng.standard_normal((c_out, c_in, 3, 3)) / 10, dtype="float32")
        b = gc.tensor(rng.standard_normal(c_out), dtype="float32")
        out += [gc.functional.conv2d(x, wt, b, stride=2, padding=1).numpy().ravel()]
    np.save(sys.argv[1], np.concatenate(out))
""")


def test_bitwise_identical_for_any_thread_count(tmp_path):
    outputs = outputs_for_thread_counts(THREAD_SCRIPT, tmp_path)
    assert np.array_equal(outputs[0], outputs[1]) and np.array_equal(outputs[0], outputs[2])


@pytest.mark.parametrize("dtype, stride, dilation, groups, kernel, c_in, c_out, h, w", [
    ("float64", 2, 1, 1, 3, 32, 64, 14, 14), ("float32", 1, 1, 1, 3, 32, 64, 14, 14),
    ("float32", 2, 2, 1, 3, 32, 64, 14, 14), ("float32", 2, 1, 2, 3, 32, 64, 14, 14),
    ("float32", 2, 1, 1, 5, 32, 64, 14, 14), ("float32", 2, 1, 1, 3, 16, 64, 14, 14),
    ("float32", 2, 1, 1, 3, 32, 16, 14, 14), ("float32", 2, 1, 1, 3, 256, 256, 14, 14),
    ("float32", 2, 1, 1, 3, 32, 64, 12, 14), ("float32", 2, 1, 1, 3, 32, 64, 14, 12),
    ("float32", 2, 1, 1, 3, 32, 64, 14, 32)],
    ids=["float64", "stride1", "dilation2", "groups2", "5x5", "few_in", "few_out", "many_pairs", "6_rows_out",
         "6_cols_out", "wide"])
def test_not_taken_outside_its_rule(phase_timing, dtype, stride, dilation, groups, kernel, c_in, c_out, h, w):
    """Outside the rule the direct path runs, with its own bits (tests/test_conv2d.py covers it)."""
    x = gc.zeros(1, c_in, h, w, dtype=dtype)
    weight = gc.zeros(c_out, c_in // groups, kernel, kernel, dtype=dtype)
    conv2d(x, weight, stride=stride, dilation=dilation, groups=groups, padding=1)
    assert winograd_s2_calls() == 0


def test_taken_inside_its_rule(phase_timing):
    """The rule's edges: 32 channels each side, 7x7 outputs, W + pad_left = 31, 128 x 256 channel pairs."""
    for c_in, c_out, h, w in [(32, 32, 13, 13), (32, 32, 14, 30), (128, 256, 14, 14)]:
        conv2d(gc.zeros(1, c_in, h, w), gc.zeros(c_out, c_in, 3, 3), stride=2, padding=1)
        assert winograd_s2_calls() == 1, (c_in, c_out, h, w)
