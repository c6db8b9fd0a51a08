#!/usr/bin/env python3
"""Small-job latency: what CI suites do to a server — many small Bulk 2.0 jobs at once.

Starts a real `bulkforce serve` (SQLite, or PostgreSQL with `--database`), then
- N one-record jobs one after another: create → upload → close → first GET showing JobComplete;
- a burst of `--jobs` jobs of `--rows` rows each, created and uploaded first, then all closed at
  once from as many threads: close → JobComplete per job, read from the job's own
  `systemModstamp` (the server's clock, millisecond text) so that polling does not load the
  server it measures.

Prints medians, p95 and max against the targets of issue 14 (1-record job ≤ 15 ms median,
≤ 40 ms max; burst p95 ≤ 250 ms on SQLite, ≤ 400 ms on PostgreSQL). A measurement, not a test.

    python -m bench.burst
    python -m bench.burst --database postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import csv
import io
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from bench.bulk2 import check, create_job, one_record_job, server_time
from bench.common import COLUMNS, DEFAULT_SCHEMA, TOKEN
from bench.data import contact_row
from bench.pg import PgDatabases, is_postgres
from bench.procs import BenchError, Server
from bench.report import say

TARGETS_MS = {"one_median": 15.0, "one_max": 40.0, "sqlite_p95": 250.0, "postgresql_p95": 400.0}


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def job_body(job: int, rows: int, tag: int) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for i in range(rows):
        w.writerow(contact_row(job * 100_003 + i * 7919, f"BURST-{tag}-{job:04d}-{i:05d}"))
    return buf.getvalue().encode()


def burst(client_for: httpx.Client, jobs: int, rows: int, timeout: float, tag: int) -> list[float]:
    """close → JobComplete milliseconds of each job of a burst closed all at once."""
    ids = []
    for j in range(jobs):
        job_id = create_job(client_for, "insert")
        r = client_for.put(
            f"/{job_id}/batches",
            content=job_body(j, rows, tag),
            headers={"Content-Type": "text/csv"},
        )
        check(r, 201, "burst upload")
        ids.append(job_id)
    closed: dict[str, float] = {}
    start = threading.Barrier(jobs)

    def close(job_id: str) -> None:
        with httpx.Client(
            base_url=str(client_for.base_url), headers=dict(client_for.headers), timeout=timeout
        ) as c:
            start.wait()
            t = time.time()
            check(c.patch(f"/{job_id}", json={"state": "UploadComplete"}), 200, "burst close")
            closed[job_id] = t

    threads = [threading.Thread(target=close, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    latencies: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while len(latencies) < jobs:
        if time.monotonic() > deadline:
            raise BenchError(f"burst: {jobs - len(latencies)} jobs not complete after {timeout}s")
        for job_id in ids:
            if job_id in latencies:
                continue
            info = client_for.get(f"/{job_id}").json()
            if info["state"] in ("Failed", "Aborted"):
                raise BenchError(f"burst job {job_id} ended {info['state']}: {info}")
            if info["state"] == "JobComplete":
                if info["numberRecordsProcessed"] != rows or info["numberRecordsFailed"]:
                    failed = c_text(client_for, f"/{job_id}/failedResults")[:500]
                    raise BenchError(f"burst job {job_id} did not load its rows: {info} {failed}")
                done = server_time(info["systemModstamp"])
                latencies[job_id] = max(0.0, (done - closed[job_id]) * 1000)
        time.sleep(0.05)
    return list(latencies.values())


def c_text(client: httpx.Client, path: str) -> str:
    return client.get(path).text


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--database", help="postgresql://… admin URL (a fresh database is made)")
    p.add_argument("--jobs", type=int, default=50)
    p.add_argument("--rows", type=int, default=100)
    p.add_argument("--one-record-jobs", type=int, default=30)
    p.add_argument("--rounds", type=int, default=3, help="bursts to run (each reported)")
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--server-arg", action="append", default=[], help="extra serve option")
    args = p.parse_args(argv)
    pg = is_postgres(args.database)
    dbs = PgDatabases(args.database) if pg else None
    backend = "postgresql" if pg else "sqlite"
    with tempfile.TemporaryDirectory(prefix="bulkforce-burst-") as tmp:
        work = Path(tmp)
        db_url = dbs.create()[1] if dbs is not None else None
        server = Server(work / "data", DEFAULT_SCHEMA, db_url, args.server_arg, work / "s.log")
        try:
            server.start(60)
            headers = {"Authorization": f"Bearer {TOKEN}"}
            with httpx.Client(
                base_url=server.ingest_url, headers=headers, timeout=args.timeout
            ) as c:
                header = (",".join(COLUMNS) + "\n").encode()
                one_record_job(c, header, 0)  # warm-up: first-use costs are not latency
                ones = [one_record_job(c, header, i + 1) for i in range(args.one_record_jobs)]
                rounds = [
                    burst(c, args.jobs, args.rows, args.timeout, i) for i in range(args.rounds)
                ]
        except BenchError as exc:
            say(f"ERROR: {exc}\n{server.log_tail()}")
            return 1
        finally:
            server.stop()
            if dbs is not None:
                dbs.drop_all()
    one = [o.completed for o in ones]
    seen = [o.seen for o in ones]
    one_med, one_max = statistics.median(one), max(one)
    print("=" * 100)
    print(
        f"{backend}: 1-record job create→JobComplete median {one_med:.1f} ms, max {one_max:.1f} ms"
        f" (targets ≤ {TARGETS_MS['one_median']:.0f} / ≤ {TARGETS_MS['one_max']:.0f});"
        f" seen by a GET: median {statistics.median(seen):.1f} ms, max {max(seen):.1f} ms"
    )
    target = TARGETS_MS[f"{backend}_p95"]
    for i, lat in enumerate(rounds, 1):
        print(
            f"{backend}: burst {i}: {args.jobs} jobs × {args.rows} rows, close→JobComplete "
            f"p50 {percentile(lat, 0.5):.0f} ms, p95 {percentile(lat, 0.95):.0f} ms, "
            f"max {max(lat):.0f} ms (target p95 ≤ {target:.0f})"
        )
    print("=" * 100)
    return 0


if __name__ == "__main__":
    sys.exit(main())
