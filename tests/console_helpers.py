"""Browser helpers for the console tests: Debian's Chromium driven by Playwright (never a
browser that Playwright downloads), screenshots kept under tests/artifacts/."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from conftest import Server

CHROMIUM = os.environ.get("BULKFORCE_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip


def browser_problem() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as e:
        return f"playwright is not installed ({e}); `make test` installs the dev extras"
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        found = shutil.which("chromium")
        hint = f" (found {found}; set BULKFORCE_TEST_CHROMIUM)" if found else ""
        return (
            f"no Chromium at {CHROMIUM}{hint}: `make test` installs Debian's `chromium` "
            "package when run as root with apt-get"
        )
    return None


def shot(page: Any, name: str, server: Server) -> Path:
    """A full-page screenshot kept as a test artifact, named by page and database."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"console-{name}-{server.backend}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(page: Any, server: Server, token: str | None = None) -> None:
    page.goto(server.url + "/")
    assert "/login" in page.url
    page.fill("#token", token or server.token)
    page.click("#sign-in")
    page.wait_for_selector("#sign-out")


def sign_in_user(page: Any, server: Server, username: str, password: str) -> None:
    page.goto(server.url + "/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#sign-in")
