"""simple-salesforce 1.12.10 `sf.bulk2` (Bulk API 2.0 ingest) against a real bulkforce server.

Everything goes over real HTTP through the unchanged client; outcomes are checked the way a user
would notice them: the client's return values, the result CSVs and the rows in the SQLite store.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from client_helpers import make_sf
from conftest import API, DB, Server, by, rows_where, unique
from simple_salesforce import Salesforce
from simple_salesforce.bulk2 import ColumnDelimiter, LineEnding, Operation, SFBulk2Type
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceOperationError,
    SalesforceResourceNotFound,
)

# First poll after 50 ms; simple-salesforce's default would sleep 5 s per job.
WAIT: Any = 0.05
MISSING_LASTNAME = "REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --"
NOT_FOUND = [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]


@pytest.fixture
def sf(server: Server) -> Salesforce:
    return make_sf(server)


@pytest.fixture
def contact(sf: Salesforce) -> SFBulk2Type:
    bulk: SFBulk2Type = sf.bulk2.Contact
    return bulk


def parse(text: str, delimiter: str = ",") -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter))


def data_lines(text: str) -> list[str]:
    return [line for line in text.splitlines()[1:] if line]


def only_job(result: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(result) == 1, result
    return result[0]


def is_job_id(value: str) -> bool:
    return len(value) == 18 and value.startswith("750") and value.isalnum()


def insert_contacts(contact: SFBulk2Type, records: list[dict[str, str]]) -> dict[str, str]:
    """Insert `records` (each with a unique LastName); return LastName -> new Id."""
    job = only_job(contact.insert(records=records, wait=WAIT))
    assert job["numberRecordsFailed"] == 0, contact.get_failed_records(job["job_id"])
    ok = parse(contact.get_successful_records(job["job_id"]))
    return {r["LastName"]: r["sf__Id"] for r in ok}


# --- insert ----------------------------------------------------------------------------------


def test_insert_returns_counts_and_writes_rows(contact: SFBulk2Type, db: DB) -> None:
    u = unique("ins")
    records = [
        {"FirstName": "Ada", "LastName": f"Lovelace-{u}", "Email": f"ada-{u}@example.com"},
        {"FirstName": "Zoé", "LastName": f"山田-{u}", "Email": f"zoe-{u}@example.com"},
        {"FirstName": "Smith, Jr", "LastName": f"Quote-{u}", "Email": f"q-{u}@example.com"},
    ]
    job = only_job(contact.insert(records=records, wait=WAIT))

    assert job["numberRecordsProcessed"] == 3
    assert job["numberRecordsFailed"] == 0
    assert job["numberRecordsTotal"] == 3
    assert is_job_id(job["job_id"])

    rows = by(rows_where(db, "Contact", "LastName", [r["LastName"] for r in records]), "LastName")
    assert set(rows) == {r["LastName"] for r in records}
    for rec in records:
        row = rows[rec["LastName"]]
        assert row["FirstName"] == rec["FirstName"]
        assert row["Email"] == rec["Email"]
        assert len(row["Id"]) == 18 and row["Id"].startswith("003")


def test_successful_records_csv(contact: SFBulk2Type, db: DB) -> None:
    u = unique("ok")
    records = [
        {"FirstName": "Zoé", "LastName": f"日本-{u}"},
        {"FirstName": "Ann; Marie|x", "LastName": f"Plain-{u}"},
    ]
    job = only_job(contact.insert(records=records, wait=WAIT))
    text = contact.get_successful_records(job["job_id"])

    assert text.startswith('"sf__Id","sf__Created",')
    lines = data_lines(text)
    assert len(lines) == 2
    # every value is quoted, so multi-delimiter parsers (jsforce) see one column per field
    assert all(line.startswith('"') and line.endswith('"') for line in lines)

    ok = parse(text)
    assert {r["LastName"] for r in ok} == {f"日本-{u}", f"Plain-{u}"}  # UTF-8, not mojibake
    assert {r["FirstName"] for r in ok} == {"Zoé", "Ann; Marie|x"}
    assert all(r["sf__Created"] == "true" for r in ok)
    rows = by(rows_where(db, "Contact", "LastName", [f"日本-{u}", f"Plain-{u}"]), "LastName")
    for r in ok:
        assert rows[r["LastName"]]["Id"] == r["sf__Id"]
        assert rows[r["LastName"]]["FirstName"] == r["FirstName"]

    assert data_lines(contact.get_failed_records(job["job_id"])) == []
    assert data_lines(contact.get_unprocessed_records(job["job_id"])) == []


def test_insert_from_csv_file_with_semicolon_and_crlf(
    contact: SFBulk2Type, db: DB, tmp_path: Path
) -> None:
    u = unique("semi")
    path = tmp_path / "contacts.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter=";", lineterminator="\r\n")
        w.writerow(["LastName", "FirstName", "Title"])
        w.writerow([f"Doe, Jane-{u}", "Jane", "R&D; Ops"])
        w.writerow([f"Müller-{u}", "Jörg", 'He said "hi"'])
    job = only_job(
        contact.insert(
            csv_file=str(path),
            column_delimiter=ColumnDelimiter.SEMICOLON,
            line_ending=LineEnding.CRLF,
            wait=WAIT,
        )
    )
    assert (job["numberRecordsProcessed"], job["numberRecordsFailed"]) == (2, 0)

    rows = by(rows_where(db, "Contact", "LastName", [f"Doe, Jane-{u}", f"Müller-{u}"]), "LastName")
    assert rows[f"Doe, Jane-{u}"]["Title"] == "R&D; Ops"
    assert rows[f"Müller-{u}"]["FirstName"] == "Jörg"
    assert rows[f"Müller-{u}"]["Title"] == 'He said "hi"'

    # results come back in the job's delimiter and line ending
    text = contact.get_successful_records(job["job_id"])
    assert text.startswith('"sf__Id";"sf__Created";')
    assert "\r\n" in text
    ok = parse(text, delimiter=";")
    assert {r["LastName"] for r in ok} == {f"Doe, Jane-{u}", f"Müller-{u}"}
    assert {r["Title"] for r in ok} == {"R&D; Ops", 'He said "hi"'}


def test_batch_size_makes_one_job_per_chunk(contact: SFBulk2Type, db: DB) -> None:
    u = unique("chunk")
    names = [f"Chunk{i}-{u}" for i in range(5)]
    result = contact.insert(records=[{"LastName": n} for n in names], batch_size=2, wait=WAIT)

    assert [j["numberRecordsTotal"] for j in result] == [2, 2, 1]
    assert [j["numberRecordsProcessed"] for j in result] == [2, 2, 1]
    assert len({j["job_id"] for j in result}) == 3
    assert {r["LastName"] for r in rows_where(db, "Contact", "LastName", names)} == set(names)


def test_custom_object_typed_values(sf: Salesforce, db: DB) -> None:
    sku = unique("SKU")[:20]
    widgets: SFBulk2Type = sf.bulk2.Widget__c
    job = only_job(
        widgets.insert(
            records=[
                {
                    "Name": "Sprocket ü",
                    "Sku__c": sku,
                    "Quantity__c": "3",
                    "Price__c": "12.50",
                    "Active__c": "true",
                    "Released__c": "2024-02-29",
                }
            ],
            wait=WAIT,
        )
    )
    assert (job["numberRecordsProcessed"], job["numberRecordsFailed"]) == (1, 0)
    (row,) = rows_where(db, "Widget__c", "Sku__c", [sku])
    assert row["Name"] == "Sprocket ü"
    assert row["Quantity__c"] == 3
    assert row["Price__c"] == 12.5
    assert row["Active__c"] == 1
    assert row["Released__c"] == "2024-02-29"
    ok = parse(widgets.get_successful_records(job["job_id"]))
    assert ok[0]["sf__Id"] == row["Id"]
    assert ok[0]["sf__Id"][:3] not in ("001", "003")  # a custom object's own key prefix


# --- failures --------------------------------------------------------------------------------


def test_failed_row_missing_lastname(contact: SFBulk2Type, db: DB) -> None:
    u = unique("fail")
    records = [
        {"FirstName": f"Good-{u}", "LastName": f"Good-{u}", "Email": f"good-{u}@example.com"},
        {"FirstName": f"Bad-{u}", "Email": f"bad-{u}@example.com"},  # LastName written empty
        {"FirstName": f"Fine-{u}", "LastName": f"Fine-{u}"},
    ]
    job = only_job(contact.insert(records=records, wait=WAIT))
    assert job["numberRecordsProcessed"] == 3
    assert job["numberRecordsFailed"] == 1

    failed_text = contact.get_failed_records(job["job_id"])
    assert failed_text.startswith('"sf__Id","sf__Error",')
    (failed,) = parse(failed_text)
    assert failed["sf__Id"] == ""
    assert failed["sf__Error"] == MISSING_LASTNAME
    assert failed["FirstName"] == f"Bad-{u}"
    assert failed["Email"] == f"bad-{u}@example.com"

    ok = parse(contact.get_successful_records(job["job_id"]))
    assert {r["FirstName"] for r in ok} == {f"Good-{u}", f"Fine-{u}"}
    firsts = [f"Good-{u}", f"Bad-{u}", f"Fine-{u}"]
    stored = {r["FirstName"] for r in rows_where(db, "Contact", "FirstName", firsts)}
    assert stored == {f"Good-{u}", f"Fine-{u}"}


def test_get_all_ingest_records(contact: SFBulk2Type) -> None:
    u = unique("all")
    records = [
        {"FirstName": "Zoé", "LastName": f"日本-{u}"},
        {"FirstName": f"NoLast-{u}", "LastName": ""},
    ]
    job = only_job(contact.insert(records=records, wait=WAIT))
    everything = contact.get_all_ingest_records(job["job_id"])

    assert set(everything) == {"successfulRecords", "failedRecords", "unprocessedRecords"}
    (ok,) = everything["successfulRecords"]
    assert ok["LastName"] == f"日本-{u}"
    assert ok["FirstName"] == "Zoé"
    assert ok["sf__Created"] == "true"
    assert ok["sf__Id"].startswith("003")
    (bad,) = everything["failedRecords"]
    assert bad["FirstName"] == f"NoLast-{u}"
    assert bad["sf__Error"] == MISSING_LASTNAME
    assert bad["sf__Id"] == ""
    assert everything["unprocessedRecords"] == []


def test_results_written_to_file(contact: SFBulk2Type, tmp_path: Path) -> None:
    u = unique("file")
    records = [
        {"FirstName": "Zoé", "LastName": f"日本-{u}"},
        {"FirstName": f"NoLast-{u}", "LastName": ""},
    ]
    job_id = only_job(contact.insert(records=records, wait=WAIT))["job_id"]

    ok_file, bad_file, todo_file = tmp_path / "ok.csv", tmp_path / "bad.csv", tmp_path / "todo.csv"
    assert contact.get_successful_records(job_id, file=str(ok_file)) == ""
    assert contact.get_failed_records(job_id, file=str(bad_file)) == ""
    assert contact.get_unprocessed_records(job_id, file=str(todo_file)) == ""

    # the file holds exactly the bytes of the response: UTF-8 CSV
    assert ok_file.read_bytes() == contact.get_successful_records(job_id).encode("utf-8")
    (ok,) = parse(ok_file.read_text(encoding="utf-8"))
    assert (ok["LastName"], ok["FirstName"], ok["sf__Created"]) == (f"日本-{u}", "Zoé", "true")
    (bad,) = parse(bad_file.read_text(encoding="utf-8"))
    assert (bad["sf__Error"], bad["FirstName"]) == (MISSING_LASTNAME, f"NoLast-{u}")
    assert parse(todo_file.read_text(encoding="utf-8")) == []


def test_unknown_field_fails_the_job(contact: SFBulk2Type) -> None:
    u = unique("bogus")
    with pytest.raises(SalesforceOperationError) as exc:
        contact.insert(records=[{"LastName": u, "Bogus__c": "1"}], wait=WAIT)
    assert "InvalidBatch : Field name not found : Bogus__c" in str(exc.value)


def test_failed_job_rows_are_unprocessed(contact: SFBulk2Type) -> None:
    u = unique("unproc")
    client = contact._client
    job_id = client.create_job(Operation.insert)["id"]
    client.upload_job_data(job_id, f"LastName,Bogus__c\nA-{u},1\nB-{u},2\n")
    client.close_job(job_id)
    with pytest.raises(SalesforceOperationError, match="Field name not found : Bogus__c"):
        client.wait_for_job(job_id, False, WAIT)

    info = client.get_job(job_id, False)
    assert info["state"] == "Failed"
    assert info["numberRecordsProcessed"] == 0
    assert info["errorMessage"] == "InvalidBatch : Field name not found : Bogus__c"

    todo = parse(contact.get_unprocessed_records(job_id))
    assert [(r["LastName"], r["Bogus__c"]) for r in todo] == [(f"A-{u}", "1"), (f"B-{u}", "2")]
    everything = contact.get_all_ingest_records(job_id)
    assert everything["successfulRecords"] == []
    assert everything["failedRecords"] == []
    assert {r["LastName"] for r in everything["unprocessedRecords"]} == {f"A-{u}", f"B-{u}"}


def test_unknown_object_is_rejected(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.bulk2.NoSuchThing__c.insert(records=[{"Name": "x"}], wait=WAIT)
    assert exc.value.status == 400
    assert exc.value.content[0]["errorCode"] == "INVALIDENTITY"


def test_wrong_token_is_401(server: Server) -> None:
    bad = make_sf(server, token="00D000000000001AAA!NotTheRightToken")
    with pytest.raises(SalesforceExpiredSession) as exc:
        bad.bulk2.Contact.insert(records=[{"LastName": unique("tok")}], wait=WAIT)
    assert exc.value.status == 401
    assert exc.value.content[0]["errorCode"] == "INVALID_SESSION_ID"


# --- update / upsert -------------------------------------------------------------------------


def test_update_changes_only_given_cells(contact: SFBulk2Type, db: DB) -> None:
    u = unique("upd")
    a, b = f"A-{u}", f"B-{u}"
    ids = insert_contacts(
        contact,
        [
            {"LastName": a, "FirstName": "Alpha", "Email": f"a-{u}@example.com"},
            {"LastName": b, "FirstName": "Beta", "Email": f"b-{u}@example.com"},
        ],
    )
    # simple-salesforce writes a missing key as an empty cell: "leave unchanged"
    job = only_job(
        contact.update(
            records=[
                {"Id": ids[a], "Email": f"a2-{u}@example.com"},
                {"Id": ids[b], "FirstName": "Bêta 日本"},
            ],
            wait=WAIT,
        )
    )
    assert (job["numberRecordsProcessed"], job["numberRecordsFailed"]) == (2, 0)

    rows = by(rows_where(db, "Contact", "Id", [ids[a], ids[b]]), "LastName")
    assert (rows[a]["FirstName"], rows[a]["Email"]) == ("Alpha", f"a2-{u}@example.com")
    assert (rows[b]["FirstName"], rows[b]["Email"]) == ("Bêta 日本", f"b-{u}@example.com")

    ok = parse(contact.get_successful_records(job["job_id"]))
    assert {r["sf__Id"] for r in ok} == {ids[a], ids[b]}
    assert all(r["sf__Created"] == "false" for r in ok)


def test_upsert_on_external_id_mixes_inserts_and_updates(contact: SFBulk2Type, db: DB) -> None:
    u = unique("ups")
    e1, e2, e3 = f"E1-{u}", f"E2-{u}", f"E3-{u}"
    ids = insert_contacts(
        contact,
        [
            {"LastName": f"Old1-{u}", "External_Id__c": e1, "Email": f"one-{u}@example.com"},
            {"LastName": f"Old2-{u}", "External_Id__c": e2},
        ],
    )
    job = only_job(
        contact.upsert(
            records=[
                {"External_Id__c": e1, "LastName": f"New1-{u}"},
                {"External_Id__c": e3, "LastName": f"New3-{u}", "FirstName": "Zoé"},
                {"External_Id__c": e2, "LastName": f"New2-{u}"},
            ],
            external_id_field="External_Id__c",
            wait=WAIT,
        )
    )
    assert (job["numberRecordsProcessed"], job["numberRecordsFailed"]) == (3, 0)

    ok = by(parse(contact.get_successful_records(job["job_id"])), "External_Id__c")
    assert {e: r["sf__Created"] for e, r in ok.items()} == {e1: "false", e2: "false", e3: "true"}
    assert ok[e1]["sf__Id"] == ids[f"Old1-{u}"]
    assert ok[e2]["sf__Id"] == ids[f"Old2-{u}"]
    assert ok[e3]["sf__Id"].startswith("003") and ok[e3]["sf__Id"] not in ids.values()

    rows = by(rows_where(db, "Contact", "External_Id__c", [e1, e2, e3]), "External_Id__c")
    assert len(rows) == 3
    assert rows[e1]["Id"] == ids[f"Old1-{u}"]
    assert rows[e1]["LastName"] == f"New1-{u}"
    assert rows[e1]["Email"] == f"one-{u}@example.com"  # not in the upload: unchanged
    assert rows[e2]["LastName"] == f"New2-{u}"
    assert (rows[e3]["LastName"], rows[e3]["FirstName"]) == (f"New3-{u}", "Zoé")
    assert rows[e3]["Id"] == ok[e3]["sf__Id"]


# --- delete / hard delete --------------------------------------------------------------------


def live_ids(db: DB, ids: list[str]) -> set[str]:
    return {r["Id"] for r in rows_where(db, "Contact", "Id", ids) if not r["IsDeleted"]}


def test_delete(contact: SFBulk2Type, db: DB) -> None:
    u = unique("del")
    ids = insert_contacts(contact, [{"LastName": f"Gone-{u}"}, {"LastName": f"Stays-{u}"}])
    gone, stays = ids[f"Gone-{u}"], ids[f"Stays-{u}"]

    job = only_job(contact.delete(records=[{"Id": gone}], wait=WAIT))
    assert (job["numberRecordsProcessed"], job["numberRecordsFailed"]) == (1, 0)
    (ok,) = parse(contact.get_successful_records(job["job_id"]))
    assert (ok["sf__Id"], ok["sf__Created"], ok["Id"]) == (gone, "false", gone)
    assert live_ids(db, [gone, stays]) == {stays}

    # the record is in the recycle bin now: deleting it again is a row error
    again = only_job(contact.delete(records=[{"Id": gone}], wait=WAIT))
    assert (again["numberRecordsProcessed"], again["numberRecordsFailed"]) == (1, 1)
    (bad,) = parse(contact.get_failed_records(again["job_id"]))
    assert bad["sf__Error"].startswith("ENTITY_IS_DELETED:entity is deleted:")
    assert bad["Id"] == gone


def test_hard_delete_removes_rows(contact: SFBulk2Type, db: DB) -> None:
    u = unique("hard")
    ids = insert_contacts(
        contact, [{"LastName": f"H1-{u}"}, {"LastName": f"H2-{u}"}, {"LastName": f"Keep-{u}"}]
    )
    doomed = [ids[f"H1-{u}"], ids[f"H2-{u}"]]

    job = only_job(contact.hard_delete(records=[{"Id": i} for i in doomed], wait=WAIT))
    assert (job["numberRecordsProcessed"], job["numberRecordsFailed"]) == (2, 0)
    ok = parse(contact.get_successful_records(job["job_id"]))
    assert {r["sf__Id"] for r in ok} == set(doomed)
    assert all(r["sf__Created"] == "false" for r in ok)

    left = rows_where(db, "Contact", "Id", list(ids.values()))
    assert [r["LastName"] for r in left] == [f"Keep-{u}"]  # gone for good, not in a recycle bin


# --- the low-level client --------------------------------------------------------------------


def test_low_level_job_lifecycle(contact: SFBulk2Type, db: DB) -> None:
    u = unique("low")
    client = contact._client

    created = client.create_job(Operation.upsert, external_id_field="External_Id__c")
    job_id = created["id"]
    assert is_job_id(job_id)
    assert created["state"] == "Open"
    assert (created["object"], created["operation"]) == ("Contact", "upsert")
    assert created["externalIdFieldName"] == "External_Id__c"
    assert created["contentType"] == "CSV"
    assert created["apiVersion"] == 59.0
    assert created["contentUrl"] == f"services/data/v{API}/jobs/ingest/{job_id}/batches"

    client.upload_job_data(job_id, f"External_Id__c,LastName\nX1-{u},Low1-{u}\nX2-{u},Low2-{u}\n")
    closed = client.close_job(job_id)
    assert closed["id"] == job_id
    assert closed["state"] in ("UploadComplete", "InProgress", "JobComplete")

    assert client.wait_for_job(job_id, False, WAIT) == "JobComplete"
    info = client.get_job(job_id, False)
    assert info["state"] == "JobComplete"
    assert info["numberRecordsProcessed"] == 2
    assert info["numberRecordsFailed"] == 0
    rows = rows_where(db, "Contact", "External_Id__c", [f"X1-{u}", f"X2-{u}"])
    assert {r["LastName"] for r in rows} == {f"Low1-{u}", f"Low2-{u}"}

    # 204 No Content: simple-salesforce's delete_job calls .json() on it (fails on Salesforce too)
    with pytest.raises(json.JSONDecodeError):
        client.delete_job(job_id, False)
    with pytest.raises(SalesforceResourceNotFound) as exc:
        client.get_job(job_id, False)
    assert exc.value.content == NOT_FOUND
    with pytest.raises(SalesforceResourceNotFound):
        contact.get_successful_records(job_id)
    # deleting a job does not touch the records it loaded
    assert len(rows_where(db, "Contact", "External_Id__c", [f"X1-{u}", f"X2-{u}"])) == 2


def test_abort_job(contact: SFBulk2Type, db: DB) -> None:
    u = unique("abort")
    client = contact._client
    job_id = client.create_job(Operation.insert)["id"]
    client.upload_job_data(job_id, f"LastName\nAborted-{u}\n")

    aborted = client.abort_job(job_id, False)
    assert (aborted["id"], aborted["state"]) == (job_id, "Aborted")
    assert client.get_job(job_id, False)["state"] == "Aborted"
    with pytest.raises(SalesforceOperationError, match="Job failure"):
        client.wait_for_job(job_id, False, WAIT)

    # an aborted job can be neither closed nor aborted again
    with pytest.raises(SalesforceMalformedRequest) as exc:
        client.close_job(job_id)
    assert exc.value.content[0]["errorCode"] == "INVALIDJOBSTATE"
    with pytest.raises(SalesforceMalformedRequest):
        client.abort_job(job_id, False)

    assert rows_where(db, "Contact", "LastName", [f"Aborted-{u}"]) == []
    with pytest.raises(json.JSONDecodeError):
        client.delete_job(job_id, False)
    with pytest.raises(SalesforceResourceNotFound):
        client.get_job(job_id, False)


def test_open_job_cannot_be_deleted(contact: SFBulk2Type) -> None:
    client = contact._client
    job_id = client.create_job(Operation.insert)["id"]
    with pytest.raises(SalesforceMalformedRequest) as exc:
        client.delete_job(job_id, False)
    assert exc.value.content[0]["errorCode"] == "API_ERROR"
    assert client.get_job(job_id, False)["state"] == "Open"
    client.abort_job(job_id, False)


def test_unknown_job_is_404(contact: SFBulk2Type) -> None:
    with pytest.raises(SalesforceResourceNotFound) as exc:
        contact._client.get_job("750000000000000AAA", False)
    assert exc.value.status == 404
    assert exc.value.content == NOT_FOUND
