"""Small jobs claimed together commit together (bulkforce/smalljobs.py), and each still ends
as if it had run alone: its records, result files and counters, or nothing of it."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from worker_helpers import ADMIN, submit

from bulkforce import chunk as chunk_mod
from bulkforce import worker as worker_mod
from bulkforce.boot import build_context
from bulkforce.jobs.service import Context, IngestService
from bulkforce.model import JobState
from bulkforce.worker import Worker


class Killed(BaseException):
    """The worker dies here (nothing in the worker catches a BaseException)."""


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Context]:
    context = build_context(tmp_path / "d", None, [], 10**8)
    yield context
    context.store.close()


def five_jobs(svc: IngestService) -> dict[str, list[str]]:
    """Five closed jobs of 1 to 5 rows; each job's third row (if any) has no LastName and
    fails. Maps each job to the marks (FirstName) of its rows."""
    jobs = {}
    for j in range(5):
        marks = [f"j{j}r{i}" for i in range(j + 1)]
        lines = ["FirstName,LastName"] + [
            f"{m}," if i == 2 else f"{m},L{i}" for i, m in enumerate(marks)
        ]
        jobs[submit(svc, ("\n".join(lines) + "\n").encode())] = marks
    return jobs


def stored_marks(ctx: Context) -> Counter[str]:
    table = ctx.schema.get("Contact").table  # type: ignore[union-attr]
    with ctx.store._conns.borrow() as conn:  # type: ignore[attr-defined]
        rows = conn.execute(f"SELECT FirstName FROM {table} WHERE FirstName LIKE 'j%'")
        return Counter(r[0] for r in rows.fetchall())


def result_marks(svc: IngestService, job_id: str, kind: str) -> list[str]:
    lines = b"".join(svc.results(job_id, kind, ADMIN)[1]).decode().splitlines()[1:]
    return [
        next(v.strip('"') for v in line.split(",") if v.strip('"').startswith("j"))
        for line in lines
    ]


def count_transactions(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    opened: list[int] = []
    real = type(ctx.store).transaction

    def transaction(self: Any) -> Any:
        opened.append(1)
        return real(self)

    monkeypatch.setattr(type(ctx.store), "transaction", transaction)
    return opened


def assert_complete(svc: IngestService, job_id: str, marks: list[str]) -> None:
    job = svc.get(job_id, ADMIN)
    failed = marks[2:3]
    assert job.state is JobState.JOB_COMPLETE, job
    assert (job.records_processed, job.records_failed) == (len(marks), len(failed))
    assert result_marks(svc, job_id, "success") == [m for m in marks if m not in failed]
    assert result_marks(svc, job_id, "failed") == failed
    assert result_marks(svc, job_id, "unprocessed") == []


def test_small_jobs_claimed_together_commit_in_one_transaction(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = IngestService(ctx)
    jobs = five_jobs(svc)
    opened = count_transactions(ctx, monkeypatch)
    w = Worker(ctx)
    assert w.run_once()
    assert len(opened) == 1  # one per job before: five
    assert not w.run_once()
    for job_id, marks in jobs.items():
        assert_complete(svc, job_id, marks)
    expected = Counter(m for marks in jobs.values() for m in marks if not m.endswith("r2"))
    assert stored_marks(ctx) == expected


def test_a_job_whose_write_raises_fails_alone_and_leaves_nothing(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = IngestService(ctx)
    jobs = five_jobs(svc)
    bad = list(jobs)[3]
    real = worker_mod.apply_prepared
    written: list[str] = []

    def apply(*args: Any, **kwargs: Any) -> Any:
        outcome = real(*args, **kwargs)  # its rows are written, then the bug
        written.append("x")
        if len(written) == 4:
            raise RuntimeError("simulated bug")
        return outcome

    monkeypatch.setattr(worker_mod, "apply_prepared", apply)
    assert Worker(ctx).run_once()
    job = svc.get(bad, ADMIN)
    assert job.state is JobState.FAILED
    assert job.error_message == "InternalError : RuntimeError: simulated bug"
    assert (job.records_processed, job.batches_done) == (0, 0)
    assert result_marks(svc, bad, "unprocessed") == jobs[bad]
    for job_id, marks in jobs.items():
        if job_id != bad:
            assert_complete(svc, job_id, marks)
    expected = Counter(
        m for j, marks in jobs.items() if j != bad for m in marks if not m.endswith("r2")
    )
    assert stored_marks(ctx) == expected  # none of the failed job's rows stayed


def test_a_job_aborted_before_the_group_writes_rolls_back_alone(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = IngestService(ctx)
    jobs = five_jobs(svc)
    aborted = list(jobs)[1]
    real = Worker._let_writers_in

    def abort_one(self: Worker, limit: float = 1.0) -> None:
        svc.abort(aborted, ADMIN)  # read and prepared with the others; no transaction open
        real(self, limit)

    monkeypatch.setattr(Worker, "_let_writers_in", abort_one)
    assert Worker(ctx).run_once()
    job = svc.get(aborted, ADMIN)
    assert (job.state, job.records_processed, job.batches_done) == (JobState.ABORTED, 0, 0)
    assert result_marks(svc, aborted, "success") == []
    assert result_marks(svc, aborted, "unprocessed") == jobs[aborted]
    for job_id, marks in jobs.items():
        if job_id != aborted:
            assert_complete(svc, job_id, marks)
    assert not any(m.startswith("j1") for m in stored_marks(ctx))


def test_a_crash_in_the_group_loses_nothing_and_applies_nothing_twice(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = IngestService(ctx)
    jobs = five_jobs(svc)
    real = Worker._batch
    batches: list[str] = []

    def batch(self: Worker, *args: Any, **kwargs: Any) -> None:
        real(self, *args, **kwargs)
        batches.append("x")
        if len(batches) == 3:
            raise Killed  # after the third job's writes, before the group's commit

    monkeypatch.setattr(Worker, "_batch", batch)
    with contextlib.suppress(Killed):
        Worker(ctx).run_once()
    for job_id in jobs:
        job = svc.get(job_id, ADMIN)
        assert (job.state, job.records_processed) == (JobState.IN_PROGRESS, 0), job
    assert stored_marks(ctx) == Counter()
    ctx.store.clear_leases()
    monkeypatch.setattr(Worker, "_batch", real)
    assert Worker(ctx).run_once()
    for job_id, marks in jobs.items():
        assert_complete(svc, job_id, marks)
    assert all(n == 1 for n in stored_marks(ctx).values())


def test_jobs_out_of_the_ordinary_take_the_usual_path_beside_a_group(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = IngestService(ctx)
    bad_header = submit(svc, b"FirstName,Nope__c\nx,y\n")
    header_only = submit(svc, b"FirstName,LastName\n")
    jobs = five_jobs(svc)
    monkeypatch.setattr(worker_mod, "BATCH_CELLS", 6)  # the 4- and 5-row jobs: 2 batches
    opened = count_transactions(ctx, monkeypatch)
    w = Worker(ctx)
    while w.run_once():
        pass
    failed = svc.get(bad_header, ADMIN)
    assert failed.state is JobState.FAILED
    assert failed.error_message is not None and "Nope__c" in failed.error_message
    empty = svc.get(header_only, ADMIN)
    assert (empty.state, empty.records_processed) == (JobState.JOB_COMPLETE, 0)
    for job_id, marks in jobs.items():
        assert_complete(svc, job_id, marks)
    wide = [svc.get(j, ADMIN) for j in list(jobs)[3:]]
    assert [j.batches_done for j in wide] == [2, 2]
    # the group of three jobs of one batch, and the two larger jobs' commits (state changes
    # of the odd ones take no transaction of the worker's)
    assert len(opened) == 3


def test_a_job_that_cannot_be_read_for_the_group_fails_alone_on_the_usual_path(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug met while preparing a job for the group must not take the worker (or the
    claim's other jobs) down: the job runs the usual way, which fails it visibly."""
    svc = IngestService(ctx)
    jobs = five_jobs(svc)
    bad = list(jobs)[2]
    real = chunk_mod.prepare

    def prepare(schema: Any, plan: Any, chunk: Any, *args: Any, **kwargs: Any) -> Any:
        if any(row and row[0].startswith("j2") for row in chunk):
            raise RuntimeError("simulated bug")
        return real(schema, plan, chunk, *args, **kwargs)

    monkeypatch.setattr(chunk_mod, "prepare", prepare)
    w = Worker(ctx)
    assert w.run_once()
    assert not w.run_once()
    job = svc.get(bad, ADMIN)
    assert job.state is JobState.FAILED
    assert job.error_message == "InternalError : RuntimeError: simulated bug"
    assert result_marks(svc, bad, "unprocessed") == jobs[bad]
    for job_id, marks in jobs.items():
        if job_id != bad:
            assert_complete(svc, job_id, marks)
