#!/usr/bin/env python3
"""Query benchmark: reading N Contacts back through bulkforce against a raw baseline.

Loads N Contact-like rows with a Bulk 2.0 insert job through a real `bulkforce serve`, then:

1. extract: a Bulk 2.0 query job of every row (the loaded columns plus Id), timed from create
   to the last byte of the last results page (default pages, streamed to a file), against the
   raw baseline in the same run: a SELECT of the same columns straight from the server's
   database + csv.writer(quoting=QUOTE_ALL) to a file. Target: server/raw rate >= 0.5.
2. REST: 2,000-record pages of `SELECT Id, <columns> FROM Contact` (first pages, and pages
   reached through nextRecordsUrl locators); median ms. Target <= 50 ms.
3. incremental: a Bulk 2.0 query of a `SystemModstamp >= … AND SystemModstamp < …` window
   holding ~1% of the rows, timed the same way as the extract. Target >= 20x faster.
4. Bulk 1.0: a CSV query job with PK chunking (`chunkSize=100000`) of the same SOQL, timed
   from job create to the last byte of the last chunk's results (each chunk read as soon as it
   completes), against the same raw baseline. Target: its rate within 20% of the Bulk 2.0
   extract's (ratio >= 0.8).
5. peak server RSS throughout (target <= 300 MB).

    python -m bench.query                       # 1M rows on SQLite
    python -m bench.query --rows 100000 --keep
    python -m bench.query --database postgresql://postgres@127.0.0.1:5432/test

It is a measurement, not a test: it exits 0 whatever the numbers are, and non-zero only when
the run could not be measured. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from bench.bulk2 import plan_parts, run_job
from bench.common import (
    API_VERSION,
    BULK1_JOB,
    DEFAULT_SCHEMA,
    TOKEN,
)
from bench.data import insert_numbers, write_contacts
from bench.pg import PgDatabases, is_postgres
from bench.procs import BenchError, Server, make_work_dir, remove_work_dir, run_guarded
from bench.query_drivers import (
    BULK1_CHUNK,
    SOQL,
    bulk1_query,
    bulk_query,
    modstamp_window,
    raw_extract,
    rest_pages,
)
from bench.raw_sqlite import sqlite_path
from bench.report import mb, rate, say

TARGETS = {
    "extract_ratio": 0.5,
    "bulk1_vs_bulk2": 0.8,
    "rest_page_ms": 50.0,
    "window_speedup": 20.0,
    "rss_mb": 300.0,
}


@dataclass
class QueryReport:
    backend: str = "sqlite"
    rows: int = 0
    load_seconds: float = 0.0
    extract_seconds: float = 0.0
    extract_ready_seconds: float = 0.0
    extract_pages: int = 0
    extract_bytes: int = 0
    raw_seconds: float = 0.0
    bulk1_seconds: float = 0.0
    bulk1_chunks: int = 0
    bulk1_bytes: int = 0
    raw_bytes: int = 0
    rest_first_ms: list[float] = field(default_factory=list)
    rest_next_ms: list[float] = field(default_factory=list)
    window_rows: int = 0
    window_seconds: float = 0.0
    peak_rss: int = 0
    phase_rss: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        if not self.extract_seconds or not self.raw_seconds:
            return 0.0
        return rate(self.rows, self.extract_seconds) / rate(self.rows, self.raw_seconds)

    @property
    def bulk1_ratio(self) -> float:
        """Bulk 1.0 (PK-chunked) rows/s over the raw baseline's."""
        if not self.bulk1_seconds or not self.raw_seconds:
            return 0.0
        return self.raw_seconds / self.bulk1_seconds

    @property
    def bulk1_vs_bulk2(self) -> float:
        """Bulk 1.0 rows/s over Bulk 2.0's: 1.0 is as fast, 0.8 is 20% slower."""
        if not self.bulk1_seconds or not self.extract_seconds:
            return 0.0
        return self.extract_seconds / self.bulk1_seconds

    @property
    def speedup(self) -> float:
        return self.extract_seconds / self.window_seconds if self.window_seconds else 0.0

    def note(self, msg: str) -> None:
        self.notes.append(msg)
        say(f"NOTE: {msg}")


