"""numpy references for comparisons, where, clamp, maximum and minimum, and their gradients (PyTorch's rules)."""
import numpy as np

from .elementwise import unbroadcast

COMPARE = {"eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal, "gt": np.greater,
           "ge": np.greater_equal, "logical_and": np.logical_and, "logical_or": np.logical_or,
           "logical_xor": np.logical_xor}


def compare(name, a, b):
    return COMPARE[name](a, b)


def where(condition, a, b):
    return np.where(condition, a, b)


def where_grads(condition, g, a_shape, b_shape):
    return unbroadcast(np.where(condition, g, 0.0), a_shape), unbroadcast(np.where(condition, 0.0, g), b_shape)


def clamp(x, low=None, high=None):
    """min(max(x, low), high); NaN x stays NaN; low > high gives high."""
    out = np.asarray(x, dtype=np.float64)
    if low is not None:
        out = np.where(np.isnan(out), out, np.maximum(out, low))
    if high is not None:
        out = np.where(np.isnan(out), out, np.minimum(out, high))
    return out


def clamp_grad(x, g, low=None, high=None):
    """g where low <= x <= high (bounds included), 0 elsewhere."""
    inside = np.ones(np.shape(x), dtype=bool)
    if low is not None:
        inside &= x >= low
    if high is not None:
        inside &= x <= high
    return np.where(inside, g, 0.0)


def maximum(a, b):
    return np.maximum(a, b)


def minimum(a, b):
    return np.minimum(a, b)


def extremum_grads(name, a, b, g):
    """maximum: g to the larger operand, g/2 to each on a tie; minimum: to the smaller."""
    a_wins = a > b if name == "maximum" else a < b
    b_wins = b > a if name == "maximum" else b < a
    tie = a == b
    ga = np.where(a_wins, g, np.where(tie, g / 2, 0.0))
    gb = np.where(b_wins, g, np.where(tie, g / 2, 0.0))
    return unbroadcast(ga, np.shape(a)), unbroadcast(gb, np.shape(b))
