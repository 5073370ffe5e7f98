"""The bad-input table: calls over the public API that a hostile or careless user might make, each with the
exception it must raise and words its message must hold (the argument's name, and what was expected).

A case is (id, code, error, words): `code` runs in the namespace of tests/bad_input_child.py (x, w, b, wt, x64, v,
m, p, t, rm, rv, pre, c, param, model, data); `error` is the exception's class name, or None for a call that must
succeed (an edge case that is valid input); every string of `words` must appear in the message.
The rule for the type: a value of the wrong kind (a float for an int, a string for a number, None for a Tensor) is
a TypeError; a value of the right kind out of range (0 for a stride, NaN for a learning rate) is a ValueError.
"""
import re
from collections import namedtuple

Case = namedtuple("Case", "id code error words")
CASES = []


def case(case_id, code, error, *words):
    taken = {c.id for c in CASES}
    unique, n = case_id, 2
    while unique in taken:  # two spellings that slug alike get -2, -3
        unique, n = f"{case_id}-{n}", n + 1
    CASES.append(Case(unique, code, error, words))


def slug(code, limit=60):
    """A readable id from the code of a call: F.conv2d(x64, w, b) -> conv2d(x64,w,b)."""
    text = re.sub(r"\b(gc|F|nn|optim|np)\.", "", code.split(";")[-1].strip())
    text = re.sub(r"\s+", "", text).replace("'", "").replace('"', "")
    return text[:limit]


T, V, R = "TypeError", "ValueError", "RuntimeError"

# Values for an argument taking a positive int or a pair of them (stride, dilation, kernel_size), by what they are.
PAIR_BAD = [("0", V), ("-1", V), ("(1, 0)", V), ("2**63", V), ("(2, 2**64)", V), ("1.5", T), ("'2'", T),
            ("None", T), ("(1,)", T), ("(1, 2, 3)", T), ("True", T), ("float('nan')", T), ("[1, 1.5]", T)]
# ... and one taking a non-negative int or pair (padding, output_padding): 0 is valid.
PADDING_BAD = [("-1", V), ("(0, -2)", V), ("2**63", V), ("1.5", T), ("None", T), ("(1,)", T), ("(1, 2, 3)", T),
               ("True", T), ("'full'", V), ("[0, 0.5]", T)]
# ... and a positive int (groups, channels, sizes).
INT_BAD = [("0", V), ("-3", V), ("2**63", V), ("1.5", T), ("'3'", T), ("None", T), ("True", T), ("[1]", T)]
# ... and a real number that must be >= 0 (learning rates, eps, weight decay).
REAL_BAD = [("-1.0", V), ("float('nan')", V), ("'0.1'", T), ("None", T), ("[0.1]", T), ("1j", T)]
# Things that are not Tensors.
NOT_TENSORS = [("None", "None"), ("np_array", "np.zeros((2, 3, 6, 6), np.float32)"), ("list", "[[1.0, 2.0]]"),
               ("number", "3.0"), ("string", "'x'")]


def value_id(text):
    """A readable test id for a value written as code: '2' -> str2, [1, 1.5] -> list1_1.5, (1, 0) -> 1_0."""
    text = text.replace("float('nan')", "nan").replace("2**63", "2e63").replace("2**64", "2e64").replace(" ", "")
    if text.startswith("'"):
        text = "str" + text
    elif text.startswith("["):
        text = "list" + text
    for ch in "'()[]":
        text = text.replace(ch, "")
    return text.replace(",", "_") or "empty"


# ---- tensor factories ------------------------------------------------------------------------------------------
for fn in ("gc.zeros", "gc.ones", "gc.rand", "gc.randn"):
    name = fn.split(".")[1]
    for shape, err in [("-1", V), ("2, -3", V), ("2.5", T), ("'3'", T), ("None", T), ("2**64", V),
                       ("2**62 + 1, 4", V), ("[2, [3]]", T), ("True, 2", T)]:
        case(f"{name}-shape-{value_id(shape)}", f"{fn}({shape})", err, "shape")
    for dtype in ("'int32'", "'float16'", "3", "'float'") + (("np.int64", "'bool'") if "rand" in name else ()):
        case(f"{name}-dtype-{value_id(dtype)}", f"{fn}(2, dtype={dtype})", T, "dtype", "expected float32")
    for device in ("'gpu'", "'cuda:x'", "0", "'cpu:0'", "None"):
        case(f"{name}-device-{value_id(device)}", f"{fn}(2, device={device})", V, "device", "expected")
    case(f"{name}-empty-shape-is-valid", f"assert {fn}(0, 3).numel == 0", None)
for value, err in [("'a'", T), ("None", T), ("[1.0]", T), ("1j", T)]:
    case(f"full-value-{value_id(value)}", f"gc.full((2,), {value})", err, "value", "expected a number")
case("full-shape-negative", "gc.full((2, -1), 1.0)", V, "shape")
for data, err, words in [("'abc'", T, ("data", "numbers")), ("[[1, 2], [3]]", V, ("data", "ragged")),
                         ("object()", T, ("data",)), ("[1, None]", T, ("data",)), ("{'a': 1}", T, ("data",)),
                         ("np.array(['a'])", T, ("data", "numbers")), ("1 + 2j", T, ("data", "numbers")),
                         ("[[1.0], 'a']", V, ("data",))]:
    case(f"tensor-data-{value_id(data)[:20]}", f"gc.tensor({data})", err, *words)
case("tensor-dtype-int32", "gc.tensor([1.0], dtype='int32')", T, "dtype")
case("tensor-device-bad", "gc.tensor([1.0], device='tpu')", V, "device")
case("tensor-bool-data-is-valid", "assert gc.tensor([True, False]).tolist() == [1.0, 0.0]", None)
case("tensor-int-data-is-valid", "assert gc.tensor(np.arange(3)).dtype == 'int64'", None)
for code, err, words in [
        ("gc.from_numpy([1.0, 2.0])", T, ("array", "numpy.ndarray")),
        ("gc.from_numpy(np.zeros(3, np.int16))", T, ("array", "int64 or bool")),
        ("gc.from_numpy(np.zeros(3, np.float16))", T, ("array", "int64 or bool")),
        ("gc.from_numpy(np.zeros((3, 4))[:, ::2])", V, ("array", "contiguous")),
        ("a = np.zeros(3); a.flags.writeable = False; gc.from_numpy(a)", V, ("array", "writeable")),
        ("gc.from_numpy(np.zeros(3, '>f8'))", T, ("array", "native byte order")),
        ("gc.from_numpy(np.ndarray((4,), np.float64, buffer=bytearray(40), offset=1))", V, ("array", "aligned")),
        ("assert gc.tensor(np.ndarray((4,), np.float64, buffer=bytearray(40), offset=1)).numel == 4", None, ()),
        ("gc.from_dlpack(5)", T, ("x", "__dlpack__")),
        ("gc.from_dlpack(np.zeros(3, np.int32))", T, ("x", "int64 or bool")),
        ("gc.zeros_like(np.zeros(3))", T, ("t", "Tensor")),
        ("gc.ones_like(None)", T, ("t", "Tensor"))]:
    case(f"convert-{slug(code)}", code, err, *words)

# ---- Tensor methods ----------------------------------------------------------------------------------------------
for shape, err in [("3.9, 2", T), ("(5, 5)", V), ("-1, -1", V), ("-2, 36", V), ("'a', 2", T), ("None", T),
                   ("2**63, 1", V), ("True, 72", T)]:
    case(f"reshape-{value_id(shape)}", f"x.reshape({shape})", err, "shape")
for fn in ("sum", "mean"):
    for axis, err in [("4", V), ("-5", V), ("1.5", T), ("'a'", T), ("(0, 0)", V), ("(0, 9)", V), ("[None]", T)]:
        case(f"{fn}-axis-{value_id(axis)}", f"x.{fn}(axis={axis})", err, "axis")
    case(f"{fn}-of-non-tensor", f"F.{fn}([1.0, 2.0])", T, "x", "Tensor")
case("mean-of-empty", "gc.zeros(0, 3).mean(axis=0)", V, "mean", "no elements")
case("sum-of-empty-is-zero", "assert gc.zeros(0, 3).sum().item() == 0.0", None)
case("sum-9-dims", "gc.zeros(*[2] * 9).sum(axis=(0, 2, 4, 6, 8))", V, "x", "at most 8 dimensions")
for code, err, words in [
        ("x.to(device='gpu')", V, ("device",)), ("x.to(dtype='int8')", T, ("dtype",)), ("x.item()", V, ("item",)),
        ("len(gc.tensor(1.0))", T, ("0-d",)), ("x.fill_('a')", T, ("value", "number")),
        ("x.fill_(None)", T, ("value", "number")), ("x.fill_([1.0])", T, ("value", "number")),
        ("x.fill_(gc.tensor(2.0))", None, ()), ("x.fill_(np.float32(2.0))", None, ()),
        ("x.fill_(gc.ones(2))", T, ("value", "number")), ("x.copy_(w)", V, ("src", "shape")), ("x.copy_('abc')", T, ("data",)),
        ("x.requires_grad_().sum().backward(gradient=gc.ones(3))", V, ("gradient", "shape")),
        ("y = x.requires_grad_() * 2; y.backward()", R, ("gradient", "non-scalar")),
        ("x.requires_grad_().sum().backward(gradient='a')", T, ("gradient", "Tensor")),
        ("gc.ones(2).sum().backward()", R, ("does not require grad",)),
        ("x.size(7)", V, ("dim", "out of range")), ("x.size('a')", T, ("dim",)),
        ("x.flatten(start_dim=9)", V, ("start_dim",)), ("x.flatten(start_dim=1.5)", T, ("start_dim",)),
        ("x.cuda(index='a')", V, ("device",)), ("x.pow('2')", T, ("exponent",)),
        ("x.leaky_relu('a')", T, ("negative_slope", "number")), ("x.detach().requires_grad_().clone().sum()", None, ()),
        ("gc.tensor(5.0)[0]", "IndexError", ("index", "0-dim"))]:
    case(f"tensor-method-{slug(code)}", code, err, *words)

