"""The CPU's Winograd weight gradient (csrc/cpu/conv2d_backward_weight_winograd.cpp), taken by conv2d's (and
conv_transpose2d's) weight gradient for 3x3, dilation-1, ungrouped convolutions: stride 1 with enough channels; stride 2
on both sides from 32 input and 64 output channels, with at most 15% of C_out's 32-wide strips empty (the driver that
splits the images into groups and multiplies each type's points in small blocks); strides mixed between the sides on
inputs of at most 16x16 from 32 -> 64 channels, or from 128 channels. Against the float64 numpy reference at the edges
of its tiles, with padding 0..2, asymmetric padding, strides mixed between the sides, batch 1, channels that are not
multiples of the vector width, and several image groups, chunks and blocks; by finite differences; float32 within a
few units of eps * sum |gy x| of the exact sum; bitwise the same on 1, 2 and 3 threads; actually taken (the phase
timer counts its phases), and not taken outside its rule."""
import textwrap

import numpy as np
import pytest

import gradcore as gc
from gradcore import _core
from gradcore.functional import conv2d, conv_transpose2d
from isolated import outputs_for_thread_counts
from reference import conv2d as ref
from test_conv2d import pads_of
from tolerance import assert_close

# name: (N, C_in, H, W, C_out, (kH, kW), stride, padding, dilation, groups), all inside the rule
CASES = {
    "s1_odd_sizes_cut_edge_tiles": (2, 16, 9, 11, 32, (3, 3), 1, 1, 1, 1),
    "s1_padding0": (2, 24, 10, 13, 32, (3, 3), 1, 0, 1, 1),
    "s1_padding2": (2, 16, 8, 7, 48, (3, 3), 1, 2, 1, 1),
    "s1_padding2_by_0": (1, 32, 9, 10, 24, (3, 3), 1, (2, 0), 1, 1),
    "s1_one_row_of_outputs": (2, 16, 3, 70, 32, (3, 3), 1, (0, 1), 1, 1),
    "s1_one_column_of_outputs": (1, 16, 70, 1, 32, (3, 3), 1, (1, 1), 1, 1),
    "s1_c_in_past_a_panel_c_out_past_a_strip": (2, 37, 8, 8, 72, (3, 3), 1, 1, 1, 1),
    "s1_several_chunks_of_images": (5, 64, 24, 24, 64, (3, 3), 1, 1, 1, 1),
    "s2_same_asymmetric_padding": (2, 128, 9, 10, 128, (3, 3), 2, "same", 1, 1),
    "s2_odd_sizes": (1, 128, 11, 9, 136, (3, 3), 2, 1, 1, 1),
    "s2_by_s1": (2, 128, 8, 9, 128, (3, 3), (2, 1), 1, 1, 1),
    "s1_by_s2_padding0": (1, 130, 9, 8, 128, (3, 3), (1, 2), 0, 1, 1),
    "s2_seed_enc2": (3, 32, 14, 14, 64, (3, 3), 2, "same", 1, 1),
    "s2_small_image_c_in_past_a_panel": (2, 37, 13, 16, 96, (3, 3), 2, 1, 1, 1),
    # stride 2 on both sides, 32 -> 64 channels and up, any image size (the grouped driver)
    "s2_seed_dec2_28x28": (3, 32, 28, 28, 64, (3, 3), 2, "same", 1, 1),
    "s2_batch1_odd_sizes_c_in_33": (1, 33, 13, 11, 96, (3, 3), 2, 1, 1, 1),
    "s2_padding0_odd_width": (2, 32, 12, 15, 64, (3, 3), 2, 0, 1, 1),
    "s2_padding2": (2, 40, 9, 10, 64, (3, 3), 2, 2, 1, 1),
    "s2_groups_chunks_and_blocks": (9, 32, 20, 20, 64, (3, 3), 2, 1, 1, 1),
    "s2_large_odd_image": (2, 32, 31, 29, 64, (3, 3), 2, 1, 1, 1),
    "s2_one_row_of_outputs": (3, 48, 3, 40, 64, (3, 3), 2, (0, 1), 1, 1),
    # gy's pair-sum planes and the in-place reads at their edges: one output row (a row pair sum of one term), a
    # padding that cuts the first column point's difference to one term of coefficient -1 (transformed, not read in
    # place) and odd output sizes (the last pair sum of one term)
    "s2_one_output_row_padding0": (2, 32, 3, 9, 64, (3, 3), 2, 0, 1, 1),
    "s2_padding_1_by_2": (2, 32, 4, 5, 64, (3, 3), 2, (1, 2), 1, 1),
    "s2_odd_outputs_padding2": (3, 32, 11, 13, 64, (3, 3), 2, 2, 1, 1),
}


