"""Small pieces the training-API tests share: an elementwise layer (the foundation has no matmul) and a
momentum-SGD optimizer with PyTorch's state_dict() shape, standing in for any gradcore.optim optimizer."""
import numpy as np

import gradcore
from gradcore import nn
from gradcore.nn.module import Parameter


class Scale(nn.Module):
    """y = x * weight + bias, per feature (weight, bias of shape (features,))."""

    def __init__(self, features, weight=None, seed=0):
        super().__init__()
        rng = np.random.default_rng(seed)
        w = rng.uniform(0.5, 1.5, features) if weight is None else np.full(features, weight)
        self.weight = Parameter(gradcore.tensor(w, dtype="float32"))
        self.bias = Parameter(gradcore.tensor(rng.normal(0, 0.1, features), dtype="float32"))

    def forward(self, x):
        return x * self.weight + self.bias


class MomentumSGD:
    """p -= lr * buf with buf = momentum * buf + grad; state_dict() like PyTorch's optimizers."""

    def __init__(self, params, lr=0.1, momentum=0.9):
        self.params = list(params)
        self.param_groups = [{"lr": lr, "momentum": momentum, "betas": (0.9, 0.999), "params": self.params}]
        self.state = {}
        self.steps = 0

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    @gradcore.no_grad()
    def step(self):
        group = self.param_groups[0]
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            buf = self.state.setdefault(i, {"momentum_buffer": np.zeros(p.shape, dtype=p.dtype)})
            buf["momentum_buffer"] = group["momentum"] * buf["momentum_buffer"] + p.grad.numpy()
            p.copy_(p.numpy() - group["lr"] * buf["momentum_buffer"])
        self.steps += 1

    def state_dict(self):
        groups = [{k: v for k, v in g.items() if k != "params"} | {"params": list(range(len(self.params)))}
                  for g in self.param_groups]
        state = {i: {k: np.array(v, copy=True) for k, v in s.items()} for i, s in self.state.items()}
        return {"state": state, "param_groups": groups, "steps": self.steps}

    def load_state_dict(self, state_dict):
        for group, saved in zip(self.param_groups, state_dict["param_groups"]):
            group.update({k: v for k, v in saved.items() if k != "params"})
        self.state = {int(i): {k: np.array(v, copy=True) for k, v in s.items()}
                      for i, s in state_dict["state"].items()}
        self.steps = state_dict["steps"]
