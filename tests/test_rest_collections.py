"""sObject collections, sObject trees and composite requests over raw HTTP, on SQLite and
PostgreSQL: result shapes, allOrNone rollbacks that leave tables exactly as they were, limits.
"""

from __future__ import annotations

from typing import Any

import httpx
from bulk2_helpers import db_one, db_query, unknown_id
from conftest import API, Server, unique
from test_rest_records import create, rest_error

D = f"/services/data/v{API}"
COLL = f"{D}/composite/sobjects"
ROLLED_BACK = {
    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "message": "Record rolled back because not all records were valid and the request was using "
    "AllOrNone header",
    "fields": [],
}
HALTED = [
    {
        "errorCode": "PROCESSING_HALTED",
        "message": "The transaction was rolled back since another operation in the same "
        "transaction failed.",
    }
]


def table(server: Server, name: str, *ids: str) -> tuple[Any, ...]:
    """What any write to a table changes: its row count, newest Id, newest SystemModstamp
    (every insert, update, delete and undelete stamps it) and deleted rows; and every column
    of the records `ids`. The session's shared server holds tens of thousands of rows by
    the time these run: reading them all, twice per test, took ~4 s a test."""
    marks = db_query(server, f'SELECT count(*) AS n, max("Id") AS id, max("SystemModstamp") '
                     f'AS stamp, sum(CASE WHEN "IsDeleted" THEN 1 ELSE 0 END) AS deleted '
                     f'FROM "{name}"')  # fmt: skip
    rows = [db_one(server, name, i) for i in ids]
    return (
        tuple(marks[0].values()),
        [tuple(sorted((k.lower(), v) for k, v in r.items())) for r in rows],
    )


def rec(obj: str, **fields: Any) -> dict[str, Any]:
    return {"attributes": {"type": obj}, **fields}


# ---------------------------------------------------------------- collections


def test_create_mixed_types_partial_success(http: httpx.Client, server: Server) -> None:
    tag = unique("mix")
    records = [rec("Account", Name=tag), rec("Contact", FirstName="no last name"),
               rec("Contact", LastName=tag), rec("Account", Name=tag)]  # fmt: skip
    r = http.post(COLL, json={"allOrNone": False, "records": records})
    assert r.status_code == 200, r.text
    out = r.json()
    assert [o["success"] for o in out] == [True, False, True, True]
    assert out[1] == {
        "success": False,
        "errors": [{"statusCode": "REQUIRED_FIELD_MISSING",
                    "message": "Required fields are missing: [LastName]", "fields": ["LastName"]}],
    }  # fmt: skip
    assert out[0]["id"].startswith("001") and out[2]["id"].startswith("003")
    assert db_one(server, "Contact", out[2]["id"])["LastName"] == tag
    assert len(db_query(server, 'SELECT "Id" FROM "Account" WHERE "Name" = ?', (tag,))) == 2


def test_all_or_none_rollback_leaves_every_table_exactly_as_before(
    http: httpx.Client, server: Server
) -> None:
    tag = unique("aon")
    updated = create(http, "Account", {"Name": tag})
    before = {t: table(server, t) for t in ("Account", "Contact")} | {
        "it": table(server, "Account", updated)
    }
    records = [rec("Account", Name=tag + "-new"), rec("Contact", LastName=tag),
               rec("Contact", LastName="x" * 81)]  # fmt: skip
    r = http.post(COLL, json={"allOrNone": True, "records": records})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out[0] == {"success": False, "errors": [ROLLED_BACK]}
    assert out[1] == {"success": False, "errors": [ROLLED_BACK]}
    assert out[2]["errors"][0]["statusCode"] == "STRING_TOO_LONG"
    update = [rec("Account", id=updated, Name="changed"), rec("Account", id=unknown_id("001"))]
    out = http.patch(COLL, json={"allOrNone": True, "records": update}).json()
    assert out[0] == {"id": updated, "success": False, "errors": [ROLLED_BACK]}
    assert out[1]["errors"][0]["statusCode"] == "INVALID_CROSS_REFERENCE_KEY"
    r = http.delete(COLL, params={"ids": f"{updated},{unknown_id('001')}", "allOrNone": "true"})
    assert r.json()[0] == {"id": updated, "success": False, "errors": [ROLLED_BACK]}
    out = http.delete(COLL, params={"ids": f"{updated},abc", "allOrNone": "true"}).json()
    assert out[0] == {"id": updated, "success": False, "errors": [ROLLED_BACK]}
    assert out[1]["errors"][0]["statusCode"] == "MALFORMED_ID"
    after = {t: table(server, t) for t in ("Account", "Contact")} | {
        "it": table(server, "Account", updated)
    }
    assert after == before


