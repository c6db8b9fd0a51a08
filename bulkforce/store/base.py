"""The store interface. Driver errors never leave a store: they become StoreError."""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bulkforce.auth.model import App, Session, User
from bulkforce.engine.schema import Schema, SObject
from bulkforce.model import Batch, BatchState, BatchStats, Job, JobFilter, JobState, QueryCursor
from bulkforce.store.blobs import Blobs, UploadWriter
from bulkforce.store.wakeup import Wakeup

Row = Sequence[Any]


class ColumnRows(Sequence[tuple[Any, ...]]):
    """Rows kept as their columns: a store that binds column by column (SQLite's multi-row
    INSERT) reads `columns` and never builds a tuple per row; anything else iterates rows."""

    def __init__(self, columns: Sequence[Sequence[Any]]) -> None:
        self.columns = columns
        self._n = len(columns[0]) if columns else 0

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return list(zip(*(c[i] for c in self.columns), strict=True))
        return tuple(c[i] for c in self.columns)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return zip(*self.columns, strict=True)


# Read connections of query_rows kept open between streams; a burst beyond this closes its
# extras when it ends, so idle connections never outgrow the steady load.
IDLE_READERS = 4


class StoreError(Exception):
    """A database failure, wrapped so callers never see driver exceptions."""


class UniqueViolation(StoreError):
    """An insert or update broke a unique index."""


class LockWaitTimeout(StoreError):
    """A statement waited for a lock longer than its transaction allowed (Tx.limit_lock_waits).
    Nothing is wrong with the database: the transaction rolls back and may be redone."""


class BadValue(Exception):
    """The database refused a value (the data's fault, not the database's): the record
    fails, nothing is retried. Deliberately not a StoreError, which means "database unwell"."""


@dataclass(frozen=True)
class Refused:
    """A record RecordTable.write_each could not write, at `pos` of its rows, because a
    unique index refused it: `column` is the first unique column, in the batch's order, whose
    value `holder` (an Id) held then; both None if none did."""

    pos: int
    column: str | None
    holder: str | None


class RecordTable(abc.ABC):
    """DML on one sObject's table inside a transaction."""

    # whether write_each has a way of its own (else the caller writes row by row)
    writes_each = False

    @abc.abstractmethod
    def insert(
        self, columns: Sequence[str], rows: Iterable[Row], constants: Mapping[str, Any] = {},
        encoded: object = None,
    ) -> None:  # fmt: skip
        """`constants` are the same in every row (timestamps, creator, defaults): a store may
        bind them once rather than per row. `encoded`: what Store.encode_insert made of the
        same rows ahead, if anything; a store may send it instead of the rows."""

    @abc.abstractmethod
    def update(
        self, columns: Sequence[str], rows: Iterable[Row], constants: Mapping[str, Any] = {}
    ) -> None:
        """rows are (value per column..., Id)."""

    def write_each(
        self, columns: Sequence[str], rows: Sequence[Row], constants: Mapping[str, Any],
        insert: bool,
    ) -> list[Refused]:  # fmt: skip
        """Insert (or update) `rows` one at a time, in order, each alone, as the caller's
        own loop would, and say which were refused. Only where `writes_each` (SQLite has no
        such way: a statement and its savepoint cost it no round trip)."""
        raise NotImplementedError

    @abc.abstractmethod
    def lookup(self, column: str, keys: Sequence[Any]) -> list[tuple[Any, str, bool]]:
        """(key value as stored, Id, IsDeleted) for rows whose `column` equals one of `keys`."""

    @abc.abstractmethod
    def taken(self, column: str, keys: Sequence[Any]) -> list[tuple[int, str]]:
        """(position in `keys`, Id) for each key a stored record holds in `column`, deleted
        or not, equal as the column's unique index compares (the database's equality:
        case-insensitive where the column is)."""

    @abc.abstractmethod
    def soft_delete(self, ids: Sequence[str], now: str, user_id: str) -> None: ...

    @abc.abstractmethod
    def hard_delete(self, ids: Sequence[str]) -> None: ...


