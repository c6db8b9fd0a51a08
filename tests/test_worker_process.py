"""`serve` on PostgreSQL runs its workers in a child `bulkforce worker` process: jobs complete,
the child never outlives the server (killed or stopped), a dead child is replaced, and
`--worker-threads` (or SQLite) keeps them as threads."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from bulk2_helpers import run_job
from conftest import Server, unique


def worker_children(srv: Server) -> list[psutil.Process]:
    assert srv.proc is not None
    return [
        p
        for p in psutil.Process(srv.proc.pid).children()
        if "worker" in p.cmdline() and "bulkforce" in p.cmdline()
    ]


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


def test_postgresql_workers_run_in_a_child_that_dies_with_a_killed_server(
    make_server: Callable[..., Server],
) -> None:
    srv = make_server("--workers", "2", backend="postgresql")
    assert wait_for(lambda: len(worker_children(srv)) == 1)
    (child,) = worker_children(srv)
    assert "--threads" in child.cmdline() and "2" in child.cmdline()
    info = one_record_job(srv)
    assert info["state"] == "JobComplete" and info["numberRecordsProcessed"] == 1
    srv.kill()  # SIGKILL: the server cannot stop the child; the child must notice by itself
    child.wait(timeout=10)
    assert not child.is_running()


def test_a_stopped_server_stops_its_worker_process(make_server: Callable[..., Server]) -> None:
    srv = make_server(backend="postgresql")
    assert wait_for(lambda: len(worker_children(srv)) == 1)
    (child,) = worker_children(srv)
    srv.stop()
    assert not child.is_running()  # gone by the time the server's process has exited


def test_a_dead_worker_process_is_replaced_and_jobs_go_on(
    make_server: Callable[..., Server],
) -> None:
    srv = make_server(backend="postgresql")
    assert wait_for(lambda: len(worker_children(srv)) == 1)
    (first,) = worker_children(srv)
    first.kill()
    first.wait(timeout=10)
    assert wait_for(lambda: [p.pid for p in worker_children(srv)] not in ([], [first.pid]))
    info = one_record_job(srv)
    assert info["state"] == "JobComplete" and info["numberRecordsProcessed"] == 1
    assert "exited with code" in srv.log()


def test_worker_threads_keep_the_workers_in_the_server(
    make_server: Callable[..., Server],
) -> None:
    srv = make_server("--worker-threads", backend="postgresql")
    info = one_record_job(srv)
    assert info["state"] == "JobComplete" and info["numberRecordsProcessed"] == 1
    assert worker_children(srv) == []


def test_sqlite_refuses_a_worker_process(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bulkforce", "serve", "--data-dir", str(tmp_path),
         "--worker-process"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "--worker-process needs PostgreSQL" in proc.stderr


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_no_worker_means_no_child(make_server: Callable[..., Server], backend: str) -> None:
    srv = make_server("--no-worker", backend=backend)
    time.sleep(1.0)  # a child would have been started by now
    assert worker_children(srv) == []
