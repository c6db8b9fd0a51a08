"""The first hour with bulkforce (issue #13): what a new user hit when following the README,
each checked where the user would notice it (CLI output, the server's log, HTTP answers)."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from bulk2_helpers import BASE, run_job
from conftest import API, TOKEN, Server, unique


def _serve(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bulkforce", "serve", *args], capture_output=True,
        encoding="utf-8", timeout=timeout,
    )  # fmt: skip


def test_taken_port_names_the_port_options_and_prints_no_token(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        proc = _serve("--port", str(port), "--data-dir", str(tmp_path / "d"))
    assert proc.returncode == 2
    assert "listening" not in proc.stdout and "access token" not in proc.stdout
    assert f"127.0.0.1:{port}" in proc.stderr
    assert "--port" in proc.stderr and "BULKFORCE_PORT" in proc.stderr, proc.stderr


def test_make_serve_takes_a_port() -> None:
    out = subprocess.run(
        ["make", "-n", "serve", "PORT=8123"], capture_output=True, encoding="utf-8",
        cwd=Path(__file__).parent.parent,
    ).stdout  # fmt: skip
    assert "bulkforce serve --data-dir ./data --port 8123" in out, out


def _log_has(server: Server, text: str, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in server.log():
            return True
        time.sleep(0.1)
    return False


def test_https_to_the_http_port_is_explained_in_the_log(
    make_server: Callable[..., Server],
) -> None:
    srv = make_server()
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as raw:
        try:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1"):
                pass
        except (ssl.SSLError, OSError):
            pass  # the handshake fails: the server speaks http
    assert _log_has(srv, "start the server with --tls"), srv.log()


def test_access_log_has_method_path_status_time_and_job_but_no_token(
    make_server: Callable[..., Server],
) -> None:
    srv = make_server()
    with srv.client() as c:
        info = run_job(c, "Contact", "insert", f"LastName\n{unique('log')}\n")
        c.get(f"{BASE}?queryLocator=secret-in-query")
        c.get(f"{BASE}/750000000000000AAA")
    httpx.post(f"{srv.url}/services/oauth2/token", data={"grant_type": "password",
               "username": "nobody@example.com", "password": "pw-in-body"})  # fmt: skip
    assert _log_has(srv, f"GET {BASE}/750000000000000AAA 404")
    log = srv.log()
    lines = [ln for ln in log.splitlines() if " access " in ln]
    create = next(ln for ln in lines if f"POST {BASE} 200" in ln)
    assert f"job={info['id']}" in create  # the created job's id, from the answer
    assert any(f"PUT {BASE}/{info['id']}/batches 201" in ln for ln in lines)
    assert all(ln.split()[-1].endswith("ms") or "job=" in ln for ln in lines)
    logged = "\n".join(ln for ln in log.splitlines() if not ln.startswith("access token: "))
    assert TOKEN not in logged and "secret-in-query" not in logged and "pw-in-body" not in logged


def test_reset_of_an_unknown_object_says_so(make_server: Callable[..., Server]) -> None:
    srv = make_server()
    r = httpx.post(f"{srv.url}/bulkforce/admin/reset", headers=srv.headers(),
                   json={"object": "Widget__c"})  # fmt: skip
    assert r.status_code == 404
    message = r.json()[0]["message"]
    assert "No object named Widget__c" in message and "--schema" in message
    proc = subprocess.run(
        [sys.executable, "-m", "bulkforce", "reset", "Widget__c", "--data-dir",
         str(srv.data_dir)], capture_output=True, encoding="utf-8", timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "No object named Widget__c in the schema" in proc.stderr, proc.stderr
    assert "does not exist" not in proc.stderr


def test_schema_file_holding_an_api_error_says_so(tmp_path: Path) -> None:
    bad = tmp_path / "account.json"  # what `curl …/describe` without a token saves
    bad.write_text(json.dumps([{"message": "Session expired or invalid",
                                "errorCode": "INVALID_SESSION_ID"}]))  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "bulkforce", "schema", "show", "Account", "--schema", str(bad)],
        capture_output=True, encoding="utf-8", timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "holds an API error" in proc.stderr and "INVALID_SESSION_ID" in proc.stderr
    assert "has no valid 'name'" not in proc.stderr


def test_rest_writes_point_to_the_bulk_apis(server: Server) -> None:
    r = httpx.patch(f"{server.url}/services/data/v{API}/limits", headers=server.headers(), json={})
    assert r.status_code == 405
    message = r.json()[0]["message"]
    assert "jobs/ingest" in message and "/services/async/" in message, message


def test_console_answers_at_the_root_instead_of_401(server: Server) -> None:
    r = httpx.get(server.url + "/", follow_redirects=True)
    assert r.status_code == 200 and "Sign in" in r.text
