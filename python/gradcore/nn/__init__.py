"""gradcore.nn: modules with PyTorch's names."""
from . import init  # noqa: F401
from .activation import (  # noqa: F401
    ELU, GELU, LeakyReLU, LogSoftmax, ReLU, SiLU, Sigmoid, Softmax, Softplus, Tanh,
)
from .batchnorm import BatchNorm2d  # noqa: F401
from .conv import Conv2d, ConvTranspose2d  # noqa: F401
from .conv_lstm import ConvLSTM, ConvLSTMCell  # noqa: F401
from .linear import Linear  # noqa: F401
from .flatten import Flatten  # noqa: F401
from .module import Module, Parameter, Sequential  # noqa: F401
from . import parallel  # noqa: F401  (gradcore.nn.parallel.DistributedDataParallel)
from .sync_batchnorm import SyncBatchNorm  # noqa: F401  (#16: statistics all-reduced over ranks)
# Classification (#13): losses, pooling, dropout.
from .dropout import Dropout, Dropout2d  # noqa: F401
from .loss import CrossEntropyLoss, HuberLoss, L1Loss, MSELoss, NLLLoss, SmoothL1Loss  # noqa: F401
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d  # noqa: F401
