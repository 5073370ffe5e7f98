"""gradcore.functional: the ops as functions, with PyTorch's names."""
from .ops.elementwise import (  # noqa: F401
    abs, add, div, exp, leaky_relu, log, mul, neg, pow, relu, sigmoid, sqrt, sub, tanh,
)
from .ops.batch_norm import batch_norm  # noqa: F401
from .ops.concat import cat, split, stack, unbind  # noqa: F401
from .ops.conv2d import conv2d  # noqa: F401
from .ops.conv_lstm import conv_lstm_cell, conv_lstm_gates  # noqa: F401
from .ops.conv_transpose2d import conv_transpose2d  # noqa: F401
from .ops.losses import binary_cross_entropy, binary_cross_entropy_with_logits, mse_loss  # noqa: F401
from .ops.reduce import mean, reshape, sum  # noqa: F401
