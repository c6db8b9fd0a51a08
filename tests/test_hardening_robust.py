"""Faults answer Salesforce-shaped errors and the server keeps serving (issue #9, items 10, 13,
14, 15): a disk that fills during an upload, a database connection terminated under the
server, oversized bodies read before their limit applies.
"""

from __future__ import annotations

import contextlib
import resource
import signal
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from bulk2_helpers import BASE, assert_error, assert_serving, create, put, run_job
from conftest import Server, unique, wait_for_job
from rss_helpers import peak_rss

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
    srv = make_server(backend=backend)

    def body() -> Iterator[bytes]:
        yield b'{"object": "'
        for _ in range(200):
            yield b"x" * (1 << 20)

    with srv.client() as c:
        with peak_rss(srv) as rss:
            r = c.post("/bulkforce/admin/reset", content=body())
        assert_error(r, 400, "INVALIDJOB")
        assert rss.growth < 100 << 20, rss
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
            # with a timeout, each call returns once its backend has exited: the sessions are
            # over, as after a restart, not ending while the next request runs
            ended = admin.execute(
                "SELECT pg_terminate_backend(pid, 30000) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            ).fetchall()
            assert ended and all(row[0] for row in ended), ended
        # the pool checks a connection as it hands it out: the terminated ones are replaced
        for _ in range(5):
            r = c.get(BASE)
            assert r.status_code == 200, r.text
        info = run_job(c, "Contact", "insert", f"LastName\n{unique('pg')}\n")
        assert info["state"] == "JobComplete", info


# ---------------------------------------------------------------- slow and oversized clients


def _raw(srv: Server) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    s.settimeout(10)
    return s


def _status(s: socket.socket) -> int:
    head = b""
    while b"\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            break
        head += chunk
    return int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.1 ") else 0


def _send_until_refused(s: socket.socket, head: bytes, filler: bytes, total: int) -> float:
    """Send `head` then `total` bytes of filler; returns the seconds until the server stopped
    taking them (it answered and closed) or all were sent."""
    started = time.monotonic()
    s.sendall(head)
    chunk = filler * (1 << 20 // len(filler))
    sent = 0
    with contextlib.suppress(OSError):  # reset / broken pipe: the server closed on us
        while sent < total:
            s.sendall(chunk)
            sent += len(chunk)
    return time.monotonic() - started


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("guard"), ["--head-timeout", "1", "--body-timeout", "1"])
    srv.start()
    yield srv
    srv.stop()


def test_a_128_mb_header_is_refused_quickly(guarded: Server) -> None:
    with _raw(guarded) as s:
        head = b"GET /services/data HTTP/1.1\r\nHost: x\r\nX-Big: "
        elapsed = _send_until_refused(s, head, b"a", 128 << 20)
        assert _status(s) == 431
    assert elapsed < 5, f"took {elapsed:.1f} s to refuse"
    with guarded.client() as c:
        assert_serving(c)


def test_a_huge_url_is_414(guarded: Server) -> None:
    with _raw(guarded) as s:
        elapsed = _send_until_refused(s, b"GET /services/data/", b"v" * 64, 32 << 20)
        assert _status(s) == 414
    assert elapsed < 5
    with guarded.client() as c:
        assert c.get(BASE + "?x=" + "y" * 8000).status_code == 200  # long but legal


def test_slow_head_gets_408_and_a_silent_client_is_dropped(guarded: Server) -> None:
    with _raw(guarded) as s:
        s.sendall(b"GET /services/data HTTP/1.1\r\nHost: x\r\n")  # never finished
        started = time.monotonic()
        assert _status(s) == 408
        assert time.monotonic() - started < 5
    with _raw(guarded) as s:  # connects, sends nothing
        started = time.monotonic()
        _status(s)
        assert s.recv(1) == b"" and time.monotonic() - started < 5
    with guarded.client() as c:
        assert_serving(c)


def test_stalled_upload_is_dropped_and_discarded(guarded: Server) -> None:
    with guarded.client() as c:
        job = create(c, "Contact", "insert")["id"]
    with _raw(guarded) as s:
        s.sendall(
            f"PUT {BASE}/{job}/batches HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
            f"Authorization: Bearer {guarded.token}\r\nContent-Length: 1000\r\n\r\n"
            "LastName\nstalled\n".encode()
        )
        started = time.monotonic()
        with contextlib.suppress(OSError):
            assert s.recv(4096) == b""  # closed without an answer
        assert time.monotonic() - started < 5
    with guarded.client() as c:  # the job is still Open with no data; a real upload works
        assert put(c, job, "LastName\nlater\n").status_code == 201
    assert not list(guarded.data_dir.rglob("*.part"))


# ---------------------------------------------------------------- DELETE during a download


@pytest.mark.parametrize("backend", BACKENDS)
def test_delete_during_results_download_never_ends_cleanly_short(
    make_server: Callable[..., Server], backend: str
) -> None:
    srv = make_server(backend=backend)
    rows = 25_000  # three internal batches: three result chunks of ~5 MB
    pad = "p" * 200
    body = "LastName,Description\n" + "".join(f"dl{i},{pad}\n" for i in range(rows))
    with srv.client() as c:
        info = run_job(c, "Contact", "insert", body)
        assert info["state"] == "JobComplete" and info["numberRecordsProcessed"] == rows, info
        job = info["id"]
        received = b""
        aborted = False
        with c.stream("GET", f"{BASE}/{job}/successfulResults") as r:
            assert r.status_code == 200
            stream = r.iter_raw(1 << 16)
            received += next(stream)
            assert c.delete(f"{BASE}/{job}").status_code == 204
            try:
                for part in stream:
                    received += part
            except httpx.HTTPError:  # the connection was aborted: the client knows
                aborted = True
        lines = received.count(b"\n") - 1  # header line
        assert aborted or lines == rows, f"a clean 200 with {lines} of {rows} rows"
        assert_serving(c)


def test_a_client_that_stops_reading_a_download_does_not_hold_a_stopping_server(
    make_server: Callable[..., Server],
) -> None:
    srv = make_server("--shutdown-timeout", "2")
    rows = 25_000  # ~6 MB of results: more than the socket buffers hold
    pad = "p" * 200
    body = "LastName,Description\n" + "".join(f"st{i},{pad}\n" for i in range(rows))
    with srv.client() as c:
        job = run_job(c, "Contact", "insert", body)["id"]
    with _raw(srv) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(
            f"GET {BASE}/{job}/successfulResults HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {srv.token}\r\n\r\n".encode()
        )
        assert _status(s) == 200  # then reads nothing more
        assert srv.proc is not None
        started = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        srv.proc.wait(timeout=15)  # before --shutdown-timeout: TimeoutExpired, it waited on
        assert time.monotonic() - started < 10
    assert "timeout graceful shutdown exceeded" in srv.log()


# ---------------------------------------------------------------- connections stay bounded


def _burst(srv: Server, n: int = 60) -> None:
    """n requests at once: without a bound, each lands on its own request thread."""
    with httpx.Client(base_url=srv.url, headers=srv.headers(), timeout=60) as c:

        def one(_: int) -> int:
            return c.get(BASE).status_code

        with ThreadPoolExecutor(n) as pool:
            assert set(pool.map(one, range(n))) == {200}


def test_sqlite_connections_are_bounded_by_the_pool(
    make_server: Callable[..., Server],
) -> None:
    import psutil

    srv = make_server("--pool-size", "4")
    assert srv.proc is not None
    for _ in range(3):
        _burst(srv)
    db = str(srv.db_path)
    handles = [f for f in psutil.Process(srv.proc.pid).open_files() if f.path == db]
    # the pool's 4, each worker thread's own (2 workers), the lock on the database file
    assert len(handles) <= 4 + 2 + 1, len(handles)


def test_postgresql_connections_are_bounded_by_the_pool(
    make_server: Callable[..., Server],
) -> None:
    import psycopg

    srv = make_server("--pool-size", "4", backend="postgresql")
    assert srv.pg_url is not None
    for _ in range(3):
        _burst(srv)
    name = srv.pg_url.rsplit("/", 1)[1]
    with psycopg.connect(srv.pg_url, autocommit=True) as admin:
        row = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchone()
    assert row is not None
    # the pool's 4; per worker thread (2): its own, its side connection, its LISTEN
    assert row[0] <= 4 + 2 * 3, row[0]


# ---------------------------------------------------------------- what a crash leaves


def test_crash_leftovers_are_cleaned_at_start_sqlite(make_server: Callable[..., Server]) -> None:
    from bulk1_helpers import add_batch, b1_client, create_job

    srv = make_server()
    with b1_client(srv) as c:
        job = create_job(c, "Contact")["id"]
        batch = add_batch(c, job, "LastName\nkept\n")["id"]
    srv.kill()
    uploads = srv.data_dir / "uploads"
    left = [
        uploads / "7500000000000AAAAA.0123abcd.part",  # an upload cut off by the crash
        uploads / "751000000000001AAA.request.0123abcd.tmp",  # a payload being written
        uploads / "751000000000009AAA.request",  # a payload whose batch was never recorded
    ]
    for path in left:
        path.write_bytes(b"LastName\nlost\n")
    srv.start()
    assert [p.name for p in left if p.exists()] == []
    with b1_client(srv) as c:  # a real batch's payload survives
        r = c.get(f"/services/async/59.0/job/{job}/batch/{batch}/request")
        assert r.status_code == 200 and "kept" in r.text, r.text


def test_stale_upload_chunks_are_swept_postgresql(make_server: Callable[..., Server]) -> None:
    import psycopg

    srv = make_server(start=False, backend="postgresql")
    assert srv.pg_url is not None
    srv.start()
    srv.stop()
    old = int(time.time()) - 7200
    with psycopg.connect(srv.pg_url, autocommit=True) as db:
        for name in (
            f"tmp:7500000000000AAAAA:{old}:dead",
            f"tmp:7500000000000AAAAA:{old + 7199}:live",
        ):
            db.execute("INSERT INTO bf_blob (name, seq, data) VALUES (%s, 0, %s)", (name, b"x"))
    srv.start()  # its workers sweep at once
    deadline = time.monotonic() + 10
    with psycopg.connect(srv.pg_url, autocommit=True) as db:
        while time.monotonic() < deadline:
            names = {r[0] for r in db.execute("SELECT name FROM bf_blob WHERE name LIKE 'tmp:%'")}
            if f"tmp:7500000000000AAAAA:{old}:dead" not in names:
                break
            time.sleep(0.2)
    assert names == {f"tmp:7500000000000AAAAA:{old + 7199}:live"}, names


# ---------------------------------------------------------------- memory bounded by bytes


@pytest.mark.parametrize(("header", "limit"), [(32_000, None), (32_001, "header row"), (10, None)])
def test_scanner_header_limit_is_32000_characters(header: int, limit: str | None) -> None:
    from bulkforce.wire.csvio import UploadScanner

    data = ("é" * header + "\r\n" + "x" * 400_000 + "\r\n").encode()
    scanner = UploadScanner()
    for i in range(0, len(data), 4093):  # split inside characters and line endings
        scanner.feed(data[i : i + 4093])
    problem = scanner.finish()
    assert (problem is None) if limit is None else (limit in (problem or "")), problem


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"a," * (11 << 20) + b"LastName\nx\n", "header row exceeds the limit of 32,000"),
        (b"LastName\n" + b"a," * (15 << 20) + b"\n", "record exceeds the limit of 400,000"),
    ],
    ids=["22MB-header-row", "30MB-of-tiny-cells"],
)
def test_huge_header_or_row_fails_the_job_without_ballooning(
    make_server: Callable[..., Server], backend: str, body: bytes, message: str
) -> None:
    srv = make_server(backend=backend)
    with srv.client() as c:
        job = create(c, "Contact", "insert")["id"]
        info: dict[str, object] = {}

        with peak_rss(srv) as rss:
            assert put(c, job, body).status_code == 201
            assert c.patch(f"{BASE}/{job}", json={"state": "UploadComplete"}).status_code == 200
            info.update(wait_for_job(c, job))
            for kind in ("successfulResults", "failedResults", "unprocessedrecords"):
                assert c.get(f"{BASE}/{job}/{kind}").status_code == 200
        grew = rss.growth
        assert info["state"] == "Failed" and message in str(info["errorMessage"]), info
        assert grew < 150 << 20, f"RSS grew {grew >> 20} MB"
        assert_serving(c)


def test_small_pool_never_deadlocks_on_id_allocation(make_server: Callable[..., Server]) -> None:
    """A request thread writing records holds a connection and takes a second one for Ids;
    with every pooled connection held that way, the second must still come (PostgreSQL)."""
    srv = make_server("--pool-size", "2", backend="postgresql")
    with httpx.Client(base_url=srv.url, headers=srv.headers(), timeout=60) as c:

        def one(i: int) -> int:
            r = c.post("/services/data/v59.0/sobjects/Contact", json={"LastName": f"pool{i}"})
            return r.status_code

        started = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(one, range(48)))
    assert set(codes) == {201}, codes
    assert time.monotonic() - started < 20
