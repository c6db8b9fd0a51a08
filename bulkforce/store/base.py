"""The store interface. Driver errors never leave a store: they become StoreError."""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from bulkforce.engine.schema import Schema, SObject
from bulkforce.model import Batch, BatchState, BatchStats, Job, JobFilter, JobState

Row = Sequence[Any]


class StoreError(Exception):
    """A database failure, wrapped so callers never see driver exceptions."""


class UniqueViolation(StoreError):
    """An insert or update broke a unique index."""


class RecordTable(abc.ABC):
    """DML on one sObject's table inside a transaction."""

    @abc.abstractmethod
    def insert(self, columns: Sequence[str], rows: Iterable[Row]) -> None: ...

    @abc.abstractmethod
    def update(self, columns: Sequence[str], rows: Iterable[Row]) -> None:
        """rows are (value per column..., Id)."""

    @abc.abstractmethod
    def lookup(self, column: str, keys: Sequence[Any]) -> list[tuple[Any, str, bool]]:
        """(key value as stored, Id, IsDeleted) for rows whose `column` equals one of `keys`."""

    @abc.abstractmethod
    def soft_delete(self, ids: Sequence[str], now: str, user_id: str) -> None: ...

    @abc.abstractmethod
    def hard_delete(self, ids: Sequence[str]) -> None: ...


class Tx(abc.ABC):
    """One write transaction: record DML plus the job bookkeeping that must commit with it."""

    @abc.abstractmethod
    def records(self, obj: SObject) -> RecordTable: ...

    @abc.abstractmethod
    def savepoint(self) -> AbstractContextManager[None]:
        """A nested scope: an exception inside rolls back only what the scope did."""

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


class Store(abc.ABC):
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
    def transition(
        self, job_id: str, from_states: Iterable[JobState], to_state: JobState, **changes: Any
    ) -> Job | None:
        """Atomically move a job between states; None if it was not in `from_states`."""

    @abc.abstractmethod
    def record_upload(self, job_id: str, size: int, problem: str | None) -> bool: ...

    @abc.abstractmethod
    def delete_job(self, job_id: str) -> None: ...

    @abc.abstractmethod
    def claim_job(self, owner: str, lease_seconds: float) -> Job | None: ...

    @abc.abstractmethod
    def clear_leases(self) -> None: ...

    @abc.abstractmethod
    def transaction(self) -> AbstractContextManager[Tx]: ...

    def writers_waiting(self) -> int:
        """Other writers blocked on this store's write lock (0 where writes do not queue)."""
        return 0

    # ---- Bulk 1.0 batches --------------------------------------------------------------------

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
