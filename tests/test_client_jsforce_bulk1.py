"""jsforce 3.10.16 `conn.bulk` (Bulk API 1.0, CSV jobs) against a real bulkforce server.

tests/js/bulk1.mjs runs the unchanged client in node and prints what it returned as JSON; these
tests check that and the rows in the SQLite store. jsforce parses every XML answer with xml2js,
so job and batch info values are strings. Needs node and `make js` (npm install in tests/js);
otherwise every test here is skipped with the reason.
"""

from __future__ import annotations

from typing import Any

import pytest
from client_helpers import is_id
from conftest import API, DB, NodeScript, Server, by, rows_where, unique

MISSING_LASTNAME = "REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --"
FIELD_NOT_FOUND = "InvalidBatch : Field name not found : Bogus__c"

Records = list[dict[str, Any]]


class JS(NodeScript):
    script = "bulk1.mjs"

    def load(self, obj: str, operation: str, data: Records | str, **options: Any) -> dict[str, Any]:
        params = {"object": obj, "operation": operation, "options": options, "input": data}
        return self.run("load", params)

    def load_error(self, obj: str, operation: str, data: Records | str) -> dict[str, Any]:
        params = {"object": obj, "operation": operation, "input": data}
        error: dict[str, Any] = self.run("load", params, ok=False)["error"]
        return error

    def insert_contacts(self, records: Records) -> list[str]:
        res = self.load("Contact", "insert", records)["results"]
        assert all(r["success"] for r in res), res
        return [r["id"] for r in res]


@pytest.fixture
def js(node: str, server: Server) -> JS:
    return JS(node, server)


def ok(created: bool, record_id: str) -> dict[str, Any]:
    return {"id": record_id, "success": True, "created": created, "errors": []}


FAILED_INSERT = {"id": None, "success": False, "created": False, "errors": [MISSING_LASTNAME]}


# --- bulk.load -------------------------------------------------------------------------------


def test_load_insert_results_in_input_order(js: JS, db: DB) -> None:
    u = unique("j1ins")
    records: Records = [
        {"FirstName": "Zoé", "LastName": f"日本-{u}", "Email": None},  # null -> #N/A
        {"FirstName": f"NoLast-{u}", "LastName": None},
        {"FirstName": "Smith, Jr", "LastName": f"Quote-{u}", "Email": f"q-{u}@example.com"},
        {"FirstName": "Ada", "LastName": f"Lovelace-{u}", "Email": ""},
    ]
    out = js.load("Contact", "insert", records)

    results = out["results"]
    assert len(results) == 4
    assert results[1] == FAILED_INSERT
    good = [results[0], results[2], results[3]]
    assert all(r["success"] and r["created"] and r["errors"] == [] for r in good), results
    assert all(is_id(r["id"], "003") for r in good)
    names = [f"日本-{u}", f"Quote-{u}", f"Lovelace-{u}"]
    rows = by(rows_where(db, "Contact", "LastName", names), "LastName")
    assert [rows[n]["Id"] for n in names] == [r["id"] for r in good]
    assert (rows[f"日本-{u}"]["FirstName"], rows[f"日本-{u}"]["Email"]) == ("Zoé", None)
    assert rows[f"Quote-{u}"]["FirstName"] == "Smith, Jr"
    assert rows[f"Lovelace-{u}"]["Email"] is None
    assert rows_where(db, "Contact", "FirstName", [f"NoLast-{u}"]) == []

    # jsforce closes the job after reading the results; the answer is the full jobInfo
    closed = out["closed"]
    assert is_id(out["jobId"], "750") and is_id(out["batchId"], "751")
    assert (closed["id"], closed["state"], closed["object"]) == (out["jobId"], "Closed", "Contact")
    assert (closed["operation"], closed["contentType"]) == ("insert", "CSV")
    assert (closed["numberBatchesTotal"], closed["numberBatchesCompleted"]) == ("1", "1")
    assert (closed["numberRecordsProcessed"], closed["numberRecordsFailed"]) == ("4", "1")
    assert closed["apiVersion"] == API


def test_load_csv_string(js: JS, db: DB) -> None:
    u = unique("j1csv")
    data = f'LastName,Title\r\n"Csv1-{u}","Sales, EMEA"\r\nCsv2-{u},"multi\nline"\r\n'
    out = js.load("Contact", "insert", data)
    assert [(r["success"], r["created"]) for r in out["results"]] == [(True, True)] * 2
    rows = by(rows_where(db, "Contact", "LastName", [f"Csv1-{u}", f"Csv2-{u}"]), "LastName")
    assert [rows[f"Csv1-{u}"]["Id"], rows[f"Csv2-{u}"]["Id"]] == [r["id"] for r in out["results"]]
    assert (rows[f"Csv1-{u}"]["Title"], rows[f"Csv2-{u}"]["Title"]) == (
        "Sales, EMEA",
        "multi\nline",
    )


