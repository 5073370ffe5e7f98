"""gradcore: a training library whose ops are handwritten CUDA kernels with C++ CPU twins.

    import gradcore as gc
    x = gc.randn(4, 3, requires_grad=True)
    loss = (x * x).sum()
    loss.backward()            # x.grad == 2 x
"""
__version__ = "0.1.0"  # the one place: pyproject.toml reads it from here

from . import _core  # noqa: F401
from ._core import get_num_threads  # noqa: F401
from ._checks import integer as _integer


def set_num_threads(n):
    """Threads for the CPU kernels (OpenMP), 1 to 4096; results are the same bits for any count."""
    _core.set_num_threads(_integer(n, "n", 1, 4096))


from . import cpu, cuda  # noqa: F401
from .autograd import Function, enable_grad, grad, is_grad_enabled, no_grad, value_and_grad  # noqa: F401
from .tensor import (  # noqa: F401
    Tensor, float32, float64, from_dlpack, from_numpy, full, int64, ones, ones_like, tensor, zeros, zeros_like,
)
from .tensor import bool_ as bool  # noqa: F401,A001  gradcore.bool, PyTorch's name (shadows nothing used here)
long = int64  # PyTorch's alias
from .random import Generator, manual_seed, rand, randn  # noqa: F401
from .gradcheck import GradcheckError, gradcheck  # noqa: F401
from . import functional  # noqa: F401
from . import linalg  # noqa: F401
from .functional import matmul  # noqa: F401
from .ops.comparison import (  # noqa: F401  gradcore.where(...), gradcore.maximum(...), as torch.*
    clamp, clip, eq, ge, gt, le, logical_and, logical_not, logical_or, logical_xor, lt, maximum, minimum, ne, where,
)
from .functional import (  # noqa: F401 (torch.flatten, torch.gather, ...)
    flatten, gather, index_select, permute, squeeze, transpose, unsqueeze,
)
from . import nn  # noqa: F401
from .checkpoint import load, save  # noqa: F401
from . import data, diagnostics, train  # noqa: F401
from . import distributed  # noqa: F401  (gradcore.distributed, as torch.distributed; mpi4py loads at init)
from . import optim  # noqa: F401
from .optim.clip import clip_grad_norm_, clip_grad_value_  # noqa: F401
