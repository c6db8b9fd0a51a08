"""The read-side drivers of `python -m bench.query`: Bulk 2.0 and Bulk 1.0 (PK-chunked) query
jobs read to files, the raw SELECT + csv.writer baseline, REST pages and the SystemModstamp
window."""

from __future__ import annotations

import csv
import http.client
import json
import sqlite3
import time
import urllib.parse
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.bulk2 import check, wait_complete
from bench.common import (
    API_VERSION,
    BULK1_NS,
    COLUMNS,
    OBJECT,
    TOKEN,
)
from bench.pg import pg_connect
from bench.procs import BenchError
from bench.raw_sqlite import qi

FIELDS = ("Id", *COLUMNS)
SOQL = f"SELECT {', '.join(FIELDS)} FROM {OBJECT}"


class Fetcher:
    """GETs on one kept-alive connection with the standard library's http.client: the server's
    pages are measured, not a client's parsing (httpx reads a 21 MB page in ~1.8 s here where
    http.client and curl take ~20 ms)."""

    def __init__(self, base_url: str) -> None:
        parts = urllib.parse.urlsplit(base_url)
        self.prefix = parts.path.rstrip("/")
        self.conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port)

    def get(self, path: str) -> http.client.HTTPResponse:
        self.conn.request("GET", self.prefix + path, headers={"Authorization": f"Bearer {TOKEN}"})
        resp = self.conn.getresponse()
        if resp.status != 200:
            raise BenchError(f"GET {path}: HTTP {resp.status}: {resp.read(300)!r}")
        return resp

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.close()


@dataclass
class Extract:
    seconds: float  # create .. last byte of the last page
    ready: float  # create .. JobComplete seen
    rows: int
    pages: int
    size: int


def bulk_query(client: httpx.Client, soql: str, dest: Path, poll: float, timeout: float) -> Extract:
    """Create a query job, wait, read every results page into `dest`."""
    t0 = time.perf_counter()
    r = client.post("", json={"operation": "query", "query": soql})
    check(r, 200, "create query job")
    job_id = r.json()["id"]
    info = wait_complete(client, f"{job_id}", poll, timeout)
    ready = time.perf_counter() - t0
    rows = pages = size = 0
    locator = ""
    with dest.open("wb") as out, Fetcher(str(client.base_url)) as fetch:
        while True:
            query = f"?locator={locator}" if locator else ""
            resp = fetch.get(f"/{job_id}/results{query}")
            while block := resp.read(1 << 20):
                out.write(block)
                size += len(block)
            rows += int(resp.getheader("Sforce-NumberOfRecords") or -1)
            locator = resp.getheader("Sforce-Locator") or ""
            pages += 1
            if locator == "null":
                break
    seconds = time.perf_counter() - t0
    if rows != int(info["numberRecordsProcessed"]):
        raise BenchError(f"read {rows} rows, the job says {info['numberRecordsProcessed']}")
    client.delete(f"/{job_id}")
    return Extract(seconds, ready, rows, pages, size)


# ---- Bulk 1.0 case (issue #11): a PK-chunked Bulk 1.0 query job, every chunk's results read ----

BULK1_CHUNK = 100_000


def _bulk1_batches(client: httpx.Client, job_id: str) -> list[dict[str, str]]:
    r = client.get(f"/{job_id}/batch")
    check(r, 200, "Bulk 1.0 batch list")
    root = ET.fromstring(r.content)
    return [{c.tag.rsplit("}", 1)[-1]: c.text or "" for c in b} for b in root]


def bulk1_query(
    client: httpx.Client, soql: str, chunk_size: int, dest: Path, poll: float, timeout: float
) -> tuple[float, int, int, int]:
    """A Bulk 1.0 CSV query job with `Sforce-Enable-PKChunking: chunkSize=N`, timed from job
    create to the last byte of the last chunk's results; each chunk's results are read as soon
    as it completes (as tap-salesforce and ForceCLI do): (seconds, rows, chunks, bytes)."""
    t0 = time.perf_counter()
    body = (f'<jobInfo xmlns="{BULK1_NS}"><operation>query</operation><object>{OBJECT}</object>'
            "<contentType>CSV</contentType></jobInfo>").encode()  # fmt: skip
    headers = {
        "Content-Type": "application/xml",
        "Sforce-Enable-PKChunking": f"chunkSize={chunk_size}",
    }
    r = client.post("", content=body, headers=headers)
    check(r, 201, "create Bulk 1.0 query job")
    job_id = ET.fromstring(r.content).findtext(f"{{{BULK1_NS}}}id") or ""
    r = client.post(f"/{job_id}/batch", content=soql.encode(), headers={"Content-Type": "text/csv"})
    check(r, 201, "add Bulk 1.0 query batch")
    original = ET.fromstring(r.content).findtext(f"{{{BULK1_NS}}}id") or ""
    done: set[str] = set()
    rows = size = 0
    deadline = time.monotonic() + timeout
    with dest.open("wb") as out, Fetcher(str(client.base_url)) as fetch:
        while True:
            batches = _bulk1_batches(client, job_id)
            states = {b["id"]: b["state"] for b in batches}
            if states.get(original) == "Failed":
                raise BenchError(f"Bulk 1.0 original batch failed: {batches[0]}")
            for b in batches:
                if b["id"] in done or b["id"] == original:
                    continue
                if b["state"] == "Failed":
                    raise BenchError(f"Bulk 1.0 chunk failed: {b}")
                if b["state"] != "Completed":
                    continue
                r = client.get(f"/{job_id}/batch/{b['id']}/result")
                check(r, 200, "Bulk 1.0 result list")
                for rid in ET.fromstring(r.content):
                    resp = fetch.get(f"/{job_id}/batch/{b['id']}/result/{rid.text}")
                    while block := resp.read(1 << 20):
                        out.write(block)
                        size += len(block)
                rows += int(b["numberRecordsProcessed"])
                done.add(b["id"])
            if states.get(original) == "NotProcessed" and len(done) == len(batches) - 1:
                break
            if time.monotonic() > deadline:
                raise BenchError(f"Bulk 1.0 query did not finish: {batches}")
            time.sleep(poll)
    return time.perf_counter() - t0, rows, len(done), size


