"""Query result files: a plan's rows written once as Bulk CSV, with a row index, then served
page by page from any row offset.

`write_csv_result` is what every query API that answers in files uses (Bulk 2.0 query jobs
here, Bulk 1.0 query batches in their own module): it runs `Plan.sql()` (all rows, in the
plan's order) through `Store.query_rows`, renders blocks of rows with `wire.query.CsvRenderer`
and streams them to `Blobs.result_writer(key)`; nothing the size of the result is held in
memory. `page_bytes` then streams rows [start, start + count) of that file.

The index records the byte offset of every INDEX_EVERY-th row; a page that starts between
two indexed rows skips the remaining rows of one block by counting quotes (every value is
quoted, so a line ending is a row ending exactly when the quotes before it are balanced).
"""

from __future__ import annotations

import datetime as dt
from array import array
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from typing import Any

from bulkforce.errors import Kind, ServiceError
from bulkforce.jobs.service import Context
from bulkforce.soql import Api, Dialect, Plan, SoqlError, compile_query
from bulkforce.wire.query import CsvRenderer, plain_columns

INDEX_EVERY = 1000


def compile_for(
    ctx: Context, text: str, api: Api, *, all_rows: bool = False, now: dt.datetime | None = None
) -> Plan:
    """Compile SOQL for this store; bad SOQL becomes a ServiceError carrying its errorCode."""
    try:
        return compile_query(
            text, ctx.schema, api=api, dialect=Dialect(ctx.store.dialect), all_rows=all_rows,
            tz=ctx.settings.timezone, now=now,
        )  # fmt: skip
    except SoqlError as e:
        raise ServiceError(Kind.QUERY, e.message, code=e.code) from None


@contextmanager
def rows_of(ctx: Context, sql: str, params: Sequence[Any]) -> Iterator[Iterator[tuple[Any, ...]]]:
    """`Store.query_rows`, closed (its read connection handed back) even when the reader stops
    early."""
    rows = ctx.store.query_rows(sql, params)
    try:
        yield rows
    finally:
        close = getattr(rows, "close", None)
        if close is not None:
            close()


def write_csv_result(
    ctx: Context, key: str, plan: Plan, delimiter: str, newline: str,
    progress: Callable[[int], None] | None = None,
) -> int:  # fmt: skip
    """Run every row of `plan` into the CSV result of `key` (no header row); returns the
    number of rows. `progress(rows_so_far)` is called after each block and may raise to stop
    (the uncommitted result is then ignored)."""
    sql, params = plan.sql()
    renderer = CsvRenderer(plan.columns, delimiter, newline)
    width = len(plan.columns)
    # text-only plans skip decoding: a raw row starts with the selected columns (soql/plan.py)
    typed = not plain_columns(plan.columns)
    writer = ctx.blobs.result_writer(key)
    offsets = array("q")
    size = rows = 0
    values = plan.values
    with rows_of(ctx, sql, params) as cursor:
        while block := list(islice(cursor, INDEX_EVERY)):
            offsets.append(size)
            data = renderer.render(
                [values(r) for r in block] if typed else [r[:width] for r in block]
            )
            writer.write(data)
            size += len(data)
            rows += len(block)
            if progress is not None:
                progress(rows)
    writer.commit((array("q", [INDEX_EVERY, rows, size]) + offsets).tobytes())
    return rows


@dataclass(frozen=True)
class ResultIndex:
    every: int
    rows: int
    size: int
    offsets: array[int]


def result_index(ctx: Context, key: str) -> ResultIndex | None:
    raw = ctx.blobs.result_index(key)
    if raw is None:
        return None
    idx = array("q")
    idx.frombytes(raw)
    return ResultIndex(idx[0], idx[1], idx[2], idx[3:])


def _row_offset(ctx: Context, key: str, index: ResultIndex, row: int, newline: bytes) -> int:
    if row >= index.rows:
        return index.size
    block, skip = divmod(row, index.every)
    start = index.offsets[block]
    if skip == 0:
        return start
    end = index.offsets[block + 1] if block + 1 < len(index.offsets) else index.size
    data = b"".join(ctx.blobs.read_result(key, start, end))
    pos = quotes = 0
    for _ in range(skip):
        while True:
            nl = data.find(newline, pos)
            quotes += data.count(b'"', pos, nl)
            pos = nl + len(newline)
            if quotes % 2 == 0:
                break
    return start + pos


def page_bytes(
    ctx: Context, key: str, index: ResultIndex, start: int, count: int, newline: str
) -> tuple[int, Iterator[bytes]]:
    """(rows on the page, their bytes) for rows [start, start + count)."""
    end_row = min(start + count, index.rows)
    nl = newline.encode()
    a = _row_offset(ctx, key, index, start, nl)
    b = _row_offset(ctx, key, index, end_row, nl)
    return max(end_row - start, 0), ctx.blobs.read_result(key, a, b)
