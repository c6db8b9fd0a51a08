"""Bulk API 1.0 query batches (bulk-api.md §2.8, §2.10; query.md §4.3, §5.1).

A query batch's request is raw SOQL. The worker runs it like an ingest batch (Queued →
InProgress → Completed/Failed) into one result file per batch, written front to back with a
row index (`jobs/results.py`), and then records which byte ranges of that file are its result
ids: one per started GB, as Salesforce splits results over 1 GB. A retried batch writes its
file and its result ids again from the start: results are replaced, never duplicated.

With PK chunking the original batch is not run: it becomes NotProcessed and one chunk batch
per Id range is queued in the same transaction, each with the original SOQL plus the range.
"""

from __future__ import annotations

import json
import time
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice

from bulkforce.engine import ids
from bulkforce.engine.schema import SObject
from bulkforce.errors import Kind, ServiceError
from bulkforce.jobs import pkchunk
from bulkforce.jobs.results import (
    INDEX_EVERY,
    compile_for,
    result_index,
    rows_of,
    write_csv_result,
)
from bulkforce.jobs.service import Context
from bulkforce.model import Batch, BatchState, Job, Operation
from bulkforce.soql import Api, Plan, Rec, SoqlError, ast, parse
from bulkforce.wire import bulk1query as wire
from bulkforce.wire.query import quoted_header

RESULT_PREFIX = "752"
SPLIT_MESSAGE = "Not processed: the job uses PK chunking; its chunk batches hold the results"


class BatchFailed(Exception):
    """The batch fails with this stateMessage (`Code : message`)."""


class LeaseLost(Exception):
    """Another worker took the batch over (this one was presumed dead)."""


def query_failed(code: str, message: str) -> BatchFailed:
    return BatchFailed(f"InvalidBatch : Failed to process query: {code}: {message}")


@dataclass(frozen=True)
class Manifest:
    """What a finished query batch produced: its CSV header, row count, and result ids, each
    a byte range [start, end) of the batch's result file."""

    columns: list[str]
    rows: int
    parts: list[tuple[str, int, int]]

    def dumps(self) -> bytes:
        return json.dumps(
            {"columns": self.columns, "rows": self.rows, "parts": self.parts}
        ).encode()

    @classmethod
    def loads(cls, data: bytes) -> Manifest:
        doc = json.loads(data)
        return cls(doc["columns"], doc["rows"], [tuple(p) for p in doc["parts"]])


def split_points(offsets: Sequence[int], size: int, limit: int) -> list[tuple[int, int]]:
    """Cut [0, size) at indexed row offsets into ranges of at most `limit` bytes where the
    index allows (a block of rows is never cut); always at least one range."""
    ranges: list[tuple[int, int]] = []
    start = prev = 0
    for off in [*offsets, size]:
        if off - start > limit and prev > start:
            ranges.append((start, prev))
            start = prev
        prev = off
    ranges.append((start, size))
    return ranges


def _start(cond: ast.Cond) -> int:
    """Where a WHERE condition's text starts (after any opening parentheses)."""
    if isinstance(cond, ast.And | ast.Or):
        return _start(cond.items[0])
    if isinstance(cond, ast.Not):
        return cond.pos
    return cond.left.pos


