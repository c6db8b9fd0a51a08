"""`bulkforce serve`: environment variables, the generated token, permissions, the data-dir lock."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from conftest import API, Server, free_port

SF_CLI_TOKEN = re.compile(r"(00D\w{12,15})![.\w]*")  # what the sf CLI accepts as a token


@contextmanager
def serve(
    args: list[str], env: dict[str, str]
) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bulkforce", "serve", *args],
        env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        while len(lines) < 3:
            line = proc.stdout.readline()
            assert line, f"server exited: {lines}"
            lines.append(line.strip())
        yield proc, lines
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def wait_ready(url: str, token: str) -> httpx.Response:
    deadline = time.monotonic() + 20
    while True:
        try:
            return httpx.get(
                f"{url}/services/data/v{API}/jobs/ingest",
                headers={"Authorization": f"Bearer {token}"},
            )
        except httpx.TransportError:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_options_from_environment(tmp_path: Path) -> None:
    port = free_port()
    env = {"BULKFORCE_PORT": str(port), "BULKFORCE_DATA_DIR": str(tmp_path / "env-data"),
           "BULKFORCE_TOKEN": "00D000000000001AAA!fromEnv"}  # fmt: skip
    with serve([], env) as (_, lines):
        assert lines[0] == f"bulkforce listening on http://127.0.0.1:{port}"
        assert (
            wait_ready(f"http://127.0.0.1:{port}", "00D000000000001AAA!fromEnv").status_code == 200
        )
    assert (tmp_path / "env-data" / "bulkforce.db").exists()


def test_generated_token_is_sf_cli_shaped_kept_and_shown_once(tmp_path: Path) -> None:
    data = tmp_path / "d"
    port = free_port()
    with serve(["--port", str(port), "--data-dir", str(data)], {}) as (_, lines):
        token = lines[2].removeprefix("access token: ")
        assert SF_CLI_TOKEN.fullmatch(token), token
        assert lines[1] == f"instance URL: http://127.0.0.1:{port}"
        assert wait_ready(f"http://127.0.0.1:{port}", token).status_code == 200
        assert wait_ready(f"http://127.0.0.1:{port}", token + "x").status_code == 401
    assert (data / "token").read_text().strip() == token
    assert (data / "token").stat().st_mode & 0o077 == 0  # readable by its owner only
    with serve(["--port", str(port), "--data-dir", str(data)], {}) as (_, lines):
        # shown once: a restart points at `bulkforce token`, and the same token still works
        assert lines[2] == f"access token: print it with `bulkforce token --data-dir {data}`"
        assert wait_ready(f"http://127.0.0.1:{port}", token).status_code == 200


def test_hard_delete_permission_off(make_server: Callable[..., Server]) -> None:
    srv = make_server("--no-hard-delete")
    with srv.client() as c:
        r = c.post(
            f"/services/data/v{API}/jobs/ingest",
            json={"object": "Contact", "operation": "hardDelete"},
        )
        assert r.status_code == 400 and r.json()[0]["errorCode"] == "FEATURENOTENABLED"
        r = c.post(
            f"/services/data/v{API}/jobs/ingest", json={"object": "Contact", "operation": "delete"}
        )
        assert r.status_code == 200
        r = c.post(
            f"/services/async/{API}/job",
            json={"object": "Contact", "operation": "hardDelete", "contentType": "CSV"},
            headers={"X-SFDC-Session": srv.token},
        )
        assert r.status_code == 400 and r.json()["exceptionCode"] == "FeatureNotEnabled"


def test_second_server_on_same_data_dir_refuses(make_server: Callable[..., Server]) -> None:
    srv = make_server()
    proc = subprocess.run(
        [sys.executable, "-m", "bulkforce", "serve", "--port", str(free_port()),
         "--data-dir", str(srv.data_dir)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert srv.proc is not None
    # names the holder and the way out (issue #13)
    assert (
        f"another bulkforce server (PID {srv.proc.pid}, port {srv.port}) is using {srv.data_dir}"
        in proc.stderr
    ), proc.stderr
    assert "--data-dir" in proc.stderr


@pytest.mark.parametrize("url", ["mysql://x/y", "sqlite://relative.db"])
def test_unsupported_database_url_stops_start(tmp_path: Path, url: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bulkforce", "serve", "--data-dir", str(tmp_path), "--database", url],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2 and "bulkforce:" in proc.stderr


def test_doubled_leading_slash_is_folded(make_server: Callable[..., Server]) -> None:
    """jsforce with an instance URL ending in "/" asks for //services/async/…"""
    srv = make_server()
    r = httpx.post(
        f"{srv.url}//services/async/{API}/job",
        json={"object": "Contact", "operation": "insert", "contentType": "CSV"},
        headers={"X-SFDC-Session": srv.token},
    )
    assert r.status_code == 201 and r.json()["state"] == "Open"
    r = httpx.get(f"{srv.url}//services/data/v{API}/jobs/ingest", headers=srv.headers())
    assert r.status_code == 200 and r.json()["done"] is True
