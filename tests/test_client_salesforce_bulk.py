"""salesforce-bulk 2.2.0 `SalesforceBulk` (Bulk API 1.0, XML/CSV/JSON jobs) against bulkforce.

The unchanged client talks to the session server over real HTTP. `SalesforceBulk` uses `host`
verbatim when it starts with `http`, so `host=server.url` is all plain http needs; with a bare
`host="127.0.0.1:PORT"` it builds `https://` URLs, and overwriting its `endpoint` attribute
afterwards is enough (see `test_bare_host_endpoint_override_and_default_api_version`).

Outcomes are checked as a user sees them: the client's return values (`UploadResult` rows,
status dicts, exceptions) and the rows in the SQLite store.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import pytest
from client_helpers import is_id
from conftest import API, DB, Server, by, rows_where, unique
from salesforce_bulk import CsvDictsAdapter, SalesforceBulk
from salesforce_bulk.salesforce_bulk import BulkApiError, BulkBatchFailed, UploadResult

NS = "http://www.force.com/2009/06/asyncapi/dataload"
MISSING_LASTNAME = "REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --"
FIELD_NOT_FOUND = "InvalidBatch : Field name not found : Bogus__c"
XML_DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
# Poll fast: salesforce-bulk's default sleep_interval is 10 s.
POLL = 0.05

JOB_FIELDS = [
    "id", "operation", "object", "createdById", "createdDate", "systemModstamp", "state",
    "externalIdFieldName", "concurrencyMode", "contentType", "numberBatchesQueued",
    "numberBatchesInProgress", "numberBatchesCompleted", "numberBatchesFailed",
    "numberBatchesTotal", "numberRecordsProcessed", "numberRetries", "apiVersion",
    "numberRecordsFailed", "totalProcessingTime", "apiActiveProcessingTime",
    "apexProcessingTime",
]  # fmt: skip
BATCH_FIELDS = [
    "id", "jobId", "state", "stateMessage", "createdDate", "systemModstamp",
    "numberRecordsProcessed", "numberRecordsFailed", "totalProcessingTime",
    "apiActiveProcessingTime", "apexProcessingTime",
]  # fmt: skip


def in_order(keys: list[str], expected: list[str]) -> bool:
    """`keys` are a subsequence of `expected`, in the same order."""
    it = iter(expected)
    return all(k in it for k in keys)


@pytest.fixture
def bulk(server: Server) -> SalesforceBulk:
    return SalesforceBulk(sessionId=server.token, host=server.url, API_version=API)


def api_error(exc: BulkApiError) -> tuple[str, str]:
    """(exceptionCode, exceptionMessage) of the XML `<error>` body in a BulkApiError."""
    body = str(exc).split("Bulk API HTTP Error result: ", 1)[1]
    root = ET.fromstring(body.encode("utf-8"))
    assert root.tag == f"{{{NS}}}error", body
    code, message = (
        root.findtext(f"{{{NS}}}exceptionCode"),
        root.findtext(f"{{{NS}}}exceptionMessage"),
    )
    assert code is not None and message is not None, body
    return code, message


def run_batch(bulk: SalesforceBulk, job: str, data: Any) -> tuple[str, list[UploadResult]]:
    """post_batch + wait_for_batch + get_batch_results, the client's documented flow."""
    batch = bulk.post_batch(job, data)
    assert is_id(batch, "751"), batch
    bulk.wait_for_batch(job, batch, timeout=30, sleep_interval=POLL)
    assert bulk.is_batch_done(batch, job)
    results = bulk.get_batch_results(batch, job)
    assert results is not None, "get_batch_results returned None: result Content-Type not exact"
    return batch, list(results)


def csv_text(header: list[str], rows: list[list[str]]) -> str:
    def cell(v: str) -> str:
        return '"' + v.replace('"', '""') + '"'

    return "".join(",".join(cell(v) for v in line) + "\n" for line in [header, *rows])


def insert_contacts(bulk: SalesforceBulk, records: list[dict[str, str]]) -> list[str]:
    job = bulk.create_insert_job("Contact", contentType="CSV")
    _, results = run_batch(bulk, job, CsvDictsAdapter(iter(records)))
    bulk.close_job(job)
    assert [(r.success, r.error) for r in results] == [("true", "")] * len(records), results
    return [r.id for r in results]


# --- insert ----------------------------------------------------------------------------------


