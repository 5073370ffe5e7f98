"""ConvLSTM sequence forward and backward against PyTorch (a ConvLSTM from torch's conv2d, cuDNN on GPU, and eager
gate ops), and the fused gate kernels alone against the eager gate ops.

    python -m bench.conv_lstm [--device cuda|cpu] [--quick] [--tf32]

The issue's shape: T=10, N=16, 64x64 frames, 1 input channel, hidden 64, 3x3 kernel, one layer, float32. On the GPU
the reference runs with TF32 off unless --tf32 (our kernels are full FP32). The target (issue 7): <= 0.5x PyTorch's
time on the GPU. Before timing, the two implementations' outputs are compared on the same weights.
"""
from __future__ import annotations

import argparse

import numpy as np

import gradcore as gc
from bench.harness import Case, add_common_args, run_suite, setup


def torch_conv_lstm(torch, x, weight, bias):
    """The reference: torch.cat + conv2d ("same" for odd kernels) + eager gate ops, gates [i, f, g, o]."""
    n, t_len, _, h, w = x.shape
    hidden = weight.shape[0] // 4
    pad = weight.shape[-1] // 2
    h_t = x.new_zeros(n, hidden, h, w)
    c_t = x.new_zeros(n, hidden, h, w)
    outputs = []
    for t in range(t_len):
        pre = torch.nn.functional.conv2d(torch.cat([x[:, t], h_t], 1), weight, bias, padding=pad)
        a_i, a_f, a_g, a_o = pre.chunk(4, 1)
        i, f, g, o = torch.sigmoid(a_i), torch.sigmoid(a_f), torch.tanh(a_g), torch.sigmoid(a_o)
        c_t = f * c_t + i * g
        h_t = o * torch.tanh(c_t)
        outputs.append(h_t)
    return torch.stack(outputs, 1)


def torch_gates(torch, pre, c):
    a_i, a_f, a_g, a_o = pre.chunk(4, 1)
    i, f, g, o = torch.sigmoid(a_i), torch.sigmoid(a_f), torch.tanh(a_g), torch.sigmoid(a_o)
    c_next = f * c + i * g
    return o * torch.tanh(c_next), c_next


def cases(args, torch):
    if args.quick:
        t_len, n, size, c_in, hidden, k = 3, 4, 32, 1, 16, 3
    else:
        t_len, n, size, c_in, hidden, k = 10, 16, 64, 1, 64, 3
    device = args.device
    rng = np.random.default_rng(0)
    x_np = rng.random((n, t_len, c_in, size, size)).astype(np.float32)
    grad_np = rng.standard_normal((n, t_len, hidden, size, size)).astype(np.float32)
    model = gc.nn.ConvLSTM(c_in, hidden, k, generator=gc.Generator(0)).to(device)
    x = gc.tensor(x_np, device=device)
    grad_out = gc.tensor(grad_np, device=device)
    cell = model.cells[0]

    def ours_forward():
        with gc.no_grad():
            return model(x)[0]

    def ours_forward_backward():
        model.zero_grad()
        out, _ = model(x)
        out.backward(grad_out)

    pre = gc.tensor(rng.standard_normal((n, 4 * hidden, size, size)).astype(np.float32), device=device)
    c0 = gc.tensor(rng.standard_normal((n, hidden, size, size)).astype(np.float32), device=device)
    d_h = gc.tensor(rng.standard_normal((n, hidden, size, size)).astype(np.float32), device=device)
    zeros = gc.zeros(n, hidden, size, size, device=device)

    def ours_gates_forward_backward():
        h_next, c_next, gates = gc._core.conv_lstm_gates_forward(pre._data, c0._data)
        return gc._core.conv_lstm_gates_backward(gates, c0._data, c_next, d_h._data, zeros._data)

    ref_forward = ref_forward_backward = ref_gates = ref_gates_forward_backward = None
    if torch is not None:
        tdev = "cuda" if device.startswith("cuda") else "cpu"
        tx = torch.from_numpy(x_np).to(tdev)
        tgrad = torch.from_numpy(grad_np).to(tdev)
        tw = torch.from_numpy(cell.weight.numpy().copy()).to(tdev).requires_grad_(True)
        tb = torch.from_numpy(cell.bias.numpy().copy()).to(tdev).requires_grad_(True)
        with torch.no_grad():
            reference = torch_conv_lstm(torch, tx, tw, tb).cpu().numpy()
        difference = float(np.max(np.abs(ours_forward().numpy() - reference)))
        print(f"max |ours - PyTorch| over the sequence output: {difference:.3g}")

        def ref_forward():
            with torch.no_grad():
                return torch_conv_lstm(torch, tx, tw, tb)

        def ref_forward_backward():
            tw.grad = tb.grad = None
            torch_conv_lstm(torch, tx, tw, tb).backward(tgrad)

        tpre = torch.from_numpy(pre.numpy()).to(tdev)
        tc0 = torch.from_numpy(c0.numpy()).to(tdev)

        def ref_gates():
            with torch.no_grad():
                return torch_gates(torch, tpre, tc0)

        tpre_g = tpre.clone().requires_grad_(True)
        tc0_g = tc0.clone().requires_grad_(True)
        tdh = torch.from_numpy(d_h.numpy()).to(tdev)

        def ref_gates_forward_backward():
            tpre_g.grad = tc0_g.grad = None
            h_next, _ = torch_gates(torch, tpre_g, tc0_g)
            h_next.backward(tdh)

    conv_flops = 2.0 * n * size * size * 4 * hidden * (c_in + hidden) * k * k * t_len
    gate_elems = n * hidden * size * size
    params = dict(T=t_len, N=n, H=size, W=size, C_in=c_in, hidden=hidden, kernel=k)
    return [
        Case(f"seq fwd T={t_len} N={n} {size}x{size} hid={hidden}", ours_forward, ref_forward,
             flops=conv_flops, params=dict(op="forward", **params)),
        Case(f"seq fwd+bwd T={t_len} N={n} {size}x{size} hid={hidden}", ours_forward_backward,
             ref_forward_backward, flops=3 * conv_flops, params=dict(op="forward+backward", **params)),
        # Fused gates: reads pre (4) and c (1), writes h', c' and the saved gates (6) per hidden element.
        Case(f"gates fwd N={n} {size}x{size} hid={hidden}",
             lambda: gc._core.conv_lstm_gates_forward(pre._data, c0._data), ref_gates,
             bytes=4.0 * 11 * gate_elems, params=dict(op="gates_forward", **params)),
        # Forward then backward (what a training step runs); backward reads gates (4), c, c', dh', dc' (4) and
        # writes d_pre (4) and dc (1). The reference is autograd through the eager gates.
        Case(f"gates fwd+bwd N={n} {size}x{size} hid={hidden}", ours_gates_forward_backward,
             ref_gates_forward_backward, bytes=4.0 * (11 + 13) * gate_elems,
             params=dict(op="gates_forward_backward", **params)),
    ]


def main(argv=None):
    parser = add_common_args(argparse.ArgumentParser(description=__doc__))
    parser.add_argument("--tf32", action="store_true", help="let PyTorch's cuDNN use TF32 (off by default)")
    args = parser.parse_args(argv)
    torch = setup(args)
    if torch is not None and args.device.startswith("cuda"):
        torch.backends.cudnn.allow_tf32 = args.tf32
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
    settings = dict(tf32=bool(args.tf32), dtype="float32", layers=1)
    return run_suite("conv_lstm", cases(args, torch), args, torch, settings)


if __name__ == "__main__":
    main()
