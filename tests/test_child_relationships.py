"""Child relationship names: what `(SELECT … FROM Contacts)` subqueries and sObject trees use,
and what describe reports in childRelationships[].relationshipName."""

from __future__ import annotations

from typing import Any

from conftest import Server

from bulkforce.engine.schema import build_schema, builtin_definitions, parse_document


def prefixes(name: str) -> str:
    return "a00"


def names(schema: Any, parent: str) -> dict[tuple[str, str], str | None]:
    obj = schema.get(parent)
    return {(r.child.name, r.field.name): r.name for r in schema.child_relationships(obj)}


def test_builtin_objects_carry_salesforce_child_relationship_names() -> None:
    schema = build_schema(builtin_definitions(), prefixes)
    account = names(schema, "Account")
    assert account[("Contact", "AccountId")] == "Contacts"
    assert account[("Opportunity", "AccountId")] == "Opportunities"
    assert account[("Case", "AccountId")] == "Cases"
    assert account[("Task", "WhatId")] == "Tasks"
    assert account[("Account", "ParentId")] == "ChildAccounts"
    assert names(schema, "Contact")[("Task", "WhoId")] == "Tasks"
    assert names(schema, "User")[("Contact", "OwnerId")] is None  # Salesforce names none
    rel = schema.child_relationship(schema.get("account"), "contacts")
    assert rel is not None and rel.child.name == "Contact" and rel.field.name == "AccountId"
    assert schema.child_relationship(schema.get("Account"), "Nope") is None


def test_describe_child_relationships_and_custom_lookup_default() -> None:
    defs = builtin_definitions() + parse_document(
        [
            {"name": "Project__c", "labelPlural": "Projects",
             "fields": [{"name": "Account__c", "type": "reference", "referenceTo": ["Account"]},
                        {"name": "Lead__c", "type": "reference", "referenceTo": ["Lead"]}]},
            {"name": "Lead", "childRelationships": [
                {"childSObject": "Project__c", "field": "Lead__c",
                 "relationshipName": "LeadProjects__r"}]},
        ],
        "test",
    )  # fmt: skip
    schema = build_schema(defs, prefixes)
    assert names(schema, "Account")[("Project__c", "Account__c")] == "Projects__r"
    assert names(schema, "Lead")[("Project__c", "Lead__c")] == "LeadProjects__r"


def test_describe_reports_child_relationship_names(server: Server) -> None:
    with server.client() as c:
        r = c.get("/services/data/v60.0/sobjects/Account/describe")
    assert r.status_code == 200
    rels = {(c["childSObject"], c["field"]): c["relationshipName"]
            for c in r.json()["childRelationships"]}  # fmt: skip
    assert rels[("Contact", "AccountId")] == "Contacts"
    assert rels[("Opportunity", "AccountId")] == "Opportunities"