def test_more_than_200_records_is_refused_whole(http: httpx.Client, server: Server) -> None:
    tag = unique("big")
    records = [rec("Contact", LastName=tag) for _ in range(201)]
    r = http.post(COLL, json={"records": records})
    err = rest_error(r, 400, "EXCEEDED_ID_LIMIT")
    assert "200" in err["message"]
    assert db_query(server, 'SELECT "Id" FROM "Contact" WHERE "LastName" = ?', (tag,)) == []
    r = http.delete(COLL, params={"ids": ",".join([unknown_id("003")] * 201)})
    rest_error(r, 400, "EXCEEDED_ID_LIMIT")
    assert http.post(COLL, json={"records": records[:200]}).status_code == 200


def test_update_upsert_retrieve_delete(http: httpx.Client, server: Server) -> None:
    tag = unique("col")
    a, b = (create(http, "Account", {"Name": f"{tag}{n}", "External_Id__c": f"{tag}{n}"})
            for n in (1, 2))  # fmt: skip
    out = http.patch(COLL, json={"records": [rec("Account", id=a, Name="A"),
                                             rec("Account", Id=b, Name="B")]}).json()  # fmt: skip
    assert out == [
        {"id": a, "success": True, "errors": []},
        {"id": b, "success": True, "errors": []},
    ]
    r = http.patch(f"{COLL}/Account/External_Id__c", json={"allOrNone": False, "records": [
        rec("Account", External_Id__c=f"{tag}1", Name="A2"),
        rec("Account", External_Id__c=f"{tag}3", Name="C")]})  # fmt: skip
    out = r.json()
    assert out[0] == {"id": a, "success": True, "errors": [], "created": False}
    assert out[1]["created"] is True and out[1]["success"] is True
    c = out[1]["id"]
    r = http.get(f"{COLL}/Account", params={"ids": f"{a},{c},{unknown_id('001')}",
                                            "fields": "Name,External_Id__c"})  # fmt: skip
    got = r.json()
    assert got[0] == {"attributes": {"type": "Account", "url": f"{D}/sobjects/Account/{a}"},
                      "Name": "A2", "External_Id__c": f"{tag}1"}  # fmt: skip
    assert got[1]["Name"] == "C" and got[2] is None
    assert (
        http.post(f"{COLL}/Account", json={"ids": [b], "fields": ["Name"]}).json()[0]["Name"] == "B"
    )
    rest_error(
        http.get(f"{COLL}/Account", params={"ids": a, "fields": "Nope"}), 400, "INVALID_FIELD"
    )
    r = http.delete(COLL, params={"ids": f"{a},{b},{unknown_id('001')}"})
    out = r.json()
    assert out[:2] == [
        {"id": a, "success": True, "errors": []},
        {"id": b, "success": True, "errors": []},
    ]
    assert out[2]["success"] is False
    assert db_one(server, "Account", a)["IsDeleted"] == 1
    out = http.delete(COLL, params={"ids": a}).json()
    assert out[0]["errors"][0]["statusCode"] == "ENTITY_IS_DELETED"