def test_insert_csv_dicts_adapter(bulk: SalesforceBulk, db: DB) -> None:
    u = unique("sbins")
    records = [
        {"FirstName": "Ada", "LastName": f"Lovelace-{u}", "Email": f"ada-{u}@example.com"},
        {"FirstName": "Zoé", "LastName": f"日本-{u}", "Email": None},  # None -> "" = not set
        {"FirstName": 'Smith, "Jr"', "LastName": f"Multi\nLine-{u}", "Email": ""},
    ]
    job = bulk.create_insert_job("Contact", contentType="CSV")
    assert is_id(job, "750"), job

    # CsvDictsAdapter is a generator: requests uploads it chunked, CRLF, all strings quoted
    batch, results = run_batch(bulk, job, CsvDictsAdapter(iter(records)))

    assert all(isinstance(r, UploadResult) for r in results)
    assert len(results) == 3
    assert [(r.success, r.created, r.error) for r in results] == [("true", "true", "")] * 3
    assert all(is_id(r.id, "003") for r in results)

    names = [r["LastName"] for r in records]
    rows = by(rows_where(db, "Contact", "LastName", names), "LastName")
    # results come back in input order
    assert [rows[n]["Id"] for n in names] == [r.id for r in results]
    assert rows[f"Lovelace-{u}"]["Email"] == f"ada-{u}@example.com"
    assert rows[f"日本-{u}"]["FirstName"] == "Zoé"
    assert rows[f"日本-{u}"]["Email"] is None
    assert rows[f"Multi\nLine-{u}"]["FirstName"] == 'Smith, "Jr"'

    status = bulk.batch_status(batch, job, reload=True)
    assert (status["id"], status["jobId"], status["state"]) == (batch, job, "Completed")
    assert (status["numberRecordsProcessed"], status["numberRecordsFailed"]) == ("3", "0")

    # batches are processed while the job is still Open; closing comes last
    assert bulk.job_state(job) == "Open"
    bulk.close_job(job)
    info = bulk.job_status(job)
    assert info["state"] == "Closed"
    assert (info["object"], info["operation"], info["contentType"]) == ("Contact", "insert", "CSV")
    assert info["concurrencyMode"] == "Parallel"
    assert (info["numberBatchesTotal"], info["numberBatchesCompleted"]) == ("1", "1")
    assert (info["numberRecordsProcessed"], info["numberRecordsFailed"]) == ("3", "0")
    assert info["apiVersion"] == API


def test_job_and_batch_info_fields_in_xsd_order(bulk: SalesforceBulk) -> None:
    u = unique("sbxsd")
    job = bulk.create_upsert_job(
        "Contact", "External_Id__c", contentType="CSV", concurrency="Serial"
    )
    info = bulk.job_status(job)
    # job_status returns the child elements in document order; Data Loader (WSC) needs XSD order
    assert list(info) == JOB_FIELDS, list(info)
    assert info["id"] == job
    assert (info["operation"], info["externalIdFieldName"]) == ("upsert", "External_Id__c")
    assert info["concurrencyMode"] == "Serial"
    assert info["state"] == "Open"
    assert is_id(info["createdById"], "005")
    assert XML_DATE.match(info["createdDate"]), info["createdDate"]
    assert XML_DATE.match(info["systemModstamp"]), info["systemModstamp"]
    for key in JOB_FIELDS[10:17] + JOB_FIELDS[18:]:
        assert info[key] == "0", (key, info[key])

    batch = bulk.post_batch(job, csv_text(["External_Id__c", "LastName"], [[u, f"Xsd-{u}"]]))
    status = bulk.batch_status(batch, job)
    assert in_order(list(status), BATCH_FIELDS), list(status)
    assert "stateMessage" not in status  # omitted when there is nothing to say
    assert status["state"] in ("Queued", "InProgress", "Completed")
    assert XML_DATE.match(status["createdDate"]), status["createdDate"]
    bulk.wait_for_batch(job, batch, timeout=30, sleep_interval=POLL)
    bulk.close_job(job)
    # a non-upsert job has no externalIdFieldName element at all
    other = bulk.create_insert_job("Contact", contentType="CSV")
    assert list(bulk.job_status(other)) == [k for k in JOB_FIELDS if k != "externalIdFieldName"]
    bulk.close_job(other)