def run_bench(
    args: argparse.Namespace, work: Path, report: QueryReport, dbs: PgDatabases | None
) -> None:
    n: int = args.rows
    say(f"generating {n} Contact rows")
    data = write_contacts(work / "contacts.csv", insert_numbers(n, args.seed, False), args.seed)
    db_url: str | None = None
    database = args.database
    if dbs is not None:
        _, db_url = dbs.create()
        database = db_url
        report.backend = "postgresql"
    server = Server(work / "data", args.schema, database, args.server_arg, work / "server.log")
    server_db = None if db_url else sqlite_path(database, work / "data")
    timeout = httpx.Timeout(connect=10, read=args.http_timeout, write=args.http_timeout, pool=10)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    server.start(args.startup_timeout)
    sampler = server.sampler
    assert sampler is not None
    try:
        with httpx.Client(base_url=server.ingest_url, headers=headers, timeout=timeout) as ingest:
            sampler.set_phase("load")
            say(f"loading {n} rows ({mb(data.size):.0f} MB) through a Bulk 2.0 insert")
            run = run_job(ingest, "insert", data, plan_parts(data, 100 << 20), work, 0.05, 7200)
            if run.processed != n or run.failed:
                raise BenchError(f"load: {run.processed} processed, {run.failed} failed")
            report.load_seconds = run.seconds
            report.rows = n
            say(f"loaded in {run.seconds:.1f}s ({rate(n, run.seconds):,.0f} rec/s)")
        if dbs is not None:
            dbs.settle(db_url, report)  # type: ignore[arg-type]  # only .note() is used
        qbase = f"{server.url}/services/data/v{API_VERSION}/jobs/query"
        with httpx.Client(base_url=qbase, headers=headers, timeout=timeout) as q:
            sampler.set_phase("extract")
            say("Bulk 2.0 query of every row")
            ex = bulk_query(q, SOQL, work / "extract.csv", args.poll_interval, 7200)
            if ex.rows != n:
                raise BenchError(f"extract returned {ex.rows} rows, expected {n}")
            secs = report.extract_seconds = ex.seconds
            report.extract_ready_seconds = ex.ready
            report.extract_pages, report.extract_bytes = ex.pages, ex.size
            say(
                f"extract: {secs:.2f}s ({ex.ready:.2f}s to JobComplete), {rate(n, secs):,.0f} "
                f"rows/s, {ex.pages} pages, {mb(ex.size):.0f} MB"
            )
            sampler.set_phase("raw")
            report.raw_seconds = raw_extract(server_db, db_url, work / "raw.csv")
            report.raw_bytes = (work / "raw.csv").stat().st_size
            say(f"raw: {report.raw_seconds:.2f}s, {rate(n, report.raw_seconds):,.0f} rows/s, "
                f"{mb(report.raw_bytes):.0f} MB; ratio {report.ratio:.2f}")  # fmt: skip
        with httpx.Client(base_url=f"{server.url}{BULK1_JOB}", headers={"X-SFDC-Session": TOKEN},
                          timeout=timeout) as b1:  # fmt: skip
            sampler.set_phase("bulk1")
            say(f"Bulk 1.0 query of every row, PK chunking chunkSize={BULK1_CHUNK}")
            secs, rows, chunks, size = bulk1_query(
                b1, SOQL, BULK1_CHUNK, work / "bulk1.csv", args.poll_interval, 7200
            )
            if rows != n:
                raise BenchError(f"Bulk 1.0 extract returned {rows} rows, expected {n}")
            report.bulk1_seconds, report.bulk1_chunks, report.bulk1_bytes = secs, chunks, size
            say(f"Bulk 1.0: {secs:.2f}s, {rate(n, secs):,.0f} rows/s, {chunks} chunks; "
                f"{report.bulk1_vs_bulk2:.2f}x Bulk 2.0's rate")  # fmt: skip
        with httpx.Client(base_url=qbase, headers=headers, timeout=timeout) as q:
            lo, hi, expect = modstamp_window(server_db, db_url, n)
            sampler.set_phase("window")
            soql = f"{SOQL} WHERE SystemModstamp >= {lo} AND SystemModstamp < {hi}"
            win = bulk_query(q, soql, work / "window.csv", args.poll_interval, 600)
            if win.rows != expect:
                raise BenchError(f"window returned {win.rows} rows, expected {expect}")
            report.window_rows, report.window_seconds = win.rows, win.seconds
            say(
                f"window of {win.rows} rows: {win.seconds * 1000:.0f} ms, "
                f"{report.speedup:.0f}x the extract"
            )
        sampler.set_phase("rest")
        report.rest_first_ms, report.rest_next_ms = rest_pages(server.url, n, args.rest_samples)
        first = statistics.median(report.rest_first_ms)
        nxt = statistics.median(report.rest_next_ms or [0])
        say(f"REST 2,000-record pages: first median {first:.1f} ms, next median {nxt:.1f} ms")
    finally:
        how = server.stop()
        report.peak_rss = sampler.peak
        report.phase_rss = dict(sampler.phase_peaks)
        say(f"server {how}; log: {server.log_path}")


