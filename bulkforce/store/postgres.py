"""PostgreSQL store: all state (jobs, batches, uploads, results, records) in one database, so
API processes and workers on several hosts coordinate only through it.

Work is claimed with `FOR UPDATE SKIP LOCKED` leases that expire; records go in with COPY;
record tables and columns use lower-case names, so `select firstname from contact` works in
psql as users expect.
"""

from __future__ import annotations

import functools
import json
import queue
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import psycopg.errors
from psycopg import pq, sql
from psycopg.rows import dict_row, tuple_row
from psycopg_pool import ConnectionPool, PoolTimeout

from bulkforce.engine.schema import Schema, SObject
from bulkforce.model import Batch, Job, JobState
from bulkforce.store.base import (
    IDLE_READERS,
    Row,
    StoreError,
    Tx,
)
from bulkforce.store.blobs import Blobs, UploadWriter
from bulkforce.store.pgblobs import PgBlobs
from bulkforce.store.pgcopy import CopyPlan, ident
from bulkforce.store.pgrecords import PgRecords, api_values, column_def, pg_type
from bulkforce.store.pgresults import ResultWrites
from bulkforce.store.pgsql import (
    CHANNEL,
    Q,
    lazy_commit,
    lazy_commit_small,
    now_iso,
    one_trip,
    wrapped,
)  # fmt: skip
from bulkforce.store.pgtx import PgTx
from bulkforce.store.pgwakeup import PgWakeup
from bulkforce.store.pool import DEFAULT_POOL_SIZE, POOL_TIMEOUT, ThreadConnections, has_news
from bulkforce.store.records import date_indexes, live_index
from bulkforce.store.rows import RowLike, batch_from_row, job_from_row
from bulkforce.store.sqlbase import SqlStore
from bulkforce.store.wakeup import Wakeup

# Split by concern into pgsql (queries, errors), pgtx (write transactions), pgrecords (record
# tables), pgblobs (blobs), pgresults (background result writes) and pgwakeup (LISTEN/NOTIFY);
# what this module used to define stays importable from here.
__all__ = [
    "CHANNEL",
    "PgBlobs",
    "PgRecords",
    "PgTx",
    "PgWakeup",
    "PostgresStore",
    "Q",
    "column_def",
    "ident",
    "lazy_commit",
    "now_iso",
    "pg_type",
]


_JOB_COLUMNS = frozenset(
    {"error_message", "records_processed", "records_failed", "retries", "header",
     "total_processing_time", "api_active_processing_time", "apex_processing_time",
     "lease_owner", "lease_expires", "batches_done"}
)  # fmt: skip


def check_idle(conn: psycopg.Connection[Any]) -> None:
    """Raise for a pooled or idle connection the server has ended, so it is replaced instead
    of failing the request that gets it. psycopg_pool's own check (an empty query) cost a
    round trip per store operation: 4 of a 1-record job's ~20 API round trips. A session
    the server ended has said so on the socket; only then is the real check run."""
    if conn.closed or has_news(conn.fileno()):
        ConnectionPool.check_connection(conn)


def _tune_for_bulk(conn: psycopg.Connection[Any]) -> None:
    """A worker thread's own connections commit without waiting for the WAL flush. A commit
    lost in a PostgreSQL crash loses a batch's records and its "done" marker together, so the
    batch is simply redone; a claim or an Id block lost with it is taken again."""
    conn.execute("SET synchronous_commit = off")


