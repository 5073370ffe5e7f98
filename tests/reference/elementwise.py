"""numpy references for the elementwise ops and activations, from their definitions (float64 throughout)."""
import numpy as np


def add(a, b):
    return np.add(a, b)


def sub(a, b):
    return np.subtract(a, b)


def mul(a, b):
    return np.multiply(a, b)


def div(a, b):
    return np.divide(a, b)


def neg(x):
    return -np.asarray(x)


def exp(x):
    return np.exp(x)


def log(x):
    return np.log(x)


def pow(x, exponent):
    return np.power(x, exponent)


def relu(x):
    return np.where(x > 0, x, 0.0)


def leaky_relu(x, negative_slope=0.01):
    return np.where(x > 0, x, negative_slope * x)


def sigmoid(x):
    # 1 / (1 + e^-x), split by sign so neither branch overflows.
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    e = np.exp(x[~pos])
    out[~pos] = e / (1.0 + e)
    return out


def tanh(x):
    return np.tanh(x)


def unbroadcast(grad, shape):
    """Sums a gradient of the broadcast result back to an operand's shape (the chain rule for broadcasting)."""
    grad = np.asarray(grad)
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    for axis, size in enumerate(shape):
        if size == 1 and grad.shape[axis] != 1:
            grad = grad.sum(axis=axis, keepdims=True)
    return grad
