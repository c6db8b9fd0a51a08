"""The Bulk API 2.0 ingest driver: create, upload, close, wait, download, scan and verify results."""

from __future__ import annotations

import csv
import datetime as dt
import io
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.common import EXT_ID, IO_BLOCK, OBJECT
from bench.data import CsvFile, contact_row
from bench.procs import BenchError
from bench.report import Report, mb, say


def check(response: httpx.Response, expected: int, what: str) -> None:
    if response.status_code != expected:
        body = response.read()[:1000].decode(errors="replace")
        raise BenchError(f"{what}: expected HTTP {expected}, got {response.status_code}: {body}")


def iter_body(csv_file: CsvFile, start: int, end: int) -> Iterator[bytes]:
    """The CSV header followed by bytes [start, end) of the file, read block by block."""
    with csv_file.path.open("rb") as f:
        yield f.read(csv_file.offsets[0])
        f.seek(start)
        remaining = end - start
        while remaining > 0:
            block = f.read(min(IO_BLOCK, remaining))
            if not block:
                raise BenchError(f"{csv_file.path} is shorter than expected")
            remaining -= len(block)
            yield block


def plan_parts(csv_file: CsvFile, max_bytes: int) -> list[tuple[int, int]]:
    """Byte ranges of data rows, one per upload; split at CHUNK_ROWS boundaries if needed."""
    offs = csv_file.offsets
    if max_bytes <= 0 or csv_file.size <= max_bytes:
        return [(offs[0], offs[-1])]
    parts: list[tuple[int, int]] = []
    start = offs[0]
    prev = offs[0]
    for off in offs[1:]:
        if off - start + offs[0] > max_bytes and prev > start:
            parts.append((start, prev))
            start = prev
        prev = off
    parts.append((start, offs[-1]))
    return parts


@dataclass
class JobRun:
    operation: str
    job_ids: list[str]
    seconds: float  # first create .. end of the last successfulResults download
    processed: int
    failed: int
    success_files: list[Path]
    failed_files: list[Path]


def create_job(client: httpx.Client, operation: str) -> str:
    body: dict[str, str] = {"object": OBJECT, "operation": operation, "contentType": "CSV"}
    if operation == "upsert":
        body["externalIdFieldName"] = EXT_ID
    r = client.post("", json=body)
    check(r, 200, f"create {operation} job")
    info: dict[str, Any] = r.json()
    if info.get("state") != "Open":
        raise BenchError(f"new job is {info.get('state')!r}, expected 'Open': {info}")
    return str(info["id"])


