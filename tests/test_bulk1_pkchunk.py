"""Bulk 1.0 PK chunking over raw HTTP, on SQLite and PostgreSQL.

Spec: /work/shared/spec/bulk-api.md §2.9, §2.10, B1-43; query.md §5.1, B1-51.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from itertools import pairwise

import httpx
import pytest
from bulk1_helpers import (
    JOB,
    NS,
    assert_error,
    b1_client,
    fmt_of_job,
    get_job,
    list_batches,
    num,
    post_job,
    wait_batch,
)
from bulk1query_helpers import query_job, records, result_ids, run_query, submit
from bulk2_helpers import run_job
from conftest import Server, unique
from query_helpers import csv_text, delete, load

from bulkforce.engine import ids

RANGE = re.compile(r"(\w+) >= '(\w{15})' AND \1 < '(\w{15})'$")


@pytest.fixture
def b1(server: Server) -> Iterator[httpx.Client]:
    with b1_client(server) as c:
        yield c


def wait_chunks(c: httpx.Client, job_id: str, fmt: str, timeout: float = 120) -> list[dict]:
    """Every batch of the job once none is Queued or InProgress (how tap-salesforce polls)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        batches = list_batches(c, job_id, fmt)  # type: ignore[arg-type]
        if all(b["state"] not in ("Queued", "InProgress") for b in batches) and len(batches) > 1:
            return batches
        assert time.monotonic() < deadline, batches
        time.sleep(0.05)


def chunked(
    c: httpx.Client, obj: str, soql: str, header: str, job_type: str = "XML",
    operation: str = "query",
) -> tuple[str, dict, list[dict]]:  # fmt: skip
    """Run a PK-chunked query: (job id, the original batch, its chunk batches, in order)."""
    fmt = fmt_of_job(job_type)
    job_id = query_job(c, obj, job_type, operation, **{"Sforce-Enable-PKChunking": header})["id"]
    original = submit(c, job_id, soql, job_type)
    batches = wait_chunks(c, job_id, fmt)
    assert batches[0]["id"] == original["id"], batches  # the original is listed first
    return job_id, batches[0], batches[1:]


def check_chunks(c: httpx.Client, job_id: str, soql: str, chunks: list[dict], size: int) -> None:
    """Each chunk's request is the original SOQL plus an Id range; ranges step by `size` in
    Id number space and follow one another."""
    bounds = []
    for b in chunks:
        assert b["state"] == "Completed", b
        text = c.get(f"{JOB}/{job_id}/batch/{b['id']}/request").text
        assert text.startswith(soql), text  # salesforce-bulk's live test
        m = RANGE.search(text)
        assert m, text
        lo, hi = ids.number(m[2]), ids.number(m[3])
        assert hi - lo == size, text
        bounds.append((lo, hi))
    assert all(a[1] == b[0] for a, b in pairwise(bounds)), bounds


def union(c: httpx.Client, job_id: str, chunks: list[dict], job_type: str = "XML") -> list[str]:
    return [r["Id"] for b in chunks for r in records(c, job_id, b["id"], job_type)]


def widgets(http: httpx.Client, tag: str, n: int, account: str = "") -> list[str]:
    return load(http, "Widget__c", ["Name", "Code__c", "Account__c"],
                [[f"pk{i}", tag, account] for i in range(n)])  # fmt: skip


# ---- B1-43 / B1-51: the header variants, the original batch, the chunks ------------------------


