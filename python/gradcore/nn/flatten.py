"""Flatten: the shape glue between convolutional features and a dense head (torch.nn.Flatten)."""
from __future__ import annotations

from .. import functional as F
from .._checks import integer
from .module import Module


class Flatten(Module):
    """y = x.flatten(start_dim, end_dim); by default keeps the batch dimension: (N, C, H, W) -> (N, C*H*W)."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim = integer(start_dim, "start_dim", minimum=None, maximum=None)
        self.end_dim = integer(end_dim, "end_dim", minimum=None, maximum=None)

    def forward(self, x):
        return F.flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
