"""Device-side statistics for the health checks: each returns a 0-d Tensor on the input's device, so a check step
queues kernels and reads everything back once (HealthMonitor stacks them), never one .item() per number.

Scale-free by construction: the checks compare these with each other (a spread with the target's spread, a
gradient norm with its weight norm), never with an absolute number.

The library has no comparison kernels; counting units with a > 0 uses  relu(a) / (|a| + 1e-30),  which is exactly
0 for a <= 0 and 1 (to float precision) for a > ~1e-25: a unit whose activations sum to less than that over a whole
batch passes no gradient worth the name either.
"""
from __future__ import annotations

from ..autograd import no_grad
from ..tensor import Tensor

_TINY = 1e-30
# A sigmoid or tanh unit counts as saturated when its local gradient, averaged over the batch, is below this
# fraction of its peak (sigmoid: 4 y (1 - y) < 0.05 <=> |z| > 4.4; tanh: 1 - y^2 < 0.05 <=> |z| > 2.2).
SATURATED_GAIN = 0.05


@no_grad()
def sum_squares(t: Tensor) -> Tensor:
    """sum(t^2), 0-d."""
    return (t * t).sum()


@no_grad()
def positive_fraction(a: Tensor) -> Tensor:
    """The fraction of a's elements that are > 0, 0-d."""
    return (a.relu() / (a.abs() + _TINY)).mean()


@no_grad()
def batch_spread(y: Tensor) -> Tensor:
    """How much y varies across the batch: the standard deviation over axis 0 of every feature, averaged over the
    features, 0-d. 0 exactly when every sample gets the same output (a collapse to a constant, of any value)."""
    d = y - y.mean(axis=0, keepdims=True)
    return (d * d).mean(axis=0).sqrt().mean()


@no_grad()
def dead_fraction(relu_output: Tensor) -> Tensor:
    """The fraction of a ReLU's units (features after the batch axis) that are zero for every sample, 0-d."""
    return 1.0 - positive_fraction(relu_output.sum(axis=0))


@no_grad()
def saturated_fraction(output: Tensor, kind: str) -> Tensor:
    """The fraction of a sigmoid's or tanh's units whose local gradient, averaged over the batch, is below
    SATURATED_GAIN of its peak, 0-d."""
    if kind == "sigmoid":
        gain = output * (1.0 - output) * 4.0
    elif kind == "tanh":
        gain = 1.0 - output * output
    else:
        raise ValueError(f"kind: expected \"sigmoid\" or \"tanh\", got {kind!r}")
    return positive_fraction(SATURATED_GAIN - gain.mean(axis=0))
