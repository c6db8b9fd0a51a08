"""Crash safety: SIGKILL mid-job, restart, and every record is applied exactly once."""

from __future__ import annotations

import csv
import io
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from conftest import API, Server, wait_for_job

N = 100_000


def contact_csv(n: int, tag: str) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["FirstName", "LastName", "Email", "MailingStreet", "External_Id__c"])
    for i in range(n):
        w.writerow(
            [
                f"Zoë{i}",
                f"Test {i}",
                f"p{i}@example.com",
                f"{i} Main St,\nUnit {i % 7}",
                f"{tag}-{i}",
            ]
        )
    return buf.getvalue().encode()


def test_sigkill_while_in_progress_then_restart_completes_exactly_once(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    schema = Path(__file__).parent / "data" / "test_schema.json"
    # commit every batch so the kill lands between committed and uncommitted batches
    srv = make_server("--schema", str(schema), "--commit-seconds", "0")
    base = f"/services/data/v{API}/jobs/ingest"
    with srv.client() as c:
        job = c.post(base, json={"object": "Contact", "operation": "insert"}).json()
        assert c.put(f"{base}/{job['id']}/batches", content=contact_csv(N, "RST"),
                     headers={"Content-Type": "text/csv"}).status_code == 201  # fmt: skip
        c.patch(f"{base}/{job['id']}", json={"state": "UploadComplete"})
        deadline = time.monotonic() + 60
        while True:
            info = c.get(f"{base}/{job['id']}").json()
            if info["state"] == "InProgress" and info["numberRecordsProcessed"] > 0:
                break
            assert info["state"] in ("UploadComplete", "InProgress"), info
            assert time.monotonic() < deadline
            time.sleep(0.002)
    srv.kill()
    done_before = info["numberRecordsProcessed"]
    assert 0 < done_before < N, "the kill must land while the job is in progress"

    srv2 = make_server("--schema", str(schema), data_dir=srv.data_dir)
    with srv2.client() as c:
        final = wait_for_job(c, job["id"], timeout=120)
        assert final["state"] == "JobComplete"
        assert final["numberRecordsProcessed"] == N and final["numberRecordsFailed"] == 0
        assert final["retries"] >= 1
        ok = c.get(f"{base}/{job['id']}/successfulResults").text.splitlines()
        failed = c.get(f"{base}/{job['id']}/failedResults").text.splitlines()
    rows = list(csv.reader(io.StringIO("\n".join(ok))))
    # header + N records; embedded newlines make line counts differ from row counts
    assert len(rows) == N + 1
    assert len(failed) <= 1
    result_ids = [r[0] for r in rows[1:]]
    assert len(set(result_ids)) == N
    with sqlite3.connect(f"file:{srv.db_path}?mode=ro", uri=True) as db:
        count, distinct = db.execute(
            "SELECT count(*), count(DISTINCT External_Id__c) FROM Contact WHERE External_Id__c LIKE 'RST-%'"
        ).fetchone()
        stored = {
            r[0] for r in db.execute("SELECT Id FROM Contact WHERE External_Id__c LIKE 'RST-%'")
        }
    assert count == N and distinct == N
    assert stored == set(result_ids)


NS = "http://www.force.com/2009/06/asyncapi/dataload"


def test_sigkill_during_bulk1_batches_then_restart_completes_exactly_once(
    make_server: Callable[..., Server],
) -> None:
    """Bulk 1.0: a batch in flight at the kill is redone after restart; none is applied twice."""
    import xml.etree.ElementTree as ET

    schema = Path(__file__).parent / "data" / "test_schema.json"
    srv = make_server("--schema", str(schema))
    base = f"/services/async/{API}/job"
    headers = {"X-SFDC-Session": srv.token}
    batches, per_batch = 6, 10_000
    with httpx.Client(base_url=srv.url, headers=headers, timeout=60) as c:
        body = (f'<jobInfo xmlns="{NS}"><operation>insert</operation><object>Contact</object>'
                "<contentType>CSV</contentType><concurrencyMode>Serial</concurrencyMode></jobInfo>")  # fmt: skip
        r = c.post(base, content=body, headers={"Content-Type": "application/xml"})
        assert r.status_code == 201, r.text
        job_id = ET.fromstring(r.content).findtext(f"{{{NS}}}id")
        for b in range(batches):
            data = contact_csv(per_batch, f"B1K{b}")
            r = c.post(f"{base}/{job_id}/batch", content=data, headers={"Content-Type": "text/csv"})
            assert r.status_code == 201, r.text
        deadline = time.monotonic() + 60
        while True:
            states = [
                e.text
                for e in ET.fromstring(c.get(f"{base}/{job_id}/batch").content).iter(
                    f"{{{NS}}}state"
                )
            ]
            if 0 < states.count("Completed") < batches:
                break
            assert time.monotonic() < deadline, states
            time.sleep(0.002)
    srv.kill()
    srv2 = make_server("--schema", str(schema), data_dir=srv.data_dir)
    with httpx.Client(base_url=srv2.url, headers=headers, timeout=60) as c:
        deadline = time.monotonic() + 120
        while True:
            infos = ET.fromstring(c.get(f"{base}/{job_id}/batch").content)
            states = [e.text for e in infos.iter(f"{{{NS}}}state")]
            if all(s == "Completed" for s in states):
                break
            assert time.monotonic() < deadline, states
            time.sleep(0.05)
        processed = [int(e.text or 0) for e in infos.iter(f"{{{NS}}}numberRecordsProcessed")]
        assert processed == [per_batch] * batches
        ids: list[str] = []
        for b in infos.iter(f"{{{NS}}}id"):
            text = c.get(f"{base}/{job_id}/batch/{b.text}/result").text
            rows = list(csv.reader(io.StringIO(text)))
            assert rows[0] == ["Id", "Success", "Created", "Error"] and len(rows) == per_batch + 1
            assert all(r[1] == "true" and r[2] == "true" for r in rows[1:])
            ids.extend(r[0] for r in rows[1:])
    with sqlite3.connect(f"file:{srv.db_path}?mode=ro", uri=True) as db:
        count, distinct = db.execute(
            "SELECT count(*), count(DISTINCT External_Id__c) FROM Contact WHERE External_Id__c LIKE 'B1K%'"
        ).fetchone()
        stored = {
            r[0] for r in db.execute("SELECT Id FROM Contact WHERE External_Id__c LIKE 'B1K%'")
        }
    assert count == distinct == batches * per_batch
    assert stored == set(ids) and len(ids) == batches * per_batch
