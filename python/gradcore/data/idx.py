"""load_idx: MNIST-format (IDX) files a user already has, gzip-compressed or not, as numpy arrays.

The format (LeCun's): a 4-byte magic number 0x00 0x00 <type code> <number of dimensions>, then one big-endian
uint32 per dimension, then the values in row-major order, big-endian.
"""
from __future__ import annotations

import gzip
import os

import numpy as np

_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def load_idx(path):
    """The array stored in an IDX file (`train-images-idx3-ubyte[.gz]` gives uint8 (60000, 28, 28)),
    in native byte order. Raises ValueError naming the file when it is not a valid IDX file."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ValueError(f"path: {path!r} is not an IDX file (bad magic number {raw[:4].hex() or 'empty'})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"path: {path!r} is truncated inside its header")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(f"path: {path!r} holds {len(raw) - header} bytes of data, expected {expected} "
                         f"for shape {shape} of {dtype}")
    values = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return values.astype(dtype.newbyteorder("="))
