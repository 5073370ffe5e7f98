"""numpy references for the elementwise ops and activations, from their definitions (float64 throughout)."""
import math

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


# ---- trigonometric, log1p/expm1 and the smooth activations (issue #18 point 7) ------------------------------------
def cos(x):
    return np.cos(x)


def sin(x):
    return np.sin(x)


def log1p(x):
    return np.log1p(x)


def expm1(x):
    return np.expm1(x)


def softplus(x, beta=1.0, threshold=20.0):
    # log(1 + e^(beta x)) / beta, written as logaddexp(0, beta x) so it cannot overflow; linear above threshold.
    x = np.asarray(x, dtype=np.float64)
    return np.where(beta * x > threshold, x, np.logaddexp(0.0, beta * x) / beta)


def _erf(x):
    return np.vectorize(math.erf, otypes=[np.float64])(x)


def gelu(x):
    # x * Phi(x), Phi the standard normal CDF.
    x = np.asarray(x, dtype=np.float64)
    return x * 0.5 * (1.0 + _erf(x / np.sqrt(2.0)))


def gelu_tanh(x):
    x = np.asarray(x, dtype=np.float64)
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))


def silu(x):
    return np.asarray(x, dtype=np.float64) * sigmoid(x)


def elu(x, alpha=1.0):
    x = np.asarray(x, dtype=np.float64)
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))