@contextmanager
def _single(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """Scope of one write statement. Outside a transaction the statement is its own
    (autocommit): one round trip instead of three (BEGIN, statement, COMMIT), as atomic;
    inside the caller's transaction it gets a savepoint, as `_write` would."""
    if conn.info.transaction_status == pq.TransactionStatus.IDLE:
        yield
    else:
        with conn.transaction():
            yield


class PostgresStore(SqlStore):
    Q = Q
    dialect = "postgres"
    text_holds_nul = PgTx.text_holds_nul
    stages_inserts = True
    write_streams = 2

    def __init__(self, url: str, pool_size: int = DEFAULT_POOL_SIZE) -> None:
        self.url = url.replace("postgres://", "postgresql://", 1)
        self.pool_size = pool_size
        self._pools: dict[str, ConnectionPool[psycopg.Connection[Any]]] = {}
        self._pool_lock = threading.Lock()
        self._conns: ThreadConnections[psycopg.Connection[Any]] = ThreadConnections(
            functools.partial(self._pooled, "main"), self._connect, psycopg.Connection.close,
            lambda c: c.closed, side_pooled=functools.partial(self._pooled, "side"),
            tune_pinned=_tune_for_bulk,
        )  # fmt: skip
        self._wakeups: list[PgWakeup] = []
        # Connections for query_rows: a stream holds one (and its read transaction) until it
        # ends, then gives it back for the next.
        self._readers: queue.SimpleQueue[psycopg.Connection[Any]] = queue.SimpleQueue()
        self.results = ResultWrites(self)

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(self.url, autocommit=True, row_factory=dict_row)
        except psycopg.Error as e:
            message = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise StoreError(f"cannot connect to PostgreSQL: {message}") from None

    def _pool(self, name: str) -> ConnectionPool[psycopg.Connection[Any]]:
        pool = self._pools.get(name)
        if pool is None:
            with self._pool_lock:
                pool = self._pools.get(name)
                if pool is None:
                    self._connect().close()  # a bad URL or a down server fails now, with its reason
                    # `check` tests each connection as it is handed out: one the server
                    # terminated is replaced instead of failing the request that gets it
                    pool = self._pools[name] = ConnectionPool(
                        self.url, min_size=1 if name == "main" else 0, max_size=self.pool_size,
                        kwargs={"autocommit": True, "row_factory": dict_row}, open=True,
                        check=check_idle, timeout=POOL_TIMEOUT,
                        max_idle=300, name=f"bulkforce-{name}",
                    )  # fmt: skip
        return pool

    @contextmanager
    def _pooled(self, name: str) -> Iterator[psycopg.Connection[Any]]:
        try:
            with self._pool(name).connection() as conn:
                yield conn
        except PoolTimeout:
            raise StoreError(
                f"no PostgreSQL connection was free within {POOL_TIMEOUT:.0f} s "
                f"(--pool-size {self.pool_size})"
            ) from None

    def _reader(self) -> psycopg.Connection[Any]:
        while True:
            try:
                conn = self._readers.get_nowait()
            except queue.Empty:
                break
            try:
                # one the server dropped while it sat idle (restart, terminated backend) is
                # replaced rather than failing the next query
                check_idle(conn)
                return conn
            except psycopg.Error:
                conn.close()
        try:
            conn = psycopg.connect(self.url, row_factory=tuple_row)
            conn.read_only = True
        except psycopg.Error as e:
            message = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise StoreError(f"cannot connect to PostgreSQL: {message}") from None
        return conn

    def query_rows(
        self, sql: str, params: Sequence[Any], arraysize: int = 2000
    ) -> Iterator[tuple[Any, ...]]:
        conn = self._reader()
        try:
            # a named cursor streams from the server: the result never sits whole in memory
            with wrapped(), conn.cursor(name=f"bf_rows_{uuid.uuid4().hex}") as cur:
                cur.itersize = arraysize
                try:
                    cur.execute(sql, list(params))
                except psycopg.OperationalError:
                    if not conn.broken:
                        raise
                    # The server ended this idle session an instant before it was checked (a
                    # terminated backend says so asynchronously): nothing was read, so the
                    # query runs again on a new connection.
                    conn.close()
                    conn = self._reader()
                    cur = conn.cursor(name=f"bf_rows_{uuid.uuid4().hex}")
                    cur.itersize = arraysize
                    cur.execute(sql, list(params))
                while True:
                    rows = cur.fetchmany(arraysize)
                    if not rows:
                        break
                    yield from rows
        finally:
            try:
                conn.rollback()
                if self._readers.qsize() < IDLE_READERS:
                    self._readers.put(conn)
                else:
                    conn.close()
            except psycopg.Error:
                conn.close()

    def encode_insert(
        self, obj: SObject, columns: Sequence[str], rows: Iterable[Row],
        constants: Mapping[str, Any],
    ) -> object:  # fmt: skip
        # The binary COPY data of the rows. Formatted on the prefetch thread, so that the
        # writer's connection goes from one COPY to the next without it (the backend, not
        # the worker, is what a large insert waits on).
        return CopyPlan(obj, columns, constants).encode(rows)

    def tune_for_bulk(self) -> None:
        # A worker thread keeps its own connections (store/pool.py), tuned by _tune_for_bulk.
        with wrapped():
            self._conns.pin()

    def close(self) -> None:
        for wake in self._wakeups:
            wake.close()
        self.results.close()
        self._conns.release_thread()
        while not self._readers.empty():
            self._readers.get_nowait().close()
        with self._pool_lock:
            pools, self._pools = self._pools, {}
        for pool in pools.values():
            pool.close()

    @contextmanager
    def _write(self) -> Iterator[psycopg.Connection[Any]]:
        with self._conns.borrow() as conn, wrapped(), conn.transaction():
            yield conn

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        with self.results.scope(), self._write() as conn:
            yield PgTx(conn, self.allocate)
            self.results.wait()  # a batch commits only once its result files are stored

    def _run(self, query: str, params: Any = ()) -> int:
        with self._conns.borrow() as conn, wrapped(), _single(conn):
            return int(conn.execute(query, params).rowcount)

    def record_upload(
        self, job_id: str, size: int, problem: str | None, upload: UploadWriter,
        rows: int | None = None,
    ) -> bool:  # fmt: skip
        swap = upload.swap_statements()
        params = {"bytes": size, "problem": problem, "rows": rows, "now": now_iso(), "id": job_id}
        # BEGIN, the job row's update and the swap as one query string, then COMMIT, or
        # ROLLBACK when the job is not Open: two round trips where one by one took five.
        with self._conns.borrow() as conn, wrapped():
            if swap is None or conn.info.transaction_status != pq.TransactionStatus.IDLE:
                # a large last chunk, or inside a transaction (which BEGIN would not nest in)
                return super().record_upload(job_id, size, problem, upload, rows)
            try:
                cur = one_trip(conn, [("BEGIN", None), (Q["record_upload"], params), *swap])
                cur.nextset()
                accepted = cur.rowcount == 1
                conn.execute("COMMIT" if accepted else "ROLLBACK")
            except BaseException:
                if conn.info.transaction_status != pq.TransactionStatus.IDLE:
                    conn.execute("ROLLBACK")
                raise
        return accepted

    def _returning(self, query: Any, params: Any) -> RowLike | None:
        with self._conns.borrow() as conn, wrapped(), _single(conn):
            row: RowLike | None = conn.execute(query, params).fetchone()
        return row

    # No read-only look first as on SQLite: an UPDATE that finds nothing writes nothing here,
    # and a worker that has work saves a round trip.
    def claim_job(self, owner: str, lease_seconds: float) -> Job | None:
        row = self._claim(Q["claim_job"], self._lease(owner, lease_seconds))
        return None if row is None else job_from_row(row)

    def claim_batch(self, owner: str, lease_seconds: float) -> Batch | None:
        row = self._claim(Q["claim_batch"], self._lease(owner, lease_seconds))
        return None if row is None else batch_from_row(row)

    def _claim(self, query: Any, params: Any) -> RowLike | None:
        # Without waiting for the WAL flush (a synchronous commit: 0.2 ms on a quiet bench
        # machine, 4 ms median with a test suite beside it): a claim lost in a crash only
        # leaves the job to be claimed again, and the commit of the work it claimed flushes it.
        with self._conns.borrow() as conn, wrapped():
            row: RowLike | None = self._lazy(conn, query, params).fetchone()
        return row

    def _lazy(self, conn: psycopg.Connection[Any], query: Any, params: Any) -> psycopg.Cursor[Any]:
        """A statement committed without waiting for the WAL flush: a worker thread's own
        connections never wait for it (_tune_for_bulk), so there it is one plain statement;
        elsewhere BEGIN, the setting, the statement and COMMIT go as one query string."""
        if self._conns.pinned:
            return conn.execute(query, params)
        return lazy_commit_small(conn, query, params)

    def allocate(self, counter: str, count: int = 1) -> int:
        # On a connection of its own: inside a worker's long transaction the counter row
        # would stay locked and make every other worker wait. A rolled-back batch only leaves
        # a gap in the Ids, which Salesforce's have too.
        with self._conns.side() as side, wrapped():
            row = self._lazy(side, Q["bump_counter"], (counter, count)).fetchone()
        assert row is not None
        return int(row["value"]) - count

    def _all(self, query: Any, params: Any = ()) -> list[RowLike]:
        with self._conns.borrow() as conn, wrapped():
            rows: list[RowLike] = conn.execute(query, params).fetchall()
        return rows

    def _one(self, query: Any, params: Any = ()) -> dict[str, Any] | None:
        with self._conns.borrow() as conn, wrapped():
            row: dict[str, Any] | None = conn.execute(query, params).fetchone()
        return row

    def migrate(self) -> None:
        with self._write() as conn:
            # serialise concurrent start-ups of several API/worker processes
            conn.execute("SELECT pg_advisory_xact_lock(4242001)")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS bf_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
            )
            row = conn.execute(Q["get_meta"], ("schema_version",)).fetchone()
            version = int(row["value"]) if row else 0
            steps = sorted(int(n.split("_")[1]) for n in Q if n.startswith("migrate_"))
            for step in steps:
                if step > version:
                    conn.execute(Q[f"migrate_{step}"])
                    conn.execute(Q["set_meta"], ("schema_version", str(step)))

    def ensure_tables(self, schema: Schema) -> None:
        with self._write() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(4242002)")
            for obj in schema.objects.values():
                cols = sql.SQL(", ").join(column_def(f) for f in obj.fields.values())
                conn.execute(
                    sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(ident(obj.table), cols)
                )
                have = {
                    r["column_name"]
                    for r in conn.execute(
                        "SELECT column_name FROM information_schema.columns "
                        "WHERE table_schema = current_schema() AND table_name = %s",
                        (obj.table.lower(),),
                    )
                }
                for f in obj.fields.values():
                    if f.name.lower() not in have:
                        conn.execute(
                            sql.SQL("ALTER TABLE {} ADD COLUMN {}").format(
                                ident(obj.table), column_def(f)
                            )
                        )
                conn.execute(
                    sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} ({}) WHERE NOT {}").format(
                        sql.Identifier(live_index(obj).lower()[:63]),
                        ident(obj.table),
                        ident("Id"),
                        ident("IsDeleted"),
                    )
                )
                for name, col in date_indexes(obj):
                    conn.execute(
                        sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} ({}, {})").format(
                            sql.Identifier(name.lower()[:63]),
                            ident(obj.table),
                            ident(col),
                            ident("Id"),
                        )
                    )
                for f in obj.fields.values():
                    if f.name == "Id" or not f.indexed_key:
                        continue
                    kind = "UNIQUE INDEX" if f.unique else "INDEX"
                    name = f"{obj.table}_{f.name}_{'uq' if f.unique else 'ix'}".lower()[:63]
                    conn.execute(
                        sql.SQL("CREATE {} IF NOT EXISTS {} ON {} ({})").format(
                            sql.SQL(kind), sql.Identifier(name), ident(obj.table), ident(f.name)
                        )
                    )

    def transition(
        self, job_id: str, from_states: Iterable[JobState], to_state: JobState, **changes: Any
    ) -> Job | None:
        unknown = set(changes) - _JOB_COLUMNS
        if unknown:
            raise ValueError(f"not job columns: {unknown}")
        sets: list[sql.Composable] = [sql.SQL("state = %s"), sql.SQL("system_modstamp = %s")]
        params: list[Any] = [to_state.value, now_iso()]
        for k, v in changes.items():
            sets.append(sql.SQL("{} = %s").format(sql.Identifier(k)))
            params.append(json.dumps(v) if k == "header" and v is not None else v)
        stmt = sql.SQL("UPDATE bf_job SET {} WHERE id = %s AND state = ANY(%s) RETURNING *").format(
            sql.SQL(", ").join(sets)
        )
        row = self._returning(stmt, [*params, job_id, [s.value for s in from_states]])
        return None if row is None else job_from_row(row)

    def blobs(self, data_dir: Path) -> Blobs:
        return PgBlobs(self)

    def wakeup(self) -> Wakeup:
        wake = PgWakeup(self)
        self._wakeups.append(wake)
        return wake

    def delete_expired(self, terminal_before: str, open_before: str) -> tuple[list[str], int]:
        with self._write() as conn:
            ids = [r["id"] for r in conn.execute(Q["expired_jobs"], {"before": terminal_before})]
            gone = list(ids)
            if ids:
                gone.extend(
                    r["id"]
                    for r in conn.execute("SELECT id FROM bf_batch WHERE job_id = ANY(%s)", (ids,))
                )
                conn.execute("DELETE FROM bf_job WHERE id = ANY(%s)", (ids,))
            aborted = conn.execute(
                Q["abort_stale_open"], {"before": open_before, "now": now_iso()}
            ).rowcount
            conn.execute(Q["stale_batches_not_processed"], {"now": now_iso()})
        return gone, aborted

    # ---- Bulk 1.0 batches --------------------------------------------------------------------

    def abort_job(self, job_id: str, from_states: Iterable[JobState]) -> Job | None:
        with self._write() as conn:
            row = conn.execute(
                "UPDATE bf_job SET state = 'Aborted', system_modstamp = %s "
                "WHERE id = %s AND state = ANY(%s) RETURNING *",
                (now_iso(), job_id, [s.value for s in from_states]),
            ).fetchone()
            if row is not None:
                conn.execute(Q["not_processed"], {"now": now_iso(), "job_id": job_id})
        return None if row is None else job_from_row(row)

    # ---- records outside jobs (REST reads, reset) --------------------------------------------

    def get_record(self, obj: SObject, record_id: str) -> dict[str, Any] | None:
        row = self._one(
            sql.SQL("SELECT * FROM {} WHERE id = %s").format(ident(obj.table)), (record_id,)
        )
        return None if row is None else api_values(obj, row)

    def count_records(self, obj: SObject) -> int:
        row = self._one(sql.SQL("SELECT count(*) AS n FROM {}").format(ident(obj.table)))
        return 0 if row is None else int(row["n"])

    def page_records(
        self, obj: SObject, order_by: str, descending: bool, offset: int, limit: int,
        match: tuple[str, str] | None = None,
    ) -> list[dict[str, Any]]:  # fmt: skip
        where = sql.SQL(" WHERE {} = %s").format(ident(match[0])) if match else sql.SQL("")
        way = sql.SQL("DESC" if descending else "ASC")
        stmt = sql.SQL("SELECT * FROM {t}{w} ORDER BY {o} {d}, id {d} LIMIT %s OFFSET %s").format(
            t=ident(obj.table), w=where, o=ident(order_by), d=way
        )
        params = [*([match[1]] if match else []), limit, offset]
        return [api_values(obj, dict(r)) for r in self._all(stmt, params)]  # type: ignore[call-overload]

    def delete_records(self, obj: SObject, keep_ids: Sequence[str] = ()) -> int:
        stmt = sql.SQL("DELETE FROM {} WHERE id <> ALL(%s::text[])").format(ident(obj.table))
        with self._write() as conn:
            return conn.execute(stmt, (list(keep_ids),)).rowcount

    # ---- logins: users, connected apps, sessions ---------------------------------------------
