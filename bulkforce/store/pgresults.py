"""A batch's result files, stored on PostgreSQL by a thread and a connection of their own.

The worker's backend is what a large PostgreSQL insert waits on: after each batch's COPY it
stored the batch's two result files (~217 MB per 1M rows, through TOAST and the WAL) before
the next COPY could start. Measured on 1M rows, 2 cores: 25.1 s with them, 19.9 s without.
Here they go to another backend, on the other core, while the worker goes on with the next
batch.

Nothing is lost by it: the transaction that commits a batch first waits until its result
files are committed (PostgresStore.transaction calls `wait`), so a committed batch always
has them. A batch rolled back leaves its result rows behind; its retry overwrites them (the
same names), nothing reads past the batches committed, and they go with the job.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from bulkforce.store.pgsql import Q, lazy_commit, wrapped

if TYPE_CHECKING:
    from bulkforce.store.postgres import PostgresStore

# Result writes a worker may have in flight: each holds its batch's two files (~2 MB).
AHEAD = 4
# Smaller results are written in the worker's own transaction: for a small job the hand-off
# and the second connection's own commit (a WAL flush) would cost more than they overlap.
BACKGROUND_MIN_BYTES = 256 * 1024


class ResultWrites:
    def __init__(self, store: PostgresStore) -> None:
        self.store = store
        self._pool: ThreadPoolExecutor | None = None  # made at the first write
        self._pool_lock = threading.Lock()
        self._local = threading.local()

    def _pending(self) -> list[Future[None]]:
        pending: list[Future[None]] | None = getattr(self._local, "pending", None)
        if pending is None:
            pending = self._local.pending = []
        return pending

    @contextmanager
    def scope(self) -> Iterator[None]:
        """A write transaction of this thread: writes made in it go ahead in the background
        (outside one, or when small, they are made before `write` returns)."""
        depth = getattr(self._local, "depth", 0)
        self._local.depth = depth + 1
        try:
            yield
        finally:
            self._local.depth = depth
            if not depth:  # the outermost: after a rollback they are moot (and finish alone)
                self._pending().clear()

    def write(self, params: tuple[Any, ...]) -> None:
        size = sum(len(p) for p in params)
        if size < BACKGROUND_MIN_BYTES or not getattr(self._local, "depth", 0):
            # In the caller's transaction, on its connection (with no savepoint of its own:
            # a failure fails the batch and rolls the transaction back anyway).
            with self.store._conns.borrow() as conn, wrapped():
                conn.execute(Q["blob_put_pair"], params)
            return
        pending = self._pending()
        while len(pending) >= AHEAD:  # bounds memory; a failed write fails the batch here
            pending.pop(0).result()
        pending.append(self._executor().submit(self._store, params))

    def wait(self) -> None:
        """Until every write of this thread's transaction is committed; the first failure
        is raised (and the transaction rolls back)."""
        pending = self._pending()
        try:
            for done in pending:
                done.result()
        finally:
            pending.clear()

    def close(self) -> None:
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(2, thread_name_prefix="bulkforce-results")
            return self._pool

    def _store(self, params: tuple[Any, ...]) -> None:
        # Not waiting for the WAL flush: the batch's commit, which comes after it in the WAL,
        # flushes it too.
        with self.store._conns.borrow() as conn, wrapped():
            lazy_commit(conn, Q["blob_put_pair"], params)
