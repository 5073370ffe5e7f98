"""Which neighbouring modules of an nn.Sequential run as one fused op, "when the graph allows it" (issue 19).

[Conv2d | ConvTranspose2d, ReLU] runs as one node (ops/conv_relu.py): the convolution stores relu(y) directly and
its backward masks the gradient in the pass that also sums the bias gradient, so the ReLU's own passes over memory
go away. The result is bitwise the unfused pair's, forward and gradients (tests/test_conv_relu.py).

[BatchNorm2d, ReLU] runs as one node too (ops/batch_norm.py's batch_norm_relu): the kernel stores relu(y), saving the
ReLU's forward pass; its backward is the unfused pair's mask and batch_norm backward.

A pair is fused only when nothing could tell the difference: both modules are exactly these classes (a subclass
may override forward) and neither has a forward hook (hooks see each layer's own output: gradcore.diagnostics'
per-layer health checks register them, and then every layer runs on its own). Sequential.fuse_activations = False
turns fusion off for one network (or for all, on the class).
"""
from __future__ import annotations

from ..ops.batch_norm import batch_norm_relu
from ..ops.conv_relu import conv2d_relu, conv_transpose2d_relu
from .activation import ReLU
from .batchnorm import BatchNorm2d
from .conv import Conv2d, ConvTranspose2d


def _conv2d_relu(conv, x):
    return conv2d_relu(x, conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups)


def _conv_transpose2d_relu(conv, x):
    return conv_transpose2d_relu(x, conv.weight, conv.bias, conv.stride, conv.padding, conv.output_padding,
                                 conv.groups, conv.dilation)


def _batch_norm_relu(bn, x):
    return bn._normalise(x, batch_norm_relu)


# (type of the first module, type of the second) -> fn(first module, x) computing second(first(x))
FUSED_PAIRS = {(Conv2d, ReLU): _conv2d_relu, (ConvTranspose2d, ReLU): _conv_transpose2d_relu,
               (BatchNorm2d, ReLU): _batch_norm_relu}


def fused_pair(first, second):
    """fn(first, x) running first then second as one op, or None when this pair does not fuse now."""
    fn = FUSED_PAIRS.get((type(first), type(second)))
    if fn is None or first._forward_hooks or second._forward_hooks:
        return None
    return fn
