"""SQL values → the typed Python values both stores must give alike: str, bool, int, float,
date, aware UTC datetime, time, None. SQLite holds dates and times as text and booleans as
0/1; PostgreSQL returns native types and Decimal for NUMERIC."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from bulkforce.engine.schema import NUMBER_TYPES, STRING_TYPES


def _datetime(v: Any) -> dt.datetime:
    if isinstance(v, dt.datetime):
        return v.astimezone(dt.UTC)
    parsed = dt.datetime.fromisoformat(v)  # SQLite's stored `…mmmZ` form (3.11+ reads the Z)
    if parsed.tzinfo is dt.UTC:
        return parsed
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def _date(v: Any) -> dt.date:
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    return dt.date.fromisoformat(str(v)[:10])


def _time(v: Any) -> dt.time:
    if isinstance(v, dt.time):
        return v.replace(tzinfo=None)
    return dt.time.fromisoformat(str(v).rstrip("Zz"))


def _float(v: Any) -> float:
    return float(v)


def _int(v: Any) -> int:
    return int(v)


def _bool(v: Any) -> bool:
    return bool(v)


def _str(v: Any) -> Any:
    if isinstance(v, Decimal | float | int | bool):
        return v
    return str(v)


_BY_TYPE: dict[str, Callable[[Any], Any]] = {
    "boolean": _bool, "int": _int, "long": _int, "date": _date, "datetime": _datetime,
    "time": _time, **dict.fromkeys(NUMBER_TYPES, _float),
}  # fmt: skip


def _same(v: Any) -> Any:
    return v


# Text and Id columns come back as str from both databases: nothing to convert.
_TEXT = STRING_TYPES | {"id", "reference", "base64"}


def decoder(ftype: str) -> Callable[[Any], Any]:
    """The converter for a column of describe type `ftype` (None stays None)."""
    if ftype in _TEXT:
        return _same
    conv = _BY_TYPE.get(ftype, _str)

    def decode(v: Any) -> Any:
        return None if v is None else conv(v)

    return decode


def key_value(v: Any) -> Any:
    """A raw SQL value as JSON can carry it in a keyset key."""
    if isinstance(v, dt.datetime):
        return v.astimezone(dt.UTC).isoformat()
    if isinstance(v, dt.date | dt.time):
        return v.isoformat()
    if isinstance(v, Decimal):
        return float(v)
    return v