def test_generator_batch_many_rows_in_order(bulk: SalesforceBulk, db: DB) -> None:
    u = unique("sbgen")
    n = 600

    def rows() -> Iterator[bytes]:  # a plain generator: sent with Transfer-Encoding: chunked
        yield b'"LastName","Email"\r\n'
        for i in range(n):
            yield f'"Gen{i:04d}-{u}","g{i}-{u}@example.com"\r\n'.encode()

    job = bulk.create_insert_job("Contact", contentType="CSV")
    batch, results = run_batch(bulk, job, rows())
    bulk.close_job(job)

    assert len(results) == n
    assert all(r.success == "true" and r.created == "true" for r in results)
    names = [f"Gen{i:04d}-{u}" for i in range(n)]
    stored = by(rows_where(db, "Contact", "LastName", names), "LastName")
    assert [stored[name]["Id"] for name in names] == [r.id for r in results]
    assert stored[names[-1]]["Email"] == f"g{n - 1}-{u}@example.com"  # no stray \r
    assert bulk.batch_status(batch, job, reload=True)["numberRecordsProcessed"] == str(n)


def test_failed_row_error_text(bulk: SalesforceBulk, db: DB) -> None:
    u = unique("sbfail")
    records = [
        {"FirstName": "One", "LastName": f"One-{u}"},
        {"FirstName": f"NoLast-{u}", "LastName": ""},
        {"FirstName": "Three", "LastName": f"Three-{u}"},
    ]
    job = bulk.create_insert_job("Contact", contentType="CSV")
    batch, results = run_batch(bulk, job, CsvDictsAdapter(iter(records)))

    assert results[1] == UploadResult("", "false", "false", MISSING_LASTNAME)
    assert [(r.success, r.created, r.error) for r in (results[0], results[2])] == [
        ("true", "true", "")
    ] * 2
    rows = by(rows_where(db, "Contact", "LastName", [f"One-{u}", f"Three-{u}"]), "LastName")
    assert [rows[f"One-{u}"]["Id"], rows[f"Three-{u}"]["Id"]] == [results[0].id, results[2].id]
    assert rows_where(db, "Contact", "FirstName", [f"NoLast-{u}"]) == []

    status = bulk.batch_status(batch, job, reload=True)
    # a record-level error does not fail the batch
    assert status["state"] == "Completed"
    assert (status["numberRecordsProcessed"], status["numberRecordsFailed"]) == ("3", "1")
    bulk.close_job(job)
    info = bulk.job_status(job)
    assert (info["numberRecordsProcessed"], info["numberRecordsFailed"]) == ("3", "1")


# --- update / upsert / delete ----------------------------------------------------------------


def test_update_job(bulk: SalesforceBulk, db: DB) -> None:
    u = unique("sbupd")
    first, second = insert_contacts(
        bulk,
        [
            {"FirstName": "Keep", "LastName": f"U1-{u}", "Email": f"u1-{u}@example.com"},
            {"FirstName": "Keep", "LastName": f"U2-{u}", "Email": f"u2-{u}@example.com"},
        ],
    )
    job = bulk.create_update_job("Contact", contentType="CSV")
    # a str body (Content-Length, LF): empty cell = leave unchanged, #N/A = set null
    data = csv_text(
        ["Id", "Title", "Email"],
        [[first, "Chef 日本", "#N/A"], [second, "", f"new-{u}@example.com"]],
    )
    _, results = run_batch(bulk, job, data)
    bulk.close_job(job)

    assert results == [
        UploadResult(first, "true", "false", ""),
        UploadResult(second, "true", "false", ""),
    ]
    rows = by(rows_where(db, "Contact", "Id", [first, second]), "Id")
    assert (rows[first]["Title"], rows[first]["Email"]) == ("Chef 日本", None)
    assert (rows[second]["Title"], rows[second]["Email"]) == (None, f"new-{u}@example.com")
    assert rows[first]["FirstName"] == rows[second]["FirstName"] == "Keep"
    assert rows[first]["LastName"] == f"U1-{u}"


