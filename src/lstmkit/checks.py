"""Argument checks shared by every layer (the modules, the optimizer, the estimators)."""

import operator

from lstmkit.messages import shown


def is_int(value) -> bool:
    """An int that is not a bool (JSON's integers as Python reads them)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value) -> bool:
    """An int or a float that is not a bool (JSON's numbers as Python reads them)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_int(name: str, value: object, minimum: int) -> int:
    """``value`` as a Python int >= ``minimum``: a TypeError for anything that is not an
    integer (a bool, a float such as 6.0, a string), a ValueError below the minimum. NumPy
    integers are accepted (``operator.index``)."""
    if isinstance(value, bool):
        raise TypeError(f"{name}: expected an int >= {minimum}, got {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise TypeError(
            f"{name}: expected an int >= {minimum}, got {type(value).__name__} {shown(value)}"
        ) from None
    if number < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {number}")
    return number
