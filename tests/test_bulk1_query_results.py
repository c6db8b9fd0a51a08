"""Bulk 1.0 query results beyond the basics: results over the size limit split into several
result ids (each a whole document), and a batch whose worker died re-run with its results
replaced, never duplicated. Private servers, SQLite and PostgreSQL.

Spec: /work/shared/spec/bulk-api.md §2.8 (result sets over 1 GB, retries), §2.13.
"""

from __future__ import annotations

import sqlite3
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from bulk1_helpers import JOB, NS, b1_client, get_job, list_batches, num, wait_batch
from bulk1query_helpers import (
    csv_rows,
    fetch,
    json_records,
    records,
    result_ids,
    run_query,
    submit,
    xml_records,
)
from conftest import Server, unique
from query_helpers import load

SCHEMA = str(Path(__file__).parent / "data" / "test_schema.json")


def widgets(srv: Server, tag: str, n: int) -> list[str]:
    with srv.client() as http:
        return load(http, "Widget__c", ["Name", "Code__c", "Notes__c"],
                    [[f"w{i:05d}", tag, "n" * 60] for i in range(n)])  # fmt: skip


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
@pytest.mark.parametrize("job_type", ["CSV", "XML", "JSON"])
def test_large_results_split_into_several_result_ids(
    make_server: Callable[..., Server], backend: str, job_type: str
) -> None:
    """With a 50 KB limit (Salesforce: 1 GB) 3,500 rows of ~100 bytes need several files;
    each is a whole document in the job's format and together they hold every row once."""
    srv = make_server("--schema", SCHEMA, "--query-result-mb", "0.05", backend=backend)
    tag = unique("big")[-20:]
    mine = widgets(srv, tag, 3500)
    with b1_client(srv) as c:
        soql = f"SELECT Id, Name, Notes__c FROM Widget__c WHERE Code__c = '{tag}'"
        job_id, done = run_query(c, "Widget__c", soql, job_type)
        assert done["state"] == "Completed" and num(done, "numberRecordsProcessed") == 3500
        rids = result_ids(c, job_id, done["id"], job_type)
        assert len(rids) >= 3 and len(set(rids)) == len(rids), rids
        got: list[str] = []
        for rid in rids:
            r = fetch(c, job_id, done["id"], rid)
            assert len(r.content) < 300_000  # the limit plus at most one block of 1,000 rows
            if job_type == "CSV":
                header, rows = csv_rows(r)
                assert header == ["Id", "Name", "Notes__c"]
                got.extend(row[0] for row in rows)
            elif job_type == "XML":
                got.extend(rec["Id"] for rec in xml_records(r))
            else:
                got.extend(rec["Id"] for rec in json_records(r))
    assert Counter(got) == Counter(mine)


def _pretend_worker_died(srv: Server, batch_id: str) -> None:
    """What a SIGKILLed worker leaves behind: its batch InProgress under a lease nobody renews
    (here after it had written a result, so the rerun must replace it)."""
    sql = ("UPDATE bf_batch SET state = 'InProgress', lease_owner = 'dead-worker', "
           "lease_expires = 0, records_processed = 0 WHERE id = {p}")  # fmt: skip
    if srv.pg_url:
        import psycopg

        with psycopg.connect(srv.pg_url, autocommit=True) as conn:
            conn.execute(sql.format(p="%s"), (batch_id,))
    else:
        with sqlite3.connect(srv.db_path) as conn:
            conn.execute(sql.format(p="?"), (batch_id,))


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_batch_of_a_dead_worker_is_rerun_and_its_results_replaced(
    make_server: Callable[..., Server], backend: str
) -> None:
    srv = make_server("--schema", SCHEMA, backend=backend)
    tag = unique("rr")[-20:]
    mine = widgets(srv, tag, 1500)
    soql = f"SELECT Id FROM Widget__c WHERE Code__c = '{tag}'"
    with b1_client(srv) as c:
        job_id, done = run_query(c, "Widget__c", soql, "XML",
                                 **{"Sforce-Disable-Batch-Retry": "TRUE"})  # fmt: skip
        assert done["state"] == "Completed"
        (old,) = result_ids(c, job_id, done["id"], "XML")
    srv.kill()
    _pretend_worker_died(srv, done["id"])
    srv2 = make_server("--schema", SCHEMA, data_dir=srv.data_dir, pg_url=srv.pg_url)
    with b1_client(srv2) as c:
        again = wait_batch(c, job_id, done["id"], timeout=60)
        assert again["state"] == "Completed" and num(again, "numberRecordsProcessed") == 1500
        rids = result_ids(c, job_id, done["id"], "XML")
        assert len(rids) == 1 and rids != [old]  # replaced, not added to
        got = [r["Id"] for r in records(c, job_id, done["id"], "XML")]
        assert Counter(got) == Counter(mine)
        r = c.get(f"{JOB}/{job_id}/batch/{done['id']}/result/{old}")
        assert r.status_code == 400  # the dead run's result is gone
        assert num(get_job(c, job_id), "numberRetries") == 1


def test_sigkill_during_chunked_query_then_restart_every_row_once(
    make_server: Callable[..., Server],
) -> None:
    """A real kill: a Serial PK-chunked job is killed while its chunks run; after restart every
    chunk completes and the chunks' results hold every row exactly once."""
    srv = make_server("--schema", SCHEMA)
    tag = unique("kill")[-20:]
    mine = widgets(srv, tag, 30_000)
    soql = f"SELECT Id, Name, Notes__c FROM Widget__c WHERE Code__c = '{tag}'"
    with b1_client(srv) as c:
        body = (f'<jobInfo xmlns="{NS}"><operation>query</operation><object>Widget__c</object>'
                "<concurrencyMode>Serial</concurrencyMode><contentType>XML</contentType></jobInfo>")  # fmt: skip
        header = {"Sforce-Enable-PKChunking": f"chunkSize=2500; startRow={mine[0]}"}
        r = c.post(JOB, content=body, headers={"Content-Type": "application/xml", **header})
        assert r.status_code == 201, r.text
        job_id = ET.fromstring(r.content).findtext(f"{{{NS}}}id")
        assert job_id
        submit(c, job_id, soql, "XML")
        deadline = time.monotonic() + 60
        while True:
            states = [b["state"] for b in list_batches(c, job_id)]
            if 1 <= states.count("Completed") < 12:
                break
            assert time.monotonic() < deadline, states
            time.sleep(0.002)
    srv.kill()
    srv2 = make_server("--schema", SCHEMA, data_dir=srv.data_dir)
    with b1_client(srv2) as c:
        deadline = time.monotonic() + 120
        while True:
            batches = list_batches(c, job_id)
            if all(b["state"] in ("Completed", "NotProcessed") for b in batches):
                break
            assert time.monotonic() < deadline, batches
            time.sleep(0.05)
        got = [r["Id"] for b in batches[1:] for r in records(c, job_id, b["id"], "XML")]
    assert len(batches) == 13  # the original and 12 chunks of 2,500
    assert Counter(got) == Counter(mine)
