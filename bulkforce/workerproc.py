"""`serve`'s workers in a child process.

Why a process: worker threads in the API's process share its GIL with the event loop, so every
status poll, upload and close delays the jobs, and every job's Python work delays the requests.
So `serve` starts one child running its `--workers` threads (`python -m bulkforce.workerproc`,
the loop of `bulkforce worker` without the CLI's imports) and keeps it running.
Measured on 2 cores, 50 concurrent 100-row jobs, close→JobComplete p95: PostgreSQL
424-634 → 279-356 ms; SQLite, median of 15 bursts, 329 → 257 ms. A 1-record job's median on
PostgreSQL: 19.8-23.9 → 12.7-15.3 ms. The second interpreter costs ~30 MB (SQLite's 1M-row
insert peaks at 280 MB against 247 with threads, with heap.py's fixed mmap threshold).

- PostgreSQL: the child is a worker like any other (LISTEN/NOTIFY wakes it, leases hand jobs
  over).
- SQLite: the server owns the database; the child works on it under the server's locks (their
  descriptors are passed on, so the locks last until both processes are gone). Writers of the
  two processes queue on an flock (store/sqlitelock.py), and the server wakes the child with a
  byte down the pipe below. A child that dies leaves its leases to the server, which clears
  them before it starts the next.

The child dies with its parent: it reads its stdin, a pipe from the parent, and exits at EOF,
which the kernel delivers however the parent ended. So a killed server leaves no worker behind,
as the threads it replaces did not.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bulkforce.boot import private_files, setup_logging, tune_threads, tuned_context
from bulkforce.cli_options import exit_on_error
from bulkforce.jobs.service import Context
from bulkforce.store.wakeup import Wakeup
from bulkforce.worker import Worker

log = logging.getLogger(__name__)

# A dead child's successor starts after 1 s, then 2, 4 … up to a minute while each dies young
# (within STEADY_SECONDS: the database is down, say), so a child that cannot start does not
# fill the log; one that ran for a while is replaced after 1 s again.
RESTART_SECONDS = 1.0
MAX_RESTART_SECONDS = 60.0
STEADY_SECONDS = 60.0


# The child's spec travels in its environment, not on its command line: the database URL may
# hold a password (given to serve through BULKFORCE_DATABASE to keep it out of `ps`).
SPEC_ENV = "BULKFORCE_WORKER_SPEC"


def worker_command(
    database: str, data_dir: str, schemas: Sequence[str], threads: int, tuning: dict[str, Any]
) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of serve's worker process: this module as a program,
    so the child imports what the workers need and not the CLI's (~11 MB less, on a peak
    that counts)."""
    spec = {"database": database, "data_dir": data_dir, "schemas": list(schemas),
            "threads": threads, "tuning": tuning}  # fmt: skip
    return [sys.executable, "-m", "bulkforce.workerproc"], {
        **os.environ,
        SPEC_ENV: json.dumps(spec),
    }


def run_workers(ctx: Context, threads: int) -> None:
    """`threads` workers until SIGTERM or SIGINT, when each finishes its batch (`bulkforce
    worker` and serve's worker process)."""
    workers = [Worker(ctx) for _ in range(threads)]

    def stop(*_: object) -> None:
        for w in workers:
            w.stopping.set()
        ctx.wake.wake_all()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    running = [threading.Thread(target=w.run_forever, daemon=True) for w in workers]
    for t in running:
        t.start()
    print(f"bulkforce worker running {threads} thread(s)", flush=True)
    for t in running:
        while t.is_alive():
            t.join(0.5)


def worker_context(
    data_dir: Path, database: str, schemas: Sequence[Path], tuning: dict[str, Any]
) -> Context:
    """What a process of workers starts with (`bulkforce worker` and serve's worker process):
    logging, the GIL's switch interval, and the context (boot.tuned_context)."""
    setup_logging(tuning)
    tune_threads()
    return tuned_context(data_dir, database, schemas, 0, tuning)


def main() -> None:
    """serve's worker process, as `worker_command` describes it; exits with its parent."""
    private_files()  # inherited from serve, and set again as every `bulkforce` command does
    spec = json.loads(os.environ[SPEC_ENV])
    with exit_on_error():
        ctx = worker_context(
            Path(spec["data_dir"]), spec["database"], [Path(s) for s in spec["schemas"]],
            spec["tuning"],
        )  # fmt: skip
    exit_with_parent(ctx.wake)
    run_workers(ctx, int(spec["threads"]))


