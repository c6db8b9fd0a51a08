"""`serve`'s workers in a child process (PostgreSQL).

Why a process: worker threads in the API's process share its GIL with the event loop, so every
status poll, upload and close delays the jobs, and every job's Python work delays the requests.
PostgreSQL lets any number of processes share the work (LISTEN/NOTIFY wakes them, leases hand
jobs over), so `serve` starts one `bulkforce worker` and keeps it running. Measured on 2 cores,
50 concurrent 100-row jobs: close→JobComplete p95 424-634 → 321-447 ms; a 1-record job's
median 19.8-23.9 → 14.7-14.9 ms. SQLite keeps its workers as threads: its write lock is handed
over inside one process on a condition, across processes only by SQLite's sleeping busy wait.

The child dies with its parent: it reads its stdin, a pipe from the parent, and exits at EOF,
which the kernel delivers however the parent ended. So a killed server leaves no worker behind,
as the threads it replaces did not (its leases expire, as theirs did).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence

log = logging.getLogger(__name__)

RESTART_SECONDS = 1.0


def worker_argv(
    database: str, data_dir: str, schemas: Sequence[str], threads: int, tuning: dict[str, object]
) -> list[str]:
    """The `bulkforce worker` command line that processes jobs as `serve` would."""
    argv = [sys.executable, "-m", "bulkforce", "worker", "--database", database,
            "--data-dir", data_dir, "--threads", str(threads), "--exit-with-parent"]  # fmt: skip
    for schema in schemas:
        argv += ["--schema", schema]
    for name, value in tuning.items():
        argv += [f"--{name.replace('_', '-')}", str(value)]
    return argv


class WorkerChild:
    """One `bulkforce worker` child, restarted when it exits while the server runs."""

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._watch = threading.Thread(target=self._supervise, name="bulkforce-worker-child",
                                       daemon=True)  # fmt: skip

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None else None

    def start(self) -> None:
        self._spawn()
        self._watch.start()

    def _spawn(self) -> None:
        with self._lock:
            if self._stopping.is_set():
                return
            # A session of its own: a Ctrl-C at the terminal reaches the server, which stops
            # the child in order, and not the child halfway through the server's shutdown.
            self._proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, start_new_session=True)

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            proc = self._proc
            if proc is None:
                return
            code = proc.wait()
            if self._stopping.is_set():
                return
            log.error("the worker process (PID %d) exited with code %s; starting another in %.0f s",
                      proc.pid, code, RESTART_SECONDS)  # fmt: skip
            if proc.stdin is not None:
                proc.stdin.close()
            if self._stopping.wait(RESTART_SECONDS):
                return
            self._spawn()

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM: the child's threads finish their batch and exit (SIGKILL after `timeout`)."""
        with self._lock:
            self._stopping.set()
            proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.error("the worker process (PID %d) ignored SIGTERM for %.0f s; killing it",
                          proc.pid, timeout)  # fmt: skip
                proc.kill()
                proc.wait()
        if proc.stdin is not None:
            proc.stdin.close()
        if self._watch.is_alive():
            self._watch.join(timeout=5)


def exit_with_parent() -> None:
    """In the child: exit at once when the parent's end of stdin closes (the parent died, or
    gave up waiting for a graceful stop). Like the threads this process replaces, the work in
    hand is dropped: its transaction rolls back and its lease expires."""

    fd = sys.stdin.fileno()

    def watch() -> None:
        # os.read, not sys.stdin: a daemon thread blocked inside the buffered reader holds its
        # lock, and the interpreter's exit then waits a second for it and aborts.
        try:
            while os.read(fd, 4096):
                pass
        except OSError:
            pass
        log.warning("the server that started this worker is gone; exiting")
        logging.shutdown()
        os._exit(1)

    threading.Thread(target=watch, name="bulkforce-parent-watch", daemon=True).start()
