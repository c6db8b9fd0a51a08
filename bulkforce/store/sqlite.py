"""SQLite store. One writer at a time (BEGIN IMMEDIATE), WAL so readers never wait on it."""

from __future__ import annotations

import datetime as dt
import json
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import takewhile
from pathlib import Path
from typing import Any

from bulkforce.engine.schema import Schema, SObject
from bulkforce.model import Job, JobState, iso
from bulkforce.store import records as sql
from bulkforce.store.base import (
    IDLE_READERS,
    StoreError,
    Tx,
    UniqueViolation,
)
from bulkforce.store.blobs import Blobs, FileBlobs
from bulkforce.store.pool import DEFAULT_POOL_SIZE, SimplePool, ThreadConnections
from bulkforce.store.rows import RowLike
from bulkforce.store.rows import job_from_row as _job_from_row
from bulkforce.store.sqlbase import SqlStore
from bulkforce.store.sqlitelock import ProcessWriteLock
from bulkforce.store.sqlitetx import Q, SQLiteTx, wrapped
from bulkforce.store.sqlitewal import Checkpoints
from bulkforce.store.wakeup import ThreadWakeup, Wakeup

log = logging.getLogger("bulkforce.store")

BUSY_TIMEOUT_MS = 60_000

_JOB_COLUMNS = frozenset(
    {"error_message", "records_processed", "records_failed", "retries", "header",
     "total_processing_time", "api_active_processing_time", "apex_processing_time",
     "lease_owner", "lease_expires", "batches_done"}
)  # fmt: skip


def _statements(script: str) -> list[str]:
    """A script's statements; a trigger's body holds `;` inside one statement."""
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out


def _reusable(conn: sqlite3.Connection) -> bool:
    """A connection goes back to the pool only outside any transaction."""
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    except sqlite3.Error:
        return False
    return True


def _small(rows: int | None, small_rows: int) -> bool:
    return rows is not None and rows <= small_rows


