"""Column-wise validation and coercion of CSV text into typed values (spec §3.11.3).

A column is the list of one field's cells in a chunk. Working a column at a time lets the
common case run as one C-level pass (`max(map(len, col))`), and only offending cells reach
per-value Python code. Output convention: "" = blank cell (not set / unchanged), None = `#N/A`
(set to null), anything else = the typed value for the database.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Sequence

from bulkforce.engine import ids
from bulkforce.engine.errors import RecordError, malformed_id, wrong_type
from bulkforce.engine.schema import Field

NULL = "#N/A"
Errors = dict[int, RecordError]
Coerced = tuple[Sequence[object], Errors]

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_INT = re.compile(r"[+-]?\d+")
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:Z|[+-]\d{2}:?\d{2})?")
_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?"
    r"(Z|[+-]\d{2}:?\d{2})?"
)
_TIME = re.compile(r"(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?Z?")
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


def _nulls(col: Sequence[str]) -> Sequence[object]:
    """The column with `#N/A` turned into None, everything else as-is (text types)."""
    if NULL in col:
        return [None if v == NULL else v for v in col]
    return col


def _text(f: Field, col: Sequence[str]) -> Coerced:
    vals = _nulls(col)
    errs: Errors = {}
    if col and max(map(len, col)) > f.length:
        for i, v in enumerate(col):
            if len(v) > f.length and v != NULL:
                errs[i] = RecordError(
                    "STRING_TOO_LONG",
                    f"{f.label}: data value too large: {v} (max length={f.length})",
                    (f.name,),
                )
    return vals, errs


def _email(f: Field, col: Sequence[str]) -> Coerced:
    vals, errs = _text(f, col)
    match = _EMAIL.fullmatch
    for i, v in enumerate(col):
        if v and v != NULL and i not in errs and not match(v):
            errs[i] = RecordError(
                "INVALID_EMAIL_ADDRESS", f"{f.label}: invalid email address: {v}", (f.name,)
            )
    return vals, errs


def _picklist(f: Field, col: Sequence[str]) -> Coerced:
    vals, errs = _text(f, col)
    if f.restricted_picklist:
        allowed = set(f.picklist_values)
        for i, v in enumerate(col):
            if v and v != NULL and i not in errs:
                parts = v.split(";") if f.type == "multipicklist" else [v]
                if not all(p in allowed for p in parts):
                    errs[i] = RecordError(
                        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                        f"{f.label}: bad value for restricted picklist field: {v}",
                        (f.name,),
                    )
    return vals, errs


def _per_value(parse: Callable[[str], object]) -> Callable[[Field, Sequence[str]], Coerced]:
    """Coercion for types whose every value needs parsing; `parse` raises ValueError."""

    def coerce(f: Field, col: Sequence[str]) -> Coerced:
        vals: list[object] = []
        errs: Errors = {}
        append = vals.append
        for i, v in enumerate(col):
            if v == "":
                append("")
            elif v == NULL:
                append(None)
            else:
                try:
                    append(parse(v))
                except ValueError:
                    append("")
                    errs[i] = wrong_type(f.label, f.name, v)
        return vals, errs

    return coerce


def _parse_bool(v: str) -> int:
    low = v.lower()
    if low in _TRUE:
        return 1
    if low in _FALSE:
        return 0
    raise ValueError(v)


def _parse_int(v: str) -> int:
    if not _INT.fullmatch(v):
        # "12.0" is accepted by Salesforce for int fields when it is integral
        if _NUMBER.fullmatch(v) and float(v).is_integer():
            v = str(int(float(v)))
        else:
            raise ValueError(v)
    n = int(v)
    if not -(2**31) <= n < 2**31:
        raise ValueError(v)
    return n


def _number(f: Field, col: Sequence[str]) -> Coerced:
    vals: list[object] = []
    errs: Errors = {}
    int_digits = f.precision - f.scale if f.precision else 0
    limit = 10.0**int_digits if int_digits else math.inf
    match = _NUMBER.fullmatch
    for i, v in enumerate(col):
        if v == "":
            vals.append("")
        elif v == NULL:
            vals.append(None)
        elif match(v):
            x = float(v)
            if f.scale == 0 and f.type != "double":
                x = float(round(x))
            if abs(x) >= limit:
                vals.append("")
                errs[i] = RecordError(
                    "NUMBER_OUTSIDE_VALID_RANGE",
                    f"{f.label}: value outside of valid range on numeric field: {v}",
                    (f.name,),
                )
            else:
                vals.append(round(x, f.scale) if f.scale else x)
        else:
            vals.append("")
            errs[i] = wrong_type(f.label, f.name, v)
    return vals, errs


def _parse_date(v: str) -> str:
    m = _DATE.fullmatch(v)
    if not m:
        raise ValueError(v)
    return dt.date(int(m[1]), int(m[2]), int(m[3])).isoformat()


def _parse_datetime(v: str) -> str:
    m = _DATETIME.fullmatch(v)
    if not m:
        if _DATE.fullmatch(v):
            return _parse_date(v) + "T00:00:00.000Z"
        raise ValueError(v)
    frac = (m[7] or "0")[:6].ljust(6, "0")
    tz = dt.UTC
    if m[8] and m[8] != "Z":
        sign = -1 if m[8][0] == "-" else 1
        hh, mm = int(m[8][1:3]), int(m[8][-2:])
        tz = dt.timezone(sign * dt.timedelta(hours=hh, minutes=mm))
    stamp = dt.datetime(
        int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]), int(m[6] or 0), int(frac),
        tzinfo=tz,
    ).astimezone(dt.UTC)  # fmt: skip
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def _parse_time(v: str) -> str:
    m = _TIME.fullmatch(v)
    if not m:
        raise ValueError(v)
    t = dt.time(int(m[1]), int(m[2]), int(m[3] or 0), int((m[4] or "0").ljust(3, "0")) * 1000)
    return t.strftime("%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def coerce_id(f: Field, col: Sequence[str], prefixes: set[str]) -> Coerced:
    """Reference (or Id) columns: 15/18-char ids of one of the allowed key prefixes."""
    vals: list[object] = []
    errs: Errors = {}
    for i, v in enumerate(col):
        if v == "":
            vals.append("")
        elif v == NULL:
            vals.append(None)
        else:
            norm = ids.normalize(v)
            if norm is None or norm[:3] not in prefixes:
                vals.append("")
                errs[i] = malformed_id(f.label, f.name, v)
            else:
                vals.append(norm)
    return vals, errs


_BY_TYPE: dict[str, Callable[[Field, Sequence[str]], Coerced]] = {
    "string": _text, "textarea": _text, "phone": _text, "url": _text, "combobox": _text,
    "encryptedstring": _text, "email": _email, "picklist": _picklist,
    "multipicklist": _picklist, "boolean": _per_value(_parse_bool),
    "int": _per_value(_parse_int), "long": _per_value(int), "double": _number,
    "currency": _number, "percent": _number, "date": _per_value(_parse_date),
    "datetime": _per_value(_parse_datetime), "time": _per_value(_parse_time),
}  # fmt: skip


def coerce(f: Field, col: Sequence[str]) -> Coerced:
    """Validate and convert one column; reference/id columns go through coerce_id instead."""
    return _BY_TYPE[f.type](f, col)
