"""conv2d and conv_transpose2d, forward, backward-data and backward-weight, against PyTorch (CPU, 2 threads by
default) or cuDNN (with TF32 off and on: --tf32 off|on|both).

    python -m bench.conv [--device cuda] [--quick] [--tf32 both]

Shapes: the seed autoencoder's layers (N=25, 3x3, "same": conv 28x28x1 -> 14x14x32 -> 7x7x64, stride 2; convT
7x7x64 -> 14x14x64 -> 28x28x32, stride 2, then 28x28x32 -> 28x28x1, stride 1),
ResNet-style 3x3 stride-1 layers at N=32 (56x56x64, 28x28x128, 14x14x256) and a depthwise 3x3 layer.
Ours calls the _core kernels the autograd Functions call (forward through gradcore.functional); PyTorch calls
torch.nn.functional for the forward and aten.convolution_backward for the two backward passes. Where our "same"
padding is asymmetric (stride 2 on an even size: the odd pixel at the bottom/right), PyTorch gets the symmetric
padding that gives the same output size: the same arithmetic, offset by one pixel.
"""
from __future__ import annotations

import argparse

import numpy as np

import gradcore as gc
from bench.harness import Case, add_common_args, run_suite, setup
from gradcore import _core
from gradcore.ops.conv2d import conv2d_padding
from gradcore.ops.conv_transpose2d import same_cropping

# name: (transposed, N, C_in, H, W, C_out, k, stride, padding, groups)
LAYERS = {
    "seed_enc1 25x1x28x28->32 s2": (False, 25, 1, 28, 28, 32, 3, 2, "same", 1),
    "seed_enc2 25x32x14x14->64 s2": (False, 25, 32, 14, 14, 64, 3, 2, "same", 1),
    "seed_dec1 T 25x64x7x7->64 s2": (True, 25, 64, 7, 7, 64, 3, 2, "same", 1),
    "seed_dec2 T 25x64x14x14->32 s2": (True, 25, 64, 14, 14, 32, 3, 2, "same", 1),
    "seed_dec3 T 25x32x28x28->1 s1": (True, 25, 32, 28, 28, 1, 3, 1, "same", 1),
    "resnet 32x64x56x56 3x3": (False, 32, 64, 56, 56, 64, 3, 1, 1, 1),
    "resnet 32x128x28x28 3x3": (False, 32, 128, 28, 28, 128, 3, 1, 1, 1),
    "resnet 32x256x14x14 3x3": (False, 32, 256, 14, 14, 256, 3, 1, 1, 1),
    "depthwise 32x128x28x28 3x3": (False, 32, 128, 28, 28, 128, 3, 1, 1, 128),
}
QUICK = ["seed_enc1 25x1x28x28->32 s2", "seed_enc2 25x32x14x14->64 s2", "seed_dec1 T 25x64x7x7->64 s2",
         "seed_dec2 T 25x64x14x14->32 s2", "seed_dec3 T 25x32x28x28->1 s1", "resnet 32x256x14x14 3x3",
         "depthwise 32x128x28x28 3x3"]


