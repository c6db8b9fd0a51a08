"""REST sObject rows over raw HTTP on SQLite and PostgreSQL: create, update, upsert, delete,
read by external id, HEAD and conditional headers, each status code and error body; every
validation error of the engine comes back exactly as the same row's error in a bulk job.
"""

from __future__ import annotations

import csv
import io
import time
from email.utils import formatdate
from typing import Any

import httpx
import pytest
from bulk2_helpers import db_one, db_query, only_error, run_job, unknown_id
from conftest import API, Server, unique

D = f"/services/data/v{API}"


def rest_error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """A REST error body: a JSON list of {message, errorCode, fields}; returns the first."""
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body = r.json()
    assert isinstance(body, list) and body, body
    assert body[0]["errorCode"] == code, body
    assert isinstance(body[0]["message"], str) and body[0]["message"], body
    return dict(body[0])


def create(http: httpx.Client, obj: str, body: dict[str, Any]) -> str:
    r = http.post(f"{D}/sobjects/{obj}", json=body)
    assert r.status_code == 201, r.text
    out = r.json()
    assert out == {"id": out["id"], "success": True, "errors": []}, out
    assert r.headers["location"] == f"{D}/sobjects/{obj}/{out['id']}"
    return str(out["id"])


def _csv(body: dict[str, Any]) -> str:
    """The same record as a bulk CSV: what a loader would upload for it."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(body)
    w.writerow(["#N/A" if v is None else str(v).lower() if isinstance(v, bool) else v
                for v in body.values()])  # fmt: skip
    return out.getvalue()


# ---------------------------------------------------------------- create


def test_create_stores_the_same_row_as_a_bulk_insert(http: httpx.Client, server: Server) -> None:
    tag = unique("same")
    body = {"Name": tag, "Sku__c": tag[-20:], "Quantity__c": 3, "Price__c": 12.345,
            "Active__c": True, "Released__c": "2024-02-29", "Color__c": "Red",
            "Seen_At__c": "2024-01-02T03:04:05.678+01:00", "Notes__c": "x\ny"}  # fmt: skip
    rest_id = create(http, "Widget__c", body)
    bulk_body = dict(body, Sku__c=tag[-19:] + "b")
    job = run_job(http, "Widget__c", "insert", _csv(bulk_body))
    assert job["numberRecordsProcessed"] == 1 and job["numberRecordsFailed"] == 0, job
    rest_row = db_one(server, "Widget__c", rest_id)
    bulk_id = db_query(
        server, 'SELECT "Id" FROM "Widget__c" WHERE "Sku__c" = ?', (tag[-19:] + "b",)
    )
    bulk_row = db_one(server, "Widget__c", bulk_id[0]["Id"])
    skip = {"id", "sku__c", "createddate", "lastmodifieddate", "systemmodstamp"}
    assert {k.lower(): v for k, v in rest_row.items() if k.lower() not in skip} == {
        k.lower(): v for k, v in bulk_row.items() if k.lower() not in skip
    }
    assert rest_row["Price__c"] == 12.35 and rest_row["Active__c"] == 1


# Each a Widget__c body the engine refuses, and the error it must give.
ENGINE_ERRORS = [
    ({"Quantity__c": 1}, "REQUIRED_FIELD_MISSING"),
    ({"Name": "x" * 81}, "STRING_TOO_LONG"),
    ({"Name": "w", "Count__c": "abc"}, "INVALID_TYPE_ON_FIELD_IN_RECORD"),
    ({"Name": "w", "Active__c": "maybe"}, "INVALID_TYPE_ON_FIELD_IN_RECORD"),
    ({"Name": "w", "Released__c": "2024-13-45"}, "INVALID_TYPE_ON_FIELD_IN_RECORD"),
    ({"Name": "w", "Email__c": "not-an-email"}, "INVALID_EMAIL_ADDRESS"),
    ({"Name": "w", "Ratio__c": 1000}, "NUMBER_OUTSIDE_VALID_RANGE"),
    ({"Name": "w", "Account__c": "garbage"}, "MALFORMED_ID"),
    ({"Name": "w", "Account__c": unknown_id("001")}, "INVALID_CROSS_REFERENCE_KEY"),
    ({"Name": "w", "CreatedDate": "2020-01-01T00:00:00Z"}, "INVALID_FIELD_FOR_INSERT_UPDATE"),
    ({"Name": "w", "Account__r": {"External_Id__c": "no-such-parent"}}, "INVALID_FIELD"),
]


@pytest.mark.parametrize(("body", "code"), ENGINE_ERRORS, ids=[c for _, c in ENGINE_ERRORS])
def test_each_engine_error_is_the_bulk_jobs_error(
    http: httpx.Client, body: dict[str, Any], code: str
) -> None:
    r = http.post(f"{D}/sobjects/Widget__c", json=body)
    err = rest_error(r, 400, code)
    header_body = {("Account__r.External_Id__c" if k == "Account__r" else k):
                   (v["External_Id__c"] if isinstance(v, dict) else v) for k, v in body.items()}  # fmt: skip
    job = run_job(http, "Widget__c", "insert", _csv(header_body))
    bulk = only_error(http, job["id"], _csv(header_body).splitlines()[0])
    fields = ",".join(err["fields"])
    assert bulk == f"{code}:{err['message']}:{fields + ' --' if fields else '--'}", (bulk, err)


def test_duplicate_unique_value_is_refused_and_names_the_holder(http: httpx.Client) -> None:
    sku = unique("d")[-20:]
    first = create(http, "Widget__c", {"Name": "a", "Sku__c": sku})
    err = rest_error(
        http.post(f"{D}/sobjects/Widget__c", json={"Name": "b", "Sku__c": sku}), 400,
        "DUPLICATE_VALUE",
    )  # fmt: skip
    assert first[:15] in err["message"]


def test_relationship_value_in_the_body_links_the_parent(
    http: httpx.Client, server: Server
) -> None:
    ext = unique("acc")
    account = create(http, "Account", {"Name": "Parent", "External_Id__c": ext})
    contact = create(http, "Contact", {"LastName": "Child", "Account": {"External_Id__c": ext}})
    assert db_one(server, "Contact", contact)["AccountId"] == account
    widget = create(http, "Widget__c", {"Name": "w", "Account__r": {"External_Id__c": ext}})
    assert db_one(server, "Widget__c", widget)["Account__c"] == account


def test_request_errors(http: httpx.Client) -> None:
    rest_error(http.post(f"{D}/sobjects/Nope__c", json={"Name": "x"}), 404, "NOT_FOUND")
    err = rest_error(http.post(f"{D}/sobjects/Contact", json={"Nope__c": 1}), 400, "INVALID_FIELD")
    assert err["message"] == "No such column 'Nope__c' on sobject of type Contact"
    bad = http.post(
        f"{D}/sobjects/Contact",
        content=b'{"LastName": ',
        headers={"Content-Type": "application/json"},
    )
    rest_error(bad, 400, "JSON_PARSER_ERROR")
    rest_error(
        http.post(f"{D}/sobjects/Contact", json=[{"LastName": "x"}]), 400, "JSON_PARSER_ERROR"
    )
    rest_error(
        http.post(f"{D}/sobjects/Contact", json={"LastName": {"nested": 1}}),
        400,
        "JSON_PARSER_ERROR",
    )
    rest_error(
        http.post(f"{D}/sobjects/Contact", json={"LastName": ["a"]}), 400, "JSON_PARSER_ERROR"
    )
    rest_error(http.post(f"{D}/sobjects/Contact", content=b""), 400, "JSON_PARSER_ERROR")
    rest_error(http.put(f"{D}/sobjects/Contact", json={}), 405, "METHOD_NOT_ALLOWED")
    rest_error(http.post("/services/data/v99.0/sobjects/Contact", json={}), 404, "NOT_FOUND")
    r = http.post("/services/data/v19.0/sobjects/Contact", json={})
    rest_error(r, 410, "UNSUPPORTED_API_VERSION")


# ---------------------------------------------------------------- update and delete


def test_update_then_delete(http: httpx.Client, server: Server) -> None:
    rid = create(http, "Contact", {"LastName": "Before", "Email": "a@example.com"})
    r = http.patch(f"{D}/sobjects/Contact/{rid}", json={"LastName": "After", "Email": None})
    assert r.status_code == 204 and r.content == b"", r.text
    row = db_one(server, "Contact", rid)
    assert row["LastName"] == "After" and row["Email"] is None
    # a 15-character Id names the same record
    assert (
        http.patch(f"{D}/sobjects/Contact/{rid[:15]}", json={"FirstName": "F"}).status_code == 204
    )
    r = http.patch(f"{D}/sobjects/Contact/{rid}", json={"LastName": None})
    assert rest_error(r, 400, "REQUIRED_FIELD_MISSING")["fields"] == ["LastName"]
    r = http.delete(f"{D}/sobjects/Contact/{rid}")
    assert r.status_code == 204 and r.content == b""
    assert db_one(server, "Contact", rid)["IsDeleted"] == 1
    rest_error(http.get(f"{D}/sobjects/Contact/{rid}"), 404, "ENTITY_IS_DELETED")
    rest_error(http.delete(f"{D}/sobjects/Contact/{rid}"), 404, "ENTITY_IS_DELETED")
    rest_error(http.patch(f"{D}/sobjects/Contact/{rid}", json={"LastName": "x"}), 404,
               "ENTITY_IS_DELETED")  # fmt: skip


def test_unknown_and_malformed_ids(http: httpx.Client) -> None:
    for method in ("PATCH", "DELETE"):
        kwargs: dict[str, Any] = {"json": {"LastName": "x"}} if method == "PATCH" else {}
        r = http.request(method, f"{D}/sobjects/Contact/{unknown_id('003')}", **kwargs)
        assert rest_error(r, 404, "NOT_FOUND")["message"] == "The requested resource does not exist"
        r = http.request(method, f"{D}/sobjects/Contact/{unknown_id('001')}", **kwargs)
        rest_error(r, 404, "NOT_FOUND")
        r = http.request(method, f"{D}/sobjects/Contact/notanid", **kwargs)
        err = rest_error(r, 404, "NOT_FOUND")
        assert (
            err["message"]
            == "Provided external ID field does not exist or is not accessible: notanid"
        )


def test_if_unmodified_since(http: httpx.Client, server: Server) -> None:
    rid = create(http, "Contact", {"LastName": "Cond"})
    past = formatdate(time.time() - 3600, usegmt=True)
    r = http.patch(f"{D}/sobjects/Contact/{rid}", json={"LastName": "No"},
                   headers={"If-Unmodified-Since": past})  # fmt: skip
    rest_error(r, 412, "PRECONDITION_FAILED")
    assert db_one(server, "Contact", rid)["LastName"] == "Cond"
    future = formatdate(time.time() + 3600, usegmt=True)
    r = http.patch(f"{D}/sobjects/Contact/{rid}", json={"LastName": "Yes"},
                   headers={"If-Unmodified-Since": future})  # fmt: skip
    assert r.status_code == 204, r.text
    r = http.patch(f"{D}/sobjects/Contact/{rid}", json={"LastName": "Bad"},
                   headers={"If-Unmodified-Since": "yesterday"})  # fmt: skip
    rest_error(r, 400, "INVALID_INPUT")
    assert db_one(server, "Contact", rid)["LastName"] == "Yes"


def test_get_head_and_if_modified_since(http: httpx.Client) -> None:
    rid = create(http, "Contact", {"LastName": "Read"})
    r = http.head(f"{D}/sobjects/Contact/{rid}")
    assert r.status_code == 200 and r.content == b""
    future = formatdate(time.time() + 3600, usegmt=True)
    r = http.get(f"{D}/sobjects/Contact/{rid}", headers={"If-Modified-Since": future})
    assert r.status_code == 304 and r.content == b""
    past = formatdate(time.time() - 3600, usegmt=True)
    r = http.get(f"{D}/sobjects/Contact/{rid}", headers={"If-Modified-Since": past})
    assert r.status_code == 200 and r.json()["LastName"] == "Read"


# ---------------------------------------------------------------- upsert and external ids


def test_upsert_creates_then_updates(http: httpx.Client, server: Server) -> None:
    ext = unique("up")
    url = f"{D}/sobjects/Account/External_Id__c/{ext}"
    r = http.patch(url, json={"Name": "First"})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created == {"id": created["id"], "success": True, "errors": [], "created": True}
    r = http.patch(url, json={"Name": "Second"})
    assert r.status_code == 200, r.text
    assert r.json() == {"id": created["id"], "success": True, "errors": [], "created": False}
    row = db_one(server, "Account", created["id"])
    assert row["Name"] == "Second" and row["External_Id__c"] == ext
    # before API 46.0: 204 on update, no `created`
    old = f"/services/data/v45.0/sobjects/Account/External_Id__c/{ext}"
    r = http.patch(old, json={"Name": "Third"})
    assert r.status_code == 204 and r.content == b""
    r = http.patch(
        f"/services/data/v45.0/sobjects/Account/External_Id__c/{ext}x", json={"Name": "N"}
    )
    assert r.status_code == 201 and "created" not in r.json()
    # external ids match case-insensitively, as in bulk upserts
    r = http.patch(f"{D}/sobjects/Account/External_Id__c/{ext.upper()}", json={"Name": "Fourth"})
    assert r.status_code == 200 and r.json()["id"] == created["id"]


def test_upsert_and_get_by_external_id_errors(http: httpx.Client, server: Server) -> None:
    code = unique("c")[-20:]
    ids = [create(http, "Widget__c", {"Name": n, "Code__c": code}) for n in ("a", "b")]
    for method in ("GET", "PATCH"):
        kwargs: dict[str, Any] = {"json": {"Name": "z"}} if method == "PATCH" else {}
        r = http.request(method, f"{D}/sobjects/Widget__c/Code__c/{code}", **kwargs)
        assert r.status_code == 300, r.text
        assert sorted(r.json()) == sorted(f"{D}/sobjects/Widget__c/{i}" for i in ids)
    assert {db_one(server, "Widget__c", i)["Name"] for i in ids} == {"a", "b"}
    for field in ("Nope__c", "Name"):
        r = http.patch(f"{D}/sobjects/Widget__c/{field}/x", json={"Name": "z"})
        assert rest_error(r, 404, "NOT_FOUND")["message"] == (
            f"Provided external ID field does not exist or is not accessible: {field}"
        )
    rest_error(http.get(f"{D}/sobjects/Widget__c/Code__c/{code}-none"), 404, "NOT_FOUND")
    r = http.patch(f"{D}/sobjects/Widget__c/Sku__c/{unique('s')[-20:]}", json={"Quantity__c": 1})
    rest_error(r, 400, "REQUIRED_FIELD_MISSING")


def test_get_by_external_id(http: httpx.Client) -> None:
    ext = unique("get")
    rid = create(http, "Account", {"Name": "ByExt", "External_Id__c": ext})
    r = http.get(f"{D}/sobjects/Account/External_Id__c/{ext}", params={"fields": "Name"})
    assert r.status_code == 200, r.text
    assert r.json() == {
        "attributes": {"type": "Account", "url": f"{D}/sobjects/Account/{rid}"},
        "Name": "ByExt",
    }
    r = http.head(f"{D}/sobjects/Account/External_Id__c/{ext}")
    assert r.status_code == 200 and r.content == b""
    http.delete(f"{D}/sobjects/Account/{rid}")
    rest_error(http.get(f"{D}/sobjects/Account/External_Id__c/{ext}"), 404, "NOT_FOUND")


# ---------------------------------------------------------------- resource map


def test_resource_map_lists_only_what_exists(http: httpx.Client) -> None:
    r = http.get(f"{D}/")
    assert r.status_code == 200
    resources = r.json()
    assert {"sobjects", "jobs", "limits", "composite", "identity"} <= set(resources)
    for name in ("tooling", "metadata", "search", "recent", "analytics", "chatter"):
        assert name not in resources
    assert http.post(resources["composite"], json={}).status_code == 400  # there, and a 400


def test_org_schema_rules_through_rest(org: httpx.Client) -> None:
    """A schema imported from a describe: restricted picklists, multi-select order, defaults."""
    r = org.post(f"{D}/sobjects/Contact", json={"LastName": "P", "Level__c": "Quaternary"})
    err = rest_error(r, 400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST")
    assert err["fields"] == ["Level__c"]
    r = org.post(f"{D}/sobjects/Contact", json={"LastName": "P", "Languages__c": "French;English"})
    assert r.status_code == 201, r.text
    got = org.get(f"{D}/sobjects/Contact/{r.json()['id']}").json()
    assert got["Languages__c"] == "English;French" and got["Tier__c"] == "Bronze"