def test_collection_request_errors(http: httpx.Client) -> None:
    rest_error(http.post(COLL, json={"records": [{"Name": "no type"}]}), 400, "INVALID_INPUT")
    rest_error(http.post(COLL, json={"records": [rec("Nope__c", Name="x")]}), 400, "INVALID_TYPE")
    rest_error(http.post(COLL, json={"records": [rec("Account", Nope__c=1)]}), 400, "INVALID_FIELD")
    rest_error(http.post(COLL, json={"records": "x"}), 400, "JSON_PARSER_ERROR")
    rest_error(http.patch(f"{COLL}/Account/Name", json={"records": []}), 404, "NOT_FOUND")
    rest_error(http.delete(COLL), 400, "INVALID_INPUT")
    out = http.patch(COLL, json={"records": [rec("Account", Name="no id")]}).json()
    assert out == [{"success": False, "errors": [{"statusCode": "MISSING_ARGUMENT",
                    "message": "Id not specified in an update call", "fields": []}]}]  # fmt: skip


# ---------------------------------------------------------------- sObject tree


def _tree(tag: str, bad_email: bool = False) -> dict[str, Any]:
    def contact(ref: str, n: int) -> dict[str, Any]:
        email = "not-an-email" if bad_email and n == 2 else f"{ref}@example.com"
        return {"attributes": {"type": "Contact", "referenceId": ref}, "LastName": f"{tag}{n}",
                "Email": email}  # fmt: skip

    return {"records": [
        {"attributes": {"type": "Account", "referenceId": "acc1"}, "Name": tag,
         "Contacts": {"records": [contact("c1", 1), contact("c2", 2)]}},
        {"attributes": {"type": "Account", "referenceId": "acc2"}, "Name": tag,
         "Opportunities": {"records": [{"attributes": {"type": "Opportunity", "referenceId": "o1"},
                           "Name": tag, "StageName": "Prospecting", "CloseDate": "2030-01-01"}]}},
    ]}  # fmt: skip


def test_tree_creates_parents_then_children(http: httpx.Client, server: Server) -> None:
    tag = unique("tree")
    r = http.post(f"{D}/composite/tree/Account", json=_tree(tag))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["hasErrors"] is False
    assert [x["referenceId"] for x in body["results"]] == ["acc1", "acc2", "c1", "c2", "o1"]
    ids = {x["referenceId"]: x["id"] for x in body["results"]}
    assert db_one(server, "Contact", ids["c2"])["AccountId"] == ids["acc1"]
    assert db_one(server, "Opportunity", ids["o1"])["AccountId"] == ids["acc2"]


def test_tree_with_a_bad_child_writes_nothing(http: httpx.Client, server: Server) -> None:
    tag = unique("badtree")
    before = {t: table(server, t) for t in ("Account", "Contact", "Opportunity")}
    r = http.post(f"{D}/composite/tree/Account", json=_tree(tag, bad_email=True))
    assert r.status_code == 400, r.text
    assert r.json() == {"hasErrors": True, "results": [{"referenceId": "c2", "errors": [
        {"statusCode": "INVALID_EMAIL_ADDRESS", "message": "Email: invalid email address: "
         "not-an-email", "fields": ["Email"]}]}]}  # fmt: skip
    assert {t: table(server, t) for t in ("Account", "Contact", "Opportunity")} == before


def test_tree_request_errors(http: httpx.Client) -> None:
    dup = {"records": [{"attributes": {"type": "Account", "referenceId": "x"}, "Name": "a"},
                       {"attributes": {"type": "Account", "referenceId": "x"}, "Name": "b"}]}  # fmt: skip
    r = http.post(f"{D}/composite/tree/Account", json=dup)
    assert r.status_code == 400 and r.json()["hasErrors"] is True
    assert [x["referenceId"] for x in r.json()["results"]] == ["x", "x"]
    bad_rel = {"records": [{"attributes": {"type": "Account", "referenceId": "a"}, "Name": "a",
                            "Nopes": {"records": []}}]}  # fmt: skip
    rest_error(http.post(f"{D}/composite/tree/Account", json=bad_rel), 400, "INVALID_FIELD")
    many = {"records": [{"attributes": {"type": "Account", "referenceId": f"r{i}"}, "Name": "a"}
                        for i in range(201)]}  # fmt: skip
    rest_error(http.post(f"{D}/composite/tree/Account", json=many), 400, "EXCEEDED_ID_LIMIT")
    rest_error(http.post(f"{D}/composite/tree/Nope__c", json=many), 404, "NOT_FOUND")