def layer_cases(name, layer, device, torch, dtype="float32"):
    transposed, n, c_in, h, w, c_out, k, s, padding, groups = layer
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((n, c_in, h, w)).astype(dtype)
    w_shape = (c_in, c_out // groups, k, k) if transposed else (c_out, c_in // groups, k, k)
    w_np = (rng.standard_normal(w_shape) * 0.1).astype(dtype)
    b_np = rng.standard_normal(c_out).astype(dtype)
    x, weight, bias = (gc.tensor(a, device=device) for a in (x_np, w_np, b_np))
    stride, dilation = (s, s), (1, 1)
    if transposed:
        (top, bottom), op = same_cropping(k, s, 1) if padding == "same" else ((padding, padding), 0)
        pads = (top, bottom, top, bottom)
        y = gc.functional.conv_transpose2d(x, weight, bias, stride=s, padding=padding, groups=groups)
    else:
        pads = conv2d_padding(padding, (h, w), (k, k), stride, dilation)
        y = gc.functional.conv2d(x, weight, bias, stride=s, padding=padding, groups=groups)
    g_np = rng.standard_normal(y.shape).astype(dtype)
    g = gc.tensor(g_np, device=device)
    xa, wa, ga = x._data, weight._data, g._data
    out_hw = tuple(y.shape[2:])
    args = (stride, pads, dilation, groups)
    if transposed:  # y = conv2d_backward_input(x); dx = conv2d_forward(gy); dw = conv2d_backward_weight(gy, x)
        ours = {
            "forward": lambda: gc.functional.conv_transpose2d(x, weight, bias, stride=s, padding=padding, groups=groups),
            "backward-data": lambda: _core.conv2d_forward(ga, wa, None, *args),
            "backward-weight": lambda: _core.conv2d_backward_weight(ga, xa, (k, k), *args),
        }
    else:
        ours = {
            "forward": lambda: gc.functional.conv2d(x, weight, bias, stride=s, padding=padding, groups=groups),
            "backward-data": lambda: _core.conv2d_backward_input(ga, wa, (h, w), *args),
            "backward-weight": lambda: _core.conv2d_backward_weight(xa, ga, (k, k), *args),
        }
    refs = {}
    if torch is not None:
        dev = "cuda" if device.startswith("cuda") else "cpu"
        tx, tw, tb, tg = (torch.from_numpy(a).to(dev) for a in (x_np, w_np, b_np, g_np))
        fn = torch.nn.functional
        # Symmetric padding with our output size (see the module docstring).
        if transposed:
            tp = (top + bottom + 1) // 2
            t_op = out_hw[0] - ((h - 1) * s - 2 * tp + k)
            forward = lambda: fn.conv_transpose2d(tx, tw, tb, stride=s, padding=tp, output_padding=t_op,  # noqa: E731
                                                  groups=groups)
        else:
            tp = (pads[0] + pads[1] + 1) // 2 if pads[0] != pads[1] else pads[0]
            t_op = 0
            forward = lambda: fn.conv2d(tx, tw, tb, stride=s, padding=tp, groups=groups)  # noqa: E731
        assert tuple(forward().shape) == tuple(y.shape), (name, forward().shape, y.shape)
        backward = torch.ops.aten.convolution_backward
        common = ([s, s], [tp, tp], [1, 1], transposed, [t_op, t_op], groups)
        refs = {
            "forward": forward,
            "backward-data": lambda: backward(tg, tx, tw, None, *common, [True, False, False]),
            "backward-weight": lambda: backward(tg, tx, tw, None, *common, [False, True, False]),
        }
    ho, wo = (h, w) if transposed else out_hw  # the conv2d view's output: the smaller side of a transposed conv
    conv_in, conv_out = (c_out, c_in) if transposed else (c_in, c_out)
    flops = 2.0 * n * conv_out * ho * wo * (conv_in // groups) * k * k
    elem = np.dtype(dtype).itemsize
    sizes = dict(x=n * c_in * h * w, w=int(np.prod(w_shape)), y=int(np.prod(y.shape)))
    moved = {"forward": sizes["x"] + sizes["w"] + sizes["y"], "backward-data": sizes["y"] + sizes["w"] + sizes["x"],
             "backward-weight": sizes["x"] + sizes["y"] + sizes["w"]}
    return [Case(f"{name} {kind}", ours[kind], refs.get(kind), flops=flops, bytes=moved[kind] * elem,
                 params=dict(layer=name, pass_=kind, transposed=transposed, dtype=dtype))
            for kind in ("forward", "backward-data", "backward-weight")]


def main(argv=None):
    parser = add_common_args(argparse.ArgumentParser(description=__doc__))
    parser.add_argument("--tf32", choices=["off", "on", "both"], default="both",
                        help="cuDNN TF32 for the reference on a GPU (ours is plain FP32)")
    parser.add_argument("--layers", default=None, help="comma-separated substrings selecting layers")
    args = parser.parse_args(argv)
    torch = setup(args)
    names = QUICK if args.quick else list(LAYERS)
    if args.layers:
        names = [n for n in names if any(part in n for part in args.layers.split(","))]
    modes = [None]
    if args.device.startswith("cuda") and torch is not None:
        modes = ["off", "on"] if args.tf32 == "both" else [args.tf32]
    results = []
    base_out = args.out
    with gc.no_grad():
        cases = [c for name in names for c in layer_cases(name, LAYERS[name], args.device, torch)]
        for mode in modes:
            suite = "conv" if mode is None else f"conv-tf32{mode}"
            if mode is not None:
                torch.backends.cudnn.allow_tf32 = mode == "on"
                torch.backends.cuda.matmul.allow_tf32 = mode == "on"
                if base_out:
                    args.out = base_out.replace(".json", f"-tf32{mode}.json")
            results.append(run_suite(suite, cases, args, torch, settings=dict(tf32=mode, layers=names)))
    return results


if __name__ == "__main__":
    main()
