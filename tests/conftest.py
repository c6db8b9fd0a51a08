"""Shared fixtures: a real `bulkforce serve` process on 127.0.0.1, driven over real HTTP."""

from __future__ import annotations

import functools
import os
import re
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

TOKEN = "00D000000000001AAA!AQEAQBulkforceTestToken"
API = "59.0"
PG_URL = os.environ.get("BULKFORCE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", "postgresql"]


def _pg_problem() -> str | None:
    """Why PostgreSQL tests cannot run here, or None when they can."""
    try:
        import psycopg

        with psycopg.connect(PG_URL, connect_timeout=3):
            return None
    except Exception as e:  # any reason at all means: skip, and say why
        return f"PostgreSQL not reachable at {PG_URL}: {str(e).splitlines()[0] if str(e) else e!r}"


PG_PROBLEM = _pg_problem()


def new_pg_database() -> str:
    """A fresh database for one server; dropped by drop_pg_database."""
    import psycopg

    name = f"bf_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    return PG_URL.rsplit("/", 1)[0] + "/" + name


def drop_pg_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_URL, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _api_names() -> dict[str, str]:
    """lower-case column name -> API name, for every field the test servers define, so rows
    from PostgreSQL (which folds names to lower case) carry the names SQLite shows."""
    from bulkforce.engine.schema import builtin_definitions, load_file

    names: dict[str, str] = {}
    defs = builtin_definitions() + load_file(Path(__file__).parent / "data" / "test_schema.json")
    for d in defs:
        for f in d.fields:
            names.setdefault(f.name.lower(), f.name)
    for system in ("Id", "IsDeleted", "CreatedDate", "CreatedById", "LastModifiedDate",
                   "LastModifiedById", "SystemModstamp", "OwnerId", "Name"):  # fmt: skip
        names[system.lower()] = system
    return names


API_NAMES = _api_names()


class CIRow(tuple):  # type: ignore[type-arg]
    """A result row readable by position or by column name in any case (PostgreSQL folds
    identifiers to lower case; SQLite keeps the API names)."""

    names: tuple[str, ...] = ()

    def __new__(cls, values: Iterable[Any], names: Sequence[str]) -> CIRow:
        row = super().__new__(cls, values)
        row.names = tuple(names)
        return row

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            lowered = [n.lower() for n in self.names]
            return tuple.__getitem__(self, lowered.index(key.lower()))
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self.names)

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except ValueError:
            return default


def _plain(value: Any) -> Any:
    """PostgreSQL values as SQLite returns them, so assertions hold on both stores."""
    import datetime as dt
    from decimal import Decimal

    if isinstance(value, dt.datetime):
        value = value.astimezone(dt.UTC)
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.strftime("%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bool):  # SQLite stores booleans as 0/1
        return int(value)
    return value


class DB:
    """Read access to a server's database, SQLite or PostgreSQL, with SQLite-style SQL
    (`?` placeholders, quoted API names)."""

    row_factory: Any = None  # accepted for sqlite3 compatibility; rows are always CIRow

    def __init__(self, server: Server) -> None:
        self.server = server
        self.pg = server.pg_url is not None
        if self.pg:
            import psycopg

            self.conn: Any = psycopg.connect(server.pg_url, autocommit=True)
        else:
            self.conn = sqlite3.connect(f"file:{server.db_path}?mode=ro", uri=True, timeout=10)

    def execute(self, query: str, params: Sequence[Any] = ()) -> Result:
        names_as_written = {}
        if self.pg:
            names_as_written = {
                n.lower(): n for n in re.findall(r'"([A-Za-z_][A-Za-z0-9_]*)"', query)
            }
            query = re.sub(r'"([A-Za-z_][A-Za-z0-9_]*)"', lambda m: m[1].lower(), query)
            if params:
                query = query.replace("%", "%%").replace("?", "%s")
            cur = self.conn.execute(query, list(params) if params else None)
        else:
            cur = self.conn.execute(query, params)
        names = [
            names_as_written.get(d[0], API_NAMES.get(d[0], d[0]) if self.pg else d[0])
            for d in cur.description or ()
        ]
        return Result([CIRow([_plain(v) for v in r], names) for r in cur.fetchall()])

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> DB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class CIDict(dict):  # type: ignore[type-arg]
    """A row as a dict whose keys match in any case (see CIRow)."""

    def _key(self, key: Any) -> Any:
        if isinstance(key, str) and not dict.__contains__(self, key):
            for k in self:
                if isinstance(k, str) and k.lower() == key.lower():
                    return k
        return key

    def __getitem__(self, key: Any) -> Any:
        return dict.__getitem__(self, self._key(key))

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, self._key(key))

    def get(self, key: Any, default: Any = None) -> Any:
        return dict.get(self, self._key(key), default)