class Tx(abc.ABC):
    """One write transaction: record DML plus the job bookkeeping that must commit with it."""

    # Salesforce keeps a NUL (U+0000) inside a text value; PostgreSQL text cannot hold one.
    text_holds_nul = True
    # After a failed statement the transaction goes on with that statement undone (SQLite);
    # PostgreSQL aborts the whole transaction instead, so a statement that may fail needs a
    # savepoint around it there.
    statement_failure_recoverable = False

    @abc.abstractmethod
    def records(self, obj: SObject) -> RecordTable: ...

    @abc.abstractmethod
    def savepoint(self) -> AbstractContextManager[None]:
        """A nested scope: an exception inside rolls back only what the scope did."""

    def limit_lock_waits(self, seconds: float) -> None:
        """From now on in this transaction, a statement that waits longer than `seconds` for a
        lock fails with LockWaitTimeout. SQLite: nothing to do (one writer holds the whole
        database; no statement waits inside a transaction)."""
        return None

    @abc.abstractmethod
    def allocate(self, counter: str, count: int) -> int:
        """Reserve `count` consecutive values of a named counter; returns the first."""

    @abc.abstractmethod
    def finish_batch(
        self, batch_id: str, owner: str, state: BatchState, message: str | None,
        processed: int, failed: int, elapsed_ms: int,
    ) -> bool:  # fmt: skip
        """End a claimed Bulk 1.0 batch; False if its lease is no longer ours."""

    @abc.abstractmethod
    def job_state(self, job_id: str) -> tuple[JobState, str | None] | None:
        """(state, lease owner) of a job, read inside this transaction."""

    @abc.abstractmethod
    def commit_batch(
        self, job_id: str, owner: str, seq: int, processed: int, failed: int, elapsed_ms: int,
        lease_seconds: float,
    ) -> bool:  # fmt: skip
        """Mark batch `seq` done and add its counts; False if the job is not ours any more.

        The batch's result files are written before this commits: a batch counts as done,
        results included, exactly when this commit lands."""

    @abc.abstractmethod
    def complete_job(self, job_id: str, owner: str, header: Sequence[str] | None) -> bool:
        """InProgress → JobComplete with the batches of this transaction (`header` stored
        if the job has none yet); False if the job is not ours any more."""