def make(case, dtype, seed=0):
    n, c_in, h, w, c_out, kernel, _, _, _, groups = case
    rng = np.random.default_rng(seed)
    x = gc.tensor(rng.standard_normal((n, c_in, h, w)), dtype=dtype)
    weight = gc.tensor(rng.standard_normal((c_out, c_in // groups) + kernel) / np.sqrt(c_in * 9), dtype=dtype,
                       requires_grad=True)
    return x, weight


def run(case, x, weight):
    _, _, _, _, _, _, stride, padding, dilation, groups = case
    return conv2d(x, weight, stride=stride, padding=padding, dilation=dilation, groups=groups)


def weight_gradient(case, dtype):
    x, weight = make(case, dtype)
    y = run(case, x, weight)
    gy = np.random.default_rng(1).standard_normal(y.shape)
    y.backward(gc.tensor(gy, dtype=dtype))
    return x.numpy().astype(np.float64), gy.astype(dtype).astype(np.float64), weight.grad.numpy()


@pytest.mark.parametrize("name", list(CASES))
def test_matches_reference_float64(name):
    case = CASES[name]
    x, gy, got = weight_gradient(case, "float64")
    stride, pads, dilation = pads_of(case)
    expected = ref.conv2d_grad_weight(x, gy, (3, 3), stride, pads, dilation)
    assert_close(got, expected, atol=1e-10, rtol=1e-10, name=f"{name} weight.grad")


# Images so small that a tap sums one or two small products while the Winograd points it reads also carry its
# neighbours' larger terms (taps of the same kernel row and column): there the error is measured against the whole
# kernel's terms (test_float32_error_on_tiny_images_is_within_a_few_ulps_of_the_kernels_terms).
TINY = ["s2_padding_1_by_2"]


@pytest.mark.parametrize("name", [name for name in CASES if name not in TINY])
def test_float32_error_is_within_a_few_ulps_of_the_terms(name):
    """The transforms add gy values and x values before the products (up to two on each side, per side), and the
    output transform adds up to nine GEMM results whose terms partly cancel, so float32 rounding differs from a direct
    sum's. Bound: |dW - dW_exact| <= 12 * 2^-24 * sum |gy| |x| over each element's products, with dW_exact the
    float64 sum of the same float32 inputs. Measured worst ratios: 2.0-3.7 at stride 1, 5.5-6.6 at stride 2 (where
    each tap mixes 2x2 types that also carry the neighbouring taps' terms); the direct path on shapes like these (just
    outside the rule): 3.3-3.9."""
    case = CASES[name]
    x, gy, got = weight_gradient(case, "float32")
    stride, pads, dilation = pads_of(case)
    exact = ref.conv2d_grad_weight(x, gy, (3, 3), stride, pads, dilation)
    scale = ref.conv2d_grad_weight(np.abs(x), np.abs(gy), (3, 3), stride, pads, dilation)
    assert np.all(got[scale == 0] == 0)  # taps that only ever read padding
    ratio = np.max(np.abs(got - exact)[scale > 0] / (scale[scale > 0] * 2.0**-24))
    print(f"{name}: worst |error| / (2^-24 sum |gy x|): {ratio:.3g}")
    assert ratio <= 12


@pytest.mark.parametrize("name", TINY)
def test_float32_error_on_tiny_images_is_within_a_few_ulps_of_the_kernels_terms(name):
    """4x5 images, padding (1, 2): tap (0, 1) of a pair of channels may sum a single product of |gy x| = 0.29 while
    the points that carry it add and subtract its row's neighbours' (1.2 and 1.8): 26 units of its own terms, 0.72 of
    the kernel's (the same bits as the packed transforms before the in-place reads). Bound: |dW - dW_exact| <= 4 *
    2^-24 * sum |gy| |x| over all nine taps of the pair of channels."""
    case = CASES[name]
    x, gy, got = weight_gradient(case, "float32")
    stride, pads, dilation = pads_of(case)
    exact = ref.conv2d_grad_weight(x, gy, (3, 3), stride, pads, dilation)
    scale = ref.conv2d_grad_weight(np.abs(x), np.abs(gy), (3, 3), stride, pads, dilation)
    assert np.all(got[scale == 0] == 0)
    kernel_scale = scale.sum(axis=(2, 3), keepdims=True)
    ratio = np.max(np.abs(got - exact) / (kernel_scale * 2.0**-24))
    print(f"{name}: worst |error| / (2^-24 sum over the kernel |gy x|): {ratio:.3g}")
    assert ratio <= 4


@pytest.mark.parametrize("case", [(1, 16, 7, 7, 32, (3, 3), 1, 1, 1, 1), (1, 128, 5, 6, 128, (3, 3), 2, 1, 1, 1),
                                  (3, 32, 7, 6, 64, (3, 3), 2, 1, 1, 1)],
                         ids=["stride1", "stride2", "stride2_three_image_groups"])
def test_matches_finite_differences(case):
    x, weight = make(case, "float64")
    assert gc.gradcheck(lambda w: run(case, x, w), [weight], samples=60)


def test_conv_transpose2d_seed_dec1():
    """The seed autoencoder's dec1 (64 -> 64, 7x7 -> 14x14, stride 2): its weight gradient is conv2d's from 14x14
    with 64 channels to 7x7 with 64, inside the rule."""
    rng = np.random.default_rng(3)
    x = gc.tensor(rng.standard_normal((2, 64, 7, 7)))
    weight = gc.tensor(rng.standard_normal((64, 64, 3, 3)), requires_grad=True)
    y = conv_transpose2d(x, weight, stride=2, padding=1, output_padding=1)
    gy = rng.standard_normal(y.shape)
    y.backward(gc.tensor(gy))
    expected = ref.conv2d_grad_weight(gy, x.numpy(), (3, 3), (2, 2), (1, 0, 1, 0))
    assert_close(weight.grad, expected, atol=1e-10, rtol=1e-10, name="weight.grad")


def test_conv_transpose2d_seed_dec2():
    """The seed autoencoder's dec2 (64 -> 32, 14x14 -> 28x28, stride 2): its weight gradient is conv2d's from 28x28
    with 32 channels to 14x14 with 64, inside the rule since stride-2 Winograd took large images too."""
    rng = np.random.default_rng(4)
    x = gc.tensor(rng.standard_normal((3, 64, 14, 14)))
    weight = gc.tensor(rng.standard_normal((64, 32, 3, 3)), requires_grad=True)
    y = conv_transpose2d(x, weight, stride=2, padding=1, output_padding=1)
    gy = rng.standard_normal(y.shape)
    y.backward(gc.tensor(gy))
    expected = ref.conv2d_grad_weight(gy, x.numpy(), (3, 3), (2, 2), (1, 0, 1, 0))
    assert_close(weight.grad, expected, atol=1e-10, rtol=1e-10, name="weight.grad")


def test_conv_transpose2d_stride1():
    """conv_transpose2d's weight gradient is conv2d's with gy as the input (24 channels) and x as the output gradient
    (32 channels): inside the rule."""
    rng = np.random.default_rng(2)
    x = gc.tensor(rng.standard_normal((2, 32, 9, 8)))
    weight = gc.tensor(rng.standard_normal((32, 24, 3, 3)), requires_grad=True)
    y = conv_transpose2d(x, weight, padding=1)
    gy = rng.standard_normal(y.shape)
    y.backward(gc.tensor(gy))
    expected = ref.conv2d_grad_weight(gy, x.numpy(), (3, 3), (1, 1), (1, 1, 1, 1))
    assert_close(weight.grad, expected, atol=1e-10, rtol=1e-10, name="weight.grad")


THREAD_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import gradcore as gc
    rng = np.random.default_rng(0)
    out = []
    # (N, C_in, H, W, C_out, stride, padding): several chunks of images at stride 1; stride 2; strides mixed
    for n, c_in, h, w, c_out, s, p in [(7, 64, 24, 23, 64, 1, 1), (3, 16, 9, 11, 32, 1, 0),
                                       (4, 128, 9, 10, 128, 2, "same"), (2, 128, 8, 9, 136, (2, 1), 1),
                                       (25, 32, 14, 14, 64, 2, "same"), (25, 32, 28, 28, 64, 2, "same"),
                                       (9, 33, 20, 19, 96, 2, 1), (1, 64, 14, 14, 64, 2, 1),
                                       (5, 32, 11, 13, 64, 2, 2), (6, 32, 4, 5, 64, 2, (1, 2))]:
        x = gc.tensor(rng.standard_normal((n, c_in, h, w)), dtype="float32")
        wt = gc.tensor(rng.standard_normal((c_out, c_in, 3, 3)) / 10, dtype="float32", requires_grad=True)
        y = gc.functional.conv2d(x, wt, stride=s, padding=p)
        y.backward(gc.tensor(rng.standard_normal(y.shape), dtype="float32"))
        out.append(wt.grad.numpy().ravel())
    np.save(sys.argv[1], np.concatenate(out))
""")


def test_bitwise_identical_for_any_thread_count(tmp_path):
    outputs = outputs_for_thread_counts(THREAD_SCRIPT, tmp_path)
    assert np.array_equal(outputs[0], outputs[1]) and np.array_equal(outputs[0], outputs[2])


def winograd_calls():
    """Entries into the output transform's phase: one per thread of the parallel region of each call."""
    return _core.phase_times(reset=True).get("conv2d_backward_weight/winograd_output", (0.0, 0))[1]


@pytest.mark.parametrize("name", ["s1_odd_sizes_cut_edge_tiles", "s2_same_asymmetric_padding", "s2_by_s1",
                                  "s2_seed_enc2", "s2_seed_dec2_28x28", "s2_batch1_odd_sizes_c_in_33"])
def test_taken(phase_timing, name):
    case = CASES[name]
    x, weight = make(case, "float32")
    run(case, x, weight).sum().backward()
    assert winograd_calls() >= 1


@pytest.mark.parametrize("stride, dilation, groups, c_in, c_out, size", [
    (1, 2, 1, 32, 32, 16), (1, 1, 2, 32, 32, 16),  # dilation, groups
    (1, 1, 1, 16, 16, 16), (1, 1, 1, 64, 16, 16), (1, 1, 1, 32, 32, 6),  # few channels, C_out 16, under 7x7 outputs
    (2, 1, 1, 32, 32, 14), (2, 1, 1, 24, 64, 28), (2, 1, 1, 64, 48, 28),  # stride 2: under 32 -> 64 channels,
    (2, 1, 1, 32, 72, 14), (2, 1, 1, 33, 80, 14),  # or C_out leaving over 15% of its 32-wide strips empty
    ((2, 1), 1, 1, 64, 127, 17),  # strides mixed: 17x17 under 128 channels
    (3, 1, 1, 128, 128, 16)])  # stride 3
def test_not_taken_outside_its_rule(phase_timing, stride, dilation, groups, c_in, c_out, size):
    x = gc.zeros(1, c_in, size, size)
    weight = gc.zeros(c_out, c_in // groups, 3, 3, requires_grad=True)
    conv2d(x, weight, stride=stride, dilation=dilation, groups=groups, padding=1).sum().backward()
    assert winograd_calls() == 0
