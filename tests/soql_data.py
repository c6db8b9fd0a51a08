"""A small fixed org for the SOQL tests: the built-in objects plus a custom object with every
kind of field, loaded into a real SQLite or PostgreSQL store (in-process, no server)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from conftest import PG_PROBLEM, drop_pg_database, new_pg_database

from bulkforce.engine.ids import make_id
from bulkforce.engine.schema import Schema, build_schema, builtin_definitions, parse_document
from bulkforce.soql import Dialect
from bulkforce.store import Store, open_store

# the moment relative date literals are evaluated at: Wednesday 2024-05-15, noon UTC
NOW = dt.datetime(2024, 5, 15, 12, 0, tzinfo=dt.UTC)

GADGET = {
    "name": "Gadget__c", "keyPrefix": "a01", "label": "Gadget", "labelPlural": "Gadgets",
    "fields": [
        {"name": "Tags__c", "type": "multipicklist",
         "picklistValues": [{"value": "A"}, {"value": "B"}, {"value": "C"}]},
        {"name": "Score__c", "type": "double", "precision": 0},
        {"name": "Qty__c", "type": "int"},
        {"name": "Price__c", "type": "currency", "precision": 16, "scale": 2},
        {"name": "Active__c", "type": "boolean"},
        {"name": "Due__c", "type": "date"},
        {"name": "Seen__c", "type": "datetime"},
        {"name": "Account__c", "type": "reference", "referenceTo": ["Account"],
         "relationshipName": "Account__r", "childRelationshipName": "Gadgets__r"},
        {"name": "Addr__c", "type": "address"},
        {"name": "Code__c", "type": "string"},
        {"name": "Alarm__c", "type": "time"},
        {"name": "Color__c", "type": "picklist",  # values SQL must quote with care
         "picklistValues": [{"value": "Red"}, {"value": "50% off?"}, {"value": "O'Hara"},
                            {"value": "blue"}]},
    ],
}  # fmt: skip


# objects whose names are SOQL keywords
KEYWORD_OBJECTS = [
    {"name": "Group", "keyPrefix": "00G", "fields": [{"name": "Name", "type": "string"}]},
    {"name": "Order", "keyPrefix": "801", "fields": [
        {"name": "Name", "type": "string"},
        {"name": "AccountId", "type": "reference", "referenceTo": ["Account"],
         "relationshipName": "Account", "childRelationshipName": "Orders"}]},
]  # fmt: skip


def schema() -> Schema:
    defs = builtin_definitions() + parse_document(GADGET, "test gadget")
    defs += parse_document(KEYWORD_OBJECTS, "keyword objects")
    return build_schema(defs, lambda name: "a09")


def rid(prefix: str, n: int) -> str:
    return make_id(prefix, n)


U1, U2 = rid("005", 1), rid("005", 2)
A1, A2, A3, A4, A5 = (rid("001", i) for i in range(1, 6))
C1, C2, C3, C4, C5, C6 = (rid("003", i) for i in range(1, 7))
L1 = rid("00Q", 1)
O1, O2, O3 = (rid("006", i) for i in range(1, 4))
T1, T2, T3 = (rid("00T", i) for i in range(1, 4))
G1, G2, G3, G4 = (rid("a01", i) for i in range(1, 5))
GR1, GR2 = rid("00G", 1), rid("00G", 2)
OR1 = rid("801", 1)


def ts(day: int, hour: int = 0) -> str:
    return f"2024-01-{day:02d}T{hour:02d}:00:00.000Z"


# object → rows (column → value); system columns filled in by `load`
DATA: dict[str, list[dict[str, Any]]] = {
    "User": [
        {"Id": U1, "Username": "admin@x.io", "LastName": "User", "FirstName": "Admin",
         "Name": "Admin User", "Email": "admin@x.io", "IsActive": True},
        {"Id": U2, "Username": "two@x.io", "LastName": "Person", "FirstName": "Second",
         "Name": "Second Person", "Email": "two@x.io", "IsActive": False, "ManagerId": U1},
    ],
    "Account": [
        {"Id": A1, "Name": "Acme", "Industry": "Technology", "Type": "Customer",
         "AnnualRevenue": 1500.0, "NumberOfEmployees": 10, "BillingCity": "Paris",
         "OwnerId": U1},
        {"Id": A2, "Name": "acme labs", "Industry": "Technology", "Type": "Prospect",
         "AnnualRevenue": 250.0, "NumberOfEmployees": 5, "BillingCity": "paris", "ParentId": A1,
         "OwnerId": U2},
        {"Id": A3, "Name": "Globex", "Industry": "Energy", "NumberOfEmployees": 200,
         "BillingCity": "Berlin", "ParentId": A2, "OwnerId": U1},
        {"Id": A4, "Name": "Initech", "Type": "Customer", "AnnualRevenue": 99.0,
         "IsDeleted": True, "OwnerId": U1},
        {"Id": A5, "Name": "Umbrella_Co", "Industry": "Bio%Tech", "Type": "Partner",
         "AnnualRevenue": 5000.0, "NumberOfEmployees": 50, "BillingCity": "Zürich",
         "OwnerId": U2},
    ],
    "Contact": [
        {"Id": C1, "LastName": "Smith", "FirstName": "Ann", "AccountId": A1,
         "Email": "ann@acme.com", "Birthdate": "1990-05-15",
         "EmailBouncedDate": "2024-03-01T10:00:00.000Z", "HasOptedOutOfEmail": False},
        {"Id": C2, "LastName": "smith", "FirstName": "Bob", "AccountId": A1,
         "Birthdate": "1985-12-31", "HasOptedOutOfEmail": True, "ReportsToId": C1},
        {"Id": C3, "LastName": "Jones", "FirstName": "Cara", "AccountId": A2,
         "Email": "cara@labs.io", "EmailBouncedDate": "2024-03-01T10:00:00.001Z",
         "HasOptedOutOfEmail": False, "ReportsToId": C2},
        {"Id": C4, "LastName": "O'Brien", "FirstName": "Dan", "AccountId": A3,
         "Email": "dan@globex.de", "Birthdate": "2000-02-29",
         "EmailBouncedDate": "2023-12-31T23:59:59.999Z", "HasOptedOutOfEmail": False,
         "ReportsToId": C3},
        {"Id": C5, "LastName": "Müller", "Email": "m@x.de", "Birthdate": "1970-01-01",
         "HasOptedOutOfEmail": False, "ReportsToId": C4},
        {"Id": C6, "LastName": "Deleted", "FirstName": "Del", "AccountId": A1,
         "IsDeleted": True, "HasOptedOutOfEmail": False},
    ],
    "Lead": [{"Id": L1, "LastName": "Lead", "Company": "LeadCo", "Name": "Lee Lead",
              "Status": "Open"}],
    "Opportunity": [
        {"Id": O1, "Name": "Big Deal", "AccountId": A1, "Amount": 5000.0,
         "CloseDate": "2024-06-30", "StageName": "Closed Won", "Probability": 100.0},
        {"Id": O2, "Name": "Small", "AccountId": A2, "Amount": 100.25,
         "CloseDate": "2024-01-15", "StageName": "Prospecting", "Probability": 10.0},
        {"Id": O3, "Name": "NoAmt", "AccountId": A3, "CloseDate": "2023-11-05",
         "StageName": "Prospecting"},
    ],
    "Task": [
        {"Id": T1, "Subject": "Call", "WhoId": C1, "WhatId": A1, "ActivityDate": "2024-02-01",
         "Status": "Completed"},
        {"Id": T2, "Subject": "Email", "WhoId": L1, "WhatId": O1, "ActivityDate": "2024-05-15",
         "Status": "Open"},
        {"Id": T3, "Subject": "Other", "Status": "Open"},
    ],
    "Gadget__c": [
        {"Id": G1, "Name": "g1", "Tags__c": "A;B", "Score__c": 1.5, "Qty__c": 3,
         "Price__c": 10.0, "Active__c": True, "Due__c": "2024-05-15",
         "Seen__c": "2024-05-15T12:00:00.000Z", "Account__c": A1, "Code__c": "x_1",
         "Alarm__c": "08:30:00.000Z"},
        {"Id": G2, "Name": "g2", "Tags__c": "B;C", "Score__c": -2.0, "Qty__c": 0,
         "Active__c": False, "Due__c": "2024-05-16", "Seen__c": "2024-05-16T00:30:00.000Z",
         "Account__c": A2, "Code__c": "x%1", "Alarm__c": "23:59:59.999Z"},
        {"Id": G3, "Name": "g3", "Price__c": 0.5, "Active__c": True, "Code__c": "X\\1",
         "Alarm__c": "00:00:00.000Z"},
        {"Id": G4, "Name": "G4", "Tags__c": "C", "Score__c": 100.0, "Qty__c": 7,
         "Price__c": 99.99, "Active__c": False, "Due__c": "2023-12-31",
         "Seen__c": "2023-12-31T23:00:00.000Z", "Account__c": A3},
    ],
    "Group": [{"Id": GR1, "Name": "Sales"}, {"Id": GR2, "Name": "Admins"}],
    "Order": [{"Id": OR1, "Name": "Order 1", "AccountId": A1}],
}  # fmt: skip


def load(store: Store, sch: Schema) -> None:
    store.migrate()
    store.ensure_tables(sch)
    pg = not hasattr(store, "path")
    seq = 0
    with store.transaction() as tx:
        for name, rows in DATA.items():
            obj = sch.get(name)
            assert obj is not None
            for row in rows:
                seq += 1
                full = {"IsDeleted": False, "CreatedDate": ts(seq % 28 + 1),
                        "LastModifiedDate": ts(seq % 28 + 1, 1), "SystemModstamp": ts(seq % 28 + 1, 2),
                        "CreatedById": U1, "LastModifiedById": U1, **row}  # fmt: skip
                if obj.field("OwnerId") is not None and "OwnerId" not in row:
                    full["OwnerId"] = U1
                cols = list(full)
                values = [v if pg or not isinstance(v, bool) else int(v) for v in full.values()]
                tx.records(obj).insert(cols, [tuple(values)])


@contextmanager
def open_loaded(backend: str, tmp: Path) -> Iterator[tuple[Store, Dialect]]:
    """A store of `backend` holding DATA; PostgreSQL in a throw-away database."""
    sch = schema()
    if backend == "sqlite":
        store = open_store(f"sqlite:///{tmp / 'soql.db'}")
        load(store, sch)
        try:
            yield store, Dialect.SQLITE
        finally:
            store.close()
        return
    assert PG_PROBLEM is None, PG_PROBLEM
    url = new_pg_database()
    store = open_store(url)
    try:
        load(store, sch)
        yield store, Dialect.POSTGRES
    finally:
        store.close()
        drop_pg_database(url)
