"""gradcore.linalg: PyTorch's torch.linalg names. vector_norm lives with the other reductions
(python/gradcore/ops/reduce.py, kernels in csrc/reduce.h)."""
from .ops.reduce import vector_norm

__all__ = ["vector_norm"]