class Result(list):  # type: ignore[type-arg]
    def fetchone(self) -> CIRow | None:
        return self[0] if self else None

    def fetchall(self) -> list[CIRow]:
        return list(self)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@functools.cache
def _tls_context(cafile: str | None, _mtime: int) -> ssl.SSLContext:
    """A client TLS context trusting `cafile` (None: httpx's default, certifi's bundle)."""
    if cafile is None:
        return httpx.create_ssl_context()
    return ssl.create_default_context(cafile=cafile)


@dataclass
class Server:
    """A `bulkforce serve` subprocess. `url` is the instance URL clients are given."""

    data_dir: Path
    extra_args: list[str] = field(default_factory=list)
    token: str = TOKEN
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    pg_url: str | None = None  # set: the server runs on this PostgreSQL database
    scheme: str = "http"  # "https": started with --tls, trusted through its local CA

    @property
    def backend(self) -> str:
        return "postgresql" if self.pg_url else "sqlite"

    def db(self) -> DB:
        return DB(self)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path:
        """The local CA that `serve --tls` keeps in its data dir."""
        return self.data_dir / "tls" / "ca.pem"

    @property
    def verify(self) -> ssl.SSLContext:
        """What an httpx client must trust to reach this server. Made once per CA: httpx
        otherwise makes a TLS context (reading certifi's CA bundle) for every client, ~40 ms
        each, thousands of times a run, even for plain http."""
        if self.scheme != "https":
            return _tls_context(None, 0)
        return _tls_context(str(self.ca_file), self.ca_file.stat().st_mtime_ns)

    @property
    def db_path(self) -> Path:
        return self.data_dir / "bulkforce.db"

    @property
    def ingest_url(self) -> str:
        return f"{self.url}/services/data/v{API}/jobs/ingest"

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir / f"server-{int(time.time() * 1000)}.log"
        cmd = [
            sys.executable, "-m", "bulkforce", "serve",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--data-dir", str(self.data_dir), "--token", self.token,
            *(["--database", self.pg_url] if self.pg_url else []),
            *self.extra_args,
        ]  # fmt: skip
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                r = httpx.get(
                    self.ingest_url, headers=self.headers(), timeout=1, verify=self.verify
                )
                if r.status_code == 200:
                    return
            except (httpx.TransportError, OSError):  # OSError: the CA file is not there yet
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server did not start:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **extra}

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers=self.headers(), timeout=60, verify=self.verify
        )


