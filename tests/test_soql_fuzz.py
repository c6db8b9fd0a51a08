"""Hostile SOQL never escapes as anything but a SoqlError, and whatever compiles runs: mutated
statements (tokens dropped, doubled, swapped, replaced) and token soup go through parse and
compile for every API, and each plan that compiles executes on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from soql_data import NOW, open_loaded, schema
from test_soql_conformance import CASES
from test_soql_differential import queries

from bulkforce.soql import Api, Dialect, SoqlError, compile_query
from bulkforce.soql.lexer import tokenize
from bulkforce.store import Store

SCHEMA = schema()


def _tokenizes(text: str) -> bool:
    try:
        tokenize(text)
    except SoqlError:
        return False
    return len(text) < 2000


SEEDS = [c.soql for c in CASES if _tokenizes(c.soql)] + [
    "SELECT Name, (SELECT LastName, Account.Name FROM Contacts WHERE LastName != null "
    "ORDER BY LastName DESC LIMIT 2) FROM Account WHERE Name LIKE 'a%' ORDER BY Name",
    "SELECT Subject, TYPEOF What WHEN Account THEN Name, Industry WHEN Opportunity THEN Amount "
    "ELSE Name END, Who.Name FROM Task ORDER BY Subject",
    "SELECT Industry, COUNT(Id) c, MAX(AnnualRevenue) FROM Account WHERE Name != null GROUP BY "
    "Industry HAVING COUNT(Id) > 0 ORDER BY COUNT(Id) DESC LIMIT 3",
    "SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Contact WHERE Email != null)",
]
VOCAB = ["SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "(", ")", ",", ".", ":", "=", "!=", "<",
         "IN", "LIKE", "INCLUDES", "ORDER", "BY", "GROUP", "HAVING", "LIMIT", "OFFSET", "NULLS",
         "LAST", "DESC", "COUNT", "TYPEOF", "WHEN", "THEN", "ELSE", "END", "FIELDS", "ALL",
         "Account", "Contact", "Contacts", "Name", "Id", "Owner", "What", "Tags__c", "Due__c",
         "'x'", "'%\\_'", "5", "-1.5", "USD5", "null", "true", "TODAY", "LAST_N_DAYS", "2024-01-01",
         "2024-01-01T00:00:00Z", "CALENDAR_YEAR", "99999999999999999999", "-9e999", "USD1e5", "FOR", "VIEW", "Gadget__c", "Seen__c", "Who"]  # fmt: skip


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(SEEDS) | queries())
    toks = [text[t.pos : t.end] for t in tokenize(text)[:-1]]
    for _ in range(draw(st.integers(1, 3))):
        if not toks:
            break
        i = draw(st.integers(0, len(toks) - 1))
        op = draw(st.sampled_from(["drop", "double", "swap", "replace"]))
        if op == "drop":
            del toks[i]
        elif op == "double":
            toks.insert(i, toks[i])
        elif op == "swap" and i + 1 < len(toks):
            toks[i], toks[i + 1] = toks[i + 1], toks[i]
        else:
            toks[i] = draw(st.sampled_from(VOCAB))
    return " ".join(toks)


SOUP = st.lists(st.sampled_from(VOCAB), max_size=25).map(" ".join)


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[tuple[Store, Dialect]]]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    with open_loaded("sqlite", tmp) as lite, open_loaded("postgresql", tmp) as pg:
        yield [lite, pg]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=mutated() | SOUP | st.text(max_size=60), api=st.sampled_from(list(Api)))
def test_anything_is_a_plan_or_a_soql_error(
    both: list[tuple[Store, Dialect]], text: str, api: Api
) -> None:
    for store, dialect in both:
        try:
            plan = compile_query(text, SCHEMA, api=api, dialect=dialect, now=NOW)
        except SoqlError as e:
            assert e.code and e.message
            continue
        list(store.query_rows(*plan.sql(size=5)))
        list(store.query_rows(*plan.count_sql()))
        for child in plan.children:
            list(store.query_rows(*child.sql(["001000000000000AAA"])))
