"""Bulk API 2.0 query jobs over real HTTP on SQLite and PostgreSQL (bulk-api.md §4 and
checklist Q2-01..17, query.md §1.2 and §2.4)."""

from __future__ import annotations

import base64
import gzip
import subprocess
import sys
import time
from collections.abc import Callable

import httpx
import pytest
from bulk2_helpers import assert_error, assert_id18
from conftest import API, Server, unique
from query_helpers import (
    QBASE,
    bulk_query,
    create_query,
    delete,
    load,
    read_all,
    read_page,
    wait_query,
)

DT_CSV = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"


def contacts(c: httpx.Client, n: int, tag: str) -> list[str]:
    return load(c, "Contact", ["LastName", "Department"], [[f"n{i:05d}", tag] for i in range(n)])


def test_create_get_and_complete(http: httpx.Client) -> None:
    """Q2-01, Q2-02: create answers the short JobInfo in JSON even to `Accept: text/csv`; the
    job runs asynchronously to JobComplete and GET shows the query job's fields."""
    tag = unique("q201")
    contacts(http, 3, tag)
    r = http.post(
        QBASE, json={"operation": "query", "query": f"select id from contact where department = '{tag}'"},
        headers={"Accept": "text/csv"},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    info = r.json()
    assert_id18(info["id"], "750")
    assert info["state"] == "UploadComplete" and info["object"] == "Contact"
    assert info["operation"] == "query" and info["apiVersion"] == float(API)
    assert info["contentType"] == "CSV" and info["lineEnding"] == "LF"
    assert info["columnDelimiter"] == "COMMA" and info["concurrencyMode"] == "Parallel"
    assert "contentUrl" not in info and "jobType" not in info
    done = wait_query(http, info["id"])
    assert done["state"] == "JobComplete"
    assert done["jobType"] == "V2Query" and done["numberRecordsProcessed"] == 3
    assert done["retries"] == 0 and isinstance(done["totalProcessingTime"], int)
    assert isinstance(done["isPkChunkingSupported"], bool)


def test_pages_locators_and_counts(http: httpx.Client) -> None:
    """Q2-03..07, Q2-16, Q2-17: a header on every page, every value quoted,
    Sforce-NumberOfRecords on every page, Sforce-Locator `null` on the last, maxRecords pages
    with no repeats or gaps, locators that can be fetched again, rows = numberRecordsProcessed."""
    tag = unique("q203")
    ids = contacts(http, 2505, tag)
    info = create_query(http, f"SELECT Id, LastName FROM Contact WHERE Department = '{tag}'")
    done = wait_query(http, info["id"])
    header, rows, pages = read_all(http, info["id"], max_records=1000)
    assert header == ["Id", "LastName"]
    assert [len(p.rows) for p in pages] == [1000, 1000, 505]
    assert [r[0] for r in rows] == sorted(ids)
    assert done["numberRecordsProcessed"] == len(rows) == 2505
    assert pages[-1].response.headers["Sforce-Locator"] == "null"
    loc = pages[0].response.headers["Sforce-Locator"]
    assert base64.urlsafe_b64decode(loc + "=" * (-len(loc) % 4)) == b"1000"
    again = read_page(http, info["id"], loc, 1000)
    assert again.response.content == pages[1].response.content
    # a page may start anywhere; the default page holds everything here
    odd = read_page(http, info["id"], pages[0].response.headers["Sforce-Locator"], 7)
    assert odd.rows == rows[1000:1007]
    whole = read_page(http, info["id"])
    assert whole.rows == rows and whole.response.headers["Sforce-Locator"] == "null"


def test_query_all_includes_deleted(http: httpx.Client) -> None:
    """Q2-08."""
    tag = unique("q208")
    ids = contacts(http, 6, tag)
    delete(http, "Contact", ids[:2])
    soql = f"SELECT Id, IsDeleted FROM Contact WHERE Department = '{tag}'"
    _, _, rows = bulk_query(http, soql)
    assert sorted(r[0] for r in rows) == sorted(ids[2:])
    done, _, rows = bulk_query(http, soql, "queryAll")
    assert done["operation"] == "queryAll"
    assert {r[0]: r[1] for r in rows} == {i: ("true" if i in ids[:2] else "false") for i in ids}


@pytest.mark.parametrize(
    "soql",
    [
        "SELECT Department, COUNT(Id) FROM Contact GROUP BY Department",
        "SELECT COUNT() FROM Contact",
        "SELECT Id FROM Contact LIMIT 5 OFFSET 2",
        "SELECT Name, (SELECT LastName FROM Contacts) FROM Account",
    ],
)
def test_unsupported_soql_is_refused_at_create(http: httpx.Client, soql: str) -> None:
    """Q2-09, Q2-13: 400 with a JSON error array; no job is made."""
    before = http.get(QBASE).json()["records"]
    r = http.post(QBASE, json={"operation": "query", "query": soql})
    assert r.status_code == 400, r.text
    assert r.json()[0]["message"]
    if "Contacts" in soql:
        assert "Aggregate Relationships not supported in Bulk V2 Query" in r.json()[0]["message"]
    assert len(http.get(QBASE).json()["records"]) == len(before)


def test_bad_soql_and_bad_requests(http: httpx.Client) -> None:
    r = http.post(QBASE, json={"operation": "query", "query": "SELECT Nope__c FROM Contact"})
    msg = assert_error(r, 400, "INVALID_FIELD")
    assert "ERROR at Row:1:Column:8" in msg
    r = http.post(QBASE, json={"operation": "query", "query": "SELECT Id FROM Nope__c"})
    assert_error(r, 400, "INVALID_TYPE")
    r = http.post(QBASE, json={"operation": "query", "query": "select id from account where"})
    assert "unexpected token: '<EOF>'" in assert_error(r, 400, "MALFORMED_QUERY")
    r = http.post(QBASE, json={"operation": "insert", "query": "SELECT Id FROM Contact"})
    assert_error(r, 400, "INVALIDJOB")
    r = http.post(QBASE, json={"operation": "query"})
    assert_error(r, 400, "INVALIDJOB")
    r = http.post(
        QBASE,
        json={"operation": "query", "query": "SELECT Id FROM Contact", "columnDelimiter": "X"},
    )
    assert_error(r, 400, "INVALIDJOB")
    r = http.post(
        "/services/data/v46.0/jobs/query",
        json={"operation": "query", "query": "SELECT Id FROM Contact"},
    )
    assert r.status_code == 404
    # a query operation is not an ingest job
    r = http.post(
        f"/services/data/v{API}/jobs/ingest", json={"object": "Contact", "operation": "query"}
    )
    assert_error(r, 400, "INVALIDJOB")


def test_abort_delete_and_results_rules(http: httpx.Client) -> None:
    """Q2-10, Q2-17 (409 for another version), invalid locators."""
    tag = unique("q210")
    contacts(http, 2, tag)
    info = create_query(http, f"SELECT Id FROM Contact WHERE Department = '{tag}'")
    wait_query(http, info["id"])
    r = http.patch(f"{QBASE}/{info['id']}", json={"state": "Aborted"})
    assert_error(r, 400, "INVALIDJOBSTATE", "Aborting already Completed Job not allowed")
    r = http.get(f"/services/data/v58.0/jobs/query/{info['id']}/results")
    assert r.status_code == 409, r.text
    for bad in ("garbage!", base64.urlsafe_b64encode(b"99999").decode()):
        r = http.get(f"{QBASE}/{info['id']}/results", params={"locator": bad})
        assert r.status_code == 400, r.text
    r = http.get(f"{QBASE}/{info['id']}/results", params={"maxRecords": "0"})
    assert r.status_code == 400, r.text
    assert http.delete(f"{QBASE}/{info['id']}").status_code == 204
    assert_error(http.get(f"{QBASE}/{info['id']}"), 404, "NOT_FOUND")
    assert_error(http.get(f"{QBASE}/{info['id']}/results"), 404, "NOT_FOUND")
    # an ingest job id is not a query job
    r = http.post(
        f"/services/data/v{API}/jobs/ingest", json={"object": "Contact", "operation": "insert"}
    )
    assert_error(http.get(f"{QBASE}/{r.json()['id']}"), 404, "NOT_FOUND")


def test_typed_values_delimiters_and_line_endings(http: httpx.Client) -> None:
    """Q2-12, Q2-15: canonical names in SELECT order, dotted relationship columns, quoted
    values, null as empty, `…000Z` datetimes, true/false, Java-double numbers."""
    tag = unique("q215")
    (acct,) = load(http, "Account", ["Name"], [[f"{tag}-acct"]])
    load(
        http, "Widget__c",
        ["Name", "Account__c", "Quantity__c", "Count__c", "Price__c", "Ratio__c",
         "Active__c", "Released__c", "Seen_At__c", "Notes__c"],
        [[f"{tag}-1", acct, "23", "7", "16147805824397", "12.5", "true", "2024-01-02",
          "2024-03-04T05:06:07.000Z", 'say "hi",\nbye'],
         [f"{tag}-2", "", "", "", "", "", "false", "", "", ""]],
    )  # fmt: skip
    soql = (
        "select name, account__r.name, QUANTITY__C, count__c, price__c, ratio__c, active__c, "
        f"released__c, seen_at__c, notes__c from widget__c where name like '{tag}%' order by name"
    )
    for delim, char, ending, eol in (("COMMA", ",", "LF", "\n"), ("TAB", "\t", "CRLF", "\r\n"),
                                     ("PIPE", "|", "LF", "\n"), ("SEMICOLON", ";", "CRLF", "\r\n"),
                                     ("CARET", "^", "LF", "\n"), ("BACKQUOTE", "`", "LF", "\n")):  # fmt: skip
        info = create_query(http, soql, columnDelimiter=delim, lineEnding=ending)
        assert info["columnDelimiter"] == delim and info["lineEnding"] == ending
        wait_query(http, info["id"])
        page = read_page(http, info["id"], delim=char, eol=eol)
        assert page.header == [
            "Name", "Account__r.Name", "Quantity__c", "Count__c", "Price__c", "Ratio__c",
            "Active__c", "Released__c", "Seen_At__c", "Notes__c",
        ]  # fmt: skip
        assert page.rows == [
            [f"{tag}-1", f"{tag}-acct", "23.0", "7", "1.6147805824397E13", "12.5", "true",
             "2024-01-02", "2024-03-04T05:06:07.000Z", 'say "hi",\nbye'],
            [f"{tag}-2", "", "", "", "", "", "false", "", "", ""],
        ]  # fmt: skip


def test_gzip_when_asked(http: httpx.Client) -> None:
    tag = unique("qgz")
    contacts(http, 50, tag)
    info = create_query(http, f"SELECT Id, LastName FROM Contact WHERE Department = '{tag}'")
    wait_query(http, info["id"])
    plain = http.get(f"{QBASE}/{info['id']}/results", headers={"Accept-Encoding": "identity"})
    with httpx.Client(base_url=str(http.base_url), headers=dict(http.headers)) as raw:
        req = raw.build_request(
            "GET", f"{QBASE}/{info['id']}/results", headers={"Accept-Encoding": "gzip"}
        )
        r = raw.send(req, stream=True)
        body = b"".join(r.iter_raw())
    assert r.headers["content-encoding"] == "gzip"
    assert r.headers["Sforce-Locator"] == "null" and r.headers["Sforce-NumberOfRecords"] == "50"
    assert gzip.decompress(body) == plain.content
    assert "content-encoding" not in plain.headers


def test_list_and_result_pages(http: httpx.Client) -> None:
    tag = unique("qlist")
    contacts(http, 25, tag)
    info = create_query(http, f"SELECT Id FROM Contact WHERE Department = '{tag}'")
    wait_query(http, info["id"])
    listed = http.get(QBASE).json()
    mine = [j for j in listed["records"] if j["id"] == info["id"]]
    assert mine and mine[0]["jobType"] == "V2Query" and mine[0]["numberRecordsProcessed"] == 25
    assert all(j["jobType"] == "V2Query" for j in listed["records"])
    ingest = http.get(f"/services/data/v{API}/jobs/ingest").json()
    assert info["id"] not in {j["id"] for j in ingest["records"]}
    assert http.get(QBASE, params={"jobType": "V2Query"}).status_code == 200
    # resultPages (v58.0+): up to five result URLs at a time
    r = http.get(f"{QBASE}/{info['id']}/resultPages", params={"maxRecords": 4})
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["done"] is False and len(first["resultPages"]) == 5
    urls = [p["resultUrl"] for p in first["resultPages"]]
    second = http.get(first["nextRecordsUrl"]).json()
    assert second["done"] is True and second["nextRecordsUrl"] is None
    urls += [p["resultUrl"] for p in second["resultPages"]]
    got = []
    for u in urls:
        rr = http.get(u)
        assert rr.status_code == 200, rr.text
        got += rr.text.splitlines()[1:]
    assert len(got) == len(set(got)) == 25
    assert http.get(f"/services/data/v57.0/jobs/query/{info['id']}/resultPages").status_code == 404


def test_results_before_completion_and_abort(
    make_server: Callable[..., Server], backend: str
) -> None:
    """Q2-11 and abort/delete of a job that has not run: an API process without workers."""
    srv = make_server("--no-worker", backend=backend)
    with srv.client() as c:
        info = create_query(c, "SELECT Id FROM Contact")
        r = c.get(f"{QBASE}/{info['id']}/results")
        assert_error(r, 412, "JOB_NOT_COMPLETE")
        assert "Current status: UPLOAD_COMPLETE" in r.json()[0]["message"]
        assert_error(c.delete(f"{QBASE}/{info['id']}"), 400, "API_ERROR")
        r = c.patch(f"{QBASE}/{info['id']}", json={"state": "Aborted"})
        assert r.status_code == 200 and r.json()["state"] == "Aborted"
        assert c.delete(f"{QBASE}/{info['id']}").status_code == 204


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_separate_worker_processes_on_postgresql(make_server: Callable[..., Server]) -> None:
    """The API process queues the job; a `bulkforce worker` process runs it."""
    srv = make_server("--no-worker", backend="postgresql")
    assert srv.pg_url
    with srv.client() as c:
        tag = unique("qw")
        info = create_query(c, f"SELECT Id FROM Contact WHERE Department = '{tag}'")
        time.sleep(0.5)
        assert c.get(f"{QBASE}/{info['id']}").json()["state"] == "UploadComplete"
        worker = subprocess.Popen(
            [sys.executable, "-m", "bulkforce", "worker", "--database", srv.pg_url],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            done = wait_query(c, info["id"])
        finally:
            worker.terminate()
            worker.wait(timeout=30)
        assert done["state"] == "JobComplete" and done["numberRecordsProcessed"] == 0
        page = read_page(c, info["id"])
        assert page.header == ["Id"] and page.rows == []
        assert page.response.headers["Sforce-Locator"] == "null"
