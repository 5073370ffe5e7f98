"""numpy references for indexing (PyTorch's x[key]), index_select and gather, and their gradients.

The gradients add with np.add.at, which adds in index order one element at a time: the order gradcore promises
(csrc/gather.h), so for the same inputs the results are the same bits."""
import numpy as np


def getitem(x, key):
    """PyTorch's x[key]: integers select first, so one index array stays where it stands (numpy would move its
    dimensions to the front when an integer is also present). Done in numpy by indexing with each integer i as the
    slice i:i+1 (so numpy sees one advanced index and keeps it in place) and dropping those dimensions after."""
    items = list(key) if isinstance(key, tuple) else [key]
    if any(item is Ellipsis for item in items):
        at = next(k for k, item in enumerate(items) if item is Ellipsis)
        used = sum(item is not None and item is not Ellipsis for item in items)
        items[at:at + 1] = [slice(None)] * (x.ndim - used)
    sliced, drop, position, d = [], [], 0, 0
    for item in items:
        if item is None:
            sliced.append(None)
            position += 1
            continue
        if isinstance(item, (int, np.integer)):
            sliced.append(slice(item % x.shape[d], item % x.shape[d] + 1))
            drop.append(position)
            position += 1
        elif isinstance(item, slice):
            sliced.append(item)
            position += 1
        else:
            index = np.asarray(item, dtype=np.int64)
            sliced.append(index)
            position += index.ndim
        d += 1
    return np.squeeze(x[tuple(sliced)], axis=tuple(drop))


def index_select(x, dim, index):
    return np.take(x, np.asarray(index, dtype=np.int64), axis=dim)


def index_select_backward(g, index, x_shape, dim):
    """dx[.., r, ..] = the sum of g[.., j, ..] over j with index[j] == r, added in increasing j."""
    dx = np.zeros(x_shape, dtype=g.dtype)
    np.add.at(np.moveaxis(dx, dim, 0), np.asarray(index, dtype=np.int64), np.moveaxis(g, dim, 0))
    return dx


def _gather_coordinates(index, dim):
    coordinates = list(np.indices(index.shape))
    coordinates[dim] = index
    return tuple(coordinates)


def gather(x, dim, index):
    """out[.., j, ..] = x[.., index[.., j, ..], ..]: index's own coordinates elsewhere."""
    index = np.asarray(index, dtype=np.int64)
    return x[_gather_coordinates(index, dim)]


def gather_backward(g, index, x_shape, dim):
    """dx[.., r, ..] = the sum of g over the elements of index equal to r in that fiber, in increasing j."""
    dx = np.zeros(x_shape, dtype=g.dtype)
    np.add.at(dx, _gather_coordinates(np.asarray(index, dtype=np.int64), dim), g)
    return dx
