"""numpy references for softmax and log_softmax (float64), from the definitions."""
import numpy as np


def log_softmax(x, dim):
    x = np.asarray(x, np.float64)
    m = np.max(x, axis=dim, keepdims=True)
    return (x - m) - np.log(np.sum(np.exp(x - m), axis=dim, keepdims=True))


def softmax(x, dim):
    return np.exp(log_softmax(x, dim))