def raw_extract(server_db: Path | None, db_url: str | None, dest: Path) -> float:
    """The baseline: the same columns straight from the database, csv.writer QUOTE_ALL;
    returns its seconds."""
    t0 = time.perf_counter()
    with dest.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, quoting=csv.QUOTE_ALL, lineterminator="\n")
        w.writerow(FIELDS)
        if db_url is not None:
            cols = ", ".join(c.lower() for c in FIELDS)
            with pg_connect(db_url, autocommit=False) as conn, conn.cursor(name="raw") as cur:
                cur.itersize = 2000
                cur.execute(f"SELECT {cols} FROM {OBJECT.lower()}")
                for batch in iter(lambda: cur.fetchmany(2000), []):
                    w.writerows(batch)
        else:
            assert server_db is not None
            con = sqlite3.connect(f"file:{server_db}?mode=ro", uri=True)
            try:
                rows = con.execute(f"SELECT {', '.join(map(qi, FIELDS))} FROM {qi(OBJECT)}")
                for batch in iter(lambda: rows.fetchmany(2000), []):
                    w.writerows(batch)
            finally:
                con.close()
    return time.perf_counter() - t0


def rest_pages(base_url: str, rows: int, samples: int) -> tuple[list[float], list[float]]:
    """Milliseconds of `samples` first pages of the query and of the pages reached through
    nextRecordsUrl after them: request to last byte, parsed afterwards."""
    first_ms: list[float] = []
    next_ms: list[float] = []
    first = f"/services/data/v{API_VERSION}/query?" + urllib.parse.urlencode({"q": SOQL})
    next_url = None
    with Fetcher(base_url) as fetch:
        for k in range(2 * samples):
            url = first if k < samples else next_url
            if url is None:
                break
            t0 = time.perf_counter()
            body = fetch.get(url).read()
            ms = (time.perf_counter() - t0) * 1000
            (first_ms if k < samples else next_ms).append(ms)
            page = json.loads(body)
            # page n (0-based) of the query holds rows 2000n..; the first pages are page 0
            n = 0 if k < samples else k - samples + 1
            if len(page["records"]) != max(0, min(2000, rows - 2000 * n)):
                raise BenchError(f"REST page {n} of {len(page['records'])} records")
            next_url = page.get("nextRecordsUrl")
    return first_ms, next_ms


def modstamp_window(server_db: Path | None, db_url: str | None, rows: int) -> tuple[str, str, int]:
    """[lo, hi) on SystemModstamp holding about 1% of the rows (untimed; from the database)."""
    if db_url is not None:
        with pg_connect(db_url) as conn:
            stamps = conn.execute(
                "SELECT systemmodstamp, count(*) FROM contact GROUP BY 1 ORDER BY 1"
            ).fetchall()
        pairs = [(s.strftime("%Y-%m-%dT%H:%M:%S.") + f"{s.microsecond // 1000:03d}Z", n)
                 for s, n in stamps]  # fmt: skip
    else:
        assert server_db is not None
        with sqlite3.connect(f"file:{server_db}?mode=ro", uri=True) as con:
            pairs = con.execute(
                'SELECT "SystemModstamp", count(*) FROM "Contact" GROUP BY 1 ORDER BY 1'
            ).fetchall()
    want = max(rows // 100, 1)
    mid = len(pairs) // 2
    got = 0
    end = mid
    while end < len(pairs) and got < want:
        got += pairs[end][1]
        end += 1
    hi = pairs[end][0] if end < len(pairs) else "9999-12-31T00:00:00.000Z"
    return pairs[mid][0], hi, got
