"""gradcore.optim: fused Adam, AdamW and SGD, gradient clipping and learning-rate schedules (PyTorch's names)."""
from . import lr_scheduler  # noqa: F401
from .adam import Adam, AdamW  # noqa: F401
from .clip import clip_grad_norm_, clip_grad_value_  # noqa: F401
from .optimizer import Optimizer  # noqa: F401
from .sgd import SGD  # noqa: F401
