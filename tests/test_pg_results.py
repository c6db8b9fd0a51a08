"""PostgreSQL stores a batch's result files from another connection while the worker goes on
(store/pgresults.py); a batch must still never be committed without them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import inprocess_context

from bulkforce import worker as worker_mod
from bulkforce.jobs.access import Caller
from bulkforce.jobs.service import Context, IngestService
from bulkforce.model import JobState
from bulkforce.store import pgresults
from bulkforce.store.base import StoreError
from bulkforce.store.pgresults import ResultWrites
from bulkforce.worker import Worker

ADMIN = Caller("005000000000000AAA", is_admin=True)


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[Context]:
    with inprocess_context("postgresql", tmp_path / "data") as context:
        yield context


def submit(svc: IngestService, rows: int) -> str:
    job = svc.insert(svc.create("59.0", {"object": "Contact", "operation": "insert"}))
    sink = svc.open_upload(job.id, ADMIN)
    sink.write(b"LastName\n" + b"".join(b"N%d\n" % i for i in range(rows)))
    sink.finish()
    svc.close(job.id, ADMIN)
    return job.id


def names(svc: IngestService, job_id: str, kind: str) -> list[str]:
    _, chunks = svc.results(job_id, kind, ADMIN)
    lines = b"".join(chunks).decode().splitlines()[1:]
    return [line.rsplit(",", 1)[-1].strip('"') for line in lines]


def test_a_job_is_complete_only_with_every_result_file_stored(
    pg: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slow result writes: the worker's commits wait for them, so results read the moment
    the job shows JobComplete hold every row."""
    svc = IngestService(pg)
    monkeypatch.setattr(worker_mod, "BATCH_SIZE", 40)
    monkeypatch.setattr(pgresults, "BACKGROUND_MIN_BYTES", 0)  # as a large batch's
    real = ResultWrites._store

    def slow(self: ResultWrites, params: tuple[Any, ...]) -> None:
        time.sleep(0.1)
        real(self, params)

    monkeypatch.setattr(ResultWrites, "_store", slow)
    job_id = submit(svc, 200)
    assert Worker(pg).run_once()
    job = svc.get(job_id, ADMIN)
    assert job.state is JobState.JOB_COMPLETE and job.batches_done == 5
    assert names(svc, job_id, "success") == [f"N{i}" for i in range(200)]


def test_a_failed_result_write_rolls_its_batch_back_and_the_retry_loses_nothing(
    pg: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = IngestService(pg)
    monkeypatch.setattr(worker_mod, "BATCH_SIZE", 40)
    monkeypatch.setattr(pgresults, "BACKGROUND_MIN_BYTES", 0)  # as a large batch's
    pg.settings.commit_seconds = 0  # a transaction per batch
    real = ResultWrites._store
    seen: list[str] = []

    def failing(self: ResultWrites, params: tuple[Any, ...]) -> None:
        seen.append(params[0])
        if len(seen) == 3:
            raise StoreError("database error: simulated lost connection")
        real(self, params)

    monkeypatch.setattr(ResultWrites, "_store", failing)
    job_id = submit(svc, 200)
    with pytest.raises(StoreError, match="simulated"):
        Worker(pg).run_once()
    job = svc.get(job_id, ADMIN)
    assert job.state is JobState.IN_PROGRESS and job.batches_done == 2
    assert names(svc, job_id, "success") == [f"N{i}" for i in range(80)]
    # the lease of the worker that met the error runs out; another takes the job over
    pg.store.clear_leases()
    assert Worker(pg).run_once()
    job = svc.get(job_id, ADMIN)
    assert job.state is JobState.JOB_COMPLETE and job.records_processed == 200
    assert names(svc, job_id, "success") == [f"N{i}" for i in range(200)]
    assert names(svc, job_id, "failed") == []
    with pg.store._conns.borrow() as conn:  # type: ignore[attr-defined]
        row = conn.execute("SELECT count(*) AS n FROM contact").fetchone()
    assert row["n"] == 200  # each row exactly once in the table


def test_small_results_are_written_in_the_batch_transaction(
    pg: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small job's results go with its batch, on the worker's connection: no hand-off to
    the writing thread and no commit of their own (what a 1-record job would wait on)."""
    svc = IngestService(pg)
    background: list[object] = []
    monkeypatch.setattr(ResultWrites, "_store", lambda self, params: background.append(params))
    job_id = submit(svc, 3)
    assert Worker(pg).run_once()
    assert svc.get(job_id, ADMIN).state is JobState.JOB_COMPLETE
    assert names(svc, job_id, "success") == ["N0", "N1", "N2"]
    assert background == []


def test_a_nested_transaction_rolled_back_does_not_let_the_outer_commit_early(
    pg: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The outer transaction still waits for the result writes made before the inner one."""
    monkeypatch.setattr(pgresults, "BACKGROUND_MIN_BYTES", 0)
    real = ResultWrites._store

    def slow(self: ResultWrites, params: tuple[Any, ...]) -> None:
        time.sleep(0.2)
        real(self, params)

    monkeypatch.setattr(ResultWrites, "_store", slow)
    with pg.store.transaction():
        pg.blobs.write_results("job1", 0, b"ok0\n", b"")
        with pytest.raises(RuntimeError), pg.store.transaction():  # a savepoint rolled back
            raise RuntimeError("rolled back")
        pg.blobs.write_results("job1", 1, b"ok1\n", b"")
    assert b"".join(pg.blobs.read_results("job1", "ok", 2)) == b"ok0\nok1\n"
