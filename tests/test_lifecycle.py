"""Retention and retry limits (issue #4), driven in-process so time and deaths are exact."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from worker_helpers import ADMIN, submit

from bulkforce.boot import build_context
from bulkforce.jobs.classic import ClassicService
from bulkforce.jobs.service import Context, IngestService
from bulkforce.model import BatchState, JobState
from bulkforce.store.blobs import BlobGone
from bulkforce.worker import Worker


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Context]:
    # closed after the test: a store left open keeps its checkpoint thread, which acts on
    # its database while later tests run
    context = build_context(tmp_path / "d", None, [], 10**8)
    yield context
    context.store.close()


def test_ended_jobs_and_their_data_are_deleted_after_retention(ctx: Context) -> None:
    svc = IngestService(ctx)
    done = submit(svc, b"LastName\nA\n")
    Worker(ctx).run_once()
    assert svc.get(done, ADMIN).state is JobState.JOB_COMPLETE
    still_open = svc.insert(svc.create("59.0", {"object": "Contact", "operation": "insert"})).id
    w = Worker(ctx)
    w.sweep()  # nothing is old yet
    assert svc.get(done, ADMIN).state is JobState.JOB_COMPLETE
    assert ctx.blobs.open(done) is not None

    # "older than now" must include a job that ended in this very millisecond
    ctx.settings.retention_hours = -0.001
    ctx.settings.open_job_hours = -0.001
    w._next_sweep = 0
    w.sweep()
    assert ctx.store.get_job(done) is None
    assert ctx.blobs.open(done) is None
    with pytest.raises(BlobGone):  # a reader mid-download would see its stream aborted
        list(ctx.blobs.read_results(done, "ok", 1))
    aborted = svc.get(still_open, ADMIN)
    assert aborted.state is JobState.ABORTED
    assert aborted.error_message == "Aborted: the job stayed Open for longer than allowed"


def test_bulk1_jobs_expire_from_creation_and_queued_batches_stop(ctx: Context) -> None:
    classic = ClassicService(ctx)
    job = classic.create("59.0", {"operation": "insert", "object": "Contact", "contentType": "CSV"})
    batch = classic.add_batch(job, "text/csv", b"LastName\nB\n")
    ctx.settings.open_job_hours = -0.001
    w = Worker(ctx)
    w.sweep()  # the Open job is aborted first; its Queued batch will never run
    assert classic.get_batch(job, batch.id).state is BatchState.NOT_PROCESSED
    ctx.settings.retention_hours = -0.001
    w._next_sweep = 0
    w.sweep()
    assert ctx.store.get_job(job.id) is None and ctx.store.get_batch(batch.id) is None
    assert ctx.blobs.get(f"{batch.id}.request") is None


def test_job_fails_after_max_retries_with_rows_unprocessed(ctx: Context) -> None:
    svc = IngestService(ctx)
    job_id = submit(svc, b"LastName\nA\nB\n")
    ctx.settings.max_retries = 2
    # three workers claim the job and die at once (their leases are already expired)
    for n in range(3):
        claimed = ctx.store.claim_job(f"dead-{n}", lease_seconds=-1)
        assert claimed is not None and claimed.id == job_id
    assert svc.get(job_id, ADMIN).retries == 2
    Worker(ctx).run_once()  # the fourth attempt: retries would exceed the limit
    job = svc.get(job_id, ADMIN)
    assert job.state is JobState.FAILED and job.retries == 3
    assert job.error_message == "InternalServerError : retried 2 times without finishing"
    _, rows = svc.results(job_id, "unprocessed", ADMIN)
    assert b"".join(rows).splitlines() == [b"LastName", b'"A"', b'"B"']


def test_batch_fails_after_max_retries(ctx: Context) -> None:
    classic = ClassicService(ctx)
    job = classic.create("59.0", {"operation": "insert", "object": "Contact", "contentType": "CSV"})
    batch = classic.add_batch(job, "text/csv", b"LastName\nC\n")
    ctx.settings.max_retries = 1
    for n in range(2):
        assert ctx.store.claim_batch(f"dead-{n}", lease_seconds=-1) is not None
    Worker(ctx).run_once()
    failed = classic.get_batch(job, batch.id)
    assert failed.state is BatchState.FAILED and failed.retries == 2
    assert failed.state_message == "InternalServerError : retried 1 times without finishing"