@pytest.fixture(scope="session", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One server per store for the whole session, so every test using it runs on SQLite and
    on PostgreSQL; tests must use their own jobs and unique values."""
    schema = Path(__file__).parent / "data" / "test_schema.json"
    pg_url = None
    if request.param == "postgresql":
        if PG_PROBLEM:
            pytest.skip(PG_PROBLEM)
        pg_url = new_pg_database()
    srv = Server(tmp_path_factory.mktemp("srv"), ["--schema", str(schema)], pg_url=pg_url)
    srv.start()
    yield srv
    srv.stop()
    if pg_url:
        drop_pg_database(pg_url)


DATA = Path(__file__).parent / "data"
# An org schema as users bring it: an `sf sobject describe --json` output and an SFDX project.
ORG_SCHEMA = [
    "--schema",
    str(DATA / "describe_contact.json"),
    "--schema",
    str(DATA / "sfdx_project"),
]


@pytest.fixture(scope="session")
def org_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server started with ORG_SCHEMA (Contact from a describe, Project__c and Account fields
    from SFDX metadata); tests must use their own jobs and unique values."""
    srv = Server(tmp_path_factory.mktemp("org"), list(ORG_SCHEMA))
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def org(org_server: Server) -> Iterator[httpx.Client]:
    with org_server.client() as c:
        yield c


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Factory for a private server (restart, schema and crash tests)."""
    made: list[Server] = []
    databases: list[str] = []

    def make(
        *args: str, data_dir: Path | None = None, start: bool = True, pg_url: str | None = None,
        backend: str = "sqlite",
    ) -> Server:  # fmt: skip
        if backend == "postgresql" and pg_url is None:
            if PG_PROBLEM:
                pytest.skip(PG_PROBLEM)
            pg_url = new_pg_database()
            databases.append(pg_url)
        srv = Server(data_dir or tmp_path / f"srv{len(made)}", list(args), pg_url=pg_url)
        made.append(srv)
        if start:
            srv.start()
        return srv

    yield make
    for srv in made:
        srv.stop()
    for url in databases:
        drop_pg_database(url)


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


JS_DIR = Path(__file__).parent / "js"


@pytest.fixture(scope="session")
def node() -> str:
    """The node binary for the jsforce tests, which skip with the reason when it is missing."""
    import shutil

    exe = shutil.which("node")
    if exe is None:
        pytest.skip("node/npm not available: no `node` on PATH")
    if not (JS_DIR / "node_modules" / "jsforce").is_dir():
        pytest.skip("node/npm not available: tests/js/node_modules/jsforce missing (`make js`)")
    return exe


class NodeScript:
    """Runs a tests/js/*.mjs driver of an unchanged client (instance URL, token and scenario
    as arguments; parameters as JSON on stdin; one JSON document on stdout)."""

    script = ""
    # jsforce sends everything through http(s)_proxy when set, ignoring NO_PROXY
    NO_PROXY_ENV = frozenset({"http_proxy", "https_proxy", "all_proxy", "no_proxy"})

    def __init__(self, node: str, server: Server) -> None:
        self.node = node
        self.server = server
        self.env = {k: v for k, v in os.environ.items() if k.lower() not in self.NO_PROXY_ENV}

    def run(
        self, scenario: str, params: dict[str, Any], ok: bool = True, token: str | None = None
    ) -> dict[str, Any]:
        import json

        proc = subprocess.run(
            [self.node, str(JS_DIR / self.script), self.server.url, token or self.server.token,
             scenario],
            input=json.dumps(params), capture_output=True, encoding="utf-8", timeout=90,
            cwd=JS_DIR, env=self.env,
        )  # fmt: skip
        try:
            out: dict[str, Any] = json.loads(proc.stdout)
        except json.JSONDecodeError:
            raise AssertionError(
                f"{self.script} {scenario} printed no JSON (exit {proc.returncode}):\n"
                f"{proc.stdout}\n{proc.stderr}"
            ) from None
        if ok:
            assert proc.returncode == 0, out
            assert "error" not in out, out
        else:
            assert proc.returncode == 1, out
        return out


def rows_where(db: DB, table: str, column: str, values: list[str]) -> list[dict[str, Any]]:
    marks = ",".join("?" * len(values))
    cur = db.execute(f'SELECT * FROM "{table}" WHERE "{column}" IN ({marks})', values)
    return [CIDict(zip(r.keys(), r, strict=True)) for r in cur.fetchall()]


def by(rows: list[dict[str, Any]], key: str) -> dict[Any, dict[str, Any]]:
    return {r[key]: r for r in rows}


@pytest.fixture
def db(server: Server) -> Iterator[DB]:
    """Read access to the session server's database (SQLite or PostgreSQL)."""
    with server.db() as con:
        yield con


def wait_for_job(c: httpx.Client, job_id: str, timeout: float = 60) -> dict[str, Any]:
    """Poll a Bulk 2.0 ingest job until it is in a terminal state."""
    deadline = time.monotonic() + timeout
    while True:
        r = c.get(f"/services/data/v{API}/jobs/ingest/{job_id}")
        r.raise_for_status()
        info: dict[str, Any] = r.json()
        if info["state"] in ("JobComplete", "Failed", "Aborted"):
            return info
        if time.monotonic() > deadline:
            raise TimeoutError(info)
        time.sleep(0.02)


def unique(prefix: str = "x") -> str:
    return f"{prefix}{time.time_ns()}{os.getpid()}"


# ---- the console's browser tests (tests/test_console.py) ------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium through Playwright; skips, saying why, where it cannot run. Module
    scope: Playwright's sync API holds an event loop in this thread while it runs, which
    other modules' `asyncio.run` would trip over."""
    from console_helpers import CHROMIUM, FLAGS, browser_problem

    problem = browser_problem()
    if problem:
        pytest.skip(problem)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 860})
    context.set_default_timeout(30_000)
    pg = context.new_page()

    dialogs: list[str] = []  # an alert() would mean injected script ran

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    pg.on("dialog", on_dialog)
    yield pg
    context.close()
    assert not dialogs, f"a page opened dialogs: {dialogs}"


@contextmanager
def inprocess_context(
    backend: str, data_dir: Path, schema_files: Sequence[Path] = (), max_upload: int = 10**9
) -> Iterator[Any]:
    """A bulkforce Context in this process on a fresh store ("sqlite" or "postgresql", which
    skips the test when PostgreSQL is not reachable), for tests that drive the worker."""
    from bulkforce.boot import build_context

    url = None
    if backend == "postgresql":
        if PG_PROBLEM:
            pytest.skip(PG_PROBLEM)
        url = new_pg_database()
    context = build_context(data_dir, url, list(schema_files), max_upload)
    try:
        yield context
    finally:
        context.store.close()
        if url:
            drop_pg_database(url)
