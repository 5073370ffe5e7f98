"""Differentiable ops: one module per op family, each a set of autograd Functions over `_core` kernels."""
