"""numpy references for dtype conversion (PyTorch's rules) and integer sums."""
import numpy as np

INT64_MIN = np.iinfo(np.int64).min


def cast(x, dtype):
    """x converted to dtype as PyTorch converts: float -> int64 truncates toward zero (NaN, +-inf and values outside
    int64 give INT64_MIN, the x86 conversion's answer); -> bool is x != 0 (NaN is true); bool -> 0 or 1."""
    x = np.asarray(x)
    if dtype == "bool":
        return x != 0
    if dtype == "int64" and x.dtype.kind == "f":
        wide = x.astype(np.float64)
        in_range = np.isfinite(wide) & (wide >= -2.0**63) & (wide < 2.0**63)
        out = np.full(x.shape, INT64_MIN, dtype=np.int64)
        out[in_range] = np.trunc(wide[in_range]).astype(np.int64)
        return out
    return x.astype(dtype)


def integer_sum(x, axis=None, keepdims=False):
    """The int64 sum of an int64 or bool array (wrapping on overflow, as PyTorch)."""
    axis = tuple(axis) if isinstance(axis, list) else axis
    return np.sum(np.asarray(x).astype(np.int64), axis=axis, keepdims=keepdims, dtype=np.int64)
