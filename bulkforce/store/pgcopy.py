"""Record rows into PostgreSQL by binary COPY.

Binary COPY skips the text escaping of every value on our side and the parsing on the server's
(perf-notes: ~2.7x the rows/s of executemany). It needs each column's exact type
(`Copy.set_types`) and values of the matching Python type; the engine hands dates, datetimes
and times over as ISO text and decimals as floats (engine/coerce.py), so those few columns are
converted here. Updates of many rows go the same way into a staging table and then one
`UPDATE … FROM`, instead of one statement per row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from psycopg import sql

from bulkforce.engine.schema import NUMBER_TYPES, Field, SObject

# Below this many rows an update is one pipelined executemany: creating and dropping a
# staging table costs more round trips than it saves.
STAGE_MIN_ROWS = 50
STAGE = sql.Identifier("bf_stage")

Convert = Callable[[Any], Any] | None


def _timestamp(v: Any) -> Any:
    return dt.datetime.fromisoformat(v) if isinstance(v, str) else v


def _date(v: Any) -> Any:
    return dt.date.fromisoformat(v) if isinstance(v, str) else v


def _time(v: Any) -> Any:
    return dt.time.fromisoformat(v.rstrip("Z")) if isinstance(v, str) else v


def _decimal(v: Any) -> Any:
    return Decimal(repr(v)) if isinstance(v, float | int) else v


_BY_TYPE: dict[str, tuple[str, Convert]] = {
    "boolean": ("bool", None), "int": ("int4", None), "long": ("int8", None),
    "date": ("date", _date), "datetime": ("timestamptz", _timestamp), "time": ("time", _time),
}  # fmt: skip


def binary_type(f: Field | None) -> tuple[str, Convert]:
    """The column's type as `set_types` names it, and how to turn an engine value into the
    Python type its binary dumper takes (None: as it is). CITEXT columns take text: the
    server reads a binary citext as it reads text."""
    if f is None:
        return "text", None
    if f.type in NUMBER_TYPES:
        return ("numeric", _decimal) if f.precision else ("float8", None)
    return _BY_TYPE.get(f.type, ("text", None))


class CopyPlan:
    """Types and conversions of one column list (values first, then the constants)."""

    def __init__(self, obj: SObject, columns: Sequence[str], constants: Mapping[str, Any]) -> None:
        names = [*columns, *constants]
        typed = [binary_type(obj.field(c)) for c in names]
        self.types = [t for t, _ in typed]
        n = len(columns)
        self.converts = [(j, c) for j, (_, c) in enumerate(typed[:n]) if c is not None]
        self.extra = tuple(
            v if c is None else c(v)
            for (_, c), v in zip(typed[n:], constants.values(), strict=True)
        )

    def rows(self, rows: Iterable[Sequence[Any]]) -> Iterable[Sequence[Any]]:
        """Rows ready for write_row: converted where a type needs it, constants appended."""
        converts, extra = self.converts, self.extra
        if not converts:
            if not extra:
                return rows
            return ((*row, *extra) for row in rows)
        return (self._convert(row, converts) + extra for row in rows)

    @staticmethod
    def _convert(
        row: Sequence[Any], converts: list[tuple[int, Callable[[Any], Any]]]
    ) -> tuple[Any, ...]:
        out = list(row)
        for j, c in converts:
            if out[j] is not None:
                out[j] = c(out[j])
        return tuple(out)


def idents(columns: Iterable[str]) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(c.lower()) for c in columns)


def copy_sql(table: sql.Composable, columns: Sequence[str]) -> sql.Composed:
    return sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(table, idents(columns))


def stage_sql(table: sql.Composable, columns: Sequence[str]) -> sql.Composed:
    """A temporary table with exactly the updated columns' types (the Id last)."""
    return sql.SQL("CREATE TEMP TABLE {} AS SELECT {} FROM {} WITH NO DATA").format(
        STAGE, idents([*columns, "Id"]), table
    )


def update_from_stage_sql(
    table: sql.Composable, columns: Sequence[str], constants: Mapping[str, Any]
) -> sql.Composed:
    sets = [sql.SQL("{0} = s.{0}").format(sql.Identifier(c.lower())) for c in columns]
    sets += [sql.SQL("{} = %s").format(sql.Identifier(c.lower())) for c in constants]
    return sql.SQL("UPDATE {} AS t SET {} FROM {} AS s WHERE t.id = s.id").format(
        table, sql.SQL(", ").join(sets), STAGE
    )
