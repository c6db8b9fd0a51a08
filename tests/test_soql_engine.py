"""The SOQL engine against real stores: plans run through Store.query_rows on SQLite and
PostgreSQL give the same typed rows, pages and records."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from soql_data import A1, A2, A3, A5, C1, C2, C3, C4, C5, NOW, open_loaded, schema

from bulkforce.soql import Api, Dialect, Plan, compile_query
from bulkforce.store import Store

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
                 "SELECT Id FROM Contact ORDER BY Email NULLS LAST, Birthdate DESC"):  # fmt: skip
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
