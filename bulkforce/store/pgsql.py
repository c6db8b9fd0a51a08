"""What every PostgreSQL store module shares: the named queries (PostgreSQL's spelling), driver
errors wrapped as store errors, and the one-round-trip lazy commit."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
import psycopg.errors
from psycopg import pq

from bulkforce.model import iso
from bulkforce.store.base import BadValue, LockWaitTimeout, StoreError, UniqueViolation
from bulkforce.store.queries import load


def _from_sqlite(text: str) -> str:
    """Simple shared queries are written once, for SQLite; this is the PostgreSQL spelling."""
    text = re.sub(r"\bTEXT(\s[^,\n]*?)\s*COLLATE NOCASE", r"CITEXT\1", text)
    text = re.sub(r"\bREAL\b", "DOUBLE PRECISION", text)
    text = re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s", text)
    return text.replace("?", "%s")


# Queries PostgreSQL spells differently live in postgres.sql; the rest are translated.
Q = {name: _from_sqlite(text) for name, text in load("sqlite").items()} | load("postgres")
CHANNEL = "bulkforce_work"


def now_iso() -> str:
    return iso(dt.datetime.now(dt.UTC))


@contextmanager
def wrapped() -> Iterator[None]:
    try:
        yield
    except psycopg.errors.UniqueViolation as e:
        raise UniqueViolation(str(e).splitlines()[0]) from None
    except psycopg.errors.LockNotAvailable as e:  # lock_timeout (Tx.limit_lock_waits)
        raise LockWaitTimeout(str(e).splitlines()[0]) from None
    except (psycopg.DataError, UnicodeEncodeError) as e:  # SQLSTATE class 22: the value's fault
        raise BadValue(str(e).splitlines()[0] if str(e) else type(e).__name__) from None
    except psycopg.Error as e:
        raise StoreError(
            f"database error: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
        ) from None


def lazy_commit(conn: psycopg.Connection[Any], query: str, params: Any) -> psycopg.Cursor[Any]:
    """One statement in its own transaction that does not wait for the WAL flush, in one
    round trip (a pipeline). Only for writes that matter once a later commit uses them: that
    commit's flush covers this one too, since the WAL is written in order. For a statement
    with small values, lazy_commit_small is ~4x quicker."""
    with conn.pipeline(), conn.transaction():
        conn.execute("SET LOCAL synchronous_commit = off")
        cur = conn.execute(query, params)
    return cur


def lazy_commit_small(
    conn: psycopg.Connection[Any], query: str, params: Any
) -> psycopg.Cursor[Any]:
    """lazy_commit as one query string (one_trip): 0.43 ms against 1.6 ms in a pipeline,
    measured on an idle bench machine. Its cursor is at the statement's own result. Inside
    a transaction the string's COMMIT would end it: there it is lazy_commit (a savepoint)."""
    if conn.info.transaction_status != pq.TransactionStatus.IDLE:
        return lazy_commit(conn, query, params)
    cur = one_trip(
        conn,
        [("BEGIN", None), ("SET LOCAL synchronous_commit = off", None), (query, params),
         ("COMMIT", None)],
    )  # fmt: skip
    cur.nextset()
    cur.nextset()
    return cur


def one_trip(
    conn: psycopg.Connection[Any], statements: Sequence[tuple[str, Any]]
) -> psycopg.ClientCursor[Any]:
    """Several statements sent as one query string, their values bound on this side
    (psycopg's ClientCursor, which quotes them as SQL literals): one round trip, where psycopg
    spends one on each statement, BEGIN and COMMIT included, and a pipeline costs more
    Python than the trips it saves. For small values only: a literal is text, bytes twice
    their size. The cursor is at the first statement's result (nextset: the next one). On
    an autocommit connection: a failure rolls back the transaction the string opened."""
    cur = psycopg.ClientCursor(conn)
    text = "; ".join(cur.mogrify(query, params) for query, params in statements)
    try:
        cur.execute(text)
    except BaseException:
        if conn.info.transaction_status == pq.TransactionStatus.INERROR:
            conn.execute("ROLLBACK")
        raise
    return cur
