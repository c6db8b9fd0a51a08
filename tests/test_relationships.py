"""Relationship columns in ingest CSV headers: `Rel.ExternalField`, and the polymorphic forms."""

from __future__ import annotations

import httpx
from bulk2_helpers import failed, run_job, success
from conftest import DB, Server, unique


def ro(server: Server) -> DB:
    return server.db()


def test_contact_account_relationship_by_external_id(http: httpx.Client, server: Server) -> None:
    ext = unique("acct")
    acc = run_job(http, "Account", "insert", f"Name,External_Id__c\nParent Co,{ext}\n")
    acc_id = success(http, acc["id"], "Name,External_Id__c").dicts()[0]["sf__Id"]
    last = unique("Kid")
    # the relationship name matches case-insensitively, like field names
    info = run_job(
        http, "Contact", "insert", f"LastName,account.EXTERNAL_ID__C\n{last},{ext.upper()}\n"
    )
    assert info["state"] == "JobComplete" and info["numberRecordsFailed"] == 0, info
    with ro(server) as db:
        (account_id,) = db.execute(
            "SELECT AccountId FROM Contact WHERE LastName = ?", (last,)
        ).fetchone()
    assert account_id == acc_id


def test_polymorphic_relationship_both_spellings_and_missing_parent(
    http: httpx.Client, server: Server
) -> None:
    ext = unique("who")
    run_job(http, "Contact", "insert", f"LastName,External_Id__c\nWho,{ext}\n")
    subjects = [unique("call"), unique("call"), unique("call")]
    for header, subject in (
        ("Contact:Who.External_Id__c", subjects[0]),
        ("Who:Contact.External_Id__c", subjects[1]),
    ):
        info = run_job(http, "Task", "insert", f"Subject,{header}\n{subject},{ext}\n")
        assert info["numberRecordsFailed"] == 0, info
    missing = unique("nobody")
    info = run_job(
        http, "Task", "insert", f"Subject,Contact:Who.External_Id__c\n{subjects[2]},{missing}\n"
    )
    assert info["state"] == "JobComplete" and info["numberRecordsFailed"] == 1
    row = failed(http, info["id"], "Subject,Contact:Who.External_Id__c").dicts()[0]
    assert row["sf__Error"] == (
        f"INVALID_FIELD:Foreign key external ID: {missing} not found for field External_Id__c "
        "in entity Contact:--"
    )
    with ro(server) as db:
        who = [
            db.execute("SELECT WhoId FROM Task WHERE Subject = ?", (s,)).fetchone()
            for s in subjects
        ]
        (contact_id,) = db.execute(
            "SELECT Id FROM Contact WHERE External_Id__c = ?", (ext,)
        ).fetchone()
    assert who[0] == who[1] == (contact_id,) and who[2] is None


def test_ambiguous_or_unindexed_relationship_header_fails_job(http: httpx.Client) -> None:
    cases = [
        ("Task", "Subject", "Who.External_Id__c"),  # polymorphic Who without a type
        ("Contact", "LastName", "Account.Phone"),  # Phone is not an external id
    ]
    for obj, name_field, header in cases:
        info = run_job(http, obj, "insert", f"{name_field},{header}\nx,y\n")
        assert info["state"] == "Failed"
        assert info["errorMessage"] == f"InvalidBatch : Field name not found : {header}"