# ---- elementwise ops ---------------------------------------------------------------------------------------------
for op in ("add", "sub", "mul", "div"):
    for other, err, words in [("'a'", T, ("b",)), ("None", T, ("b",)), ("[1.0]", T, ("b",)),
                              ("m", V, ("broadcast",)), ("x64", T, ("dtype",)), ("np.ones(3)", T, ("b",))]:
        case(f"{op}-other-{value_id(other)}", f"F.{op}(x, {other})", err, *words)
    case(f"{op}-first-not-tensor", f"F.{op}('a', x)", T, "a")
for op in ("relu", "sigmoid", "tanh", "exp", "log", "sqrt", "abs", "neg"):
    for label, value in NOT_TENSORS[:3]:
        case(f"{op}-{label}", f"F.{op}({value})", T, "x", "Tensor")
for code, err, words in [
        ("F.pow(x, '2')", T, ("exponent",)), ("F.pow(x, None)", T, ("exponent",)), ("F.pow(x, x)", T, ("exponent",)),
        ("F.leaky_relu(x, 'a')", T, ("negative_slope", "number")), ("F.leaky_relu(x, None)", T, ("negative_slope",)),
        ("F.leaky_relu(x, float('nan'))", V, ("negative_slope",)),
        ("x + 'a'", T, ("b",)), ("'a' - x", T, ("b", "number")), ("x * None", T, ("b",)), ("[1] / x", T, ("b",)),
        ("x ** 'a'", T, ("exponent",)),
        ("y = x / 0.0; assert np.isinf(y.numpy()[x.numpy() != 0]).all()", None, ()),
        ("y = gc.tensor([-1.0, 0.0, 2.0]) / -0.0; assert y.numpy()[0] == np.inf and np.isnan(y.numpy()[1])", None, ()),
        ("assert np.isnan(F.relu(gc.tensor([np.nan])).item())", None, ())]:
    case(f"elementwise-{slug(code)}", code, err, *words)

# ---- convolutions ------------------------------------------------------------------------------------------------
for arg in ("stride", "dilation"):
    for value, err in PAIR_BAD:
        case(f"conv2d-{arg}-{value_id(value)}", f"F.conv2d(x, w, b, {arg}={value})", err, arg, "expected")
        case(f"conv_transpose2d-{arg}-{value_id(value)}", f"F.conv_transpose2d(x, wt, None, {arg}={value})", err, arg,
             "expected")
for value, err in PADDING_BAD:
    case(f"conv2d-padding-{value_id(value)}", f"F.conv2d(x, w, b, padding={value})", err, "padding", "expected")
    case(f"conv_transpose2d-padding-{value_id(value)}", f"F.conv_transpose2d(x, wt, padding={value})", err, "padding",
         "expected")
    case(f"conv_transpose2d-output_padding-{value_id(value)}",  # takes no strings: "full" is of the wrong kind
         f"F.conv_transpose2d(x, wt, stride=3, output_padding={value})", T if value[0] == "'" else err,
         "output_padding", "expected")
for value, err in INT_BAD:
    case(f"conv2d-groups-{value_id(value)}", f"F.conv2d(x, w, None, groups={value})", err, "groups", "expected")
    case(f"conv_transpose2d-groups-{value_id(value)}", f"F.conv_transpose2d(x, wt, groups={value})", err, "groups",
         "expected")
for fn, weight in (("conv2d", "w"), ("conv_transpose2d", "wt")):
    for label, value in NOT_TENSORS:
        case(f"{fn}-x-{label}", f"F.{fn}({value}, {weight})", T, "x", "Tensor")
        case(f"{fn}-weight-{label}", f"F.{fn}(x, {value})", T, "weight", "Tensor")
    for label, value in NOT_TENSORS[2:]:
        case(f"{fn}-bias-{label}", f"F.{fn}(x, {weight}, {value})", T, "bias")
    for code, err, words in [
            (f"F.{fn}(gc.randn(3, 6, 6), {weight})", V, ("x", "4 dimensions")),
            (f"F.{fn}(x, gc.randn(3, 3, 3))", V, ("weight", "4 dimensions")),
            (f"F.{fn}(x64, {weight})", T, ("weight", "float64")),
            (f"F.{fn}(x64, {weight}, gc.randn(4))", T, ("weight", "float64")),
            (f"F.{fn}(x, {weight}, gc.randn(5))", V, ("bias", "shape")),
            (f"F.{fn}(x, {weight}, gc.randn(4, 1))", V, ("bias",)),
            (f"F.{fn}(x, {weight}, gc.randn(4, dtype='float64'))", T, ("bias", "dtype")),
            (f"F.{fn}(x, {weight}, groups=2)", V, ("groups",)),
            (f"F.{fn}(x, gc.randn(4, 2, 3, 3) if '{fn}' == 'conv2d' else gc.randn(2, 4, 3, 3))", V, ("weight",)),
            (f"F.{fn}(x, {weight}, padding='SAME')", V, ("padding", "same")),
            (f"F.{fn}(x, {weight}, stride=2**62, padding=2**62)", V, ("padding",)),
            (f"F.{fn}(gc.zeros(0, 3, 6, 6), {weight}).shape", None, ()),
            (f"F.{fn}(x, {weight}, padding='same')", None, ())]:
        case(f"{fn}-tensor-{slug(code)}", code, err, *words)
case("conv2d-kernel-larger-than-input", "F.conv2d(gc.randn(1, 3, 2, 2), w)", V, "weight", "larger than the padded input")
case("conv2d-padding-overflow", "F.conv2d(x, w, padding=2**62)", V, "padding")
case("conv_transpose2d-output_padding-ge-stride", "F.conv_transpose2d(x, wt, stride=2, output_padding=2)", V,
     "output_padding", "smaller than stride")
case("conv_transpose2d-same-with-output_padding", "F.conv_transpose2d(x, wt, stride=2, padding='same', "
     "output_padding=1)", V, "output_padding")
for value, err, words in [("(5, 5)", V, ("output_size", "cannot be reached")), ("(1,)", T, ("output_size",)),
                          ("'big'", T, ("output_size",)), ("(6.5, 6)", T, ("output_size",)),
                          ("(2, 4, 8, 8)", None, ())]:
    case(f"conv_transpose2d-output_size-{value_id(value)}", f"F.conv_transpose2d(x, wt, output_size={value})",
         err, *words)
case("conv_transpose2d-padding-crops-everything", "F.conv_transpose2d(gc.randn(1, 3, 1, 1), wt, padding=2)", V,
     "padding", "not positive")

# ---- convolution modules -----------------------------------------------------------------------------------------
for cls, weight_extra in (("nn.Conv2d", ""), ("nn.ConvTranspose2d", "")):
    short = cls.split(".")[1]
    for arg_index, arg in enumerate(("in_channels", "out_channels")):
        for value, err in INT_BAD:
            args = ["3", "4", "3"]
            args[arg_index] = value
            case(f"{short}-{arg}-{value_id(value)}", f"{cls}({', '.join(args)})", err, arg, "expected")
    for value, err in PAIR_BAD:
        case(f"{short}-kernel_size-{value_id(value)}", f"{cls}(3, 4, {value})", err, "kernel_size", "expected")
    for arg in ("stride", "dilation"):
        for value, err in PAIR_BAD[:8]:
            case(f"{short}-{arg}-{value_id(value)}", f"{cls}(3, 4, 3, {arg}={value})", err, arg, "expected")
    for value, err in PADDING_BAD[:6]:
        case(f"{short}-padding-{value_id(value)}", f"{cls}(3, 4, 3, padding={value})", err, "padding", "expected")
    for value, err in INT_BAD[:6]:
        case(f"{short}-groups-{value_id(value)}", f"{cls}(3, 4, 3, groups={value})", err, "groups", "expected")
    for code, err, words in [
            (f"{cls}(3, 4, 3, groups=2)", V, ("groups",)), (f"{cls}(3, 4, 3, init='zeros')", V, ("init",)),
            (f"{cls}(3, 4, 3, dtype='int32')", T, ("dtype",)), (f"{cls}(3, 4, 3, device='gpu')", V, ("device",)),
            (f"{cls}(3, 4, 3, generator='seed')", T, ("generator",)),
            (f"{cls}(3, 4, 3)(gc.randn(2, 5, 6, 6))", V, ("channels",)), (f"{cls}(3, 4, 3)(None)", T, ("x",)),
            (f"{cls}(3, 4, 3)(gc.randn(3, 6, 6))", V, ("x", "4 dimensions"))]:
        case(f"{short}-module-{slug(code)}", code, err, *words)