def test_upsert_job_mixed_new_and_existing(bulk: SalesforceBulk, db: DB) -> None:
    u = unique("sbups")
    old, new = f"Old-{u}", f"New-{u}"
    (old_id,) = insert_contacts(bulk, [{"LastName": f"Before-{u}", "External_Id__c": old}])

    job = bulk.create_upsert_job("Contact", "External_Id__c", contentType="CSV")
    records = [
        {"External_Id__c": new, "LastName": f"Fresh-{u}"},
        {"External_Id__c": old, "LastName": f"After-{u}"},
        {"External_Id__c": f"Bad-{u}", "LastName": ""},
    ]
    _, results = run_batch(bulk, job, CsvDictsAdapter(iter(records)))
    bulk.close_job(job)

    assert [(r.success, r.created) for r in results] == [
        ("true", "true"),
        ("true", "false"),
        ("false", "false"),
    ]
    assert results[1].id == old_id
    assert is_id(results[0].id, "003") and results[0].id != old_id
    assert results[2].error == MISSING_LASTNAME
    rows = by(rows_where(db, "Contact", "External_Id__c", [old, new, f"Bad-{u}"]), "External_Id__c")
    assert set(rows) == {old, new}
    assert (rows[old]["Id"], rows[old]["LastName"]) == (old_id, f"After-{u}")
    assert (rows[new]["Id"], rows[new]["LastName"]) == (results[0].id, f"Fresh-{u}")
    assert bulk.job_status(job)["externalIdFieldName"] == "External_Id__c"


def test_delete_job(bulk: SalesforceBulk, db: DB) -> None:
    u = unique("sbdel")
    gone, stays, later = insert_contacts(
        bulk, [{"LastName": f"Gone-{u}"}, {"LastName": f"Stays-{u}"}, {"LastName": f"Later-{u}"}]
    )
    job = bulk.create_delete_job("Contact", contentType="CSV")
    _, results = run_batch(bulk, job, CsvDictsAdapter(iter([{"Id": gone}])))
    bulk.close_job(job)
    assert results == [UploadResult(gone, "true", "false", "")]

    # deleting it again fails that row only
    job = bulk.create_delete_job("Contact", contentType="CSV")
    _, results = run_batch(bulk, job, CsvDictsAdapter(iter([{"Id": later}, {"Id": gone}])))
    bulk.close_job(job)
    assert results[0] == UploadResult(later, "true", "false", "")
    assert (results[1].success, results[1].created) == ("false", "false")
    assert results[1].error.startswith("ENTITY_IS_DELETED:entity is deleted:"), results[1]

    rows = by(rows_where(db, "Contact", "Id", [gone, stays, later]), "Id")
    assert {i for i, r in rows.items() if not r["IsDeleted"]} == {stays}


# --- JSON jobs -------------------------------------------------------------------------------


def test_json_job(bulk: SalesforceBulk, db: DB) -> None:
    u = unique("sbjson")
    records = [
        {"FirstName": "Zoé", "LastName": f"J1-{u}", "Email": None},
        {"FirstName": f"NoLast-{u}"},
        {"FirstName": "Ada", "LastName": f"J2-{u}", "Email": f"j2-{u}@example.com"},
    ]
    # the create request is XML even for a JSON job, and the answer must be XML too
    job = bulk.create_insert_job("Contact", contentType="JSON")
    assert is_id(job, "750"), job
    batch, results = run_batch(bulk, job, json.dumps(records))

    # JSON results: real booleans, errors as objects
    ok1, bad, ok2 = results
    assert (ok1.success, ok1.created, ok1.error) == (True, True, [])
    assert (ok2.success, ok2.created, ok2.error) == (True, True, [])
    assert (bad.id, bad.success, bad.created) == (None, False, False)
    assert bad.error == [
        {
            "statusCode": "REQUIRED_FIELD_MISSING",
            "message": "Required fields are missing: [LastName]",
            "fields": ["LastName"],
        }
    ]
    rows = by(rows_where(db, "Contact", "LastName", [f"J1-{u}", f"J2-{u}"]), "LastName")
    assert (rows[f"J1-{u}"]["Id"], rows[f"J2-{u}"]["Id"]) == (ok1.id, ok2.id)
    assert rows[f"J1-{u}"]["FirstName"] == "Zoé"
    assert rows[f"J1-{u}"]["Email"] is None

    # batch info of a JSON job is JSON, with numeric counters
    status = bulk.batch_status(batch, job, reload=True)
    assert (status["id"], status["jobId"], status["state"]) == (batch, job, "Completed")
    assert (status["numberRecordsProcessed"], status["numberRecordsFailed"]) == (3, 1)
    (listed,) = bulk.get_batch_list(job)
    assert (listed["id"], listed["state"], listed["numberRecordsProcessed"]) == (
        batch,
        "Completed",
        3,
    )

    # close_job sends XML to a JSON job (request format follows the request Content-Type)
    bulk.close_job(job)
    # GET job answers in the job's format, JSON here; job_status only parses XML (clients.md §1.3)
    with pytest.raises(ET.ParseError):
        bulk.job_status(job)


