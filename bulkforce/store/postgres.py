"""PostgreSQL store: all state (jobs, batches, uploads, results, records) in one database, so
API processes and workers on several hosts coordinate only through it.

Work is claimed with `FOR UPDATE SKIP LOCKED` leases that expire; records go in with COPY;
record tables and columns use lower-case names, so `select firstname from contact` works in
psql as users expect.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import json
import queue
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO

import psycopg
import psycopg.errors
from psycopg import pq, sql
from psycopg.rows import dict_row, tuple_row
from psycopg_pool import ConnectionPool, PoolTimeout

from bulkforce.engine.schema import NUMBER_TYPES, Field, Schema, SObject
from bulkforce.model import Batch, BatchState, Job, JobState, iso
from bulkforce.store.base import (
    IDLE_READERS,
    BadValue,
    RecordTable,
    Row,
    StoreError,
    Tx,
    UniqueViolation,
)
from bulkforce.store.blobs import BlobGone, Blobs, ResultWriter, UploadWriter
from bulkforce.store.pgblobs import CHUNK, PgResultWriter
from bulkforce.store.pgcopy import (
    STAGE,
    STAGE_MIN_ROWS,
    CopyPlan,
    copy_sql,
    stage_sql,
    update_from_stage_sql,
)
from bulkforce.store.pool import DEFAULT_POOL_SIZE, POOL_TIMEOUT, ThreadConnections
from bulkforce.store.queries import load
from bulkforce.store.records import date_indexes, live_index
from bulkforce.store.rows import RowLike, batch_from_row, job_from_row
from bulkforce.store.sqlbase import SqlStore
from bulkforce.store.wakeup import Wakeup


def _from_sqlite(text: str) -> str:
    """Simple shared queries are written once, for SQLite; this is the PostgreSQL spelling."""
    text = re.sub(r"\bTEXT(\s[^,\n]*?)\s*COLLATE NOCASE", r"CITEXT\1", text)
    text = re.sub(r"\bREAL\b", "DOUBLE PRECISION", text)
    text = re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s", text)
    return text.replace("?", "%s")


# Queries PostgreSQL spells differently live in postgres.sql; the rest are translated.
Q = {name: _from_sqlite(text) for name, text in load("sqlite").items()} | load("postgres")
CHANNEL = "bulkforce_work"

_JOB_COLUMNS = frozenset(
    {"error_message", "records_processed", "records_failed", "retries", "header",
     "total_processing_time", "api_active_processing_time", "apex_processing_time",
     "lease_owner", "lease_expires", "batches_done"}
)  # fmt: skip


def now_iso() -> str:
    return iso(dt.datetime.now(dt.UTC))


@contextmanager
def _wrapped() -> Iterator[None]:
    try:
        yield
    except psycopg.errors.UniqueViolation as e:
        raise UniqueViolation(str(e).splitlines()[0]) from None
    except (psycopg.DataError, UnicodeEncodeError) as e:  # SQLSTATE class 22: the value's fault
        raise BadValue(str(e).splitlines()[0] if str(e) else type(e).__name__) from None
    except psycopg.Error as e:
        raise StoreError(
            f"database error: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
        ) from None


def _api_values(obj: SObject, row: Mapping[str, Any]) -> dict[str, Any]:
    """A row by API names, with values as the SQLite store returns them (text dates)."""
    out: dict[str, Any] = {}
    for f in obj.fields.values():
        value = row.get(f.name.lower())
        if isinstance(value, dt.datetime):
            value = iso(value)
        elif isinstance(value, dt.date | dt.time):
            value = value.isoformat()
        elif isinstance(value, Decimal):
            value = float(value)
        out[f.name] = value
    return out


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


def lazy_commit(conn: psycopg.Connection[Any], query: str, params: Any) -> psycopg.Cursor[Any]:
    """One statement in its own transaction that does not wait for the WAL flush, in one
    round trip (a pipeline). Only for writes that matter once a later commit uses them: that
    commit's flush covers this one too, since the WAL is written in order."""
    with conn.pipeline(), conn.transaction():
        conn.execute("SET LOCAL synchronous_commit = off")
        cur = conn.execute(query, params)
    return cur


