"""Statements sent to PostgreSQL as one query string (store/pgsql.py: one_trip), their values
quoted on this side: what they write must be exactly what separate statements would write,
and a failure must leave nothing of the string behind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import PG_PROBLEM, drop_pg_database, inprocess_context, new_pg_database
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg import pq
from psycopg.rows import dict_row
from worker_helpers import ADMIN

from bulkforce.errors import Kind, ServiceError
from bulkforce.jobs.service import Context, IngestService
from bulkforce.model import JobState
from bulkforce.store.pgblobs import CHUNK, ONE_TRIP_BYTES
from bulkforce.store.pgsql import lazy_commit_small, one_trip

pytestmark = pytest.mark.skipif(bool(PG_PROBLEM), reason=PG_PROBLEM or "")


@pytest.fixture(scope="module")
def conn() -> Iterator[psycopg.Connection[Any]]:
    url = new_pg_database()
    try:
        with psycopg.connect(url, autocommit=True, row_factory=dict_row) as c:
            c.execute("CREATE TABLE t (k text PRIMARY KEY, v bigint)")
            yield c
    finally:
        drop_pg_database(url)


# PostgreSQL text holds any character but NUL
texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))


@settings(max_examples=60, deadline=None)
@given(key=texts, value=st.integers(-(2**63), 2**63 - 1))
def test_values_quoted_on_this_side_arrive_unchanged(
    conn: psycopg.Connection[Any], key: str, value: int
) -> None:
    conn.execute("DELETE FROM t")
    query = "INSERT INTO t (k, v) VALUES (%s, %s) RETURNING k, v"
    row = lazy_commit_small(conn, query, (key, value)).fetchone()
    assert row == {"k": key, "v": value}
    assert conn.info.transaction_status == pq.TransactionStatus.IDLE  # committed
    stored = conn.execute("SELECT k, v FROM t WHERE k = %s", (key,)).fetchall()
    assert stored == [{"k": key, "v": value}]


def test_a_failing_statement_leaves_nothing_of_the_string(
    conn: psycopg.Connection[Any],
) -> None:
    conn.execute("DELETE FROM t")
    statements = [
        ("BEGIN", None),
        ("INSERT INTO t (k, v) VALUES (%s, %s)", ("a", 1)),
        ("INSERT INTO t (k, v) VALUES (%s, %s)", ("a", 2)),  # the same key: refused
        ("COMMIT", None),
    ]
    with pytest.raises(psycopg.errors.UniqueViolation):
        one_trip(conn, statements)
    assert conn.info.transaction_status == pq.TransactionStatus.IDLE
    assert conn.execute("SELECT count(*) AS n FROM t").fetchone() == {"n": 0}
    # and the connection goes on as usual
    one_trip(conn, [statements[0], statements[1], statements[3]])
    assert conn.execute("SELECT k, v FROM t").fetchall() == [{"k": "a", "v": 1}]


@pytest.fixture
def pg_ctx(tmp_path: Path) -> Iterator[Context]:
    with inprocess_context("postgresql", tmp_path / "data") as context:
        yield context


def stored_upload(ctx: Context, job_id: str) -> bytes:
    f = ctx.blobs.open(job_id)
    assert f is not None
    with f:
        return f.read()


@pytest.mark.parametrize(
    "size",
    [
        100,  # one small chunk: sent with the job row's update
        2 * CHUNK + 1000,  # full chunks inserted ahead, a small last one: renamed in the string
        4 * ONE_TRIP_BYTES,  # one chunk too large for a literal: statement by statement
    ],
)
def test_an_upload_is_the_jobs_data_and_a_late_one_changes_nothing(
    pg_ctx: Context, size: int
) -> None:
    svc = IngestService(pg_ctx)
    job = svc.insert(svc.create("59.0", {"object": "Contact", "operation": "insert"}))
    line = b"x,Lovelace'; -- \\ \"\n"
    body = b"FirstName,LastName\n" + line * (size // len(line))
    sink = svc.open_upload(job.id, ADMIN)
    for i in range(0, len(body), 100_000):
        sink.write(body[i : i + 100_000])
    sink.finish()
    assert stored_upload(pg_ctx, job.id) == body
    info = svc.get(job.id, ADMIN)
    assert (info.upload_count, info.upload_rows) == (1, size // len(line))
    late = svc.open_upload(job.id, ADMIN)  # a second PUT, still arriving at the close
    late.write(b"FirstName,LastName\nlate,late\n")
    svc.close(job.id, ADMIN)
    with pytest.raises(ServiceError) as e:
        late.finish()
    assert e.value.kind is Kind.INVALID_JOB_STATE
    assert stored_upload(pg_ctx, job.id) == body  # the closed job keeps its data
    info = svc.get(job.id, ADMIN)
    assert (info.state, info.upload_count) == (JobState.UPLOAD_COMPLETE, 1)
    with pg_ctx.store._conns.borrow() as conn:  # type: ignore[attr-defined]
        left = conn.execute("SELECT count(*) AS n FROM bf_blob WHERE name LIKE 'tmp:%'")
        assert left.fetchone()["n"] == 0  # the late upload's chunks went with it


def test_inside_a_transaction_a_lazy_commit_does_not_end_it(
    conn: psycopg.Connection[Any],
) -> None:
    """The string's BEGIN and COMMIT would commit the caller's transaction halfway."""
    conn.execute("DELETE FROM t")
    with conn.transaction():  # psycopg.Rollback leaves it quietly, rolled back
        conn.execute("INSERT INTO t (k, v) VALUES ('outer', 1)")
        row = lazy_commit_small(conn, "INSERT INTO t (k, v) VALUES (%s, 2) RETURNING v", ("in",))
        assert row.fetchone() == {"v": 2}
        raise psycopg.Rollback()
    assert conn.execute("SELECT count(*) AS n FROM t").fetchone() == {"n": 0}


def test_an_upload_recorded_inside_a_transaction_goes_with_it(pg_ctx: Context) -> None:
    svc = IngestService(pg_ctx)
    job = svc.insert(svc.create("59.0", {"object": "Contact", "operation": "insert"}))
    sink = svc.open_upload(job.id, ADMIN)
    sink.write(b"FirstName,LastName\nAda,Lovelace\n")

    class Undo(Exception):
        pass

    with pytest.raises(Undo), pg_ctx.store.transaction():
        sink.finish()
        raise Undo
    assert svc.get(job.id, ADMIN).upload_count == 0
    assert pg_ctx.blobs.open(job.id) is None
