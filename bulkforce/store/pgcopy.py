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
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import pq, sql
from psycopg.abc import AdaptContext
from psycopg.adapt import Transformer

try:  # psycopg's own row formatter (C with psycopg[binary]); not a public name, hence the guard
    from psycopg._copy_base import format_row_binary
except ImportError:  # pragma: no cover - a psycopg that moved it: rows go through write_row
    format_row_binary = None

from bulkforce.engine.schema import NUMBER_TYPES, Field, SObject

# Below this many rows an update is one pipelined executemany: creating and dropping a
# staging table costs more round trips than it saves.
STAGE_MIN_ROWS = 50
STAGE = sql.Identifier("bf_stage")

Convert = Callable[[Any], Any] | None

# Binary COPY framing (PostgreSQL docs, COPY "Binary Format"): signature, flags, header
# extension length; after the rows, a field count of -1.
_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_TRAILER = b"\xff\xff"
SEND_BYTES = 1 << 18  # sent as it fills, so the server works on the rows while we format more


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

    def write(
        self, cur: psycopg.Cursor[Any], copy: psycopg.Copy, rows: Iterable[Sequence[Any]]
    ) -> None:
        """Every row into `copy`, sent as it is formatted."""
        if format_row_binary is None:
            copy.set_types(self.types)
            for row in self.rows(rows):
                copy.write_row(row)
            return
        for part in self._binary(cur, rows):
            copy.write(part)

    def encode(self, rows: Iterable[Sequence[Any]]) -> bytes | None:
        """The whole binary COPY data of `rows`, made ahead of the COPY (by a thread other
        than the one that sends it), its text in UTF-8; None if this psycopg cannot format
        rows itself."""
        if format_row_binary is None:
            return None
        return b"".join(self._binary(psycopg.adapters, rows))

    def _binary(self, context: AdaptContext, rows: Iterable[Sequence[Any]]) -> Iterator[bytearray]:
        """The binary COPY data in pieces of about SEND_BYTES. The constants are formatted
        once and appended to each formatted row as bytes: building a longer tuple per row
        and formatting the same timestamps and ids again cost ~40% of the COPY's Python
        time (10,000 rows: ~12 ms through write_row, ~5 ms so)."""
        assert format_row_binary is not None
        n_extra = len(self.extra)
        oids = [context.adapters.types[t].oid for t in self.types]
        tx = Transformer.from_context(context)
        tx.set_dumper_types(oids[: len(oids) - n_extra], pq.Format.BINARY)
        tail = b""
        if n_extra:
            tail_tx = Transformer.from_context(context)
            tail_tx.set_dumper_types(oids[len(oids) - n_extra :], pq.Format.BINARY)
            out = bytearray()
            format_row_binary(self.extra, tail_tx, out)
            tail = bytes(out[2:])  # without its own field count
        count = struct.pack("!h", len(oids))
        converts, convert = self.converts, self._convert
        buf = bytearray(_HEADER)
        for row in rows:
            if converts:
                row = convert(row, converts)
            if tail:
                at = len(buf)
                format_row_binary(row, tx, buf)
                buf[at : at + 2] = count
                buf += tail
            else:
                format_row_binary(row, tx, buf)
            if len(buf) >= SEND_BYTES:
                yield buf
                buf = bytearray()
        buf += _TRAILER
        yield buf

    @staticmethod
    def _convert(
        row: Sequence[Any], converts: list[tuple[int, Callable[[Any], Any]]]
    ) -> tuple[Any, ...]:
        out = list(row)
        for j, c in converts:
            if out[j] is not None:
                out[j] = c(out[j])
        return tuple(out)


def ident(name: str) -> sql.Identifier:
    """A column or table by its API name: the store's tables use the names lower-cased."""
    return sql.Identifier(name.lower())


def idents(columns: Iterable[str]) -> sql.Composable:
    return sql.SQL(", ").join(ident(c) for c in columns)


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