def ident(name: str) -> sql.Identifier:
    return sql.Identifier(name.lower())


def pg_type(f: Field) -> str:
    if f.type == "boolean":
        return "BOOLEAN"
    if f.type == "int":
        return "INTEGER"
    if f.type == "long":
        return "BIGINT"
    if f.type in NUMBER_TYPES:
        return f"NUMERIC({f.precision},{f.scale})" if f.precision else "DOUBLE PRECISION"
    if f.type == "date":
        return "DATE"
    if f.type == "datetime":
        return "TIMESTAMPTZ"
    if f.type == "time":
        return "TIME"
    if f.indexed_key and not f.case_sensitive and f.name != "Id":
        return "CITEXT"  # Salesforce matches external ids and unique text case-insensitively
    return "TEXT"


def column_def(f: Field) -> sql.Composable:
    extra = ""
    if f.name == "Id":
        extra = " PRIMARY KEY"
    elif f.name == "IsDeleted":
        extra = " NOT NULL DEFAULT FALSE"
    return sql.SQL("{} {}{}").format(ident(f.name), sql.SQL(pg_type(f)), sql.SQL(extra))


class PgRecords(RecordTable):
    def __init__(self, conn: psycopg.Connection[Any], obj: SObject) -> None:
        self.conn = conn
        self.obj = obj
        self.table = ident(obj.table)

    def _cols(self, columns: Sequence[str]) -> sql.Composable:
        return sql.SQL(", ").join(ident(c) for c in columns)

    def insert(
        self, columns: Sequence[str], rows: Iterable[Row], constants: Mapping[str, Any] = {}
    ) -> None:
        plan = CopyPlan(self.obj, columns, constants)
        stmt = copy_sql(self.table, [*columns, *constants])
        with _wrapped(), self.conn.cursor() as cur, cur.copy(stmt) as copy:
            copy.set_types(plan.types)
            for row in plan.rows(rows):
                copy.write_row(row)

    def update(
        self, columns: Sequence[str], rows: Iterable[Row], constants: Mapping[str, Any] = {}
    ) -> None:
        rows = list(rows)
        if len(rows) >= STAGE_MIN_ROWS:
            self._update_staged(columns, rows, constants)
            return
        names = [*columns, *constants]
        sets = sql.SQL(", ").join(sql.SQL("{} = %s").format(ident(c)) for c in names)
        stmt = sql.SQL("UPDATE {} SET {} WHERE id = %s").format(self.table, sets)
        extra = tuple(constants.values())
        # rows end with the Id; the constants go between the values and it
        params = [(*r[:-1], *extra, r[-1]) for r in rows]
        with _wrapped(), self.conn.cursor() as cur:
            cur.executemany(stmt, params)

    def _update_staged(
        self, columns: Sequence[str], rows: list[Row], constants: Mapping[str, Any]
    ) -> None:
        """COPY the new values into a staging table, then one UPDATE … FROM it."""
        plan = CopyPlan(self.obj, [*columns, "Id"], {})
        with _wrapped(), self.conn.cursor() as cur:
            cur.execute(stage_sql(self.table, columns))
            try:
                with cur.copy(copy_sql(STAGE, [*columns, "Id"])) as copy:
                    copy.set_types(plan.types)
                    for row in plan.rows(rows):
                        copy.write_row(row)
                cur.execute(
                    update_from_stage_sql(self.table, columns, constants), list(constants.values())
                )
            finally:
                if self.conn.info.transaction_status == pq.TransactionStatus.INTRANS:
                    cur.execute(sql.SQL("DROP TABLE {}").format(STAGE))

    def lookup(self, column: str, keys: Sequence[Any]) -> list[tuple[Any, str, bool]]:
        f = self.obj.field(column)
        cast = pg_type(f).split("(")[0] if f is not None else "TEXT"
        stmt = sql.SQL(
            "SELECT {col}, id, isdeleted FROM {t} WHERE {col} = ANY(%s::{cast}[])"
        ).format(col=ident(column), t=self.table, cast=sql.SQL(cast))
        with _wrapped(), self.conn.cursor(row_factory=tuple_row) as cur:
            rows = cur.execute(stmt, (list(keys),)).fetchall()
        return [(r[0], r[1], bool(r[2])) for r in rows]

    def soft_delete(self, ids: Sequence[str], now: str, user_id: str) -> None:
        stmt = sql.SQL(
            "UPDATE {} SET isdeleted = TRUE, lastmodifieddate = %s, systemmodstamp = %s, "
            "lastmodifiedbyid = %s WHERE id = ANY(%s::text[])"
        ).format(self.table)
        with _wrapped():
            self.conn.execute(stmt, (now, now, user_id, list(ids)))

    def hard_delete(self, ids: Sequence[str]) -> None:
        stmt = sql.SQL("DELETE FROM {} WHERE id = ANY(%s::text[])").format(self.table)
        with _wrapped():
            self.conn.execute(stmt, (list(ids),))


