"""A PostgreSQL write transaction: record DML plus the job bookkeeping that commits with it
(the Tx of store/base.py; SQLite's is store/sqlitetx.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from bulkforce.engine.schema import SObject
from bulkforce.model import BatchState, JobState
from bulkforce.store.base import RecordTable, Tx
from bulkforce.store.pgrecords import PgRecords
from bulkforce.store.pgsql import Q, now_iso, wrapped


class PgTx(Tx):
    text_holds_nul = False

    def __init__(self, conn: psycopg.Connection[Any], allocate: Callable[[str, int], int]) -> None:
        self.conn = conn
        self._allocate = allocate  # PostgresStore.allocate

    def records(self, obj: SObject) -> RecordTable:
        return PgRecords(self.conn, obj)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        with self.conn.transaction():  # nested: a SAVEPOINT, rolled back on exception
            yield

    def limit_lock_waits(self, seconds: float) -> None:
        with wrapped():
            self.conn.execute(
                "SELECT set_config('lock_timeout', %s, true)",
                [f"{max(1, round(seconds * 1000))}ms"],
            )

    def allocate(self, counter: str, count: int) -> int:
        # On its own autocommit connection: inside the worker's long transaction the counter
        # row would stay locked and make every other worker wait. A rolled-back batch only
        # leaves a gap in the Ids, which Salesforce's have too.
        return self._allocate(counter, count)

    def finish_batch(
        self, batch_id: str, owner: str, state: BatchState, message: str | None,
        processed: int, failed: int, elapsed_ms: int,
    ) -> bool:  # fmt: skip
        params = {"state": state.value, "message": message, "processed": processed,
                  "failed": failed, "ms": elapsed_ms, "now": now_iso(), "id": batch_id,
                  "owner": owner}  # fmt: skip
        with wrapped():
            return self.conn.execute(Q["finish_batch"], params).rowcount == 1

    def job_state(self, job_id: str) -> tuple[JobState, str | None] | None:
        with wrapped():
            row = self.conn.execute(
                "SELECT state, lease_owner FROM bf_job WHERE id = %s", (job_id,)
            ).fetchone()
        return None if row is None else (JobState(row["state"]), row["lease_owner"])

    def commit_batch(
        self, job_id: str, owner: str, seq: int, processed: int, failed: int, elapsed_ms: int,
        lease_seconds: float,
    ) -> bool:  # fmt: skip
        params = {"processed": processed, "failed": failed, "ms": elapsed_ms, "now": now_iso(),
                  "expires": time.time() + lease_seconds, "id": job_id, "owner": owner,
                  "seq": seq}  # fmt: skip
        with wrapped():
            return self.conn.execute(Q["advance_job"], params).rowcount == 1

    def complete_job(self, job_id: str, owner: str, header: Sequence[str] | None) -> bool:
        params = {
            "now": now_iso(), "id": job_id, "owner": owner,
            "header": None if header is None else json.dumps(list(header)),
        }  # fmt: skip
        with wrapped():
            return self.conn.execute(Q["complete_job"], params).rowcount == 1
