"""gradcore.nn: modules with PyTorch's names."""
from . import init  # noqa: F401
from .activation import ELU, GELU, LeakyReLU, ReLU, SiLU, Sigmoid, Softplus, Tanh  # noqa: F401
from .batchnorm import BatchNorm2d  # noqa: F401
from .conv import Conv2d, ConvTranspose2d  # noqa: F401
from .conv_lstm import ConvLSTM, ConvLSTMCell  # noqa: F401
from .linear import Linear  # noqa: F401
from .module import Module, Parameter, Sequential  # noqa: F401
from . import parallel  # noqa: F401  (gradcore.nn.parallel.DistributedDataParallel)