def test_load_update(js: JS, db: DB) -> None:
    u = unique("j1upd")
    ids = js.insert_contacts(
        [
            {"FirstName": "Keep", "LastName": f"Upd1-{u}", "Email": f"u1-{u}@example.com"},
            {"FirstName": "Keep", "LastName": f"Upd2-{u}", "Email": f"u2-{u}@example.com"},
        ]
    )
    out = js.load(
        "Contact",
        "update",
        [
            {"Id": ids[0], "Email": None, "Title": "Chef 日本"},
            {"Id": ids[1], "Email": f"new-{u}@example.com", "Title": ""},
        ],
    )
    assert out["results"] == [ok(False, ids[0]), ok(False, ids[1])]
    rows = by(rows_where(db, "Contact", "Id", ids), "Id")
    assert (rows[ids[0]]["Email"], rows[ids[0]]["Title"]) == (None, "Chef 日本")
    assert (rows[ids[1]]["Email"], rows[ids[1]]["Title"]) == (f"new-{u}@example.com", None)
    assert rows[ids[0]]["FirstName"] == rows[ids[1]]["FirstName"] == "Keep"


@pytest.mark.parametrize("mode", ["Parallel", "Serial"])
def test_load_upsert_ext_id_field(js: JS, db: DB, mode: str) -> None:
    u = unique("j1ups")
    old, new = f"Old-{u}", f"New-{u}"
    (old_id,) = js.insert_contacts([{"LastName": f"Before-{u}", "External_Id__c": old}])

    # jsforce adds an (empty) Id column to upsert records
    out = js.load(
        "Contact",
        "upsert",
        [
            {"External_Id__c": new, "LastName": f"Fresh-{u}"},
            {"External_Id__c": old, "LastName": f"After-{u}"},
        ],
        extIdField="External_Id__c",
        concurrencyMode=mode,
    )
    results = out["results"]
    assert [(r["success"], r["created"]) for r in results] == [(True, True), (True, False)]
    assert results[1]["id"] == old_id
    assert out["closed"]["externalIdFieldName"] == "External_Id__c"
    assert out["closed"]["concurrencyMode"] == mode
    rows = by(rows_where(db, "Contact", "External_Id__c", [old, new]), "External_Id__c")
    assert (rows[old]["Id"], rows[old]["LastName"]) == (old_id, f"After-{u}")
    assert (rows[new]["Id"], rows[new]["LastName"]) == (results[0]["id"], f"Fresh-{u}")


def test_load_delete_and_hard_delete(js: JS, db: DB) -> None:
    u = unique("j1del")
    gone, second, hard = js.insert_contacts(
        [{"LastName": f"Gone-{u}"}, {"LastName": f"Second-{u}"}, {"LastName": f"Hard-{u}"}]
    )
    # jsforce uploads only the Id column for deletes, whatever else the records hold
    out = js.load("Contact", "delete", [{"Id": gone, "LastName": "ignored"}])
    assert out["results"] == [ok(False, gone)]

    # a second delete of the same record fails that row only
    out = js.load("Contact", "delete", [{"Id": gone}, {"Id": second}])
    bad, good = out["results"]
    assert good == ok(False, second)
    assert (bad["success"], bad["created"]) == (False, False)
    assert len(bad["errors"]) == 1
    assert bad["errors"][0].startswith("ENTITY_IS_DELETED:entity is deleted:"), bad

    out = js.load("Contact", "hardDelete", [{"Id": hard}])
    assert out["results"] == [ok(False, hard)]
    assert out["closed"]["operation"] == "hardDelete"

    rows = by(rows_where(db, "Contact", "Id", [gone, second, hard]), "Id")
    assert set(rows) == {gone, second}  # the hard-deleted row is gone
    assert rows[gone]["IsDeleted"] and rows[second]["IsDeleted"]


# --- the Job / Batch API ---------------------------------------------------------------------


