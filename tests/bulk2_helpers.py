"""Raw-HTTP helpers shared by the Bulk API 2.0 ingest tests (not a test module)."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from conftest import API, CIDict, Server, wait_for_job

BASE = f"/services/data/v{API}/jobs/ingest"
SCHEMA = str(Path(__file__).parent / "data" / "test_schema.json")

DELIMITERS: dict[str, str] = {
    "BACKQUOTE": "`",
    "CARET": "^",
    "COMMA": ",",
    "PIPE": "|",
    "SEMICOLON": ";",
    "TAB": "\t",
}
LINE_ENDINGS: dict[str, str] = {"LF": "\n", "CRLF": "\r\n"}

NOT_FOUND = [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]
INVALID_SESSION = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
NOT_TERMINATED = [
    {
        "errorCode": "API_ERROR",
        "message": "Error encountered when deleting the job because the job is not terminated",
    }
]
ABORT_COMPLETED = [
    {"errorCode": "INVALIDJOBSTATE", "message": "Aborting already Completed Job not allowed"}
]
COUNTERS = (
    "numberRecordsProcessed",
    "numberRecordsFailed",
    "retries",
    "totalProcessingTime",
    "apiActiveProcessingTime",
    "apexProcessingTime",
)
DATE_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$")

# ---------------------------------------------------------------- ids

_ALPHA = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_B62 = re.compile(r"^[0-9A-Za-z]+$")


def to18(id15: str) -> str:
    """The §7.3 checksum suffix, written independently of the server."""
    assert len(id15) == 15
    out = []
    for c in range(3):
        n = 0
        for i, ch in enumerate(id15[c * 5 : (c + 1) * 5]):
            if "A" <= ch <= "Z":
                n |= 1 << i
        out.append(_ALPHA[n])
    return id15 + "".join(out)


def assert_id18(value: Any, prefix: str | None = None) -> None:
    """An 18-char Salesforce id with a valid checksum (and the given key prefix)."""
    assert isinstance(value, str), value
    assert len(value) == 18 and _B62.match(value), value
    assert to18(value[:15]) == value, f"bad checksum suffix: {value}"
    if prefix is not None:
        assert value.startswith(prefix), f"{value} should start with {prefix}"


def bad_suffix(id18: str) -> str:
    """The same id with a wrong (but well-formed) checksum suffix."""
    last = "A" if id18[-1] != "A" else "B"
    return id18[:17] + last


def unknown_id(prefix: str) -> str:
    """A well-formed 18-char id of `prefix` that no server will have issued."""
    return to18(prefix + "Zz9Yy8Xx7Ww6"[: 15 - len(prefix)])


# ---------------------------------------------------------------- error bodies


def assert_error(r: httpx.Response, status: int, code: str, message: str | None = None) -> str:
    """A Bulk 2.0 error: JSON array of {errorCode, message}. Returns the message."""
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers.get("content-type", "").startswith("application/json"), r.headers
    body = r.json()
    assert isinstance(body, list) and len(body) >= 1, body
    err = body[0]
    assert isinstance(err, dict) and set(err) >= {"errorCode", "message"}, body
    assert err["errorCode"] == code, body
    assert isinstance(err["message"], str) and err["message"], body
    if message is not None:
        assert err["message"] == message, body
    return str(err["message"])


def assert_serving(c: httpx.Client) -> None:
    """The server still answers a normal request after a bad one."""
    r = c.get(BASE)
    assert r.status_code == 200, r.text
    assert "records" in r.json()


# ---------------------------------------------------------------- job calls


def create(c: httpx.Client, obj: str, operation: str, **extra: Any) -> dict[str, Any]:
    r = c.post(BASE, json={"object": obj, "operation": operation, **extra})
    assert r.status_code == 200, r.text
    info: dict[str, Any] = r.json()
    assert info["state"] == "Open", info
    return info


def put(
    c: httpx.Client, job_id: str, data: str | bytes, content_type: str = "text/csv"
) -> httpx.Response:
    body = data.encode() if isinstance(data, str) else data
    return c.put(f"{BASE}/{job_id}/batches", content=body, headers={"Content-Type": content_type})


def patch(c: httpx.Client, job_id: str, state: str) -> httpx.Response:
    return c.patch(f"{BASE}/{job_id}", json={"state": state})


def upload_and_close(c: httpx.Client, job_id: str, data: str | bytes) -> dict[str, Any]:
    r = put(c, job_id, data)
    assert r.status_code == 201, r.text
    r = patch(c, job_id, "UploadComplete")
    assert r.status_code == 200, r.text
    return wait_for_job(c, job_id)


def run_job(
    c: httpx.Client, obj: str, operation: str, data: str | bytes, **extra: Any
) -> dict[str, Any]:
    """Create, upload, close and wait; returns the final job info."""
    info = create(c, obj, operation, **extra)
    return upload_and_close(c, info["id"], data)


def gz(data: str | bytes) -> bytes:
    return gzip.compress(data.encode() if isinstance(data, str) else data)


# ---------------------------------------------------------------- result CSVs


@dataclass
class Results:
    header: str  # raw header line
    columns: list[str]
    rows: list[list[str]]

    def dicts(self) -> list[dict[str, str]]:
        for row in self.rows:
            assert len(row) == len(self.columns), (self.columns, row)
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def parse_quoted(text: str, delim: str, eol: str) -> list[list[str]]:
    """Parse result rows, asserting every value is double-quoted and rows end with `eol`."""
    rows: list[list[str]] = []
    pos, n = 0, len(text)
    while pos < n:
        row: list[str] = []
        while True:
            assert text[pos] == '"', f"unquoted value at {pos}: {text[pos : pos + 40]!r}"
            pos += 1
            buf: list[str] = []
            while True:
                q = text.find('"', pos)
                assert q >= 0, f"unterminated quoted value: {text[pos - 1 : pos + 40]!r}"
                buf.append(text[pos:q])
                if text.startswith('""', q):
                    buf.append('"')
                    pos = q + 2
                    continue
                pos = q + 1
                break
            row.append("".join(buf))
            if pos >= n:
                break
            if text.startswith(delim, pos):
                pos += len(delim)
                continue
            assert text.startswith(eol, pos), (
                f"expected delimiter {delim!r} or line end {eol!r} at {pos}: {text[pos : pos + 20]!r}"
            )
            pos += len(eol)
            break
        rows.append(row)
    return rows


def get_results(
    c: httpx.Client,
    job_id: str,
    kind: str,
    sf_cols: list[str],
    upload_header: str,
    delim: str = ",",
    eol: str = "\n",
) -> Results:
    """GET a result CSV and check header, quoting, delimiter and line endings."""
    r = c.get(f"{BASE}/{job_id}/{kind}")
    assert r.status_code == 200, r.text
    assert r.headers.get("content-type", "").split(";")[0].strip().lower() == "text/csv"
    text = r.content.decode("utf-8")
    assert not text.startswith("\ufeff"), "results must not carry a BOM"
    expected_header = delim.join(f'"{c}"' for c in sf_cols)
    expected_header += (delim if sf_cols else "") + upload_header
    columns = sf_cols + upload_header.split(delim)
    if text == "":
        return Results(expected_header, columns, [])
    header, sep, rest = text.partition(eol)
    assert header == expected_header, (header, expected_header)
    if not sep:
        return Results(header, columns, [])
    return Results(header, columns, parse_quoted(rest, delim, eol))


def success(
    c: httpx.Client, job_id: str, header: str, delim: str = ",", eol: str = "\n"
) -> Results:
    return get_results(
        c, job_id, "successfulResults", ["sf__Id", "sf__Created"], header, delim, eol
    )


def failed(c: httpx.Client, job_id: str, header: str, delim: str = ",", eol: str = "\n") -> Results:
    return get_results(c, job_id, "failedResults", ["sf__Id", "sf__Error"], header, delim, eol)


def unprocessed(
    c: httpx.Client,
    job_id: str,
    header: str,
    delim: str = ",",
    eol: str = "\n",
    path: str = "unprocessedrecords",
) -> Results:
    return get_results(c, job_id, path, [], header, delim, eol)


def only_error(c: httpx.Client, job_id: str, header: str) -> str:
    """A one-row job that must fail that row: return its sf__Error."""
    rows = failed(c, job_id, header).dicts()
    assert len(rows) == 1, rows
    return rows[0]["sf__Error"]


# ---------------------------------------------------------------- database


def db_query(server: Server, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """Read the server's database (SQLite or PostgreSQL), rows keyed case-insensitively."""
    with server.db() as con:
        return [CIDict(zip(row.keys(), row, strict=True)) for row in con.execute(sql, params)]


def db_row(server: Server, table: str, record_id: str) -> dict[str, Any] | None:
    rows = db_query(server, f'SELECT * FROM "{table}" WHERE "Id" = ?', (record_id,))
    assert len(rows) <= 1, rows
    return rows[0] if rows else None


def db_one(server: Server, table: str, record_id: str) -> dict[str, Any]:
    row = db_row(server, table, record_id)
    assert row is not None, f"{record_id} not in {table}"
    return row


def db_is_live(server: Server, table: str, record_id: str) -> bool:
    """True when the record exists and is not deleted (absent or IsDeleted = deleted)."""
    row = db_row(server, table, record_id)
    if row is None:
        return False
    return not row.get("IsDeleted")


def as_utc(value: Any) -> datetime:
    """A stored datetime, whatever reasonable representation the store chose."""
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 10**11 else value
        return datetime.fromtimestamp(seconds, UTC)
    assert isinstance(value, str), value
    s = value.strip().replace(" ", "T")
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    s = re.sub(r"([+-]\d\d)(\d\d)$", r"\1:\2", s)
    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def chunks(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def dumps(obj: Any) -> bytes:
    return json.dumps(obj).encode()
