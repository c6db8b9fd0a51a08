"""One internal batch of a Bulk 2.0 job read from its upload and made ready to write: parsed,
coerced and, where the store stages inserts, its rows encoded and its results rendered ahead
(on the worker's prefetch thread for a large job, before the write lock for a small one)."""

from __future__ import annotations

from bulkforce.engine.errors import malformed_rows
from bulkforce.engine.plan import Plan
from bulkforce.engine.prepare import prepare
from bulkforce.engine.stage import stage_insert
from bulkforce.jobs.service import Context
from bulkforce.model import Job, iso, utcnow
from bulkforce.prepare_proc import Chunk
from bulkforce.wire.csvio import FAILED_IDS_SINCE, RowReader, quoted_bodies, render_outcome


def prepare_chunk(
    ctx: Context, job: Job, plan: Plan, rows: RowReader, size: int, cells: int
) -> Chunk | None:
    """The next batch of `rows` (at most `size` rows, fewer once they hold `cells` values),
    or None at the end of the upload."""
    store, schema = ctx.store, ctx.schema
    chunk = rows.next_rows(size, cells)
    if not chunk:
        return None
    bad = malformed_rows(rows.malformed)
    prepared = prepare(schema, plan, chunk, bad, store.text_holds_nul, job.created_by, rows.clean)
    bodies = quoted_bodies(chunk, job.delimiter, job.newline)
    if store.stages_inserts:
        staged = stage_insert(
            schema, plan, prepared, job.created_by, iso(utcnow()), store.allocate,
            store.encode_insert,
        )  # fmt: skip
        if staged is not None and bodies is not None and not any(prepared.errors):
            failed_ids = float(job.api_version) >= FAILED_IDS_SINCE
            staged.results, _ = render_outcome(
                chunk, staged.outcome, job.delimiter, job.newline, failed_ids, bodies
            )  # fmt: skip
        prepared.staged = staged
    return chunk, prepared, bodies
