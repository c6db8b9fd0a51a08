"""Copying SQLite's WAL back into the database file: when, and on which thread.

SQLite's own autocheckpoint (every 1,000 WAL pages) runs inside the COMMIT, with every other
writer queued behind it: in a burst of 50 small jobs, ~4 checkpoints of 7-8 ms each on the
path every job waits on. So the store turns it off and checkpoints after its commits, every
CHECKPOINT_COMMITS commits or CHECKPOINT_ROWS changed rows, once the write lock is free (a
PASSIVE checkpoint takes no write lock: other writers go on meanwhile).

After large commits (CHECKPOINT_ROWS rows since the last checkpoint: a job's batches), the
checkpoint runs on a thread of its own, so that the committing thread goes on with its next
transaction while the pages are copied and synced: a 100,000-row upsert into 1M rows spent
~0.9 s of its ~4 s waiting for them on the worker's writer thread.

The catch: a checkpoint copies what was committed before it began, and the WAL starts over
from its beginning only when a write begins with all of it copied. A writer that goes
straight on to its next transaction never lets that happen, and the WAL grows by all it
writes. So small commits (every CHECKPOINT_COMMITS of them) are checkpointed by the
committing thread, before its next BEGIN, as are large ones once the WAL holds more than
SYNC_ABOVE_BYTES: the WAL starts over there.

Starting over does not make the file smaller: after a 1M-row job it keeps ~450 MB of disk
until the server stops. Once it has held more than SHRINK_ABOVE_BYTES, the checkpoint thread
cuts it back to nothing (a TRUNCATE checkpoint) when the file has not been written for
QUIET_SECONDS: by no process (the API's and each worker's store checkpoint on their own, and
a worker's commit groups leave the API nothing to commit for many seconds).
Not inside a write, as `PRAGMA journal_size_limit` would: the first 1-record job after the
1M-row upsert then took 113 ms instead of 4-13. The TRUNCATE checkpoint waits for no one
(busy_timeout 0): if a writer or a reader is in the way, it gives up and tries again once
it is quiet again. While it cuts, it holds the write lock: a write that comes then waits for
the file system to free the space (~100 ms for 450 MB here), once per large job, after no
process has written to the file for QUIET_SECONDS.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("bulkforce.store")

CHECKPOINT_COMMITS = 16
CHECKPOINT_ROWS = 10_000
# Above this much WAL, the committing thread checkpoints (see above). A large job's commit
# group alone can write ~150 MB of WAL; this bounds the file near what it reached before
# checkpoints moved off the writer (~320 MB on the 1M-row bench).
SYNC_ABOVE_BYTES = 256 * 1024 * 1024
SHRINK_ABOVE_BYTES = 64 * 1024 * 1024
QUIET_SECONDS = 5.0


def checkpoint(conn: sqlite3.Connection) -> int | None:
    """A PASSIVE checkpoint; the WAL's size in pages when it ran (None if it failed)."""
    try:
        row = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    except sqlite3.Error as e:  # the commit stands; the next checkpoint retries
        log.warning("SQLite checkpoint failed: %s", e)
        return None
    return int(row[1]) if row is not None and row[1] is not None else None


def truncate(conn: sqlite3.Connection) -> bool:
    """A TRUNCATE checkpoint that waits for no lock (busy_timeout 0 for its duration only: the
    connection's PASSIVE checkpoints keep theirs); whether the WAL file was cut back to
    nothing (not if a writer or a reader was in the way)."""
    timeout = conn.execute("PRAGMA busy_timeout").fetchone()[0]
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        row = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    except sqlite3.Error as e:  # busy: the next quiet spell retries
        log.debug("SQLite WAL truncation deferred: %s", e)
        return False
    finally:
        conn.execute(f"PRAGMA busy_timeout = {int(timeout)}")
    return row is not None and row[0] == 0


class Checkpoints:
    """When to checkpoint, and the thread that does it for the committing ones."""

    def __init__(self, connect: Callable[[], sqlite3.Connection], wal: Path) -> None:
        self._connect = connect
        self._wal = wal
        self._lock = threading.Lock()
        self._since = [0, 0]  # commits, rows changed
        self._wal_pages = 0  # as of the last checkpoint
        self._page_size = 0
        self._wanted = threading.Event()
        self._shrink = False  # the WAL file grew past SHRINK_ABOVE_BYTES: cut it when quiet
        self._closed = False
        self._thread: threading.Thread | None = None

    def after_commit(self, conn: sqlite3.Connection, changed: int) -> None:
        """Called by a thread that committed and let go of the write lock."""
        with self._lock:
            self._since[0] += 1
            self._since[1] += changed
            commits, rows = self._since
            large = rows >= CHECKPOINT_ROWS
            if commits < CHECKPOINT_COMMITS and not large:
                return
            self._since = [0, 0]
            if not self._page_size:
                self._page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
            full = self._wal_pages * self._page_size > SYNC_ABOVE_BYTES
            here = not large or full or self._closed
        if here:
            self._record(checkpoint(conn))
        else:
            self._start()
            self._wanted.set()

    def _record(self, pages: int | None) -> None:
        if pages is None:
            return
        with self._lock:
            self._wal_pages = pages
            grown = pages * self._page_size > SHRINK_ABOVE_BYTES and not self._shrink
            self._shrink = self._shrink or grown
        if grown:  # the checkpoint thread cuts the file back once it is quiet: woken, so
            self._start()  # that from now on it waits at most QUIET_SECONDS at a time
            self._wanted.set()

    def _start(self) -> None:
        with self._lock:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(
                    target=self._run, name="bulkforce-checkpoint", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        conn = self._connect()
        try:
            while True:
                wanted = self._wanted.wait(QUIET_SECONDS if self._shrink else None)
                self._wanted.clear()
                if self._closed:
                    return
                if wanted:
                    self._record(checkpoint(conn))
                    continue
                idle = self._idle()
                if idle is None or (idle and truncate(conn)):
                    with self._lock:
                        self._shrink = False
        finally:
            conn.close()

    def _idle(self) -> bool | None:
        """Whether no process has written to the WAL file for QUIET_SECONDS; None if it is
        small again (cut back by another process, or never grown on disk)."""
        try:
            st = os.stat(self._wal)
        except FileNotFoundError:
            return None
        if st.st_size <= SHRINK_ABOVE_BYTES:
            return None
        return time.time() - st.st_mtime >= QUIET_SECONDS

    def close(self) -> None:
        """Stop the thread (after a checkpoint in progress). The last connection to close
        checkpoints what is left."""
        with self._lock:
            self._closed = True
            thread = self._thread
        self._wanted.set()
        if thread is not None:
            thread.join()