class QueryBatches:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    # ---- the worker's side -------------------------------------------------------------------

    def run(self, job: Job, batch: Batch, owner: str) -> bool:
        """Run one claimed query batch to its end state; False if the lease was lost."""
        started = time.perf_counter()
        try:
            text = (self.ctx.blobs.get(f"{batch.id}.request") or b"").decode("utf-8", "replace")
            plan = self._compile(job, text)
            pk = pkchunk.PkChunking.loads(job.pk_chunking)
            if pk is not None and batch.chunk_of is None:
                return self._split(job, batch, owner, text, pk, started)
            manifest = self._write(job, batch, plan, owner)
        except BatchFailed as e:
            return self._end(batch, owner, BatchState.FAILED, str(e), 0, started)
        except LeaseLost:
            return False
        self.ctx.blobs.put(f"{batch.id}.result", manifest.dumps())
        return self._end(batch, owner, BatchState.COMPLETED, None, manifest.rows, started)

    def _end(
        self, batch: Batch, owner: str, state: BatchState, message: str | None, rows: int,
        started: float,
    ) -> bool:  # fmt: skip
        ms = int((time.perf_counter() - started) * 1000)
        with self.ctx.store.transaction() as tx:
            return tx.finish_batch(batch.id, owner, state, message, rows, 0, ms)

    def _compile(self, job: Job, text: str) -> Plan:
        try:
            plan = compile_for(
                self.ctx, text, Api.BULK1, all_rows=job.operation is Operation.QUERY_ALL
            )
        except ServiceError as e:
            raise query_failed(e.code or "MALFORMED_QUERY", e.message) from None
        if plan.root.name != job.object:
            raise query_failed(
                "INVALID_TYPE_FOR_OPERATION",
                f"The root entity of the requested query ({plan.root.name}) does not match the "
                f"entity of the requested Bulk API Job ({job.object}).",
            )
        if job.content_type == "CSV" and plan.children:
            raise BatchFailed(
                "FeatureNotEnabled : Aggregate Relationships not supported in Bulk Query with "
                "CSV content type"
            )
        return plan

    def _progress(self, batch: Batch, owner: str) -> Callable[[int], None]:
        """Renews the batch's lease while a long query runs; raises LeaseLost if it is gone."""
        lease = self.ctx.settings.lease_seconds
        due = time.monotonic() + lease / 3

        def progress(_rows: int) -> None:
            nonlocal due
            if time.monotonic() >= due:
                if not self.ctx.store.renew_batch_lease(batch.id, owner, lease):
                    raise LeaseLost()
                due = time.monotonic() + lease / 3

        return progress

    def _write(self, job: Job, batch: Batch, plan: Plan, owner: str) -> Manifest:
        progress = self._progress(batch, owner)
        if job.content_type == "CSV":
            write_csv_result(self.ctx, batch.id, plan, ",", job.newline, progress)
        else:
            self._write_records(job, batch, plan, progress)
        index = result_index(self.ctx, batch.id)
        assert index is not None
        limit = int(self.ctx.settings.query_result_mb * 1024 * 1024)
        ranges = split_points(index.offsets, index.size, limit)
        first = self.ctx.store.allocate("result", len(ranges))
        parts = [(ids.make_id(RESULT_PREFIX, first + i)[:15], start, end)
                 for i, (start, end) in enumerate(ranges)]  # fmt: skip
        return Manifest([c.name for c in plan.columns], index.rows, parts)

    def _write_records(
        self, job: Job, batch: Batch, plan: Plan, progress: Callable[[int], None]
    ) -> None:
        """XML or JSON records into the batch's result file, indexed like the CSV results."""
        if job.content_type == "JSON":
            ver = job.api_version

            def render(rec: Rec) -> bytes:
                return wire.json_record(rec, ver)
        else:
            render = wire.xml_record
        sql, params = plan.sql()
        writer = self.ctx.blobs.result_writer(batch.id)
        offsets = array("q")
        size = rows = 0
        with rows_of(self.ctx, sql, params) as cursor:
            while block := list(islice(cursor, INDEX_EVERY)):
                offsets.append(size)
                recs = [plan.record(r) for r in block]
                if plan.children:
                    self._attach_children(plan, recs)
                data = b"".join(render(rec) for rec in recs)
                writer.write(data)
                size += len(data)
                rows += len(block)
                progress(rows)
        writer.commit((array("q", [INDEX_EVERY, rows, size]) + offsets).tobytes())

    def _attach_children(self, plan: Plan, recs: list[Rec]) -> None:
        parent_ids = [r.id for r in recs if r.id is not None]
        for child in plan.children:
            found: dict[str, list[Rec]] = {}
            sql, params = child.sql(parent_ids)
            with rows_of(self.ctx, sql, params) as cursor:
                for row in cursor:
                    found.setdefault(child.parent_id(row), []).append(child.record(row))
            for rec in recs:
                rec.fields[child.name] = found.get(rec.id or "", [])

    # ---- PK chunking -------------------------------------------------------------------------

    def _split(
        self, job: Job, batch: Batch, owner: str, text: str, pk: pkchunk.PkChunking,
        started: float,
    ) -> bool:  # fmt: skip
        obj = self.ctx.schema.get(job.object)
        assert obj is not None
        field, id_obj = self._chunk_field(obj, pk)
        chunk_text = self._chunk_template(text, field)
        first, last = self._bounds(id_obj)
        start = pk.start_row or first or f"{id_obj.key_prefix}{'0' * 12}"
        ranges = list(pkchunk.ranges(start, last or start, pk.chunk_size))
        # a chunk that does not compile fails the original instead of every chunk
        self._compile(job, chunk_text(*ranges[0]))
        seq = self.ctx.store.allocate("batch", len(ranges))
        chunk_ids = [ids.make_id("751", seq + i) for i in range(len(ranges))]
        for chunk_id, (lo, hi) in zip(chunk_ids, ranges, strict=True):
            self.ctx.blobs.put(f"{chunk_id}.request", chunk_text(lo, hi).encode())
        ms = int((time.perf_counter() - started) * 1000)
        if not self.ctx.store.split_batch(batch, owner, chunk_ids, SPLIT_MESSAGE, ms):
            return False
        self.ctx.wake.set()
        return True

    def _chunk_field(self, obj: SObject, pk: pkchunk.PkChunking) -> tuple[str, SObject]:
        """The field the Id ranges apply to, and the object whose Ids they step through."""
        if pk.parent is None:
            if not (obj.name in pkchunk.SUPPORTED or obj.name.endswith("__c")):
                raise BatchFailed(
                    f"InvalidBatch : PK chunking is not supported for {obj.name}; it is "
                    "supported for custom objects and " + ", ".join(sorted(pkchunk.SUPPORTED))
                )
            return "Id", obj
        parent = self.ctx.schema.get(pk.parent)
        if parent is None:
            raise BatchFailed(f"InvalidBatch : PK chunking parent {pk.parent} is not an object")
        refs = [f for f in obj.fields.values()
                if f.type == "reference" and parent.name in (f.reference_to or ())]  # fmt: skip
        refs.sort(key=lambda f: (f.name != "ParentId", f.name != f"{parent.name}Id", f.name))
        if not refs:
            raise BatchFailed(
                f"InvalidBatch : PK chunking parent {parent.name} is not a parent of {obj.name}"
            )
        return refs[0].name, parent

    def _chunk_template(self, text: str, field: str) -> Callable[[str, str], str]:
        """How a chunk's SOQL is made: the original with the Id range appended to its WHERE
        (or as its WHERE), so the chunk's request starts with the original SOQL."""
        try:
            q = parse(text)
        except SoqlError as e:  # _compile has already accepted it; kept for safety
            raise query_failed(e.code, e.message) from None
        if q.order_by or q.limit is not None or q.offset is not None or q.group_by:
            raise query_failed(
                "MALFORMED_QUERY",
                "PK chunking works only with queries that have no ORDER BY, LIMIT, OFFSET "
                "or GROUP BY",
            )
        base = text.rstrip()
        if q.where is None:
            return lambda lo, hi: f"{base} WHERE {pkchunk.range_condition(field, lo, hi)}"
        appended = f"{base} AND {pkchunk.range_condition(field, '0' * 15, '0' * 15)}"
        try:
            parse(appended)
        except SoqlError:  # a top-level OR: keep its meaning by parenthesising the condition
            head, cond = text[: _start(q.where)], text[_start(q.where) :].rstrip()
            return lambda lo, hi: f"{head}({cond}) AND {pkchunk.range_condition(field, lo, hi)}"
        return lambda lo, hi: f"{base} AND {pkchunk.range_condition(field, lo, hi)}"

    def _bounds(self, obj: SObject) -> tuple[str | None, str | None]:
        """The first and last Id of the object, soft-deleted rows included (they are counted
        in the ranges and left out of `query` results)."""
        out: list[str | None] = []
        for direction in ("ASC", "DESC"):
            plan = compile_for(
                self.ctx, f"SELECT Id FROM {obj.name} ORDER BY Id {direction} LIMIT 1",
                Api.REST, all_rows=True,
            )  # fmt: skip
            sql, params = plan.sql()
            with rows_of(self.ctx, sql, params) as cursor:
                row = next(cursor, None)
            out.append(None if row is None else str(plan.values(row)[0]))
        return out[0], out[1]

    # ---- the API's side ----------------------------------------------------------------------

    def manifest(self, batch: Batch) -> Manifest | None:
        data = self.ctx.blobs.get(f"{batch.id}.result")
        return None if data is None else Manifest.loads(data)

    def result_ids(self, batch: Batch) -> list[str]:
        if batch.state in (BatchState.QUEUED, BatchState.IN_PROGRESS):
            raise ServiceError(Kind.INVALID_BATCH, "Batch not completed")
        if batch.state is BatchState.NOT_PROCESSED:
            return []  # a PK-chunked original, or aborted: Gobblin reads its list too
        manifest = self.manifest(batch)
        if manifest is None:
            raise ServiceError(Kind.INVALID_BATCH, "Records not processed")
        return [p[0] for p in manifest.parts]

    def result(self, job: Job, batch: Batch, raw_id: str) -> Iterator[bytes]:
        manifest = self.manifest(batch) if batch.state is BatchState.COMPLETED else None
        want = raw_id[:15]
        part = next((p for p in (manifest.parts if manifest else []) if p[0] == want), None)
        if manifest is None or part is None:
            raise ServiceError(Kind.INVALID_BATCH, f"Unable to find object: {raw_id}")
        return self._stream(job, batch, manifest, part)

    def _stream(
        self, job: Job, batch: Batch, manifest: Manifest, part: tuple[str, int, int]
    ) -> Iterator[bytes]:
        _, start, end = part
        if job.content_type == "CSV":
            if manifest.rows == 0:
                yield wire.NO_RECORDS
                return
            yield quoted_header(manifest.columns, ",", job.newline)
            yield from self.ctx.blobs.read_result(batch.id, start, end)
            return
        yield wire.RESULT_HEAD[job.content_type]
        skip = wire.RESULT_SKIP[job.content_type] if end > start else 0
        yield from self.ctx.blobs.read_result(batch.id, start + skip, end)
        yield wire.RESULT_TAIL[job.content_type]
