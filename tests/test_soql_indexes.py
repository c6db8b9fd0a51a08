"""Incremental extracts are answered from an index on both databases (issue #10 item 6): the
compiler keeps the timestamp and Id columns bare in range predicates (PostgreSQL: TIMESTAMPTZ
compared with a bound timestamptz; SQLite: the stored text form), so the store's indexes on
SystemModstamp, LastModifiedDate, CreatedDate and the Id primary key serve them."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from conftest import PG_PROBLEM, drop_pg_database, new_pg_database
from soql_data import U1, rid, schema

from bulkforce.soql import Api, Dialect, compile_query
from bulkforce.store import Store, open_store

SCHEMA = schema()
ROWS = 20_000
START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def stamp(i: int, minutes: int = 0) -> str:
    t = START + dt.timedelta(minutes=i + minutes)
    return t.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def fill(store: Store, pg: bool) -> None:
    store.migrate()
    store.ensure_tables(SCHEMA)
    contact = SCHEMA.get("Contact")
    assert contact is not None
    cols = ["Id", "LastName", "IsDeleted", "CreatedDate", "LastModifiedDate", "SystemModstamp",
            "CreatedById", "LastModifiedById", "OwnerId"]  # fmt: skip
    deleted = False if pg else 0
    with store.transaction() as tx:
        tx.records(contact).insert(cols, (
            (rid("003", i), f"n{i}", deleted, stamp(i), stamp(i, 1), stamp(i, 2), U1, U1, U1)
            for i in range(ROWS)
        ))  # fmt: skip


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def explain(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[Dialect, Any]]:  # fmt: skip
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("indexes") / "ix.db"
        store = open_store(f"sqlite:///{path}")
        fill(store, pg=False)
        store.close()
        conn = sqlite3.connect(path)
        conn.execute("ANALYZE")

        def sqlite_plan(text: str, params: list[Any]) -> str:
            return "\n".join(r[-1] for r in conn.execute("EXPLAIN QUERY PLAN " + text, params))

        yield Dialect.SQLITE, sqlite_plan
        conn.close()
        return
    assert PG_PROBLEM is None, PG_PROBLEM
    url = new_pg_database()
    store = open_store(url)
    try:
        fill(store, pg=True)
        store.close()
        with psycopg.connect(url, autocommit=True) as pg:
            pg.execute("ANALYZE")

            def pg_plan(text: str, params: list[Any]) -> str:
                return "\n".join(r[0] for r in pg.execute("EXPLAIN " + text, params))

            yield Dialect.POSTGRES, pg_plan
    finally:
        drop_pg_database(url)


WINDOWS = [
    "SELECT Id, LastName FROM Contact WHERE {f} >= 2024-01-05T00:00:00.000+00:00 AND "
    "{f} < 2024-01-05T03:00:00.000+00:00",
    "SELECT Id, LastName FROM Contact WHERE {f} >= 2024-01-05T00:00:00Z ORDER BY {f} ASC",
    "SELECT Id FROM Contact WHERE ( LastName != null ) AND {f} > 2024-01-13T20:00:00.000000Z "
    "AND {f} <= 2024-01-13T22:00:00.123456789+02:00",
]


def assert_indexed(dialect: Dialect, plan_text: str, index: str) -> None:
    if dialect is Dialect.SQLITE:
        assert "USING" in plan_text and index in plan_text, plan_text
        assert "SCAN t0\n" not in plan_text + "\n" and "SCAN t0 " not in plan_text, plan_text
    else:
        assert "Index" in plan_text and index.lower() in plan_text, plan_text
        assert "Seq Scan" not in plan_text, plan_text


@pytest.mark.parametrize("field", ["SystemModstamp", "LastModifiedDate", "CreatedDate"])
@pytest.mark.parametrize("template", WINDOWS)
def test_timestamp_windows_use_the_index(explain: tuple[Dialect, Any], field: str,
                                         template: str) -> None:  # fmt: skip
    dialect, plan_of = explain
    soql = template.format(f=field)
    for api in (Api.BULK2, Api.BULK1, Api.REST):
        plan = compile_query(soql, SCHEMA, api=api, dialect=dialect, all_rows=api is Api.BULK2)
        assert_indexed(dialect, plan_of(*plan.sql()), f"Contact_{field}_ix")


def test_keyset_pages_of_a_timestamp_order_use_the_index(explain: tuple[Dialect, Any]) -> None:
    dialect, plan_of = explain
    plan = compile_query("SELECT Id FROM Contact ORDER BY SystemModstamp", SCHEMA,
                         api=Api.REST, dialect=dialect)  # fmt: skip
    key = ["2024-01-10T00:00:00.000Z", rid("003", 12960)]
    assert_indexed(dialect, plan_of(*plan.sql(after=key, size=2000)), "Contact_SystemModstamp_ix")


def test_id_ranges_use_the_primary_key(explain: tuple[Dialect, Any]) -> None:
    dialect, plan_of = explain
    lo, hi = rid("003", 5000)[:15], rid("003", 5200)[:15]
    plan = compile_query(f"SELECT Id, LastName FROM Contact WHERE Id >= '{lo}' AND Id < '{hi}'",
                         SCHEMA, api=Api.BULK1, dialect=dialect)  # fmt: skip
    text = plan_of(*plan.sql())
    # the primary key, or the store's (IsDeleted, Id) index: either reads just the range
    if dialect is Dialect.SQLITE:
        assert "SEARCH t0 USING" in text and "Id>?" in text and "Id<?" in text, text
    else:
        assert "Index" in text and "id >=" in text and "Seq Scan" not in text, text
    page = compile_query("SELECT Id FROM Contact", SCHEMA, api=Api.REST, dialect=dialect)
    text = plan_of(*page.sql(after=[rid("003", 19000)], size=2000))
    assert "Seq Scan" not in text and "SCAN t0\n" not in text + "\n", text
