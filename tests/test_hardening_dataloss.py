"""Issue #9, items 1-9: no uploaded record is lost, replaced or left unaccounted for, and one
bad value fails only its own record. Every test runs on SQLite and PostgreSQL (the `server`
fixture) unless the behaviour is SQLite's alone.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from bulk2_helpers import (
    BASE,
    assert_error,
    assert_serving,
    create,
    db_query,
    gz,
    patch,
    put,
    success,
    unprocessed,
)
from conftest import Server, free_port, unique, wait_for_job

# ---------------------------------------------------------------- 1. multi-member gzip


def test_every_gzip_member_is_loaded(server: Server, http: httpx.Client) -> None:
    """`cat a.gz b.gz` is one valid gzip body (RFC 1952 §2.2): all of its rows load."""
    tag = unique("gz")
    first = "Name\n" + "".join(f"{tag}-a{i}\n" for i in range(3))
    second = "".join(f"{tag}-b{i}\n" for i in range(4))
    job = create(http, "Widget__c", "insert")
    r = http.put(
        f"{BASE}/{job['id']}/batches",
        content=gz(first) + gz(second),
        headers={"Content-Type": "text/csv", "Content-Encoding": "gzip"},
    )
    assert r.status_code == 201, r.text
    assert patch(http, job["id"], "UploadComplete").status_code == 200
    info = wait_for_job(http, job["id"])
    assert (info["state"], info["numberRecordsProcessed"]) == ("JobComplete", 7), info
    names = {row["Name"] for row in success(http, job["id"], "Name").dicts()}
    assert names == {f"{tag}-a{i}" for i in range(3)} | {f"{tag}-b{i}" for i in range(4)}
    rows = db_query(server, 'SELECT "Name" FROM "Widget__c" WHERE "Name" LIKE ?', (f"{tag}-%",))
    assert len(rows) == 7


@pytest.mark.parametrize("tail", [b"junk", b"\x00\x00\x00\x00", b"\x1f", b"\x1f\x8bxx"])
def test_data_after_the_gzip_stream_is_refused(http: httpx.Client, tail: bytes) -> None:
    job = create(http, "Widget__c", "insert")
    r = http.put(
        f"{BASE}/{job['id']}/batches",
        content=gz("Name\nx\n") + tail,
        headers={"Content-Type": "text/csv", "Content-Encoding": "gzip"},
    )
    assert_error(r, 400, "CLIENTINPUTERROR")
    info = http.get(f"{BASE}/{job['id']}").json()
    assert info["state"] == "Open"
    assert_serving(http)


# ---------------------------------------------------------------- 2. a refused PUT


class SlowBody:
    """A request body sent in two parts; the second waits until `release()`."""

    def __init__(self, first: bytes, second: bytes) -> None:
        self.first, self.second = first, second
        self.sent_first = threading.Event()
        self._go = threading.Event()

    def release(self) -> None:
        self._go.set()

    def __iter__(self) -> Iterator[bytes]:
        yield self.first
        self.sent_first.set()
        self._go.wait(30)
        yield self.second


def slow_put(
    server: Server, job_id: str, body: SlowBody
) -> tuple[threading.Thread, list[httpx.Response]]:
    out: list[httpx.Response] = []

    def run() -> None:
        with server.client() as c:
            out.append(
                c.put(
                    f"{BASE}/{job_id}/batches", content=body, headers={"Content-Type": "text/csv"}
                )
            )

    t = threading.Thread(target=run)
    t.start()
    assert body.sent_first.wait(10)
    time.sleep(0.3)  # the server has the first part and is waiting for the rest
    return t, out


def stored(server: Server, job_id: str) -> dict[str, bytes]:
    """Every upload blob or file stored under this job's id, by name."""
    if server.pg_url:
        rows = db_query(
            server,
            "SELECT name, data FROM bf_blob WHERE name LIKE ? OR name LIKE ? ORDER BY name, seq",
            (f"tmp:{job_id}%", f"upload:{job_id}"),
        )
        out: dict[str, bytes] = {}
        for r in rows:
            name = "upload" if r["name"].startswith("upload:") else r["name"]
            out[name] = out.get(name, b"") + bytes(r["data"])
        return out
    return {
        ("upload" if p.suffix == ".csv" else p.name): p.read_bytes()
        for p in (server.data_dir / "uploads").glob(f"{job_id}*")
        if p.is_file()
    }


