"""`bulkforce jobs` (with --watch), `bulkforce job ID --wait` and the `load-records` progress
bar, on a data dir (or database) a running server is using."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from bulk2_helpers import create, patch, put, run_job
from conftest import BACKENDS, Server, unique


def _cli(srv: Server, *args: str) -> list[str]:
    db = ["--database", srv.pg_url] if srv.pg_url else []
    return [sys.executable, "-m", "bulkforce", *args, "--data-dir", str(srv.data_dir), *db]


def _run(srv: Server, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_cli(srv, *args), capture_output=True, encoding="utf-8", timeout=120)


@pytest.mark.parametrize("backend", BACKENDS)
def test_jobs_table_and_job_wait(make_server: Callable[..., Server], backend: str) -> None:
    srv = make_server(backend=backend)
    rows = "LastName\n" + "".join(f"{unique('w')}\n" for _ in range(2500))
    with srv.client() as c:
        done = run_job(c, "Account", "insert", f"Name\n{unique('a')}\n")
        job = create(c, "Contact", "insert")
        waiter = subprocess.Popen(
            _cli(srv, "job", job["id"], "--wait", "--interval", "0.1"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(1.5)
        assert waiter.poll() is None  # still waiting: the job is Open
        assert put(c, job["id"], rows).status_code == 201
        assert patch(c, job["id"], "UploadComplete").status_code == 200
        out, err = waiter.communicate(timeout=120)
    assert waiter.returncode == 0, err
    assert "2500/2500" in out and "records" in out  # the progress bar's last state
    for state in ("Open", "UploadComplete", "InProgress", "JobComplete"):
        assert state in out
    assert re.search(r"numberRecordsProcessed\s+│\s+2500 ", out), out
    listing = _run(srv, "jobs")
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    first = next(i for i, ln in enumerate(lines) if job["id"] in ln)
    second = next(i for i, ln in enumerate(lines) if done["id"] in ln)
    assert first < second  # newest first
    assert "Contact" in lines[first] and "JobComplete" in lines[first] and "2500" in lines[first]
    only = _run(srv, "jobs", "--object", "Account")
    assert done["id"] in only.stdout and job["id"] not in only.stdout


def test_job_wait_exits_1_when_the_job_does_not_complete(
    make_server: Callable[..., Server],
) -> None:
    srv = make_server()
    with srv.client() as c:
        job = create(c, "Contact", "insert")
        patch(c, job["id"], "Aborted")
    proc = _run(srv, "job", job["id"], "--wait")
    assert proc.returncode == 1 and "Aborted" in proc.stdout
    assert _run(srv, "job", "750000000000000AAA").returncode == 2


def test_jobs_watch_shows_a_job_created_while_watching(
    make_server: Callable[..., Server],
) -> None:
    srv = make_server()
    # Ctrl-C as a terminal sends it. A suite run in the background (`make test &`) has SIGINT
    # ignored, which children inherit and Python then keeps: the watcher would never hear it.
    watcher = subprocess.Popen(
        _cli(srv, "jobs", "--watch", "--interval", "0.3"), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    time.sleep(2)
    with srv.client() as c:
        info = run_job(c, "Contact", "insert", f"LastName\n{unique('watch')}\n")
    time.sleep(1.5)
    watcher.send_signal(signal.SIGINT)
    out, err = watcher.communicate(timeout=30)
    assert watcher.returncode == 0, err
    assert info["id"] in out and "JobComplete" in out


def test_load_records_shows_progress_for_a_large_file(tmp_path: Path) -> None:
    big = tmp_path / "contacts.csv"
    with big.open("w") as f:
        f.write("LastName,FirstName\n")
        for i in range(40_000):
            f.write(f"Lovelace{i:06d}-padding-padding,Ada{i}\n")
    assert big.stat().st_size > 1 << 20
    proc = subprocess.run(
        [sys.executable, "-m", "bulkforce", "load-records", "Contact", str(big), "--data-dir",
         str(tmp_path / "d")], capture_output=True, encoding="utf-8", timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Contact: 40000 inserted, 0 failed" in proc.stdout
    assert "loading contacts.csv" in proc.stderr and "MB" in proc.stderr
