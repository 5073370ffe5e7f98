"""Argument checks shared by the Python layer. One rule everywhere: a value of the wrong kind (a float for an int, a
string for a number, a bool for either) raises TypeError; a value of the right kind out of range raises ValueError;
both name the argument and say what was expected.

Who checks what: this module normalises the forms an argument may take (an int or a pair, "same" or "valid", a
dim counted from the end, a Tensor or a list of them) before a call reaches `_core`; the bindings (csrc/bind/)
check the arrays themselves (shapes, dtypes, devices, and how they fit together), once, under the names the user
passed. Every op uses this module; no op keeps its own copy of these helpers. (Composite ops, made of several
kernels, still check in Python the relations no single binding sees, such as ConvLSTM's h against x.)"""
from __future__ import annotations

import math
import numbers

INT64_MAX = 2**63 - 1


def integer(value, name, minimum=None, maximum=INT64_MAX):
    """value as an int in [minimum, maximum]."""
    if type(value) is int and (minimum is None or value >= minimum) and (maximum is None or value <= maximum):
        return value  # the usual case, without the numbers ABC checks below (conv args are read on every call)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an integer, got {value!r} ({type(value).__name__})")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name}: expected an integer <= {maximum}, got {value!r}")
    return int(value)


def real(value, name, minimum=None, maximum=None, low_open=False, high_open=False, allow_nan=False):
    """value as a float in the given range (closed unless low_open / high_open); NaN only when allow_nan."""
    if type(value) is not float:  # (a float, the usual case, skips the numbers ABC check: ~0.5 us)
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name}: expected a number, got {value!r} ({type(value).__name__})")
        value = float(value)
    if math.isnan(value):
        if allow_nan:
            return value
        raise ValueError(f"{name}: expected a number, got nan")
    if minimum is not None and (value <= minimum if low_open else value < minimum):
        raise ValueError(f"{name}: expected a number {'>' if low_open else '>='} {minimum}, got {value!r}")
    if maximum is not None and (value >= maximum if high_open else value > maximum):
        raise ValueError(f"{name}: expected a number {'<' if high_open else '<='} {maximum}, got {value!r}")
    return value


def int_pair(value, name, minimum, maximum=INT64_MAX):
    """(h, w) from an int or a pair of ints, each in [minimum, maximum]."""
    if type(value) is int and minimum <= value <= maximum:  # the common cases, without the ABC checks below
        return (value, value)
    if (type(value) is tuple and len(value) == 2 and type(value[0]) is int and type(value[1]) is int
            and minimum <= value[0] <= maximum and minimum <= value[1] <= maximum):
        return value
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        items = (value, value)
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value):
        items = tuple(value)
    else:
        raise TypeError(f"{name}: expected an int or a pair of ints, got {value!r}")
    if min(items) < minimum or max(items) > maximum:
        bound = f"<= {maximum}" if maximum != INT64_MAX else "below 2**63"
        raise ValueError(f"{name}: expected values >= {minimum} and {bound}, got {value!r}")
    return (int(items[0]), int(items[1]))


def padding_form(value, name="padding", minimum=0):
    """padding = int | (h, w) | "valid" | "same": the string, or an (h, w) pair of ints >= minimum. Resolving "same"
    into numbers needs the shapes, so the op does that."""
    if isinstance(value, str):
        if value in ("valid", "same"):
            return value
        raise ValueError(f"{name}: expected an int, a pair, \"valid\" or \"same\", got {value!r}")
    return int_pair(value, name, minimum)


FLOAT_DTYPES = ("float32", "float64")
ANY_DTYPE = None


def tensor(value, name, optional=False, alternative=None, dtypes=FLOAT_DTYPES):
    """value, which must be a gradcore.Tensor (or None when optional; alternative words a further accepted kind,
    checked by the caller) of one of `dtypes`: float32 or float64 unless the op says otherwise (dtypes=("int64",)
    for labels and indices, ANY_DTYPE for ops defined on every dtype). This is the one place where an int64 or bool
    tensor is kept from the float kernels: "x: expected a float32 or float64 tensor, got int64". The bindings check
    shapes, dtypes relative to each other, and devices."""
    if isinstance(value, Tensor):
        if dtypes is not None and value._data.dtype not in dtypes:
            expected = " or ".join(dtypes) if len(dtypes) <= 2 else ", ".join(dtypes[:-1]) + " or " + dtypes[-1]
            raise TypeError(f"{name}: expected a{'n' if expected[0] in 'aeiou' else ''} {expected} tensor, "
                            f"got {value.dtype}")
        return value
    if optional and value is None:
        return value
    kinds = " or ".join(["a gradcore.Tensor"] + (["None"] if optional else []) + ([alternative] if alternative else []))
    raise TypeError(f"{name}: expected {kinds}, got {type(value).__name__}")


def tensor_sequence(value, name):
    """A non-empty list or tuple of Tensors, as a list."""
    if isinstance(value, Tensor) or not isinstance(value, (list, tuple)):
        raise TypeError(f"{name}: expected a list or tuple of gradcore.Tensors, got {type(value).__name__}")
    if not value:
        raise ValueError(f"{name}: expected at least one tensor")
    for k, t in enumerate(value):
        tensor(t, f"{name}[{k}]")
    return list(value)


def dim(value, ndim, name="dim"):
    """A dimension of a tensor of ndim dimensions, counted from the end when negative, as 0 <= dim < ndim."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise TypeError(f"{name}: expected an int, got {value!r}")
    if not -ndim <= value < ndim:
        raise ValueError(f"{name}: {value!r} is out of range for a tensor of {ndim} dimensions")
    return int(value) % ndim


# Last: tensor.py imports the scalar checks above, so Tensor is looked up here only once they exist (either module
# may be imported first).
from .tensor import Tensor  # noqa: E402
