"""The Bulk API 1.0 ingest driver and its verification against the server database."""

from __future__ import annotations

import csv
import io
import random
import sqlite3
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.bulk2 import check
from bench.common import (
    BULK1_BATCH_ROWS,
    BULK1_BATCHES,
    BULK1_JOB,
    BULK1_NS,
    BULK1_RESULT_HEADER,
    EXT_ID,
    OBJECT,
)
from bench.data import ext_id
from bench.pg import pg_count, pg_misplaced_ids, pg_server_table
from bench.procs import BenchError
from bench.raw_sqlite import qi
from bench.report import Report, say


def bulk1_numbers(count: int, first: int, seed: int, ordered: bool) -> list[int]:
    """External-id numbers first .. first+count-1, shuffled like the 2.0 insert unless ordered."""
    numbers = list(range(first, first + count))
    if not ordered:
        random.Random(seed).shuffle(numbers)
    return numbers


def xml_root(response: httpx.Response, tag: str, what: str) -> ET.Element:
    """The parsed XML body; its root must be `tag` in the async API namespace."""
    try:
        root = ET.fromstring(response.content)
    except ET.ParseError as exc:
        raise BenchError(f"{what}: response is not XML ({exc}): {response.text[:300]}") from None
    if root.tag != f"{{{BULK1_NS}}}{tag}":
        raise BenchError(f"{what}: expected <{tag}> in {BULK1_NS}, got {root.tag}")
    return root


def xml_text(elem: ET.Element, tag: str) -> str:
    return elem.findtext(f"{{{BULK1_NS}}}{tag}") or ""


def xml_int(elem: ET.Element, tag: str) -> int:
    text = xml_text(elem, tag)
    return int(text) if text.isdigit() else -1


def bulk1_job_body(**fields: str) -> bytes:
    inner = "".join(f"<{k}>{v}</{k}>" for k, v in fields.items())
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<jobInfo xmlns="{BULK1_NS}">{inner}</jobInfo>'
    ).encode()


@dataclass
class Bulk1Run:
    mode: str
    job_id: str = ""
    seconds: float = 0.0  # POST job .. end of the last batch result download
    upload_seconds: float = 0.0  # POST job .. job closed
    batch_ids: list[str] = field(default_factory=list)
    batch_counts: list[tuple[int, int]] = field(default_factory=list)  # (processed, failed)
    results: list[bytes] = field(default_factory=list)
    polls: int = 0