for value, err in PADDING_BAD[:5]:
    case(f"ConvTranspose2d-output_padding-{value_id(value)}", f"nn.ConvTranspose2d(3, 4, 3, stride=2, "
         f"output_padding={value})", err, "output_padding", "expected")

# ---- batch norm --------------------------------------------------------------------------------------------------
for label, value in NOT_TENSORS[:3]:
    case(f"batch_norm-x-{label}", f"F.batch_norm({value}, rm, rv)", T, "x", "Tensor")
for arg in ("running_mean", "running_var", "weight", "bias"):
    call = f"kw = dict(running_mean=rm, running_var=rv); kw['{arg}'] = {{}}; F.batch_norm(x, **kw)"
    case(f"batch_norm-{arg}-list", call.format("[0.0, 0.0, 0.0]"), T, arg, "Tensor")
    case(f"batch_norm-{arg}-shape", call.format("gc.zeros(4)"), V, arg, "shape")
    case(f"batch_norm-{arg}-dtype", call.format("gc.zeros(3, dtype='float64')"), T, arg, "dtype")
for value, err in REAL_BAD:
    case(f"batch_norm-eps-{value_id(value)}", f"F.batch_norm(x, rm, rv, eps={value})", err, "eps", "expected")
for value, err in [("-0.5", V), ("1.5", V), ("float('nan')", V), ("'a'", T), ("[0.1]", T)]:
    case(f"batch_norm-momentum-{value_id(value)}", f"F.batch_norm(x, rm, rv, momentum={value})", err, "momentum")
for code, err, words in [
        ("F.batch_norm(gc.randn(2, 3, 4), rm, rv)", V, ("x", "4-d")),
        ("F.batch_norm(x, None, None, training=False)", V, ("running_mean",)),
        ("F.batch_norm(gc.randn(1, 3, 1, 1), rm, rv)", V, ("x", "more than 1 value")),
        ("F.batch_norm(x, rm, rv, training=False)", None, ()),
        ("F.batch_norm(x, None, None)", None, ())]:
    case(f"batch_norm-{slug(code)}", code, err, *words)
for value, err in INT_BAD:
    case(f"BatchNorm2d-num_features-{value_id(value)}", f"nn.BatchNorm2d({value})", err, "num_features", "expected")
for value, err in REAL_BAD:
    case(f"BatchNorm2d-eps-{value_id(value)}", f"nn.BatchNorm2d(3, eps={value})", err, "eps", "expected")
for value, err in [("-0.5", V), ("1.5", V), ("'a'", T), ("float('nan')", V)]:
    case(f"BatchNorm2d-momentum-{value_id(value)}", f"nn.BatchNorm2d(3, momentum={value})", err, "momentum")
for code, err, words in [
        ("nn.BatchNorm2d(3)(gc.randn(2, 4, 5, 5))", V, ("channels",)), ("nn.BatchNorm2d(3)(None)", T, ("x",)),
        ("nn.BatchNorm2d(3, dtype='int64')", T, ("dtype",)), ("nn.BatchNorm2d(3)(gc.randn(2, 3, 5))", V, ("x",))]:
    case(f"BatchNorm2d-{slug(code)}", code, err, *words)

# ---- ConvLSTM ----------------------------------------------------------------------------------------------------
for code, err, words in [
        ("F.conv_lstm_gates(None, c)", T, ("pre", "Tensor")), ("F.conv_lstm_gates(pre, None)", T, ("c", "Tensor")),
        ("F.conv_lstm_gates(gc.randn(2, 7, 4, 4), c)", V, ("pre",)),
        ("F.conv_lstm_gates(pre, gc.randn(2, 3, 4, 4))", V, ("c",)),
        ("F.conv_lstm_gates(pre, c.double())", T, ("c", "dtype")),
        ("F.conv_lstm_gates(pre, c, gc.randn(3, 2, 4, 5))", V, ("peephole",)),
        ("F.conv_lstm_gates(pre, c, [1.0])", T, ("peephole",)),
        ("F.conv_lstm_gates(gc.randn(8, 4, 4), c)", V, ("pre", "4 dimensions")),
        ("F.conv_lstm_cell(x, c, c, gc.randn(8, 5, 3, 3))", V, ("h",)),
        ("F.conv_lstm_cell(gc.randn(2, 3, 4, 4), c, c, gc.randn(8, 4, 3, 3))", V, ("weight",)),
        ("F.conv_lstm_cell(gc.randn(2, 3, 4, 4), c, c, gc.randn(8, 5, 3, 3), gc.randn(7))", V, ("bias",)),
        ("F.conv_lstm_cell(gc.randn(2, 3, 4, 4), c, gc.randn(2, 2, 4, 3), gc.randn(8, 5, 3, 3))", V, ("c",)),
        ("F.conv_lstm_cell(gc.randn(2, 3, 4, 4), c, c, 'w')", T, ("weight",)),
        ("nn.ConvLSTMCell(3, 2, 3, peephole=True)", V, ("frame_size",)),
        ("nn.ConvLSTMCell(3, 2, 3, input_init='uniform')", V, ("input_init",)),
        ("nn.ConvLSTMCell(3, 2, 3, forget_bias='a')", T, ("forget_bias",)),
        ("nn.ConvLSTMCell(3, 2, 3)(gc.randn(2, 4, 5, 5))", V, ("x", "channels")),
        ("nn.ConvLSTMCell(3, 2, 3)(gc.randn(2, 3, 5, 5), state=5)", T, ("state",)),
        ("nn.ConvLSTM(3, 2, 3)(gc.randn(2, 3, 5, 5))", V, ("x", "5 dimensions")),
        ("nn.ConvLSTM(3, [2, 2], 3, num_layers=3)", V, ("num_layers",)),
        ("nn.ConvLSTM(3, 2, 3)(None)", T, ("x",))]:
    case(f"conv_lstm-{slug(code)}", code, err, *words)
for arg_index, arg in enumerate(("in_channels", "hidden_channels")):
    for value, err in INT_BAD[:6]:
        args = ["3", "2", "3"]
        args[arg_index] = value
        case(f"ConvLSTMCell-{arg}-{value_id(value)}", f"nn.ConvLSTMCell({', '.join(args)})", err, arg, "expected")
for value, err in PAIR_BAD[:8]:
    case(f"ConvLSTMCell-kernel_size-{value_id(value)}", f"nn.ConvLSTMCell(3, 2, {value})", err, "kernel_size",
         "expected")
for value, err in INT_BAD[:6]:
    case(f"ConvLSTM-num_layers-{value_id(value)}", f"nn.ConvLSTM(3, 2, 3, num_layers={value})", err, "num_layers",
         "expected")

# ---- concat, split -----------------------------------------------------------------------------------------------
for code, err, words in [
        ("F.cat([])", V, ("tensors",)), ("F.cat(None)", T, ("tensors",)), ("F.cat([x, 'a'])", T, ("tensors[1]",)),
        ("F.cat([x, m])", V, ("tensors[1]",)), ("F.cat([x, x64])", T, ("tensors[1]", "dtype")),
        ("F.cat([x], dim=9)", V, ("dim",)), ("F.cat([x], dim=1.5)", T, ("dim",)), ("F.cat(x)", T, ("tensors",)),
        ("F.stack([x, w])", V, ("tensors[1]", "shape")), ("F.stack([x], dim=6)", V, ("dim",)),
        ("F.stack([])", V, ("tensors",)), ("F.split(x, 0)", V, ("split_size_or_sections",)),
        ("F.split(x, [1])", V, ("split_size_or_sections",)), ("F.split(x, 1.5)", T, ("split_size_or_sections",)),
        ("F.split(x, 'ab')", T, ("split_size_or_sections",)), ("F.split(x, [1, 1.5])", T, ("split_size_or_sections",)),
        ("F.split(x, [3, -1])", V, ("split_size_or_sections",)), ("F.split(x, 1, dim=4)", V, ("dim",)),
        ("F.split(None, 1)", T, ("x",)), ("F.unbind(gc.tensor(1.0))", V, ("x",)), ("F.unbind(x, dim=-5)", V, ("dim",)),
        ("F.unbind(x, dim='0')", T, ("dim",)), ("F.split(x, True)", T, ("split_size_or_sections",)),
        ("assert len(F.split(x, 5)) == 1", None, ())]:
    case(f"concat-{slug(code)}", code, err, *words)

# ---- losses ------------------------------------------------------------------------------------------------------
for fn in ("mse_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits"):
    for code, err, words in [
            (f"F.{fn}(p, gc.rand(5))", V, ("target", "shape")), (f"F.{fn}(p, None)", T, ("target", "Tensor")),
            (f"F.{fn}(None, t)", T, ("input", "Tensor")), (f"F.{fn}(p, t, reduction='avg')", V, ("reduction",)),
            (f"F.{fn}(p, t, reduction=None)", V, ("reduction",)), (f"F.{fn}(p, t.double())", T, ("target", "dtype")),
            (f"F.{fn}(p.tolist(), t)", T, ("input",)), (f"F.{fn}(p, t, reduction='none').shape", None, ())]:
        case(f"{fn}-{slug(code)}", code, err, *words)
