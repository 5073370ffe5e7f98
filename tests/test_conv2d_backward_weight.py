"""The CPU weight gradient of conv2d (and of conv_transpose2d, which calls it with x and gy swapped). It has several
algorithms, chosen by shape (csrc/cpu/conv2d_backward_weight.cpp):
  dots    a short im2col (2 C_in/G kH kW <= C_out/G), e.g. one input channel; by chunks of images, or by blocks of
          the gradient for fewer than 8 images;
  direct  one GEMM per kernel tap with x read in place and gy channel-blocked, tiles one or two vectors wide,
          over whole images or, for large images, bands of output rows;
  strips  the im2col GEMM, where the direct path would mostly multiply padding (very few input channels).
Each is checked against the numpy gradient formula in float64, by finite differences on small shapes, and for the
same bits under 1, 2 and 3 OpenMP threads."""
import textwrap

import numpy as np
import pytest

import gradcore as gc
from gradcore.functional import conv2d, conv_transpose2d
from isolated import outputs_for_thread_counts
from reference import conv2d as ref
from test_conv2d import pads_of
from tolerance import assert_close

# name: (N, C_in, H, W, C_out, (kH, kW), stride, padding, dilation, groups)
CASES = {
    "dots_one_channel_stride2_same": (9, 1, 28, 28, 32, (3, 3), 2, "same", 1, 1),
    "dots_image_chunks_of_three": (40, 1, 9, 10, 24, (3, 3), 1, 1, 1, 1),
    "dots_few_images_by_block": (2, 1, 13, 11, 32, (3, 3), 2, 1, 1, 1),
    "dots_one_channel_wide_rows": (3, 1, 28, 28, 32, (3, 3), 1, 1, 1, 1),
    "dots_three_channels_k27": (2, 3, 9, 8, 64, (3, 3), 1, 1, 1, 1),
    "dots_groups2_even_kernel": (2, 2, 7, 5, 40, (2, 2), 1, (1, 0), 1, 2),
    "direct_two_vectors_stride2_same": (3, 32, 18, 18, 64, (3, 3), 2, "same", 1, 1),  # (14x14: Winograd)
    "direct_one_vector_stride3x2_dilation2x1": (3, 17, 10, 9, 13, (2, 3), (3, 2), (1, 2), (2, 1), 1),
    "direct_groups2_dilation2_wide_padding": (2, 24, 11, 10, 18, (3, 3), (1, 2), (3, 1), 2, 2),
    "direct_c_in65_c_out256": (2, 65, 9, 11, 256, (3, 3), 1, 1, 1, 1),
    "direct_batch1_odd_sizes": (1, 40, 9, 7, 20, (3, 3), 1, 1, 1, 1),
    "direct_pointwise": (2, 48, 5, 6, 40, (1, 1), 1, 0, 1, 1),
    "direct_stride_beyond_kernel": (2, 16, 13, 12, 24, (2, 2), 3, 0, 1, 1),
    "direct_row_bands": (2, 64, 56, 56, 64, (3, 3), 1, 1, 1, 1),
    "direct_row_bands_groups_stride2": (2, 48, 61, 57, 40, (3, 3), 2, (1, 0), (2, 1), 2),
    "strips_two_channels": (2, 2, 9, 9, 16, (3, 3), 1, 1, 1, 1),
}
# Small enough for finite differences of the weight.
GRADCHECK = ["dots_groups2_even_kernel", "direct_one_vector_stride3x2_dilation2x1", "direct_batch1_odd_sizes",
             "direct_stride_beyond_kernel", "strips_two_channels"]
# conv_transpose2d: (N, C_in, H, W, C_out, k, stride, padding, output_padding); its weight gradient is the conv2d
# weight gradient of gy (as the input) against x (as the output gradient).
TRANSPOSED = {
    "dec1_like_direct": (2, 64, 9, 9, 64, 3, 2, 1, 1),  # (7x7, the seed's: Winograd)
    "seed_dec3_dots": (2, 32, 8, 9, 1, 3, 1, 1, 0),
    "one_vector_c_in12": (2, 12, 5, 6, 10, 3, 2, 1, 1),
}