def run_bulk1_job(
    client: httpx.Client,
    mode: str,
    bodies: Sequence[bytes],
    poll_interval: float,
    job_timeout: float,
) -> Bulk1Run:
    """Create a CSV insert job, post the batches, close it, poll the batch list until every
    batch is Completed or Failed, then download every batch's result into memory."""
    run = Bulk1Run(mode)
    xml = {"Content-Type": "application/xml"}
    t0 = time.perf_counter()
    r = client.post(
        BULK1_JOB,
        content=bulk1_job_body(
            operation="insert", object=OBJECT, concurrencyMode=mode, contentType="CSV"
        ),
        headers=xml,
    )
    check(r, 201, f"create Bulk 1.0 {mode} job")
    info = xml_root(r, "jobInfo", "create Bulk 1.0 job")
    run.job_id = job_id = xml_text(info, "id")
    if xml_text(info, "state") != "Open" or xml_text(info, "concurrencyMode") != mode:
        raise BenchError(f"new Bulk 1.0 job: {r.text[:500]}")
    for k, data in enumerate(bodies):
        r = client.post(
            f"{BULK1_JOB}/{job_id}/batch", content=data, headers={"Content-Type": "text/csv"}
        )
        check(r, 201, f"batch {k + 1} of Bulk 1.0 job {job_id}")
        run.batch_ids.append(xml_text(xml_root(r, "batchInfo", "add batch"), "id"))
    r = client.post(f"{BULK1_JOB}/{job_id}", content=bulk1_job_body(state="Closed"), headers=xml)
    check(r, 200, f"close Bulk 1.0 job {job_id}")
    if xml_text(xml_root(r, "jobInfo", "close job"), "state") != "Closed":
        raise BenchError(f"closed Bulk 1.0 job {job_id} is not Closed: {r.text[:500]}")
    run.upload_seconds = time.perf_counter() - t0
    deadline = time.monotonic() + job_timeout
    while True:
        run.polls += 1
        r = client.get(f"{BULK1_JOB}/{job_id}/batch")
        check(r, 200, f"list batches of Bulk 1.0 job {job_id}")
        infos = xml_root(r, "batchInfoList", "list batches").findall(f"{{{BULK1_NS}}}batchInfo")
        states = {xml_text(b, "id"): xml_text(b, "state") for b in infos}
        if sorted(states) != sorted(run.batch_ids):
            raise BenchError(f"batch list of job {job_id} does not match the posted batches")
        if all(s in ("Completed", "Failed") for s in states.values()):
            break
        if "NotProcessed" in states.values():
            raise BenchError(f"Bulk 1.0 job {job_id} has NotProcessed batches: {states}")
        if time.monotonic() > deadline:
            raise BenchError(f"Bulk 1.0 job {job_id} not done after {job_timeout:.0f}s: {states}")
        if poll_interval:
            time.sleep(poll_interval)
    failed = {xml_text(b, "id"): xml_text(b, "stateMessage") for b in infos}
    failed = {b: msg for b, msg in failed.items() if states[b] == "Failed"}
    if failed:
        raise BenchError(f"Bulk 1.0 job {job_id}: {len(failed)} batch(es) Failed: {failed}")
    by_id = {xml_text(b, "id"): b for b in infos}
    for batch_id in run.batch_ids:
        r = client.get(f"{BULK1_JOB}/{job_id}/batch/{batch_id}/result")
        check(r, 200, f"result of batch {batch_id}")
        if r.headers.get("content-type", "").split(";")[0].strip() != "text/csv":
            raise BenchError(f"batch {batch_id} result is {r.headers.get('content-type')!r}")
        run.results.append(r.content)
        b = by_id[batch_id]
        run.batch_counts.append(
            (xml_int(b, "numberRecordsProcessed"), xml_int(b, "numberRecordsFailed"))
        )
    run.seconds = time.perf_counter() - t0
    return run


@dataclass(frozen=True)
class ServerTable:
    """Where the bench reads the server's Contact table: its SQLite file or its PostgreSQL
    database (then the table is `contact`, found through the search path)."""

    sqlite: Path | None = None
    pg_url: str | None = None

    def count(self) -> int:
        if self.pg_url is not None:
            return pg_count(self.pg_url, pg_server_table(self.pg_url))
        assert self.sqlite is not None
        return count_rows(self.sqlite)

    def misplaced(self, pairs: Sequence[tuple[str, str]]) -> int:
        if self.pg_url is not None:
            return pg_misplaced_ids(self.pg_url, pairs)
        assert self.sqlite is not None
        return misplaced_ids(self.sqlite, pairs)


def count_rows(server_db: Path) -> int:
    con = sqlite3.connect(f"file:{server_db}?mode=ro", uri=True)
    try:
        (rows,) = con.execute(f"SELECT count(*) FROM {qi(OBJECT)}").fetchone()
    finally:
        con.close()
    return int(rows)


def misplaced_ids(server_db: Path, pairs: Sequence[tuple[str, str]]) -> int:
    """How many (Id, External_Id__c) pairs have no server row with that Id and that value."""
    con = sqlite3.connect(f"file:{server_db}?mode=ro", uri=True)
    try:
        con.execute("CREATE TEMP TABLE expect (id TEXT, ext TEXT)")
        con.executemany("INSERT INTO temp.expect VALUES (?, ?)", pairs)
        (missing,) = con.execute(
            f"SELECT count(*) FROM temp.expect e WHERE NOT EXISTS (SELECT 1 FROM "
            f"main.{qi(OBJECT)} c WHERE c.Id = e.id AND c.{qi(EXT_ID)} = e.ext)"
        ).fetchone()
    finally:
        con.close()
    return int(missing)