@pytest.mark.parametrize(
    ("header", "size"),
    [
        ("true", 100_000),
        ("TRUE", 100_000),
        ("true; chunkSize=100000", 100_000),
        ("chunkSize=250000", 250_000),
        ("chunkSize=2; startRow={start}", 2),
        ("chunkSize=2;startRow={start};", 2),
        ("true; chunkSize=3; startRow={start18}", 3),
    ],
)
@pytest.mark.parametrize("job_type", ["XML", "JSON", "CSV"])
def test_b1_43_b1_51_header_variants_original_not_processed_chunks_cover_all_rows(
    b1: httpx.Client, http: httpx.Client, header: str, size: int, job_type: str
) -> None:
    tag = unique("pk")[-20:]
    mine = widgets(http, tag, 5)
    soql = f"SELECT Id, Name FROM Widget__c WHERE Code__c = '{tag}'"
    value = header.format(start=mine[0][:15], start18=mine[0])
    job_id, original, chunks = chunked(b1, "Widget__c", soql, value, job_type)
    fmt = fmt_of_job(job_type)
    # the original: NotProcessed, nothing processed, an empty result list (Gobblin reads it)
    assert original["state"] == "NotProcessed" and num(original, "numberRecordsProcessed") == 0
    assert original.get("stateMessage"), original
    assert result_ids(b1, job_id, original["id"], job_type) == []
    check_chunks(b1, job_id, soql, chunks, size)
    got = union(b1, job_id, chunks, job_type)
    assert sorted(got) == sorted(mine) and len(set(got)) == len(got)
    if "startRow" in value:
        assert len(chunks) == 3 if size == 2 else 2  # from my first row: 5 rows in Id order
    # the job counters of the guide's example: the original is not among the batches counted
    info = get_job(b1, job_id, fmt)
    assert num(info, "numberBatchesTotal") == len(chunks) == num(info, "numberBatchesCompleted")
    assert num(info, "numberRecordsProcessed") == 5 and num(info, "numberBatchesQueued") == 0


def test_chunks_are_appended_to_an_existing_where_with_or(
    b1: httpx.Client, http: httpx.Client
) -> None:
    """A top-level OR keeps its meaning: the original condition is parenthesised."""
    tag = unique("pko")[-20:]
    mine = widgets(http, tag, 4)
    soql = f"SELECT Id FROM Widget__c WHERE Code__c = '{tag}' OR Name = 'pk-none-{tag}'"
    job_id, original, chunks = chunked(b1, "Widget__c", soql, f"chunkSize=2; startRow={mine[0]}")
    assert original["state"] == "NotProcessed"
    for b in chunks:
        text = b1.get(f"{JOB}/{job_id}/batch/{b['id']}/request").text
        assert f"WHERE (Code__c = '{tag}' OR Name = 'pk-none-{tag}') AND Id >= '" in text, text
    assert sorted(union(b1, job_id, chunks)) == sorted(mine)


def test_parent_option_chunks_by_the_parents_ids(b1: httpx.Client, http: httpx.Client) -> None:
    ext = unique("pkp")
    a1, a2 = load(
        http, "Account", ["Name", "External_Id__c"], [[f"P {ext}", ext], [f"Q {ext}", ext + "q"]]
    )
    tag = unique("pkp")[-20:]
    mine = widgets(http, tag, 2, a1) + widgets(http, tag, 2, a2)
    soql = f"SELECT Id FROM Widget__c WHERE Code__c = '{tag}'"
    job_id, original, chunks = chunked(
        b1, "Widget__c", soql, f"chunkSize=1; parent=Account; startRow={a1}"
    )
    assert original["state"] == "NotProcessed", original
    texts = [b1.get(f"{JOB}/{job_id}/batch/{b['id']}/request").text for b in chunks]
    assert all("AND Account__c >= '" in t for t in texts), texts
    assert texts[0].endswith(
        f"Account__c >= '{a1[:15]}' AND Account__c < '{ids.from_number(ids.number(a1) + 1)}'"
    )
    assert sorted(union(b1, job_id, chunks)) == sorted(mine)


# ---- what PK chunking refuses ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "needle"),
    [
        ("chunkSize=250001", "chunkSize 250001 is not a whole number from 1 to 250000"),
        ("chunkSize=0", "chunkSize 0 is not a whole number from 1 to 250000"),
        ("chunkSize=lots", "chunkSize lots"),
        ("startRow=xyz", "startRow xyz is not a valid 15- or 18-character Id"),
        ("sometimes", "unknown option 'sometimes'"),
    ],
)
def test_bad_headers_refuse_the_job(b1: httpx.Client, header: str, needle: str) -> None:
    body = (f'<jobInfo xmlns="{NS}"><operation>query</operation><object>Account</object>'
            "<contentType>CSV</contentType></jobInfo>")  # fmt: skip
    r = post_job(b1, body, **{"Sforce-Enable-PKChunking": header})
    assert_error(r, 400, "InvalidJob")
    assert needle in r.text, r.text


