"""gradcore.data: the embedded synthetic digits, MNIST idx files, and a seeded mini-batch loader."""
from .idx import load_idx  # noqa: F401
from .loader import DataLoader  # noqa: F401
from .synthetic_digits import synthetic_digits  # noqa: F401
