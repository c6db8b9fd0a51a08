"""WHERE and HAVING conditions → SQL. Each predicate is true or false, never unknown, as in
SOQL: `!=`, NOT IN, EXCLUDES and NOT match rows whose field is null. Predicates on a plain
column keep the column bare (no function around it) where the type allows, so indexes serve
range filters such as incremental extracts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bulkforce.engine import ids
from bulkforce.engine.schema import NUMBER_TYPES, STRING_TYPES
from bulkforce.soql import ast
from bulkforce.soql.dates import day_range, day_start_utc, today_in
from bulkforce.soql.errors import INVALID_FIELD, MALFORMED, SoqlError, at
from bulkforce.soql.lexer import plain
from bulkforce.soql.sqlgen import Sql, fold

_MS = dt.timedelta(milliseconds=1)


@dataclass(frozen=True)
class Operand:
    sql: str
    type: str  # describe type; date parts are "int"
    nillable: bool
    name: str  # canonical, for messages
    pos: int
    picklist: tuple[str, ...] = ()  # a picklist's values in their defined order (sorting)


def category(ftype: str) -> str:
    if ftype in ("id", "reference"):
        return "id"
    if ftype == "boolean":
        return "boolean"
    if ftype in ("int", "long") or ftype in NUMBER_TYPES:
        return "number"
    if ftype in ("date", "datetime", "time"):
        return ftype
    if ftype in STRING_TYPES or ftype in ("base64", "string"):
        return "text"
    return "opaque"


_TYPE_WORD = {"id": "id", "boolean": "boolean", "number": "double", "date": "date",
              "datetime": "dateTime", "time": "time", "text": "string"}  # fmt: skip


@dataclass
class Conditions:
    text: str
    sql: Sql
    params: list[Any]
    operand: Callable[[ast.Expr], Operand]
    semi_join: Callable[[ast.InQuery], str]
    tz: str
    now: dt.datetime

    def compile(self, cond: ast.Cond, top: bool = True) -> str:
        if isinstance(cond, ast.And):
            return "(" + " AND ".join(self.compile(c, top) for c in cond.items) + ")"
        if isinstance(cond, ast.Or):
            return "(" + " OR ".join(self.compile(c, False) for c in cond.items) + ")"
        if isinstance(cond, ast.Not):
            return f"NOT {self.sql.is_true(self.compile(cond.item, False))}"
        if isinstance(cond, ast.InQuery):
            if not top:
                raise at(MALFORMED, self.text, cond.pos,
                         "Semi join sub-selects are only allowed at the top level WHERE "
                         "expressions and not in nested WHERE expressions.")  # fmt: skip
            return self.semi_join(cond)
        left = self.operand(cond.left)
        if isinstance(cond, ast.InList):
            inner = self.in_list(left, cond.values)
            return f"NOT {self.sql.is_true(inner)}" if cond.negated else inner
        if isinstance(cond, ast.Includes):
            return self.includes(left, cond)
        return self.compare(left, cond.op, cond.right)

    def bind(self, value: Any, kind: str = "") -> str:
        self.params.append(value)
        return self.sql.ph(kind)

    # ---- values ------------------------------------------------------------------------------

    def wrong_value(self, left: Operand, lit: ast.Literal) -> SoqlError:
        cat = category(left.type)
        word = "integer" if left.type in ("int", "long") else _TYPE_WORD.get(cat, left.type)
        quotes = "should be enclosed in quotes" if cat in ("text", "id") else \
            "should not be enclosed in quotes"  # fmt: skip
        return at(INVALID_FIELD, self.text, lit.pos,
                  f"value of filter criterion for field '{left.name}' must be of type {word} "
                  f"and {quotes}")  # fmt: skip

    def scalar(self, left: Operand, lit: ast.Literal) -> tuple[Any, str]:
        """The bound value and its placeholder kind for a non-null, non-relative literal."""
        cat = category(left.type)
        v = lit.value
        if cat == "text" and lit.kind == "string":
            return fold(plain(str(v))), "text"
        if cat == "id" and lit.kind == "string":
            norm = ids.normalize(plain(str(v)))
            if norm is None:
                raise at("INVALID_QUERY_FILTER_OPERATOR", self.text, lit.pos,
                         f"invalid ID field: {plain(str(v))}")  # fmt: skip
            return norm, "text"
        if cat == "boolean" and lit.kind == "boolean":
            return self.sql.value(v, "boolean"), "boolean"
        if cat == "number" and lit.kind in ("number", "currency"):
            return v, "number" if isinstance(v, float) or left.type not in ("int", "long") \
                else "int"  # fmt: skip
        if cat == "date" and lit.kind == "date":
            return self.sql.value(v, "date"), "date"
        if cat == "time" and lit.kind in ("time", "string"):
            try:
                t = (
                    v
                    if isinstance(v, dt.time)
                    else dt.time.fromisoformat(plain(str(v)).rstrip("Z"))
                )
            except ValueError:
                raise self.wrong_value(left, lit) from None
            return self.sql.value(t, "time"), "time"
        raise self.wrong_value(left, lit)

    def day_bounds(self, left: Operand, lit: ast.Literal) -> tuple[Any, Any, str]:
        assert isinstance(lit.value, tuple)
        name, n = lit.value
        start, end = day_range(name, n, today_in(self.tz, self.now))
        if category(left.type) == "date":
            return self.sql.value(start, "date"), self.sql.value(end, "date"), "date"
        if category(left.type) != "datetime":
            raise self.wrong_value(left, lit)
        lo, hi = day_start_utc(start, self.tz), day_start_utc(end, self.tz)
        return self.sql.value(lo, "datetime"), self.sql.value(hi, "datetime"), "datetime"

    # ---- predicates --------------------------------------------------------------------------

    def compare(self, left: Operand, op: str, lit: ast.Literal) -> str:
        x = left.sql
        cat = category(left.type)
        if cat == "opaque":
            raise at(INVALID_FIELD, self.text, left.pos,
                     f"field '{left.name}' can not be filtered in a query call")  # fmt: skip
        if lit.kind == "null":
            if op in ("=", "!=") and cat == "boolean":
                # "null matches FALSE values" on a boolean field (SOQL reference, null in WHERE)
                false = self.bind(self.sql.value(False, "boolean"), "boolean")
                return f"({x} IS NULL OR {x} = {false})" if op == "=" else f"{x} <> {false}"
            if op == "=":
                return f"{x} IS NULL"
            if op == "!=":
                return f"{x} IS NOT NULL"
            raise at(MALFORMED, self.text, lit.pos, "invalid operator on null value")
        if op == "LIKE":
            if cat != "text" or lit.kind != "string":
                raise at(INVALID_FIELD, self.text, lit.pos,
                         f"invalid operator on field '{left.name}': LIKE")  # fmt: skip
            return f"{self.sql.fold(x)} LIKE {self.bind(like_pattern(str(lit.value)), 'text')} " \
                "ESCAPE '\\'"  # fmt: skip
        if lit.kind == "relative":
            lo, hi, kind = self.day_bounds(left, lit)
            return self.range_compare(x, op, lo, hi, kind, left.nillable)
        if cat == "datetime":
            if lit.kind != "datetime":
                raise self.wrong_value(left, lit)
            return self.datetime_compare(x, op, lit.value, left.nillable)  # type: ignore[arg-type]
        value, kind = self.scalar(left, lit)
        expr = self.sql.fold(x) if cat == "text" else x
        if cat == "boolean" and op not in ("=", "!="):
            raise at(INVALID_FIELD, self.text, lit.pos,
                     f"invalid operator on boolean field '{left.name}': {op}")  # fmt: skip
        return self.op(expr, op, self.bind(value, kind), x if left.nillable else None)

    def op(self, expr: str, op: str, ph: str, null_col: str | None) -> str:
        if op == "!=":
            return f"({null_col} IS NULL OR {expr} <> {ph})" if null_col else f"{expr} <> {ph}"
        return f"{expr} {op} {ph}"

    def datetime_compare(self, x: str, op: str, value: dt.datetime, nillable: bool) -> str:
        """Stored datetimes have millisecond precision: a finer literal is rounded the way
        that keeps the comparison exact, so the bare column is compared (index-friendly) to
        a value in the stored form."""
        floor = value.replace(microsecond=value.microsecond // 1000 * 1000)
        ceil = floor if floor == value else floor + _MS
        exact = floor == value
        if op in (">=", "<"):
            return f"{x} {op} {self.bind(self.sql.value(ceil, 'datetime'), 'datetime')}"
        if op in (">", "<="):
            return f"{x} {op} {self.bind(self.sql.value(floor, 'datetime'), 'datetime')}"
        if op == "=":
            if not exact:
                return "1 = 0"
            return f"{x} = {self.bind(self.sql.value(floor, 'datetime'), 'datetime')}"
        if not exact:
            return "1 = 1"
        ph = self.bind(self.sql.value(floor, "datetime"), "datetime")
        return self.op(x, "!=", ph, x if nillable else None)

    def range_compare(self, x: str, op: str, lo: Any, hi: Any, kind: str, nillable: bool) -> str:
        """A relative date literal is a range [lo, hi) of days."""
        if op == "=":
            return f"({x} >= {self.bind(lo, kind)} AND {x} < {self.bind(hi, kind)})"
        if op == "!=":
            null = f"{x} IS NULL OR " if nillable else ""
            return f"({null}{x} < {self.bind(lo, kind)} OR {x} >= {self.bind(hi, kind)})"
        if op == "<":
            return f"{x} < {self.bind(lo, kind)}"
        if op == "<=":
            return f"{x} < {self.bind(hi, kind)}"
        if op == ">":
            return f"{x} >= {self.bind(hi, kind)}"
        return f"{x} >= {self.bind(lo, kind)}"

    def in_list(self, left: Operand, values: tuple[ast.Literal, ...]) -> str:
        x = left.sql
        cat = category(left.type)
        parts: list[str] = []
        plain_values: list[tuple[Any, str]] = []
        for lit in values:
            if lit.kind in ("null", "relative") or cat == "datetime":
                parts.append(self.compare(left, "=", lit))
            else:
                plain_values.append(self.scalar(left, lit))
        if plain_values:
            expr = self.sql.fold(x) if cat == "text" else x
            marks = ", ".join(self.bind(v, k) for v, k in plain_values)
            parts.append(f"{expr} IN ({marks})")
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def includes(self, left: Operand, cond: ast.Includes) -> str:
        if left.type != "multipicklist":
            raise at(INVALID_FIELD, self.text, cond.pos,
                     f"includes or excludes operator only valid on multipicklist field: "
                     f"{left.name}")  # fmt: skip
        hay = self.sql.concat("';'", self.sql.fold(left.sql), "';'")
        alternatives = []
        for lit in cond.values:
            if lit.kind != "string":
                raise self.wrong_value(left, lit)
            # 'a;b' in one value means both selections
            needed = [p.strip() for p in plain(str(lit.value)).split(";") if p.strip()]
            terms = [self.sql.contains(hay, self.bind(f";{fold(p)};", "text")) for p in needed]
            alternatives.append("(" + " AND ".join(terms or ["1 = 0"]) + ")")
        inner = "(" + " OR ".join(alternatives) + ")"
        return f"NOT {self.sql.is_true(inner)}" if cond.excludes else inner


def like_pattern(value: str) -> str:
    """A SOQL LIKE pattern (`%`, `_`, escaped `\\%` `\\_` marked by the lexer) as an SQL LIKE
    pattern with `\\` as its escape character, folded like the column."""
    out = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\x00" and i + 1 < len(value):
            out.append("\\" + value[i + 1])
            i += 2
            continue
        out.append("\\\\" if ch == "\\" else ch)
        i += 1
    return fold("".join(out))
