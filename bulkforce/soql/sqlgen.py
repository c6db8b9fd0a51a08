"""The two SQL dialects: identifiers, parameters and the few expressions that are spelled
differently, chosen so that SQLite and PostgreSQL give identical answers.

Statements are built with `?` placeholders and turned into `%s` for PostgreSQL at the end;
identifiers come only from the schema (API names are `[A-Za-z0-9_]`), values are always bound.
Text compares case-insensitively by folding ASCII letters on both sides: SQLite's lower() folds
only ASCII, and PostgreSQL's lower() does the same under the "C" collation, so both databases
agree on every string (and sort folded text by code point alike).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from bulkforce.store.records import q as sqlite_ident

_FOLD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


class Dialect(StrEnum):
    SQLITE = "sqlite"
    POSTGRES = "postgres"


def fold(value: str) -> str:
    """ASCII case folding, the same the SQL side applies."""
    return value.translate(_FOLD)


def iso_ms(ts: dt.datetime) -> str:
    """How SQLite stores datetimes (store/records via engine/coerce): UTC, ms, `Z`."""
    ts = ts.astimezone(dt.UTC)
    return f"{ts.year:04d}-{ts.month:02d}-{ts.day:02d}T{ts.hour:02d}:{ts.minute:02d}:" \
        f"{ts.second:02d}.{ts.microsecond // 1000:03d}Z"  # fmt: skip


# PostgreSQL parameter casts: psycopg sends strings untyped, so the operator is explicit.
_PG_CAST = {"text": "::text", "datetime": "::timestamptz", "date": "::date", "time": "::time",
            "boolean": "::boolean", "number": "::float8", "int": "::bigint", "": ""}  # fmt: skip


class Sql:
    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.pg = dialect is Dialect.POSTGRES

    def ident(self, name: str) -> str:
        return sqlite_ident(name.lower() if self.pg else name)

    def col(self, alias: str, name: str) -> str:
        return f"{alias}.{self.ident(name)}"

    def table(self, name: str) -> str:
        return self.ident(name)

    def fold(self, expr: str) -> str:
        return f'lower({expr} COLLATE "C")' if self.pg else f"lower({expr})"

    def ph(self, kind: str = "") -> str:
        """A placeholder for a value of `kind` (text, datetime, date, boolean, number, int)."""
        return "?" + _PG_CAST[kind] if self.pg else "?"

    @property
    def true(self) -> str:
        return "TRUE" if self.pg else "1"

    @property
    def false(self) -> str:
        return "FALSE" if self.pg else "0"

    def is_true(self, expr: str) -> str:
        """A predicate that is never NULL: NULL counts as false (SOQL has no unknown)."""
        return f"COALESCE({expr}, {self.false})"

    def contains(self, hay: str, needle: str) -> str:
        return f"strpos({hay}, {needle}) > 0" if self.pg else f"instr({hay}, {needle}) > 0"

    def concat(self, *parts: str) -> str:
        return "(" + " || ".join(parts) + ")"

    def value(self, value: Any, ftype: str) -> Any:
        """A Python value as the store holds it for a column of describe type `ftype`."""
        if value is None:
            return None
        if ftype == "datetime" and isinstance(value, dt.datetime):
            return value if self.pg else iso_ms(value)
        if ftype == "date" and isinstance(value, dt.date):
            return value if self.pg else value.isoformat()
        if ftype == "time" and isinstance(value, dt.time):
            # SQLite holds `hh:mm:ss.mmmZ` (engine/coerce)
            return (
                value
                if self.pg
                else value.strftime("%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
            )
        if ftype == "boolean":
            return bool(value) if self.pg else int(bool(value))
        return value

    def literal(self, value: str) -> str:
        """A string constant taken from the schema (never from a query) as SQL text; psycopg's
        `%` is doubled and `?`, which `finish` turns into placeholders, spelled chr(63)."""
        text = "'" + value.replace("'", "''") + "'"
        if self.pg:
            text = text.replace("%", "%%").replace("?", "' || chr(63) || '")
        return text

    def picklist_rank(self, expr: str, values: tuple[str, ...]) -> str:
        """A picklist value's position in its definition (NULL for null, last for others)."""
        seen: dict[str, int] = {}
        for i, v in enumerate(values):
            seen.setdefault(fold(v), i)
        whens = " ".join(f"WHEN {self.literal(v)} THEN {i}" for v, i in seen.items())
        other = f"CASE WHEN {expr} IS NULL THEN NULL ELSE {len(values)} END"
        return f"CASE {self.fold(expr)} {whens} ELSE {other} END"

    def finish(self, text: str) -> str:
        return text.replace("?", "%s") if self.pg else text

    # ---- date functions (query.md §2.1: date functions in WHERE, GROUP BY on REST) -------------

    def date_part(self, func: str, expr: str, ftype: str) -> str:
        """CALENDAR_YEAR(x) and friends as integer expressions; DAY_ONLY(x) as a date. Datetimes
        are taken in UTC, as Salesforce's date functions do without convertTimezone()."""
        if self.pg:
            src = f"({expr} AT TIME ZONE 'UTC')" if ftype == "datetime" else expr
            if func == "DAY_ONLY":
                return f"CAST({src} AS DATE)"

            def part(p: str) -> str:
                return f"CAST(EXTRACT({p} FROM {src}) AS INTEGER)"
        else:
            if func == "DAY_ONLY":
                return f"date({expr})"

            def part(p: str) -> str:
                code = {"YEAR": "%Y", "MONTH": "%m", "DAY": "%d", "DOW": "%w", "DOY": "%j",
                        "HOUR": "%H"}[p]  # fmt: skip
                return f"CAST(strftime('{code}', {expr}) AS INTEGER)"

        return {
            "CALENDAR_YEAR": part("YEAR"), "FISCAL_YEAR": part("YEAR"),
            "CALENDAR_MONTH": part("MONTH"), "FISCAL_MONTH": part("MONTH"),
            "CALENDAR_QUARTER": f"(({part('MONTH')} + 2) / 3)",
            "FISCAL_QUARTER": f"(({part('MONTH')} + 2) / 3)",
            "DAY_IN_MONTH": part("DAY"), "DAY_IN_WEEK": f"({part('DOW')} + 1)",
            "DAY_IN_YEAR": part("DOY"), "WEEK_IN_MONTH": f"(({part('DAY')} + 6) / 7)",
            "WEEK_IN_YEAR": f"(({part('DOY')} + 6) / 7)", "HOUR_IN_DAY": part("HOUR"),
        }[func]  # fmt: skip


DATE_FUNCTIONS = frozenset(
    [
        "CALENDAR_YEAR",
        "FISCAL_YEAR",
        "CALENDAR_MONTH",
        "FISCAL_MONTH",
        "CALENDAR_QUARTER",
        "FISCAL_QUARTER",
        "DAY_IN_MONTH",
        "DAY_IN_WEEK",
        "DAY_IN_YEAR",
        "WEEK_IN_MONTH",
        "WEEK_IN_YEAR",
        "HOUR_IN_DAY",
        "DAY_ONLY",
    ]
)
AGGREGATES = frozenset(["COUNT", "COUNT_DISTINCT", "SUM", "AVG", "MIN", "MAX"])
