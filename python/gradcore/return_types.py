"""Named tuples that ops return, as torch.return_types: x.max(dim) gives max(values, indices), so both
`values, indices = x.max(1)` and `x.max(1).indices` read as in PyTorch."""
from collections import namedtuple

max = namedtuple("max", ["values", "indices"])  # noqa: A001 - PyTorch's names
min = namedtuple("min", ["values", "indices"])  # noqa: A001
