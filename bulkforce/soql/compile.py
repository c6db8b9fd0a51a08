"""SOQL → a Plan: resolve names, apply the API's rules, and build parameterised SQL for the
store's dialect. Rows come in Id order unless ORDER BY says otherwise (Id then breaks ties),
so keyset pages never repeat or skip a row."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from bulkforce.engine.schema import Schema, SObject
from bulkforce.soql import ast
from bulkforce.soql.cond import Conditions, Operand, category
from bulkforce.soql.decode import decoder
from bulkforce.soql.errors import MALFORMED, SoqlError, at, unexpected
from bulkforce.soql.parser import parse
from bulkforce.soql.plan import Body, ChildOut, ChildPlan, FieldOut, Out, OutColumn, Plan, SortKey
from bulkforce.soql.rules import Api, check_api, check_compound
from bulkforce.soql.select import aggregate_plan
from bulkforce.soql.sqlgen import AGGREGATES, DATE_FUNCTIONS, Dialect, Sql
from bulkforce.soql.validate import Col, Scope, resolve_object

# Functions that wrap a selected field and leave its value as stored here (no labels,
# currencies or locales to apply).
PASSTHROUGH = frozenset({"TOLABEL", "CONVERTCURRENCY", "FORMAT"})


def compile_query(
    text: str, schema: Schema, *, api: Api, dialect: Dialect, all_rows: bool = False,
    tz: str = "UTC", now: dt.datetime | None = None,
) -> Plan:  # fmt: skip
    query = parse(text)
    return Compiler(text, schema, api, Sql(dialect), all_rows, tz,
                    now or dt.datetime.now(dt.UTC)).plan(query)  # fmt: skip


@dataclass
class Compiler:
    text: str
    schema: Schema
    api: Api
    sql: Sql
    all_rows: bool
    tz: str
    now: dt.datetime
    _subqueries: int = field(default=0)

    # ---- shared pieces -----------------------------------------------------------------------

    def scope(self, q: ast.Query, prefix: str = "t", root: SObject | None = None) -> Scope:
        obj = root or resolve_object(self.text, self.schema, q.object, q.object_pos)
        return Scope(self.text, self.schema, self.sql, obj, q.alias, prefix)

    def operand(self, scope: Scope, expr: ast.Expr, aggregates: bool = False) -> Operand:
        if isinstance(expr, ast.FieldPath):
            col = scope.resolve(expr)
            nillable = col.field.nillable or bool(col.hops)
            values = col.field.picklist_values if col.type == "picklist" else ()
            return Operand(col.sql, col.type, nillable, col.field.name, expr.pos, values)
        if expr.name in DATE_FUNCTIONS and len(expr.args) == 1:
            inner = self.operand(scope, expr.args[0])
            if category(inner.type) not in ("date", "datetime"):
                raise at(MALFORMED, self.text, expr.pos,
                         f"{expr.name} only applies to date and dateTime fields")  # fmt: skip
            if expr.name in ("HOUR_IN_DAY", "DAY_ONLY") and inner.type != "datetime":
                raise at(MALFORMED, self.text, expr.pos,
                         f"{expr.name} only applies to dateTime fields")  # fmt: skip
            typ = "date" if expr.name == "DAY_ONLY" else "int"
            return Operand(self.sql.date_part(expr.name, inner.sql, inner.type), typ, True,
                           f"{expr.name}({inner.name})", expr.pos)  # fmt: skip
        if expr.name == "CONVERTTIMEZONE" and len(expr.args) == 1:
            inner = self.operand(scope, expr.args[0])
            if self.tz != "UTC" or inner.type != "datetime":
                raise at(
                    MALFORMED,
                    self.text,
                    expr.pos,
                    "convertTimezone() is supported for dateTime fields in UTC only",
                )
            return inner
        if aggregates and expr.name in AGGREGATES:
            from bulkforce.soql.select import aggregate_operand

            return aggregate_operand(self, scope, expr)
        raise unexpected(self.text, expr.pos, expr.name, quoted=False)

    def where(self, scope: Scope, q: ast.Query, params: list[Any]) -> list[str]:
        out = []
        if not self.all_rows:
            out.append(f"{self.sql.col(scope.base, 'IsDeleted')} = {self.sql.false}")
        if q.where is not None:
            conds = Conditions(self.text, self.sql, params, lambda e: self.operand(scope, e),
                               lambda c: self.semi_join(scope, c, params), self.tz, self.now)  # fmt: skip
            out.append(conds.compile(q.where))
        return out

    def semi_join(self, scope: Scope, cond: ast.InQuery, params: list[Any]) -> str:
        left = self.operand(scope, cond.left)
        if left.type not in ("id", "reference"):
            raise at(
                MALFORMED,
                self.text,
                cond.pos,
                "semi join sub-selects are only valid on Id and reference fields",
            )
        sub = cond.query
        if sub.group_by or sub.order_by or sub.limit is not None or sub.offset is not None:
            raise at(MALFORMED, self.text, sub.pos, "unsupported clause in semi join sub-select")
        if len(sub.select) != 1 or not isinstance(sub.select[0], ast.SelectField) or \
                not isinstance(sub.select[0].expr, ast.FieldPath):  # fmt: skip
            raise at(
                MALFORMED,
                self.text,
                sub.pos,
                "semi join sub-selects must select exactly one Id or reference field",
            )
        self._subqueries += 1
        inner = self.scope(sub, prefix=f"q{self._subqueries}t")
        col = inner.resolve(sub.select[0].expr)
        if col.type not in ("id", "reference"):
            raise at(
                MALFORMED,
                self.text,
                sub.select[0].expr.pos,
                "semi join sub-selects must select exactly one Id or reference field",
            )
        sub_params: list[Any] = []
        where = self.where(inner, sub, sub_params)
        where.append(f"{col.sql} IS NOT NULL")
        params.extend(sub_params)
        text = f"SELECT {col.sql} FROM {inner.from_sql()} WHERE {' AND '.join(where)}"
        test = f"{left.sql} IN ({text})"
        return f"NOT {self.sql.is_true(test)}" if cond.negated else test

    def sort_keys(self, scope: Scope, q: ast.Query) -> list[SortKey]:
        return self.sort_keys_for(scope, q)

    def sort_keys_for(self, scope: Scope, q: ast.Query, aggregates: bool = False) -> list[SortKey]:
        keys = []
        for item in q.order_by:
            op = self.operand(scope, item.expr, aggregates)
            cat = category(op.type)
            if cat == "opaque":
                raise at(MALFORMED, self.text, op.pos, f"field '{op.name}' can not be sorted")
            expr = self.sql.fold(op.sql) if cat == "text" else op.sql
            nulls_last = item.descending if item.nulls_last is None else item.nulls_last
            if op.picklist:
                # Salesforce sorts a picklist in the order its values are defined; values not
                # in the definition come after them, alphabetically
                rank = self.sql.picklist_rank(op.sql, op.picklist)
                keys.append(SortKey(rank, item.descending, nulls_last, op.nillable, "int", op.sql))
            keys.append(
                SortKey(expr, item.descending, nulls_last, op.nillable, _kind(op.type), op.sql)
            )
        return keys

    # ---- the statement -----------------------------------------------------------------------

    def plan(self, q: ast.Query) -> Plan:
        scope = self.scope(q)
        check_api(self.text, q, self.api)
        params: list[Any] = []
        where = self.where(scope, q, params)
        where_joins = len(scope.joins)
        count_only = _is_count_only(q)
        if count_only and q.group_by:
            raise at(MALFORMED, self.text, q.group_pos, "COUNT() cannot be used with GROUP BY")
        aggregate = not count_only and (bool(q.group_by) or any(
            isinstance(i, ast.SelectField) and isinstance(i.expr, ast.Call)
            and i.expr.name in AGGREGATES for i in q.select
        ))  # fmt: skip
        if aggregate:
            return aggregate_plan(self, scope, q, where, params, where_joins)
        if q.having is not None:
            raise at(MALFORMED, self.text, q.pos, "HAVING without GROUP BY or aggregate")
        columns: list[OutColumn] = []
        select: list[str] = []
        outs: list[Out] = []
        decoders: list[Callable[[Any], Any]] = []
        children: list[ChildPlan] = []
        seen: set[tuple[str, ...]] = set()
        for item, pos in [] if count_only else self.expand(scope, q):
            if isinstance(item, ast.SelectSubquery):
                if self.api is Api.BULK2:
                    raise SoqlError("API_ERROR", "Aggregate Relationships not supported in "
                                    "Bulk V2 Query with CSV content type.")  # fmt: skip
                child = self.child_plan(scope, item)
                children.append(child)
                outs.append(ChildOut(child.name))
                continue
            if isinstance(item, ast.TypeOf):
                from bulkforce.soql.select import typeof_columns

                typeof_columns(self, scope, item, columns, select, outs, decoders)
                continue
            assert isinstance(item, ast.SelectField)
            col = self.select_col(scope, item)
            if item.alias is not None:  # the alias names a top-level value
                col = replace(col, hops=(), names_override=(item.alias,), id_sqls=())
            key = tuple(n.lower() for n in col.names)
            if key in seen:
                raise at(
                    MALFORMED, self.text, pos, f"duplicate field selected: {'.'.join(col.names)}"
                )
            seen.add(key)
            check_compound(self.api, scope.root, col.type)
            columns.append(OutColumn(".".join(col.names), col.names, col.type))
            decoders.append(decoder(col.type))
            outs.append(self.field_out(col, len(select)))
            select.append(col.sql)
        self.finish_outs(outs, select)
        sort = [*self.sort_keys(scope, q), SortKey(scope.sql.col(scope.base, "Id"), False,
                                                   False, False, "text")]  # fmt: skip
        key_at = len(select)
        select += [k.sql for k in sort]
        body = Body(self.sql, select, scope.from_sql(), where, params, sort=sort, key_at=key_at,
                    count_from=scope.from_sql(where_joins))  # fmt: skip
        return Plan(scope.root, columns, body, outs, decoders, self.schema, children=children,
                    count_only=count_only, aggregate=False, limit=q.limit, offset=q.offset,
                    id_at=len(select) - 1)  # fmt: skip

    def expand(self, scope: Scope, q: ast.Query) -> list[tuple[ast.SelectItem, int]]:
        """The select list with FIELDS() replaced by the fields it stands for."""
        out: list[tuple[ast.SelectItem, int]] = []
        for item in q.select:
            if isinstance(item, ast.Fields):
                for f in scope.root.fields.values():
                    custom = f.name.endswith("__c")
                    if item.kind == "ALL" or (item.kind == "CUSTOM") == custom:
                        path = ast.FieldPath(item.pos, (f.name,), (item.pos,))
                        out.append((ast.SelectField(path), item.pos))
                continue
            if (
                isinstance(item, ast.SelectField)
                and item.alias is not None
                and not (isinstance(item.expr, ast.Call) and item.expr.name in PASSTHROUGH)
            ):  # only toLabel(), FORMAT() and convertCurrency() take an alias here
                raise unexpected(self.text, item.alias_pos, item.alias, quoted=False)
            pos = item.expr.pos if isinstance(item, ast.SelectField) else item.pos
            out.append((item, pos))
        return out

    def select_col(self, scope: Scope, item: ast.SelectField) -> Col:
        expr = item.expr
        if isinstance(expr, ast.Call):
            if expr.name in PASSTHROUGH and len(expr.args) == 1 and \
                    isinstance(expr.args[0], ast.FieldPath):  # fmt: skip
                return scope.resolve(expr.args[0])
            if expr.name == "COUNT" and not expr.args:
                raise at(
                    MALFORMED,
                    self.text,
                    expr.pos,
                    "COUNT() must be the only element in the SELECT list",
                )
            raise unexpected(self.text, expr.pos, expr.name, quoted=False)
        return scope.resolve(expr)

    def field_out(self, col: Col, index: int, only_type: str | None = None) -> FieldOut:
        # hop Id positions are filled in by finish_outs, once all columns are known
        hop_types = tuple(None if h.polymorphic else h.targets[0].name for h in col.hops)
        return FieldOut(col.names, index, decoder(col.type), col.id_sqls, hop_types,
                        only_type)  # fmt: skip

    def finish_outs(self, outs: list[Out], select: list[str]) -> None:
        """Give each hop's parent-Id expression (and each TYPEOF branch value) a raw column,
        after the visible ones, shared by all that need it."""
        where: dict[str, int] = {}

        def place(expr: object) -> int:
            if isinstance(expr, int):
                return expr
            e = str(expr)
            if e not in where:
                where[e] = len(select)
                select.append(e)
            return where[e]

        for i, out in enumerate(outs):
            if isinstance(out, FieldOut):
                outs[i] = replace(
                    out, index=place(out.index), hop_ids=tuple(place(e) for e in out.hop_ids)
                )

    def child_plan(self, parent: Scope, item: ast.SelectSubquery) -> ChildPlan:
        sub = item.query
        rel = self.schema.child_relationship(parent.root, sub.object)
        if rel is None or rel.name is None:
            raise at("INVALID_TYPE", self.text, sub.object_pos,
                     f"Didn't understand relationship '{sub.object}' in FROM part of query call. "
                     "If you are attempting to use a custom relationship, be sure to append the "
                     "'__r' after the custom relationship name. Please reference your WSDL or the "
                     "describe call for the appropriate names.")  # fmt: skip
        if any(isinstance(i, ast.SelectSubquery) for i in sub.select) or sub.group_by or \
                sub.offset is not None:  # fmt: skip
            raise at(MALFORMED, self.text, sub.pos, "unsupported clause in child subquery")
        scope = Scope(self.text, self.schema, self.sql, rel.child, sub.alias)
        params: list[Any] = []
        where = self.where(scope, sub, params)
        columns: list[OutColumn] = []
        select: list[str] = []
        outs: list[Out] = []
        for it, pos in self.expand(scope, sub):
            if not isinstance(it, ast.SelectField):
                raise at(MALFORMED, self.text, pos, "unsupported item in child subquery")
            col = self.select_col(scope, it)
            columns.append(OutColumn(".".join(col.names), col.names, col.type))
            outs.append(self.field_out(col, len(select)))
            select.append(col.sql)
        self.finish_outs(outs, select)
        fk = self.sql.col(scope.base, rel.field.name)
        sort = [SortKey(fk, False, False, False, "text"), *self.sort_keys(scope, sub),
                SortKey(self.sql.col(scope.base, "Id"), False, False, False, "text")]  # fmt: skip
        key_at = len(select)
        select += [k.sql for k in sort]
        body = Body(self.sql, select, scope.from_sql(), where, params, sort=sort, key_at=key_at)
        return ChildPlan(rel.name, rel.child, columns, body, outs, fk, key_at, len(select) - 1,
                         sub.limit, self.schema)  # fmt: skip


def _kind(ftype: str) -> str:
    cat = category(ftype)
    if cat in ("text", "id"):
        return "text"
    if cat == "time":
        return "time"
    if cat == "number":
        return "int" if ftype in ("int", "long") else "number"
    if cat in ("date", "datetime", "boolean"):
        return cat
    return ""


def _is_count_only(q: ast.Query) -> bool:
    return len(q.select) == 1 and isinstance(q.select[0], ast.SelectField) and \
        isinstance(q.select[0].expr, ast.Call) and q.select[0].expr.name == "COUNT" and \
        not q.select[0].expr.args  # fmt: skip