def verify_bulk1(
    report: Report,
    client: httpx.Client,
    run: Bulk1Run,
    numbers: Sequence[int],
    table: ServerTable | None,
    rows_before: int | None,
) -> None:
    """Check every batch result (not timed), the job counters and the server's Contact table."""
    what = f"bulk1 {run.mode.lower()}"
    expected = BULK1_BATCHES * BULK1_BATCH_ROWS
    rows = created = bad_ids = 0
    errors: list[str] = []
    pairs: list[tuple[str, str]] = []
    for k, (batch_id, data) in enumerate(zip(run.batch_ids, run.results, strict=True)):
        first_line = data.split(b"\n", 1)[0].rstrip(b"\r")
        if first_line != BULK1_RESULT_HEADER:
            report.note(f"{what}: batch {batch_id} result header is {first_line[:80]!r}")
        reader = csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
        next(reader, None)
        batch_rows = [row for row in reader if row]
        if len(batch_rows) != BULK1_BATCH_ROWS:
            raise BenchError(
                f"{what}: batch {batch_id} result has {len(batch_rows)} rows, "
                f"expected {BULK1_BATCH_ROWS}"
            )
        for j, row in enumerate(batch_rows):
            if len(row) != 4 or row[1] != "true":
                if len(errors) < 3:
                    errors.append(",".join(row))
                continue
            rows += 1
            created += row[2] == "true"
            bad_ids += len(row[0]) != 18 or not row[0].startswith("003")
            pairs.append((row[0], ext_id(numbers[k * BULK1_BATCH_ROWS + j])))
        processed, failed = run.batch_counts[k]
        if processed != BULK1_BATCH_ROWS or failed != 0:
            report.note(
                f"{what}: batch {batch_id} numberRecordsProcessed={processed}, "
                f"numberRecordsFailed={failed}"
            )
    if rows != expected:
        raise BenchError(
            f"{what}: {expected - rows} result rows are not Success true, e.g. {errors}"
        )
    if created != expected:
        report.note(f"{what}: Created true on {created} of {expected} result rows")
    if bad_ids:
        report.note(f"{what}: {bad_ids} result Ids are not 18-char 003... ids")
    if len({rid for rid, _ in pairs}) != len(pairs):
        report.note(f"{what}: the result Ids are not all distinct")
    r = client.get(f"{BULK1_JOB}/{run.job_id}")
    check(r, 200, f"get Bulk 1.0 job {run.job_id}")
    info = xml_root(r, "jobInfo", "get job")
    counters = {
        "state": xml_text(info, "state"),
        "numberBatchesCompleted": xml_int(info, "numberBatchesCompleted"),
        "numberBatchesTotal": xml_int(info, "numberBatchesTotal"),
        "numberRecordsProcessed": xml_int(info, "numberRecordsProcessed"),
        "numberRecordsFailed": xml_int(info, "numberRecordsFailed"),
    }
    wanted = {
        "state": "Closed",
        "numberBatchesCompleted": BULK1_BATCHES,
        "numberBatchesTotal": BULK1_BATCHES,
        "numberRecordsProcessed": expected,
        "numberRecordsFailed": 0,
    }
    if counters != wanted:
        report.note(f"{what}: job info {counters}, expected {wanted}")
    if table is None or rows_before is None:
        say(f"{what}: {rows} result rows ({created} created); server table not checked")
        return
    rows_after = table.count()
    misplaced = table.misplaced(pairs)
    say(
        f"{what}: {rows} result rows ({created} created); server {OBJECT} table "
        f"{rows_before} -> {rows_after} rows; {misplaced} result Ids not on their input row"
    )
    if misplaced:
        report.note(
            f"{what}: {misplaced} result Ids do not name the record of the input row "
            "at the same position"
        )
    if rows_after - rows_before != expected:
        raise BenchError(
            f"{what}: server {OBJECT} table grew by {rows_after - rows_before} rows, "
            f"expected {expected}"
        )