for value in ("1.5", "-0.1", "float('nan')", "float('inf')"):
    case(f"binary_cross_entropy-input-{value_id(value)}", f"F.binary_cross_entropy(gc.tensor([{value}]), "
         "gc.tensor([1.0]))", V, "input", "[0, 1]")
case("binary_cross_entropy-target-requires-grad", "F.binary_cross_entropy(p, t.requires_grad_())", V, "target")

# ---- optimizers --------------------------------------------------------------------------------------------------
for cls in ("optim.SGD", "optim.Adam", "optim.AdamW"):
    short = cls.split(".")[1]
    for arg in ("lr", "weight_decay", "eps") if short != "SGD" else ("lr", "weight_decay", "momentum"):
        for value, err in REAL_BAD:
            case(f"{short}-{arg}-{value_id(value)}", f"{cls}([param], **{{'{arg}': {value}}})", err, arg)
    for code, err, words in [
            (f"{cls}([])", V, ("params", "empty")), (f"{cls}(None)", T, ("params",)), (f"{cls}(model)", T, ("params",)),
            (f"{cls}({{param}})", T, ("params", "set")), (f"{cls}([param, 'a'])", T, ("params[1]",)),
            (f"{cls}([{{'params': [param], 'lr': -1.0}}])", V, ("lr",)),
            (f"{cls}([param], clip_norm=-1.0)", V, ("clip_norm",)),
            (f"{cls}([param], clip_norm='a')", T, ("clip_norm",)),
            (f"{cls}([param], clip_value=-1.0)", V, ("clip_value",)),
            (f"{cls}([param], clip_norm=1.0, clip_value=1.0)", V, ("clip_norm", "clip_value")),
            (f"{cls}([param], clip_per_tensor=True)", V, ("clip_per_tensor",)),
            (f"{cls}([param], clip_norm=1.0, clip_norm_type=0)", V, ("clip_norm_type",)),
            (f"{cls}([param], clip_norm=1.0, clip_norm_type='two')", T, ("clip_norm_type",)),
            (f"{cls}([param]).load_state_dict('state')", T, ("state_dict",)),
            (f"{cls}([param]).load_state_dict({{'state': {{}}, 'param_groups': []}})", V, ("state_dict", "groups")),
            (f"o = {cls}([param]); o.add_param_group({{'params': [param]}})", V, ("params", "more than once")),
            (f"o = {cls}([param]); o.add_param_group([param])", T, ("param_group", "dict")),
            (f"{cls}([param]).step(closure=5)", T, ("closure",))]:
        case(f"{short}-{slug(code)}", code, err, *words)
for code, err, words in [
        ("optim.SGD([param], lr=0.1, nesterov=True)", V, ("nesterov",)),
        ("optim.SGD([param], lr=0.1, dampening=float('nan'))", V, ("dampening",)),
        ("optim.Adam([param], betas=0.9)", T, ("betas",)), ("optim.Adam([param], betas=(0.9,))", V, ("betas",)),
        ("optim.Adam([param], betas=(1.0, 0.999))", V, ("betas[0]",)),
        ("optim.Adam([param], betas=(0.9, -0.1))", V, ("betas[1]",)),
        ("optim.Adam([param], betas=(0.9, 'a'))", T, ("betas[1]",)),
        ("optim.Adam([param], betas=None)", T, ("betas",))]:
    case(f"optim-{slug(code)}", code, err, *words)

# ---- gradient clipping -------------------------------------------------------------------------------------------
for fn, arg in (("gc.clip_grad_norm_", "max_norm"), ("gc.clip_grad_value_", "clip_value")):
    short = fn.split(".")[1]
    for value, err in REAL_BAD:
        case(f"{short}-{arg}-{value_id(value)}", f"{fn}([param], {value})", err, arg)
    for code, err, words in [(f"{fn}('abc', 1.0)", T, ("parameters",)), (f"{fn}(5, 1.0)", T, ("parameters",)),
                             (f"{fn}([1, 2], 1.0)", T, ("parameters[0]",)), (f"{fn}([], 1.0)", None, ()),
                             (f"{fn}([param, nn.Parameter(gc.randn(2, dtype='float64'))], 1.0)", None, ())]:
        case(f"{short}-{slug(code)}", code, err, *words)
for value, err in [("0", V), ("-2", V), ("'two'", T), ("None", T), ("float('nan')", V)]:
    case(f"clip_grad_norm_-norm_type-{value_id(value)}", f"gc.clip_grad_norm_([param], 1.0, norm_type={value})", err,
         "norm_type")

# ---- learning-rate schedules -------------------------------------------------------------------------------------
SCHED = "optim.lr_scheduler"
for code, err, words in [
        (f"{SCHED}.StepLR('opt', 1)", T, ("optimizer",)), (f"{SCHED}.StepLR(optim.SGD([param]), 0)", V, ("step_size",)),
        (f"{SCHED}.StepLR(optim.SGD([param]), 1.5)", T, ("step_size",)),
        (f"{SCHED}.StepLR(optim.SGD([param]), 2, gamma='a')", T, ("gamma",)),
        (f"{SCHED}.StepLR(optim.SGD([param]), 2, gamma=-1.0)", V, ("gamma",)),
        (f"{SCHED}.CosineAnnealingLR(optim.SGD([param]), T_max=0)", V, ("T_max",)),
        (f"{SCHED}.CosineAnnealingLR(optim.SGD([param]), T_max=None)", T, ("T_max",)),
        (f"{SCHED}.CosineAnnealingLR(optim.SGD([param]), 5, eta_min=-1.0)", V, ("eta_min",)),
        (f"{SCHED}.LinearLR(optim.SGD([param]), start_factor=0.0)", V, ("start_factor",)),
        (f"{SCHED}.LinearLR(optim.SGD([param]), end_factor=2.0)", V, ("end_factor",)),
        (f"{SCHED}.LinearLR(optim.SGD([param]), total_iters=0)", V, ("total_iters",)),
        (f"{SCHED}.LinearWarmup(optim.SGD([param]), 0)", V, ("warmup_steps",)),
        (f"{SCHED}.LinearWarmup(optim.SGD([param]), 'ten')", T, ("warmup_steps",)),
        (f"{SCHED}.LambdaLR(optim.SGD([param]), 5)", T, ("lr_lambda",)),
        (f"{SCHED}.StepLR(optim.SGD([param]), 1, last_epoch=-2)", V, ("last_epoch",)),
        (f"{SCHED}.StepLR(optim.SGD([param]), 1, last_epoch=3)", "KeyError", ("initial_lr",)),
        (f"{SCHED}.SequentialLR(optim.SGD([param]), [], [])", V, ("schedulers",)),
        (f"o = optim.SGD([param]); {SCHED}.SequentialLR(o, [{SCHED}.StepLR(o, 1)], [3])", V, ("milestones",)),
        (f"o = optim.SGD([param]); {SCHED}.SequentialLR(o, [5], [])", T, ("schedulers[0]",))]:
    case(f"lr_scheduler-{slug(code)}", code, err, *words)

# ---- data --------------------------------------------------------------------------------------------------------
for code, err, words in [
        ("gc.data.DataLoader(data, batch_size=True)", T, ("batch_size",)),
        ("gc.data.DataLoader(data, batch_size=0)", V, ("batch_size",)),
        ("gc.data.DataLoader(data, batch_size=2.0)", T, ("batch_size",)),
        ("gc.data.DataLoader(data, batch_size='4')", T, ("batch_size",)),
        ("gc.data.DataLoader(data, 2, seed=-1)", V, ("seed",)), ("gc.data.DataLoader(data, 2, seed='a')", T, ("seed",)),
        ("gc.data.DataLoader(data, 2, seed=0.5)", T, ("seed",)),
        ("gc.data.DataLoader(data, 2, device='gpu')", V, ("device",)),
        ("gc.data.DataLoader((data, data[:3]), 2)", V, ("arrays",)), ("gc.data.DataLoader(5, 2)", T, ("arrays",)),
        ("gc.data.DataLoader((), 2)", T, ("arrays",)), ("gc.data.DataLoader((data, 3.0), 2)", V, ("arrays[1]",)),
        ("gc.data.DataLoader(data, 2).set_epoch(1.5)", T, ("epoch",)),
        ("gc.data.DataLoader(data, 2).set_epoch(-1)", V, ("epoch",)),
        ("assert len(list(gc.data.DataLoader(data[:0], 2))) == 0", None, ()),
        ("gc.data.load_idx('/nonexistent/file.idx')", "FileNotFoundError", ("/nonexistent/file.idx",))]:
    case(f"data-{slug(code)}", code, err, *words)

