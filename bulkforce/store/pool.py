"""Database connections, bounded (issue #9, item 14).

Request threads come and go (anyio retires idle ones); a connection per thread leaked SQLite
handles and held one PostgreSQL connection per pool thread forever. Instead a thread borrows a
connection from a bounded pool for one store operation and gives it back; operations nested
inside it (a query inside a write transaction) reuse the same one. A worker thread, which runs
for the life of the process and tunes its connection, pins a dedicated one instead.
"""

from __future__ import annotations

import select
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Generic, TypeVar

from bulkforce.store.base import StoreError

C = TypeVar("C")

# Connections one process's request threads share (each store operation holds one briefly).
DEFAULT_POOL_SIZE = 10
POOL_TIMEOUT = 30.0


def has_news(fileno: int) -> bool:
    """Whether an idle client connection's socket has anything to read. A database server
    that ends a session (backend terminated, restart, crash) says so and closes the socket;
    a healthy idle session says nothing. Costs a system call, not a round trip."""
    poller = select.poll()  # not select(): descriptors past 1023 must work too
    poller.register(fileno, select.POLLIN | select.POLLPRI)
    return bool(poller.poll(0))


class SimplePool(Generic[C]):
    """At most `size` connections, idle ones kept for reuse (SQLite: psycopg_pool's role)."""

    def __init__(
        self, connect: Callable[[], C], close: Callable[[C], None],
        reset: Callable[[C], bool], size: int, timeout: float = POOL_TIMEOUT,
    ) -> None:  # fmt: skip
        self._connect, self._close, self._reset = connect, close, reset
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[C] = []
        self._lock = threading.Lock()
        self.timeout = timeout

    @contextmanager
    def connection(self) -> Iterator[C]:
        if not self._slots.acquire(timeout=self.timeout):
            raise StoreError(f"no database connection was free within {self.timeout:.0f} s")
        conn: C | None = None
        try:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                conn = self._connect()
            yield conn
        finally:
            if conn is not None:
                if self._reset(conn):
                    with self._lock:
                        self._idle.append(conn)
                else:
                    self._close(conn)
            self._slots.release()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            self._close(conn)


class ThreadConnections(Generic[C]):
    """Which connection the calling thread uses: its pinned one, the one it borrowed for the
    operation in progress, or a fresh borrow from the pool."""

    def __init__(
        self, pooled: Callable[[], AbstractContextManager[C]], connect: Callable[[], C],
        close: Callable[[C], None], broken: Callable[[C], bool] = lambda conn: False,
        side_pooled: Callable[[], AbstractContextManager[C]] | None = None,
        tune_pinned: Callable[[C], None] = lambda conn: None,
    ) -> None:  # fmt: skip
        self._pooled, self._connect, self._close = pooled, connect, close
        # Settings of a worker thread's own connections, applied again if one is reopened.
        self._tune_pinned = tune_pinned
        self._broken = broken
        # Side connections come from a pool of their own: a thread that holds a connection
        # and asks for a second must never wait for threads that are doing the same.
        self._side_pooled = side_pooled or pooled
        self._local = threading.local()

    def _pinned(self, slot: str) -> C:
        """The thread's own connection in `slot`, reopened if the server dropped it."""
        conn: C | None = getattr(self._local, slot, None)
        if conn is None or self._broken(conn):
            conn = self._connect()
            try:
                self._tune_pinned(conn)
            except BaseException:
                self._close(conn)
                raise
            setattr(self._local, slot, conn)
        return conn

    @property
    def pinned(self) -> bool:
        """Whether the calling thread uses connections of its own (a worker thread)."""
        return bool(getattr(self._local, "pinned", False))

    @contextmanager
    def borrow(self) -> Iterator[C]:
        if getattr(self._local, "pinned", False):
            yield self._pinned("conn")
            return
        held: C | None = getattr(self._local, "conn", None)
        if held is not None:  # an operation nested in one that holds a connection
            yield held
            return
        with self._pooled() as conn:
            self._local.conn = conn
            try:
                yield conn
            finally:
                self._local.conn = None

    @contextmanager
    def side(self) -> Iterator[C]:
        """A second connection, outside the thread's transaction."""
        if getattr(self._local, "pinned", False):
            yield self._pinned("side")
            return
        with self._side_pooled() as conn:
            yield conn

    def pin(self) -> C:
        """From now on this thread keeps its own connection (a worker thread)."""
        self._local.pinned = True
        return self._pinned("conn")

    def release_thread(self) -> None:
        """Close what this thread pinned (a worker stopping)."""
        for slot in ("conn", "side"):
            conn = getattr(self._local, slot, None)
            if conn is not None and getattr(self._local, "pinned", False):
                self._close(conn)
            setattr(self._local, slot, None)
        self._local.pinned = False
