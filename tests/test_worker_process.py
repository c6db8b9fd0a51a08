"""`serve` runs its workers in a child `bulkforce worker` process: jobs complete, the child
never outlives the server (killed or stopped), a dead child is replaced, and
`--worker-threads` keeps them as threads. SQLite: the child works under the server's locks,
its writers and the server's queue on one lock file, and a dead child's leases are cleared."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from bulk2_helpers import run_job
from conftest import Server, unique

from bulkforce.store.sqlite import SQLiteStore
from bulkforce.workerproc import ChildWakeup, WorkerChild


def serve(make: Callable[..., Server], backend: str, *args: str) -> Server:
    """A server whose workers run in a child process (the default, said here all the same)."""
    return make(*args, "--worker-process", backend=backend)


def worker_children(srv: Server) -> list[psutil.Process]:
    assert srv.proc is not None
    return [
        p for p in psutil.Process(srv.proc.pid).children() if "bulkforce.workerproc" in p.cmdline()
    ]


def the_child(srv: Server) -> psutil.Process:
    """The server's one worker process, once it has started it."""
    assert wait_for(lambda: len(worker_children(srv)) == 1)
    (child,) = worker_children(srv)
    return child


def wait_for(what: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if what():
            return True
        time.sleep(0.05)
    return False


def one_record_job(srv: Server) -> dict[str, object]:
    with srv.client() as c:
        return run_job(c, "Contact", "insert", f"LastName\n{unique('wp')}\n")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_workers_run_in_a_child_that_dies_with_a_killed_server(
    make_server: Callable[..., Server], backend: str
) -> None:
    srv = serve(make_server, backend, "--workers", "2")
    child = the_child(srv)
    spec = json.loads(child.environ()["BULKFORCE_WORKER_SPEC"])
    assert spec["threads"] == 2
    assert not any(spec["database"] in arg for arg in child.cmdline())  # no password in `ps`
    info = one_record_job(srv)
    assert info["state"] == "JobComplete" and info["numberRecordsProcessed"] == 1
    srv.kill()  # SIGKILL: the server cannot stop the child; the child must notice by itself
    child.wait(timeout=10)
    assert not child.is_running()
    if backend == "sqlite":  # the locks were the child's too: a new server may start now
        srv.start()
        assert one_record_job(srv)["state"] == "JobComplete"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_stopped_server_stops_its_worker_process(
    make_server: Callable[..., Server], backend: str
) -> None:
    srv = serve(make_server, backend)
    child = the_child(srv)
    srv.stop()
    assert not child.is_running()  # gone by the time the server's process has exited
    # and cleanly: waking a stopped child's workers once failed the server's shutdown
    assert "Traceback" not in srv.log() and "shutdown failed" not in srv.log()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_dead_worker_process_is_replaced_and_jobs_go_on(
    make_server: Callable[..., Server], backend: str
) -> None:
    srv = serve(make_server, backend)
    first = the_child(srv)
    first.kill()
    first.wait(timeout=10)
    # A job closed while no child runs (its pipe closed, the next not started for 1 s):
    # waking the workers must not fail the request; the successor then runs the job.
    assert wait_for(lambda: "exited with code" in srv.log())
    info = one_record_job(srv)
    assert info["state"] == "JobComplete" and info["numberRecordsProcessed"] == 1
    assert [p.pid for p in worker_children(srv)] not in ([], [first.pid])


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_worker_threads_keep_the_workers_in_the_server(
    make_server: Callable[..., Server], backend: str
) -> None:
    srv = make_server("--worker-threads", backend=backend)
    info = one_record_job(srv)
    assert info["state"] == "JobComplete" and info["numberRecordsProcessed"] == 1
    assert worker_children(srv) == []


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_by_default_the_workers_are_a_process(
    make_server: Callable[..., Server], backend: str
) -> None:
    srv = make_server(backend=backend)
    info = one_record_job(srv)
    assert info["state"] == "JobComplete" and info["numberRecordsProcessed"] == 1
    assert len(worker_children(srv)) == 1


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_no_worker_means_no_child(make_server: Callable[..., Server], backend: str) -> None:
    srv = make_server("--no-worker", "--worker-process", backend=backend)
    time.sleep(1.0)  # a child would have been started by now
    assert worker_children(srv) == []


def test_a_dead_childs_successor_starts_after_its_leases_are_cleared(tmp_path: Path) -> None:
    """The supervisor: a child that exits while the server runs is followed by another, after
    `on_restart` (SQLite: clear the dead one's leases, so its job is taken again at once), and
    later than the one before while each dies young (a child that cannot start does not fill
    the log)."""
    marks = tmp_path / "starts"
    code = (
        f"import time; open({str(marks)!r}, 'a').write(f'{{time.time()}}\\n'); raise SystemExit(3)"
    )
    cleared: list[int] = []

    def starts() -> list[float]:
        return [float(x) for x in marks.read_text().split()] if marks.exists() else []

    child = WorkerChild(
        [sys.executable, "-c", code], on_restart=lambda: cleared.append(len(starts()))
    )
    child.start()
    try:
        assert wait_for(lambda: len(starts()) >= 3)
    finally:
        child.stop()
    # each successor started only after its predecessor's leases were cleared
    assert cleared[:2] == [1, 2]
    first, second, third = starts()[:3]
    assert second - first >= 1.0 and third - second >= 2.0  # 1 s, then 2 s
    started = len(starts())
    time.sleep(1.5)
    assert len(starts()) == started  # stopped: none after


def test_sqlite_writers_of_two_processes_queue_on_the_lock_file(tmp_path: Path) -> None:
    """The server and its worker process share one SQLite database: a writer of the other
    process queues on the lock file, counts in writers_waiting (the worker steps aside for
    it), and writes as soon as the lock is free."""
    db = tmp_path / "x.db"
    store = SQLiteStore(str(db))
    store.migrate()
    other = (
        "import sys, time; from bulkforce.store.sqlite import SQLiteStore; "
        "s = SQLiteStore(sys.argv[1]); print('ready', flush=True); "
        "s.set_meta('other', '1'); print(time.monotonic(), flush=True)"
    )
    try:
        with store.transaction() as tx:
            proc = subprocess.Popen(
                [sys.executable, "-c", other, str(db)], stdout=subprocess.PIPE, text=True
            )
            assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
            assert wait_for(lambda: store.writers_waiting() == 1)
            tx.allocate("held", 1)  # the holder goes on writing meanwhile
            time.sleep(0.3)
            assert proc.poll() is None  # still waiting: nothing got past the lock
        released = time.monotonic()
        store.let_writers_in(20)  # returns once the other process holds the lock
        wrote = float(proc.stdout.readline())
        assert proc.wait(30) == 0
        assert store.writers_waiting() == 0
        assert store.get_meta("other") == "1"
        assert wrote - released < 1.0
    finally:
        store.close()


@pytest.mark.parametrize(("threads", "watch_after"), [(1, 0.0), (2, 2.0)])
def test_bytes_down_the_pipe_wake_as_many_of_the_childs_workers(
    tmp_path: Path, threads: int, watch_after: float
) -> None:
    """SQLite has no LISTEN/NOTIFY: the server's ChildWakeup.set() is a byte on the child's
    stdin, which the child's parent watch turns into its own wake-up. Each wakes one idle
    thread (store/wakeup.py), and a burst's bytes are often read at once: with the watch
    reading only after both are in the pipe, both waiting threads must still wake."""
    woken = tmp_path / "woken"
    code = (
        "import pathlib, sys, threading, time; from bulkforce.store.wakeup import ThreadWakeup; "
        "from bulkforce.workerproc import exit_with_parent; w = ThreadWakeup(); "
        "out = pathlib.Path(sys.argv[1]); lock = threading.Lock()\n"
        "def wait():\n"
        "    w.wait(60)\n"
        "    with lock:\n"
        "        out.write_text(str(int(out.read_text()) + 1) if out.exists() else '1')\n"
        f"for _ in range({threads}): threading.Thread(target=wait).start()\n"
        f"time.sleep({watch_after}); exit_with_parent(w); time.sleep(60)"
    )
    child = WorkerChild([sys.executable, "-c", code, str(woken)])
    child.start()
    try:
        time.sleep(1.0)  # the child's threads are up and waiting by now
        for _ in range(threads):
            ChildWakeup(child).set()
        assert not woken.exists() or watch_after == 0.0
        assert wait_for(lambda: woken.exists() and woken.read_text() == str(threads), 10)
    finally:
        child.stop()
