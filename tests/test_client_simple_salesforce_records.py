"""simple-salesforce's record calls (`sf.Contact.create/update/upsert/delete/get_by_custom_id`)
against a real server over HTTP, on SQLite and PostgreSQL, unchanged but for the https-only
base URL it builds (README)."""

from __future__ import annotations

import pytest
from bulk2_helpers import db_one, db_row
from conftest import API, Server, unique
from simple_salesforce import Salesforce, SFType
from simple_salesforce.exceptions import (
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceResourceNotFound,
)


def sftype(server: Server, name: str) -> SFType:
    sf = Salesforce(instance_url=server.url, session_id=server.token, version=API)
    t: SFType = getattr(sf, name)
    t.base_url = f"{server.url}/services/data/v{API}/sobjects/{name}/"
    return t


@pytest.fixture
def contact(server: Server) -> SFType:
    return sftype(server, "Contact")


def test_create_update_delete(contact: SFType, server: Server) -> None:
    tag = unique("ss")
    out = contact.create({"LastName": tag, "Email": "ada@example.com"})
    assert out["success"] is True and out["errors"] == [] and out["id"].startswith("003")
    rid = out["id"]
    assert contact.update(rid, {"FirstName": "Ada", "Email": None}) == 204
    row = db_one(server, "Contact", rid)
    assert (row["FirstName"], row["LastName"], row["Email"]) == ("Ada", tag, None)
    assert contact.get(rid)["FirstName"] == "Ada"
    assert contact.delete(rid) == 204
    assert db_one(server, "Contact", rid)["IsDeleted"] == 1
    with pytest.raises(SalesforceResourceNotFound) as e:
        contact.get(rid)
    assert e.value.content[0]["errorCode"] == "ENTITY_IS_DELETED"


def test_create_error_is_the_engines(contact: SFType, server: Server) -> None:
    with pytest.raises(SalesforceMalformedRequest) as e:
        contact.create({"FirstName": "no last name"})
    assert e.value.status == 400
    assert e.value.content == [{"message": "Required fields are missing: [LastName]",
                                "errorCode": "REQUIRED_FIELD_MISSING", "fields": ["LastName"]}]  # fmt: skip


def test_upsert_by_external_id_and_get_by_custom_id(contact: SFType, server: Server) -> None:
    ext = unique("ssx")
    assert contact.upsert(f"External_Id__c/{ext}", {"LastName": "First"}) == 201
    assert contact.upsert(f"External_Id__c/{ext}", {"LastName": "Second"}) == 200
    got = contact.get_by_custom_id("External_Id__c", ext)
    assert got["LastName"] == "Second" and got["External_Id__c"] == ext
    assert db_one(server, "Contact", got["Id"])["LastName"] == "Second"
    account = sftype(server, "Account")
    acc = account.create({"Name": "Parent", "External_Id__c": ext})["id"]
    # a relationship value in the body, as simple-salesforce users send it
    contact.upsert(f"External_Id__c/{ext}", {"Account": {"External_Id__c": ext}})
    assert db_one(server, "Contact", got["Id"])["AccountId"] == acc
    with pytest.raises(SalesforceResourceNotFound):
        contact.get_by_custom_id("External_Id__c", ext + "-missing")


def test_more_than_one_match_raises(server: Server) -> None:
    widget = sftype(server, "Widget__c")
    code = unique("m")[-20:]
    ids = [widget.create({"Name": n, "Code__c": code})["id"] for n in ("a", "b")]
    with pytest.raises(SalesforceMoreThanOneRecord) as e:
        widget.get_by_custom_id("Code__c", code)
    assert sorted(e.value.content) == sorted(
        f"/services/data/v{API}/sobjects/Widget__c/{i}" for i in ids
    )
    with pytest.raises(SalesforceMoreThanOneRecord):
        widget.upsert(f"Code__c/{code}", {"Name": "c"})
    assert all(db_row(server, "Widget__c", i) is not None for i in ids)