class PgTx(Tx):
    text_holds_nul = False

    def __init__(self, conn: psycopg.Connection[Any], store: PostgresStore) -> None:
        self.conn = conn
        self.store = store

    def records(self, obj: SObject) -> RecordTable:
        return PgRecords(self.conn, obj)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        with self.conn.transaction():  # nested: a SAVEPOINT, rolled back on exception
            yield

    def allocate(self, counter: str, count: int) -> int:
        # On its own autocommit connection: inside the worker's long transaction the counter
        # row would stay locked and make every other worker wait. A rolled-back batch only
        # leaves a gap in the Ids, which Salesforce's have too.
        return self.store.allocate(counter, count)

    def finish_batch(
        self, batch_id: str, owner: str, state: BatchState, message: str | None,
        processed: int, failed: int, elapsed_ms: int,
    ) -> bool:  # fmt: skip
        params = {"state": state.value, "message": message, "processed": processed,
                  "failed": failed, "ms": elapsed_ms, "now": now_iso(), "id": batch_id,
                  "owner": owner}  # fmt: skip
        with _wrapped():
            return self.conn.execute(Q["finish_batch"], params).rowcount == 1

    def job_state(self, job_id: str) -> tuple[JobState, str | None] | None:
        with _wrapped():
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
        with _wrapped():
            return self.conn.execute(Q["advance_job"], params).rowcount == 1


class PgWakeup(Wakeup):
    """NOTIFY on set; each waiting thread LISTENs on its own connection."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store
        self._local = threading.local()

    def set(self) -> None:
        with self.store._conns.borrow() as conn, _wrapped():
            conn.execute(sql.SQL("NOTIFY {}").format(sql.Identifier(CHANNEL)))

    def wait(self, timeout: float) -> None:
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        try:
            if conn is None:
                conn = psycopg.connect(self.store.url, autocommit=True)
                conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))
                self._local.conn = conn
            for _ in conn.notifies(timeout=timeout, stop_after=1):
                pass
        except psycopg.Error:
            self._local.conn = None
            time.sleep(min(timeout, 0.5))  # the database is unwell; the worker retries


class _PgUpload(UploadWriter):
    def __init__(self, blobs: PgBlobs, key: str) -> None:
        self.blobs, self.key = blobs, key
        # the start time in the name lets a sweep tell a crashed upload from a running one
        self.tmp = f"tmp:{key}:{int(time.time())}:{uuid.uuid4().hex}"
        self.buf = bytearray()
        self.seq = 0

    def _flush(self) -> None:
        # Not durable on its own: the upload is acknowledged only after record_upload's
        # commit, and that commit's WAL flush covers every earlier one, these chunks included.
        with self.blobs.store._conns.borrow() as conn, _wrapped():
            lazy_commit(conn, Q["blob_put_chunk"], (self.tmp, self.seq, bytes(self.buf)))
        self.seq += 1
        self.buf.clear()

    def write(self, data: bytes) -> None:
        self.buf += data
        if len(self.buf) >= CHUNK:
            self._flush()

    def close(self) -> None:
        """The last (for a small upload the only) chunk waits for swap, which commits it
        together with the job's row: one commit fewer per upload."""

    def swap(self) -> None:
        # this thread's connection is inside record_upload's transaction: a savepoint of it
        final = f"upload:{self.key}"
        with self.blobs.store._write() as conn:
            conn.execute(Q["blob_delete"], (final,))
            if self.seq:
                conn.execute(Q["blob_rename"], (final, self.tmp))
            if self.buf:
                conn.execute(Q["blob_put_chunk"], (final, self.seq, bytes(self.buf)))

    def discard(self) -> None:
        with self.blobs.store._write() as conn:
            conn.execute(Q["blob_delete"], (self.tmp,))


