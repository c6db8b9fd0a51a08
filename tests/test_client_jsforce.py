"""jsforce 3.10.16 `conn.bulk2` (Bulk API 2.0 ingest) against a real bulkforce server.

tests/js/bulk2.mjs runs the unchanged client in node and prints what it returned as JSON; these
tests check that, the raw result CSVs and the rows in the SQLite store. Needs node and
`make js` (npm install in tests/js); otherwise every test here is skipped with the reason.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from conftest import DB, NodeScript, Server, by, rows_where, unique

MISSING_LASTNAME = "REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --"
FIELD_NOT_FOUND = "InvalidBatch : Field name not found : Bogus__c"

Records = list[dict[str, Any]]


class JS(NodeScript):
    script = "bulk2.mjs"

    def load(self, obj: str, operation: str, data: Records | str, **opts: Any) -> dict[str, Any]:
        params = {"object": obj, "operation": operation, "input": data, **opts}
        return self.run("load", params)

    def insert_contacts(self, records: Records) -> dict[str, str]:
        """Insert Contacts (each with a unique LastName); return LastName -> Id."""
        res = self.load("Contact", "insert", records)
        assert res["failedResults"] == [], res
        return {r["LastName"]: r["sf__Id"] for r in res["successfulResults"]}


@pytest.fixture
def js(node: str, server: Server) -> JS:
    return JS(node, server)


def to_csv(header: list[str], rows: list[list[str]], delimiter: str = ",", eol: str = "\n") -> str:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator=eol)
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def data_lines(text: str) -> list[str]:
    return [line for line in text.splitlines()[1:] if line]


# --- insert ----------------------------------------------------------------------------------


def test_insert_records_null_and_non_ascii(js: JS, db: DB) -> None:
    u = unique("jsins")
    res = js.load(
        "Contact",
        "insert",
        [
            {"FirstName": "Zoé", "LastName": f"日本-{u}", "Email": None},
            {"FirstName": "Ada", "LastName": f"Lovelace-{u}", "Email": f"ada-{u}@example.com"},
        ],
    )
    assert res["failedResults"] == []
    assert res["unprocessedRecords"] == []
    ok = by(res["successfulResults"], "LastName")
    assert set(ok) == {f"日本-{u}", f"Lovelace-{u}"}
    assert all(r["sf__Created"] == "true" for r in ok.values())
    assert ok[f"日本-{u}"]["Email"] == "#N/A"  # jsforce writes null as #N/A; echoed as uploaded
    assert ok[f"日本-{u}"]["FirstName"] == "Zoé"

    rows = by(rows_where(db, "Contact", "LastName", list(ok)), "LastName")
    assert rows[f"日本-{u}"]["Email"] is None
    assert rows[f"日本-{u}"]["FirstName"] == "Zoé"
    assert rows[f"Lovelace-{u}"]["Email"] == f"ada-{u}@example.com"
    for name, r in ok.items():
        assert rows[name]["Id"] == r["sf__Id"]
        assert r["sf__Id"].startswith("003") and len(r["sf__Id"]) == 18


def test_insert_booleans_and_numbers(js: JS, db: DB) -> None:
    on, off = unique("on")[:20], unique("off")[:20]
    res = js.load(
        "Widget__c",
        "insert",
        [
            {"Name": "On", "Sku__c": on, "Active__c": True, "Quantity__c": 3},
            {"Name": "Off", "Sku__c": off, "Active__c": False, "Quantity__c": None},
        ],
    )
    assert res["failedResults"] == []
    ok = by(res["successfulResults"], "Sku__c")
    assert (ok[on]["Active__c"], ok[off]["Active__c"]) == ("true", "false")
    assert (ok[on]["Quantity__c"], ok[off]["Quantity__c"]) == ("3", "#N/A")

    rows = by(rows_where(db, "Widget__c", "Sku__c", [on, off]), "Sku__c")
    assert rows[on]["Active__c"] == 1
    assert rows[off]["Active__c"] == 0
    assert rows[on]["Quantity__c"] == 3
    assert rows[off]["Quantity__c"] is None


def test_upper_case_headers(js: JS, db: DB) -> None:
    u = unique("UP")
    data = to_csv(
        ["FIRSTNAME", "LASTNAME", "EMAIL"],
        [["Ada", f"Upper1-{u}", f"u1-{u}@example.com"], ["Zoé", f"Upper2-{u}", ""]],
    )
    res = js.load("Contact", "insert", data)
    assert res["failedResults"] == []
    ok = res["successfulResults"]
    assert len(ok) == 2
    # the uploaded header comes back exactly as uploaded, after the sf__ columns
    assert all(list(r) == ["sf__Id", "sf__Created", "FIRSTNAME", "LASTNAME", "EMAIL"] for r in ok)

    rows = by(rows_where(db, "Contact", "LastName", [f"Upper1-{u}", f"Upper2-{u}"]), "LastName")
    assert (rows[f"Upper1-{u}"]["FirstName"], rows[f"Upper1-{u}"]["Email"]) == (
        "Ada",
        f"u1-{u}@example.com",
    )
    assert rows[f"Upper2-{u}"]["FirstName"] == "Zoé"
    assert rows[f"Upper2-{u}"]["Email"] is None


@pytest.mark.parametrize("last_name", ["", None], ids=["empty", "null"])
def test_failing_row(js: JS, db: DB, last_name: str | None) -> None:
    u = unique("jsfail")
    res = js.load(
        "Contact",
        "insert",
        [
            {"FirstName": f"Good-{u}", "LastName": f"Good-{u}"},
            {"FirstName": f"Bad-{u}", "LastName": last_name},
        ],
    )
    (bad,) = res["failedResults"]
    assert bad["sf__Id"] == ""
    assert bad["sf__Error"] == MISSING_LASTNAME
    assert bad["FirstName"] == f"Bad-{u}"
    assert bad["LastName"] == ("#N/A" if last_name is None else "")
    (ok,) = res["successfulResults"]
    assert (ok["FirstName"], ok["sf__Created"]) == (f"Good-{u}", "true")
    assert res["unprocessedRecords"] == []

    stored = rows_where(db, "Contact", "FirstName", [f"Good-{u}", f"Bad-{u}"])
    assert [r["FirstName"] for r in stored] == [f"Good-{u}"]


def test_empty_record_list(js: JS) -> None:
    out = js.run("steps", {"object": "Contact", "operation": "insert", "input": []})
    assert out["polled"]["state"] == "JobComplete"
    assert out["polled"]["numberRecordsProcessed"] == 0
    assert out["polled"]["numberRecordsFailed"] == 0
    assert out["results"] == {
        "successfulResults": [],
        "failedResults": [],
        "unprocessedRecords": [],
    }

    res = js.load("Contact", "insert", [])
    assert res == {"successfulResults": [], "failedResults": [], "unprocessedRecords": []}


# --- update / upsert -------------------------------------------------------------------------


def test_update_sets_and_clears_fields(js: JS, db: DB) -> None:
    u = unique("jsupd")
    ids = js.insert_contacts(
        [{"FirstName": "Keep", "LastName": f"Upd-{u}", "Email": f"upd-{u}@example.com"}]
    )
    rid = ids[f"Upd-{u}"]

    res = js.load("Contact", "update", [{"Id": rid, "Email": None, "Title": "Chef 日本"}])
    assert res["failedResults"] == []
    (ok,) = res["successfulResults"]
    assert (ok["sf__Id"], ok["sf__Created"], ok["Id"]) == (rid, "false", rid)

    (row,) = rows_where(db, "Contact", "Id", [rid])
    assert row["Email"] is None  # #N/A cleared it
    assert row["Title"] == "Chef 日本"
    assert row["FirstName"] == "Keep"  # not uploaded: unchanged
    assert row["LastName"] == f"Upd-{u}"


def test_upsert_on_external_id(js: JS, db: DB) -> None:
    u = unique("jsups")
    old, new = f"Old-{u}", f"New-{u}"
    ids = js.insert_contacts([{"LastName": f"Before-{u}", "External_Id__c": old}])

    # jsforce adds an (empty) Id column to upsert records
    res = js.load(
        "Contact",
        "upsert",
        [
            {"External_Id__c": old, "LastName": f"After-{u}"},
            {"External_Id__c": new, "LastName": f"Fresh-{u}"},
        ],
        externalIdFieldName="External_Id__c",
    )
    assert res["failedResults"] == []
    ok = by(res["successfulResults"], "External_Id__c")
    assert (ok[old]["sf__Created"], ok[new]["sf__Created"]) == ("false", "true")
    assert ok[old]["sf__Id"] == ids[f"Before-{u}"]

    rows = by(rows_where(db, "Contact", "External_Id__c", [old, new]), "External_Id__c")
    assert len(rows) == 2
    assert (rows[old]["Id"], rows[old]["LastName"]) == (ids[f"Before-{u}"], f"After-{u}")
    assert (rows[new]["Id"], rows[new]["LastName"]) == (ok[new]["sf__Id"], f"Fresh-{u}")


@pytest.mark.parametrize("as_csv", [True, False], ids=["csv-without-id", "records"])
def test_upsert_by_id_without_ids_inserts_every_row(js: JS, db: DB, as_csv: bool) -> None:
    u = unique("jsupsid")
    names = [f"ById1-{u}", f"ById2-{u}"]
    data: Records | str = (
        to_csv(["LastName"], [[n] for n in names]) if as_csv else [{"LastName": n} for n in names]
    )
    res = js.load("Contact", "upsert", data, externalIdFieldName="Id")
    assert res["failedResults"] == []
    ok = by(res["successfulResults"], "LastName")
    assert set(ok) == set(names)
    assert all(r["sf__Created"] == "true" for r in ok.values())
    rows = by(rows_where(db, "Contact", "LastName", names), "LastName")
    assert {n: rows[n]["Id"] for n in names} == {n: ok[n]["sf__Id"] for n in names}


# --- delete / hard delete --------------------------------------------------------------------


def test_delete(js: JS, db: DB) -> None:
    u = unique("jsdel")
    ids = js.insert_contacts([{"LastName": f"Gone-{u}"}, {"LastName": f"Stays-{u}"}])
    gone, stays = ids[f"Gone-{u}"], ids[f"Stays-{u}"]

    # jsforce uploads only the Id column for deletes, whatever else the records hold
    res = js.load("Contact", "delete", [{"Id": gone, "LastName": "ignored"}])
    assert res["failedResults"] == []
    (ok,) = res["successfulResults"]
    assert ok == {"sf__Id": gone, "sf__Created": "false", "Id": gone}

    live = {r["Id"] for r in rows_where(db, "Contact", "Id", [gone, stays]) if not r["IsDeleted"]}
    assert live == {stays}


def test_hard_delete(js: JS, db: DB) -> None:
    u = unique("jshard")
    ids = js.insert_contacts([{"LastName": f"Hard-{u}"}, {"LastName": f"Keep-{u}"}])
    doomed = ids[f"Hard-{u}"]

    res = js.load("Contact", "hardDelete", [{"Id": doomed}])
    assert res["failedResults"] == []
    (ok,) = res["successfulResults"]
    assert (ok["sf__Id"], ok["sf__Created"]) == (doomed, "false")

    left = rows_where(db, "Contact", "Id", list(ids.values()))
    assert [r["LastName"] for r in left] == [f"Keep-{u}"]


# --- delimiters and line endings -------------------------------------------------------------


@pytest.mark.parametrize(("name", "char"), [("BACKQUOTE", "`"), ("SEMICOLON", ";")])
def test_column_delimiter_upsert(js: JS, db: DB, name: str, char: str) -> None:
    u = unique(f"js{name.lower()}")
    old, new = f"D1-{u}", f"D2-{u}"
    ids = js.insert_contacts([{"LastName": f"Was-{u}", "External_Id__c": old}])
    title = "Sales, EMEA; `ops`|^x"  # every delimiter jsforce's result parser knows
    data = to_csv(
        ["External_Id__c", "LastName", "Title"],
        [[old, f"Is-{u}", title], [new, f"Zoé-{u}", "plain"]],
        delimiter=char,
    )
    assert data.splitlines()[0] == char.join(["External_Id__c", "LastName", "Title"])

    res = js.load(
        "Contact", "upsert", data, externalIdFieldName="External_Id__c", columnDelimiter=name
    )
    assert res["failedResults"] == []
    assert res["unprocessedRecords"] == []
    ok = by(res["successfulResults"], "External_Id__c")
    assert set(ok) == {old, new}
    assert (ok[old]["sf__Created"], ok[new]["sf__Created"]) == ("false", "true")
    assert ok[old]["sf__Id"] == ids[f"Was-{u}"]
    assert ok[old]["Title"] == title
    assert ok[new]["LastName"] == f"Zoé-{u}"

    rows = by(rows_where(db, "Contact", "External_Id__c", [old, new]), "External_Id__c")
    assert (rows[old]["LastName"], rows[old]["Title"]) == (f"Is-{u}", title)
    assert (rows[new]["LastName"], rows[new]["Title"]) == (f"Zoé-{u}", "plain")


def test_crlf_line_ending(js: JS, db: DB) -> None:
    u = unique("jscrlf")
    data = to_csv(
        ["LastName", "Email"],
        [[f"Crlf1-{u}", f"c1-{u}@example.com"], [f"Crlf2-{u}", f"c2-{u}@example.com"]],
        eol="\r\n",
    )
    assert data.count("\r\n") == 3
    res = js.load("Contact", "insert", data, lineEnding="CRLF")
    assert res["failedResults"] == []
    ok = by(res["successfulResults"], "LastName")
    assert {n: r["Email"] for n, r in ok.items()} == {
        f"Crlf1-{u}": f"c1-{u}@example.com",
        f"Crlf2-{u}": f"c2-{u}@example.com",
    }
    rows = rows_where(db, "Contact", "LastName", [f"Crlf1-{u}", f"Crlf2-{u}"])
    # no stray \r left on the last column
    assert {r["Email"] for r in rows} == {f"c1-{u}@example.com", f"c2-{u}@example.com"}


# --- the step-by-step API --------------------------------------------------------------------


def test_step_by_step_job(js: JS, db: DB) -> None:
    u = unique("jssteps")
    out = js.run(
        "steps",
        {
            "object": "Contact",
            "operation": "insert",
            "input": [
                {"FirstName": "Zoé", "LastName": f"Step1-{u}"},
                {"FirstName": "NoLast", "LastName": ""},
                {"FirstName": "Ada", "LastName": f"Step2-{u}"},
            ],
        },
    )
    job_id = out["jobId"]
    assert len(job_id) == 18 and job_id.startswith("750")
    opened = out["opened"]
    assert (opened["id"], opened["state"]) == (job_id, "Open")
    assert (opened["object"], opened["operation"]) == ("Contact", "insert")
    # close() replaces jsforce's cached job info with the PATCH answer: it must be the job
    assert out["closed"]["id"] == job_id
    assert out["closed"]["state"] in ("UploadComplete", "InProgress", "JobComplete")
    polled = out["polled"]
    assert polled["state"] == "JobComplete"
    assert (polled["numberRecordsProcessed"], polled["numberRecordsFailed"]) == (3, 1)

    results = out["results"]
    assert {r["LastName"] for r in results["successfulResults"]} == {f"Step1-{u}", f"Step2-{u}"}
    assert {r["FirstName"] for r in results["successfulResults"]} == {"Zoé", "Ada"}
    assert [(r["FirstName"], r["sf__Error"]) for r in results["failedResults"]] == [
        ("NoLast", MISSING_LASTNAME)
    ]
    assert results["unprocessedRecords"] == []

    raw = out["raw"]
    assert raw["successfulResults"].startswith('"sf__Id","sf__Created",')
    assert raw["failedResults"].startswith('"sf__Id","sf__Error",')
    assert len(data_lines(raw["successfulResults"])) == 2
    assert len(data_lines(raw["failedResults"])) == 1
    assert data_lines(raw["unprocessedRecords"]) == []

    ids = {r["sf__Id"] for r in results["successfulResults"]}
    assert {r["Id"] for r in rows_where(db, "Contact", "Id", list(ids))} == ids


def test_failed_job_rows_are_unprocessed(js: JS, db: DB) -> None:
    u = unique("jsbogus")
    out = js.run(
        "failed",
        {
            "object": "Contact",
            "operation": "insert",
            "input": [
                {"LastName": f"U1-{u}", "Bogus__c": "1"},
                {"LastName": f"U2-{u}", "Bogus__c": "2"},
            ],
        },
    )
    assert out["pollError"]["message"] == f"Ingest job failed to complete due to: {FIELD_NOT_FOUND}"
    assert out["final"]["state"] == "Failed"
    assert out["final"]["errorMessage"] == FIELD_NOT_FOUND
    assert out["final"]["numberRecordsProcessed"] == 0
    results = out["results"]
    assert results["successfulResults"] == []
    assert results["failedResults"] == []
    assert results["unprocessedRecords"] == [
        {"LastName": f"U1-{u}", "Bogus__c": "1"},
        {"LastName": f"U2-{u}", "Bogus__c": "2"},
    ]
    assert rows_where(db, "Contact", "LastName", [f"U1-{u}", f"U2-{u}"]) == []

    # loadAndWaitForResults surfaces the same failure as an exception
    err = js.run(
        "load",
        {"object": "Contact", "operation": "insert", "input": [{"LastName": u, "Bogus__c": "x"}]},
        ok=False,
    )
    assert FIELD_NOT_FOUND in err["error"]["message"]


def test_abort_and_delete(js: JS, db: DB) -> None:
    u = unique("jsabort")
    out = js.run(
        "abort",
        {"object": "Contact", "operation": "insert", "input": [{"LastName": f"Abort-{u}"}]},
    )
    assert out["opened"]["state"] == "Open"
    assert (out["aborted"]["id"], out["aborted"]["state"]) == (out["jobId"], "Aborted")
    assert out["pollError"]["message"] == "Job has been aborted"
    assert out["deleteError"] is None
    assert out["checkAfterDelete"]["errorCode"] == "NOT_FOUND"
    assert out["checkAfterDelete"]["message"] == "The requested resource does not exist"
    assert rows_where(db, "Contact", "LastName", [f"Abort-{u}"]) == []


def test_unknown_object_error(js: JS) -> None:
    out = js.run(
        "load",
        {"object": "NoSuchThing__c", "operation": "insert", "input": [{"Name": "x"}]},
        ok=False,
    )
    assert out["error"]["errorCode"] == "INVALIDENTITY"
    assert out["error"]["message"] == "Entity 'NoSuchThing__c' is not supported by the Bulk API."