class SQLiteStore(SqlStore):
    Q = Q
    dialect = "sqlite"
    prepare_in_child = True
    fixed_mmap_threshold = True

    def __init__(self, path: str, pool_size: int = DEFAULT_POOL_SIZE) -> None:
        self.path = path
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.pool_size = pool_size
        self._pool: SimplePool[sqlite3.Connection] = SimplePool(
            self._connect, sqlite3.Connection.close, _reusable, pool_size
        )
        self._conns: ThreadConnections[sqlite3.Connection] = ThreadConnections(
            self._pool.connection, self._connect, sqlite3.Connection.close
        )
        # This process's writers queue on a lock of ours before BEGIN IMMEDIATE: SQLite's busy
        # handler sleeps 1-100 ms between tries, so writers queued inside SQLite started late
        # by up to 100 ms after the lock came free (50 jobs closed at once: 38% of the
        # worker's busy samples were such waits); a lock wakes the next one at once. The busy
        # handler still orders this process against others (a CLI command on the same file).
        # Re-entrant: a nested write fails in BEGIN as before instead of deadlocking here.
        self._writer = threading.RLock()
        # Between this process and the server's other one (API and worker process), the
        # holder of `_writer` queues on an flock: store/sqlitelock.py.
        self._process_lock = ProcessWriteLock(path)
        self._depth = threading.local()
        # Threads queued for the write lock. A worker that re-begins within milliseconds of
        # committing would starve them; it reads this and steps aside (Worker._run_batches).
        # The other process's are announced through the lock files.
        self._waiting = 0
        self._waiting_lock = threading.Lock()
        self._none_waiting = threading.Condition(self._waiting_lock)
        # Read connections for query_rows, reused across threads: a stream holds one until it
        # ends, so it never shares a transaction with the thread's writes.
        self._readers: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._checkpoints = Checkpoints(self._connect, Path(f"{self.path}-wal"))

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA cache_size = -8192")  # workers raise it: tune_for_bulk
            conn.execute("PRAGMA temp_store = MEMORY")
            # Checkpoints run after the write lock is released (store/sqlitewal.py), not
            # inside a COMMIT that holds it.
            conn.execute("PRAGMA wal_autocheckpoint = 0")
        except sqlite3.Error as e:
            raise StoreError(f"cannot open SQLite database {self.path}: {e}") from None
        return conn

    def close(self) -> None:
        self._checkpoints.close()
        self._conns.release_thread()
        self._pool.close()
        while not self._readers.empty():
            self._readers.get_nowait().close()
        self._process_lock.close()

    def blobs(self, data_dir: Path) -> Blobs:
        return FileBlobs(data_dir / "uploads")

    def wakeup(self) -> Wakeup:
        return ThreadWakeup()

    def delete_expired(self, terminal_before: str, open_before: str) -> tuple[list[str], int]:
        with self._write() as conn:
            ids = [r[0] for r in conn.execute(Q["expired_jobs"], {"before": terminal_before})]
            gone = list(ids)
            for job_id in ids:
                gone.extend(
                    r[0]
                    for r in conn.execute("SELECT id FROM bf_batch WHERE job_id = ?", (job_id,))
                )
                conn.execute("DELETE FROM bf_batch WHERE job_id = ?", (job_id,))
                conn.execute(Q["delete_job"], (job_id,))
            aborted = conn.execute(
                Q["abort_stale_open"], {"before": open_before, "now": iso(dt.datetime.now(dt.UTC))}
            ).rowcount
            conn.execute(Q["stale_batches_not_processed"], {"now": iso(dt.datetime.now(dt.UTC))})
        return gone, aborted

    def _reader(self) -> sqlite3.Connection:
        try:
            return self._readers.get_nowait()
        except queue.Empty:
            pass
        with wrapped():
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA query_only = ON")
            conn.execute("PRAGMA temp_store = MEMORY")
        return conn

    def query_rows(
        self, sql: str, params: Sequence[Any], arraysize: int = 2000
    ) -> Iterator[tuple[Any, ...]]:
        conn = self._reader()
        cur = None
        try:
            with wrapped():
                cur = conn.execute(sql, list(params))
            while True:
                with wrapped():
                    rows = cur.fetchmany(arraysize)
                if not rows:
                    return
                yield from rows
        finally:
            if cur is not None:
                cur.close()  # ends the statement's read snapshot
            if self._readers.qsize() < IDLE_READERS:
                self._readers.put(conn)
            else:
                conn.close()

    def claim_jobs(
        self, owner: str, lease_seconds: float, small_rows: int, limit: int
    ) -> list[Job]:
        # One process owns a SQLite database, so no worker elsewhere waits for the jobs
        # claimed here; a burst of small jobs then costs one write-lock hand-off per `limit`
        # jobs to claim rather than one each.
        if self._one(Q["claimable_job"], {"clock": time.time()}) is None:
            return []
        lease = self._lease(owner, lease_seconds)
        with self._write() as conn:
            found = conn.execute(Q["claim_candidates"], {**lease, "limit": limit}).fetchall()
            if not found:
                return []
            # the first, then the small ones behind it up to the first large one (in order:
            # a large job is never passed over by small ones closed after it)
            order = [found[0]["id"]]
            if _small(found[0]["upload_rows"], small_rows):
                small = takewhile(lambda row: _small(row["upload_rows"], small_rows), found[1:])
                order += [row["id"] for row in small]
            rows = conn.execute(Q["claim_ids"], {**lease, "ids": json.dumps(order)}).fetchall()
        jobs = {job.id: job for job in map(_job_from_row, rows)}
        return [jobs[i] for i in order]

    def writers_waiting(self) -> int:
        return self._waiting or int(self._process_lock.others_waiting())

    def let_writers_in(self, limit: float) -> None:
        # This process's: woken when the last queued writer got the lock, not by polling (in
        # a burst of small jobs the worker comes here once per job). The other process's:
        # polled, each try a system call.
        deadline = time.monotonic() + limit
        with self._none_waiting:
            self._none_waiting.wait_for(lambda: not self._waiting, timeout=limit)
        self._process_lock.wait_for_no_waiters(deadline)

    def release_memory(self) -> None:
        # The worker's 32 MB page cache refills from the OS's file cache as the next job
        # needs it; held while idle it stacked under the next job's peak (bench: 316 MB).
        with wrapped():
            self._conns.pin().execute("PRAGMA shrink_memory")

    def tune_for_bulk(self) -> None:
        # Index pages of a large upsert key stay hot across batches; 32 MB per worker keeps
        # two workers' peak RSS near 220 MB on the 1M-row bench (64 MB: 285 MB, no faster).
        self._conns.pin().execute("PRAGMA cache_size = -32768")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._conns.borrow() as conn:
            with self._write_lock():
                with wrapped():
                    conn.execute("BEGIN IMMEDIATE")
                changes = conn.total_changes
                try:
                    yield conn
                except sqlite3.IntegrityError as e:
                    conn.execute("ROLLBACK")
                    raise UniqueViolation(str(e)) from None
                except sqlite3.Error as e:
                    conn.execute("ROLLBACK")
                    raise StoreError(f"database error: {e}") from None
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                with wrapped():
                    conn.execute("COMMIT")
            self._checkpoints.after_commit(conn, conn.total_changes - changes)

    @contextmanager
    def _write_lock(self) -> Iterator[None]:
        depth: int = getattr(self._depth, "n", 0)
        with self._waiting_lock:
            self._waiting += 1
            if self._waiting == 1:
                self._process_lock.announce(True)
        try:
            # as long as SQLite itself would wait (busy_timeout), then the same error
            got = self._writer.acquire(timeout=BUSY_TIMEOUT_MS / 1000)
            if got and not depth:
                try:
                    self._process_lock.acquire()
                except BaseException:
                    self._writer.release()
                    raise
        finally:
            with self._waiting_lock:
                self._waiting -= 1
                if not self._waiting:
                    self._process_lock.announce(False)
                    self._none_waiting.notify_all()
        if not got:
            raise StoreError("database error: database is locked")
        self._depth.n = depth + 1
        try:
            yield
        finally:
            self._depth.n = depth
            if not depth:
                self._process_lock.release()
            self._writer.release()

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        with self._write() as conn:
            yield SQLiteTx(conn)

    def _all(self, query: str, params: Any = ()) -> list[RowLike]:
        with self._conns.borrow() as conn, wrapped():
            rows: list[RowLike] = conn.execute(query, params).fetchall()
        return rows

    def _one(self, query: str, params: Any = ()) -> sqlite3.Row | None:
        with self._conns.borrow() as conn, wrapped():
            row: sqlite3.Row | None = conn.execute(query, params).fetchone()
        return row

    def migrate(self) -> None:
        """Apply the numbered `migrate_N` queries not yet applied, each in one transaction."""
        with self._write() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS bf_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
            )
            row = conn.execute(Q["get_meta"], ("schema_version",)).fetchone()
        version = int(row[0]) if row else 0
        steps = sorted(int(name.split("_")[1]) for name in Q if name.startswith("migrate_"))
        for step in steps:
            if step <= version:
                continue
            with self._write() as conn:
                # statement by statement: executescript would COMMIT our transaction
                for stmt in _statements(Q[f"migrate_{step}"]):
                    conn.execute(stmt)
                conn.execute(Q["set_meta"], ("schema_version", str(step)))

    def ensure_tables(self, schema: Schema) -> None:
        with self._write() as conn:
            for obj in schema.objects.values():
                conn.execute(sql.create_table(obj))
                have = {
                    r[1].lower() for r in conn.execute(f"PRAGMA table_info({sql.q(obj.table)})")
                }
                for f in obj.fields.values():
                    if f.name.lower() not in have:
                        conn.execute(
                            f"ALTER TABLE {sql.q(obj.table)} ADD COLUMN {sql.column_def(obj, f)}"
                        )
                for stmt in sql.index_statements(obj):
                    conn.execute(stmt)

    def transition(
        self, job_id: str, from_states: Iterable[JobState], to_state: JobState, **changes: Any
    ) -> Job | None:
        unknown = set(changes) - _JOB_COLUMNS
        if unknown:
            raise ValueError(f"not job columns: {unknown}")
        states = [s.value for s in from_states]
        sets = ["state = ?", "system_modstamp = ?"]
        params: list[Any] = [to_state.value, iso(dt.datetime.now(dt.UTC))]
        for k, v in changes.items():
            sets.append(f"{k} = ?")
            params.append(json.dumps(v) if k == "header" and v is not None else v)
        marks = ", ".join("?" for _ in states)
        stmt = (
            f"UPDATE bf_job SET {', '.join(sets)} WHERE id = ? AND state IN ({marks}) RETURNING *"
        )
        with self._write() as conn:
            row = conn.execute(stmt, [*params, job_id, *states]).fetchone()
        return None if row is None else _job_from_row(row)

    # ---- Bulk 1.0 batches --------------------------------------------------------------------

    def abort_job(self, job_id: str, from_states: Iterable[JobState]) -> Job | None:
        states = [s.value for s in from_states]
        now = iso(dt.datetime.now(dt.UTC))
        marks = ", ".join("?" for _ in states)
        with self._write() as conn:
            row = conn.execute(
                f"UPDATE bf_job SET state = 'Aborted', system_modstamp = ? "
                f"WHERE id = ? AND state IN ({marks}) RETURNING *",
                [now, job_id, *states],
            ).fetchone()
            if row is not None:
                conn.execute(Q["not_processed"], {"now": now, "job_id": job_id})
        return None if row is None else _job_from_row(row)

    # ---- records and usage for the REST resources (issue #5) ---------------------------------

    def get_record(self, obj: SObject, record_id: str) -> dict[str, Any] | None:
        row = self._one(sql.select_by_id_sql(obj.table), (record_id,))
        return None if row is None else dict(row)

    def count_records(self, obj: SObject) -> int:
        row = self._one(sql.count_sql(obj.table))
        return 0 if row is None else int(row["n"])

    def page_records(
        self, obj: SObject, order_by: str, descending: bool, offset: int, limit: int,
        match: tuple[str, str] | None = None,
    ) -> list[dict[str, Any]]:  # fmt: skip
        stmt = sql.page_sql(obj.table, order_by, descending, match[0] if match else None)
        params = [*([match[1]] if match else []), limit, offset]
        return [dict(r) for r in self._all(stmt, params)]  # type: ignore[call-overload]

    def delete_records(self, obj: SObject, keep_ids: Sequence[str] = ()) -> int:
        with self._write() as conn, wrapped():
            return conn.execute(sql.delete_all_sql(obj.table, len(keep_ids)), keep_ids).rowcount

    # ---- logins: users, connected apps, sessions (issue #6) ----------------------------------
