"""The worker's part for Bulk 1.0 batches: each batch is read, applied and recorded with its
result file in one transaction (jobs/classic.py holds their state machine; query batches
run in jobs/bulk1query.py)."""

from __future__ import annotations

import io
import time

from bulkforce.engine.dml import apply_chunk
from bulkforce.engine.errors import RecordError, malformed_rows
from bulkforce.engine.outcome import Outcome
from bulkforce.engine.plan import HeaderError, make_plan
from bulkforce.errors import Stop
from bulkforce.jobs.bulk1query import QueryBatches
from bulkforce.jobs.classic import MAX_BATCH_RECORDS, apply_spec
from bulkforce.jobs.service import Context
from bulkforce.model import Batch, BatchState, Job, iso, utcnow
from bulkforce.wire import bulk1
from bulkforce.wire.csvio import CsvFormatError, RowReader
from bulkforce.wire.csvrows import OPEN_QUOTE_AT_END


class ClassicBatches:
    def __init__(self, ctx: Context, owner: str) -> None:
        self.ctx = ctx
        self.owner = owner
        self.queries = QueryBatches(ctx)

    def finish(self, batch: Batch, state: BatchState, message: str | None) -> None:
        with self.ctx.store.transaction() as tx:
            tx.finish_batch(batch.id, self.owner, state, message, 0, 0, 0)

    def _rows(
        self, job: Job, batch: Batch
    ) -> tuple[list[str], list[list[str]], dict[int, RecordError]]:
        """Header, rows, and the record errors of rows that could not be read (CSV only)."""
        payload = self.ctx.blobs.get(f"{batch.id}.request") or b""
        if batch.content_type == "JSON":
            return (*bulk1.parse_json_records(payload), {})
        if batch.content_type == "XML":
            return (*bulk1.parse_xml_records(payload), {})
        reader = RowReader(io.BytesIO(payload), ",")
        header = reader.header()
        if header is None:
            return [], [], {}
        rows = reader.next_rows(MAX_BATCH_RECORDS + 1)
        if OPEN_QUOTE_AT_END in reader.malformed.values():
            raise CsvFormatError(f"InvalidBatch : Failed to parse CSV: {OPEN_QUOTE_AT_END}")
        bad = malformed_rows(reader.malformed)
        if job.spec:
            header, rows = apply_spec(job.spec, header, rows)
        return header, rows, bad

    def process(self, batch: Batch) -> None:
        ctx = self.ctx
        if batch.retries > ctx.settings.max_retries:
            message = f"InternalServerError : retried {batch.retries - 1} times without finishing"
            self.finish(batch, BatchState.FAILED, message)
            return
        job = ctx.store.get_job(batch.job_id)
        obj = ctx.schema.get(job.object) if job else None
        if job is None or obj is None:
            self.finish(
                batch, BatchState.FAILED, "InvalidBatch : The job's object is no longer defined"
            )
            return
        if job.operation.is_query:
            if not self.queries.run(job, batch, self.owner):
                raise Stop()
            return
        started = time.perf_counter()
        try:
            header, rows, bad = self._rows(job, batch)
            plan = (
                make_plan(ctx.schema, obj, job.operation, header, job.external_id_field)
                if header
                else None
            )
        except (CsvFormatError, HeaderError) as e:
            self.finish(batch, BatchState.FAILED, str(e))
            return
        except bulk1.PayloadError as e:
            self.finish(batch, BatchState.FAILED, f"InvalidBatch : {e}")
            return
        with ctx.store.transaction() as tx:
            if plan is None:
                outcome = Outcome([], [], [])
            else:
                outcome = apply_chunk(
                    ctx.schema, plan, tx, rows, job.created_by, iso(utcnow()), bad
                )
            ctx.blobs.put(f"{batch.id}.result", bulk1.results(outcome, job.content_type))
            failed = sum(e is not None for e in outcome.errors)
            ms = int((time.perf_counter() - started) * 1000)
            if not tx.finish_batch(
                batch.id, self.owner, BatchState.COMPLETED, None, len(rows), failed, ms
            ):
                raise Stop()
