"""Issue #9 item 17, secrets at rest: what the server writes is its owner's only (files 0600,
directories 0700), the generated admin token is kept only as a digest in the database (SQLite
and PostgreSQL) and in clear only in the owner's data dir, shown once, and printed on request
by `bulkforce token`."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from conftest import (
    API,
    PG_PROBLEM,
    Server,
    drop_pg_database,
    free_port,
    new_pg_database,
    wait_for_job,
)
from test_cli import serve

INGEST = f"/services/data/v{API}/jobs/ingest"


def bulkforce(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bulkforce", *args], capture_output=True, text=True, timeout=60
    )


@contextmanager
def serve_dir(data_dir: Path, *args: str) -> Iterator[tuple[str, list[str]]]:
    """`bulkforce serve` without --token: (instance URL, the lines it printed at start)."""
    port = free_port()
    with serve(["--port", str(port), "--data-dir", str(data_dir), *args], {}) as (_, lines):
        yield f"http://127.0.0.1:{port}", lines


def status(url: str, token: str) -> int:
    for _ in range(200):
        try:
            r = httpx.get(url + INGEST, headers={"Authorization": f"Bearer {token}"}, timeout=5)
            return r.status_code
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError("server never answered")


def printed_token(lines: list[str]) -> str:
    line = next(x for x in lines if x.startswith("access token: "))
    return line.removeprefix("access token: ")


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def private(path: Path) -> list[str]:
    """Every file or directory under `path` (itself included) that others may read."""
    bad = []
    for p in [path, *path.rglob("*")]:
        if p.name.startswith("server-") and p.suffix == ".log":
            continue  # the test harness's own capture of the server's output
        mode = stat.S_IMODE(p.lstat().st_mode)
        if mode & 0o077:
            bad.append(f"{p.relative_to(path.parent)} {oct(mode)}")
    return bad


@pytest.mark.parametrize("workers", ["--worker-threads", "--worker-process"])
def test_everything_the_server_writes_is_its_owners_only(
    make_server: Callable[..., Server], tmp_path: Path, workers: str
) -> None:
    """Under the usual umask 022, the database, uploads, results, token and lock files are
    0600 and their directories 0700; a data dir made world-readable before is tightened.
    The result files of a worker process too."""
    old_umask = os.umask(0o022)  # the servers inherit the common default
    try:
        _run_and_check_modes(make_server, tmp_path, workers)
    finally:
        os.umask(old_umask)


def _run_and_check_modes(make_server: Callable[..., Server], tmp_path: Path, workers: str) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    srv = make_server(workers, data_dir=data)
    with srv.client() as c:
        job = c.post(INGEST, json={"object": "Contact", "operation": "insert"}).json()
        c.put(f"{INGEST}/{job['id']}/batches", content=b"LastName\nOne\n#N/A\n",
              headers={"Content-Type": "text/csv"})  # fmt: skip
        c.patch(f"{INGEST}/{job['id']}", json={"state": "UploadComplete"})
        assert wait_for_job(c, job["id"])["numberRecordsFailed"] == 1
        assert c.get(f"{INGEST}/{job['id']}/failedResults").status_code == 200
        # a Bulk 1.0 batch leaves its request and result files too
        r = c.post(
            f"/services/async/{API}/job",
            content=b'<jobInfo xmlns="http://www.force.com/2009/06/asyncapi/dataload">'
            b"<operation>insert</operation><object>Contact</object>"
            b"<contentType>CSV</contentType></jobInfo>",
            headers={"Content-Type": "application/xml", "X-SFDC-Session": srv.token},
        )
        assert r.status_code == 201, r.text
    srv.stop()  # checkpoints the WAL and closes every file
    files = [p for p in data.rglob("*") if p.is_file()]
    assert any(p.name == "bulkforce.db" for p in files), files
    assert len(files) >= 3, files  # database, lock files, upload and result files
    assert private(data) == []


def test_admin_user_cli_writes_private_files_too(tmp_path: Path) -> None:
    data = tmp_path / "cli"
    out = bulkforce("user", "add", "ada@example.com", "--password", "pw",
                    "--insecure-fast-hash", "--data-dir", str(data))  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert private(data) == []


def test_generated_token_is_a_digest_in_the_database_and_shown_once(tmp_path: Path) -> None:
    data = tmp_path / "d"
    with serve_dir(data) as (url, lines):
        token = printed_token(lines)
        assert token.startswith("00D") and "!" in token, lines
        assert status(url, token) == 200
        assert status(url, token + "x") == 401
    # the owner's copy: the token file, 0600 in a 0700 data dir
    assert (data / "token").read_text().strip() == token
    assert stat.S_IMODE((data / "token").stat().st_mode) == 0o600
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    # the database holds the digest and never the token itself
    with sqlite3.connect(data / "bulkforce.db") as db:
        meta = dict(db.execute("SELECT key, value FROM bf_meta").fetchall())
    assert meta.get("admin_token_digest") == digest(token), meta
    assert token not in meta.values()
    for f in data.glob("bulkforce.db*"):
        assert token.encode() not in f.read_bytes(), f
    # later starts do not print it; `bulkforce token` does, from the data dir
    with serve_dir(data) as (url, lines):
        assert all(token not in line for line in lines), lines
        assert "bulkforce token" in printed_token(lines), lines
        assert status(url, token) == 200
    out = bulkforce("token", "--data-dir", str(data))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == token


def test_a_data_dir_from_before_keeps_its_token(tmp_path: Path) -> None:
    """A data dir whose token file predates digests: the file's token stays valid (README
    snippets read ./data/token) and the database learns only its digest."""
    data = tmp_path / "old"
    data.mkdir()
    old = "00D000000000042AAA!" + "k" * 64
    (data / "token").write_text(old + "\n")
    with serve_dir(data) as (url, lines):
        assert all(old not in line for line in lines), lines
        assert status(url, old) == 200
    with sqlite3.connect(data / "bulkforce.db") as db:
        meta = dict(db.execute("SELECT key, value FROM bf_meta").fetchall())
    assert meta["admin_token_digest"] == digest(old)
    assert stat.S_IMODE((data / "token").stat().st_mode) == 0o600


def test_token_command_without_a_token_file(tmp_path: Path) -> None:
    out = bulkforce("token", "--data-dir", str(tmp_path / "none"))
    assert out.returncode == 1
    assert "no token" in out.stderr, out.stderr


@pytest.mark.skipif(PG_PROBLEM is not None, reason=str(PG_PROBLEM))
def test_postgresql_processes_share_the_token_as_a_digest(tmp_path: Path) -> None:
    """API processes on one PostgreSQL database accept one admin token (commit 4a32d5e); the
    database holds its digest only; the clear token is in the data dir of the process that
    generated it, and printed once, there."""
    import psycopg

    pg = new_pg_database()
    try:
        first, second = tmp_path / "first", tmp_path / "second"
        with serve_dir(first, "--database", pg) as (url1, lines1):
            token = printed_token(lines1)
            assert token.startswith("00D"), lines1
            with serve_dir(second, "--database", pg, "--no-worker") as (url2, lines2):
                assert all(token not in line for line in lines2), lines2
                assert status(url2, token) == 200
                assert status(url1, token) == 200
        assert (first / "token").read_text().strip() == token
        assert not (second / "token").exists()
        with psycopg.connect(pg) as c:
            meta = dict(c.execute("SELECT key, value FROM bf_meta").fetchall())
        assert meta["admin_token_digest"] == digest(token)
        assert token not in meta.values() and "admin_token" not in meta
        out = bulkforce("token", "--data-dir", str(first), "--database", pg)
        assert out.returncode == 0 and out.stdout.strip() == token, out
        # a clear token left in bf_meta by an older version becomes a digest at start
        legacy = "00D000000000043AAA!" + "q" * 64
        with psycopg.connect(pg) as c:
            c.execute("UPDATE bf_meta SET key = 'admin_token', value = %s "
                      "WHERE key = 'admin_token_digest'", (legacy,))  # fmt: skip
        third = tmp_path / "third"
        with serve_dir(third, "--database", pg) as (url3, lines3):
            assert all(legacy not in line for line in lines3), lines3
            assert status(url3, legacy) == 200
            assert status(url3, token) == 401
        with psycopg.connect(pg) as c:
            meta = dict(c.execute("SELECT key, value FROM bf_meta").fetchall())
        assert meta["admin_token_digest"] == digest(legacy) and "admin_token" not in meta
        assert (third / "token").read_text().strip() == legacy
    finally:
        drop_pg_database(pg)
