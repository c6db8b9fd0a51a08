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
from collections.abc import Callable, Container, Sequence
from decimal import ROUND_HALF_UP, Decimal

from bulkforce.engine import ids
from bulkforce.engine.errors import RecordError, malformed_id, wrong_type
from bulkforce.engine.schema import OPAQUE_TYPES, Field

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
    if all(map(match, filter(None, col))):  # the usual case, in one C-level pass
        return vals, errs
    for i, v in enumerate(col):
        if v and v != NULL and i not in errs and not match(v):
            errs[i] = RecordError(
                "INVALID_EMAIL_ADDRESS", f"{f.label}: invalid email address: {v}", (f.name,)
            )
    return vals, errs


def _picklist(f: Field, col: Sequence[str]) -> Coerced:
    vals, errs = _text(f, col)
    if f.type == "multipicklist":
        return _multipicklist(f, col, vals, errs)
    if f.restricted_picklist:
        allowed = set(f.picklist_values)
        for i, v in enumerate(col):
            if v and v != NULL and i not in errs and v not in allowed:
                errs[i] = _bad_picklist(f, v)
    return vals, errs


def _bad_picklist(f: Field, v: str) -> RecordError:
    return RecordError(
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        f"{f.label}: bad value for restricted picklist field: {v}",
        (f.name,),
    )


def _multipicklist(f: Field, col: Sequence[str], vals: Sequence[object], errs: Errors) -> Coerced:
    """Salesforce stores a multi-select value with empty parts and repeats dropped and the
    selections in the picklist's own order; a restricted one names each bad selection."""
    order = {v: n for n, v in enumerate(f.picklist_values)}
    last = len(order)
    out: list[object] = list(vals)
    for i, v in enumerate(col):
        if not v or v == NULL or i in errs or (";" not in v and v in order):
            continue
        parts = list(dict.fromkeys(p for p in v.split(";") if p))
        if f.restricted_picklist:
            bad = [p for p in parts if p not in order]
            if bad:
                errs[i] = _bad_picklist(f, ";".join(bad))
                continue
        parts.sort(key=lambda p: order.get(p, last))
        out[i] = ";".join(parts) or None
    return out, errs


def _opaque(f: Field, col: Sequence[str]) -> Coerced:
    return _nulls(col), {}


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
                except (ValueError, OverflowError):  # OverflowError: out of range in UTC
                    append("")
                    errs[i] = wrong_type(f.label, f.name, v)
        return vals, errs

    return coerce


def _parse_bool(v: str) -> bool:
    low = v.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(v)


def _parse_long(v: str) -> int:
    if _INT.fullmatch(v):
        n = int(v)
    elif _NUMBER.fullmatch(v) and float(v).is_integer():
        n = int(float(v))
    else:
        raise ValueError(v)
    if not -(2**63) <= n < 2**63:
        raise ValueError(v)
    return n


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


def _out_of_range(f: Field, v: str) -> RecordError:
    return RecordError(
        "NUMBER_OUTSIDE_VALID_RANGE",
        f"{f.label}: value outside of valid range on numeric field: {v}",
        (f.name,),
    )


def _number(f: Field, col: Sequence[str]) -> Coerced:
    """Decimal fields: rounded half-up to the field's scale (as Salesforce stores them), and at
    most precision - scale digits before the point after rounding."""
    vals: list[object] = []
    errs: Errors = {}
    digits = f.integer_digits
    limit = math.inf if digits is None else 10.0**digits
    quantum = Decimal(1).scaleb(-f.scale)
    match = _NUMBER.fullmatch
    for i, v in enumerate(col):
        if v == "":
            vals.append("")
        elif v == NULL:
            vals.append(None)
        elif match(v):
            x = float(v)
            if math.isfinite(x) and x != round(x, f.scale):
                x = float(Decimal(v).quantize(quantum, rounding=ROUND_HALF_UP))
            if abs(x) >= limit or not math.isfinite(x):
                vals.append("")
                errs[i] = _out_of_range(f, v)
            else:
                vals.append(x)
        else:
            vals.append("")
            errs[i] = wrong_type(f.label, f.name, v)
    return vals, errs


def _whole(f: Field, col: Sequence[str]) -> Coerced:
    """int/long: range of the type, and the describe's `digits` when it gives one."""
    parse = _parse_int if f.type == "int" else _parse_long
    vals, errs = _per_value(parse)(f, col)
    digits = f.integer_digits
    if digits is not None:
        limit = 10**digits
        for i, x in enumerate(vals):
            if isinstance(x, int) and abs(x) >= limit:
                vals[i] = ""  # type: ignore[index]
                errs[i] = _out_of_range(f, col[i])
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


def coerce_id(f: Field, col: Sequence[str], prefixes: Container[str]) -> Coerced:
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
    "int": _whole, "long": _whole, "double": _number,
    "currency": _number, "percent": _number, "date": _per_value(_parse_date),
    "datetime": _per_value(_parse_datetime), "time": _per_value(_parse_time),
    "base64": _text, **dict.fromkeys(OPAQUE_TYPES, _opaque),
}  # fmt: skip


def coerce(f: Field, col: Sequence[str]) -> Coerced:
    """Validate and convert one column; reference/id columns go through coerce_id instead."""
    return _BY_TYPE[f.type](f, col)


def unstorable(
    rows: Sequence[Sequence[str]], names: Sequence[str], holds_nul: bool
) -> dict[int, RecordError]:
    """Rows holding a value no database can take as text: a lone surrogate (a Bulk 1.0 JSON
    batch can carry `"\\ud800"`; it is no Unicode character, so it has no UTF-8 form), and,
    where the store cannot hold it, NUL. Salesforce keeps a NUL inside a value (query
    results carry them), so SQLite stores it; PostgreSQL text cannot, and there the record
    fails alone instead of the database refusing the whole batch."""
    if not rows:
        return {}
    joined = "\x01".join(map("\x01".join, rows))
    nul = not holds_nul and "\x00" in joined
    try:
        joined.encode("utf-8")
        surrogate = False
    except UnicodeEncodeError:
        surrogate = True
    if not (nul or surrogate):
        return {}
    out: dict[int, RecordError] = {}
    for i, row in enumerate(rows):
        for j, v in enumerate(row):
            name = names[j] if j < len(names) else f"column {j + 1}"
            if nul and "\x00" in v:
                out[i] = RecordError(
                    "INVALID_FIELD",
                    f"{name}: a NUL character (0x00) cannot be stored in PostgreSQL text",
                    (name,),
                )
                break
            if surrogate:
                try:
                    v.encode("utf-8")
                except UnicodeEncodeError as e:
                    bad = v[e.start].encode("unicode_escape").decode()
                    out[i] = RecordError(
                        "INVALID_FIELD",
                        f"{name}: a lone surrogate {bad} is not a character",
                        (name,),
                    )
                    break
    return out
