"""Query result files and query jobs driven in-process on SQLite and PostgreSQL, so deaths,
aborts and page boundaries are exact: pages starting at any row (inside an index block, across
PostgreSQL's 1 MiB chunks) hold exactly the right rows; a job aborted while it runs stays
Aborted without a result; a job whose worker died is finished by the next."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import inprocess_context

from bulkforce.jobs.access import Caller
from bulkforce.jobs.query import QueryJobService, run_query_job
from bulkforce.jobs.results import compile_for, page_bytes, result_index, write_csv_result
from bulkforce.jobs.service import Context, IngestService
from bulkforce.model import JobState
from bulkforce.soql import Api
from bulkforce.worker import Worker

ADMIN = Caller("005000000000000AAA", is_admin=True)
ROWS = 2600  # three index blocks of 1,000 rows; ~1.3 MB, over one PostgreSQL chunk


@pytest.fixture(params=["sqlite", "postgresql"])
def ctx(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Context]:
    with inprocess_context(request.param, tmp_path / "d") as context:
        yield context


def _value(i: int) -> str:
    # quotes, delimiters and line breaks inside values, and rows of different lengths
    return f'row {i}, "q"\n' + "x" * (i % 400) + ("\r\n" if i % 7 == 0 else "")


def _load(ctx: Context) -> None:
    svc = IngestService(ctx)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_ALL)
    w.writerow(["LastName", "Description"])
    w.writerows([f"n{i:05d}", _value(i)] for i in range(ROWS))
    job = svc.insert(svc.create("59.0", {"object": "Contact", "operation": "insert"}))
    sink = svc.open_upload(job.id, ADMIN)
    sink.write(buf.getvalue().encode())
    sink.finish()
    svc.close(job.id, ADMIN)
    while Worker(ctx).run_once():
        pass
    assert svc.get(job.id, ADMIN).state is JobState.JOB_COMPLETE


def test_pages_start_at_any_row(ctx: Context) -> None:
    _load(ctx)
    plan = compile_for(ctx, "SELECT LastName, Description FROM Contact", Api.BULK2)
    assert write_csv_result(ctx, "k1", plan, ",", "\r\n") == ROWS
    index = result_index(ctx, "k1")
    assert index is not None and index.rows == ROWS
    _, whole = page_bytes(ctx, "k1", index, 0, ROWS, "\r\n")
    everything = list(csv.reader(io.StringIO(b"".join(whole).decode(), newline="")))
    assert everything == [[f"n{i:05d}", _value(i)] for i in range(ROWS)]
    for start, count in ((0, 1), (999, 2), (1000, 1), (1234, 777), (1999, 1000), (2599, 5),
                         (2600, 10), (1, 2599)):  # fmt: skip
        n, body = page_bytes(ctx, "k1", index, start, count, "\r\n")
        got = list(csv.reader(io.StringIO(b"".join(body).decode(), newline="")))
        assert n == len(got) == max(0, min(count, ROWS - start))
        assert got == everything[start : start + count], (start, count)


def test_aborted_while_running_and_taken_over(ctx: Context) -> None:
    _load(ctx)
    svc = QueryJobService(ctx)
    job = svc.create(
        "59.0", {"operation": "query", "query": "SELECT Id FROM Contact"}, ADMIN.user_id
    )
    claimed = ctx.store.claim_job("w1", lease_seconds=60)
    assert claimed is not None and claimed.id == job.id
    svc.abort(job.id, ADMIN)
    ctx.settings.lease_seconds = 0  # renew (and so notice the abort) after the first block
    run_query_job(ctx, claimed, "w1")
    after = svc.get(job.id, ADMIN)
    assert after.state is JobState.ABORTED and after.records_processed == 0
    assert result_index(ctx, job.id) is None

    # a worker that died mid-job: its lease expires and the next one finishes the job
    ctx.settings.lease_seconds = 60
    job = svc.create(
        "59.0", {"operation": "query", "query": "SELECT Id FROM Contact"}, ADMIN.user_id
    )
    assert ctx.store.claim_job("dead", lease_seconds=-1) is not None
    assert Worker(ctx).run_once()
    done = svc.get(job.id, ADMIN)
    assert done.state is JobState.JOB_COMPLETE and done.retries == 1
    assert done.records_processed == ROWS
    page = svc.results(job.id, "59.0", None, None, ADMIN)
    assert page.rows == ROWS and page.locator == "null"
    assert len(b"".join(page.body).decode().splitlines()) == ROWS