# ---- checkpoints -------------------------------------------------------------------------------------------------
for code, err, words in [
        ("gc.load('/nonexistent/ckpt.safetensors')", "FileNotFoundError", ("path", "/nonexistent/ckpt.safetensors")),
        ("import tempfile; gc.load(tempfile.gettempdir())", "IsADirectoryError", ("path", "directory")),
        ("gc.load(None)", T, ("path",)), ("gc.save(None, model)", T, ("path",)),
        ("gc.save('/nonexistent/dir/ckpt.safetensors', model)", "FileNotFoundError", ("/nonexistent/dir",)),
        ("gc.save('/tmp/x.safetensors', [1, 2])", T, ("module_or_state",)),
        ("gc.save('/tmp/x.safetensors', model, when=object())", T, ("metadata",)),
        ("gc.save('/tmp/x.safetensors', model, optimizer=object())", T, ("optimizer",)),
        ("import tempfile, os; f = os.path.join(tempfile.mkdtemp(), 'c'); open(f, 'wb').write(b'x' * 100); gc.load(f)",
         V, ("path", "not a readable checkpoint"))]:
    case(f"checkpoint-{slug(code)}", code, err, *words)

# ---- modules, init, autograd, diagnostics, threads, seeds --------------------------------------------------------
for code, err, words in [
        ("model.load_state_dict('x')", T, ("state",)), ("model.to('gpu')", V, ("device",)),
        ("model.to(dtype='int32')", T, ("dtype",)), ("model.register_buffer(1, x)", T, ("name",)),
        ("nn.Parameter('abc')", T, ("data",)), ("nn.Sequential(5)", T, ("Sequential", "Module")),
        ("model.weight = 5", None, ()), ("model[0].weight = 5", T, ("weight",)),
        ("model.load_state_dict({'0.weight': np.zeros(3)}, strict=False)", V, ("0.weight", "shape")),
        ("nn.init.he_normal_(w, mode='fan')", V, ("mode",)), ("nn.init.uniform_(v, low=1.0, high=0.0)", V, ("high",)),
        ("nn.init.normal_(v, std=-1.0)", V, ("std",)), ("nn.init.constant_(v, 'a')", T, ("value",)),
        ("nn.init.orthogonal_(v)", V, ("tensor",)), ("nn.init.glorot_uniform_(None)", T, ("tensor",)),
        ("nn.init.he_uniform_(w, negative_slope='a')", T, ("negative_slope",)),
        ("nn.init.glorot_uniform_(w, gain='big')", T, ("gain",)),
        ("gc.grad(x.requires_grad_().sum(), 5)", T, ("inputs",)),
        ("gc.grad(x.requires_grad_().sum(), [gc.ones(2, requires_grad=True)])", R, ("inputs[0]", "allow_unused")),
        ("gc.grad(gc.ones(2).sum(), [x])", R, ("does not require grad",)),
        ("gc.value_and_grad(lambda a: a)(x)", T, ("fn", "scalar")),
        ("gc.value_and_grad(lambda a: a.sum())('x')", T, ("argnums",)),
        ("gc.gradcheck(lambda a: a.sum(), [])", T, ("inputs",)),
        ("gc.gradcheck('f', [x64])", T, ("fn",)),
        ("gc.diagnostics.grad_norms(model, per='x')", V, ("per",)),
        ("gc.diagnostics.grad_norms(5)", T, ("model",)),
        ("gc.diagnostics.dead_relu_fraction(v)", V, ("activation",)),
        ("gc.set_num_threads(0)", V, ("n", "expected")), ("gc.set_num_threads(1.5)", T, ("n", "expected")),
        ("gc.set_num_threads('2')", T, ("n", "expected")), ("gc.set_num_threads(None)", T, ("n", "expected")),
        ("gc.set_num_threads(True)", T, ("n", "expected")), ("gc.set_num_threads(2**63)", V, ("n", "expected")),
        ("gc.set_num_threads(100000)", V, ("n", "<= 4096")),
        ("gc.manual_seed('a')", T, ("seed",)), ("gc.manual_seed(-1)", V, ("seed",)),
        ("gc.manual_seed(1.5)", T, ("seed",)), ("gc.Generator('x')", T, ("seed",)),
        ("gc.rand(2, generator='g')", T, ("generator",)), ("gc.cuda.synchronize('x')", V, ("device",)),
        ("gc.cuda.memory_stats('cuda:x')", V, ("device",)),
        ("gc.train.fit([], step=lambda b: None, epochs=-1)", V, ("epochs",)),
        ("gc.train.fit([], step=lambda b: None, epochs=1.5)", T, ("epochs",)),
        ("gc.train.fit([], step=lambda b: None, start_epoch='a')", T, ("start_epoch",)),
        ("gc.train.fit([])", V, ("step",)), ("gc.train.evaluate([])", V, ("step",)),
        ("gc.train.fit([], step=5)", T, ("step",)),
        ("gc.train.fit([], model=model, loss_fn=5, optimizer=optim.SGD(model.parameters()))", T, ("loss_fn",)),
        ("gc.train.fit([], model='m', loss_fn=F.mse_loss, optimizer=optim.SGD([param]))", T, ("model",)),
        ("gc.train.fit([], model=model, loss_fn=F.mse_loss, optimizer='adam')", T, ("optimizer",)),
        ("gc.train.evaluate([], model=model, loss_fn=None)", V, ("loss_fn",))]:
    case(f"misc-{slug(code)}", code, err, *words)

# ---- extension point (gradcore.Function), gradcheck samples, conventions (float/int, full, output_padding) --------
_SQUARE = ("class Square(gc.Function):\n    @staticmethod\n    def forward(ctx, a, k):\n        return a * a\n"
           "    @staticmethod\n    def backward(ctx, g):\n        return {grads}\n"
           "Square.apply(m.requires_grad_(), 2.0).sum().backward()")
for name, grads, err, words in [
        ("too-few", "g * 2.0", R, ("Square.backward returned 1 gradient", "expected 2")),
        ("too-many", "g, None, g", R, ("Square.backward returned 3 gradients", "expected 2")),
        ("wrong-shape", "g.sum(axis=0), None", R, ("gradient 0", "shape (3,)", "expected (2, 3)")),
        ("not-a-tensor", "1.0, None", T, ("gradient 0", "expected a Tensor or None", "float")),
        ("for-a-number", "g, g", R, ("gradient 1", "float", "return None for it")),
        ("right", "g, None", None, ())]:
    case(f"Function-backward-{name}", _SQUARE.format(grads=grads), err, *words)
for code, err, words in [
        ("class Bad(gc.Function):\n    @staticmethod\n    def forward(ctx, a):\n        return a.numpy()\n"
         "Bad.apply(m)", T, ("Bad.forward", "Tensor", "ndarray")),
        ("class Bad(gc.Function):\n    @staticmethod\n    def forward(ctx, a):\n        ctx.save_for_backward(1.0)\n"
         "        return a\nBad.apply(m)", T, ("save_for_backward", "argument 0", "float")),
        ("class Bad(gc.Function):\n    @staticmethod\n    def forward(ctx, a, b=None):\n        return a\n"
         "Bad.apply(m, b=v.requires_grad_())", T, ("'b'", "positionally")),
        ("gc.gradcheck(lambda a: a.sum(), [x64], samples=0)", V, ("samples", ">= 1")),
        ("gc.gradcheck(lambda a: a.sum(), [x64], samples=1.5)", T, ("samples", "integer")),
        ("gc.gradcheck(lambda a: a.sum(), [x64], samples='3')", T, ("samples",)),
        ("gc.gradcheck(lambda a: a.sum(), [x64], seed=-1)", V, ("seed",)),
        ("gc.gradcheck(lambda a: a.sum(), [x64], samples=2)", None, ()),
        ("float(v)", V, ("float()", "one element", "(5,)")), ("int(m)", V, ("int()", "one element", "(2, 3)")),
        ("float(gc.zeros(0))", V, ("float()", "one element")), ("int(gc.tensor(float('nan')))", V, ("NaN",)),
        ("int(gc.ones(1, 1))", None, ()),
        ("gc.full((2,), 'a')", T, ("fill_value", "expected a number")),
        ("gc.full((2,), [1.0])", T, ("fill_value",)), ("gc.full(size=(2,), fill_value=1.0)", None, ()),
        ("F.conv_transpose2d(x, wt, dilation=2, output_padding=2)", V, ("output_padding", "dilation")),
        ("F.conv_transpose2d(x, wt, stride=2, dilation=3, output_padding=(2, 1))", None, ()),
        ("model.load_state_dict({'0.weight': gc.zeros(3), '0.bias': gc.zeros(4)})", V, ("0.weight", "shape")),
        ("model.load_state_dict(model.state_dict())", None, ())]:
    case(f"extension-{slug(code.splitlines()[-1])}", code, err, *words)

