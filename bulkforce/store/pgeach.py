"""Records written one at a time, in order, by a loop inside PostgreSQL (RecordTable.write_each).

A batch that a unique index refused leaves records that must be written one by one in file
order (engine/unique.py): those that may clash with each other. Written from the worker,
each costs a savepoint, the statement, its release or rollback and, when refused, a look-up
of the record holding the value: ~6 round trips, 1.6 ms a record (2,000 records re-keyed to
each other's values: 3.2 s; 100,000: 112 s). Here the records are copied into a temporary
table, and one PL/pgSQL block writes them in order, each in a subtransaction of its own
(BEGIN … EXCEPTION), and notes each refusal with the holder of the value at that moment: a
handful of round trips for the lot (2,000 records: 0.23 s).

Each record gets what engine/refusals.py's own loop gives it: the same statement alone, in
the same order, and a refused record's holder looked up right after its refusal, column by
column in the batch's order (RowWrites._duplicate_value).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from bulkforce.engine.schema import SObject
from bulkforce.store.base import Refused, Row
from bulkforce.store.pgcopy import CopyPlan, copy_sql, ident, idents
from bulkforce.store.pgsql import wrapped

ROWS = sql.Identifier("bf_each")
REFUSED = sql.Identifier("bf_each_refused")


def _write_sql(
    table: sql.Identifier, columns: Sequence[str], constants: Mapping[str, Any], insert: bool
) -> sql.Composed:
    """The statement of one record `r` (a row of the temporary table)."""
    values = [sql.SQL("r.{}").format(ident(c)) for c in columns]
    fixed = [sql.Literal(v) for v in constants.values()]
    if insert:
        return sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            table,
            sql.SQL(", ").join(ident(c) for c in [*columns, *constants]),
            sql.SQL(", ").join([*values, *fixed]),
        )
    sets = [sql.SQL("{} = {}").format(ident(c), v) for c, v in zip(columns, values, strict=True)]
    sets += [sql.SQL("{} = {}").format(ident(c), v) for c, v in zip(constants, fixed, strict=True)]
    return sql.SQL("UPDATE {} SET {} WHERE id = r.id").format(table, sql.SQL(", ").join(sets))


def _holder_sql(
    obj: SObject, table: sql.Identifier, columns: Sequence[str], insert: bool
) -> sql.Composed:
    """Sets h_col and h_id: the first unique column, in the batch's order, whose value of
    `r` another record holds, and that record's Id (as RowWrites._duplicate_value looks)."""
    own = sql.SQL("''") if insert else sql.SQL("r.id")
    steps = []
    for c in columns:
        f = obj.field(c)
        if f is None or not f.unique:
            continue
        steps.append(
            sql.SQL(
                "IF h_col IS NULL AND r.{col} IS NOT NULL AND r.{col}::text <> '' THEN "
                "SELECT t.id INTO h_id FROM {table} AS t "
                "WHERE t.{col} = r.{col} AND t.id IS DISTINCT FROM {own} LIMIT 1; "
                "IF FOUND THEN h_col := {name}; END IF; END IF;"
            ).format(col=ident(c), table=table, own=own, name=sql.Literal(f.name))
        )
    return sql.SQL(" ").join(steps)


def write_each(
    conn: psycopg.Connection[Any], obj: SObject, table: sql.Identifier, columns: Sequence[str],
    rows: Sequence[Row], constants: Mapping[str, Any], insert: bool,
) -> list[Refused]:  # fmt: skip
    """Write `rows` one at a time in order, each alone; the ones a unique index refused, in
    order. Any other error fails the whole call: a value the database refuses (BadValue)
    too, so the caller, which holds a savepoint around it, writes the rows itself and tells
    which record holds it."""
    copied = [*columns] if insert else [*columns, "Id"]
    body = (
        sql.SQL(
            "DECLARE r record; h_col text; h_id text; BEGIN "
            "FOR r IN SELECT * FROM {rows} ORDER BY bf_pos LOOP "
            "BEGIN {write}; "
            "EXCEPTION "
            "WHEN unique_violation THEN h_col := NULL; h_id := NULL; {holder} "
            "INSERT INTO {refused} VALUES (r.bf_pos, h_col, h_id); "
            "END; END LOOP; END"
        )
        .format(
            rows=ROWS,
            write=_write_sql(table, columns, constants, insert),
            holder=_holder_sql(obj, table, columns, insert),
            refused=REFUSED,
        )
        .as_string(conn)
    )
    quote = "$bf$"
    while quote in body:  # a constant holding the quote would end the block early
        quote = quote[:-1] + "_$"
    with wrapped(), conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(
            sql.SQL(
                "CREATE TEMP TABLE {rows} AS SELECT {cols} FROM {table} WITH NO DATA; "
                "ALTER TABLE {rows} ADD COLUMN bf_pos SERIAL; "
                "CREATE TEMP TABLE {refused} (pos INTEGER, col TEXT, holder TEXT)"
            ).format(rows=ROWS, refused=REFUSED, table=table, cols=idents(copied))
        )
        # COPY fills bf_pos from its sequence in the order of the rows: 1, 2, ...
        with cur.copy(copy_sql(ROWS, copied)) as copy:
            CopyPlan(obj, copied, {}).write(cur, copy, rows)
        cur.execute(f"DO {quote} {body} {quote}")
        got = cur.execute(
            sql.SQL("SELECT pos, col, holder FROM {} ORDER BY pos").format(REFUSED)
        ).fetchall()
        cur.execute(sql.SQL("DROP TABLE {}, {}").format(ROWS, REFUSED))
    return [Refused(int(pos) - 1, col, holder) for pos, col, holder in got]