class Store(abc.ABC):
    dialect: str  # "sqlite" or "postgres": which SQL the query compiler generates
    text_holds_nul = True  # as Tx.text_holds_nul, for work done before a transaction opens
    # Whether a large job's batches are best prepared in a child process (worker.py,
    # prepare_proc.py) rather than on a thread. SQLite: yes, its statements are steps that
    # leave the GIL free and a busy thread then makes each one wait. PostgreSQL: no, COPY's
    # rows are formatted holding the GIL anyway and its backend needs the second core; the
    # child's pickling only added work (1M rows: 56.6k -> 43.0k rec/s).
    prepare_in_child = False
    # Whether the processes that run this store's jobs fix glibc's mmap threshold (heap.py).
    # SQLite: yes, it keeps a 1M-row job's peak RSS under 300 MB with a worker process.
    # PostgreSQL: no, its peak is ~230 MB anyway and the mappings cost it speed (1M-row
    # insert, four alternating runs each: 41.3-46.9k rec/s with, 42.3-51.2k without).
    fixed_mmap_threshold = False

    # Whether the worker makes an insert's Ids and rows ready ahead of the write, on its
    # prefetch thread (engine.stage, encode_insert). PostgreSQL: yes, its writer
    # then goes from one COPY to the next and allocate uses a connection of its own.
    # SQLite: no, allocating there needs the write lock the writer holds.
    stages_inserts = False
    # How many batches of one large insert job may be written at once, each in its own
    # transaction and connection (bulkforce.streams). PostgreSQL: 2, so that two backends
    # copy at once. SQLite: 1, it has one writer.
    write_streams = 1

    def encode_insert(
        self, obj: SObject, columns: Sequence[str], rows: Iterable[Row],
        constants: Mapping[str, Any],
    ) -> object:  # fmt: skip
        """An insert's rows in the form this store's write sends them, made ahead of the
        write's transaction (RecordTable.insert's `encoded`); None where a store has
        nothing to gain by it."""
        return None

    @abc.abstractmethod
    def migrate(self) -> None: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    @abc.abstractmethod
    def ensure_tables(self, schema: Schema) -> None:
        """Create or extend one typed table per sObject, with indexes on key fields."""

    @abc.abstractmethod
    def get_meta(self, key: str) -> str | None: ...

    @abc.abstractmethod
    def set_meta(self, key: str, value: str) -> None: ...

    @abc.abstractmethod
    def delete_meta(self, key: str) -> None: ...

    @abc.abstractmethod
    def add_meta(self, key: str, value: str) -> str:
        """Store `value` unless the key has one already; return the value that is stored."""

    @abc.abstractmethod
    def key_prefix(self, object_name: str) -> str:
        """The custom object's key prefix, assigned once and kept across restarts."""

    @abc.abstractmethod
    def allocate(self, counter: str, count: int = 1) -> int: ...

    @abc.abstractmethod
    def insert_job(self, job: Job) -> None: ...

    @abc.abstractmethod
    def get_job(self, job_id: str) -> Job | None: ...

    @abc.abstractmethod
    def list_jobs(self, flt: JobFilter, after: str, limit: int) -> list[Job]: ...

    @abc.abstractmethod
    def recent_jobs(self, flt: JobFilter, limit: int) -> list[Job]:
        """The newest `limit` jobs matching every filter set (state, object, operation...)."""

    @abc.abstractmethod
    def transition(
        self, job_id: str, from_states: Iterable[JobState], to_state: JobState, **changes: Any
    ) -> Job | None:
        """Atomically move a job between states; None if it was not in `from_states`."""

    @abc.abstractmethod
    def record_upload(
        self,
        job_id: str,
        size: int,
        problem: str | None,
        upload: UploadWriter,
        rows: int | None = None,
    ) -> bool:
        """If the job is Open, count the upload and make it the job's data (`upload.swap`)
        in the same transaction; False, with nothing changed, if it is not. `rows`: its
        data lines, an estimate for progress."""

    @abc.abstractmethod
    def job_history(self, job_id: str) -> list[tuple[str, str]]:
        """(state, ISO time) of each state the job entered, oldest first."""

    @abc.abstractmethod
    def delete_job(self, job_id: str) -> None: ...

    @abc.abstractmethod
    def claim_job(self, owner: str, lease_seconds: float) -> Job | None: ...

    def claim_jobs(
        self, owner: str, lease_seconds: float, small_rows: int, limit: int
    ) -> list[Job]:
        """The next claimable job and, when it has at most `small_rows` data lines, up to
        `limit - 1` more such small ones behind it, oldest first, in one write. A store
        whose workers run on many hosts claims one at a time (a worker must not hold jobs
        another could run now)."""
        job = self.claim_job(owner, lease_seconds)
        return [] if job is None else [job]

    @abc.abstractmethod
    def renew_lease(self, job_id: str, owner: str, lease_seconds: float) -> bool:
        """Extend a running job's lease; False if the job is no longer ours and InProgress."""

    @abc.abstractmethod
    def clear_leases(self) -> None: ...

    # ---- REST query cursors (issue #10) ------------------------------------------------------

    @abc.abstractmethod
    def add_cursor(self, cursor: QueryCursor) -> None:
        """Store a new cursor (and forget expired ones)."""

    @abc.abstractmethod
    def get_cursor_page(self, cursor_id: str, pos: int) -> tuple[QueryCursor, str] | None:
        """A cursor and the keyset position its page at row `pos` resumes after (one query:
        every REST page after the first looks them up)."""

    @abc.abstractmethod
    def put_page(self, cursor_id: str, pos: int, after_key: str) -> None:
        """Remember where the page starting at row `pos` resumes (first writer wins)."""

    @abc.abstractmethod
    def transaction(self) -> AbstractContextManager[Tx]: ...

    @abc.abstractmethod
    def blobs(self, data_dir: Path) -> Blobs:
        """Where this store keeps uploads and results (files for SQLite, rows for PostgreSQL)."""

    @abc.abstractmethod
    def wakeup(self) -> Wakeup: ...

    @abc.abstractmethod
    def delete_expired(self, terminal_before: str, open_before: str) -> tuple[list[str], int]:
        """Retention: delete jobs ended (or Bulk 1.0 jobs created) before `terminal_before`,
        returning their ids and batch ids' owners for blob cleanup; abort Open jobs created
        before `open_before`. Returns (deleted job and batch ids, number aborted)."""

    @abc.abstractmethod
    def query_rows(
        self, sql: str, params: Sequence[Any], arraysize: int = 2000
    ) -> Iterator[tuple[Any, ...]]:
        """Stream the rows of one read-only SELECT (a compiled SOQL plan), `arraysize` at a
        time from the database, in one consistent snapshot, never blocking writers. The
        connection goes back to the store when the iterator is exhausted or closed."""

    @abc.abstractmethod
    def tune_for_bulk(self) -> None:
        """Configure this thread's connection for a worker's bulk writes (bigger caches,
        cheaper commits); API threads keep lean defaults."""

    def writers_waiting(self) -> int:
        """Other writers blocked on this store's write lock (0 where writes do not queue)."""
        return 0

    def let_writers_in(self, limit: float) -> None:
        """Wait, at most `limit` seconds, until the writers now queued on the write lock
        have had it (a worker about to take it for seconds lets API requests go first)."""
        return None

    def release_memory(self) -> None:
        """Give back what this thread's connection caches (after a large job: an idle
        worker need not hold a full page cache). Nothing to give back by default."""
        return None

    # ---- Bulk 1.0 batches --------------------------------------------------------------------

    @abc.abstractmethod
    def split_batch(
        self, batch: Batch, owner: str, chunk_ids: list[str], message: str, elapsed_ms: int
    ) -> bool:
        """PK chunking: end the claimed original batch as NotProcessed and queue one chunk
        batch per id (in order), all in one transaction; False if its lease is not ours."""

    @abc.abstractmethod
    def renew_batch_lease(self, batch_id: str, owner: str, lease_seconds: float) -> bool:
        """Extend a claimed batch's lease; False if it is no longer ours and InProgress."""

    @abc.abstractmethod
    def insert_batch(
        self, batch_id: str, job_id: str, content_type: str, record_count: int
    ) -> Batch | None:
        """Add a Queued batch, numbered after the job's last; None unless the job is Open."""

    @abc.abstractmethod
    def get_batch(self, batch_id: str) -> Batch | None: ...

    @abc.abstractmethod
    def list_batches(self, job_id: str) -> list[Batch]: ...

    @abc.abstractmethod
    def batch_stats(self, job_id: str) -> BatchStats: ...

    @abc.abstractmethod
    def abort_job(self, job_id: str, from_states: Iterable[JobState]) -> Job | None:
        """Abort a job and turn its Queued batches into NotProcessed, atomically."""

    @abc.abstractmethod
    def claim_batch(self, owner: str, lease_seconds: float) -> Batch | None:
        """Lease the next runnable batch (Serial jobs: strictly one at a time, in order)."""

    @abc.abstractmethod
    def set_spec(self, job_id: str, spec: dict[str, tuple[str | None, str | None]]) -> bool:
        """Attach a transformation spec; False unless the job is Open with no batch yet."""

    # ---- records and usage for the REST resources (issue #5) ---------------------------------

    @abc.abstractmethod
    def get_record(self, obj: SObject, record_id: str) -> dict[str, Any] | None:
        """One record's stored columns by name (IsDeleted included), or None."""

    @abc.abstractmethod
    def count_records(self, obj: SObject) -> int:
        """Rows in the object's table, soft-deleted ones included."""

    @abc.abstractmethod
    def page_records(
        self, obj: SObject, order_by: str, descending: bool, offset: int, limit: int,
        match: tuple[str, str] | None = None,
    ) -> list[dict[str, Any]]:  # fmt: skip
        """Records by API field name, sorted on the field `order_by` (then Id); `match` keeps
        only those whose field equals the value."""

    @abc.abstractmethod
    def delete_records(self, obj: SObject, keep_ids: Sequence[str] = ()) -> int:
        """Remove every record of `obj` but `keep_ids` for good; returns how many went."""

    @abc.abstractmethod
    def usage_since(self, since: str) -> dict[str, int]:
        """API use since an ISO timestamp: `bulk_batches` (Bulk 1.0 batches plus Bulk 2.0
        internal batches) and `jobs:<jobType>` counts of jobs created."""

    # ---- logins: users, connected apps, sessions (issue #6) ----------------------------------

    @abc.abstractmethod
    def add_user(self, user: User) -> None:
        """Raises UniqueViolation when the username (case-insensitive) is taken."""

    @abc.abstractmethod
    def set_user_roles(self, user_id: str, is_admin: bool, manage_data_integrations: bool) -> None:
        """Grant or take away the admin role and the Manage Data Integrations permission."""

    @abc.abstractmethod
    def get_user(self, user_id: str) -> User | None: ...

    @abc.abstractmethod
    def get_user_by_name(self, username: str) -> User | None:
        """Usernames match case-insensitively, as Salesforce's do."""

    @abc.abstractmethod
    def list_users(self) -> list[User]: ...

    @abc.abstractmethod
    def remove_user(self, username: str) -> str | None:
        """Delete the user and every session of theirs; their id, or None if unknown."""

    @abc.abstractmethod
    def login_attempt(self, user_id: str, now: float) -> int | None:
        """Count a login attempt before its password is checked: the attempts in a row so far,
        this one included, or None when the user is locked out (nothing counted)."""

    @abc.abstractmethod
    def login_failed(self, user_id: str, max_attempts: int, lock_until: float) -> None:
        """The counted attempt failed: lock until `lock_until` once `max_attempts` are counted."""

    @abc.abstractmethod
    def login_ok(self, user_id: str) -> None:
        """Reset the failed-login count and any lock."""

    @abc.abstractmethod
    def add_app(self, app: App) -> None: ...

    @abc.abstractmethod
    def get_app(self, client_id: str) -> App | None: ...

    @abc.abstractmethod
    def list_apps(self) -> list[App]: ...

    @abc.abstractmethod
    def add_session(self, session: Session) -> None: ...

    @abc.abstractmethod
    def get_session(self, token_hash: str) -> Session | None: ...

    @abc.abstractmethod
    def extend_session(self, token_hash: str, expires: float) -> None:
        """Move a session's expiry later (never earlier)."""

    @abc.abstractmethod
    def delete_session(self, token_hash: str) -> bool:
        """Revoke a session and the access tokens issued from it; False if it did not exist."""

    @abc.abstractmethod
    def purge_sessions(self, now: float) -> None:
        """Forget sessions that expired before `now`."""