# ---- reductions: dim/keepdim and their aliases, amax/amin/max/min, var/std, linalg.vector_norm ---------------------
for code, err, words in [
        ("m.sum(dim=0, axis=0)", T, ("dim", "given twice")),
        ("m.mean(0, keepdim=True, keepdims=True)", T, ("keepdim",)),
        ("m.sum(dim=5)", V, ("dim", "out of range")), ("m.sum(axis=-3)", V, ("axis", "out of range")),
        ("m.sum(dim='a')", T, ("dim",)), ("m.mean(0, keepdim='yes')", T, ("keepdim", "bool")),
        ("m.amax(dim=1.5)", T, ("dim",)), ("m.amax(dim=(0, 0))", V, ("dim", "once")),
        ("m.amin(dim=(0, 2))", V, ("dim", "out of range")), ("F.amax(None)", T, ("x",)),
        ("gc.zeros(0, 3).amax(0)", V, ("amax", "no elements")), ("gc.zeros(0, 3).max()", V, ("max", "no elements")),
        ("gc.zeros(0, 3).amin(1)", None, ()), ("m.max(keepdim=True)", T, ("keepdim", "dim")),
        ("m.var(correction='a')", T, ("correction",)), ("m.var(1, unbiased=True, correction=0)", T, ("unbiased",)),
        ("m.var(unbiased='yes')", T, ("unbiased",)), ("m.std(dim=2)", V, ("dim", "out of range")),
        ("gc.zeros(0, 2).var(0)", V, ("var", "no elements")), ("gc.tensor([1.0]).var()", None, ()),
        ("gc.linalg.vector_norm(m, ord='fro')", T, ("ord",)),
        ("gc.linalg.vector_norm(m, ord=float('nan'))", V, ("ord",)),
        ("gc.linalg.vector_norm(m, ord=True)", T, ("ord",)), ("gc.linalg.vector_norm(m, dim=3)", V, ("dim",)),
        ("gc.linalg.vector_norm(m, dtype='int8')", T, ("dtype",)),
        ("gc.linalg.vector_norm(m, keepdim='no')", T, ("keepdim",)),
        ("gc.linalg.vector_norm(gc.zeros(0), ord=float('inf'))", V, ("ord", "empty")),
        ("gc.linalg.vector_norm(gc.zeros(0))", None, ()), ("gc.linalg.vector_norm([1.0, 2.0])", T, ("x",))]:
    case(f"reduce-{slug(code)}", code, err, *words)
for code, err, words in [
        ("m.max((0, 1))", T, ("dim", "an int")), ("m.max(2)", V, ("dim", "out of range")),
        ("m.min(1.0)", T, ("dim",)), ("m.max(1, keepdim='y')", T, ("keepdim",)),
        ("m.argmax(5)", V, ("dim", "out of range")), ("m.argmin('0')", T, ("dim",)),
        ("gc.zeros(0, 3).argmax()", V, ("argmax", "no elements")), ("gc.zeros(0, 3).max(0)", V, ("max", "no elements")),
        ("gc.zeros(0, 3).argmin(1)", None, ()), ("F.argmax(None)", T, ("x",)),
        ("gc.tensor([1, 2]).argmax()", T, ("x", "float")), ("gc.tensor([1, 2]).amax()", T, ("x", "float")),
        ("gc.linalg.vector_norm(gc.tensor([1, 2]))", T, ("x", "float"))]:
    case(f"reduce-{slug(code)}", code, err, *words)
# ---- matmul, linear (dense layers) -------------------------------------------------------------------------------
for code, err, words in [
        ("gc.matmul(m, gc.randn(2, 3))", V, ("b", "cannot be multiplied", "(2, 3)")),
        ("m @ v", V, ("b", "cannot be multiplied", "3 columns")), ("v @ gc.randn(5)", None, ()),
        ("gc.matmul(gc.tensor(1.0), v)", V, ("a", "at least 1 dimension")),
        ("gc.matmul(v, gc.tensor(1.0))", V, ("b", "at least 1 dimension")),
        ("gc.randn(2, 2, 3) @ gc.randn(3, 3, 4)", V, ("b", "batch dimensions", "broadcast")),
        ("m @ gc.randn(3, 2, dtype='float64')", T, ("b", "dtype float32")),
        ("gc.matmul(m, None)", T, ("b", "Tensor")), ("gc.matmul('m', m)", T, ("a", "Tensor")),
        ("m @ np.zeros((3, 2), np.float32)", T, ("b", "Tensor")), ("[[1.0, 2.0]] @ m", T, ("a", "Tensor")),
        ("m.matmul(5)", T, ("b", "Tensor")), ("gc.ones(3, 2, dtype='int64') @ m", T, ("a", "float32 or float64")),
        ("F.linear(m, gc.ones(4, 3, dtype='bool'))", T, ("weight", "float32 or float64")), ("gc.zeros(2, 0) @ gc.zeros(0, 3)", None, ()),
        ("gc.zeros(0, 3) @ gc.zeros(3, 0)", None, ()),
        ("gc.randn(2, 1, 2, 1, 2, 1, 2, 1, 2, 2, 3) @ gc.randn(1, 2, 1, 2, 1, 2, 1, 2, 1, 3, 2)", V,
         ("a", "at most 8", "batch dimensions")),
        ("gc.randn(2, 1, 3, 2, 3) @ gc.randn(1, 4, 1, 3, 2)", None, ()),
        ("F.linear(m, gc.randn(4, 2))", V, ("x", "last dimension of 2", "in_features")),
        ("F.linear(gc.tensor(1.0), gc.randn(4, 1))", V, ("x", "at least 1 dimension")),
        ("F.linear(m, gc.randn(1, 4, 3))", V, ("weight", "2 dimensions")),
        ("F.linear(m, gc.randn(4, 3), gc.randn(3))", V, ("bias", "shape (4,)")),
        ("F.linear(m, gc.randn(4, 3), gc.randn(4, dtype='float64'))", T, ("bias", "dtype float32", "of x")),
        ("F.linear(m, gc.randn(4, 3, dtype='float64'))", T, ("weight", "dtype float32", "of x")),
        ("F.linear(None, gc.randn(4, 3))", T, ("x", "Tensor")), ("F.linear(m, [[1.0]])", T, ("weight", "Tensor")),
        ("F.linear(m, gc.randn(4, 3), 0.5)", T, ("bias", "Tensor")),
        ("F.linear(gc.zeros(0, 3), gc.randn(4, 3))", None, ()), ("F.linear(v, gc.randn(2, 5))", None, ())]:
    case(f"matmul-{slug(code)}", code, err, *words)
for arg_index, arg in enumerate(("in_features", "out_features")):
    for value, err in INT_BAD[1:]:  # 0 features is valid, as in PyTorch
        args = ["3", "4"]
        args[arg_index] = value
        case(f"Linear-{arg}-{value_id(value)}", f"nn.Linear({', '.join(args)})", err, arg, "expected")
for code, err, words in [
        ("nn.Linear(0, 4)(gc.randn(2, 0))", None, ()), ("nn.Linear(3, 4, init='zeros')", V, ("init",)),
        ("nn.Linear(3, 4, bias='yes')", T, ("bias",)), ("nn.Linear(3, 4, dtype='int32')", T, ("dtype",)),
        ("nn.Linear(3, 4, device='gpu')", V, ("device",)), ("nn.Linear(3, 4, generator='seed')", T, ("generator",)),
        ("nn.Linear(3, 4)(gc.randn(2, 5))", V, ("x", "last dimension of 3")), ("nn.Linear(3, 4)(None)", T, ("x",)),
        ("nn.Linear(3, 4)(gc.randn(2, 3, dtype='float64'))", T, ("dtype",))]:
    case(f"Linear-module-{slug(code)}", code, err, *words)
# ---- distributed (issue #16): collectives' arguments checked before any MPI call, the loader's shard arguments ----
for code, err, words in [
        ("gc.distributed.init_process_group('gloo')", V, ("backend", "'mpi'")),
        ("gc.distributed.init_process_group(None)", V, ("backend",)),
        ("gc.distributed.get_rank()", R, ("init_process_group",)),
        ("gc.distributed.all_reduce(gc.zeros(2))", R, ("init_process_group",)),
        ("gc.data.DataLoader(np.zeros((4, 1), np.float32), 2, num_replicas=2)", V, ("num_replicas, rank",)),
        ("gc.data.DataLoader(np.zeros((4, 1), np.float32), 2, num_replicas=2, rank=5)", V, ("rank", "[0, 2)")),
        ("gc.data.DataLoader(np.zeros((4, 1), np.float32), 2, num_replicas='2', rank=0)", T, ("num_replicas",)),
        ("gc.data.DataLoader(np.zeros((4, 1), np.float32), 2, num_replicas=2, rank=True)", T, ("rank",))]:
    case(f"distributed-{slug(code)}", code, err, *words)
