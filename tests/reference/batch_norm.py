"""Batch normalisation over (N, C, H, W) in float64 numpy, from the definitions: two-pass statistics, and the
backward pass staged through the variance and the mean by the chain rule (the textbook derivation, not the
compact formula the kernels use)."""
import numpy as np

AXES = (0, 2, 3)


def _channel(v):
    return np.asarray(v, dtype=np.float64).reshape(1, -1, 1, 1)


def batch_stats(x):
    """Per-channel mean and biased variance, two passes."""
    x = np.asarray(x, dtype=np.float64)
    mean = x.mean(axis=AXES)
    var = ((x - _channel(mean)) ** 2).mean(axis=AXES)
    return mean, var


def normalise(x, mean, var, weight, bias, eps):
    x = np.asarray(x, dtype=np.float64)
    y = (x - _channel(mean)) / np.sqrt(_channel(var) + eps)
    if weight is not None:
        y = y * _channel(weight)
    if bias is not None:
        y = y + _channel(bias)
    return y


def forward_train(x, weight, bias, running_mean, running_var, momentum, eps):
    """(y, new running_mean, new running_var); the running variance takes the unbiased batch variance."""
    mean, var = batch_stats(x)
    count = np.asarray(x).size // np.asarray(x).shape[1]
    y = normalise(x, mean, var, weight, bias, eps)
    if running_mean is None:
        return y, None, None
    new_mean = (1 - momentum) * np.asarray(running_mean, np.float64) + momentum * mean
    new_var = (1 - momentum) * np.asarray(running_var, np.float64) + momentum * var * count / (count - 1)
    return y, new_mean, new_var


def forward_eval(x, running_mean, running_var, weight, bias, eps):
    return normalise(x, running_mean, running_var, weight, bias, eps)


def backward_train(dy, x, weight, eps):
    """(dx, dweight, dbias) of y = w (x - mean) / sqrt(var + eps) + b with the batch's mean and variance."""
    x = np.asarray(x, dtype=np.float64)
    dy = np.asarray(dy, dtype=np.float64)
    count = x.size // x.shape[1]
    mean, var = batch_stats(x)
    centred = x - _channel(mean)
    invstd = 1.0 / np.sqrt(_channel(var) + eps)
    xhat = centred * invstd
    w = _channel(np.ones(x.shape[1]) if weight is None else weight)
    dxhat = dy * w
    dvar = np.sum(dxhat * centred * -0.5 * invstd ** 3, axis=AXES, keepdims=True)
    dmean = np.sum(-dxhat * invstd, axis=AXES, keepdims=True) + dvar * np.sum(-2.0 * centred, axis=AXES,
                                                                               keepdims=True) / count
    dx = dxhat * invstd + dvar * 2.0 * centred / count + dmean / count
    return dx, np.sum(dy * xhat, axis=AXES), np.sum(dy, axis=AXES)


def backward_eval(dy, x, running_mean, running_var, weight, eps):
    """(dx, dweight, dbias) with the running statistics as constants."""
    x = np.asarray(x, dtype=np.float64)
    dy = np.asarray(dy, dtype=np.float64)
    invstd = 1.0 / np.sqrt(_channel(running_var) + eps)
    xhat = (x - _channel(running_mean)) * invstd
    w = _channel(np.ones(x.shape[1]) if weight is None else weight)
    return dy * w * invstd, np.sum(dy * xhat, axis=AXES), np.sum(dy, axis=AXES)
