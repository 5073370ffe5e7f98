"""Property-based fuzz of conv2d and conv_transpose2d arguments (hypothesis): shapes (empty batches and zero channels
included), stride, padding (ints, pairs, "same", "valid"), dilation, groups and output_padding, drawn small.
A valid draw must match the float64 numpy references of tests/reference/conv2d.py, forward and all three gradients;
an invalid draw must raise ValueError naming the argument at fault. Derandomized, so CI runs the same examples."""
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings, strategies as st

import gradcore as gc
from gradcore.functional import conv2d, conv_transpose2d
from reference import conv2d as ref
from tolerance import assert_close

FUZZ = settings(derandomize=True, max_examples=1000, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])
TOL = dict(atol=1e-10, rtol=1e-9)

small = st.integers(1, 3)
pairs = st.tuples(small, small)
paddings = st.one_of(st.integers(0, 2), st.tuples(st.integers(0, 2), st.integers(0, 2)), st.sampled_from(["same",
                                                                                                          "valid"]))


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def same_padding(size, kernel, stride, dilation):
    """The documented rule (python/gradcore/ops/conv2d.py): out = ceil(size / stride), the odd pixel after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    return total // 2, total - total // 2


def conv2d_pads(padding, hw, kernel, stride, dilation):
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        return same_padding(hw[0], kernel[0], stride[0], dilation[0]) + same_padding(hw[1], kernel[1], stride[1],
                                                                                     dilation[1])
    ph, pw = _pair(padding)
    return (ph, ph, pw, pw)


def _arrays(rng, *shapes):
    return [rng.standard_normal(s) for s in shapes]


def _leaf(a):
    return gc.tensor(a, dtype="float64", requires_grad=True)


@st.composite
def conv2d_args(draw):
    groups = draw(st.integers(1, 3))
    mostly_nonzero = st.sampled_from([1, 2, 3, 1, 2, 3, 0])  # empty tensors in about 1 draw of 3
    cg, og = draw(mostly_nonzero), draw(mostly_nonzero)
    n = draw(st.sampled_from([1, 2, 1, 2, 0]))
    hw = (draw(st.integers(1, 7)), draw(st.integers(1, 7)))
    kernel, stride, dilation = draw(pairs), draw(pairs), draw(st.tuples(st.integers(1, 2), st.integers(1, 2)))
    return dict(n=n, groups=groups, cg=cg, og=og, hw=hw, kernel=kernel, stride=stride, dilation=dilation,
                padding=draw(paddings), bias=draw(st.booleans()), seed=draw(st.integers(0, 2**16)))


@FUZZ
@given(conv2d_args())
def test_conv2d_matches_the_reference_or_names_what_is_wrong(a):
    rng = np.random.default_rng(a["seed"])
    c_in, c_out = a["groups"] * a["cg"], a["groups"] * a["og"]
    kernel, stride, dilation = a["kernel"], a["stride"], a["dilation"]
    pads = conv2d_pads(a["padding"], a["hw"], kernel, stride, dilation)
    xa, wa, ba = _arrays(rng, (a["n"], c_in, *a["hw"]), (c_out, a["cg"], *kernel), (c_out,))
    x, w = _leaf(xa), _leaf(wa)
    b = _leaf(ba) if a["bias"] else None
    padded = (a["hw"][0] + pads[0] + pads[1], a["hw"][1] + pads[2] + pads[3])
    extent = (dilation[0] * (kernel[0] - 1) + 1, dilation[1] * (kernel[1] - 1) + 1)
    if extent[0] > padded[0] or extent[1] > padded[1]:
        event("invalid: kernel larger than the padded input")
        with pytest.raises(ValueError, match="weight: the dilated kernel"):
            conv2d(x, w, b, stride, a["padding"], dilation, a["groups"])
        return
    event("valid" + (" (empty: zero batch or channels)" if 0 in (a["n"], a["cg"], a["og"]) else ""))
    y = conv2d(x, w, b, stride, a["padding"], dilation, a["groups"])
    expected = ref.conv2d(xa, wa, ba if a["bias"] else None, stride, pads, dilation, a["groups"])
    assert_close(y, expected, **TOL, name="y")
    gy = rng.standard_normal(y.shape)
    y.backward(gc.tensor(gy, dtype="float64"))
    assert_close(x.grad, ref.conv2d_grad_input(gy, wa, a["hw"], stride, pads, dilation, a["groups"]), **TOL,
                 name="dx")
    assert_close(w.grad, ref.conv2d_grad_weight(xa, gy, kernel, stride, pads, dilation, a["groups"]), **TOL,
                 name="dw")
    if a["bias"]:
        assert_close(b.grad, gy.sum(axis=(0, 2, 3)), **TOL, name="db")


def same_cropping(kernel, stride, dilation):
    """The documented rule (python/gradcore/ops/conv_transpose2d.py): out = in * stride."""
    total = dilation * (kernel - 1) + 1 - stride
    return ((total // 2, total - total // 2), 0) if total >= 0 else ((0, 0), -total)


@st.composite
def conv_transpose2d_args(draw):
    args = draw(conv2d_args())
    # Mostly valid (below max(stride, dilation), PyTorch's bound); about 1 draw in 8 at or past it, which must raise.
    args["output_padding"] = tuple(
        draw(st.integers(m, m + 1)) if draw(st.sampled_from([False] * 7 + [True])) else draw(st.integers(0, m - 1))
        for m in (max(s, d) for s, d in zip(args["stride"], args["dilation"])))
    return args


@FUZZ
@given(conv_transpose2d_args())
def test_conv_transpose2d_matches_the_reference_or_names_what_is_wrong(a):
    rng = np.random.default_rng(a["seed"])
    c_in, c_out = a["groups"] * a["cg"], a["groups"] * a["og"]
    kernel, stride, dilation, padding = a["kernel"], a["stride"], a["dilation"], a["padding"]
    xa, wa, ba = _arrays(rng, (a["n"], c_in, *a["hw"]), (c_in, a["og"], *kernel), (c_out,))
    x, w = _leaf(xa), _leaf(wa)
    b = _leaf(ba) if a["bias"] else None
    out_pad = a["output_padding"]
    if padding == "same":
        (top, bottom), oph = same_cropping(kernel[0], stride[0], dilation[0])
        (left, right), opw = same_cropping(kernel[1], stride[1], dilation[1])
        out_pad, pads, given_out_pad = (oph, opw), (top, bottom, left, right), (0, 0)
    else:
        pads = conv2d_pads(padding, a["hw"], kernel, stride, dilation)
        given_out_pad = out_pad
    call = lambda: conv_transpose2d(x, w, b, stride, padding, given_out_pad, a["groups"], dilation)  # noqa: E731
    if padding != "same" and any(out_pad[i] >= max(stride[i], dilation[i]) for i in range(2)):
        event("invalid: output_padding >= max(stride, dilation)")
        with pytest.raises(ValueError, match="output_padding: expected values smaller than stride"):
            call()
        return
    out = [(a["hw"][i] - 1) * stride[i] - pads[2 * i] - pads[2 * i + 1] + dilation[i] * (kernel[i] - 1) + 1
           + out_pad[i] for i in range(2)]
    if min(out) < 1:
        event("invalid: padding crops the whole output")
        with pytest.raises(ValueError, match="padding: the output size"):
            call()
        return
    event("valid" + (" (empty: zero batch or channels)" if 0 in (a["n"], a["cg"], a["og"]) else ""))
    y = call()
    expected = ref.conv_transpose2d(xa, wa, ba if a["bias"] else None, stride, pads, out_pad, dilation, a["groups"])
    assert_close(y, expected, **TOL, name="y")
    if padding == "same":
        assert y.shape[2:] == (a["hw"][0] * stride[0], a["hw"][1] * stride[1])
    gy = rng.standard_normal(y.shape)
    y.backward(gc.tensor(gy, dtype="float64"))
    # The adjoint relations, with the reference conv2d as the forward map from y's space to x's. With
    # output_padding >= stride (dilation > stride) that map's output is longer than x: x is its first rows/columns
    # (the rest read as zeros).
    back = ref.conv2d(gy, wa, None, stride, pads, dilation, a["groups"])
    assert_close(x.grad, back[:, :, :a["hw"][0], :a["hw"][1]], **TOL, name="dx")
    x_padded = np.zeros(back.shape[:1] + xa.shape[1:2] + back.shape[2:])
    x_padded[:, :, :a["hw"][0], :a["hw"][1]] = xa
    assert_close(w.grad, ref.conv2d_grad_weight(gy, x_padded, kernel, stride, pads, dilation, a["groups"]), **TOL,
                 name="dw")
    if a["bias"]:
        assert_close(b.grad, gy.sum(axis=(0, 2, 3)), **TOL, name="db")


# ---- invalid combinations: ValueError naming the argument ----------------------------------------------------------
BREAKERS = {
    # name: (what to change, the words the message must hold)
    "stride_zero": (dict(stride=(0, 1)), "stride: expected values >= 1"),
    "stride_negative": (dict(stride=-2), "stride: expected values >= 1"),
    "dilation_zero": (dict(dilation=(1, 0)), "dilation: expected values >= 1"),
    "padding_negative": (dict(padding=(0, -1)), "padding: expected values >= 0"),
    "padding_unknown_word": (dict(padding="full"), "padding: expected an int, a pair, \"valid\" or \"same\""),
    "groups_zero": (dict(groups=0), "groups: expected an integer >= 1"),
    "groups_not_dividing": (dict(groups=4), "groups"),
    "stride_beyond_int64": (dict(stride=2**63), "stride: expected values >= 1 and below 2**63"),
    "padding_overflowing_int64": (dict(padding=2**62), "padding"),
}


@st.composite
def broken_args(draw):
    return draw(st.sampled_from(sorted(BREAKERS))), draw(st.integers(1, 3)), draw(st.integers(0, 2)), \
        draw(st.booleans())


@settings(derandomize=True, max_examples=200, deadline=None, database=None)
@given(broken_args())
def test_invalid_convolution_arguments_raise_value_error_naming_the_argument(drawn):
    breaker, channels, extra_size, transpose = drawn
    event(breaker)
    change, words = BREAKERS[breaker]
    x = gc.randn(1, 3 * channels, 5 + extra_size, 6)
    kwargs = dict(stride=1, padding=1, dilation=1, groups=1)
    kwargs.update(change)
    with pytest.raises(ValueError) as error:
        if transpose:
            conv_transpose2d(x, gc.randn(3 * channels, 2, 3, 3), **kwargs)
        else:
            conv2d(x, gc.randn(2, 3 * channels, 3, 3), **kwargs)
    assert words in str(error.value)


@pytest.mark.parametrize("transpose", [False, True], ids=["conv2d", "conv_transpose2d"])
def test_a_kernel_larger_than_the_padded_input_names_the_weight(transpose):
    x = gc.randn(1, 2, 2, 2)
    with pytest.raises(ValueError, match="weight: the dilated kernel" if not transpose else "padding"):
        if transpose:
            conv_transpose2d(x, gc.randn(2, 1, 3, 3), padding=3)
        else:
            conv2d(x, gc.randn(1, 2, 3, 3), dilation=2)