# ---- int64/bool tensors, comparisons and selection, the smooth activations (issue #18 points 5 and 7) -------------
for code, err, words in [
        ("gc.tensor([1, 2], requires_grad=True)", T, ("requires_grad", "floating point")),
        ("gc.zeros(2, dtype='bool', requires_grad=True)", T, ("requires_grad", "floating point")),
        ("gc.tensor([1, 2]).requires_grad_()", T, ("requires_grad", "floating point")),
        ("nn.Parameter(gc.tensor([1, 2]))", T, ("requires_grad", "floating point")),
        ("F.exp(gc.tensor([1, 2]))", T, ("x: expected a float32 or float64 tensor, got int64",)),
        ("F.relu(gc.tensor([True]))", T, ("x: expected a float32 or float64 tensor, got bool",)),
        ("F.conv2d(gc.zeros(1, 1, 3, 3, dtype='int64'), w)", T, ("x: expected a float32 or float64", "int64")),
        ("gc.tensor([1, 2]).mean()", T, ("x: expected a float32 or float64 tensor, got int64",)),
        ("gc.tensor([True]) + gc.tensor([False])", T, ("a:", "bool", ".float()")),
        ("gc.tensor([1, 2]) * 2**64", V, ("b", "int64")),
        ("-gc.tensor([True])", T, ("x", "got bool")),
        ("gc.tensor([1, 2]).exp()", T, ("x", "got int64")),
        ("gc.tensor(np.array([2**63], dtype=np.uint64))", V, ("data", "int64")),
        ("gc.from_numpy(np.zeros(2, np.int32))", T, ("array", "int64 or bool")),
        ("gc.from_dlpack(np.zeros(2, np.uint8))", T, ("x", "int64 or bool")),
        ("gc.full((2,), 2**63, dtype='int64')", V, ("value", "int64")),
        ("gc.where(x, x, x)", T, ("condition", "bool")),
        ("gc.where(x > 0, 'a', x)", T, ("input", "Tensor or a Python number")),
        ("gc.where(x > 0, 1.0, 2.0)", T, ("input, other", "at least one")),
        ("gc.where(gc.ones(5, dtype='bool'), x, x)", V, ("does not broadcast",)),
        ("x.clamp()", V, ("min, max", "at least one")),
        ("x.clamp(min='0')", T, ("min", "number")),
        ("x.clamp(max=[1.0])", T, ("max", "number")),
        ("x.clamp(min=x64)", T, ("min", "dtype float32")),
        ("gc.tensor([1, 2]).clamp(0, 1)", T, ("input", "float32 or float64", "int64")),
        ("gc.maximum(x, 1.0)", T, ("other", "gradcore.Tensor")),
        ("gc.maximum(x, x64)", T, ("other", "dtype float32")),
        ("gc.minimum('a', x)", T, ("input", "gradcore.Tensor")),
        ("F.eq(x, 'a')", T, ("other", "Tensor or a Python number")),
        ("F.lt(None, x)", T, ("input", "Tensor or a Python number")),
        ("F.eq(1, 2)", T, ("at least one",)),
        ("x == gc.zeros(7)", V, ("does not broadcast",)),
        ("x < 'a'", T, ("<",)),
        ("(x > 0) & gc.ones(1)", T, ("&", "bool tensors")),
        ("~x", T, ("~", "bool tensors")),
        ("bool(x)", R, ("ambiguous",)),
        ("F.softplus(x, beta=0)", V, ("beta", "non-zero")),
        ("F.softplus(x, beta='1')", T, ("beta",)),
        ("F.softplus(x, threshold=None)", T, ("threshold",)),
        ("F.gelu(x, approximate='erf')", V, ("approximate", "tanh")),
        ("F.elu(x, alpha='1')", T, ("alpha",)),
        ("F.silu([1.0])", T, ("x", "gradcore.Tensor")),
        ("F.cos(gc.tensor([1]))", T, ("x", "got int64")),
        ("nn.GELU(approximate=None)", V, ("approximate",)),
        ("nn.ELU(alpha=None)", T, ("alpha",)),
        ("nn.Softplus(beta=0.0)", V, ("beta",)),
        ("assert (x / 0).numel == x.numel", None, ()),
        ("assert (gc.tensor([1, 2]) == 1).dtype == 'bool'", None, ()),
        ("assert gc.tensor([True, False]).sum().item() == 1", None, ()),
        ("assert (gc.tensor([1, 2]) * 3 - gc.tensor([True, False])).tolist() == [2, 6]", None, ())]:
    case(f"dtypes-{slug(code)}", code, err, *words)

# ---- classification (#13): softmax, pooling, regression losses, dropout, cross_entropy ---------------------------
for fn in ("softmax", "log_softmax"):
    for code, err, words in [(f"F.{fn}(m, 2)", V, ("dim", "out of range")), (f"F.{fn}(m, -3)", V, ("dim",)),
                             (f"F.{fn}(m, 1.0)", T, ("dim", "expected an int")), (f"F.{fn}(m)", T, ("dim",)),
                             (f"F.{fn}(m, 'a')", T, ("dim",)), (f"F.{fn}(None, 1)", T, ("input",)),
                             (f"F.{fn}(m, 1, dtype='int32')", T, ("dtype",))]:
        case(f"{fn}-{slug(code)}", code, err, *words)
for fn in ("max_pool2d", "avg_pool2d"):
    for value, err in PAIR_BAD:
        case(f"{fn}-kernel_size-{value_id(value)}", f"F.{fn}(x, {value})", err, "kernel_size")
        if value != "None":  # stride=None means the kernel size
            case(f"{fn}-stride-{value_id(value)}", f"F.{fn}(x, 2, {value})", err, "stride")
    for value, err in PADDING_BAD:
        if value != "'full'":
            case(f"{fn}-padding-{value_id(value)}", f"F.{fn}(x, 3, 1, {value})", err, "padding")
    for code, err, words in [(f"F.{fn}(x, 3, 1, 2)", V, ("padding", "half the kernel")),
                             (f"F.{fn}(x, 7)", V, ("too small",)), (f"F.{fn}(m, 2)", V, ("input", "4-d")),
                             (f"F.{fn}(gc.zeros(1, 0, 4, 4), 2)", V, ("input", "non-zero")),
                             (f"F.{fn}('x', 2)", T, ("input",)), (f"F.{fn}(x, 2, ceil_mode=True)", None, ())]:
        case(f"{fn}-{slug(code)}", code, err, *words)
for value, err in PAIR_BAD[:6] + [("'2'", T), ("None", T)]:
    case(f"max_pool2d-dilation-{value_id(value)}", f"F.max_pool2d(x, 2, dilation={value})", err, "dilation")
for value, err in [("0", V), ("-1", V), ("1.5", T), ("'2'", T), ("2**63", V)]:
    case(f"avg_pool2d-divisor_override-{value_id(value)}", f"F.avg_pool2d(x, 2, divisor_override={value})", err,
         "divisor_override")
for value, err in [("0", V), ("(2, 0)", V), ("-1", V), ("'big'", T), ("1.5", T), ("(2,)", T), ("(None, 1.5)", T)]:
    case(f"adaptive_avg_pool2d-output_size-{value_id(value)}", f"F.adaptive_avg_pool2d(x, {value})", err,
         "output_size")
case("adaptive_avg_pool2d-none-keeps-input-size", "assert F.adaptive_avg_pool2d(x, (None, 2)).shape == (2, 3, 6, 2)",
     None)
for fn, param in (("l1_loss", None), ("smooth_l1_loss", "beta"), ("huber_loss", "delta")):
    for code, err, words in [(f"F.{fn}(p, v)", V, ("target", "shape")), (f"F.{fn}(p, t, reduction='avg')", V,
                                                                          ("reduction",)),
                             (f"F.{fn}(p, t.double())", T, ("target", "dtype")), (f"F.{fn}(None, t)", T, ("input",))]:
        case(f"{fn}-{slug(code)}", code, err, *words)
    if param:
        for value in REAL_BAD:
            case(f"{fn}-{param}-{value_id(value[0])}", f"F.{fn}(p, t, {param}={value[0]})", value[1], param)
case("huber_loss-delta-zero", "F.huber_loss(p, t, delta=0.0)", V, "delta")
for fn in ("dropout", "dropout2d"):
    for value, err in [("-0.1", V), ("1.5", V), ("float('nan')", V), ("'0.5'", T), ("None", T), ("[0.5]", T)]:
        case(f"{fn}-p-{value_id(value)}", f"F.{fn}(x, {value})", err, "p")
    case(f"{fn}-generator-str", f"F.{fn}(x, 0.5, generator='g')", T, "generator")
    case(f"{fn}-input-None", f"F.{fn}(None)", T, "input")
case("dropout2d-2d-input", "F.dropout2d(m, 0.5)", V, "input", "3-d")
case("dropout-p-one-gives-zeros", "assert F.dropout(x, 1.0).numpy().max() == 0.0", None)
for code, err, words in [("nn.Dropout(2.0)", V, ("p",)), ("nn.MaxPool2d(0)", V, ("kernel_size",)),
                         ("nn.AvgPool2d('a')", T, ("kernel_size",)), ("nn.CrossEntropyLoss(reduction='avg')", V,
                                                                        ("reduction",)),
                         ("nn.CrossEntropyLoss(label_smoothing=2.0)", V, ("label_smoothing",)),
                         ("nn.CrossEntropyLoss(weight=[1.0])", T, ("weight",)),
                         ("nn.NLLLoss(ignore_index=1.5)", T, ("ignore_index",)),
                         ("nn.HuberLoss(delta=-1.0)", V, ("delta",)), ("nn.Softmax(dim=5)(m)", V, ("dim",))]:
    case(f"classify-modules-{slug(code)}", code, err, *words)