class WorkerChild:
    """One worker child, restarted when it exits while the server runs.

    `env`: its environment (None: this process's); `pass_fds`: descriptors the child keeps open
    (the server's lock files); `on_restart`: run before a dead child's successor starts."""

    def __init__(
        self, argv: list[str], env: dict[str, str] | None = None, pass_fds: Sequence[int] = (),
        on_restart: Callable[[], None] | None = None,
    ) -> None:  # fmt: skip
        self.argv = argv
        self.env = env
        self.pass_fds = tuple(pass_fds)
        self.on_restart = on_restart
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._watch = threading.Thread(target=self._supervise, name="bulkforce-worker-child",
                                       daemon=True)  # fmt: skip

    def start(self) -> None:
        self._spawn()
        self._watch.start()

    def _spawn(self) -> None:
        with self._lock:
            if self._stopping.is_set():
                return
            # A session of its own: a Ctrl-C at the terminal reaches the server, which stops
            # the child in order, and not the child halfway through the server's shutdown.
            proc = subprocess.Popen(
                self.argv, stdin=subprocess.PIPE, start_new_session=True, pass_fds=self.pass_fds,
                env=self.env,
            )  # fmt: skip
            assert proc.stdin is not None
            os.set_blocking(proc.stdin.fileno(), False)  # wake() must never block a request
            self._proc = proc

    def wake(self) -> None:
        """Tell the child's idle workers that there is work (a byte down its stdin)."""
        proc = self._proc
        if proc is None or proc.stdin is None:
            return
        try:
            os.write(proc.stdin.fileno(), b"w")
        except BlockingIOError:
            pass  # the pipe is full of wake-ups the child has yet to read: it will look
        except OSError:
            pass  # the child is gone; the next one looks for work when it starts
        except ValueError:
            # its pipe is closed: the child died and the next is not started yet (a request
            # closing a job then answered 500), or the server's shutdown stopped it
            pass

    def _supervise(self) -> None:
        delay = RESTART_SECONDS
        while not self._stopping.is_set():
            proc = self._proc
            if proc is None:
                return
            started = time.monotonic()
            code = proc.wait()
            if self._stopping.is_set():
                return
            if time.monotonic() - started >= STEADY_SECONDS:
                delay = RESTART_SECONDS
            log.error("the worker process (PID %d) exited with code %s; starting another in %.0f s",
                      proc.pid, code, delay)  # fmt: skip
            if proc.stdin is not None:
                proc.stdin.close()
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, MAX_RESTART_SECONDS)
            if self.on_restart is not None:
                try:
                    self.on_restart()
                except Exception:  # the next child must start anyway; its leases will expire
                    log.exception("could not clear the dead worker process's leases")
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


class ChildWakeup(Wakeup):
    """The server's side of its worker process's wake-ups (SQLite: no LISTEN/NOTIFY)."""

    def __init__(self, child: WorkerChild) -> None:
        self.child = child

    def set(self) -> None:
        self.child.wake()

    def wait(self, timeout: float) -> None:  # nothing in the server waits: its workers are away
        time.sleep(timeout)


def exit_with_parent(wake: Wakeup) -> None:
    """In the child: each byte on stdin wakes the workers (`wake.set()`); at EOF (the parent
    died, or gave up waiting for a graceful stop) exit at once. Like the threads this process
    replaces, the work in hand is dropped: its transaction rolls back, its lease is cleared or
    expires."""
    fd = sys.stdin.fileno()

    def watch() -> None:
        # os.read, not sys.stdin: a daemon thread blocked inside the buffered reader holds its
        # lock, and the interpreter's exit then waits a second for it and aborts.
        try:
            while data := os.read(fd, 4096):
                # a byte per wake-up, and each wakes one idle thread: a burst's bytes read
                # at once must wake as many (Permits caps them at the thread count)
                for _ in range(min(len(data), 64)):
                    wake.set()
        except OSError:
            pass
        log.warning("the server that started this worker is gone; exiting")
        logging.shutdown()
        os._exit(1)

    threading.Thread(target=watch, name="bulkforce-parent-watch", daemon=True).start()


if __name__ == "__main__":
    main()
