"""The worker in-process: a failing job must not take later jobs down with it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bulkforce import worker as worker_mod
from bulkforce.boot import build_context
from bulkforce.jobs.access import Caller
from bulkforce.jobs.service import Context, IngestService
from bulkforce.model import JobState
from bulkforce.wire.csvio import RowReader
from bulkforce.worker import Worker

# in-process tests act as an admin: they see every job
ADMIN = Caller("005000000000000AAA", is_admin=True)


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    return build_context(tmp_path / "d", None, [], 10**8)


def submit(svc: IngestService, csv: bytes, **spec: Any) -> str:
    job = svc.insert(svc.create("59.0", {"object": "Contact", "operation": "insert", **spec}))
    sink = svc.open_upload(job.id, ADMIN)
    sink.write(csv)
    sink.finish()
    svc.close(job.id, ADMIN)
    return job.id


def test_internal_error_fails_that_job_and_the_next_job_still_runs(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = IngestService(ctx)
    first = submit(svc, b"LastName\nOne\nTwo\n")
    second = submit(svc, b"LastName\nThree\n")

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(worker_mod, "apply_prepared", boom)
    w = Worker(ctx)
    assert w.run_once()
    monkeypatch.undo()
    assert w.run_once()

    failed = svc.get(first, ADMIN)
    assert failed.state is JobState.FAILED
    assert failed.error_message == "InternalError : RuntimeError: simulated bug"
    assert failed.records_processed == 0
    _, rows = svc.results(first, "unprocessed", ADMIN)
    assert b"".join(rows).decode().splitlines() == ["LastName", '"One"', '"Two"']
    done = svc.get(second, ADMIN)
    assert done.state is JobState.JOB_COMPLETE and done.records_processed == 1


def test_abort_between_batches_leaves_rest_unprocessed(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = IngestService(ctx)
    rows = b"".join(b"N%d\n" % i for i in range(25_000))
    job_id = submit(svc, b"LastName\n" + rows)
    ctx.settings.commit_seconds = 0  # commit after every batch
    reads = []
    real_next_rows = RowReader.next_rows

    def next_rows(self: RowReader, n: int, *cells: int) -> list[list[str]]:
        reads.append(n)
        if len(reads) == 2:  # the first batch has committed; no transaction is open
            svc.abort(job_id, ADMIN)
        return real_next_rows(self, n, *cells)

    monkeypatch.setattr(RowReader, "next_rows", next_rows)
    Worker(ctx).run_once()
    job = svc.get(job_id, ADMIN)
    assert job.state is JobState.ABORTED
    assert job.records_processed == 10_000
    _, ok = svc.results(job_id, "success", ADMIN)
    _, rest = svc.results(job_id, "unprocessed", ADMIN)
    assert len(b"".join(ok).splitlines()) == 1 + 10_000
    unprocessed = b"".join(rest).splitlines()
    assert len(unprocessed) == 1 + 15_000 and unprocessed[1] == b'"N10000"'