def summary(r: QueryReport) -> str:
    first = statistics.median(r.rest_first_ms) if r.rest_first_ms else 0.0
    nxt = statistics.median(r.rest_next_ms) if r.rest_next_ms else 0.0
    rss = mb(r.peak_rss * 1.0) if r.peak_rss else 0.0

    def ok(good: bool) -> str:
        return "ok" if good else "BELOW TARGET"

    lines = [
        f"== bulkforce query bench ({r.backend}, {r.rows:,} Contacts) ==",
        f"load (Bulk 2.0 insert)   {r.load_seconds:8.2f} s  {rate(r.rows, r.load_seconds):>10,.0f} rec/s",
        f"extract (Bulk 2.0 query) {r.extract_seconds:8.2f} s  {rate(r.rows, r.extract_seconds):>10,.0f} rows/s"
        f"  ({r.extract_pages} pages, {mb(r.extract_bytes):.0f} MB; JobComplete after "
        f"{r.extract_ready_seconds:.2f} s)",
        f"raw SELECT + csv.writer  {r.raw_seconds:8.2f} s  {rate(r.rows, r.raw_seconds):>10,.0f} rows/s"
        f"  ({mb(r.raw_bytes):.0f} MB)",
        f"extract / raw            {r.ratio:8.2f}    target >= {TARGETS['extract_ratio']}  "
        f"{ok(r.ratio >= TARGETS['extract_ratio'])}",
        f"extract (Bulk 1.0 PK)    {r.bulk1_seconds:8.2f} s  {rate(r.rows, r.bulk1_seconds):>10,.0f} rows/s"
        f"  ({r.bulk1_chunks} chunks of {BULK1_CHUNK:,}, {mb(r.bulk1_bytes):.0f} MB)",
        f"Bulk 1.0 / raw           {r.bulk1_ratio:8.2f}    "
        f"Bulk 1.0 / Bulk 2.0 rate {r.bulk1_vs_bulk2:.2f}  target >= {TARGETS['bulk1_vs_bulk2']}  "
        f"{ok(r.bulk1_vs_bulk2 >= TARGETS['bulk1_vs_bulk2'])}",
        f"REST 2,000-record page   {first:8.1f} ms first page median, {nxt:.1f} ms next page median"
        f"  target <= {TARGETS['rest_page_ms']:.0f}  {ok(max(first, nxt) <= TARGETS['rest_page_ms'])}",
        f"1% SystemModstamp window {r.window_seconds * 1000:8.0f} ms ({r.window_rows:,} rows), "
        f"{r.speedup:.0f}x faster  target >= {TARGETS['window_speedup']:.0f}x  "
        f"{ok(r.speedup >= TARGETS['window_speedup'])}",
        f"peak server RSS          {rss:8.0f} MB  target <= {TARGETS['rss_mb']:.0f}  "
        f"{ok(rss <= TARGETS['rss_mb'])}   by phase: "
        + ", ".join(f"{k} {mb(v):.0f}" for k, v in r.phase_rss.items()),
    ]  # fmt: skip
    lines += [f"note: {x}" for x in r.notes]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Query benchmark: bulkforce reads vs. a raw SELECT.")
    p.add_argument("--rows", type=int, default=1_000_000, help="Contacts loaded (default 1M)")
    p.add_argument(
        "--database",
        help="sqlite:///FILE: passed to the server; postgresql://.../ADMIN_DB: the bench creates "
        "(and drops) its own bench_<random> database through ADMIN_DB (default: SQLite)",
    )
    p.add_argument("--schema", type=Path, default=DEFAULT_SCHEMA, help="server --schema file")
    p.add_argument("--server-arg", action="append", default=[], help="extra server argument")
    p.add_argument("--rest-samples", type=int, default=20, help="REST pages timed (default 20)")
    p.add_argument(
        "--poll-interval",
        type=float,
        default=0.1,
        help="query job poll interval, s (default 0.1: on SQLite the API shares the worker's "
        "process, so faster polling takes time from the job being measured)",
    )
    p.add_argument("--http-timeout", type=float, default=1800, help="HTTP read/write timeout, s")
    p.add_argument("--startup-timeout", type=float, default=60, help="server readiness wait, s")
    p.add_argument("--seed", type=int, default=20240501, help="data generator seed")
    p.add_argument("--work-dir", type=Path, help="parent of the temp dir (default: system tmp)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (CSV, DB, log)")
    p.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    args = p.parse_args(argv)
    if args.rows < 200:
        p.error("--rows must be >= 200")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    work = make_work_dir(args.work_dir, "bulkforce-qbench-")
    report = QueryReport()
    dbs = PgDatabases(args.database) if is_postgres(args.database) else None
    status = 0
    try:
        status = run_guarded(work, partial(run_bench, args, work, report, dbs))
    finally:
        if dbs is not None and dbs.created and not args.keep:
            dbs.drop_all()
    print(summary(report), flush=True)
    if args.json:
        data: dict[str, Any] = asdict(report)
        data.update(
            ratio=report.ratio,
            speedup=report.speedup,
            bulk1_ratio=report.bulk1_ratio,
            bulk1_vs_bulk2=report.bulk1_vs_bulk2,
            status=status,
        )
        args.json.write_text(json.dumps(data, indent=2))
    remove_work_dir(work, args.keep)
    return status


if __name__ == "__main__":
    sys.exit(main())
