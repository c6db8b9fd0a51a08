"""What the SQLite and PostgreSQL stores share: every method that is only "run this named
query with these parameters". Each dialect supplies its connection handling (`_write`,
`_one`, `_all`) and its query file; the differences live in the SQL, not here."""

from __future__ import annotations

import abc
import datetime as dt
import json
import time
from contextlib import AbstractContextManager
from typing import Any

from bulkforce.auth.model import App, Session, User
from bulkforce.engine.schema import BASE62_PREFIX_ALPHABET
from bulkforce.model import Batch, BatchStats, Job, JobFilter, QueryCursor, iso, utcnow
from bulkforce.store.base import Store, StoreError
from bulkforce.store.blobs import UploadWriter
from bulkforce.store.rows import RowLike, batch_from_row, job_from_row, parse_iso, user_from_row

# REST query locators live this long (Salesforce's expire after 15 idle minutes; a slow
# reader of a large result here is not cut off).
CURSOR_HOURS = 24


def now_iso() -> str:
    return iso(utcnow())


class SqlStore(Store):
    Q: dict[str, str]

    # ---- what each dialect provides ----------------------------------------------------------

    @abc.abstractmethod
    def _write(self) -> AbstractContextManager[Any]:
        """A connection inside one write transaction; driver errors come out as StoreError."""

    @abc.abstractmethod
    def _one(self, query: Any, params: Any = ()) -> RowLike | None: ...

    @abc.abstractmethod
    def _all(self, query: Any, params: Any = ()) -> list[RowLike]: ...

    def _run(self, query: str, params: Any = ()) -> int:
        with self._write() as conn:
            return int(conn.execute(query, params).rowcount)

    def _returning(self, query: str, params: Any) -> RowLike | None:
        with self._write() as conn:
            row: RowLike | None = conn.execute(query, params).fetchone()
        return row

    # ---- meta, counters, key prefixes --------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self._one(self.Q["get_meta"], (key,))
        return None if row is None else str(row["value"])

    def set_meta(self, key: str, value: str) -> None:
        self._run(self.Q["set_meta"], (key, value))

    def delete_meta(self, key: str) -> None:
        self._run(self.Q["delete_meta"], (key,))

    def add_meta(self, key: str, value: str) -> str:
        self._run(self.Q["add_meta"], (key, value))
        stored = self.get_meta(key)
        assert stored is not None
        return stored

    def allocate(self, counter: str, count: int = 1) -> int:
        with self.transaction() as tx:
            return tx.allocate(counter, count)

    def key_prefix(self, object_name: str) -> str:
        row = self._one(self.Q["get_prefix"], (object_name,))
        if row is not None:
            return str(row["prefix"])
        with self._write() as conn:
            conn.execute(self.Q["lock_prefixes"])  # concurrent start-ups assign in turn
            row = conn.execute(self.Q["get_prefix"], (object_name,)).fetchone()
            if row is not None:
                return str(row["prefix"])
            taken = {r["prefix"] for r in conn.execute(self.Q["all_prefixes"]).fetchall()}
            # Custom objects get a0?..a9? like a real org's a0B; deterministic order keeps
            # prefixes stable for the same sequence of first definitions.
            for second in "0123456789":
                for third in BASE62_PREFIX_ALPHABET:
                    prefix = f"a{second}{third}"
                    if prefix not in taken:
                        conn.execute(self.Q["add_prefix"], (object_name, prefix))
                        return prefix
        raise StoreError("no custom object key prefixes left")

    # ---- jobs --------------------------------------------------------------------------------

    def insert_job(self, job: Job) -> None:
        self._run(self.Q["insert_job"], {
            "id": job.id, "job_type": job.job_type, "object": job.object,
            "operation": job.operation.value, "state": job.state.value,
            "created_by": job.created_by, "created_date": iso(job.created_date),
            "system_modstamp": iso(job.system_modstamp), "api_version": job.api_version,
            "external_id_field": job.external_id_field,
            "assignment_rule_id": job.assignment_rule_id, "content_type": job.content_type,
            "line_ending": job.line_ending, "column_delimiter": job.column_delimiter,
            "concurrency_mode": job.concurrency_mode, "upload_count": job.upload_count,
            "upload_bytes": job.upload_bytes, "upload_problem": job.upload_problem,
            "pk_chunking": job.pk_chunking,
            "query": job.query,
        })  # fmt: skip

    def get_job(self, job_id: str) -> Job | None:
        row = self._one(self.Q["get_job"], (job_id,))
        return None if row is None else job_from_row(row)

    def list_jobs(self, flt: JobFilter, after: str, limit: int) -> list[Job]:
        rows = self._all(self.Q["list_jobs"], {
            "job_type": flt.job_type, "job_types": ",".join(flt.job_types),
            "concurrency_mode": flt.concurrency_mode, "created_by": flt.created_by,
            "pk_chunking": None if flt.pk_chunking is None else int(flt.pk_chunking),
            "after": after, "limit": limit,
        })  # fmt: skip
        return [job_from_row(r) for r in rows]

    def recent_jobs(self, flt: JobFilter, limit: int) -> list[Job]:
        rows = self._all(self.Q["recent_jobs"], {
            "job_type": flt.job_type, "state": flt.state, "object": flt.object,
            "operation": flt.operation, "created_by": flt.created_by, "limit": limit,
        })  # fmt: skip
        return [job_from_row(r) for r in rows]

    def record_upload(
        self,
        job_id: str,
        size: int,
        problem: str | None,
        upload: UploadWriter,
        rows: int | None = None,
    ) -> bool:
        params = {"bytes": size, "problem": problem, "rows": rows, "now": now_iso(), "id": job_id}
        # The row update takes the job's write lock (SQLite: the database's; PostgreSQL: the
        # row's), so no close, abort or delete can slip between the check and the swap.
        with self._write() as conn:
            if conn.execute(self.Q["record_upload"], params).rowcount != 1:
                return False
            upload.swap()
        return True

    def job_history(self, job_id: str) -> list[tuple[str, str]]:
        return [(r["state"], r["at"]) for r in self._all(self.Q["job_history"], (job_id,))]

    def delete_job(self, job_id: str) -> None:
        self._run(self.Q["delete_job"], (job_id,))

    def _lease(self, owner: str, lease_seconds: float) -> dict[str, Any]:
        clock = time.time()
        return {"owner": owner, "expires": clock + lease_seconds, "clock": clock, "now": now_iso()}

    def claim_job(self, owner: str, lease_seconds: float) -> Job | None:
        if self._one(self.Q["claimable_job"], {"clock": time.time()}) is None:
            return None
        row = self._returning(self.Q["claim_job"], self._lease(owner, lease_seconds))
        return None if row is None else job_from_row(row)

    def renew_lease(self, job_id: str, owner: str, lease_seconds: float) -> bool:
        params = {"id": job_id, "owner": owner, "expires": time.time() + lease_seconds}
        return self._run(self.Q["renew_lease"], params) == 1

    # ---- REST query cursors ------------------------------------------------------------------

    def add_cursor(self, cursor: QueryCursor) -> None:
        with self._write() as conn:
            before = iso(cursor.created_date - dt.timedelta(hours=CURSOR_HOURS))
            conn.execute(self.Q["expire_pages"], {"before": before})
            conn.execute(self.Q["expire_cursors"], {"before": before})
            conn.execute(self.Q["add_cursor"], {
                "id": cursor.id, "query": cursor.query, "all_rows": int(cursor.all_rows),
                "total": cursor.total, "batch_size": cursor.batch_size,
                "created_date": iso(cursor.created_date),
            })  # fmt: skip

    def get_cursor_page(self, cursor_id: str, pos: int) -> tuple[QueryCursor, str] | None:
        row = self._one(self.Q["get_cursor_page"], {"id": cursor_id, "pos": pos})
        if row is None:
            return None
        return QueryCursor(
            id=row["id"], query=row["query"], all_rows=bool(row["all_rows"]),
            total=int(row["total"]), batch_size=int(row["batch_size"]),
            created_date=parse_iso(row["created_date"]),
        ), str(row["after_key"])  # fmt: skip

    def put_page(self, cursor_id: str, pos: int, after_key: str) -> None:
        self._run(self.Q["put_page"], {"id": cursor_id, "pos": pos, "after_key": after_key})

    def clear_leases(self) -> None:
        with self._write() as conn:
            conn.execute(self.Q["clear_leases"])
            conn.execute(self.Q["clear_batch_leases"])

    # ---- Bulk 1.0 batches --------------------------------------------------------------------

    def insert_batch(
        self, batch_id: str, job_id: str, content_type: str, record_count: int
    ) -> Batch | None:
        with self._write() as conn:
            # the job row is locked where the database can: batches of one job take their
            # sequence numbers in turn
            if conn.execute(self.Q["lock_open_job"], (job_id,)).fetchone() is None:
                return None
            row = conn.execute(self.Q["insert_batch"], {
                "id": batch_id, "job_id": job_id, "now": now_iso(), "content_type": content_type,
                "record_count": record_count,
            }).fetchone()  # fmt: skip
        return batch_from_row(row)

    def split_batch(
        self, batch: Batch, owner: str, chunk_ids: list[str], message: str, elapsed_ms: int
    ) -> bool:
        with self._write() as conn:
            now = now_iso()
            done = conn.execute(self.Q["finish_batch"], {
                "id": batch.id, "owner": owner, "state": "NotProcessed", "message": message,
                "processed": 0, "failed": 0, "ms": elapsed_ms, "now": now,
            }).rowcount  # fmt: skip
            if done != 1:
                return False
            for chunk_id in chunk_ids:
                conn.execute(self.Q["insert_chunk_batch"], {
                    "id": chunk_id, "job_id": batch.job_id, "now": now,
                    "content_type": batch.content_type, "chunk_of": batch.id,
                })  # fmt: skip
        return True

    def renew_batch_lease(self, batch_id: str, owner: str, lease_seconds: float) -> bool:
        params = {"id": batch_id, "owner": owner, "expires": time.time() + lease_seconds}
        return self._run(self.Q["renew_batch_lease"], params) == 1

    def get_batch(self, batch_id: str) -> Batch | None:
        row = self._one(self.Q["get_batch"], (batch_id,))
        return None if row is None else batch_from_row(row)

    def list_batches(self, job_id: str) -> list[Batch]:
        return [batch_from_row(r) for r in self._all(self.Q["list_batches"], (job_id,))]

    def batch_stats(self, job_id: str) -> BatchStats:
        row = self._one(self.Q["batch_stats"], (job_id,))
        assert row is not None
        return BatchStats(**{k: int(row[k]) for k in BatchStats.__dataclass_fields__})

    def claim_batch(self, owner: str, lease_seconds: float) -> Batch | None:
        if self._one(self.Q["claimable_batch"], {"clock": time.time()}) is None:
            return None
        row = self._returning(self.Q["claim_batch"], self._lease(owner, lease_seconds))
        return None if row is None else batch_from_row(row)

    def set_spec(self, job_id: str, spec: dict[str, tuple[str | None, str | None]]) -> bool:
        params = {"spec": json.dumps(spec), "now": now_iso(), "id": job_id}
        return self._run(self.Q["set_spec"], params) == 1

    def usage_since(self, since: str) -> dict[str, int]:
        batches = self._one(self.Q["bulk_batches_since"], {"since": since})
        out = {"bulk_batches": int(batches["batches"]) if batches else 0}
        for row in self._all(self.Q["jobs_since"], {"since": since}):
            out[f"jobs:{row['job_type']}"] = int(row["n"])
        return out

    # ---- logins: users, connected apps, sessions ---------------------------------------------

    def add_user(self, user: User) -> None:
        self._run(self.Q["add_user"], {
            "id": user.id, "username": user.username, "email": user.email,
            "full_name": user.full_name, "credential_hash": user.credential_hash,
            "created_date": user.created_date, "is_admin": int(user.is_admin),
            "manage_data_integrations": int(user.manage_data_integrations),
        })  # fmt: skip

    def set_user_roles(self, user_id: str, is_admin: bool, manage_data_integrations: bool) -> None:
        self._run(self.Q["set_user_roles"], {
            "id": user_id, "is_admin": int(is_admin),
            "manage_data_integrations": int(manage_data_integrations),
        })  # fmt: skip

    def get_user(self, user_id: str) -> User | None:
        row = self._one(self.Q["get_user"], (user_id,))
        return None if row is None else user_from_row(row)

    def get_user_by_name(self, username: str) -> User | None:
        row = self._one(self.Q["get_user_by_name"], (username,))
        return None if row is None else user_from_row(row)

    def list_users(self) -> list[User]:
        return [user_from_row(r) for r in self._all(self.Q["list_users"])]

    def remove_user(self, username: str) -> str | None:
        row = self._returning(self.Q["remove_user"], (username,))
        return None if row is None else str(row["id"])

    def login_attempt(self, user_id: str, now: float) -> int | None:
        row = self._returning(self.Q["login_attempt"], {"id": user_id, "now": now})
        return None if row is None else int(row["failed_logins"])

    def login_failed(self, user_id: str, max_attempts: int, lock_until: float) -> None:
        self._run(self.Q["login_failed"], {"id": user_id, "max": max_attempts, "until": lock_until})

    def login_ok(self, user_id: str) -> None:
        self._run(self.Q["login_ok"], (user_id,))

    def add_app(self, app: App) -> None:
        self._run(self.Q["add_app"], {
            "client_id": app.client_id, "name": app.name, "secret_hash": app.secret_hash,
            "run_as": app.run_as, "created_date": app.created_date,
        })  # fmt: skip

    def get_app(self, client_id: str) -> App | None:
        row = self._one(self.Q["get_app"], (client_id,))
        return None if row is None else App(**dict(row))  # type: ignore[call-overload]

    def list_apps(self) -> list[App]:
        return [App(**dict(r)) for r in self._all(self.Q["list_apps"])]  # type: ignore[call-overload]

    def add_session(self, session: Session) -> None:
        self._run(self.Q["add_session"], {
            "token_hash": session.token_hash, "kind": session.kind, "user_id": session.user_id,
            "client_id": session.client_id, "parent": session.parent, "issued": session.issued,
            "expires": session.expires,
        })  # fmt: skip

    def get_session(self, token_hash: str) -> Session | None:
        row = self._one(self.Q["get_session"], (token_hash,))
        return None if row is None else Session(**dict(row))  # type: ignore[call-overload]

    def extend_session(self, token_hash: str, expires: float) -> None:
        self._run(self.Q["extend_session"], {"token_hash": token_hash, "expires": expires})

    def delete_session(self, token_hash: str) -> bool:
        return self._run(self.Q["delete_session"], (token_hash,)) == 1

    def purge_sessions(self, now: float) -> None:
        self._run(self.Q["purge_sessions"], (now,))
