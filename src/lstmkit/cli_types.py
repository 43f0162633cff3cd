"""Strict command-line and TOML value types (issue 14: every bad input is exit 2).

click's own ``INT``/``FloatRange`` take what ``int()``/``float()`` take: a TOML ``epochs = 2.7``
became 2 epochs and ``epochs = true`` one, ``--dropout nan`` passed every range check (NaN
compares false), and an integer past 64 bits reached torch. These types accept exactly:

- :class:`StrictInt`: a Python ``int`` (not ``bool``) or the text of a decimal integer, within
  ``[min, max]`` (``max`` defaults to 2³¹ − 1, what every count here fits in);
- :class:`StrictFloat`: an ``int``/``float`` (not ``bool``) or the text of a number, finite,
  within its range (open or closed ends).

and :func:`check_config_value` holds a TOML value to the kind of its option (a string option
takes a string, a flag a boolean, nothing takes an array or a table). Each failure is click's
``BadParameter``: exit 2 and one line naming the option, what was expected and what came (the
value shortened to at most 40 characters).
"""

from __future__ import annotations

import math
import re

import click

from lstmkit.messages import shown

INT_MAX = 2**31 - 1
SEED_MAX = 2**32 - 1  # numpy's legacy seeds and torch.manual_seed both take [0, 2^32)
_INTEGER = re.compile(r"[+-]?\d+")


def _shown(value) -> str:
    return shown(value, 40)  # an option's value: a shorter quote than a file's


class StrictInt(click.ParamType):
    """An integer in ``[min, max]``, nothing that only converts to one."""

    name = "integer"

    def __init__(self, min: int | None = None, max: int = INT_MAX) -> None:
        self.min, self.max = min, max

    def convert(self, value, param, ctx) -> int:
        number = value
        if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
            # more than 20 digits is out of range: not converted (Python refuses past 4300)
            number = int(value) if len(value.strip().lstrip("+-")) <= 20 else None
        elif isinstance(value, bool) or not isinstance(value, int):
            self.fail(f"expected an integer, got {_shown(value)}", param, ctx)
        if number is None or (self.min is not None and number < self.min) or number > self.max:
            low = "" if self.min is None else f"{self.min} ≤ "
            got = _shown(value if number is None else number)
            self.fail(f"expected {low}n ≤ {self.max}, got {got}", param, ctx)
        return number

    def get_metavar(self, param, ctx=None) -> str:
        return "INTEGER" if self.min is None else f"INTEGER RANGE [{self.min}..{self.max}]"


class StrictFloat(click.ParamType):
    """A finite number in a range; ``min_open``/``max_open`` exclude the ends."""

    name = "number"

    def __init__(
        self,
        min: float | None = None,
        max: float | None = None,
        *,
        min_open: bool = False,
        max_open: bool = False,
    ) -> None:
        self.min, self.max = min, max
        self.min_open, self.max_open = min_open, max_open

    def convert(self, value, param, ctx) -> float:
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                self.fail(f"expected a number, got {_shown(value)}", param, ctx)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(f"expected a number, got {_shown(value)}", param, ctx)
        try:
            value = float(value)
        except OverflowError:  # an int past float's range
            self.fail(f"expected a finite number, got {_shown(value)}", param, ctx)
        if not math.isfinite(value):
            self.fail(f"expected a finite number, got {value}", param, ctx)
        if not self._inside(value):
            self.fail(f"expected a number in {self._range()}, got {value!r}", param, ctx)
        return value

    def _inside(self, value: float) -> bool:
        low = self.min is None or value > self.min or (value == self.min and not self.min_open)
        high = self.max is None or value < self.max or (value == self.max and not self.max_open)
        return low and high

    def _range(self) -> str:
        low = "(-inf" if self.min is None else ("(" if self.min_open else "[") + f"{self.min:g}"
        high = "inf)" if self.max is None else f"{self.max:g}" + (")" if self.max_open else "]")
        return f"{low}, {high}"

    def get_metavar(self, param, ctx=None) -> str:
        return f"FLOAT RANGE {self._range()}"


def check_config_value(param: click.Parameter, key: str, value) -> None:
    """Refuse a TOML value the option ``param`` could only take by conversion."""
    if isinstance(value, list | dict):
        kind = "an array" if isinstance(value, list) else "a table"
        raise click.BadParameter(f"{key}: expected a single value, got {kind}")
    flag = isinstance(param, click.Option) and param.is_flag
    if flag and not isinstance(value, bool):
        raise click.BadParameter(f"{key}: expected true or false, got {_shown(value)}")
    textual = isinstance(param.type, click.types.StringParamType | click.Choice | click.Path)
    if textual and not flag and not isinstance(value, str):
        raise click.BadParameter(f"{key}: expected a string, got {_shown(value)}")
