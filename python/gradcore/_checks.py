"""Argument checks shared by the Python layer. One rule everywhere: a value of the wrong kind (a float for an int, a
string for a number, a bool for either) raises TypeError; a value of the right kind out of range raises ValueError;
both name the argument and say what was expected."""
from __future__ import annotations

import math
import numbers

INT64_MAX = 2**63 - 1


def integer(value, name, minimum=None, maximum=INT64_MAX):
    """value as an int in [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an integer, got {value!r} ({type(value).__name__})")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name}: expected an integer <= {maximum}, got {value!r}")
    return int(value)


def real(value, name, minimum=None, maximum=None, low_open=False, high_open=False, allow_nan=False):
    """value as a float in the given range (closed unless low_open / high_open); NaN only when allow_nan."""
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
    if type(value) is int and minimum <= value <= maximum:  # the common case, without the ABC checks below
        return (value, value)
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
