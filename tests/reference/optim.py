"""numpy references for the optimizers and gradient clipping, written from the update rules (float64).

Each optimizer reference keeps its own state dict per parameter and applies one step to a list of numpy arrays.
Conventions follow torch.optim: Adam's weight_decay is L2 added to the gradient, AdamW's is decoupled; SGD's
momentum buffer starts as the first gradient.
"""
import math

import numpy as np


def grad_norm(grads, norm_type=2.0):
    """The norm of all gradients together: (sum |g|^p)^(1/p), or max |g| for p = inf."""
    if not grads:
        return 0.0
    flat = np.concatenate([np.asarray(g, dtype=np.float64).ravel() for g in grads])
    if math.isinf(norm_type):
        return float(np.max(np.abs(flat))) if flat.size else 0.0
    return float(np.sum(np.abs(flat) ** norm_type) ** (1.0 / norm_type))


def clip_scale(norm, max_norm):
    """torch.nn.utils.clip_grad_norm_'s factor: min(1, max_norm / (norm + 1e-6))."""
    return min(1.0, max_norm / (norm + 1e-6))


def clip_grads_by_norm(grads, max_norm, norm_type=2.0, per_tensor=False):
    """The clipped gradients and the global norm before clipping."""
    total = grad_norm(grads, norm_type)
    if per_tensor:
        clipped = [g * clip_scale(grad_norm([g], norm_type), max_norm) for g in grads]
    else:
        clipped = [g * clip_scale(total, max_norm) for g in grads]
    return clipped, total


class AdamReference:
    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, maximize=False,
                 decoupled=False):
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.amsgrad, self.maximize, self.decoupled = amsgrad, maximize, decoupled
        self.state = {}

    def step(self, index, p, g):
        """Updates p (float64 numpy array) in place with gradient g."""
        beta1, beta2 = self.betas
        s = self.state.setdefault(index, dict(step=0, m=np.zeros_like(p), v=np.zeros_like(p), v_max=np.zeros_like(p)))
        s["step"] += 1
        t = s["step"]
        g = -g if self.maximize else g
        if self.decoupled:
            p *= 1 - self.lr * self.weight_decay
        elif self.weight_decay:
            g = g + self.weight_decay * p
        s["m"] = beta1 * s["m"] + (1 - beta1) * g
        s["v"] = beta2 * s["v"] + (1 - beta2) * g * g
        v = s["v"]
        if self.amsgrad:
            s["v_max"] = np.maximum(s["v_max"], s["v"])
            v = s["v_max"]
        m_hat_scale = 1 / (1 - beta1 ** t)
        v_hat = v / (1 - beta2 ** t)
        p -= self.lr * m_hat_scale * s["m"] / (np.sqrt(v_hat) + self.eps)


class SGDReference:
    def __init__(self, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False):
        self.lr, self.momentum, self.dampening = lr, momentum, dampening
        self.weight_decay, self.nesterov, self.maximize = weight_decay, nesterov, maximize
        self.state = {}

    def step(self, index, p, g):
        g = -g if self.maximize else g
        if self.weight_decay:
            g = g + self.weight_decay * p
        if self.momentum:
            if index not in self.state:
                buf = g.copy()
            else:
                buf = self.momentum * self.state[index] + (1 - self.dampening) * g
            self.state[index] = buf
            g = g + self.momentum * buf if self.nesterov else buf
        p -= self.lr * g
