"""Dates at the precision known: YYYY, YYYY-MM or YYYY-MM-DD."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date as _date

DATE_RE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")


# dates found valid (a graph's dates repeat: most checks are a look-up), up to a bound
_VALID: set[str] = set()
_VALID_MAX = 1 << 16


def check_date(value: str) -> str | None:
    """Return an error message for a bad date, or None if it is a valid YYYY[-MM[-DD]]."""
    if value in _VALID:
        return None
    msg = _check_date(value)
    if msg is None and len(_VALID) < _VALID_MAX and type(value) is str:
        _VALID.add(value)
    return msg


def _check_date(value: str) -> str | None:
    m = DATE_RE.match(value)
    if not m:
        return f"invalid date {value!r}; write YYYY, YYYY-MM or YYYY-MM-DD"
    y, mo, d = m.group(1), m.group(2), m.group(3)
    if mo is not None and not 1 <= int(mo) <= 12:
        return f"impossible date {value!r}: month {mo} does not exist"
    if d is not None:
        try:
            _date(int(y), int(mo), int(d))
        except ValueError:
            return f"impossible date {value!r}: that day does not exist"
    return None


def date_key(value: str, *, end: bool = False) -> str:
    """Sortable full date for a partial one: the first (or last) day it can mean."""
    parts = value.split("-")
    if len(parts) == 1:
        return value + ("-12-31" if end else "-01-01")
    if len(parts) == 2:
        return value + ("-31" if end else "-01")
    return value


def in_force(as_of: str | None, date: str | None, start: str | None, end: str | None) -> bool:
    """Whether a statement holds on ``as_of``: it has begun and has not ended.

    Undated statements always hold. A partial date is taken at its widest: ``2026`` has begun
    by any day of 2026.
    """
    if as_of is None:
        return True
    begin = start or date
    if begin is not None and date_key(begin) > date_key(as_of, end=True):
        return False
    if end is not None and date_key(end, end=True) < date_key(as_of):
        return False
    return True


def latest(dates: Iterable[str], source_date: str | None) -> str | None:
    """The latest of the statement dates and a source's date (the data date), or None."""
    return max([*dates, *([source_date] if source_date else [])], default=None)
