"""jsforce 3.10.16 record calls (tests/js/records.mjs) against a real server, on SQLite and
PostgreSQL: create/update/upsert/destroy of one record (sObject rows) and of lists (sObject
collections, allOrNone included). Needs node and `make js`; otherwise skipped with the reason.
"""

from __future__ import annotations

from typing import Any

import pytest
from bulk2_helpers import db_one, db_query
from conftest import NodeScript, Server, unique

MISSING = [{"statusCode": "REQUIRED_FIELD_MISSING", "message": "Required fields are missing: "
            "[LastName]", "fields": ["LastName"]}]  # fmt: skip


class JS(NodeScript):
    script = "records.mjs"


@pytest.fixture
def js(node: str, server: Server) -> JS:
    return JS(node, server)


def test_single_records(js: JS, server: Server) -> None:
    tag, ext = unique("jsone"), unique("jsext")
    out: dict[str, Any] = js.run("single", {"tag": tag, "ext": ext})
    rid = out["created"]["id"]
    assert out["created"] == {"id": rid, "success": True, "errors": []}
    assert out["updated"] == {"id": rid, "success": True, "errors": []}
    assert out["inserted"]["created"] is True and out["upserted"]["created"] is False
    assert out["upserted"]["id"] == out["inserted"]["id"]
    assert out["record"]["FirstName"] == "Ada" and out["record"]["LastName"] == tag
    assert out["destroyed"] == {"id": rid, "success": True, "errors": []}
    assert out["failed"]["error"]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert out["gone"]["error"]["errorCode"] == "ENTITY_IS_DELETED"
    assert db_one(server, "Contact", rid)["IsDeleted"] == 1
    upserted = db_one(server, "Contact", out["inserted"]["id"])
    assert upserted["LastName"] == f"{tag}-v" and upserted["External_Id__c"] == ext


def test_lists_use_collections(js: JS, server: Server) -> None:
    tag, ext = unique("jsmany"), unique("jsmext")
    out: dict[str, Any] = js.run("many", {"tag": tag, "ext": ext})
    created = out["created"]
    assert [r["success"] for r in created] == [True, False, True]
    assert created[1] == {"success": False, "errors": MISSING}
    ids = [created[0]["id"], created[2]["id"]]
    assert out["updated"] == [{"id": i, "success": True, "errors": []} for i in ids]
    assert [r["created"] for r in out["upserted"]] == [True, True]
    assert out["upsertedAgain"][0] == {"id": out["upserted"][0]["id"], "success": True,
                                       "errors": [], "created": False}  # fmt: skip
    assert [(r["LastName"], r["FirstName"]) for r in out["retrieved"]] == [
        (f"{tag}-1", "F0"), (f"{tag}-3", "F1")
    ]  # fmt: skip
    assert out["destroyed"] == [{"id": i, "success": True, "errors": []} for i in ids]
    assert all(db_one(server, "Contact", i)["IsDeleted"] == 1 for i in ids)
    a = db_one(server, "Contact", out["upserted"][0]["id"])
    assert (a["LastName"], a["External_Id__c"]) == (f"{tag}-a2", f"{ext}-a")
    rolled = out["rolledBack"]["ok"]
    assert [r["success"] for r in rolled] == [False, False]
    assert rolled[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert rolled[1]["errors"] == MISSING
    assert (
        db_query(server, 'SELECT "Id" FROM "Contact" WHERE "LastName" = ?', (f"{tag}-aon",)) == []
    )
