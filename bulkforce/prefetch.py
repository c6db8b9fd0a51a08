"""Produce the next items of a sequence on a thread of its own while the caller uses this one.

The worker reads, parses and coerces internal batch N+1 here while it writes batch N. Both
databases leave the GIL free while they work (sqlite3 around each statement step, psycopg
while it waits on the server), so the two overlap on two cores. The queue is bounded: at most
`depth` batches wait, which bounds memory like the single-threaded loop did.
"""

from __future__ import annotations

import abc
import queue
import threading
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Generic, TypeVar

T = TypeVar("T")

# Starting the thread costs ~0.3-0.5 ms of CPU and, on a busy server, a few ms of waiting for
# the GIL: more than overlapping an item that takes less than this to produce can save. A
# 100-row job's only batch is produced in ~0.3 ms; the thread then started only to find the
# end of the file (1-record job on PostgreSQL, worker: 1.9 → 1.4 ms CPU, 4.0 → 2.1 ms).
CHEAP_SECONDS = 0.001


class _End:
    pass


_END = _End()


class Batches(abc.ABC, Generic[T]):
    """Where the worker takes a job's prepared batches from, in order (Prefetch here, or
    prepare_proc.ProcessBatches): an iterator and a context manager whose exit stops what
    produces them. `thread_seconds` is the CPU time that took, for the log."""

    thread_seconds = 0.0

    def __enter__(self) -> Batches[T]:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __iter__(self) -> Iterator[T]:
        return self

    @abc.abstractmethod
    def __next__(self) -> T: ...

    @abc.abstractmethod
    def discard(self, item: T) -> None:
        """The caller is done with `item`."""

    @abc.abstractmethod
    def close(self) -> None: ...


class Prefetch(Batches[T]):
    """Iterate over `produce()` results until it returns None. The first `inline` items, and
    then every item after one that took under `cheap` CPU seconds to produce, are produced
    on the caller's thread (a small job pays no thread); the rest on a background thread,
    `depth` ahead. An exception in `produce` is raised to the caller
    where its item would have been. Use as a context manager: leaving it stops and joins the
    thread, so nothing reads the source after the caller has closed it."""

    def __init__(
        self, produce: Callable[[], T | None], depth: int = 1, inline: int = 1,
        cheap: float = CHEAP_SECONDS,
    ) -> None:  # fmt: skip
        self._produce = produce
        self._queue: queue.Queue[T | _End | BaseException] = queue.Queue(maxsize=depth)
        self._inline = inline
        self._cheap = cheap
        self._last_cheap = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._done = False
        self.thread_seconds = 0.0  # CPU time the background thread used (for the log)
        self._used: list[T] = []

    def __next__(self) -> T:
        if self._done:
            raise StopIteration
        if self._thread is None and (self._inline > 0 or self._last_cheap):
            self._inline -= 1
            cpu = time.thread_time()
            item = self._produce()
            self._last_cheap = time.thread_time() - cpu < self._cheap
            if item is None:
                self._done = True
                raise StopIteration
            return item
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="bulkforce-prefetch", daemon=True
            )
            self._thread.start()
        got = self._queue.get()
        if isinstance(got, _End):
            self._done = True
            raise StopIteration
        if isinstance(got, BaseException):
            self._done = True
            raise got
        return got

    def _put(self, item: T | _End | BaseException) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            self.thread_seconds = time.thread_time()

    def discard(self, item: T) -> None:
        """The caller is done with `item`: it is freed on the background thread. A batch is
        some 300,000 objects; freeing them takes the writer ~6% of its time otherwise."""
        if self._thread is not None:
            self._used.append(item)

    def _loop(self) -> None:
        try:
            while not self._stop.is_set():
                self._used.clear()  # list methods are atomic under the GIL
                item = self._produce()
                if item is None:
                    self._put(_END)
                    return
                if not self._put(item):
                    return
        except BaseException as e:  # handed to the consumer, raised in its thread
            self._put(e)

    def close(self) -> None:
        self._done = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
