"""Bulk API 1.0 query jobs through unchanged clients over real HTTP, on SQLite and PostgreSQL:
salesforce-bulk 2.2.0 (with and without PK chunking), simple-salesforce 1.12.10
`sf.bulk.X.query` / `query_all` (JSON jobs, lazy and eager) and jsforce 3 `conn.bulk.query`.

Spec: /work/shared/spec/bulk-api.md §2.8, §2.10, §2.14; query.md §1.1, §5.1.
"""

from __future__ import annotations

import csv
import io
import json
import time
from typing import Any

import pytest
import simple_salesforce.bulk
from conftest import API, NodeScript, Server, unique
from query_helpers import delete, load
from salesforce_bulk import SalesforceBulk
from salesforce_bulk.salesforce_bulk import BulkBatchFailed
from simple_salesforce import Salesforce

POLL = 0.05


@pytest.fixture
def bulk(server: Server) -> SalesforceBulk:
    return SalesforceBulk(sessionId=server.token, host=server.url, API_version=API)


@pytest.fixture
def seeded(server: Server) -> tuple[str, list[str]]:
    """Three Contacts under one Account, tagged by a unique LastName prefix: (tag, Ids)."""
    with server.client() as http:
        ext = unique("qc")
        acct = load(http, "Account", ["Name", "External_Id__c"], [[f"Acme {ext}", ext]])[0]
        tag = unique("qc")
        ids = load(http, "Contact", ["LastName", "Email", "AccountId"],
                   [[f"{tag}{i}", f"c{i}@example.com", acct] for i in range(3)])  # fmt: skip
    return tag, ids


def wait_done(bulk: SalesforceBulk, job: str, batch: str) -> None:
    deadline = time.monotonic() + 60
    while not bulk.is_batch_done(batch, job):
        assert time.monotonic() < deadline
        time.sleep(POLL)


# ---- salesforce-bulk ----------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["CSV", "JSON", "XML"])
def test_salesforce_bulk_query_job(
    bulk: SalesforceBulk, seeded: tuple[str, list[str]], content_type: str
) -> None:
    tag, ids = seeded
    job = bulk.create_query_job("Contact", contentType=content_type)
    soql = f"Select Id,LastName,Email from Contact where LastName like '{tag}%'"
    batch = bulk.query(job, soql)
    bulk.close_job(job)
    wait_done(bulk, job, batch)
    got: list[dict[str, Any]] = []
    for result in bulk.get_all_results_for_query_batch(batch, job):
        data = result.read()
        if content_type == "CSV":
            got.extend(csv.DictReader(io.StringIO(data.decode("utf-8"))))
        elif content_type == "JSON":
            got.extend(json.loads(data))
        else:
            assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?><queryResult'), data[:80]
            got.extend({"Id": i} for i in ids if i.encode() in data)
    assert sorted(r["Id"] for r in got) == sorted(ids)
    if content_type == "CSV":  # the live test's key check: the SOQL's names, canonical case
        assert sorted(got[0]) == ["Email", "Id", "LastName"]
    assert bulk.get_query_batch_request(batch, job) == soql


@pytest.mark.parametrize("pk_chunking", [True, 2, "chunkSize=2; startRow={start}"])
def test_salesforce_bulk_pk_chunking(
    bulk: SalesforceBulk, seeded: tuple[str, list[str]], pk_chunking: Any
) -> None:
    """The library's live-org PK test: the original raises BulkBatchFailed(NotProcessed); every
    other batch's request starts with the SOQL; their results hold every row once."""
    tag, ids = seeded
    if isinstance(pk_chunking, str):
        pk_chunking = pk_chunking.format(start=ids[0])
    job = bulk.create_query_job("Contact", contentType="CSV", pk_chunking=pk_chunking)
    soql = f"Select Id,LastName from Contact where LastName like '{tag}%'"
    batch = bulk.query(job, soql)
    deadline = time.monotonic() + 60
    with pytest.raises(BulkBatchFailed) as failed:
        while not bulk.is_batch_done(batch, job):
            assert time.monotonic() < deadline
            time.sleep(POLL)
    assert failed.value.state == "NotProcessed"
    while True:
        batches = bulk.get_batch_list(job)
        if all(b["state"] not in ("Queued", "InProgress") for b in batches):
            break
        assert time.monotonic() < deadline
        time.sleep(POLL)
    bulk.close_job(job)
    chunks = [b for b in batches if b["state"] != "NotProcessed"]
    assert chunks and all(b["state"] == "Completed" for b in chunks), batches
    got = []
    for b in chunks:
        assert bulk.get_query_batch_request(b["id"], job).startswith(soql)
        for result in bulk.get_all_results_for_query_batch(b["id"], job):
            text = result.read().decode("utf-8")
            if text != "Records not found for this query":
                got.extend(r["Id"] for r in csv.DictReader(io.StringIO(text)))
    assert sorted(got) == sorted(ids)


# ---- simple-salesforce --------------------------------------------------------------------------


@pytest.fixture
def sf(server: Server, monkeypatch: pytest.MonkeyPatch) -> Salesforce:
    real_sleep = time.sleep
    monkeypatch.setattr(simple_salesforce.bulk, "sleep", lambda s: real_sleep(min(s, POLL)))
    sf = Salesforce(instance_url=server.url, session_id=server.token, version=API)
    sf.bulk_url = f"{server.url}/services/async/{API}/"
    return sf


@pytest.mark.parametrize("lazy", [False, True])
def test_simple_salesforce_query_and_query_all(
    sf: Salesforce, server: Server, seeded: tuple[str, list[str]], lazy: bool
) -> None:
    tag, ids = seeded
    with server.client() as http:
        delete(http, "Contact", ids[:1])
    soql = (
        f"SELECT Id, LastName, CreatedDate, Account.Name FROM Contact WHERE LastName LIKE '{tag}%'"
    )
    results = {}
    for name in ("query", "query_all"):
        got = getattr(sf.bulk.Contact, name)(soql, lazy_operation=lazy)
        if lazy:  # one list of records per result id
            got = [rec for part in got for rec in part]
        results[name] = got
    assert sorted(r["Id"] for r in results["query"]) == sorted(ids[1:])
    assert sorted(r["Id"] for r in results["query_all"]) == sorted(ids)
    rec = results["query"][0]
    assert rec["attributes"]["type"] == "Contact"
    assert rec["attributes"]["url"] == f"/services/data/v{API}/sobjects/Contact/{rec['Id']}"
    assert isinstance(rec["CreatedDate"], int)  # epoch milliseconds (dlt divides by 1000)
    assert rec["Account"]["Name"].startswith("Acme ")


def test_simple_salesforce_failed_query_raises_with_state_message(sf: Salesforce) -> None:
    with pytest.raises(Exception) as e:
        sf.bulk.Contact.query("SELECT Id, Nope__c FROM Contact")
    assert "InvalidBatch : Failed to process query: INVALID_FIELD" in str(e.value)


# ---- jsforce ------------------------------------------------------------------------------------


class JS(NodeScript):
    script = "bulk1.mjs"


def test_jsforce_bulk_query(node: str, server: Server, seeded: tuple[str, list[str]]) -> None:
    tag, ids = seeded
    soql = f"SELECT Id, LastName, Account.Name FROM Contact WHERE LastName LIKE '{tag}%'"
    out = JS(node, server).run("query", {"soql": soql})
    recs = out["records"]
    assert sorted(r["Id"] for r in recs) == sorted(ids)
    assert {r["LastName"] for r in recs} == {f"{tag}{i}" for i in range(3)}
    assert all(r["Account.Name"].startswith("Acme ") for r in recs)