class _PgReader(io.RawIOBase):
    """A committed upload read back chunk by chunk: never whole in memory."""

    def __init__(self, store: PostgresStore, name: str, chunks: int) -> None:
        self.store, self.name, self.chunks = store, name, chunks
        self.seq = 0
        self.pending = b""
        self.done = False

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self.pending and not self.done:
            row = self.store._one(Q["blob_chunk"], (self.name, self.seq))
            if row is None:
                if self.seq < self.chunks:
                    raise BlobGone(f"{self.name} was deleted while being read")
                self.done = True
            else:
                self.pending = bytes(row["data"])
                self.seq += 1
        n = min(len(b), len(self.pending))
        b[:n] = self.pending[:n]
        self.pending = self.pending[n:]
        return n


class PgBlobs(Blobs):
    def __init__(self, store: PostgresStore) -> None:
        self.store = store

    def put_chunk(self, name: str, seq: int, data: bytes) -> None:
        self.store._run(Q["blob_put_chunk"], (name, seq, data))

    def upload_writer(self, key: str) -> UploadWriter:
        return _PgUpload(self, key)

    def open(self, key: str) -> BinaryIO | None:
        name = f"upload:{key}"
        row = self.store._one(Q["blob_count"], (name,))
        if row is None or not row["n"]:
            return None
        return io.BufferedReader(_PgReader(self.store, name, int(row["n"])), buffer_size=CHUNK)

    def write_results(self, key: str, seq: int, success: bytes, failed: bytes) -> None:
        prefix = f"results:{key}:{seq}"
        self.store._run(Q["blob_put_pair"], (f"{prefix}:ok", success, f"{prefix}:err", failed))

    def read_results(self, key: str, kind: str, batches: int) -> Iterator[bytes]:
        for seq in range(batches):
            row = self.store._one(Q["blob_chunk"], (f"results:{key}:{seq}:{kind}", 0))
            if row is None:
                raise BlobGone(f"results of {key} were deleted while being read")
            if row["data"]:
                yield bytes(row["data"])

    def result_writer(self, key: str) -> ResultWriter:
        return PgResultWriter(self, key)

    def result_index(self, key: str) -> bytes | None:
        return self.get(f"results:{key}:query:idx")

    def read_result(self, key: str, start: int, end: int) -> Iterator[bytes]:
        name = f"results:{key}:query"
        for seq in range(start // CHUNK, (end - 1) // CHUNK + 1 if end > start else 0):
            row = self.store._one(Q["blob_chunk"], (name, seq))
            if row is None:
                raise BlobGone(f"{name} was deleted while being read")
            data = bytes(row["data"])
            base = seq * CHUNK
            yield data[max(start - base, 0) : end - base]

    def put(self, name: str, data: bytes) -> None:
        self.put_chunk(name, 0, data)

    def get(self, name: str) -> bytes | None:
        row = self.store._one(Q["blob_chunk"], (name, 0))
        return None if row is None else bytes(row["data"])

    def sweep_orphans(self, is_batch: Callable[[str], bool], min_age: float) -> int:
        # Only unfinished uploads: a Bulk 1.0 payload is stored a moment before its batch row,
        # possibly by another process, and nothing dates it.
        with self.store._write() as conn:
            cur = conn.execute(Q["blob_delete_stale_uploads"], (int(time.time() - min_age),))
            return int(cur.rowcount)

    def delete(self, key: str) -> None:
        with self.store._write() as conn:
            for name in (f"upload:{key}", f"{key}.request", f"{key}.result"):
                conn.execute(Q["blob_delete"], (name,))
            conn.execute(Q["blob_delete_prefix"], (f"results:{key}:%",))


class PostgresStore(SqlStore):
    Q = Q
    dialect = "postgres"

    def __init__(self, url: str, pool_size: int = DEFAULT_POOL_SIZE) -> None:
        self.url = url.replace("postgres://", "postgresql://", 1)
        self.pool_size = pool_size
        self._pools: dict[str, ConnectionPool[psycopg.Connection[Any]]] = {}
        self._pool_lock = threading.Lock()
        self._conns: ThreadConnections[psycopg.Connection[Any]] = ThreadConnections(
            functools.partial(self._pooled, "main"), self._connect, psycopg.Connection.close,
            lambda c: c.closed, side_pooled=functools.partial(self._pooled, "side"),
        )  # fmt: skip
        # Connections for query_rows: a stream holds one (and its read transaction) until it
        # ends, then gives it back for the next.
        self._readers: queue.SimpleQueue[psycopg.Connection[Any]] = queue.SimpleQueue()

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
                        check=ConnectionPool.check_connection, timeout=POOL_TIMEOUT,
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
                ConnectionPool.check_connection(conn)
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
            with _wrapped(), conn.cursor(name=f"bf_rows_{uuid.uuid4().hex}") as cur:
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

    def tune_for_bulk(self) -> None:
        # A worker thread keeps its own connection (store/pool.py). A commit lost in a
        # PostgreSQL crash loses a batch's records and its "done" marker together, so the
        # batch is simply redone: skipping the WAL flush wait is safe.
        with _wrapped():
            self._conns.pin().execute("SET synchronous_commit = off")

    def close(self) -> None:
        self._conns.release_thread()
        while not self._readers.empty():
            self._readers.get_nowait().close()
        with self._pool_lock:
            pools, self._pools = self._pools, {}
        for pool in pools.values():
            pool.close()

    @contextmanager
    def _write(self) -> Iterator[psycopg.Connection[Any]]:
        with self._conns.borrow() as conn, _wrapped(), conn.transaction():
            yield conn

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        with self._write() as conn:
            yield PgTx(conn, self)

    def _run(self, query: str, params: Any = ()) -> int:
        with self._conns.borrow() as conn, _wrapped(), _single(conn):
            return int(conn.execute(query, params).rowcount)

    def _returning(self, query: Any, params: Any) -> RowLike | None:
        with self._conns.borrow() as conn, _wrapped(), _single(conn):
            row: RowLike | None = conn.execute(query, params).fetchone()
        return row

    # No read-only look first as on SQLite: an UPDATE that finds nothing writes nothing here,
    # and a worker that has work saves a round trip.
    def claim_job(self, owner: str, lease_seconds: float) -> Job | None:
        row = self._returning(Q["claim_job"], self._lease(owner, lease_seconds))
        return None if row is None else job_from_row(row)

    def claim_batch(self, owner: str, lease_seconds: float) -> Batch | None:
        row = self._returning(Q["claim_batch"], self._lease(owner, lease_seconds))
        return None if row is None else batch_from_row(row)

    def allocate(self, counter: str, count: int = 1) -> int:
        # On a connection of its own: inside a worker's long transaction the counter row
        # would stay locked and make every other worker wait. A rolled-back batch only leaves
        # a gap in the Ids, which Salesforce's have too.
        with self._conns.side() as side, _wrapped():
            row = lazy_commit(side, Q["bump_counter"], (counter, count)).fetchone()
        assert row is not None
        return int(row["value"]) - count

    def _all(self, query: Any, params: Any = ()) -> list[RowLike]:
        with self._conns.borrow() as conn, _wrapped():
            rows: list[RowLike] = conn.execute(query, params).fetchall()
        return rows

    def _one(self, query: Any, params: Any = ()) -> dict[str, Any] | None:
        with self._conns.borrow() as conn, _wrapped():
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
        return PgWakeup(self)

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
        return None if row is None else _api_values(obj, row)

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
        return [_api_values(obj, dict(r)) for r in self._all(stmt, params)]  # type: ignore[call-overload]

    def delete_records(self, obj: SObject, keep_ids: Sequence[str] = ()) -> int:
        stmt = sql.SQL("DELETE FROM {} WHERE id <> ALL(%s::text[])").format(ident(obj.table))
        with self._write() as conn:
            return conn.execute(stmt, (list(keep_ids),)).rowcount

    # ---- logins: users, connected apps, sessions ---------------------------------------------
