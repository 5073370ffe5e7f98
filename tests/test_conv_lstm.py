"""ConvLSTM: the fused gates and the cell against a numpy reference, gradients by float64 finite differences through
3 steps and 2 layers, the nn.ConvLSTM module (state carrying, layouts, init), CUDA against CPU, bitwise-repeatable
training, bad input."""
import numpy as np
import pytest

import gradcore as gc
from gradcore import functional as F
from gradcore import nn
from reference import conv_lstm as ref
from tolerance import DTYPES, assert_close, assert_cuda_matches_cpu, forward_tol


def _np(shape, seed, scale=1.0):
    return scale * np.random.default_rng(seed).standard_normal(shape)


def _t(values, dtype="float64", device="cpu", requires_grad=False):
    return gc.tensor(values, dtype=dtype, device=device, requires_grad=requires_grad)


def _gate_inputs(n=2, hidden=3, h=4, w=5, seed=0):
    return _np((n, 4 * hidden, h, w), seed), _np((n, hidden, h, w), seed + 1), _np((3, hidden, h, w), seed + 2, 0.5)


# ---- fused gates ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("peephole", [False, True], ids=["plain", "peephole"])
def test_gates_forward_matches_reference(dtype, peephole):
    pre, c, w = _gate_inputs()
    w = w if peephole else None
    h_next, c_next = F.conv_lstm_gates(_t(pre, dtype), _t(c, dtype), None if w is None else _t(w, dtype))
    want_h, want_c, _ = ref.gates(pre, c, w)
    assert_close(h_next, want_h, name="h'", **forward_tol(dtype))
    assert_close(c_next, want_c, name="c'", **forward_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_gates_kernel_saves_activated_gates_in_documented_order(dtype):
    pre, c, w = _gate_inputs(seed=3)
    _, _, gates = gc._core.conv_lstm_gates_forward(_t(pre, dtype)._data, _t(c, dtype)._data, _t(w, dtype)._data)
    assert_close(gates.numpy(), ref.gates(pre, c, w)[2], name="gates [i, f, g, o]", **forward_tol(dtype))


def test_gates_saturate_without_overflow():
    pre = np.full((1, 4, 1, 2), 0.0)
    pre[0, :, 0, 0] = 800.0
    pre[0, :, 0, 1] = -800.0
    h_next, c_next = F.conv_lstm_gates(_t(pre), _t(np.ones((1, 1, 1, 2))))
    want_h, want_c, _ = ref.gates(np.clip(pre, -50, 50), np.ones((1, 1, 1, 2)))
    assert np.all(np.isfinite(h_next.numpy())) and np.all(np.isfinite(c_next.numpy()))
    assert_close(c_next, want_c, atol=1e-12)
    assert_close(h_next, want_h, atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gates_accurate_over_the_whole_float_range(dtype):
    # The CPU float path uses its own vectorised exp/tanh (csrc/cpu/fast_math.h): sweep tiny, moderate and
    # saturating pre-activations and states, forward and backward, against float64 numpy.
    values = np.concatenate([np.linspace(-90, 90, 721), np.linspace(-1, 1, 401), [1e-30, -1e-30, 1e-6, -1e-6, 0.0]])
    rng = np.random.default_rng(11)
    pre = rng.permutation(np.resize(values, 2 * 12 * 3 * 173)).reshape(2, 12, 3, 173)
    c = rng.permutation(np.resize(values, 2 * 3 * 3 * 173)).reshape(2, 3, 3, 173) / 10
    w = 0.5 * rng.standard_normal((3, 3, 3, 173))
    pre32, c32, w32 = (v.astype(dtype).astype(np.float64) for v in (pre, c, w))  # compare on the same inputs
    want_h, want_c, gates = ref.gates(pre32, c32, w32)
    args = [_t(v, dtype, requires_grad=True) for v in (pre32, c32, w32)]
    h_next, c_next = F.conv_lstm_gates(*args)
    tol = dict(atol=1e-6, rtol=1e-5) if dtype == "float32" else forward_tol(dtype)
    assert_close(h_next, want_h, name="h'", **tol)
    assert_close(c_next, want_c, name="c'", **tol)
    h_next.sum().backward()
    # d h'/d pre_o = tanh(c') o (1 - o): checks the backward's own tanh over the same range.
    i, f, g, o = np.split(gates, 4, axis=1)
    assert_close(args[0].grad.numpy()[:, 9:], np.tanh(want_c) * o * (1 - o), name="d pre_o", **tol)


@pytest.mark.parametrize("peephole", [False, True], ids=["plain", "peephole"])
def test_gates_gradients_by_finite_differences(peephole):
    pre, c, w = _gate_inputs(n=3, hidden=2, h=2, w=3, seed=5)
    inputs = [_t(pre, requires_grad=True), _t(c, requires_grad=True)]
    if peephole:
        inputs.append(_t(w, requires_grad=True))
    gc.gradcheck(F.conv_lstm_gates, inputs)


def test_gates_results_do_not_depend_on_the_thread_count():
    # Large enough for the OpenMP split (N * hidden * H * W >= 2^15); the peephole gradient is a batch sum.
    pre, c, w = _gate_inputs(n=4, hidden=8, h=32, w=32, seed=12)
    d_h = _np((4, 8, 32, 32), 13)
    results = []
    previous = gc.get_num_threads()
    try:
        for threads in (1, 2, 3):
            gc.set_num_threads(threads)
            args = [_t(v, "float32", requires_grad=True) for v in (pre, c, w)]
            h_next, c_next = F.conv_lstm_gates(*args)
            (h_next * _t(d_h, "float32") + c_next).sum().backward()
            results.append([h_next.numpy(), c_next.numpy()] + [a.grad.numpy() for a in args])
    finally:
        gc.set_num_threads(previous)
    for other in results[1:]:
        for got, want in zip(other, results[0]):
            np.testing.assert_array_equal(got, want)


def test_gates_backward_with_only_h_used():
    # The c' output unused: autograd hands the kernel a zero gradient for it.
    pre, c, w = _gate_inputs(n=2, hidden=1, h=2, w=2, seed=8)
    gc.gradcheck(lambda p, c, w: F.conv_lstm_gates(p, c, w)[0],
                 [_t(pre, requires_grad=True), _t(c, requires_grad=True), _t(w, requires_grad=True)])


# ---- the cell -------------------------------------------------------------------------------------------------------
def _cell_arrays(n=2, c_in=2, hidden=3, h=5, w=4, k=(3, 3), seed=0):
    return dict(x=_np((n, c_in, h, w), seed), h=_np((n, hidden, h, w), seed + 1), c=_np((n, hidden, h, w), seed + 2),
                weight=_np((4 * hidden, c_in + hidden, *k), seed + 3, 0.3), bias=_np((4 * hidden,), seed + 4, 0.3),
                peephole=_np((3, hidden, h, w), seed + 5, 0.3))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kernel", [(3, 3), (1, 1), (5, 3), (2, 2)], ids=lambda k: f"{k[0]}x{k[1]}")
@pytest.mark.parametrize("optional", ["none", "bias", "bias+peephole"])
def test_cell_matches_reference(dtype, kernel, optional):
    a = _cell_arrays(k=kernel)
    bias = a["bias"] if "bias" in optional else None
    peephole = a["peephole"] if "peephole" in optional else None
    h_next, c_next = F.conv_lstm_cell(_t(a["x"], dtype), _t(a["h"], dtype), _t(a["c"], dtype), _t(a["weight"], dtype),
                                      None if bias is None else _t(bias, dtype),
                                      None if peephole is None else _t(peephole, dtype))
    want_h, want_c = ref.cell(a["x"], a["h"], a["c"], a["weight"], bias, peephole)
    tol = dict(atol=1e-5, rtol=1e-4) if dtype == "float32" else forward_tol(dtype)
    assert_close(h_next, want_h, name="h'", **tol)
    assert_close(c_next, want_c, name="c'", **tol)


def test_cell_gradients_by_finite_differences():
    a = _cell_arrays(n=2, c_in=1, hidden=2, h=3, w=4, seed=10)
    inputs = [_t(a[k], requires_grad=True) for k in ("x", "h", "c", "weight", "bias", "peephole")]
    gc.gradcheck(F.conv_lstm_cell, inputs)


def _unrolled(x, h0s, c0s, weights, biases, peepholes):
    """Two-layer (or deeper) ConvLSTM over x (N, T, C, H, W) written with the functional cell."""
    steps = F.unbind(x, dim=1)
    finals = []
    for h, c, weight, bias, peephole in zip(h0s, c0s, weights, biases, peepholes):
        outputs = []
        for x_t in steps:
            h, c = F.conv_lstm_cell(x_t, h, c, weight, bias, peephole)
            outputs.append(h)
        finals += [h, c]
        steps = outputs
    return (F.stack(steps, dim=1), *finals)


def _sequence_arrays(n=2, t=3, c_in=1, hidden=(2, 2), h=3, w=3, k=3, seed=20):
    rng = np.random.default_rng(seed)
    channels = [c_in, *hidden]
    return dict(
        x=rng.standard_normal((n, t, c_in, h, w)),
        h0=[rng.standard_normal((n, hc, h, w)) for hc in hidden],
        c0=[rng.standard_normal((n, hc, h, w)) for hc in hidden],
        weights=[0.4 * rng.standard_normal((4 * hc, channels[i] + hc, k, k)) for i, hc in enumerate(hidden)],
        biases=[0.3 * rng.standard_normal(4 * hc) for hc in hidden],
        peepholes=[0.3 * rng.standard_normal((3, hc, h, w)) for hc in hidden],
    )


def test_bptt_gradients_by_finite_differences_3_steps_2_layers():
    # Every input of a 2-layer, 3-step sequence: x, both layers' initial h and c, weights, biases and peepholes.
    a = _sequence_arrays()
    x = _t(a["x"], requires_grad=True)
    h0s = [_t(v, requires_grad=True) for v in a["h0"]]
    c0s = [_t(v, requires_grad=True) for v in a["c0"]]
    weights = [_t(v, requires_grad=True) for v in a["weights"]]
    biases = [_t(v, requires_grad=True) for v in a["biases"]]
    peepholes = [_t(v, requires_grad=True) for v in a["peepholes"]]
    flat = [x, *h0s, *c0s, *weights, *biases, *peepholes]

    def fn(x, h0a, h0b, c0a, c0b, wa, wb, ba, bb, pa, pb):
        return _unrolled(x, [h0a, h0b], [c0a, c0b], [wa, wb], [ba, bb], [pa, pb])

    gc.gradcheck(fn, flat)


def test_unrolled_sequence_matches_reference():
    a = _sequence_arrays(hidden=(3, 2), seed=21)
    out = _unrolled(_t(a["x"]), [_t(v) for v in a["h0"]], [_t(v) for v in a["c0"]], [_t(v) for v in a["weights"]],
                    [_t(v) for v in a["biases"]], [_t(v) for v in a["peepholes"]])
    want_out, want_final = ref.sequence(a["x"], list(zip(a["h0"], a["c0"])), a["weights"], a["biases"],
                                        a["peepholes"])
    assert_close(out[0], want_out, atol=1e-12, rtol=1e-10, name="output")
    for layer, (h, c) in enumerate(want_final):
        assert_close(out[1 + 2 * layer], h, atol=1e-12, rtol=1e-10, name=f"h of layer {layer}")
        assert_close(out[2 + 2 * layer], c, atol=1e-12, rtol=1e-10, name=f"c of layer {layer}")


# ---- nn.ConvLSTM ----------------------------------------------------------------------------------------------------
def _module_with(a, peephole=True, **kwargs):
    hidden = [w.shape[0] // 4 for w in a["weights"]]
    frame = a["x"].shape[-2:]
    m = nn.ConvLSTM(a["x"].shape[2], hidden, a["weights"][0].shape[-1], peephole=peephole,
                    frame_size=frame if peephole else None, **kwargs).double()
    for cell, w, b, p in zip(m.cells, a["weights"], a["biases"], a["peepholes"]):
        cell.weight.copy_(w)
        cell.bias.copy_(b)
        if peephole:
            cell.peephole.copy_(p)
    return m


def test_module_matches_reference_and_its_gradients_match_the_unrolled_cells():
    a = _sequence_arrays(t=4, hidden=(3, 2), seed=22)
    m = _module_with(a)
    x = _t(a["x"], requires_grad=True)
    state = [(_t(h), _t(c)) for h, c in zip(a["h0"], a["c0"])]
    out, final = m(x, state)
    want_out, want_final = ref.sequence(a["x"], list(zip(a["h0"], a["c0"])), a["weights"], a["biases"],
                                        a["peepholes"])
    assert_close(out, want_out, atol=1e-12, rtol=1e-10, name="output")
    for (h, c), (wh, wc) in zip(final, want_final):
        assert_close(h, wh, atol=1e-12, rtol=1e-10, name="final h")
        assert_close(c, wc, atol=1e-12, rtol=1e-10, name="final c")
    # The module's parameter gradients equal those of the same computation written with the functional cell.
    (out * out).sum().backward()
    params = [[_t(v, requires_grad=True) for v in a[k]] for k in ("weights", "biases", "peepholes")]
    x2 = _t(a["x"], requires_grad=True)
    ref_out = _unrolled(x2, [s[0] for s in state], [s[1] for s in state], *params)[0]
    (ref_out * ref_out).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), x2.grad.numpy())
    for layer, cell in enumerate(m.cells):
        np.testing.assert_array_equal(cell.weight.grad.numpy(), params[0][layer].grad.numpy())
        np.testing.assert_array_equal(cell.bias.grad.numpy(), params[1][layer].grad.numpy())
        np.testing.assert_array_equal(cell.peephole.grad.numpy(), params[2][layer].grad.numpy())


def test_state_none_means_zeros_and_carried_state_continues_the_sequence():
    a = _sequence_arrays(t=4, hidden=(2, 3), seed=23)
    m = _module_with(a, peephole=False)
    x = _t(a["x"])
    zero_state = [(gc.zeros(2, hc, 3, 3, dtype="float64"), gc.zeros(2, hc, 3, 3, dtype="float64")) for hc in (2, 3)]
    whole, final = m(x)
    np.testing.assert_array_equal(whole.numpy(), m(x, zero_state)[0].numpy())
    # Truncated BPTT: two halves, the state of the first (detached) carried into the second.
    first, state = m(_t(a["x"][:, :2]))
    second, final2 = m(_t(a["x"][:, 2:]), [(h.detach(), c.detach()) for h, c in state])
    np.testing.assert_array_equal(np.concatenate([first.numpy(), second.numpy()], axis=1), whole.numpy())
    for (h, c), (h2, c2) in zip(final, final2):
        np.testing.assert_array_equal(h.numpy(), h2.numpy())
        np.testing.assert_array_equal(c.numpy(), c2.numpy())


def test_time_major_layout_and_last_step_output():
    a = _sequence_arrays(t=3, hidden=(2,), seed=24)
    batch_first = _module_with(a, peephole=False)
    time_major = _module_with(a, peephole=False, batch_first=False, return_sequences=False)
    out, _ = batch_first(_t(a["x"]))
    last, final = time_major(_t(np.ascontiguousarray(a["x"].transpose(1, 0, 2, 3, 4))))
    assert last.shape == (2, 2, 3, 3)
    np.testing.assert_array_equal(last.numpy(), out.numpy()[:, -1])
    np.testing.assert_array_equal(final[0][0].numpy(), last.numpy())


def test_hidden_channels_list_sets_layers():
    m = nn.ConvLSTM(3, [4, 5, 6], 3)
    assert m.num_layers == 3 and m.hidden_channels == [4, 5, 6]
    assert [c.weight.shape for c in m.cells] == [(16, 7, 3, 3), (20, 9, 3, 3), (24, 11, 3, 3)]
    out, final = m(gc.zeros(1, 2, 3, 4, 4))
    assert out.shape == (1, 2, 6, 4, 4) and [h.shape[1] for h, _ in final] == [4, 5, 6]
    assert len(list(nn.ConvLSTM(1, 4, 3, num_layers=2, bias=False).parameters())) == 2


def test_default_init_glorot_orthogonal_forget_bias_one():
    hidden, c_in, k = 4, 3, 3
    m = nn.ConvLSTM(c_in, hidden, k, generator=gc.Generator(1))
    w = m.cell0.weight.numpy().astype(np.float64)
    w_input, w_recurrent = w[:, :c_in], w[:, c_in:]
    limit = np.sqrt(6.0 / ((c_in + 4 * hidden) * k * k))  # Glorot uniform over the input part's own fans
    assert np.abs(w_input).max() <= limit and np.abs(w_input).max() > 0.8 * limit
    rows = w_recurrent.reshape(4 * hidden, -1)  # (16, 36): orthonormal rows
    assert_close(rows @ rows.T, np.eye(4 * hidden), atol=1e-5, rtol=0)
    np.testing.assert_array_equal(m.cell0.bias.numpy(), np.repeat([0.0, 1.0, 0.0, 0.0], hidden))
    # Selectable: other initializers, a callable, another forget bias.
    m2 = nn.ConvLSTM(c_in, hidden, k, input_init="zeros", recurrent_init=nn.init.ones_, forget_bias=0.0)
    w2 = m2.cell0.weight.numpy()
    assert not w2[:, :c_in].any() and (w2[:, c_in:] == 1).all() and not m2.cell0.bias.numpy().any()
    # Seeded: the same generator seed gives the same weights.
    m3 = nn.ConvLSTM(c_in, hidden, k, generator=gc.Generator(1))
    np.testing.assert_array_equal(m3.cell0.weight.numpy(), m.cell0.weight.numpy())


def _train_losses(steps=3):
    gen = gc.Generator(7)
    model = nn.ConvLSTM(1, [3, 2], 3, num_layers=2, peephole=True, frame_size=(6, 6), generator=gen)
    rng = np.random.default_rng(3)
    x = gc.tensor(rng.standard_normal((2, 4, 1, 6, 6)).astype(np.float32))
    target = gc.tensor(rng.standard_normal((2, 4, 2, 6, 6)).astype(np.float32))
    losses = []
    for _ in range(steps):
        model.zero_grad()
        out, _ = model(x)
        loss = F.mse_loss(out, target)
        loss.backward()
        with gc.no_grad():
            for p in model.parameters():
                p.copy_(p - 0.5 * p.grad)
        losses.append(loss.item())
    return losses


def test_two_identical_training_runs_give_bitwise_equal_losses():
    first, second = _train_losses(), _train_losses()
    assert first == second
    assert first[-1] < first[0]  # and it learns


# ---- CUDA against CPU -----------------------------------------------------------------------------------------------
@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("peephole", [False, True], ids=["plain", "peephole"])
def test_gates_cuda_matches_cpu(dtype, peephole):
    pre, c, w = _gate_inputs(n=3, hidden=5, h=7, w=9, seed=30)
    results = {}
    for device in ("cpu", "cuda"):
        args = [_t(pre, dtype, device, True), _t(c, dtype, device, True)]
        if peephole:
            args.append(_t(w, dtype, device, True))
        h_next, c_next = F.conv_lstm_gates(*args)
        (h_next * h_next + c_next * 0.5).sum().backward()
        results[device] = [h_next.numpy(), c_next.numpy()] + [a.grad.numpy() for a in args]
    assert_cuda_matches_cpu(results["cuda"], results["cpu"], dtype, name="h', c' and grads")


@pytest.mark.cuda
def test_module_cuda_matches_cpu_forward_and_backward():
    a = _sequence_arrays(n=2, t=3, hidden=(4, 3), h=8, w=6, seed=31)
    grads = {}
    for device in ("cpu", "cuda"):
        m = _module_with(a).to(device)
        x = _t(a["x"], device=device, requires_grad=True)
        out, _ = m(x)
        (out * out).sum().backward()
        grads[device] = [out.numpy(), x.grad.numpy()] + [p.grad.numpy() for p in m.parameters()]
    assert_cuda_matches_cpu(grads["cuda"], grads["cpu"], "float64", name="output and grads")


@pytest.mark.cuda
def test_cuda_training_is_bitwise_repeatable():
    def run():
        model = nn.ConvLSTM(1, 4, 3, generator=gc.Generator(0)).to("cuda")
        x = gc.tensor(np.random.default_rng(0).standard_normal((2, 3, 1, 8, 8)), dtype="float32", device="cuda")
        losses = []
        for _ in range(3):
            model.zero_grad()
            out, _ = model(x)
            loss = (out * out).mean()
            loss.backward()
            with gc.no_grad():
                for p in model.parameters():
                    p.copy_(p - 0.1 * p.grad)
            losses.append(loss.item())
        return losses

    assert run() == run()


# ---- bad input ------------------------------------------------------------------------------------------------------
def test_cell_bad_input():
    a = {k: _t(v) for k, v in _cell_arrays().items()}
    x, h, c, w, b, p = (a[k] for k in ("x", "h", "c", "weight", "bias", "peephole"))
    with pytest.raises(ValueError, match="x: expected 4 dimensions"):
        F.conv_lstm_cell(gc.zeros(2, 5, 4, dtype="float64"), h, c, w)
    with pytest.raises(TypeError, match="h: expected a gradcore.Tensor"):
        F.conv_lstm_cell(x, h.numpy(), c, w)
    with pytest.raises(ValueError, match="h: expected shape"):
        F.conv_lstm_cell(x, gc.zeros(2, 3, 5, 5, dtype="float64"), c, w)
    with pytest.raises(ValueError, match="c: expected h's shape"):
        F.conv_lstm_cell(x, h, gc.zeros(2, 2, 5, 4, dtype="float64"), w)
    with pytest.raises(ValueError, match="weight: expected shape"):
        F.conv_lstm_cell(x, h, c, gc.zeros(12, 4, 3, 3, dtype="float64"))
    with pytest.raises(ValueError, match="bias: expected shape"):
        F.conv_lstm_cell(x, h, c, w, gc.zeros(3, dtype="float64"))
    with pytest.raises(ValueError, match="peephole: expected shape"):
        F.conv_lstm_cell(x, h, c, w, b, gc.zeros(3, 3, 4, 5, dtype="float64"))
    with pytest.raises(TypeError, match="weight: dtype float32"):
        F.conv_lstm_cell(x, h, c, w.float())


def test_gates_bad_input():
    pre, c, w = (_t(v) for v in _gate_inputs())
    with pytest.raises(ValueError, match="pre: expected 4\\*hidden channels"):
        F.conv_lstm_gates(gc.zeros(2, 10, 4, 5, dtype="float64"), c)
    with pytest.raises(ValueError, match="c"):
        F.conv_lstm_gates(pre, gc.zeros(2, 3, 5, 4, dtype="float64"))
    with pytest.raises(ValueError, match="peephole"):
        F.conv_lstm_gates(pre, c, gc.zeros(2, 3, 4, 5, dtype="float64"))
    with pytest.raises(TypeError, match="c"):
        F.conv_lstm_gates(pre, c.float())


def test_module_bad_input():
    m = nn.ConvLSTM(2, 3, 3, num_layers=2)
    with pytest.raises(ValueError, match="x: expected 5 dimensions"):
        m(gc.zeros(2, 2, 4, 4))
    with pytest.raises(ValueError, match="x: expected 2 channels"):
        m(gc.zeros(1, 2, 3, 4, 4))
    with pytest.raises(TypeError, match="x: expected a gradcore.Tensor"):
        m(np.zeros((1, 2, 2, 4, 4)))
    with pytest.raises(ValueError, match="state: expected a list of 2"):
        m(gc.zeros(1, 2, 2, 4, 4), [(gc.zeros(1, 3, 4, 4), gc.zeros(1, 3, 4, 4))])
    with pytest.raises(ValueError, match="frame_size"):
        nn.ConvLSTM(2, 3, 3, peephole=True)
    with pytest.raises(ValueError, match="x: frames of"):
        nn.ConvLSTM(2, 3, 3, peephole=True, frame_size=(5, 5))(gc.zeros(1, 2, 2, 4, 4))
    with pytest.raises(ValueError, match="hidden_channels"):
        nn.ConvLSTM(2, [3, 4], 3, num_layers=3)
    with pytest.raises(ValueError, match="kernel_size"):
        nn.ConvLSTM(2, 3, 0)
    with pytest.raises(ValueError, match="input_init"):
        nn.ConvLSTM(2, 3, 3, input_init="nonsense")
