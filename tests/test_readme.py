"""The README's first-hour snippets, run as written (issue #13): the shell lines in a second
terminal, the simple-salesforce and jsforce examples, against `bulkforce serve --data-dir
./data` started the way `make serve` starts it. Only the port differs (8000 may be taken on a
test machine), and each block marked `<!-- readme-test -->` runs."""

from __future__ import annotations

import os
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import JS_DIR, NodeScript, free_port

REPO = Path(__file__).parent.parent
MARK = "<!-- readme-test -->"


def marked_blocks() -> list[tuple[str, str]]:
    """(language, code) of each fenced block right after a marker line."""
    text = (REPO / "README.md").read_text()
    return re.findall(re.escape(MARK) + r"\s*\n```(\w+)\n(.*?)\n```", text, re.DOTALL)


@pytest.fixture
def readme_server(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A checkout's world: `.venv` beside `./data`, the server started as `make serve` does."""
    work = tmp_path / "repo"
    work.mkdir()
    (work / ".venv").symlink_to(REPO / ".venv")
    port = free_port()
    log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen(
        [str(REPO / ".venv" / "bin" / "bulkforce"), "serve", "--data-dir", "./data",
         "--port", str(port)], cwd=work, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            token = work / "data" / "token"
            if token.exists():
                try:
                    r = httpx.get(f"http://127.0.0.1:{port}/services/data/", timeout=2)
                    if r.status_code == 200:
                        break
                except httpx.TransportError:
                    pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        yield work, port
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _as_here(code: str, port: int) -> str:
    return code.replace("127.0.0.1:8000", f"127.0.0.1:{port}")


def test_readme_marks_the_first_hour_snippets() -> None:
    assert [lang for lang, _ in marked_blocks()] == ["sh", "python", "js", "sh"]


def test_readme_snippets_run_as_written(readme_server: tuple[Path, int], node: str) -> None:
    work, port = readme_server
    first_hour, python, javascript, _ = (code for _, code in marked_blocks())
    blocks = {"sh": first_hour, "python": python, "js": javascript}
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "TOKEN")}
    env["PATH"] = ":".join(p for p in env.get("PATH", "").split(":") if ".venv" not in p)
    sh = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", _as_here(blocks["sh"], port)], cwd=work, env=env,
        capture_output=True, encoding="utf-8", timeout=120,
    )  # fmt: skip
    assert sh.returncode == 0, sh.stderr
    assert "Bulk data load jobs" in sh.stdout and "AccountNumber" in sh.stdout, sh.stdout
    # the next snippets run where the first one left TOKEN set
    env["TOKEN"] = (work / "data" / "token").read_text().strip()
    py = subprocess.run(
        [str(REPO / ".venv" / "bin" / "python"), "-c", _as_here(blocks["python"], port)],
        cwd=work, env=env, capture_output=True, encoding="utf-8", timeout=120,
    )  # fmt: skip
    assert py.returncode == 0, py.stderr
    assert py.stdout.strip() == "003"
    script = JS_DIR / f"readme_{uuid.uuid4().hex}.mjs"  # beside node_modules/jsforce
    script.write_text(_as_here(blocks["js"], port))
    try:
        js_env = {k: v for k, v in env.items() if k.lower() not in NodeScript.NO_PROXY_ENV}
        js = subprocess.run(
            [node, str(script)], cwd=work, env=js_env, capture_output=True, encoding="utf-8",
            timeout=120,
        )  # fmt: skip
    finally:
        script.unlink()
    assert js.returncode == 0, js.stderr
    assert js.stdout.strip() == "2"
    headers = {"Authorization": f"Bearer {env['TOKEN']}"}
    jobs = httpx.get(f"http://127.0.0.1:{port}/services/data/v59.0/jobs/ingest", headers=headers)
    kinds = sorted((j["jobType"], j["state"]) for j in jobs.json()["records"])
    # simple-salesforce's Bulk 2.0 and 1.0 jobs, and jsforce's
    assert kinds == [
        ("Classic", "Closed"),
        ("V2Ingest", "JobComplete"),
        ("V2Ingest", "JobComplete"),
    ]
    listing = subprocess.run(
        [str(REPO / ".venv" / "bin" / "bulkforce"), "jobs"], cwd=work, capture_output=True,
        encoding="utf-8", timeout=60,
    )  # fmt: skip
    assert listing.stdout.count("JobComplete") == 2, listing.stdout
    assert listing.stdout.count("Closed") == 1, listing.stdout


def test_readme_sf_cli_login_runs_as_written(readme_server: tuple[Path, int]) -> None:
    sf = JS_DIR / "node_modules" / ".bin" / "sf"
    if not sf.exists():
        pytest.skip("node/npm not available: tests/js/node_modules/.bin/sf missing (`make js`)")
    work, port = readme_server
    login = marked_blocks()[3][1]
    env = {k: v for k, v in os.environ.items() if k.lower() not in NodeScript.NO_PROXY_ENV}
    env.update({
        "HOME": str(work), "SF_DISABLE_TELEMETRY": "true", "SF_DISABLE_AUTOUPDATE": "true",
        "SF_SKIP_NEW_VERSION_CHECK": "true", "PATH": f"{sf.parent}{os.pathsep}{env['PATH']}",
        "TOKEN": (work / "data" / "token").read_text().strip(),
    })  # fmt: skip
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", _as_here(login, port)], cwd=work, env=env,
        capture_output=True, encoding="utf-8", timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    shown = subprocess.run(
        [str(sf), "org", "display", "--target-org", "bulkforce", "--json"], cwd=work, env=env,
        capture_output=True, encoding="utf-8", timeout=180,
    )  # fmt: skip
    assert f"127.0.0.1:{port}" in shown.stdout, shown.stdout + shown.stderr
