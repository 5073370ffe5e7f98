"""The CPU's stride-2 3x3 transposed convolution with fewer multiplies (csrc/cpu/conv_transpose2d_winograd.cpp), taken
by conv_transpose2d's forward and by conv2d's input gradient when the output is exactly twice the input (padding 1
with output_padding 1, or padding "same") and both sides have 16 to 128 x 128 channels: against the float64 numpy
reference for odd and even sizes, one image, channel counts that are not whole vectors, with and without bias and
the fused ReLU, both tile alignments, outputs large enough to be streamed to memory; float64 gradients by finite
differences; the float32 error bound the kernel states; bitwise the same on 1, 2 and 3 threads; taken where its rule
says, and nowhere else."""
import textwrap

import numpy as np
import pytest

import gradcore as gc
from gradcore import _core, nn
from gradcore.functional import conv2d, conv_transpose2d
from gradcore.ops.conv_relu import conv_transpose2d_relu
from isolated import outputs_for_thread_counts
from reference import conv2d as ref
from tolerance import DTYPES, assert_close, float32_error_units, forward_tol

# name: (N, C_in, H, W, C_out) of a conv_transpose2d with a 3x3 kernel and stride 2 (C_in: the gy channels of the
# conv2d view, C_out: the gx channels); its output is (N, C_out, 2 H, 2 W).
CASES = {
    "seed_dec1_shape": (3, 64, 7, 7, 64),  # odd sizes: the last tile row and column are partial
    "seed_dec2_shape": (2, 64, 14, 14, 32),  # even sizes: whole tiles
    "one_image": (1, 32, 6, 5, 16),
    "channels_not_whole_vectors": (2, 20, 5, 6, 17),  # 17 outputs: a second vector of 1 channel
    "rectangular_odd_even": (2, 24, 9, 4, 33),
    "one_pixel": (2, 33, 1, 1, 40),  # a single partial tile
    "one_row": (1, 16, 1, 9, 24),
    "reduction_past_one_gemm_block": (1, 300, 3, 4, 16),  # C_in > 256 (gemm.h's kKc)
    "most_channel_pairs": (1, 128, 4, 3, 128),  # 128 x 128: the rule's limit
    "many_tile_rows_per_image": (1, 16, 23, 18, 16),  # tasks that split one image
    # float32 output of at least 4 MiB: staged and streamed to memory (odd sizes, tasks that split images, rows that
    # start and end inside cache lines)
    "output_streamed": (5, 16, 63, 61, 17),
}

PADDINGS = {"padding1": dict(padding=1, output_padding=1), "same": dict(padding="same")}
REF_PADS = {"padding1": ((1, 1, 1, 1), (1, 1)), "same": ((0, 1, 0, 1), (0, 0))}


def make(case, dtype, seed=0, requires_grad=False):
    n, c_in, h, w, c_out = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c_in, h, w))
    weight = rng.standard_normal((c_in, c_out, 3, 3)) / np.sqrt(c_in * 9 / 4)
    bias = rng.standard_normal(c_out)
    return [gc.tensor(a, dtype=dtype, requires_grad=requires_grad) for a in (x, weight, bias)]


def reference(x, weight, bias, padding):
    pads, output_padding = REF_PADS[padding]
    return ref.conv_transpose2d(x.numpy(), weight.numpy(), None if bias is None else bias.numpy(), (2, 2), pads,
                                output_padding)


def winograd_calls():
    return _core.phase_times(reset=True).get("conv_transpose2d_winograd/weight_transform", (0.0, 0))[1]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("padding", list(PADDINGS))
