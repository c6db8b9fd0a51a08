"""Lexer and parser: token shapes, Salesforce's grammar rules, the typed tree, error positions
(`ERROR at Row:r:Column:c` under the offending token), and round-trip properties."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_soql_differential import aggregate_queries, queries

from bulkforce.soql import SoqlError, ast, parse
from bulkforce.soql.errors import caret_block
from bulkforce.soql.lexer import tokenize


def kinds(text: str) -> list[tuple[str, str]]:
    return [(t.kind.value, t.text) for t in tokenize(text)[:-1]]


_POSITIONS = frozenset(
    ["pos", "offsets", "alias_pos", "object_pos", "limit_pos", "offset_pos", "group_pos", "text"]
)


def strip_positions(node: Any) -> Any:
    """The tree without offsets and as-written spellings, for comparing two parses."""
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        fields = [f.name for f in dataclasses.fields(node) if f.name not in _POSITIONS]
        return (type(node).__name__, *((f, strip_positions(getattr(node, f))) for f in fields))
    if isinstance(node, tuple | list):
        return tuple(strip_positions(x) for x in node)
    return node


def where_of(soql: str) -> ast.Cond:
    cond = parse(f"SELECT Id FROM Account WHERE {soql}").where
    assert cond is not None
    return cond


# ---- lexer -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "literal",
    ["2017-01-01T00:00:00Z", "2024-04-30T08:15:02.000Z", "2024-04-30T08:05:02.000000Z",
     "2024-04-30T08:15:02.000+0000", "2024-01-01T00:00:00.000+00:00", "1987-02-01T01:02:03+00:00",
     "2024-05-01T10:15:30.123456789+02:00", "2022-12-01T10:47:53.299852-06:00",
     "2024-01-01T00:00:00z"],
)  # fmt: skip
def test_every_datetime_form_is_one_token(literal: str) -> None:
    assert kinds(f"x > {literal}") == [("word", "x"), ("op", ">"), ("datetime", literal)]


def test_same_instant_in_every_form() -> None:
    forms = ["2024-04-30T08:15:02Z", "2024-04-30T08:15:02.000Z", "2024-04-30T08:15:02.000000Z",
             "2024-04-30T08:15:02.000+0000", "2024-04-30T08:15:02.000+00:00",
             "2024-04-30T10:15:02+02:00", "2024-04-30T03:15:02.000000000-05:00"]  # fmt: skip
    values = {
        next(c for c in [where_of(f"CreatedDate = {f}")] if isinstance(c, ast.Compare)).right.value
        for f in forms
    }
    assert values == {dt.datetime(2024, 4, 30, 8, 15, 2, tzinfo=dt.UTC)}


def test_tokens_of_values() -> None:
    assert kinds("a = -5 AND b = 1.25 AND c = USD100 AND d = EUR2.50 AND e = 2024-01-31") == [
        ("word", "a"), ("op", "="), ("number", "-5"), ("word", "AND"), ("word", "b"), ("op", "="),
        ("number", "1.25"), ("word", "AND"), ("word", "c"), ("op", "="), ("word", "USD100"),
        ("word", "AND"), ("word", "d"), ("op", "="), ("word", "EUR2.50"), ("word", "AND"),
        ("word", "e"), ("op", "="), ("date", "2024-01-31"),
    ]  # fmt: skip
    assert kinds("a<>b!=c<=d>=e") == [("word", "a"), ("op", "<>"), ("word", "b"), ("op", "!="),
                                      ("word", "c"), ("op", "<="), ("word", "d"), ("op", ">="),
                                      ("word", "e")]  # fmt: skip


def test_string_escapes() -> None:
    cond = where_of(r"Name = 'O\'Brien \\ \"q\" \n\t \u00e9'")
    assert isinstance(cond, ast.Compare) and cond.right.value == 'O\'Brien \\ "q" \n\t é'
    with pytest.raises(SoqlError) as e:
        where_of(r"Name = 'bad \q'")
    assert (
        e.value.code == "MALFORMED_QUERY" and "Illegal character sequence '\\q'" in e.value.message
    )


# ---- parser ------------------------------------------------------------------------------------


def test_query_tree() -> None:
    q = parse("SELECT Id, Account.Name, COUNT(Id) cnt, (SELECT LastName FROM Contacts LIMIT 5), "
              "TYPEOF What WHEN Account THEN Phone ELSE Name END, FIELDS(STANDARD) FROM Contact c "
              "USING SCOPE mine WHERE c.LastName LIKE 'a%' GROUP BY ROLLUP(Name) HAVING "
              "COUNT(Id) > 1 ORDER BY Name DESC NULLS LAST, Id LIMIT 10 OFFSET 5 FOR VIEW")  # fmt: skip
    assert (q.object, q.alias, q.scope, q.rollup, q.limit, q.offset, q.for_) == (
        "Contact",
        "c",
        "mine",
        "ROLLUP",
        10,
        5,
        ("VIEW",),
    )
    field, count, sub, typeof, fields = q.select[1:]
    assert isinstance(field, ast.SelectField) and isinstance(field.expr, ast.FieldPath)
    assert field.expr.parts == ("Account", "Name")
    assert isinstance(count, ast.SelectField) and count.alias == "cnt"
    assert isinstance(count.expr, ast.Call) and count.expr.name == "COUNT"
    assert isinstance(sub, ast.SelectSubquery) and sub.query.object == "Contacts"
    assert sub.query.limit == 5
    assert isinstance(typeof, ast.TypeOf) and typeof.whens[0][0] == "Account"
    assert [p.parts for p in typeof.otherwise] == [("Name",)]
    assert isinstance(fields, ast.Fields) and fields.kind == "STANDARD"
    assert [(o.descending, o.nulls_last) for o in q.order_by] == [(True, True), (False, None)]


@pytest.mark.parametrize(
    ("soql", "obj", "alias"),
    [("SELECT Id FROM Group", "Group", None), ("SELECT Id FROM Order ORDER BY Name", "Order", None),
     ("SELECT Id FROM Group GROUP BY Id", "Group", None), ("SELECT Id FROM Account a", "Account", "a"),
     ("SELECT Id FROM Account LIMIT 5", "Account", None),
     ("SELECT Id FROM Account OFFSET 5", "Account", None),
     ("SELECT Id FROM from__c where__c WHERE Id = null", "from__c", "where__c")],
)  # fmt: skip
def test_keywords_name_objects_where_they_can(soql: str, obj: str, alias: str | None) -> None:
    q = parse(soql)
    assert (q.object, q.alias) == (obj, alias)


def test_and_or_never_mix_without_parentheses() -> None:
    for bad, token in [("a = 1 AND b = 2 OR c = 3", "OR"), ("a = 1 OR b = 2 AND c = 3", "AND"),
                       ("NOT a = 1 AND b = 2", "AND"), ("a = 1 AND NOT (b = 2)", "'NOT'")]:  # fmt: skip
        with pytest.raises(SoqlError) as e:
            where_of(bad)
        assert e.value.message.endswith(f"unexpected token: {token}"), bad
    ok = where_of("(a = 1 AND b = 2) OR c = 3")
    assert isinstance(ok, ast.Or) and isinstance(ok.items[0], ast.And)
    assert isinstance(where_of("(NOT a = 1) AND b = 2"), ast.And)
    assert isinstance(where_of("a = 1 AND (NOT (b = 2))"), ast.And)
    assert isinstance(where_of("NOT a = 1"), ast.Not)


def test_relative_literals_need_their_number_attached() -> None:
    c = where_of("CreatedDate = LAST_N_DAYS:30")
    assert isinstance(c, ast.Compare) and c.right.value == ("LAST_N_DAYS", 30)
    for bad in ("CreatedDate = LAST_N_DAYS : 30", "CreatedDate = LAST_N_DAYS:", "d = LAST_N_DAYS"):
        with pytest.raises(SoqlError):
            where_of(bad)


def test_semi_join_and_in_lists() -> None:
    c = where_of("Id NOT IN (SELECT AccountId FROM Contact WHERE LastName = 'x')")
    assert isinstance(c, ast.InQuery) and c.negated and c.query.object == "Contact"
    c = where_of("CreatedDate IN (TODAY, THIS_MONTH, 2024-01-01)")
    assert isinstance(c, ast.InList) and [v.kind for v in c.values] == [
        "relative",
        "relative",
        "date",
    ]


# ---- error positions ---------------------------------------------------------------------------


def where_error(text: str) -> tuple[int, int, str]:
    m = re.search(r"ERROR at Row:(\d+):Column:(\d+)\n(.*)$", text, re.S)
    assert m, text
    return int(m[1]), int(m[2]), m[3]


def test_caret_block_window_and_multiline_position() -> None:
    text = "SELECT Id, Name, Phone, Website, Industry, Description FROM Account WHERE Bogus = 1"
    block = caret_block(text, text.index("Bogus"))
    lines = block.split("\n")
    assert lines[0] == "" and lines[3] == f"ERROR at Row:1:Column:{text.index('Bogus') + 1}"
    assert lines[1] == ", Description FROM Account WHERE Bogus = 1"  # never half a word
    assert lines[2] == " " * lines[1].index("Bogus") + "^"
    text = "SELECT Id\nFROM Account\nWHERE  Name = 'x' OR"
    with pytest.raises(SoqlError) as e:
        parse(text)
    assert where_error(e.value.message) == (3, 21, "unexpected token: '<EOF>'")


@settings(max_examples=200, deadline=None)
@given(soql=queries(), cut=st.floats(0, 1))
def test_a_cut_query_fails_at_its_end_or_parses(soql: str, cut: float) -> None:
    toks = tokenize(soql)
    k = int(cut * (len(toks) - 1))
    prefix = soql[: toks[k].pos].rstrip()
    try:
        parse(prefix)
    except SoqlError as e:
        row, col, detail = where_error(e.message)
        assert row == 1
        if detail.endswith("'<EOF>'"):
            assert col == len(prefix) + 1
        else:  # the caret stands on the token the message names
            shown = detail.removeprefix("unexpected token: ").strip("'")
            assert prefix[col - 1 :].startswith(shown) or detail.startswith("no viable")


KEYWORDS = re.compile(r"\b(SELECT|FROM|WHERE|AND|OR|NOT|IN|LIKE|INCLUDES|EXCLUDES|ORDER|BY|"
                      r"ASC|DESC|NULLS|FIRST|LAST|LIMIT|null|true|false)\b", re.I)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(soql=queries(), data=st.data())
def test_keyword_case_and_whitespace_do_not_change_the_tree(soql: str, data: st.DataObject) -> None:
    def recase(m: re.Match[str]) -> str:
        return data.draw(st.sampled_from([m[0].upper(), m[0].lower(), m[0].capitalize()]))

    parts = re.split(r"('(?:[^'\\]|\\.)*')", soql)  # keep string literals as they are
    varied = "".join(p if p.startswith("'") else KEYWORDS.sub(recase, p) for p in parts)
    varied = re.sub(
        r"(?<=[,(]) ", lambda m: data.draw(st.sampled_from([" ", "\n  ", "\t"])), varied
    )
    varied = (
        data.draw(st.sampled_from(["", " ", "\n"]))
        + varied
        + data.draw(st.sampled_from(["", "  ", " \n"]))
    )
    assert strip_positions(parse(varied)) == strip_positions(parse(soql))


# ---- round trip: tree → SOQL text → the same tree -------------------------------------------


def _expr(e: ast.Expr) -> str:
    if isinstance(e, ast.FieldPath):
        return e.text
    return f"{e.name}({', '.join(_expr(a) for a in e.args)})"


def _value(v: ast.Literal) -> str:
    return v.text


def _cond(c: ast.Cond) -> str:
    if isinstance(c, ast.And | ast.Or):
        word = " AND " if isinstance(c, ast.And) else " OR "
        return "(" + word.join(_cond(i) for i in c.items) + ")"
    if isinstance(c, ast.Not):
        return f"(NOT {_cond(c.item)})"
    if isinstance(c, ast.Compare):
        return f"{_expr(c.left)} {c.op} {_value(c.right)}"
    if isinstance(c, ast.InList | ast.Includes):
        word = ("NOT IN" if c.negated else "IN") if isinstance(c, ast.InList) else \
            ("EXCLUDES" if c.excludes else "INCLUDES")  # fmt: skip
        return f"{_expr(c.left)} {word} ({', '.join(_value(v) for v in c.values)})"
    return f"{_expr(c.left)} {'NOT IN' if c.negated else 'IN'} ({to_soql(c.query)})"


def to_soql(q: ast.Query) -> str:
    items = []
    for i in q.select:
        assert isinstance(i, ast.SelectField)
        items.append(_expr(i.expr) + (f" {i.alias}" if i.alias else ""))
    out = f"SELECT {', '.join(items)} FROM {q.object}" + (f" {q.alias}" if q.alias else "")
    if q.where is not None:
        out += f" WHERE {_cond(q.where)}"
    if q.group_by:
        out += " GROUP BY " + ", ".join(_expr(g) for g in q.group_by)
    if q.having is not None:
        out += f" HAVING {_cond(q.having)}"
    if q.order_by:
        keys = []
        for o in q.order_by:
            nulls = (
                "" if o.nulls_last is None else (" NULLS LAST" if o.nulls_last else " NULLS FIRST")
            )
            keys.append(_expr(o.expr) + (" DESC" if o.descending else "") + nulls)
        out += " ORDER BY " + ", ".join(keys)
    if q.limit is not None:
        out += f" LIMIT {q.limit}"
    if q.offset is not None:
        out += f" OFFSET {q.offset}"
    return out


@settings(max_examples=300, deadline=None)
@given(soql=queries() | aggregate_queries())
def test_round_trip_through_text(soql: str) -> None:
    tree = parse(soql)
    again = parse(to_soql(tree))
    assert strip_positions(again) == strip_positions(tree)
    assert to_soql(again) == to_soql(tree)
