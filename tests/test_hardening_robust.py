"""Faults answer Salesforce-shaped errors and the server keeps serving (issue #9, items 10, 13,
14, 15): a disk that fills during an upload, a database connection terminated under the
server, oversized bodies read before their limit applies.
"""

from __future__ import annotations

import resource
from collections.abc import Callable
from pathlib import Path

import pytest
from bulk2_helpers import BASE, assert_error, assert_serving, create, put, run_job
from conftest import Server, unique

BACKENDS = ["sqlite", "postgresql"]


def test_disk_full_during_upload_is_503_and_leaves_nothing(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    """A file-size limit stands in for a full disk: writes past it fail with EFBIG, as they
    would with ENOSPC. (SQLite only: PostgreSQL keeps uploads in the database.)"""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4 << 20, hard))  # inherited by the server
    try:
        srv = make_server(data_dir=tmp_path / "full")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    with srv.client() as c:
        job = create(c, "Contact", "insert")["id"]
        r = put(c, job, b"LastName\n" + b"x" * 100 + b"\n" * (6 << 20))
        assert_error(r, 503, "SERVER_UNAVAILABLE")
        assert not list((tmp_path / "full").rglob("*.part")), "the refused upload left a file"
        info = run_job(c, "Contact", "insert", f"LastName\n{unique('df')}\n")
        assert info["state"] == "JobComplete" and info["numberRecordsProcessed"] == 1, info
    assert srv.log().count("disk full on PUT") == 1, srv.log()  # logged once, no traceback
    assert "Traceback" not in srv.log()


@pytest.mark.parametrize("backend", BACKENDS)
def test_admin_reset_body_over_limit_is_refused_unread(
    make_server: Callable[..., Server], backend: str
) -> None:
    """The 1 MB limit applies while the body streams in: 200 MB are never held whole."""
    import psutil

    srv = make_server(backend=backend)
    assert srv.proc is not None
    proc = psutil.Process(srv.proc.pid)
    before = proc.memory_info().rss

    def body() -> object:
        yield b'{"object": "'
        for _ in range(200):
            yield b"x" * (1 << 20)

    with srv.client() as c:
        r = c.post("/bulkforce/admin/reset", content=body())  # type: ignore[arg-type]
        assert_error(r, 400, "INVALIDJOB")
        assert proc.memory_info().rss - before < 100 << 20
        assert_serving(c)


@pytest.mark.parametrize("backend", ["postgresql"])
def test_first_request_after_connections_terminated_is_served(
    make_server: Callable[..., Server], backend: str
) -> None:
    import psycopg

    srv = make_server(backend=backend)
    assert srv.pg_url is not None
    with srv.client() as c:
        for _ in range(3):
            assert c.get(BASE).status_code == 200
        name = srv.pg_url.rsplit("/", 1)[1]
        with psycopg.connect(srv.pg_url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
        r = c.get(BASE)
        assert r.status_code in (200, 503), r.text
        if r.status_code == 503:
            assert_error(r, 503, "SERVER_UNAVAILABLE")
        assert_serving(c)
        info = run_job(c, "Contact", "insert", f"LastName\n{unique('pg')}\n")
        assert info["state"] == "JobComplete", info