# ---------------------------------------------------------------- composite


def test_composite_references_between_subrequests(http: httpx.Client, server: Server) -> None:
    tag = unique("comp")
    subs = [
        {"method": "POST", "url": f"{D}/sobjects/Account", "referenceId": "acc",
         "body": {"Name": tag}},
        {"method": "POST", "url": f"{D}/sobjects/Contact", "referenceId": "con",
         "body": {"LastName": tag, "AccountId": "@{acc.id}"}},
        {"method": "GET", "url": f"{D}/sobjects/Account/@{{acc.id}}?fields=Name",
         "referenceId": "read"},
        {"method": "POST", "url": COLL, "referenceId": "many",
         "body": {"records": [rec("Contact", LastName=tag, AccountId="@{acc.id}")]}},
        {"method": "PATCH", "url": f"{D}/sobjects/Contact/@{{many[0].id}}",
         "referenceId": "upd", "body": {"FirstName": "@{read.Name}"}},
    ]  # fmt: skip
    r = http.post(f"{D}/composite", json={"allOrNone": True, "compositeRequest": subs})
    assert r.status_code == 200, r.text
    out = r.json()["compositeResponse"]
    assert [o["httpStatusCode"] for o in out] == [201, 201, 200, 200, 204]
    assert [o["referenceId"] for o in out] == ["acc", "con", "read", "many", "upd"]
    acc = out[0]["body"]["id"]
    assert out[0]["httpHeaders"] == {"Location": f"{D}/sobjects/Account/{acc}"}
    assert out[2]["body"]["Name"] == tag and out[4]["body"] is None
    assert db_one(server, "Contact", out[1]["body"]["id"])["AccountId"] == acc
    row = db_one(server, "Contact", out[3]["body"][0]["id"])
    assert row["AccountId"] == acc and row["FirstName"] == tag