labels = "gc.tensor([0, 2], dtype='int64')"
for code, err, words in [
        (f"F.cross_entropy(m, {labels}, reduction='avg')", V, ("reduction",)),
        (f"F.cross_entropy(m, {labels}, label_smoothing=-0.1)", V, ("label_smoothing",)),
        (f"F.cross_entropy(m, {labels}, label_smoothing='a')", T, ("label_smoothing",)),
        (f"F.cross_entropy(m, {labels}, ignore_index=0.5)", T, ("ignore_index",)),
        (f"F.cross_entropy(m, {labels}, gc.ones(2))", V, ("weight", "one weight per class")),
        (f"F.cross_entropy(m, {labels}, gc.ones(3, dtype='float64'))", T, ("weight",)),
        (f"F.cross_entropy(m, {labels}, [1.0, 1.0, 1.0])", T, ("weight",)),
        ("F.cross_entropy(m, gc.tensor([0, 3], dtype='int64'))", V, ("target", "class index 3", "(1,)")),
        ("F.cross_entropy(m, gc.tensor([-1, 0], dtype='int64'))", V, ("target", "class index -1")),
        ("F.cross_entropy(m, gc.tensor([0, 1, 2], dtype='int64'))", V, ("target", "class indices", "(2,)")),
        ("F.cross_entropy(m, gc.zeros(2))", V, ("target", "int64")),
        ("F.cross_entropy(m, [0, 1])", T, ("target",)), (f"F.cross_entropy(None, {labels})", T, ("input",)),
        ("F.cross_entropy(m, gc.zeros(2, 3), ignore_index=0)", V, ("ignore_index",)),
        ("F.cross_entropy(m, gc.zeros(2, 3, dtype='float64'))", T, ("target", "dtype float32")),
        ("F.cross_entropy(gc.tensor(1.0), gc.tensor(0, dtype='int64'))", V, ("input", "0-d")),
        (f"F.cross_entropy(m, {labels}, gc.ones(3, requires_grad=True))", V, ("weight", "require grad")),
        ("assert math.isnan(F.cross_entropy(m, gc.tensor([-100, -100], dtype='int64')).item())", None, ()),
        ("F.nll_loss(m, gc.zeros(2, 3))", T, ("target", "int64")),
        (f"F.nll_loss(m, {labels}, reduction='mean ')", V, ("reduction",)),
        ("F.nll_loss(m, gc.tensor([5, 0], dtype='int64'))", V, ("class index 5",)),
        ("F.max_pool2d(x, 2, return_indices=True)[1].dtype == 'int64' or 1/0", None, ())]:
    case(f"cross_entropy-{slug(code)}", code, err, *words)
for code in ("F.softmax(gc.tensor([1, 2]), 0)", "F.log_softmax(gc.tensor([[1, 2]]), 1)",
             "F.max_pool2d(gc.zeros(1, 1, 4, 4, dtype='int64'), 2)", "F.avg_pool2d(gc.zeros(1, 1, 4, 4, dtype='bool'), 2)",
             "F.adaptive_avg_pool2d(gc.zeros(1, 1, 4, 4, dtype='int64'), 2)", "F.dropout(gc.tensor([1, 2]))",
             "F.l1_loss(gc.tensor([1, 2]), gc.tensor([1, 2]))", "F.cross_entropy(gc.tensor([[1, 2]]), gc.tensor([0]))",
             "F.cross_entropy(m, gc.zeros(2, dtype='bool'))"):
    case(f"classify-int-input-{slug(code)}", code, T, "expected a")
# ---- views and indexing (transpose, permute, flatten, squeeze, unsqueeze, expand, x[key], index_select, gather) ---
I = "IndexError"  # PyTorch's exception for an index out of range, kept here
for code, err, words in [
        ("x.permute(0, 1)", V, ("dims", "permutation")), ("x.permute(0, 1, 2, 2)", V, ("dims", "once")),
        ("x.permute(0, 1, 2, 4)", V, ("dims", "out of range")), ("x.permute(0, 1, 2, 'a')", T, ("dims",)),
        ("F.permute(x, 3)", T, ("dims",)), ("x.transpose(0, 4)", V, ("dim1", "out of range")),
        ("x.transpose(0.5, 1)", T, ("dim0",)), ("x.flatten(2, 1)", V, ("start_dim", "after")),
        ("x.flatten(end_dim=4)", V, ("end_dim",)), ("x.flatten(end_dim='a')", T, ("end_dim",)),
        ("F.flatten(None)", T, ("x", "Tensor")), ("x.unsqueeze(5)", V, ("dim",)), ("x.unsqueeze(None)", T, ("dim",)),
        ("x.squeeze(4)", V, ("dim",)), ("x.squeeze('a')", T, ("dim",)), ("x.squeeze((0, 0.5))", T, ("dim",)),
        ("x.expand(2, 3, 7, 6)", V, ("sizes", "must match")), ("x.expand(2, 3)", V, ("sizes", "at least 4")),
        ("x.expand(-1, 2, 3, 6, 6)", V, ("sizes", "leading")), ("x.expand(2, 3, 6, 6.0)", T, ("sizes",)),
        ("x.expand('a')", T, ("sizes",)), ("x.expand(2, 3, -2, 6)", V, ("sizes",)),
        ("x.expand_as(None)", T, ("other",)), ("nn.Flatten(start_dim='a')", T, ("start_dim",)),
        ("nn.Flatten(0, 5)(x)", V, ("end_dim",)), ("gc.zeros(*[2] * 9).permute(*range(8, -1, -1))", V, ("at most 8",)),
        ("x.expand(2, 3, 6, 6); x.permute(0, 1, 2, 3); x.T; v.T; m.T", None, ()),
        ("assert x[0, 0, 0, 0].shape == () and x[..., None].shape == (2, 3, 6, 6, 1)", None, ()),
        ("x[2]", I, ("index", "out of bounds", "size 2")), ("x[-3]", I, ("index", "out of bounds")),
        ("x[:, 3]", I, ("dimension 1",)), ("x[::0]", V, ("step", "greater than zero")),
        ("x[::-1]", V, ("step", "greater than zero")), ("x[0, 0, 0, 0, 0]", I, ("too many indices",)),
        ("x[..., ...]", I, ("ellipsis",)), ("x['a']", T, ("index",)), ("x[1.5]", T, ("index",)),
        ("x[0:'a']", T, ("slice",)), ("x[::1.5]", T, ("step",)), ("x[True]", T, ("index", "mask")),
        ("x[gc.tensor([True, False])]", T, ("index", "mask")), ("x[np.array([True, False])]", T, ("index", "mask")),
        ("x[gc.ones(2)]", T, ("index", "int64")), ("x[np.array([0.5])]", T, ("index", "integers")),
        ("x[[0, 1], [0, 1]]", T, ("index", "one integer index array")), ("x[[[0], [0, 1]]]", T, ("index",)),
        ("x[[0, 2]]", I, ("index", "out of bounds", "size 2")), ("x[:, [-4]]", I, ("index", "out of bounds")),
        ("x[[{}]]", T, ("index",)), ("assert x[[-1, -2, 1]].shape == (3, 3, 6, 6)", None, ()),
        ("assert x[:, []].shape == (2, 0, 6, 6)", None, ()),
        ("v.index_select(0, [5])", I, ("index", "out of bounds", "size 5")),
        ("v.index_select(0, [-1])", I, ("index", "out of bounds", "negative")),
        ("F.index_select(v, 1, [0])", V, ("dim", "out of range")), ("F.index_select(v, 0, [[0]])", V, ("index", "1-d")),
        ("F.index_select(v, 0, 'a')", T, ("index",)), ("F.index_select(v, 0, None)", T, ("index",)),
        ("F.index_select(v, 0, [0.5])", T, ("index", "integers")), ("F.index_select('a', 0, [0])", T, ("x", "Tensor")),
        ("F.index_select(v, 0.0, [0])", T, ("dim",)), ("F.index_select(v, 0, v)", T, ("index", "int64")),
        ("F.gather(m, 1, [0])", V, ("index", "dimensions")), ("F.gather(m, 0, [[0, 0, 0, 0]])", V, ("index", "longer")),
        ("F.gather(m, 1, [[3]])", I, ("index", "out of bounds", "size 3")),
        ("F.gather(m, 1, [[-1]])", I, ("index", "negative")), ("F.gather(m, 1, gc.zeros(2, 1))", T, ("index", "int64")),
        ("F.gather(m, 2, [[0]])", V, ("dim",)), ("F.gather(None, 0, [[0]])", T, ("x",)),
        ("assert F.gather(m, 1, [[2, 2, 0, 1]]).shape == (1, 4)", None, ())]:
    case(f"views-{slug(code)}", code, err, *words)

# ---- fused [conv | batch_norm, ReLU] pairs in nn.Sequential (epilogue, issue 19): the fused op checks its input
# exactly as the modules one by one do, naming the same argument ----
for code, err, words in [
        ("nn.Sequential(nn.Conv2d(4, 2, 3), nn.ReLU())(x)", V, ("weight", "expects 4 input channels")),
        ("nn.Sequential(nn.Conv2d(3, 2, 3), nn.ReLU())(x64)", T, ("weight", "float64")),
        ("nn.Sequential(nn.Conv2d(3, 2, 7), nn.ReLU())(x)", V, ("weight", "larger than the padded input")),
        ("nn.Sequential(nn.Conv2d(3, 2, 3), nn.ReLU())(None)", T, ("x",)),
        ("nn.Sequential(nn.ConvTranspose2d(4, 2, 3), nn.ReLU())(x)", V, ("weight", "expects 4 input channels")),
        ("nn.Sequential(nn.BatchNorm2d(4), nn.ReLU())(x)", V, ("x", "4 channels")),
        ("assert nn.Sequential(nn.Conv2d(3, 2, 3), nn.ReLU())(x).shape == (2, 2, 4, 4)", None, ())]:
    case(f"fused-{slug(code)}", code, err, *words)