def test_header_is_ignored_on_ingest_jobs_and_false_disables(
    b1: httpx.Client, http: httpx.Client
) -> None:
    tag = unique("pkf")[-20:]
    widgets(http, tag, 2)
    job_id, done = run_query(b1, "Widget__c", f"SELECT Id FROM Widget__c WHERE Code__c = '{tag}'",
                             "XML", **{"Sforce-Enable-PKChunking": "false"})  # fmt: skip
    assert done["state"] == "Completed" and num(done, "numberRecordsProcessed") == 2
    assert len(list_batches(b1, job_id)) == 1
    # an ingest job ignores the header, even a value a query job would refuse
    body = (f'<jobInfo xmlns="{NS}"><operation>insert</operation><object>Widget__c</object>'
            "<contentType>CSV</contentType></jobInfo>")  # fmt: skip
    r = post_job(b1, body, **{"Sforce-Enable-PKChunking": "chunkSize=999999"})
    assert r.status_code == 201, r.text


def _original_fails(b1: httpx.Client, obj: str, soql: str, header: str = "true") -> str:
    job_id = query_job(b1, obj, "XML", **{"Sforce-Enable-PKChunking": header})["id"]
    batch = submit(b1, job_id, soql, "XML")
    done = wait_batch(b1, job_id, batch["id"])
    assert done["state"] == "Failed", done
    assert len(list_batches(b1, job_id)) == 1  # no chunks
    return str(done["stateMessage"])


def test_unsupported_object_fails_the_original(b1: httpx.Client) -> None:
    message = _original_fails(b1, "Product2", "SELECT Id FROM Product2")
    assert message.startswith("InvalidBatch : PK chunking is not supported for Product2"), message


@pytest.mark.parametrize("clause", ["ORDER BY Name", "LIMIT 10"])
def test_order_by_and_limit_fail_the_original(b1: httpx.Client, clause: str) -> None:
    message = _original_fails(b1, "Account", f"SELECT Id FROM Account {clause}")
    assert message.startswith(
        "InvalidBatch : Failed to process query: MALFORMED_QUERY: PK chunking"
    ), message


def test_bad_soql_fails_the_original(b1: httpx.Client) -> None:
    message = _original_fails(b1, "Account", "SELECT Nope__c FROM Account")
    assert message.startswith("InvalidBatch : Failed to process query: INVALID_FIELD:"), message


def test_unknown_parent_fails_the_original(b1: httpx.Client) -> None:
    message = _original_fails(b1, "Widget__c", "SELECT Id FROM Widget__c", "parent=Contact")
    assert message == "InvalidBatch : PK chunking parent Contact is not a parent of Widget__c"


# ---- 25,000 rows with gaps: every row exactly once ---------------------------------------------


def test_25000_rows_with_id_gaps_chunk_size_1000(b1: httpx.Client, http: httpx.Client) -> None:
    tag = unique("pkbig")[-20:]
    mine = widgets(http, tag, 25_000)
    soft = mine[5::23]  # soft-deleted: counted in the ranges, returned by queryAll only
    gone = mine[11::17]  # hard-deleted: gaps in the Id space
    gone = [i for i in gone if i not in set(soft)]
    delete(http, "Widget__c", soft)
    info = run_job(http, "Widget__c", "hardDelete", csv_text(["Id"], [[i] for i in gone]))
    assert info["state"] == "JobComplete" and info["numberRecordsFailed"] == 0, info
    soql = f"SELECT Id, Name FROM Widget__c WHERE Code__c = '{tag}'"
    header = f"chunkSize=1000; startRow={mine[0]}"
    for operation in ("query", "queryAll"):
        job_id, done = run_query(b1, "Widget__c", soql, "CSV", operation)
        plain = [r["Id"] for r in records(b1, job_id, done["id"], "CSV")]
        job_id, original, chunks = chunked(b1, "Widget__c", soql, header, "CSV", operation)
        assert original["state"] == "NotProcessed"
        check_chunks(b1, job_id, soql, chunks, 1000)
        got = union(b1, job_id, chunks, "CSV")
        dupes = [i for i, n in Counter(got).items() if n > 1]
        assert not dupes, dupes[:5]
        assert set(got) == set(plain), operation
        expected = set(mine) - set(gone) - (set(soft) if operation == "query" else set())
        assert set(got) == expected, operation
        assert len(chunks) == 25  # 25,000 consecutive Ids from my first: 25 ranges of 1000
        counts = [num(b, "numberRecordsProcessed") for b in chunks]
        assert sum(counts) == len(expected) and max(counts) <= 1000