def test_composite_all_or_none_rolls_back_everything(http: httpx.Client, server: Server) -> None:
    tag = unique("compaon")
    before = {t: table(server, t) for t in ("Account", "Contact")}
    subs = [
        {"method": "POST", "url": f"{D}/sobjects/Account", "referenceId": "acc",
         "body": {"Name": tag}},
        {"method": "POST", "url": f"{D}/sobjects/Contact", "referenceId": "bad",
         "body": {"FirstName": tag, "AccountId": "@{acc.id}"}},
        {"method": "POST", "url": f"{D}/sobjects/Contact", "referenceId": "after",
         "body": {"LastName": tag}},
    ]  # fmt: skip
    out = http.post(f"{D}/composite", json={"allOrNone": True, "compositeRequest": subs}).json()
    res = out["compositeResponse"]
    assert [o["httpStatusCode"] for o in res] == [400, 400, 400]
    assert res[0]["body"] == HALTED and res[2]["body"] == HALTED
    assert res[1]["body"][0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert {t: table(server, t) for t in ("Account", "Contact")} == before
    # without allOrNone the first stays, and a reference to the failed one halts its user
    subs[2]["body"] = {"LastName": tag, "AccountId": "@{bad.id}"}
    res = http.post(f"{D}/composite", json={"compositeRequest": subs}).json()["compositeResponse"]
    assert [o["httpStatusCode"] for o in res] == [201, 400, 400]
    assert res[2]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    assert db_one(server, "Account", res[0]["body"]["id"])["Name"] == tag


def test_composite_request_errors(http: httpx.Client) -> None:
    sub = {"method": "GET", "url": f"{D}/sobjects/Account/{unknown_id('001')}", "referenceId": "r"}
    subs = [dict(sub, referenceId=f"r{i}") for i in range(26)]
    rest_error(
        http.post(f"{D}/composite", json={"compositeRequest": subs}), 400, "EXCEEDED_ID_LIMIT"
    )
    rest_error(http.post(f"{D}/composite", json={"compositeRequest": [sub, sub]}), 400,
               "INVALID_INPUT")  # fmt: skip
    rest_error(http.post(f"{D}/composite", json={}), 400, "JSON_PARSER_ERROR")
    out = http.post(f"{D}/composite", json={"compositeRequest": [sub]}).json()
    assert out["compositeResponse"][0]["httpStatusCode"] == 404
    nowhere = dict(sub, url=f"{D}/tooling/sobjects")
    out = http.post(f"{D}/composite", json={"compositeRequest": [nowhere]}).json()
    assert out["compositeResponse"][0]["httpStatusCode"] == 404


def test_composite_reads_through_the_other_rest_resources(http: httpx.Client) -> None:
    subs = [
        {"method": "GET", "url": f"{D}/sobjects/Contact/describe", "referenceId": "d"},
        {"method": "GET", "url": f"{D}/limits", "referenceId": "lim"},
        {"method": "POST", "url": f"{D}/sobjects/Contact", "referenceId": "c",
         "body": {"LastName": "@{d.label}"}},
        {"method": "GET", "url": f"{D}/sobjects/Nope__c/describe", "referenceId": "nope"},
        {"method": "DELETE", "url": f"{D}/limits", "referenceId": "del"},
    ]  # fmt: skip
    out = http.post(f"{D}/composite", json={"compositeRequest": subs}).json()["compositeResponse"]
    assert [o["httpStatusCode"] for o in out] == [200, 200, 201, 404, 405]
    assert out[0]["body"]["name"] == "Contact" and "DailyBulkApiBatches" in out[1]["body"]
    row = http.get(f"{D}/sobjects/Contact/{out[2]['body']['id']}").json()
    assert row["LastName"] == "Contact"
    assert out[3]["body"][0]["errorCode"] == "NOT_FOUND"


def test_big_bodies(http: httpx.Client, server: Server) -> None:
    tag = unique("bigbody")
    records = [rec("Widget__c", Name=tag, Notes__c="n" * 10_000) for _ in range(200)]
    out = http.post(COLL, json={"allOrNone": True, "records": records}).json()
    assert all(o["success"] for o in out), out[:1]
    assert len(db_query(server, 'SELECT "Id" FROM "Widget__c" WHERE "Name" = ?', (tag,))) == 200
    huge = [rec("Widget__c", Name=tag, Notes__c="n" * 32_000) for _ in range(700)]
    rest_error(http.post(COLL, json={"records": huge}), 413, "REQUEST_ENTITY_TOO_LARGE")


def test_duplicate_external_ids_in_one_upsert_fail_both_as_in_bulk(http: httpx.Client) -> None:
    ext = unique("dupext")
    records = [rec("Account", External_Id__c=ext, Name="a"), rec("Account", External_Id__c=ext,
               Name="b"), rec("Account", External_Id__c=ext + "x", Name="c")]  # fmt: skip
    out = http.patch(f"{COLL}/Account/External_Id__c", json={"records": records}).json()
    assert [o["success"] for o in out] == [False, False, True]
    assert out[0]["errors"] == [{"statusCode": "DUPLICATE_EXTERNAL_ID", "message": "Duplicate "
                                 f"external id specified: {ext}", "fields": ["External_Id__c"]}]  # fmt: skip


def test_composite_reference_into_a_list_of_a_result(http: httpx.Client, server: Server) -> None:
    tag = unique("compidx")
    tree = {"records": [{"attributes": {"type": "Account", "referenceId": "a"}, "Name": tag}]}
    subs = [
        {"method": "POST", "url": f"{D}/composite/tree/Account", "referenceId": "t", "body": tree},
        {"method": "POST", "url": f"{D}/sobjects/Contact", "referenceId": "c",
         "body": {"LastName": tag, "AccountId": "@{t.results[0].id}"}},
        {"method": "GET", "url": f"{D}/sobjects/Contact/@{{c.id}}?fields=AccountId",
         "referenceId": "r"},
        {"method": "GET", "url": f"{D}/sobjects/Account/@{{t.results[1].id}}", "referenceId": "x"},
    ]  # fmt: skip
    out = http.post(f"{D}/composite", json={"compositeRequest": subs}).json()["compositeResponse"]
    assert [o["httpStatusCode"] for o in out] == [201, 201, 200, 400]
    assert out[2]["body"]["AccountId"] == out[0]["body"]["results"][0]["id"]
    assert out[3]["body"][0]["errorCode"] == "PROCESSING_HALTED"


def test_composite_query_subrequests(http: httpx.Client, server: Server) -> None:
    tag = unique("compq")
    subs = [
        {"method": "POST", "url": f"{D}/sobjects/Account", "referenceId": "acc",
         "body": {"Name": tag}},
        {"method": "GET", "referenceId": "q",
         "url": f"{D}/query?q=SELECT+Id,+Name+FROM+Account+WHERE+Name+=+'{tag}'"},
        {"method": "PATCH", "url": f"{D}/sobjects/Account/@{{q.records[0].Id}}",
         "referenceId": "upd", "body": {"Description": "found by query"}},
        {"method": "GET", "url": f"{D}/query?q=SELECT+Nope+FROM+Account", "referenceId": "bad"},
    ]  # fmt: skip
    out = http.post(f"{D}/composite", json={"compositeRequest": subs}).json()["compositeResponse"]
    assert [o["httpStatusCode"] for o in out] == [201, 200, 204, 400]
    acc = out[0]["body"]["id"]
    assert out[1]["body"]["totalSize"] == 1 and out[1]["body"]["records"][0]["Id"] == acc
    assert db_one(server, "Account", acc)["Description"] == "found by query"
    assert out[3]["body"][0]["errorCode"] == "INVALID_FIELD"


def test_composite_all_or_none_overrides_a_collections(http: httpx.Client, server: Server) -> None:
    tag = unique("compcoll")
    before = {t: table(server, t) for t in ("Account", "Contact")}
    subs = [
        {"method": "POST", "url": f"{D}/sobjects/Contact", "referenceId": "first",
         "body": {"LastName": tag}},
        {"method": "POST", "url": COLL, "referenceId": "coll", "body": {"allOrNone": False,
         "records": [rec("Account", Name=tag), rec("Account", Name="x" * 300)]}},
        {"method": "POST", "url": f"{D}/sobjects/Contact", "referenceId": "last",
         "body": {"LastName": tag}},
    ]  # fmt: skip
    out = http.post(f"{D}/composite", json={"allOrNone": True, "compositeRequest": subs}).json()
    res = out["compositeResponse"]
    assert [o["httpStatusCode"] for o in res] == [400, 200, 400]
    assert res[0]["body"] == HALTED and res[2]["body"] == HALTED
    assert res[1]["body"][0] == {"success": False, "errors": [ROLLED_BACK]}
    assert res[1]["body"][1]["errors"][0]["statusCode"] == "STRING_TOO_LONG"
    assert {t: table(server, t) for t in ("Account", "Contact")} == before
    # without the outer allOrNone the collection's own (false) applies: one Account is written
    res = http.post(f"{D}/composite", json={"compositeRequest": subs}).json()["compositeResponse"]
    assert [o["httpStatusCode"] for o in res] == [201, 200, 201]
    assert [r["success"] for r in res[1]["body"]] == [True, False]
    assert db_one(server, "Account", res[1]["body"][0]["id"])["Name"] == tag
