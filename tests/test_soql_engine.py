"""The SOQL engine against real stores: plans run through Store.query_rows on SQLite and
PostgreSQL give the same typed rows, pages and records."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from soql_data import (
    A1,
    A2,
    A3,
    A5,
    C1,
    C2,
    C3,
    C4,
    C5,
    G1,
    G2,
    NOW,
    O1,
    U1,
    open_loaded,
    rid,
    schema,
)

from bulkforce.soql import Api, Dialect, Plan, compile_query
from bulkforce.store import Store
from bulkforce.store.base import IDLE_READERS

SCHEMA = schema()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[Store, Dialect]]:  # fmt: skip
    with open_loaded(request.param, tmp_path_factory.mktemp("soql")) as pair:
        yield pair


def plan(loaded: tuple[Store, Dialect], soql: str, api: Api = Api.REST, **kw: Any) -> Plan:
    return compile_query(soql, SCHEMA, api=api, dialect=loaded[1], now=NOW, **kw)


def rows(loaded: tuple[Store, Dialect], soql: str, **kw: Any) -> list[list[Any]]:
    p = plan(loaded, soql, **kw)
    text, params = p.sql()
    return [p.values(r) for r in loaded[0].query_rows(text, params)]


def test_fields_in_id_order_with_canonical_names(loaded: tuple[Store, Dialect]) -> None:
    p = plan(loaded, "select id, NAME, annualrevenue, numberofemployees from account")
    assert [c.name for c in p.columns] == ["Id", "Name", "AnnualRevenue", "NumberOfEmployees"]
    text, params = p.sql()
    got = [p.values(r) for r in loaded[0].query_rows(text, params)]
    assert got == [[A1, "Acme", 1500.0, 10], [A2, "acme labs", 250.0, 5],
                   [A3, "Globex", None, 200], [A5, "Umbrella_Co", 5000.0, 50]]  # fmt: skip


def test_parent_paths_and_nested_records(loaded: tuple[Store, Dialect]) -> None:
    p = plan(loaded, "SELECT Name, Account.Name, Account.Owner.Name FROM Contact "
                     "WHERE Account.Name LIKE 'acme%' ORDER BY LastName, FirstName")  # fmt: skip
    text, params = p.sql()
    raw = list(loaded[0].query_rows(text, params))
    assert [p.values(r) for r in raw] == [
        [None, "acme labs", "Second Person"], [None, "Acme", "Admin User"],
        [None, "Acme", "Admin User"]]  # fmt: skip
    rec = p.record(raw[1])
    assert rec.type == "Contact" and rec.id == C1
    acct = rec.fields["Account"]
    assert acct.type == "Account" and acct.id == A1 and acct.fields["Name"] == "Acme"
    assert acct.fields["Owner"].fields == {"Name": "Admin User"}


def test_keyset_pages_cover_every_row_once(loaded: tuple[Store, Dialect]) -> None:
    for soql in ("SELECT Id FROM Contact", "SELECT Id FROM Contact ORDER BY LastName DESC",
                 "SELECT Id FROM Contact ORDER BY Email NULLS LAST, Birthdate DESC",
                 "SELECT Id FROM Contact ORDER BY SystemModstamp DESC",
                 "SELECT Id FROM Contact ORDER BY CreatedDate, IsDeleted"):  # fmt: skip
        p = plan(loaded, soql)
        whole = [p.values(r)[0] for r in loaded[0].query_rows(*p.sql())]
        seen: list[str] = []
        after = None
        while True:
            page = list(loaded[0].query_rows(*p.sql(after=after, size=2)))
            if not page:
                break
            seen += [p.values(r)[0] for r in page]
            after = p.key(page[-1])
        assert seen == whole and sorted(seen) == sorted([C1, C2, C3, C4, C5])


def test_incremental_window_and_count(loaded: tuple[Store, Dialect]) -> None:
    soql = (
        "SELECT Id, SystemModstamp FROM Account WHERE SystemModstamp >= "
        "2024-01-08T00:00:00.000+00:00 AND SystemModstamp < 2024-01-10T00:00:00Z"
    )
    got = rows(loaded, soql)
    assert all(dt.datetime(2024, 1, 8, tzinfo=dt.UTC) <= r[1] < dt.datetime(2024, 1, 10,
               tzinfo=dt.UTC) for r in got)  # fmt: skip
    p = plan(loaded, "SELECT COUNT() FROM Contact WHERE LastName = 'SMITH'")
    assert p.count_only
    (n,) = next(loaded[0].query_rows(*p.count_sql()))
    assert n == 2
    assert list(loaded[0].query_rows(*p.sql())) == []


def _children(loaded: tuple[Store, Dialect], p: Plan, parent_ids: list[str]) -> dict[str, Any]:
    (child,) = p.children
    out: dict[str, list[Any]] = {}
    for r in loaded[0].query_rows(*child.sql(parent_ids)):
        out.setdefault(child.parent_id(r), []).append(child.record(r))
    return out


def test_child_subquery_records(loaded: tuple[Store, Dialect]) -> None:
    p = plan(loaded, "SELECT Name, (SELECT LastName, Account.Name FROM Contacts "
                     "ORDER BY LastName DESC) FROM Account ORDER BY Name")  # fmt: skip
    raw = list(loaded[0].query_rows(*p.sql()))
    recs = [p.record(r) for r in raw]
    assert [r.fields["Name"] for r in recs] == ["Acme", "acme labs", "Globex", "Umbrella_Co"]
    assert list(recs[0].fields) == ["Name", "Contacts"] and recs[0].fields["Contacts"] is None
    kids = _children(loaded, p, [r.id for r in recs if r.id])
    assert [k.id for k in kids[A1]] == [C1, C2]  # Smith/smith tie broken by Id
    assert kids[A1][0].type == "Contact"
    assert kids[A1][0].fields == {"LastName": "Smith", "Account": kids[A1][0].fields["Account"]}
    assert kids[A1][0].fields["Account"].fields == {"Name": "Acme"}
    assert [k.fields["LastName"] for k in kids[A2]] == ["Jones"] and A5 not in kids


def test_child_subquery_limit_counts_per_parent(loaded: tuple[Store, Dialect]) -> None:
    p = plan(loaded, "SELECT Id, (SELECT Id FROM Contacts WHERE LastName != 'x' ORDER BY "
                     "FirstName DESC LIMIT 1) FROM Account")  # fmt: skip
    kids = _children(loaded, p, [A1, A2, A3, A5])
    assert {k: [r.id for r in v] for k, v in kids.items()} == {A1: [C2], A2: [C3], A3: [C4]}


def test_typeof_records_follow_the_type(loaded: tuple[Store, Dialect]) -> None:
    p = plan(loaded, "SELECT Subject, TYPEOF What WHEN Account THEN Name, Industry "
                     "WHEN Opportunity THEN Amount, Name ELSE Id END FROM Task")  # fmt: skip
    assert [c.name for c in p.columns] == ["Subject", "What.Name", "What.Industry",
                                           "What.Amount", "What.Id"]  # fmt: skip
    raw = list(loaded[0].query_rows(*p.sql()))
    recs = [p.record(r) for r in raw]
    what = recs[0].fields["What"]
    assert (what.type, what.id, what.fields) == (
        "Account",
        A1,
        {"Name": "Acme", "Industry": "Technology"},
    )
    what = recs[1].fields["What"]
    assert what.type == "Opportunity" and what.fields == {"Amount": 5000.0, "Name": "Big Deal"}
    assert recs[2].fields["What"] is None
    assert p.values(raw[1]) == ["Email", "Big Deal", None, 5000.0, O1]


def test_polymorphic_parent_records_take_the_type_of_the_id(loaded: tuple[Store, Dialect]) -> None:
    p = plan(loaded, "SELECT Who.LastName, What.Name FROM Task ORDER BY Subject")
    recs = [p.record(r) for r in loaded[0].query_rows(*p.sql())]
    assert (recs[0].fields["Who"].type, recs[0].fields["Who"].id) == ("Contact", C1)
    assert recs[1].fields["Who"].type == "Lead" and recs[1].fields["What"].type == "Opportunity"
    assert recs[2].fields == {"Who": None, "What": None}


def test_sums_of_decimals_are_exact_on_both_databases(loaded: tuple[Store, Dialect]) -> None:
    store, dialect = loaded
    opp = SCHEMA.get("Opportunity")
    assert opp is not None
    stamp = "2024-02-01T00:00:00.000Z"
    cols = [
        "Id",
        "Name",
        "Amount",
        "StageName",
        "CloseDate",
        "IsDeleted",
        "CreatedDate",
        "LastModifiedDate",
        "SystemModstamp",
        "CreatedById",
        "LastModifiedById",
        "OwnerId",
    ]
    deleted = False if dialect is Dialect.POSTGRES else 0
    with store.transaction() as tx:
        tx.records(opp).insert(cols, [
            (rid("006", 100 + i), f"tiny {i}", amount, "Prospecting", "2024-02-01", deleted,
             stamp, stamp, stamp, U1, U1, U1) for i, amount in enumerate([0.1, 0.2])
        ])  # fmt: skip
    got = rows(loaded, "SELECT SUM(Amount) total, COUNT(Id) FROM Opportunity WHERE "
               "Name LIKE 'tiny%'")  # fmt: skip
    assert got == [[0.3, 2]]  # not 0.30000000000000004


def test_aggregate_records_and_paging(loaded: tuple[Store, Dialect]) -> None:
    p = plan(loaded, "SELECT Industry, COUNT(Id), MAX(NumberOfEmployees) most FROM Account "
                     "GROUP BY Industry ORDER BY Industry")  # fmt: skip
    assert p.aggregate and [c.name for c in p.columns] == ["Industry", "expr0", "most"]
    raw = list(loaded[0].query_rows(*p.sql()))
    rec = p.record(raw[1])  # Energy, Technology, Bio%Tech: the picklist's order
    assert (rec.type, rec.id) == ("AggregateResult", None)
    assert rec.fields == {"Industry": "Technology", "expr0": 2, "most": 10}
    second = list(loaded[0].query_rows(*p.sql(after=[2], size=1)))
    assert [p.values(r) for r in second] == [["Bio%Tech", 1, 50]]
    (n,) = next(loaded[0].query_rows(*p.count_sql()))
    assert n == 3


def test_aliased_functions_name_their_values(loaded: tuple[Store, Dialect]) -> None:
    p = plan(loaded, "SELECT toLabel(StageName), FORMAT(Amount) revenue, "
                     "convertCurrency(Account.Name) acct FROM Opportunity ORDER BY Name")  # fmt: skip
    assert [c.name for c in p.columns] == ["StageName", "revenue", "acct"]
    rec = p.record(next(loaded[0].query_rows(*p.sql())))
    assert rec.fields == {"StageName": "Closed Won", "revenue": 5000.0, "acct": "Acme"}


def test_fields_standard_expands_in_describe_order(loaded: tuple[Store, Dialect]) -> None:
    p = plan(loaded, "SELECT FIELDS(STANDARD) FROM Gadget__c", api=Api.BULK2)
    names = [c.name for c in p.columns]
    assert names[:3] == ["Id", "IsDeleted", "CreatedDate"] and "Tags__c" not in names
    assert "OwnerId" in names and "Name" in names


def test_relative_dates_follow_the_configured_time_zone(loaded: tuple[Store, Dialect]) -> None:
    soql = "SELECT Id FROM Gadget__c WHERE Seen__c = TODAY"
    assert [r[0] for r in rows(loaded, soql)] == [G1]
    # 02:00 on the 16th in Kiritimati (UTC+14): its day began at 10:00 UTC on the 15th
    assert [r[0] for r in rows(loaded, soql, tz="Pacific/Kiritimati")] == [G1, G2]
    yesterday = "SELECT Id FROM Gadget__c WHERE Seen__c = YESTERDAY"
    assert [r[0] for r in rows(loaded, yesterday, tz="Pacific/Kiritimati")] == []
    assert [r[0] for r in rows(loaded, yesterday, tz="Pacific/Honolulu")] == []
    tomorrow = "SELECT Id FROM Gadget__c WHERE Seen__c = TOMORROW"
    assert [r[0] for r in rows(loaded, tomorrow, tz="Pacific/Honolulu")] == []
    assert [r[0] for r in rows(loaded, tomorrow)] == [G2]


def test_a_read_connection_the_server_dropped_is_replaced(tmp_path: Path) -> None:
    with open_loaded("postgresql", tmp_path) as (store, dialect):
        p = compile_query("SELECT Id FROM Account", SCHEMA, api=Api.REST, dialect=dialect)
        assert len(list(store.query_rows(*p.sql()))) == 4
        url = store.url  # type: ignore[attr-defined]
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        assert len(list(store.query_rows(*p.sql()))) == 4


def test_a_burst_of_streams_leaves_few_idle_connections(tmp_path: Path) -> None:
    with open_loaded("postgresql", tmp_path) as (store, dialect):
        p = compile_query("SELECT Id FROM Account", SCHEMA, api=Api.REST, dialect=dialect)
        url = store.url  # type: ignore[attr-defined]

        def connections() -> int:
            with psycopg.connect(url, autocommit=True) as admin:
                row = admin.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid()"
                ).fetchone()
            assert row is not None
            return int(row[0])

        before = connections()
        streams = [store.query_rows(*p.sql()) for _ in range(12)]
        firsts = [next(s) for s in streams]  # all twelve open at once
        assert len(firsts) == 12 and connections() >= before + 12
        for s in streams:
            s.close()
        assert connections() <= before + IDLE_READERS
