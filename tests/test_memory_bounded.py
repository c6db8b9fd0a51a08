"""A Bulk 2.0 job's memory is bounded by the values of an internal batch, not its rows
(issue #9, item 13).

An internal batch ends at BATCH_SIZE rows or once it holds BATCH_CELLS values: 100 rows of
150,000 one-character values grew the server by ~310 MB as one batch. Batches then differ in
size, so a resumed worker and the unprocessed-records file skip the records processed, not
`batches_done * BATCH_SIZE` rows.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from bulk2_helpers import BASE, create, put
from conftest import Server, inprocess_context, wait_for_job
from hypothesis import given, settings
from hypothesis import strategies as st
from rss_helpers import peak_rss

from bulkforce import worker as worker_mod
from bulkforce.jobs.access import Caller
from bulkforce.jobs.service import Context, IngestService
from bulkforce.model import JobState
from bulkforce.store.base import Tx
from bulkforce.wire.csvio import RowReader
from bulkforce.wire.csvrows import CsvFormatError
from bulkforce.worker import Worker

ADMIN = Caller("005000000000000AAA", is_admin=True)
SCHEMA = Path(__file__).parent / "data" / "test_schema.json"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_wide_rows_complete_without_ballooning(
    make_server: Callable[..., Server], backend: str
) -> None:
    rows, width = 100, 150_000
    line = ",".join(["x"] * width)  # 299,999 characters: under the line limit
    body = ("LastName\n" + "\n".join([line] * rows) + "\n").encode()
    srv = make_server(backend=backend)
    with srv.client() as c:
        job = create(c, "Contact", "insert")["id"]
        assert put(c, job, body).status_code == 201
        with peak_rss(srv) as rss:
            assert c.patch(f"{BASE}/{job}", json={"state": "UploadComplete"}).status_code == 200
            info = wait_for_job(c, job, timeout=300)
        grew = rss.growth
        assert info["state"] == "JobComplete", info
        assert info["numberRecordsProcessed"] == rows, info
        assert info["numberRecordsFailed"] == rows, info  # too many values: each its own error
        r = c.get(f"{BASE}/{job}/failedResults")
        assert r.status_code == 200
        assert len(r.content.decode().splitlines()) == rows + 1
    assert grew < 150 << 20, f"RSS grew {grew >> 20} MB"


VALUES = st.sampled_from(["a", "", '"q,1"', '"x""y"', 'a"b', '"ok" z', '"l1\nl2"'])


def _read_all(data: bytes, size: int, cells: int) -> tuple[list[list[str]], dict[int, str], str]:
    """Every row, malformed rows indexed from the first, and the error that ended reading."""
    reader = RowReader(io.BytesIO(data), ",")
    rows: list[list[str]] = []
    bad: dict[int, str] = {}
    try:
        reader.header()
        while chunk := reader.next_rows(size, cells):
            assert len(chunk) <= size
            # the row that reaches the budget ends the chunk (a blank line holds no value)
            assert sum(len(r) for r in chunk[:-1] if r != [""]) < cells, chunk
            bad.update({len(rows) + i: p for i, p in reader.malformed.items()})
            rows += chunk
    except CsvFormatError as e:
        return rows, bad, str(e)
    return rows, bad, ""


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(st.lists(VALUES, min_size=0, max_size=6), max_size=30),
    size=st.integers(1, 9),
    cells=st.integers(1, 12),
    tail=st.sampled_from(["", "\n\n", 'x,"unterminated\n', "\xff"]),
)
def test_reads_cut_by_the_cell_budget_join_up_to_the_whole_upload(
    rows: list[list[str]], size: int, cells: int, tail: str
) -> None:
    data = ("h1,h2\n" + "".join(",".join(r) + "\n" for r in rows)).encode()
    data += tail.encode("latin-1")  # "\xff": invalid UTF-8 at the end
    assert _read_all(data, size, cells) == _read_all(data, 10_000, 10**9)


class Killed(BaseException):
    """The worker dies here (nothing in the worker catches a BaseException)."""


@pytest.fixture(params=["sqlite", "postgresql"])
def ctx(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Context]:
    with inprocess_context(request.param, tmp_path / "data", [SCHEMA]) as context:
        yield context


def _upload(ctx: Context) -> tuple[str, list[str]]:
    """A Widget__c job of rows 1 to 7 values wide (a wide one fails: too many values)."""
    svc = IngestService(ctx)
    job = svc.insert(svc.create("59.0", {"object": "Widget__c", "operation": "insert"}))
    marks = [f"w{job.id[-6:]}r{i}" for i in range(30)]
    lines = ["Name,Notes__c"]
    for i, m in enumerate(marks):
        lines.append(",".join([f"n{i}", m] + [""] * (i % 3 * 2)))  # 2, 4 or 6 values
    sink = svc.open_upload(job.id, ADMIN)
    sink.write(("\n".join(lines) + "\n").encode())
    sink.finish()
    svc.close(job.id, ADMIN)
    ctx.settings.commit_seconds = 0  # one commit per batch: the kill loses only its own
    return job.id, marks


def _marks(chunks: Iterator[bytes]) -> list[str]:
    rows = list(csv.reader(io.StringIO(b"".join(chunks).decode(), newline="")))[1:]
    return [next(v for v in row if v.startswith("w")) for row in rows]


def test_killed_worker_resumes_after_batches_cut_by_the_cell_budget(ctx: Context) -> None:
    job_id, marks = _upload(ctx)
    seen = itertools.count()
    real_batch = Worker._batch

    def batch(self: Worker, tx: Tx, *args: Any, **kwargs: Any) -> None:
        real_batch(self, tx, *args, **kwargs)
        if next(seen) == 3:
            raise Killed  # after the 4th batch's writes, before its commit

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(worker_mod, "BATCH_SIZE", 5)
        mp.setattr(worker_mod, "BATCH_CELLS", 7)  # 2 to 4 rows a batch, never 5
        mp.setattr(Worker, "_batch", batch)
        with contextlib.suppress(Killed):
            Worker(ctx).run_once()
        job = ctx.store.get_job(job_id)
        assert job.state is JobState.IN_PROGRESS and job.batches_done == 3, job
        assert job.records_processed < 3 * 5  # the batches were cut short
        ctx.store.clear_leases()
        mp.setattr(Worker, "_batch", real_batch)
        assert Worker(ctx).run_once()
    svc = IngestService(ctx)
    job = svc.get(job_id, ADMIN)
    assert job.state is JobState.JOB_COMPLETE, job
    ok = _marks(svc.results(job_id, "success", ADMIN)[1])
    bad = _marks(svc.results(job_id, "failed", ADMIN)[1])
    assert Counter(ok + bad) == Counter(marks)  # every row once: none skipped, none twice
    assert job.records_processed == len(marks) and job.records_failed == len(bad) == 20


def test_unprocessed_rows_follow_batches_cut_by_the_cell_budget(ctx: Context) -> None:
    job_id, marks = _upload(ctx)
    svc = IngestService(ctx)
    groups = itertools.count()
    real_let_in = Worker._let_writers_in

    def let_writers_in(self: Worker, *limit: float) -> None:
        if next(groups) == 4:  # before the fifth batch's transaction: none is open
            svc.abort(job_id, ADMIN)
        real_let_in(self, *limit)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(worker_mod, "BATCH_SIZE", 5)
        mp.setattr(worker_mod, "BATCH_CELLS", 7)
        mp.setattr(Worker, "_let_writers_in", let_writers_in)
        Worker(ctx).run_once()
    job = svc.get(job_id, ADMIN)
    # Two batches at once (PostgreSQL, bulkforce.streams): the one before may still be
    # in flight at the abort, and is then not committed either.
    assert job.state is JobState.ABORTED, job
    assert job.batches_done == 4 or (ctx.store.write_streams > 1 and job.batches_done == 3), job
    done = _marks(svc.results(job_id, "success", ADMIN)[1])
    done += _marks(svc.results(job_id, "failed", ADMIN)[1])
    rest = _marks(svc.results(job_id, "unprocessed", ADMIN)[1])
    assert len(done) == job.records_processed < 4 * 5
    assert Counter(done + rest) == Counter(marks)
    assert rest == marks[len(done) :]
