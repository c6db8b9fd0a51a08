"""SQLite store. One writer at a time (BEGIN IMMEDIATE), WAL so readers never wait on it."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bulkforce.auth.model import App, Session, User
from bulkforce.engine.schema import BASE62_PREFIX_ALPHABET, Schema, SObject
from bulkforce.model import Batch, BatchState, BatchStats, Job, JobFilter, JobState, iso
from bulkforce.store import records as sql
from bulkforce.store.base import RecordTable, Row, Store, StoreError, Tx, UniqueViolation
from bulkforce.store.blobs import Blobs, FileBlobs
from bulkforce.store.queries import load
from bulkforce.store.rows import batch_from_row as _batch_from_row
from bulkforce.store.rows import job_from_row as _job_from_row
from bulkforce.store.wakeup import ThreadWakeup, Wakeup

Q = load("sqlite")

_JOB_COLUMNS = frozenset(
    {"error_message", "records_processed", "records_failed", "retries", "header",
     "total_processing_time", "api_active_processing_time", "apex_processing_time",
     "lease_owner", "lease_expires", "batches_done"}
)  # fmt: skip


@contextmanager
def _wrapped() -> Iterator[None]:
    try:
        yield
    except sqlite3.IntegrityError as e:
        raise UniqueViolation(str(e)) from None
    except sqlite3.Error as e:
        raise StoreError(f"database error: {e}") from None


class SQLiteRecords(RecordTable):
    def __init__(self, conn: sqlite3.Connection, obj: SObject) -> None:
        self.conn = conn
        self.table = obj.table

    def insert(self, columns: Sequence[str], rows: Iterable[Row]) -> None:
        with _wrapped():
            self.conn.executemany(sql.insert_sql(self.table, columns), rows)

    def update(self, columns: Sequence[str], rows: Iterable[Row]) -> None:
        with _wrapped():
            self.conn.executemany(sql.update_sql(self.table, columns), rows)

    def lookup(self, column: str, keys: Sequence[Any]) -> list[tuple[Any, str, bool]]:
        out: list[tuple[Any, str, bool]] = []
        with _wrapped():
            for part in sql.chunked(keys, sql.MAX_PARAMS):
                cur = self.conn.execute(sql.lookup_sql(self.table, column, len(part)), part)
                out.extend((k, i, bool(d)) for k, i, d in cur)
        return out

    def soft_delete(self, ids: Sequence[str], now: str, user_id: str) -> None:
        stmt = (
            f"UPDATE {sql.q(self.table)} SET {sql.q('IsDeleted')} = 1, "
            f"{sql.q('LastModifiedDate')} = ?, {sql.q('SystemModstamp')} = ?, "
            f"{sql.q('LastModifiedById')} = ? WHERE {sql.q('Id')} = ?"
        )
        with _wrapped():
            self.conn.executemany(stmt, ((now, now, user_id, i) for i in ids))

    def hard_delete(self, ids: Sequence[str]) -> None:
        stmt = f"DELETE FROM {sql.q(self.table)} WHERE {sql.q('Id')} = ?"
        with _wrapped():
            self.conn.executemany(stmt, ((i,) for i in ids))


class SQLiteTx(Tx):
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def records(self, obj: SObject) -> RecordTable:
        return SQLiteRecords(self.conn, obj)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        self.conn.execute("SAVEPOINT bf_sp")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK TO bf_sp")
            self.conn.execute("RELEASE bf_sp")
            raise
        self.conn.execute("RELEASE bf_sp")

    def allocate(self, counter: str, count: int) -> int:
        with _wrapped():
            (value,) = self.conn.execute(Q["bump_counter"], (counter, count)).fetchone()
        return int(value) - count

    def finish_batch(
        self, batch_id: str, owner: str, state: BatchState, message: str | None,
        processed: int, failed: int, elapsed_ms: int,
    ) -> bool:  # fmt: skip
        params = {
            "state": state.value, "message": message, "processed": processed, "failed": failed,
            "ms": elapsed_ms, "now": iso(dt.datetime.now(dt.UTC)), "id": batch_id, "owner": owner,
        }  # fmt: skip
        with _wrapped():
            return self.conn.execute(Q["finish_batch"], params).rowcount == 1

    def job_state(self, job_id: str) -> tuple[JobState, str | None] | None:
        row = self.conn.execute(
            "SELECT state, lease_owner FROM bf_job WHERE id = ?", (job_id,)
        ).fetchone()
        return None if row is None else (JobState(row[0]), row[1])

    def commit_batch(
        self, job_id: str, owner: str, seq: int, processed: int, failed: int, elapsed_ms: int,
        lease_seconds: float,
    ) -> bool:  # fmt: skip
        params = {
            "processed": processed, "failed": failed, "ms": elapsed_ms,
            "now": iso(dt.datetime.now(dt.UTC)), "expires": time.time() + lease_seconds,
            "id": job_id, "owner": owner, "seq": seq,
        }  # fmt: skip
        with _wrapped():
            return self.conn.execute(Q["advance_job"], params).rowcount == 1


class SQLiteStore(Store):
    def __init__(self, path: str) -> None:
        self.path = path
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        # Threads blocked on BEGIN IMMEDIATE. SQLite's busy handler polls every 50-100 ms,
        # so a worker that re-begins within milliseconds of committing would starve them;
        # the worker reads this and steps aside (see Worker._run_batches).
        self._waiting = 0
        self._waiting_lock = threading.Lock()

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                conn.row_factory = sqlite3.Row
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
                conn.execute("PRAGMA busy_timeout = 60000")
                conn.execute("PRAGMA foreign_keys = ON")
                conn.execute("PRAGMA cache_size = -8192")  # workers raise it: tune_for_bulk
                conn.execute("PRAGMA temp_store = MEMORY")
            except sqlite3.Error as e:
                raise StoreError(f"cannot open SQLite database {self.path}: {e}") from None
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

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

    def writers_waiting(self) -> int:
        return self._waiting

    def tune_for_bulk(self) -> None:
        # Index pages of a large upsert key stay hot across batches.
        self._conn().execute("PRAGMA cache_size = -65536")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        with self._waiting_lock:
            self._waiting += 1
        try:
            with _wrapped():
                conn.execute("BEGIN IMMEDIATE")
        finally:
            with self._waiting_lock:
                self._waiting -= 1
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        with _wrapped():
            conn.execute("COMMIT")

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        with self._write() as conn:
            yield SQLiteTx(conn)

    def _one(self, query: str, params: Any = ()) -> sqlite3.Row | None:
        with _wrapped():
            row: sqlite3.Row | None = self._conn().execute(query, params).fetchone()
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
                for stmt in Q[f"migrate_{step}"].split(";"):
                    if stmt.strip():
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

    def get_meta(self, key: str) -> str | None:
        row = self._one(Q["get_meta"], (key,))
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._write() as conn:
            conn.execute(Q["set_meta"], (key, value))

    def key_prefix(self, object_name: str) -> str:
        row = self._one(Q["get_prefix"], (object_name,))
        if row is not None:
            return str(row[0])
        with self._write() as conn:
            row = conn.execute(Q["get_prefix"], (object_name,)).fetchone()
            if row is not None:
                return str(row[0])
            taken = {r[0] for r in conn.execute(Q["all_prefixes"])}
            # Custom objects get a0?..a9? like a real org's a0B; deterministic order keeps
            # prefixes stable for the same sequence of first definitions.
            for second in "0123456789":
                for third in BASE62_PREFIX_ALPHABET:
                    prefix = f"a{second}{third}"
                    if prefix not in taken:
                        conn.execute(Q["add_prefix"], (object_name, prefix))
                        return prefix
        raise StoreError("no custom object key prefixes left")

    def allocate(self, counter: str, count: int = 1) -> int:
        with self.transaction() as tx:
            return tx.allocate(counter, count)

    def insert_job(self, job: Job) -> None:
        params = {
            "id": job.id, "job_type": job.job_type, "object": job.object,
            "operation": job.operation.value, "state": job.state.value,
            "created_by": job.created_by, "created_date": iso(job.created_date),
            "system_modstamp": iso(job.system_modstamp), "api_version": job.api_version,
            "external_id_field": job.external_id_field,
            "assignment_rule_id": job.assignment_rule_id, "content_type": job.content_type,
            "line_ending": job.line_ending, "column_delimiter": job.column_delimiter,
            "concurrency_mode": job.concurrency_mode, "upload_count": job.upload_count,
            "upload_bytes": job.upload_bytes, "upload_problem": job.upload_problem,
        }  # fmt: skip
        with self._write() as conn:
            conn.execute(Q["insert_job"], params)

    def get_job(self, job_id: str) -> Job | None:
        row = self._one(Q["get_job"], (job_id,))
        return None if row is None else _job_from_row(row)

    def list_jobs(self, flt: JobFilter, after: str, limit: int) -> list[Job]:
        params = {
            "job_type": flt.job_type, "concurrency_mode": flt.concurrency_mode,
            "pk_chunking": None if flt.pk_chunking is None else int(flt.pk_chunking),
            "after": after, "limit": limit,
        }  # fmt: skip
        with _wrapped():
            rows = self._conn().execute(Q["list_jobs"], params).fetchall()
        return [_job_from_row(r) for r in rows]

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

    def record_upload(self, job_id: str, size: int, problem: str | None) -> bool:
        now = iso(dt.datetime.now(dt.UTC))
        with self._write() as conn:
            cur = conn.execute(
                Q["record_upload"], {"bytes": size, "problem": problem, "now": now, "id": job_id}
            )
            return cur.rowcount == 1

    def delete_job(self, job_id: str) -> None:
        with self._write() as conn:
            conn.execute(Q["delete_job"], (job_id,))

    def claim_job(self, owner: str, lease_seconds: float) -> Job | None:
        now = time.time()
        params = {"owner": owner, "expires": now + lease_seconds, "clock": now,
                  "now": iso(dt.datetime.now(dt.UTC))}  # fmt: skip
        with self._write() as conn:
            row = conn.execute(Q["claim_job"], params).fetchone()
        return None if row is None else _job_from_row(row)

    def renew_lease(self, job_id: str, owner: str, lease_seconds: float) -> bool:
        with self._write() as conn:
            cur = conn.execute(
                Q["renew_lease"],
                {"expires": time.time() + lease_seconds, "id": job_id, "owner": owner},
            )
            return cur.rowcount == 1

    def clear_leases(self) -> None:
        with self._write() as conn:
            conn.execute(Q["clear_leases"])
            conn.execute(Q["clear_batch_leases"])

    # ---- Bulk 1.0 batches --------------------------------------------------------------------

    def insert_batch(
        self, batch_id: str, job_id: str, content_type: str, record_count: int
    ) -> Batch | None:
        with self._write() as conn:
            if (
                conn.execute(
                    "SELECT 1 FROM bf_job WHERE id = ? AND state = 'Open'", (job_id,)
                ).fetchone()
                is None
            ):
                return None
            row = conn.execute(
                Q["insert_batch"],
                {"id": batch_id, "job_id": job_id, "now": iso(dt.datetime.now(dt.UTC)),
                 "content_type": content_type, "record_count": record_count},
            ).fetchone()  # fmt: skip
        return _batch_from_row(row)

    def get_batch(self, batch_id: str) -> Batch | None:
        row = self._one(Q["get_batch"], (batch_id,))
        return None if row is None else _batch_from_row(row)

    def list_batches(self, job_id: str) -> list[Batch]:
        with _wrapped():
            rows = self._conn().execute(Q["list_batches"], (job_id,)).fetchall()
        return [_batch_from_row(r) for r in rows]

    def batch_stats(self, job_id: str) -> BatchStats:
        row = self._one(Q["batch_stats"], (job_id,))
        assert row is not None
        return BatchStats(*row)

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

    def claim_batch(self, owner: str, lease_seconds: float) -> Batch | None:
        now = time.time()
        params = {"owner": owner, "expires": now + lease_seconds, "clock": now,
                  "now": iso(dt.datetime.now(dt.UTC))}  # fmt: skip
        with self._write() as conn:
            row = conn.execute(Q["claim_batch"], params).fetchone()
        return None if row is None else _batch_from_row(row)

    def set_spec(self, job_id: str, spec: dict[str, tuple[str | None, str | None]]) -> bool:
        with self._write() as conn:
            cur = conn.execute(
                Q["set_spec"],
                {"spec": json.dumps(spec), "now": iso(dt.datetime.now(dt.UTC)), "id": job_id},
            )
            return cur.rowcount == 1

    # ---- records and usage for the REST resources (issue #5) ---------------------------------

    def get_record(self, obj: SObject, record_id: str) -> dict[str, Any] | None:
        row = self._one(sql.select_by_id_sql(obj.table), (record_id,))
        return None if row is None else dict(row)

    def delete_records(self, obj: SObject, keep_ids: Sequence[str] = ()) -> int:
        with self._write() as conn, _wrapped():
            return conn.execute(sql.delete_all_sql(obj.table, len(keep_ids)), keep_ids).rowcount

    def usage_since(self, since: str) -> dict[str, int]:
        with _wrapped():
            conn = self._conn()
            (batches,) = conn.execute(Q["bulk_batches_since"], {"since": since}).fetchone()
            jobs = conn.execute(Q["jobs_since"], {"since": since}).fetchall()
        out = {"bulk_batches": int(batches)}
        out.update({f"jobs:{kind}": int(n) for kind, n in jobs})
        return out

    # ---- logins: users, connected apps, sessions (issue #6) ----------------------------------

    def add_user(self, user: User) -> None:
        params = {
            "id": user.id, "username": user.username, "email": user.email,
            "full_name": user.full_name, "credential_hash": user.credential_hash,
            "created_date": user.created_date,
        }  # fmt: skip
        with _wrapped(), self._write() as conn:
            conn.execute(Q["add_user"], params)

    def get_user(self, user_id: str) -> User | None:
        row = self._one(Q["get_user"], (user_id,))
        return None if row is None else User(**dict(row))

    def get_user_by_name(self, username: str) -> User | None:
        row = self._one(Q["get_user_by_name"], (username,))
        return None if row is None else User(**dict(row))

    def list_users(self) -> list[User]:
        with _wrapped():
            rows = self._conn().execute(Q["list_users"]).fetchall()
        return [User(**dict(r)) for r in rows]

    def remove_user(self, username: str) -> str | None:
        with _wrapped(), self._write() as conn:
            row = conn.execute(Q["remove_user"], (username,)).fetchone()
        return None if row is None else str(row[0])

    def login_failed(self, user_id: str, max_attempts: int, lock_until: float) -> None:
        with _wrapped(), self._write() as conn:
            params = {"id": user_id, "max": max_attempts, "until": lock_until}
            conn.execute(Q["login_failed"], params)

    def login_ok(self, user_id: str) -> None:
        with _wrapped(), self._write() as conn:
            conn.execute(Q["login_ok"], (user_id,))

    def add_app(self, app: App) -> None:
        params = {
            "client_id": app.client_id, "name": app.name, "secret_hash": app.secret_hash,
            "run_as": app.run_as, "created_date": app.created_date,
        }  # fmt: skip
        with _wrapped(), self._write() as conn:
            conn.execute(Q["add_app"], params)

    def get_app(self, client_id: str) -> App | None:
        row = self._one(Q["get_app"], (client_id,))
        return None if row is None else App(**dict(row))

    def list_apps(self) -> list[App]:
        with _wrapped():
            rows = self._conn().execute(Q["list_apps"]).fetchall()
        return [App(**dict(r)) for r in rows]

    def add_session(self, session: Session) -> None:
        params = {
            "token_hash": session.token_hash, "kind": session.kind, "user_id": session.user_id,
            "client_id": session.client_id, "parent": session.parent, "issued": session.issued,
            "expires": session.expires,
        }  # fmt: skip
        with _wrapped(), self._write() as conn:
            conn.execute(Q["add_session"], params)

    def get_session(self, token_hash: str) -> Session | None:
        row = self._one(Q["get_session"], (token_hash,))
        return None if row is None else Session(**dict(row))

    def extend_session(self, token_hash: str, expires: float) -> None:
        with _wrapped(), self._write() as conn:
            conn.execute(Q["extend_session"], {"token_hash": token_hash, "expires": expires})

    def delete_session(self, token_hash: str) -> bool:
        with _wrapped(), self._write() as conn:
            return conn.execute(Q["delete_session"], (token_hash,)).rowcount == 1

    def purge_sessions(self, now: float) -> None:
        with _wrapped(), self._write() as conn:
            conn.execute(Q["purge_sessions"], (now,))