def test_xml_job(bulk: SalesforceBulk, db: DB) -> None:
    u = unique("sbxml")
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<sObjects xmlns="{NS}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f"<sObject><FirstName>Zoé &amp; Co</FirstName><LastName>X1-{u}</LastName>"
        '<Email xsi:nil="true"/></sObject>'
        f"<sObject><FirstName>NoLast-{u}</FirstName></sObject>"
        "</sObjects>"
    ).encode()
    job = bulk.create_insert_job("Contact", contentType="XML")
    batch, results = run_batch(bulk, job, body)
    bulk.close_job(job)

    # salesforce-bulk's XML branch never reads ids (client bug), but parses everything else
    assert [(r.success, r.created) for r in results] == [(True, True), (False, False)]
    assert results[0].error == []
    assert results[1].error == [
        {
            "fields": ["LastName"],
            "message": "Required fields are missing: [LastName]",
            "statusCode": "REQUIRED_FIELD_MISSING",
        }
    ]
    (row,) = rows_where(db, "Contact", "LastName", [f"X1-{u}"])
    assert (row["FirstName"], row["Email"]) == ("Zoé & Co", None)
    assert rows_where(db, "Contact", "FirstName", [f"NoLast-{u}"]) == []
    info = bulk.job_status(job)  # XML job: job info is XML
    assert (info["contentType"], info["numberRecordsFailed"]) == ("XML", "1")
    assert bulk.batch_status(batch, job, reload=True)["numberRecordsProcessed"] == "2"


# --- several batches, listing, request -------------------------------------------------------


def test_batch_list_and_batch_request(bulk: SalesforceBulk, db: DB) -> None:
    u = unique("sblist")
    job = bulk.create_insert_job("Contact", contentType="CSV")
    assert bulk.get_batch_list(job) == []
    payloads = [
        csv_text(["LastName", "FirstName"], [[f"L{b}{i}-{u}", f"B{b}"] for i in range(b + 1)])
        for b in range(3)
    ]
    batches = [bulk.post_batch(job, p) for p in payloads]
    assert all(is_id(b, "751") for b in batches)
    assert len(set(batches)) == 3
    for b in batches:
        bulk.wait_for_batch(job, b, timeout=30, sleep_interval=POLL)

    listed = bulk.get_batch_list(job)
    assert [b["id"] for b in listed] == batches  # creation order
    assert all(b["jobId"] == job and b["state"] == "Completed" for b in listed)
    assert [b["numberRecordsProcessed"] for b in listed] == ["1", "2", "3"]
    assert all(in_order(list(b), BATCH_FIELDS) for b in listed)

    # the batch's original payload, byte for byte
    assert [bulk.get_query_batch_request(b, job) for b in batches] == payloads

    for b, expected in zip(batches, (1, 2, 3), strict=True):
        results = bulk.get_batch_results(b, job)
        assert len(results) == expected
    bulk.close_job(job)
    info = bulk.job_status(job)
    assert (info["numberBatchesTotal"], info["numberBatchesCompleted"]) == ("3", "3")
    assert info["numberRecordsProcessed"] == "6"
    names = [f"L{b}{i}-{u}" for b in range(3) for i in range(b + 1)]
    stored = by(rows_where(db, "Contact", "LastName", names), "LastName")
    assert {n: stored[n]["FirstName"] for n in names} == {n: f"B{n[1]}" for n in names}


# --- job states and errors -------------------------------------------------------------------


def test_abort_job(bulk: SalesforceBulk, db: DB) -> None:
    u = unique("sbabort")
    job = bulk.create_insert_job("Contact", contentType="CSV")
    bulk.abort_job(job)
    assert bulk.job_state(job) == "Aborted"

    with pytest.raises(BulkApiError) as exc:
        bulk.post_batch(job, csv_text(["LastName"], [[f"Abort-{u}"]]))
    assert exc.value.status_code == 400
    assert api_error(exc.value)[0] == "InvalidJobState"
    with pytest.raises(BulkApiError) as exc:
        bulk.close_job(job)
    assert exc.value.status_code == 400
    assert api_error(exc.value)[0] == "InvalidJobState"
    assert rows_where(db, "Contact", "LastName", [f"Abort-{u}"]) == []


