"""Parse the next internal batch while the current one is written.

sqlite3 and libpq release the GIL while the database works (stepping a statement, sending a
COPY), so a second thread can parse the next 10,000 rows of CSV meanwhile: a two-stage
pipeline with a queue of one batch, so memory grows by one batch at most. The consumer sees
exactly what `RowReader.next_rows` would have given it, in order, errors included.

A small upload (one batch or so) gains nothing from a second thread and pays for it: thread
start and GIL hand-offs added ~5 ms to a 1-record job. `batches` picks the inline reader for
those.
"""

from __future__ import annotations

import queue
import threading
from typing import Protocol

Problems = dict[int, str]


class ChunkSource(Protocol):
    malformed: Problems

    def next_rows(self, n: int) -> list[list[str]]: ...


# Below this, a job is parsed inline: at most about two batches of typical rows.
PREFETCH_MIN_BYTES = 4 << 20


class Inline:
    """The same interface without a thread."""

    def __init__(self, rows: ChunkSource, size: int) -> None:
        self._rows, self._size = rows, size

    def next_rows(self) -> tuple[list[list[str]], Problems]:
        return self._rows.next_rows(self._size), self._rows.malformed

    def close(self) -> None:
        pass


def batches(rows: ChunkSource, size: int, upload_bytes: int) -> Inline | Prefetch:
    """The reader of a job's internal batches: parsing ahead on a thread for large uploads."""
    if upload_bytes < PREFETCH_MIN_BYTES:
        return Inline(rows, size)
    return Prefetch(rows, size)


class Prefetch:
    def __init__(self, rows: ChunkSource, size: int) -> None:
        self._rows, self._size = rows, size
        self._queue: queue.Queue[tuple[list[list[str]], Problems, BaseException | None]] = (
            queue.Queue(maxsize=1)
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bulkforce-parse", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                chunk = self._rows.next_rows(self._size)
                item: tuple[list[list[str]], Problems, BaseException | None] = (
                    chunk, dict(self._rows.malformed), None
                )  # fmt: skip
            except BaseException as e:  # handed to the consumer, raised where it asks
                item = ([], {}, e)
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=0.05)
                    break
                except queue.Full:
                    continue
            if item[2] is not None or not item[0]:
                return

    def next_rows(self) -> tuple[list[list[str]], Problems]:
        """The next batch's rows and its malformed rows; raises what parsing raised."""
        chunk, malformed, error = self._queue.get()
        if error is not None:
            raise error
        return chunk, malformed

    def close(self) -> None:
        """Stop parsing ahead; returns once the parsing thread no longer touches the reader
        (its file may be closed right after)."""
        self._stop.set()
        self._thread.join()