def make(case, dtype, seed=0):
    n, c_in, h, w, c_out, kernel, _, _, _, groups = case
    rng = np.random.default_rng(seed)
    x = gc.tensor(rng.standard_normal((n, c_in, h, w)), dtype=dtype)
    weight = gc.tensor(rng.standard_normal((c_out, c_in // groups) + kernel), dtype=dtype, requires_grad=True)
    return x, weight


def run(case, x, weight):
    _, _, _, _, _, _, stride, padding, dilation, groups = case
    return conv2d(x, weight, stride=stride, padding=padding, dilation=dilation, groups=groups)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", list(CASES))
def test_weight_gradient_matches_reference(name, dtype):
    case = CASES[name]
    x, weight = make(case, dtype)
    y = run(case, x, weight)
    gy = np.random.default_rng(1).standard_normal(y.shape)
    y.backward(gc.tensor(gy, dtype=dtype))
    stride, pads, dilation = pads_of(case)
    expected = ref.conv2d_grad_weight(x.numpy(), gy, weight.shape[2:], stride, pads, dilation, case[-1])
    tol = dict(atol=1e-10, rtol=1e-10) if dtype == "float64" else dict(atol=1e-3, rtol=1e-4)
    assert_close(weight.grad, expected, name=f"{name} weight.grad", **tol)


@pytest.mark.parametrize("name", GRADCHECK)
def test_weight_gradient_matches_finite_differences(name):
    case = CASES[name]
    x, weight = make(case, "float64")
    assert gc.gradcheck(lambda w: run(case, x, w), [weight], samples=60)


@pytest.mark.parametrize("name", list(TRANSPOSED))
def test_transposed_weight_gradient(name):
    n, c_in, h, w, c_out, k, s, p, op = TRANSPOSED[name]
    rng = np.random.default_rng(2)
    x = gc.tensor(rng.standard_normal((n, c_in, h, w)))
    weight = gc.tensor(rng.standard_normal((c_in, c_out, k, k)), requires_grad=True)
    y = conv_transpose2d(x, weight, stride=s, padding=p, output_padding=op)
    gy = rng.standard_normal(y.shape)
    y.backward(gc.tensor(gy))
    # y is the input gradient of a conv2d from y's shape to x's, padded p at the top/left and p - op at the
    # bottom/right (the last op rows and columns of y are read by no output)
    expected = ref.conv2d_grad_weight(gy, x.numpy(), (k, k), (s, s), (p, p - op, p, p - op))
    assert_close(weight.grad, expected, atol=1e-10, rtol=1e-10, name=f"{name} weight.grad")
    small = gc.tensor(rng.standard_normal((1, c_in, 3, 4)))
    assert gc.gradcheck(lambda w: conv_transpose2d(small, w, stride=s, padding=p, output_padding=op), [weight],
                        samples=60)


THREAD_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import gradcore as gc
    from gradcore.functional import conv2d, conv_transpose2d
    rng = np.random.default_rng(0)
    grads = []
    # (N, C_in, H, W, C_out, k, stride, padding, groups): dots (image chunks, blocks), direct (two and one vector),
    # row bands, strips
    for n, c_in, h, w, c_out, k, s, p, g in [(25, 1, 28, 28, 32, 3, 2, "same", 1), (3, 1, 40, 40, 32, 3, 1, 1, 1),
                                             (25, 32, 18, 18, 64, 3, 2, "same", 1),
                                             (6, 30, 12, 11, 13, 3, 1, 1, 1), (2, 64, 56, 56, 64, 3, 1, 1, 1),
                                             (3, 48, 61, 57, 40, 3, 2, 1, 2), (4, 2, 20, 20, 16, 3, 1, 1, 1)]:
        x = gc.tensor(rng.standard_normal((n, c_in, h, w)), dtype="float32")
        weight = gc.tensor(rng.standard_normal((c_out, c_in // g, k, k)), dtype="float32", requires_grad=True)
        y = conv2d(x, weight, stride=s, padding=p, groups=g)
        y.backward(gc.tensor(rng.standard_normal(y.shape), dtype="float32"))
        grads.append(weight.grad.numpy().ravel())
    x = gc.tensor(rng.standard_normal((25, 64, 14, 14)), dtype="float32")
    weight = gc.tensor(rng.standard_normal((64, 32, 3, 3)), dtype="float32", requires_grad=True)
    y = conv_transpose2d(x, weight, stride=2, padding=1, output_padding=1)
    y.backward(gc.tensor(rng.standard_normal(y.shape), dtype="float32"))
    grads.append(weight.grad.numpy().ravel())
    np.save(sys.argv[1], np.concatenate(grads))
""")


def test_bitwise_identical_for_any_thread_count(tmp_path):
    outputs = outputs_for_thread_counts(THREAD_SCRIPT, tmp_path)
    assert np.array_equal(outputs[0], outputs[1]) and np.array_equal(outputs[0], outputs[2])
