"""The REST query resource (`/query`, `/queryAll`, `/query/{locator}`; query.md §6).

Pages of up to 2,000 records by keyset: each page runs `Plan.sql(after=key, size=n)`, so a page
never repeats or skips a row that existed throughout, whatever other jobs write meanwhile.
The cursor (the SOQL, queryAll or not, totalSize, and the key every served page resumes
after) lives in the database: any API process sharing it serves the next page, and a locator
fetched twice returns the same rows.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from bulkforce.engine import ids
from bulkforce.errors import Kind, ServiceError
from bulkforce.jobs.results import compile_for, rows_of
from bulkforce.jobs.service import Context
from bulkforce.model import QueryCursor, utcnow
from bulkforce.soql import Api, Plan, Rec
from bulkforce.wire import query as wire

DEFAULT_BATCH = 2000
_COUNTERS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="bulkforce-count")
MIN_BATCH = 200
_LOCATOR_ERROR = "invalid query locator"


def batch_size(options: str | None) -> int:
    """`Sforce-Query-Options: batchSize=N`: 200 to 2,000, default 2,000."""
    for part in (options or "").split(","):
        name, _, value = part.partition("=")
        if name.strip().lower() == "batchsize" and value.strip().isdigit():
            return max(MIN_BATCH, min(DEFAULT_BATCH, int(value.strip())))
    return DEFAULT_BATCH


class RestQueryService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.store = ctx.store

    def _count(self, plan: Plan) -> int:
        with rows_of(self.ctx, *plan.count_sql()) as rows:
            first = next(rows, None)
        return int(first[0]) if first else 0

    def query(self, ver: str, text: str, all_rows: bool, batch: int) -> dict[str, Any]:
        now = utcnow()
        plan = compile_for(self.ctx, text, Api.REST, all_rows=all_rows, now=now)
        if plan.count_only:
            return wire.query_page(self._count(plan), [], None)
        if plan.aggregate:  # one page, no queryMore (Salesforce: LIMIT them to a batch)
            rows = self.store.query_rows(*plan.sql())
            recs = [wire.rest_record(plan.record(r), ver) for r in rows]
            return wire.query_page(len(recs), recs, None)
        # totalSize is counted beside the first page (another connection, in parallel): a
        # first page of a large table then costs about the larger of the two, not their sum
        counting = _COUNTERS.submit(self._count, plan)
        cursor = QueryCursor("", text, all_rows, -1, batch, now)
        return self._page(ver, plan, cursor, 0, None, counting)

    def more(self, ver: str, locator: str) -> dict[str, Any]:
        cursor_id, _, raw_pos = locator.rpartition("-")
        found = self.store.get_cursor_page(cursor_id, int(raw_pos)) if raw_pos.isdigit() else None
        if found is None:
            raise ServiceError(Kind.INVALID_LOCATOR, _LOCATOR_ERROR)
        cursor, key = found
        plan = compile_for(
            self.ctx, cursor.query, Api.REST, all_rows=cursor.all_rows, now=cursor.created_date
        )
        return self._page(ver, plan, cursor, int(raw_pos), json.loads(key))

    def _page(
        self, ver: str, plan: Plan, cursor: QueryCursor, pos: int, after: Any,
        counting: Future[int] | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        want = cursor.batch_size
        if plan.limit is not None:
            want = max(min(want, plan.limit - pos), 0)
        rows = list(self.store.query_rows(*plan.sql(after=after, size=want + 1))) if want else []
        more = len(rows) > want and (plan.limit is None or pos + want < plan.limit)
        rows = rows[:want]
        if counting is not None:
            # a first page that holds everything is its own count
            cursor.total = counting.result() if more else len(rows)
        records = self._records(ver, plan, rows)
        next_url = None
        if more:
            if not cursor.id:
                cursor.id = ids.make_id("01g", self.store.allocate("query_cursor"))
                self.store.add_cursor(cursor)
            nxt = pos + len(rows)
            self.store.put_page(cursor.id, nxt, json.dumps(plan.key(rows[-1])))
            next_url = f"/services/data/v{ver}/query/{cursor.id}-{nxt}"
        return wire.query_page(cursor.total, records, next_url)

    def _records(self, ver: str, plan: Plan, rows: list[Any]) -> list[dict[str, Any]]:
        names = [c.name for c in plan.columns]
        if not plan.children and all(len(c.path) == 1 for c in plan.columns) and "Id" in names:
            # text-only plans need no decoding: a raw row starts with the selected columns
            width = len(names)
            plain = wire.plain_columns(plan.columns)
            values = (r[:width] for r in rows) if plain else map(plan.values, rows)
            return wire.flat_records(plan.root.name, names, names.index("Id"), values, ver)
        recs = [plan.record(r) for r in rows]
        if plan.children and recs:
            self._attach_children(plan, recs)
        return [wire.rest_record(r, ver) for r in recs]

    def _attach_children(self, plan: Plan, recs: Sequence[Rec]) -> None:
        parent_ids = [r.id for r in recs if r.id is not None]
        for child in plan.children:
            found: dict[str, list[Rec]] = defaultdict(list)
            for row in self.store.query_rows(*child.sql(parent_ids)):
                found[child.parent_id(row)].append(child.record(row))
            for rec in recs:
                rec.fields[child.name] = found.get(rec.id or "", [])

    def columns(self, text: str, all_rows: bool) -> dict[str, Any]:
        plan = compile_for(self.ctx, text, Api.REST, all_rows=all_rows, now=utcnow())
        return wire.column_metadata(plan, self.ctx.schema)

    def explain(self, text: str) -> dict[str, Any]:
        plan = compile_for(self.ctx, text, Api.REST, now=utcnow())
        matched = self._count(plan) if not plan.aggregate else 0
        everything = compile_for(self.ctx, f"SELECT COUNT() FROM {plan.root.name}", Api.REST)
        return wire.explain(plan.root, matched, self._count(everything), indexed=False)
