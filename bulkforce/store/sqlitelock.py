"""The SQLite write lock between processes: the API server and its worker process.

SQLite orders writers with a busy handler that sleeps 1-100 ms between tries, so a writer
queued there starts late by up to that much after the lock comes free. Within one process
writers queue on a lock of ours instead (store/sqlite.py); between processes they queue on
an `flock` of a file beside the database, which the kernel hands to the next waiter at once.

A second file says that writers wait: each process holds a shared lock on it while any of its
threads waits for the write lock. A worker that is about to take the write lock again, or
that holds it across batches, asks whether anyone else waits (an exclusive try that fails)
and steps aside (Worker._commit_due, Worker._let_writers_in).
"""

from __future__ import annotations

import fcntl
import os
import threading
import time


def _open(path: str) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


class ProcessWriteLock:
    """One per store: taken by the thread that holds the store's in-process write lock."""

    def __init__(self, db_path: str) -> None:
        self._lock = _open(db_path + "-writer.lock")
        # Two descriptors of the "waiting" file: flock belongs to an open file, so a probe
        # on the descriptor that announces would only convert this process's own lock.
        self._announce = _open(db_path + "-waiting.lock")
        self._probe = _open(db_path + "-waiting.lock")
        self._probe_lock = threading.Lock()

    def acquire(self) -> None:
        fcntl.flock(self._lock, fcntl.LOCK_EX)  # releases the GIL while it waits

    def release(self) -> None:
        fcntl.flock(self._lock, fcntl.LOCK_UN)

    def announce(self, waiting: bool) -> None:
        """This process has writers waiting (True) or none any more (False)."""
        fcntl.flock(self._announce, fcntl.LOCK_SH if waiting else fcntl.LOCK_UN)

    def others_waiting(self) -> bool:
        """Whether a writer of another process (or of this one) waits for the write lock."""
        with self._probe_lock:
            try:
                fcntl.flock(self._probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(self._probe, fcntl.LOCK_UN)
            return False

    def wait_for_no_waiters(self, deadline: float) -> None:
        """Until no process announces waiting writers, or `deadline` (time.monotonic())."""
        while self.others_waiting() and time.monotonic() < deadline:
            time.sleep(0.0002)

    def close(self) -> None:
        for fd in (self._lock, self._announce, self._probe):
            os.close(fd)
