"""`--timezone`: SOQL's relative date literals count the days of the configured zone, over the
REST query API of a real server, on SQLite and PostgreSQL; an unknown zone stops start-up."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from conftest import BACKENDS, Server
from query_helpers import load, rest_ok

SCHEMA = Path(__file__).parent / "data" / "test_schema.json"


def zone_on_another_day() -> str:
    """A zone whose current date differs from UTC's (one always does: +14 h or -11 h)."""
    now = dt.datetime.now(dt.UTC)
    for tz in ("Pacific/Kiritimati", "Pacific/Pago_Pago"):
        if now.astimezone(ZoneInfo(tz)).date() != now.date():
            return tz
    raise AssertionError("no zone is on another day")  # pragma: no cover


@pytest.mark.parametrize("backend", BACKENDS)
def test_today_is_the_configured_zone_s_today(
    make_server: Callable[..., Server], backend: str
) -> None:
    tz = zone_on_another_day()
    srv = make_server("--schema", str(SCHEMA), "--timezone", tz, backend=backend)
    utc_today = dt.datetime.now(dt.UTC).date()
    days = [utc_today + dt.timedelta(days=k) for k in (-1, 0, 1)]
    with srv.client() as c:
        load(c, "Widget__c", ["Name", "Released__c"], [[f"tz {d}", d.isoformat()] for d in days])
        for _ in range(3):  # a day may turn between the query and the check; look again then
            before = dt.datetime.now(ZoneInfo(tz)).date()
            got = rest_ok(c, "SELECT Name FROM Widget__c WHERE Released__c = TODAY")
            if dt.datetime.now(ZoneInfo(tz)).date() == before:
                break
        assert [r["Name"] for r in got["records"]] == [f"tz {before}"]
        assert before != utc_today
        tomorrow = rest_ok(c, "SELECT Name FROM Widget__c WHERE Released__c = TOMORROW")
        nxt = before + dt.timedelta(days=1)
        assert [r["Name"] for r in tomorrow["records"]] == ([f"tz {nxt}"] if nxt in days else [])


def test_an_unknown_zone_is_refused_at_start(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bulkforce", "serve", "--data-dir", str(tmp_path),
         "--timezone", "Mars/Olympus_Mons"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "unknown time zone 'Mars/Olympus_Mons'" in proc.stderr
