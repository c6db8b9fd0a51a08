"""Shared fixtures: a real `bulkforce serve` process on 127.0.0.1, driven over real HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

TOKEN = "00D000000000001AAA!AQEAQBulkforceTestToken"
API = "59.0"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A `bulkforce serve` subprocess. `url` is the instance URL clients are given."""

    data_dir: Path
    extra_args: list[str] = field(default_factory=list)
    token: str = TOKEN
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

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
            *self.extra_args,
        ]  # fmt: skip
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                r = httpx.get(self.ingest_url, headers=self.headers(), timeout=1)
                if r.status_code == 200:
                    return
            except httpx.TransportError:
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
        return httpx.Client(base_url=self.url, headers=self.headers(), timeout=60)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the whole session; tests must use their own jobs and unique values."""
    schema = Path(__file__).parent / "data" / "test_schema.json"
    srv = Server(tmp_path_factory.mktemp("srv"), ["--schema", str(schema)])
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Factory for a private server (restart, schema and crash tests)."""
    made: list[Server] = []

    def make(*args: str, data_dir: Path | None = None, start: bool = True) -> Server:
        srv = Server(data_dir or tmp_path / f"srv{len(made)}", list(args))
        made.append(srv)
        if start:
            srv.start()
        return srv

    yield make
    for srv in made:
        srv.stop()


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


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