@pytest.mark.parametrize("name", list(CASES))
def test_forward_matches_reference(name, padding, dtype, phase_timing):
    x, weight, bias = make(CASES[name], dtype)
    y = conv_transpose2d(x, weight, bias, stride=2, **PADDINGS[padding])
    assert winograd_calls() == 1
    assert_close(y, reference(x, weight, bias, padding), name=name, **forward_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("padding", list(PADDINGS))
def test_without_bias(padding, dtype):
    x, weight, _ = make(CASES["seed_dec1_shape"], dtype)
    y = conv_transpose2d(x, weight, None, stride=2, **PADDINGS[padding])
    assert_close(y, reference(x, weight, None, padding), **forward_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("padding", list(PADDINGS))
@pytest.mark.parametrize("name", ["seed_dec1_shape", "channels_not_whole_vectors", "output_streamed"])
def test_fused_relu_is_relu_of_the_result(name, padding, dtype, phase_timing):
    """The fused conv_transpose2d + ReLU applies the epilogue in the output transform: relu of the same sums, so the
    same bits as the unfused op followed by relu."""
    x, weight, bias = make(CASES[name], dtype)
    fused = conv_transpose2d_relu(x, weight, bias, stride=2, **PADDINGS[padding])
    assert winograd_calls() == 1
    plain = conv_transpose2d(x, weight, bias, stride=2, **PADDINGS[padding])
    assert_close(fused, np.maximum(reference(x, weight, bias, padding), 0), **forward_tol(dtype))
    assert np.array_equal(fused.numpy(), np.maximum(plain.numpy(), 0))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("top, left", [(1, 0), (0, 1)])
def test_rows_and_columns_aligned_differently(top, left, dtype, phase_timing):
    """Padding 1 on one side and 0 on the other: the tiles start at an even output along one side and at an odd one
    along the other (conv2d's input gradient with asymmetric padding, through the binding)."""
    rng = np.random.default_rng(3)
    gy = rng.standard_normal((2, 24, 5, 6))
    w = rng.standard_normal((24, 20, 3, 3)) / 6
    pads = (top, 1 - top, left, 1 - left)
    out = _core.conv2d_backward_input(gc.tensor(gy, dtype=dtype)._data, gc.tensor(w, dtype=dtype)._data, (10, 12),
                                      (2, 2), pads, (1, 1), 1)
    assert winograd_calls() == 1
    expected = ref.conv2d_grad_input(gy, w, (10, 12), (2, 2), pads)
    assert_close(out.numpy(), expected, **forward_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv2d_input_gradient(dtype, phase_timing):
    """A stride-2 conv2d of an even-sized input (padding 1) has this transposed convolution as its input gradient."""
    rng = np.random.default_rng(5)
    x = gc.tensor(rng.standard_normal((2, 32, 14, 10)), dtype=dtype, requires_grad=True)
    w = gc.tensor(rng.standard_normal((48, 32, 3, 3)) / 12, dtype=dtype)
    y = conv2d(x, w, stride=2, padding=1)
    gy = rng.standard_normal(y.shape)
    winograd_calls()
    y.backward(gc.tensor(gy, dtype=dtype))
    assert winograd_calls() == 1
    expected = ref.conv2d_grad_input(gy, w.numpy(), (14, 10), (2, 2), (1, 1, 1, 1))
    assert_close(x.grad, expected, **forward_tol(dtype))


@pytest.mark.parametrize("padding", list(PADDINGS))
def test_gradients_match_finite_differences(padding):
    """conv_transpose2d (its forward is this kernel), with and without the fused ReLU, and a stride-2 conv2d (its
    input gradient is this kernel): every float64 gradient against central differences."""
    x, weight, bias = make((1, 16, 3, 4, 17), "float64", seed=6, requires_grad=True)
    kw = dict(stride=2, **PADDINGS[padding])
    assert gc.gradcheck(lambda a, w, b: conv_transpose2d(a, w, b, **kw), [x, weight, bias], samples=60)
    assert gc.gradcheck(lambda a, w, b: conv_transpose2d_relu(a, w, b, **kw), [x, weight, bias], samples=60)
    x2, w2, _ = make((1, 16, 6, 8, 20), "float64", seed=7, requires_grad=True)  # conv2d: x2 (1, 16, 6, 8), w2 as
    w2 = gc.tensor(w2.numpy().transpose(1, 0, 2, 3).copy(), dtype="float64", requires_grad=True)  # (20, 16, 3, 3)
    assert gc.gradcheck(lambda a, w: conv2d(a, w, stride=2, padding=1), [x2, w2], samples=60)


def test_through_the_module(phase_timing):
    """nn.ConvTranspose2d(64, 32, 3, 2, 1, output_padding=1), the seed decoder's layer, runs this kernel forward."""
    layer = nn.ConvTranspose2d(64, 32, 3, 2, 1, output_padding=1)
    x, _, _ = make((2, 64, 7, 7, 32), "float32")
    y = layer(x)
    assert winograd_calls() == 1
    expected = ref.conv_transpose2d(x.numpy(), layer.weight.numpy(), layer.bias.numpy(), (2, 2), (1, 1, 1, 1), (1, 1))
    assert_close(y, expected, **forward_tol("float32"))


def test_float32_error_is_within_the_stated_bound():
    """F(2, 2) adds inputs before the products and up to four products after them, so its float32 rounding differs
    from the direct sum's. Bound (the kernel's header): |y - y_exact| <= 8 * 2^-24 * sum |w| |x| over each output's
    terms. Measured worst ratio: 4.5 over varied shapes (the direct path's about 2-3): a margin of almost 2."""
    rng = np.random.default_rng(4)
    worst = 0.0
    for n, c_in, h, w, c_out in [(4, 64, 7, 7, 64), (2, 64, 14, 14, 32), (2, 128, 5, 6, 96)]:
        x = rng.standard_normal((n, c_in, h, w))
        wt = rng.standard_normal((c_in, c_out, 3, 3))
        for padding in PADDINGS:
            y = conv_transpose2d(gc.tensor(x, dtype="float32"), gc.tensor(wt, dtype="float32"), stride=2,
                                 **PADDINGS[padding]).numpy().astype(np.float64)
            pads, op = REF_PADS[padding]
            worst = max(worst, float32_error_units(y, ref.conv_transpose2d, x, wt, None, (2, 2), pads, op))
    print(f"worst |error| / (2^-24 sum |w x|): {worst:.3g}")
    assert worst <= 8


THREAD_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import gradcore as gc
    from gradcore.ops.conv_relu import conv_transpose2d_relu
    rng = np.random.default_rng(0)
    out = []
    for n, c_in, h, w, c_out, padding in [(25, 64, 7, 7, 64, 1), (6, 64, 14, 14, 32, "same"), (3, 20, 9, 5, 17, 1),
                                            (5, 16, 63, 61, 17, 1), (96, 64, 7, 7, 64, "same")]:
        x = gc.tensor(rng.standard_normal((n, c_in, h, w)), dtype="float32")
        wt = gc.tensor(rng.standard_normal((c_in, c_out, 3, 3)) / 10, dtype="float32")
        b = gc.tensor(rng.standard_normal(c_out), dtype="float32")
        kw = dict(stride=2, padding=padding, output_padding=1 if padding == 1 else 0)
        out += [gc.functional.conv_transpose2d(x, wt, b, **kw).numpy().ravel(),
                conv_transpose2d_relu(x, wt, b, **kw).numpy().ravel()]
    np.save(sys.argv[1], np.concatenate(out))
""")


def test_bitwise_identical_for_any_thread_count(tmp_path):
    outputs = outputs_for_thread_counts(THREAD_SCRIPT, tmp_path)
    assert np.array_equal(outputs[0], outputs[1]) and np.array_equal(outputs[0], outputs[2])


@pytest.mark.parametrize("c_in, c_out, h, kwargs", [
    (64, 64, 7, dict(stride=2, padding=1)),  # output_padding 0: 13 x 13, not twice the input
    (64, 64, 7, dict(stride=2, padding=2, output_padding=1)),
    (64, 64, 7, dict(stride=1, padding=1)),
    (64, 64, 7, dict(stride=2, padding=1, output_padding=1, dilation=2)),
    (64, 64, 7, dict(stride=2, padding=1, output_padding=1, groups=2)),
    (8, 64, 7, dict(stride=2, padding=1, output_padding=1)),  # fewer than 16 channels on one side
    (64, 8, 7, dict(stride=2, padding=1, output_padding=1)),
    (256, 256, 4, dict(stride=2, padding=1, output_padding=1)),  # more than 128 x 128 channel pairs
])
def test_not_taken_outside_its_rule(phase_timing, c_in, c_out, h, kwargs):
    """Outside the rule the kernel is not called, so those shapes keep the paths (and the bits) they had; the result
    still matches the reference."""
    groups = kwargs.get("groups", 1)
    rng = np.random.default_rng(9)
    x = gc.tensor(rng.standard_normal((2, c_in, h, h)), dtype="float64")
    w = gc.tensor(rng.standard_normal((c_in, c_out // groups, 3, 3)) / 20, dtype="float64")
    y = conv_transpose2d(x, w, **kwargs)
    assert winograd_calls() == 0
    p = kwargs["padding"]
    op = kwargs.get("output_padding", 0)
    expected = ref.conv_transpose2d(x.numpy(), w.numpy(), None, (kwargs["stride"],) * 2, (p, p, p, p), (op, op),
                                    (kwargs.get("dilation", 1),) * 2, groups)
    assert_close(y, expected, **forward_tol("float64"))
