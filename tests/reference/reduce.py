"""numpy references for sum, mean and reshape, accumulated in float64."""
import numpy as np


def sum(x, axis=None, keepdims=False):
    axis = tuple(axis) if isinstance(axis, list) else axis
    return np.sum(np.asarray(x, dtype=np.float64), axis=axis, keepdims=keepdims)


def mean(x, axis=None, keepdims=False):
    axis = tuple(axis) if isinstance(axis, list) else axis
    return np.mean(np.asarray(x, dtype=np.float64), axis=axis, keepdims=keepdims)


def reshape(x, shape):
    return np.reshape(x, shape)
