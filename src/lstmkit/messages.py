"""Error messages that quote what a file holds, kept to a readable line.

A reader names the value it refuses (``unknown class label '...'``), and a value may be a
5,000-character token of a damaged or hostile file, or a column name of a megabyte. Such
quotes are cut to :data:`QUOTE` characters with an ellipsis, so a message stays one short
line that still says where and what was expected.
"""

import functools
import re

QUOTE = 60  # characters of a quoted value kept in a message
LONG = 300  # a message longer than this has its long quotes cut
_QUOTED = re.compile(r"'(?:[^'\\\n]|\\.){N,}'|\"(?:[^\"\\\n]|\\.){N,}\"".replace("N", str(QUOTE)))


def shown(value, limit: int = QUOTE) -> str:
    """``repr(value)`` cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def clipped(message: str) -> str:
    """``message`` with each quoted value longer than :data:`QUOTE` cut, when the message
    is long; unchanged otherwise (short messages keep every character)."""
    if len(message) <= LONG:
        return message
    return _QUOTED.sub(lambda m: m.group(0)[: QUOTE - 4] + "..." + m.group(0)[0], message)


def short_errors(read):
    """Decorate a reader: a ``ValueError`` it raises comes back with long quotes cut."""

    @functools.wraps(read)
    def reader(*args, **kwargs):
        try:
            return read(*args, **kwargs)
        except ValueError as err:
            message = str(err)
            if type(err) is not ValueError or clipped(message) == message:
                raise
            raise ValueError(clipped(message)) from err.__cause__

    return reader


def listed(values, limit: int = 8, quote: bool = True) -> str:
    """``values`` joined by commas for a message, at most ``limit`` of them (each cut as in
    :func:`shown`, or as plain text with ``quote=False``), then how many more there are."""
    values = list(values)
    words = [shown(v) if quote else str(v)[:QUOTE] for v in values[:limit]]
    more = len(values) - limit
    return ", ".join(words) + (f", ... ({more:,} more)" if more > 0 else "")
