"""PostgreSQL record tables: column types, DDL pieces, and a table's writes (binary COPY,
staged bulk updates) and reads by key."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import pq, sql
from psycopg.rows import tuple_row

from bulkforce.engine.schema import NUMBER_TYPES, Field, SObject
from bulkforce.model import iso
from bulkforce.store import pgeach
from bulkforce.store.base import RecordTable, Refused, Row
from bulkforce.store.pgcopy import (
    STAGE,
    STAGE_MIN_ROWS,
    CopyPlan,
    copy_sql,
    ident,
    stage_sql,
    update_from_stage_sql,
)
from bulkforce.store.pgsql import wrapped


def api_values(obj: SObject, row: Mapping[str, Any]) -> dict[str, Any]:
    """A row by API names, with values as the SQLite store returns them (text dates)."""
    out: dict[str, Any] = {}
    for f in obj.fields.values():
        value = row.get(f.name.lower())
        if isinstance(value, dt.datetime):
            value = iso(value)
        elif isinstance(value, dt.date | dt.time):
            value = value.isoformat()
        elif isinstance(value, Decimal):
            value = float(value)
        out[f.name] = value
    return out


def pg_type(f: Field) -> str:
    if f.type == "boolean":
        return "BOOLEAN"
    if f.type == "int":
        return "INTEGER"
    if f.type == "long":
        return "BIGINT"
    if f.type in NUMBER_TYPES:
        return f"NUMERIC({f.precision},{f.scale})" if f.precision else "DOUBLE PRECISION"
    if f.type == "date":
        return "DATE"
    if f.type == "datetime":
        return "TIMESTAMPTZ"
    if f.type == "time":
        return "TIME"
    if f.indexed_key and not f.case_sensitive and f.name != "Id":
        return "CITEXT"  # Salesforce matches external ids and unique text case-insensitively
    return "TEXT"


def column_def(f: Field) -> sql.Composable:
    extra = ""
    if f.name == "Id":
        extra = " PRIMARY KEY"
    elif f.name == "IsDeleted":
        extra = " NOT NULL DEFAULT FALSE"
    return sql.SQL("{} {}{}").format(ident(f.name), sql.SQL(pg_type(f)), sql.SQL(extra))


class PgRecords(RecordTable):
    writes_each = True

    def __init__(self, conn: psycopg.Connection[Any], obj: SObject) -> None:
        self.conn = conn
        self.obj = obj
        self.table = ident(obj.table)

    def insert(
        self, columns: Sequence[str], rows: Iterable[Row], constants: Mapping[str, Any] = {},
        encoded: object = None,
    ) -> None:  # fmt: skip
        stmt = copy_sql(self.table, [*columns, *constants])
        # What PostgresStore.encode_insert made: its text is UTF-8, so only a UTF-8
        # connection may send it (one with another client encoding formats the rows itself).
        utf8 = self.conn.info.encoding == "utf-8"
        data = encoded if isinstance(encoded, bytes) and utf8 else None
        with wrapped(), self.conn.cursor() as cur, cur.copy(stmt) as copy:
            if data is not None:
                copy.write(data)
            else:
                CopyPlan(self.obj, columns, constants).write(cur, copy, rows)

    def update(
        self, columns: Sequence[str], rows: Iterable[Row], constants: Mapping[str, Any] = {}
    ) -> None:
        rows = list(rows)
        if len(rows) >= STAGE_MIN_ROWS:
            self._update_staged(columns, rows, constants)
            return
        names = [*columns, *constants]
        sets = sql.SQL(", ").join(sql.SQL("{} = %s").format(ident(c)) for c in names)
        stmt = sql.SQL("UPDATE {} SET {} WHERE id = %s").format(self.table, sets)
        extra = tuple(constants.values())
        # rows end with the Id; the constants go between the values and it
        params = [(*r[:-1], *extra, r[-1]) for r in rows]
        with wrapped(), self.conn.cursor() as cur:
            cur.executemany(stmt, params)

    def _update_staged(
        self, columns: Sequence[str], rows: list[Row], constants: Mapping[str, Any]
    ) -> None:
        """COPY the new values into a staging table, then one UPDATE … FROM it."""
        plan = CopyPlan(self.obj, [*columns, "Id"], {})
        with wrapped(), self.conn.cursor() as cur:
            cur.execute(stage_sql(self.table, columns))
            try:
                with cur.copy(copy_sql(STAGE, [*columns, "Id"])) as copy:
                    plan.write(cur, copy, rows)
                cur.execute(
                    update_from_stage_sql(self.table, columns, constants), list(constants.values())
                )
            finally:
                if self.conn.info.transaction_status == pq.TransactionStatus.INTRANS:
                    cur.execute(sql.SQL("DROP TABLE {}").format(STAGE))

    def write_each(
        self, columns: Sequence[str], rows: Sequence[Row], constants: Mapping[str, Any],
        insert: bool,
    ) -> list[Refused]:  # fmt: skip
        return pgeach.write_each(self.conn, self.obj, self.table, columns, rows, constants, insert)

    def _array_type(self, column: str) -> str:
        """The column's type for an array of keys compared with it (its index's equality)."""
        f = self.obj.field(column)
        return pg_type(f).split("(")[0] if f is not None else "TEXT"

    def lookup(self, column: str, keys: Sequence[Any]) -> list[tuple[Any, str, bool]]:
        cast = self._array_type(column)
        stmt = sql.SQL(
            "SELECT {col}, id, isdeleted FROM {t} WHERE {col} = ANY(%s::{cast}[])"
        ).format(col=ident(column), t=self.table, cast=sql.SQL(cast))
        with wrapped(), self.conn.cursor(row_factory=tuple_row) as cur:
            rows = cur.execute(stmt, (list(keys),)).fetchall()
        return [(r[0], r[1], bool(r[2])) for r in rows]

    def taken(self, column: str, keys: Sequence[Any]) -> list[tuple[int, str]]:
        if not keys:
            return []
        cast = self._array_type(column)
        # the keys joined as the column's type: compared as its index compares them
        stmt = sql.SQL(
            "SELECT k.n - 1, t.id FROM unnest(%s::{cast}[]) WITH ORDINALITY AS k(v, n) "
            "JOIN {t} AS t ON t.{col} = k.v"
        ).format(col=ident(column), t=self.table, cast=sql.SQL(cast))
        with wrapped(), self.conn.cursor(row_factory=tuple_row) as cur:
            rows = cur.execute(stmt, (list(keys),)).fetchall()
        return [(int(r[0]), r[1]) for r in rows]

    def soft_delete(self, ids: Sequence[str], now: str, user_id: str) -> None:
        stmt = sql.SQL(
            "UPDATE {} SET isdeleted = TRUE, lastmodifieddate = %s, systemmodstamp = %s, "
            "lastmodifiedbyid = %s WHERE id = ANY(%s::text[])"
        ).format(self.table)
        with wrapped():
            self.conn.execute(stmt, (now, now, user_id, list(ids)))

    def hard_delete(self, ids: Sequence[str]) -> None:
        stmt = sql.SQL("DELETE FROM {} WHERE id = ANY(%s::text[])").format(self.table)
        with wrapped():
            self.conn.execute(stmt, (list(ids),))