@pytest.mark.parametrize("action", ["UploadComplete", "Aborted", "DELETE"])
def test_a_put_that_ends_too_late_changes_nothing(
    server: Server, http: httpx.Client, action: str
) -> None:
    tag = unique("late")
    good = f"Name\n{tag}-kept1\n{tag}-kept2\n"
    job = create(http, "Widget__c", "insert")
    assert put(http, job["id"], good).status_code == 201
    late = SlowBody(
        f"Name\n{tag}-late0\n".encode(), "".join(f"{tag}-late{i}\n" for i in range(1, 50)).encode()
    )
    thread, response = slow_put(server, job["id"], late)
    if action == "DELETE":
        assert patch(http, job["id"], "Aborted").status_code == 200
        assert http.delete(f"{BASE}/{job['id']}").status_code == 204
    else:
        assert patch(http, job["id"], action).status_code == 200
        if action == "UploadComplete":
            wait_for_job(http, job["id"])
    late.release()
    thread.join(30)
    assert response and response[0].status_code in (400, 404), response
    assert response[0].json()[0]["errorCode"] in ("INVALIDJOBSTATE", "NOT_FOUND")
    time.sleep(0.2)
    # the accepted upload is the job's data, and nothing of the refused one is left anywhere
    assert stored(server, job["id"]) == ({} if action == "DELETE" else {"upload": good.encode()})
    loaded = db_query(server, 'SELECT "Name" FROM "Widget__c" WHERE "Name" LIKE ?', (f"{tag}-%",))
    if action == "UploadComplete":
        info = wait_for_job(http, job["id"])
        assert (info["state"], info["numberRecordsProcessed"]) == ("JobComplete", 2), info
        assert {r["Name"] for r in success(http, job["id"], "Name").dicts()} == {
            f"{tag}-kept1",
            f"{tag}-kept2",
        }
        assert sorted(r["Name"] for r in loaded) == [f"{tag}-kept1", f"{tag}-kept2"]
    elif action == "Aborted":
        rows = unprocessed(http, job["id"], "Name").rows
        assert rows == [[f"{tag}-kept1"], [f"{tag}-kept2"]]
        assert loaded == []
    else:
        assert http.get(f"{BASE}/{job['id']}").status_code == 404
        assert loaded == []


# ---------------------------------------------------------------- 4. one server per SQLite file


def test_second_server_on_the_same_sqlite_database_refuses(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    """Another data dir does not make it another database: the second server must not start
    (it would clear the first one's leases and take over its running job)."""
    db = tmp_path / "shared" / "org.db"
    first = make_server("--database", f"sqlite:///{db}", data_dir=tmp_path / "one")
    with first.client() as c:
        job = create(c, "Contact", "insert")
        assert put(c, job["id"], "LastName\nStill-mine\n").status_code == 201
    # the same file named another way (a relative path through a symlinked folder)
    (tmp_path / "alias").symlink_to(db.parent)
    for url in (f"sqlite:///{db}", "sqlite:///alias/org.db"):
        proc = subprocess.run(
            [sys.executable, "-m", "bulkforce", "serve", "--port", str(free_port()),
             "--data-dir", str(tmp_path / "two"), "--database", url],
            capture_output=True, text=True, timeout=60, cwd=tmp_path,
        )  # fmt: skip
        assert proc.returncode == 2, proc.stderr
        assert "another bulkforce server (PID" in proc.stderr  # names its holder (issue #13)
        assert f"is using the SQLite database {db}" in proc.stderr
    with first.client() as c:
        assert c.get(f"{BASE}/{job['id']}").json()["state"] == "Open"
    first.stop()
    # once the first server is gone the database is free again
    second = make_server("--database", f"sqlite:///{db}", data_dir=tmp_path / "two")
    with second.client() as c:
        assert c.get(f"{BASE}/{job['id']}").status_code == 200