def test_job_api_two_batches(js: JS, db: DB) -> None:
    u = unique("j1steps")
    # jsforce takes the CSV header from the first record: give every record the same keys
    batch_a = [
        {"FirstName": "A1", "LastName": f"A1-{u}"},
        {"FirstName": "NoLast", "LastName": None},
        {"FirstName": "A2", "LastName": f"A2-{u}"},
    ]
    batch_b = [{"LastName": f"B1-{u}", "FirstName": "Zoé"}]
    out = js.run(
        "steps",
        {"object": "Contact", "operation": "insert", "batches": [batch_a, batch_b]},
    )
    job_id = out["jobId"]
    assert is_id(job_id, "750")
    opened = out["opened"]
    assert (opened["id"], opened["state"], opened["object"]) == (job_id, "Open", "Contact")
    assert (opened["operation"], opened["contentType"]) == ("insert", "CSV")
    assert opened["concurrencyMode"] == "Parallel"
    assert (opened["numberBatchesTotal"], opened["apiVersion"]) == ("0", API)
    assert is_id(opened["createdById"], "005")

    a, b = out["batches"]
    for batch in (a, b):
        assert is_id(batch["id"], "751")
        assert (batch["queued"]["id"], batch["queued"]["jobId"]) == (batch["id"], job_id)
        assert batch["queued"]["state"] in ("Queued", "InProgress", "Completed")
        assert batch["checked"]["state"] == "Completed"
        assert batch["retrieved"] == batch["results"]  # batch.retrieve() gives the same again
    assert a["id"] != b["id"]
    assert (a["checked"]["numberRecordsProcessed"], a["checked"]["numberRecordsFailed"]) == (
        "3",
        "1",
    )
    assert b["checked"]["numberRecordsProcessed"] == "1"
    assert a["results"][1] == FAILED_INSERT
    names = [f"A1-{u}", f"A2-{u}", f"B1-{u}"]
    rows = by(rows_where(db, "Contact", "LastName", names), "LastName")
    assert [a["results"][0]["id"], a["results"][2]["id"], b["results"][0]["id"]] == [
        rows[n]["Id"] for n in names
    ]

    before = out["beforeClose"]
    assert (before["id"], before["state"]) == (job_id, "Open")
    assert (before["numberBatchesTotal"], before["numberBatchesCompleted"]) == ("2", "2")
    assert (before["numberRecordsProcessed"], before["numberRecordsFailed"]) == ("4", "1")

    listed = out["list"]
    assert {x["id"] for x in listed} == {a["id"], b["id"]}
    assert all(x["jobId"] == job_id and x["state"] == "Completed" for x in listed)

    assert (out["closed"]["id"], out["closed"]["state"]) == (job_id, "Closed")
    assert out["info"] == out["closed"]
    assert (out["afterClose"]["id"], out["afterClose"]["state"]) == (job_id, "Closed")
    assert out["afterClose"]["numberRecordsProcessed"] == "4"


def test_job_api_single_batch_list(js: JS) -> None:
    u = unique("j1one")
    out = js.run(
        "steps",
        {
            "object": "Contact",
            "operation": "insert",
            "options": {"concurrencyMode": "Serial"},
            "batches": [f"LastName\n{u}\n"],
        },
    )
    assert out["opened"]["concurrencyMode"] == "Serial"
    # one <batchInfo> in the list: xml2js gives an object, jsforce wraps it in an array
    (listed,) = out["list"]
    (batch,) = out["batches"]
    assert (listed["id"], listed["state"]) == (batch["id"], "Completed")
    assert [(r["success"], r["created"]) for r in batch["results"]] == [(True, True)]


def test_abort(js: JS, db: DB) -> None:
    u = unique("j1abort")
    out = js.run(
        "abort",
        {
            "object": "Contact",
            "operation": "insert",
            "batches": [[{"LastName": f"Done-{u}"}]],
            "lateInput": [{"LastName": f"Late-{u}"}],
        },
    )
    job_id = out["jobId"]
    assert out["opened"]["state"] == "Open"
    ((done,),) = out["runs"]
    assert (done["success"], done["created"]) == (True, True)
    assert (out["aborted"]["id"], out["aborted"]["state"]) == (job_id, "Aborted")
    assert out["batchError"]["errorCode"] == "InvalidJobState"
    assert out["closeError"]["errorCode"] == "InvalidJobState"
    assert (out["afterAbort"]["state"], out["afterAbort"]["numberBatchesTotal"]) == ("Aborted", "1")
    # records committed before the abort stay; nothing was added afterwards
    (row,) = rows_where(db, "Contact", "LastName", [f"Done-{u}"])
    assert row["Id"] == done["id"]
    assert rows_where(db, "Contact", "LastName", [f"Late-{u}"]) == []


# --- errors ----------------------------------------------------------------------------------


def test_unknown_field_fails_the_batch(js: JS, db: DB) -> None:
    u = unique("j1bogus")
    err = js.load_error("Contact", "insert", [{"LastName": f"Bogus-{u}", "Bogus__c": "1"}])
    # a Failed batch with nothing processed: jsforce rejects with the batch's stateMessage
    assert err["message"] == FIELD_NOT_FOUND
    assert rows_where(db, "Contact", "LastName", [f"Bogus-{u}"]) == []


def test_unknown_object_is_rejected(js: JS) -> None:
    err = js.load_error("NoSuchThing__c", "insert", [{"Name": "x"}])
    assert err["errorCode"] == "InvalidEntity"
    assert err["message"] == "Entity 'NoSuchThing__c' is not supported by the Bulk API."


def test_wrong_token(js: JS) -> None:
    params = {"object": "Contact", "operation": "insert", "input": [{"LastName": "never"}]}
    out = js.run("load", params, ok=False, token="00D000000000001AAA!wrong")
    assert out["error"]["errorCode"] == "InvalidSessionId"