def test_closed_job_rejects_batches_and_can_still_be_aborted(bulk: SalesforceBulk) -> None:
    u = unique("sbclosed")
    job = bulk.create_insert_job("Contact", contentType="CSV")
    bulk.close_job(job)
    bulk.close_job(job)  # closing twice is a no-op
    with pytest.raises(BulkApiError) as exc:
        bulk.post_batch(job, csv_text(["LastName"], [[f"Late-{u}"]]))
    assert exc.value.status_code == 400
    assert api_error(exc.value)[0] == "InvalidJobState"
    bulk.abort_job(job)
    assert bulk.job_state(job) == "Aborted"


def test_unknown_field_fails_the_batch(bulk: SalesforceBulk, db: DB) -> None:
    u = unique("sbbogus")
    job = bulk.create_insert_job("Contact", contentType="CSV")
    batch = bulk.post_batch(job, csv_text(["LastName", "Bogus__c"], [[f"Bogus-{u}", "1"]]))
    with pytest.raises(BulkBatchFailed) as exc:
        bulk.wait_for_batch(job, batch, timeout=30, sleep_interval=POLL)
    assert (exc.value.state, exc.value.state_message) == ("Failed", FIELD_NOT_FOUND)

    with pytest.raises(BulkApiError) as err:
        bulk.get_batch_results(batch, job)
    assert err.value.status_code == 400
    assert api_error(err.value) == ("InvalidBatch", "Records not processed")
    bulk.close_job(job)
    info = bulk.job_status(job)
    assert (info["numberBatchesFailed"], info["numberBatchesTotal"]) == ("1", "1")
    assert rows_where(db, "Contact", "LastName", [f"Bogus-{u}"]) == []


def test_unknown_object_is_rejected(bulk: SalesforceBulk) -> None:
    with pytest.raises(BulkApiError) as exc:
        bulk.create_insert_job("NoSuchThing__c", contentType="CSV")
    assert exc.value.status_code == 400
    assert api_error(exc.value) == (
        "InvalidEntity",
        "Entity 'NoSuchThing__c' is not supported by the Bulk API.",
    )


def test_unknown_job_and_batch(bulk: SalesforceBulk) -> None:
    with pytest.raises(BulkApiError) as exc:
        bulk.job_status("750000000000000AAA")
    assert exc.value.status_code == 400
    assert api_error(exc.value)[0] == "InvalidJob"

    job = bulk.create_insert_job("Contact", contentType="CSV")
    with pytest.raises(BulkApiError) as exc:
        bulk.batch_status("751000000000000AAA", job)
    assert exc.value.status_code == 400
    assert api_error(exc.value)[0] == "InvalidBatch"
    bulk.close_job(job)


def test_wrong_session_id(server: Server) -> None:
    bad = SalesforceBulk(sessionId="00D000000000001AAA!wrong", host=server.url, API_version=API)
    with pytest.raises(BulkApiError) as exc:
        bad.create_insert_job("Contact", contentType="CSV")
    assert exc.value.status_code == 400
    assert api_error(exc.value)[0] == "InvalidSessionId"


def test_bare_host_endpoint_override_and_default_api_version(server: Server, db: DB) -> None:
    u = unique("sbhost")
    bulk = SalesforceBulk(sessionId=server.token, host=f"127.0.0.1:{server.port}")
    assert bulk.endpoint == f"https://127.0.0.1:{server.port}/services/async/40.0"
    # the one non-invasive change for plain http: every request is built from `endpoint`
    bulk.endpoint = bulk.endpoint.replace("https://", "http://", 1)

    job = bulk.create_insert_job("Contact", contentType="CSV")
    _, results = run_batch(bulk, job, CsvDictsAdapter(iter([{"LastName": f"Host-{u}"}])))
    bulk.close_job(job)
    assert [(r.success, r.created) for r in results] == [("true", "true")]
    assert bulk.job_status(job)["apiVersion"] == "40.0"  # salesforce-bulk's default version
    (row,) = rows_where(db, "Contact", "LastName", [f"Host-{u}"])
    assert row["Id"] == results[0].id
