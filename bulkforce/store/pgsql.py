"""What every PostgreSQL store module shares: the named queries (PostgreSQL's spelling), driver
errors wrapped as store errors, and the one-round-trip lazy commit."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import psycopg.errors

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
    commit's flush covers this one too, since the WAL is written in order."""
    with conn.pipeline(), conn.transaction():
        conn.execute("SET LOCAL synchronous_commit = off")
        cur = conn.execute(query, params)
    return cur
