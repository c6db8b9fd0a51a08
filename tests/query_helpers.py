"""Raw-HTTP helpers shared by the query tests (not a test module): load records through Bulk
2.0 ingest, run REST queries to the end, run Bulk 2.0 query jobs and read every page."""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass
from typing import Any

import httpx
from bulk2_helpers import parse_quoted, run_job
from conftest import API

REST = f"/services/data/v{API}"
QBASE = f"/services/data/v{API}/jobs/query"


def _cell(value: str) -> str:
    # csv.writer leaves a lone CR unquoted when lines end in LF; quote it ourselves
    if any(ch in value for ch in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


def csv_text(header: list[str], rows: list[list[str]]) -> str:
    return "".join(",".join(map(_cell, row)) + "\n" for row in [header, *rows])


def load(c: httpx.Client, obj: str, header: list[str], rows: list[list[str]]) -> list[str]:
    """Insert rows through a Bulk 2.0 ingest job; the new Ids in row order."""
    info = run_job(c, obj, "insert", csv_text(header, rows))
    assert info["state"] == "JobComplete", info
    if info["numberRecordsFailed"]:
        raise AssertionError(c.get(f"{REST}/jobs/ingest/{info['id']}/failedResults").text)
    r = c.get(f"{REST}/jobs/ingest/{info['id']}/successfulResults")
    got = list(csv.reader(io.StringIO(r.text, newline="")))
    return [row[0] for row in got[1:]]


def delete(c: httpx.Client, obj: str, ids: list[str]) -> None:
    info = run_job(c, obj, "delete", csv_text(["Id"], [[i] for i in ids]))
    assert info["state"] == "JobComplete" and info["numberRecordsFailed"] == 0, info


def rest(c: httpx.Client, soql: str, *, all_rows: bool = False, **headers: str) -> httpx.Response:
    return c.get(
        f"{REST}/{'queryAll' if all_rows else 'query'}", params={"q": soql}, headers=headers
    )


def rest_ok(c: httpx.Client, soql: str, **kw: Any) -> dict[str, Any]:
    r = rest(c, soql, **kw)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def rest_all(
    c: httpx.Client, soql: str, **kw: Any
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every record of a REST query following nextRecordsUrl; (records, pages)."""
    page = rest_ok(c, soql, **kw)
    pages = [page]
    while not page["done"]:
        r = c.get(page["nextRecordsUrl"])
        assert r.status_code == 200, r.text
        page = r.json()
        pages.append(page)
    return [rec for p in pages for rec in p["records"]], pages


def create_query(
    c: httpx.Client, soql: str, operation: str = "query", **extra: Any
) -> dict[str, Any]:
    r = c.post(QBASE, json={"operation": operation, "query": soql, **extra})
    assert r.status_code == 200, r.text
    info: dict[str, Any] = r.json()
    return info


def wait_query(c: httpx.Client, job_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        r = c.get(f"{QBASE}/{job_id}")
        assert r.status_code == 200, r.text
        info: dict[str, Any] = r.json()
        if info["state"] in ("JobComplete", "Failed", "Aborted"):
            return info
        assert time.monotonic() < deadline, info
        time.sleep(0.02)


@dataclass
class Page:
    response: httpx.Response
    header: list[str]
    rows: list[list[str]]


def read_page(
    c: httpx.Client, job_id: str, locator: str | None = None, max_records: int | None = None,
    delim: str = ",", eol: str = "\n",
) -> Page:  # fmt: skip
    params: dict[str, Any] = {}
    if locator:
        params["locator"] = locator
    if max_records:
        params["maxRecords"] = max_records
    r = c.get(f"{QBASE}/{job_id}/results", params=params, headers={"Accept": "text/csv"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv"), r.headers
    rows = parse_quoted(r.content.decode("utf-8"), delim, eol)
    assert rows, "every page starts with the header row"
    assert int(r.headers["Sforce-NumberOfRecords"]) == len(rows) - 1, r.headers
    return Page(r, rows[0], rows[1:])


def read_all(
    c: httpx.Client, job_id: str, max_records: int | None = None, delim: str = ",",
    eol: str = "\n",
) -> tuple[list[str], list[list[str]], list[Page]]:  # fmt: skip
    """Every page of a query job's results: (header, rows, pages)."""
    pages = [read_page(c, job_id, None, max_records, delim, eol)]
    while (loc := pages[-1].response.headers["Sforce-Locator"]) != "null":
        pages.append(read_page(c, job_id, loc, max_records, delim, eol))
    for p in pages:
        assert p.header == pages[0].header
    return pages[0].header, [row for p in pages for row in p.rows], pages


def bulk_query(
    c: httpx.Client, soql: str, operation: str = "query", **extra: Any
) -> tuple[dict[str, Any], list[str], list[list[str]]]:
    info = create_query(c, soql, operation, **extra)
    done = wait_query(c, info["id"])
    assert done["state"] == "JobComplete", done
    header, rows, _ = read_all(
        c, info["id"], delim={"TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^",
                              "BACKQUOTE": "`"}.get(extra.get("columnDelimiter", ""), ","),
        eol="\r\n" if extra.get("lineEnding") == "CRLF" else "\n",
    )  # fmt: skip
    return done, header, rows