def wait_complete(client: httpx.Client, job_id: str, interval: float, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(f"/{job_id}")
        check(r, 200, f"get job {job_id}")
        info = r.json()
        state = info.get("state")
        if state == "JobComplete":
            return info
        if state in ("Failed", "Aborted"):
            raise BenchError(f"job {job_id} {state}: {info.get('errorMessage')!r}")
        if time.monotonic() > deadline:
            raise BenchError(f"job {job_id} still {state!r} after {timeout:.0f}s")
        if interval:
            time.sleep(interval)


def download(client: httpx.Client, url: str, dest: Path) -> None:
    with client.stream("GET", url) as r, dest.open("wb") as out:
        check(r, 200, f"GET {url}")
        for block in r.iter_bytes(IO_BLOCK):
            out.write(block)


def run_job(
    client: httpx.Client,
    operation: str,
    csv_file: CsvFile,
    parts: Sequence[tuple[int, int]],
    out_dir: Path,
    poll_interval: float,
    job_timeout: float,
) -> JobRun:
    """Create, upload, close, poll and download successfulResults, one job per part."""
    run = JobRun(operation, [], 0.0, 0, 0, [], [])
    t0 = time.perf_counter()
    for start, end in parts:
        job_id = create_job(client, operation)
        run.job_ids.append(job_id)
        length = csv_file.offsets[0] + end - start
        r = client.put(
            f"/{job_id}/batches",
            content=iter_body(csv_file, start, end),
            headers={"Content-Type": "text/csv", "Content-Length": str(length)},
        )
        check(r, 201, f"upload of {mb(length):.0f} MB to job {job_id}")
        r = client.patch(f"/{job_id}", json={"state": "UploadComplete"})
        check(r, 200, f"close job {job_id}")
        info = wait_complete(client, job_id, poll_interval, job_timeout)
        run.processed += int(info.get("numberRecordsProcessed", 0))
        run.failed += int(info.get("numberRecordsFailed", 0))
        dest = out_dir / f"{operation}-{job_id}-success.csv"
        download(client, f"/{job_id}/successfulResults", dest)
        run.success_files.append(dest)
    run.seconds = time.perf_counter() - t0
    for job_id in run.job_ids:  # not timed
        dest = out_dir / f"{operation}-{job_id}-failed.csv"
        download(client, f"/{job_id}/failedResults", dest)
        run.failed_files.append(dest)
    return run


@dataclass
class ResultScan:
    rows: int = 0
    created: int = 0
    headers_ok: bool = True
    bad_ids: int = 0
    errors: list[str] = field(default_factory=list)  # first few sf__Error values


def scan_results(paths: Sequence[Path], first_col: str, uploaded_header: list[str]) -> ResultScan:
    """Count data rows of result CSVs; check the header and (for successes) sf__Id/sf__Created."""
    scan = ResultScan()
    for path in paths:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:  # an empty body is acceptable for "no rows"
                continue
            if header != [first_col, header[1], *uploaded_header] or header[1] not in (
                "sf__Created",
                "sf__Error",
            ):
                scan.headers_ok = False
            for row in reader:
                if not row:
                    continue
                scan.rows += 1
                if header[1] == "sf__Created":
                    scan.created += row[1] == "true"
                    scan.bad_ids += len(row[0]) != 18 or not row[0].startswith("003")
                elif len(scan.errors) < 3:
                    scan.errors.append(row[1])
    return scan


@dataclass
class OneRecord:
    """One 1-record job, in milliseconds from just before its POST create: `completed` by the
    job's own `systemModstamp` at JobComplete (the server's clock, as bench.burst measures),
    `seen` by the first GET that showed JobComplete (that adds up to a poll interval and a GET,
    and the 1 ms polls load the server they measure)."""

    completed: float
    seen: float
    polls: int


def one_record_job(client: httpx.Client, header: bytes, index: int) -> OneRecord:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(contact_row(index * 7919, f"LAT-{index:06d}"))
    body = header + buf.getvalue().encode()
    wall0, t0 = time.time(), time.perf_counter()
    job_id = create_job(client, "insert")
    check(
        client.put(f"/{job_id}/batches", content=body, headers={"Content-Type": "text/csv"}),
        201,
        "one-record upload",
    )
    check(client.patch(f"/{job_id}", json={"state": "UploadComplete"}), 200, "one-record close")
    polls = 0
    while True:
        polls += 1
        r = client.get(f"/{job_id}")
        check(r, 200, "one-record poll")
        info = r.json()
        if info.get("state") == "JobComplete":
            break
        if info.get("state") in ("Failed", "Aborted"):
            raise BenchError(f"one-record job {job_id} {info.get('state')}: {info}")
        time.sleep(0.001)
    seen = (time.perf_counter() - t0) * 1000
    if info.get("numberRecordsFailed") != 0 or info.get("numberRecordsProcessed") != 1:
        raise BenchError(f"one-record job {job_id} did not insert its record: {info}")
    completed = (server_time(info["systemModstamp"]) - wall0) * 1000
    return OneRecord(max(0.0, completed), seen, polls)


def server_time(text: str) -> float:
    """A job's `systemModstamp` (`2026-12-06T12:00:00.123+0000`) as epoch seconds."""
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def verify_run(
    report: Report,
    run: JobRun,
    header: list[str],
    expected_rows: int,
    expected_created: int,
) -> None:
    ok = run.success_files
    scan = scan_results(ok, "sf__Id", header)
    failed = scan_results(run.failed_files, "sf__Id", header)
    say(
        f"{run.operation}: job info processed={run.processed} failed={run.failed}; "
        f"successfulResults {scan.rows} rows ({scan.created} created); "
        f"failedResults {failed.rows} rows"
    )
    if not scan.headers_ok or not failed.headers_ok:
        report.note(f"{run.operation}: result CSV header is not sf__ columns + uploaded header")
    if scan.bad_ids:
        report.note(f"{run.operation}: {scan.bad_ids} sf__Id values are not 18-char 003... ids")
    if scan.created != expected_created:
        report.note(
            f"{run.operation}: sf__Created true on {scan.created} rows, expected {expected_created}"
        )
    if run.processed != expected_rows or run.failed != failed.rows:
        report.note(
            f"{run.operation}: numberRecordsProcessed={run.processed}, "
            f"numberRecordsFailed={run.failed}, failedResults rows={failed.rows}"
        )
    if failed.rows:
        raise BenchError(
            f"{run.operation}: {failed.rows} records failed, e.g. {failed.errors}; "
            f"see {run.failed_files[0]}"
        )
    if scan.rows != expected_rows:
        raise BenchError(
            f"{run.operation}: successfulResults has {scan.rows} rows, expected {expected_rows}"
        )
