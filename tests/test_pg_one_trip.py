"""Statements sent to PostgreSQL as one query string (store/pgsql.py: one_trip), their values
quoted on this side: what they write must be exactly what separate statements would write,
and a failure must leave nothing of the string behind."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from conftest import PG_PROBLEM, drop_pg_database, new_pg_database
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg import pq
from psycopg.rows import dict_row

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
