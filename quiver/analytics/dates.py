"""Recognise the common non-ISO date layouts of a CSV column from a sample of its values.

pyarrow reads ISO 8601 by itself; this finds ``YYYY/MM/DD``, ``DD.MM.YYYY``, ``MM/DD/YYYY``
and ``DD/MM/YYYY`` (and the same with ``-``), each optionally followed by a time. Month and
day first are told apart by a value whose first or second part exceeds 12; a column where
both orders read every value is ambiguous and stays text (unless its dtype is forced).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass

# (layout, the layout it can be confused with): month first before day first, as pandas.
DATE_LAYOUTS: tuple[tuple[str, str | None], ...] = (
    ("%Y/%m/%d", None),
    ("%Y.%m.%d", None),
    ("%d.%m.%Y", None),
    ("%m/%d/%Y", "%d/%m/%Y"),
    ("%d/%m/%Y", "%m/%d/%Y"),
    ("%m-%d-%Y", "%d-%m-%Y"),
    ("%d-%m-%Y", "%m-%d-%Y"),
)
TIME_LAYOUTS = ("", " %H:%M:%S", " %H:%M", "T%H:%M:%S", "T%H:%M")
LOOKS_LIKE_DATE = re.compile(r"\d{1,4}[./-]\d{1,2}[./-]\d{1,4}([ T]\d{1,2}:\d{2}(:\d{2})?)?")


@dataclass(frozen=True)
class DateColumn:
    """A column whose values are dates in ``formats`` (strptime); ``ambiguous`` when the
    order of month and day could not be told (``formats`` then read month first)."""

    index: int
    formats: tuple[str, ...]
    date_only: bool
    ambiguous: bool = False


def column_date_layout(index: int, values: list[str]) -> DateColumn | None:
    """The date layout every one of ``values`` is written in, if there is one."""
    if not values or not all(LOOKS_LIKE_DATE.fullmatch(value) for value in values):
        return None
    fitting: dict[str, tuple[str, ...]] = {}
    for layout, _ in DATE_LAYOUTS:
        used = formats_reading(layout, values)
        if used is not None:
            fitting[layout] = used
    for layout, rival in DATE_LAYOUTS:
        if layout not in fitting:
            continue
        formats = fitting[layout]
        date_only = all(fmt == layout for fmt in formats)
        return DateColumn(index, formats, date_only, ambiguous=rival in fitting)
    return None


def formats_reading(layout: str, values: Iterable[str]) -> tuple[str, ...] | None:
    """The formats (``layout`` plus a time) that read all ``values``, or None."""
    used: list[str] = []
    for value in values:
        found = next((fmt for fmt in _formats(layout, used) if _parses(value, fmt)), None)
        if found is None:
            return None
        if found not in used:
            used.append(found)
    return tuple(used)


def unambiguous(columns: list[DateColumn]) -> list[DateColumn]:
    """Columns read as dates: not ambiguous, and not one order in one column and the other
    order in another (pyarrow's parsers apply to the whole file)."""
    clear = [column for column in columns if not column.ambiguous]
    layouts = {_layout_of(fmt) for column in clear for fmt in column.formats}
    clash = {layout for layout, rival in DATE_LAYOUTS if rival in layouts and layout in layouts}
    return [column for column in clear if not clash & {_layout_of(f) for f in column.formats}]


def _layout_of(fmt: str) -> str:
    return next(layout for layout, _ in DATE_LAYOUTS if fmt.startswith(layout))


def _formats(layout: str, used: list[str]) -> list[str]:
    # Try the formats already seen first: most columns use one.
    return used + [layout + time for time in TIME_LAYOUTS if layout + time not in used]


def _parses(value: str, fmt: str) -> bool:
    try:
        dt.datetime.strptime(value, fmt)  # noqa: DTZ007 - naive, as CSV files hold them
    except ValueError:
        return False
    return True
