"""Differential test: generated queries over generated records must give identical results on
SQLite and PostgreSQL — nulls, letter case, non-ASCII text, LIKE wildcards and escapes, dates,
datetimes in every lexical form, relative date literals, ordering with nulls, keyset pages."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from soql_data import A1, A2, A3, A4, A5, NOW, U1, open_loaded, rid, schema

from bulkforce.soql import Api, Dialect, compile_query
from bulkforce.store import Store

SCHEMA = schema()
GADGET = SCHEMA.get("Gadget__c")
assert GADGET is not None
COLUMNS = ["Name", "Score__c", "Qty__c", "Active__c", "Due__c", "Seen__c", "Tags__c", "Code__c",
           "Account__c", "Color__c"]  # fmt: skip
PARENT = ["Account__r.Name", "Account__r.NumberOfEmployees", "Account__r.Owner.Name"]
SELECT = "SELECT Id, " + ", ".join(COLUMNS + PARENT) + " FROM Gadget__c"

TEXT = st.text(alphabet="aAbBzZ é%_\\'ü", max_size=5)
DAYS = st.dates(dt.date(2023, 12, 25), dt.date(2024, 6, 5))
INSTANTS = st.datetimes(dt.datetime(2023, 12, 25), dt.datetime(2024, 6, 5)).map(
    lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000, tzinfo=dt.UTC)
)
TAGS = st.sets(st.sampled_from("ABC"), max_size=3).map(lambda s: ";".join(sorted(s)) or None)


@st.composite
def records(draw: st.DrawFn) -> list[dict[str, Any]]:
    out = []
    for i in range(draw(st.integers(0, 12))):
        out.append({
            "Id": rid("a01", 1000 + i), "Name": draw(st.none() | TEXT),
            "Score__c": draw(st.none() | st.sampled_from([-2.5, 0.0, 1.0, 1.5, 100.0])),
            "Qty__c": draw(st.none() | st.integers(-3, 3)), "Active__c": draw(st.booleans()),
            "Due__c": draw(st.none() | DAYS), "Seen__c": draw(st.none() | INSTANTS),
            "Tags__c": draw(TAGS), "Code__c": draw(st.none() | TEXT),
            "Account__c": draw(st.sampled_from([None, A1, A2, A3, A4, A5])),
            "Color__c": draw(st.sampled_from([None, "Red", "red", "50% off?", "O'Hara", "blue",
                                              "BLUE", "zzz", "Amber"])),
        })  # fmt: skip
    return out


def soql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def like_string(value: str) -> str:
    escaped = (
        value.replace("\\", "\\\\").replace("'", "\\'").replace("%", "\\%").replace("_", "\\_")
    )
    return "'" + escaped + "'"


@st.composite
def datetime_literal(draw: st.DrawFn) -> str:
    d = draw(INSTANTS)
    offset = draw(st.sampled_from([0, 60, -300, 330]))
    local = d.astimezone(dt.timezone(dt.timedelta(minutes=offset)))
    frac = draw(st.sampled_from(["", ".000", f".{d.microsecond // 1000:03d}",
                                 f".{d.microsecond:06d}", f".{d.microsecond:06d}000", ".0005"]))  # fmt: skip
    base = local.strftime("%Y-%m-%dT%H:%M:%S") + frac
    if offset == 0:
        return base + draw(st.sampled_from(["Z", "+00:00", "+0000", "z"]))
    sign = "+" if offset > 0 else "-"
    hh, mm = divmod(abs(offset), 60)
    return base + draw(st.sampled_from([f"{sign}{hh:02d}:{mm:02d}", f"{sign}{hh:02d}{mm:02d}"]))


RELATIVE = st.sampled_from(["TODAY", "YESTERDAY", "TOMORROW", "THIS_WEEK", "LAST_WEEK",
                            "THIS_MONTH", "LAST_N_DAYS:3", "NEXT_N_DAYS:2", "LAST_90_DAYS",
                            "THIS_YEAR", "LAST_YEAR", "N_DAYS_AGO:1", "NEXT_N_WEEKS:2"])  # fmt: skip
OPS = st.sampled_from(["=", "!=", "<", "<=", ">", ">="])


@st.composite
def atom(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["text", "like", "in", "num", "int", "bool", "date", "datetime",
                                 "relative", "null", "includes", "func", "parent"]))  # fmt: skip
    text_field = draw(st.sampled_from(["Name", "Code__c", "Account__r.Name"]))
    if kind == "parent":
        return f"Account__r.NumberOfEmployees {draw(OPS)} {draw(st.sampled_from([5, 10, 50]))}"
    if kind == "text":
        return f"{text_field} {draw(OPS)} {soql_string(draw(TEXT))}"
    if kind == "like":
        parts = draw(st.lists(st.sampled_from(["%", "_", "a", "B", "é", "\\%", "\\_", "z"]),
                              max_size=4))  # fmt: skip
        literal = "".join(
            p if p in ("%", "_", "\\%", "\\_") else like_string(p)[1:-1] for p in parts
        )
        return f"{text_field} LIKE '{literal}'"
    if kind == "in":
        values = draw(st.lists(st.none() | TEXT, min_size=1, max_size=3))
        listed = ", ".join("null" if v is None else soql_string(v) for v in values)
        return f"{text_field} {draw(st.sampled_from(['IN', 'NOT IN']))} ({listed})"
    if kind == "num":
        return f"Score__c {draw(OPS)} {draw(st.sampled_from(['0', '1.5', '-2.5', '1e2', '0.75']))}"
    if kind == "int":
        return f"Qty__c {draw(OPS)} {draw(st.integers(-3, 3))}"
    if kind == "bool":
        return f"Active__c {draw(st.sampled_from(['=', '!=']))} {draw(st.booleans())}"
    if kind == "date":
        return f"Due__c {draw(OPS)} {draw(DAYS).isoformat()}"
    if kind == "datetime":
        return f"Seen__c {draw(OPS)} {draw(datetime_literal())}"
    if kind == "relative":
        return f"{draw(st.sampled_from(['Due__c', 'Seen__c']))} {draw(OPS)} {draw(RELATIVE)}"
    if kind == "null":
        field = draw(st.sampled_from([*COLUMNS[:3], *COLUMNS[4:], *PARENT]))
        return f"{field} {draw(st.sampled_from(['=', '!=']))} null"
    if kind == "includes":
        values = ", ".join(soql_string(v) for v in draw(st.lists(
            st.sampled_from(["A", "b", "C", "a;c"]), min_size=1, max_size=2)))  # fmt: skip
        return f"Tags__c {draw(st.sampled_from(['INCLUDES', 'EXCLUDES']))} ({values})"
    func = draw(st.sampled_from(["CALENDAR_MONTH", "DAY_IN_WEEK", "DAY_IN_MONTH", "WEEK_IN_YEAR"]))
    return f"{func}({draw(st.sampled_from(['Due__c', 'Seen__c']))}) {draw(OPS)} {draw(st.integers(1, 12))}"


def condition(depth: int = 2) -> st.SearchStrategy[str]:
    if depth == 0:
        return atom()
    sub = condition(depth - 1)
    return st.one_of(
        atom(),
        st.lists(sub, min_size=2, max_size=3).map(lambda xs: "(" + " AND ".join(xs) + ")"),
        st.lists(sub, min_size=2, max_size=3).map(lambda xs: "(" + " OR ".join(xs) + ")"),
        sub.map(lambda x: f"(NOT {x})"),
    )


ORDER = st.lists(
    st.tuples(st.sampled_from([*COLUMNS[:6], *PARENT, "Color__c", "Account__r.Type",
                               "Account__r.Industry"]), st.sampled_from(["", " ASC", " DESC"]),
              st.sampled_from(["", " NULLS FIRST", " NULLS LAST"])),
    max_size=2, unique_by=lambda t: t[0],
).map(lambda keys: ", ".join(f"{f}{d}{n}" for f, d, n in keys))  # fmt: skip


@st.composite
def queries(draw: st.DrawFn) -> str:
    q = SELECT
    if draw(st.booleans()):
        q += " WHERE " + draw(condition())
    order = draw(ORDER)
    if order:
        q += " ORDER BY " + order
    if draw(st.booleans()):
        q += f" LIMIT {draw(st.integers(0, 8))}"
    return q


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[tuple[Store, Dialect]]]:
    tmp: Path = tmp_path_factory.mktemp("differential")
    with open_loaded("sqlite", tmp) as lite, open_loaded("postgresql", tmp) as pg:
        yield [lite, pg]


def replace_gadgets(store: Store, dialect: Dialect, rows: list[dict[str, Any]]) -> None:
    assert GADGET is not None
    store.delete_records(GADGET)
    if not rows:
        return
    stamp = "2024-01-01T00:00:00.000Z"
    cols = ["Id", *COLUMNS, "IsDeleted", "CreatedDate", "LastModifiedDate", "SystemModstamp",
            "CreatedById", "LastModifiedById", "OwnerId"]  # fmt: skip
    pg = dialect is Dialect.POSTGRES

    def stored(v: Any) -> Any:
        if isinstance(v, dt.datetime):
            return v.strftime("%Y-%m-%dT%H:%M:%S.") + f"{v.microsecond // 1000:03d}Z"
        if isinstance(v, dt.date):
            return v.isoformat()
        if isinstance(v, bool) and not pg:
            return int(v)
        return v

    values = [
        (*(stored(r[c]) for c in ["Id", *COLUMNS]), stored(False), stamp, stamp, stamp, U1, U1, U1)
        for r in rows
    ]
    with store.transaction() as tx:
        tx.records(GADGET).insert(cols, values)


def run(store: Store, dialect: Dialect, soql: str) -> tuple[list[list[Any]], list[list[Any]]]:
    plan = compile_query(soql, SCHEMA, api=Api.REST, dialect=dialect, now=NOW)
    whole = [plan.values(r) for r in store.query_rows(*plan.sql())]
    paged: list[list[Any]] = []
    after = None
    remaining = plan.limit
    while remaining is None or remaining > 0:
        size = 3 if remaining is None else min(3, remaining)
        page = list(store.query_rows(*plan.sql(after=after, size=size)))
        if not page:
            break
        paged += [plan.values(r) for r in page]
        after = plan.key(page[-1])
        remaining = None if remaining is None else remaining - len(page)
    return whole, paged


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=records(), soqls=st.lists(queries(), min_size=1, max_size=4))
def test_sqlite_and_postgresql_agree(
    both: list[tuple[Store, Dialect]], data: list[dict[str, Any]], soqls: list[str]
) -> None:
    for store, dialect in both:
        replace_gadgets(store, dialect, data)
    for soql in soqls:
        (lite_all, lite_pages), (pg_all, pg_pages) = (run(s, d, soql) for s, d in both)
        assert lite_all == pg_all, soql
        assert lite_pages == lite_all, soql
        assert pg_pages == pg_all, soql


GROUPS = st.sampled_from(["Active__c", "Name", "Account__r.Name", "CALENDAR_MONTH(Due__c)",
                          "Code__c", "Qty__c"])  # fmt: skip
AGGREGATES = st.lists(
    st.sampled_from(["COUNT(Id)", "COUNT(Name)", "MIN(Name)", "MAX(Score__c)", "SUM(Qty__c)",
                     "MIN(Due__c)", "MAX(Seen__c)", "COUNT_DISTINCT(Code__c)", "AVG(Qty__c)",
                     "MAX(Account__r.Name)", "SUM(Score__c)"]),
    min_size=1, max_size=3, unique=True,
)  # fmt: skip


@st.composite
def aggregate_queries(draw: st.DrawFn) -> str:
    group = draw(GROUPS)
    aggs = draw(AGGREGATES)
    q = f"SELECT {group}, {', '.join(aggs)} FROM Gadget__c"
    if draw(st.booleans()):
        q += " WHERE " + draw(condition(1))
    q += f" GROUP BY {group}"
    if draw(st.booleans()):
        q += f" HAVING COUNT(Id) {draw(OPS)} {draw(st.integers(0, 3))}"
    order = draw(st.sampled_from(["", f" ORDER BY {group}", f" ORDER BY {group} DESC NULLS LAST",
                                  f" ORDER BY {aggs[0]} DESC"]))  # fmt: skip
    q += order
    if draw(st.booleans()):
        q += f" LIMIT {draw(st.integers(0, 5))}"
    return q


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=records(), soqls=st.lists(aggregate_queries(), min_size=1, max_size=4))
def test_aggregates_agree(
    both: list[tuple[Store, Dialect]], data: list[dict[str, Any]], soqls: list[str]
) -> None:
    for store, dialect in both:
        replace_gadgets(store, dialect, data)
    for soql in soqls:
        results = []
        for store, dialect in both:
            plan = compile_query(soql, SCHEMA, api=Api.REST, dialect=dialect, now=NOW)
            got = [plan.values(r) for r in store.query_rows(*plan.sql())]
            (count,) = next(store.query_rows(*plan.count_sql()))
            assert count == len(got), soql
            results.append(got)
        assert results[0] == results[1], soql
