"""The select lists that are not plain field lists: aggregate queries (GROUP BY, HAVING,
COUNT/SUM/…, `expr0` names) and TYPEOF branches."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bulkforce.soql import ast
from bulkforce.soql.cond import Conditions, Operand, category
from bulkforce.soql.decode import decoder
from bulkforce.soql.errors import MALFORMED, at, bad_type, no_such_column
from bulkforce.soql.plan import Body, FieldOut, Out, OutColumn, Plan, SortKey
from bulkforce.soql.sqlgen import AGGREGATES, DATE_FUNCTIONS
from bulkforce.soql.validate import Scope

if TYPE_CHECKING:
    from bulkforce.soql.compile import Compiler


def aggregate_operand(c: Compiler, scope: Scope, expr: ast.Call) -> Operand:
    name = expr.name
    if name == "COUNT" and not expr.args:
        return Operand("COUNT(*)", "int", False, "COUNT()", expr.pos)
    if len(expr.args) != 1 or not isinstance(expr.args[0], ast.FieldPath):
        raise at(MALFORMED, c.text, expr.pos, f"{name} takes one field")
    inner = c.operand(scope, expr.args[0])
    cat = category(inner.type)
    if name == "COUNT":
        return Operand(f"COUNT({inner.sql})", "int", False, inner.name, expr.pos)
    if name == "COUNT_DISTINCT":
        x = c.sql.fold(inner.sql) if cat == "text" else inner.sql
        return Operand(f"COUNT(DISTINCT {x})", "int", False, inner.name, expr.pos)
    numeric = cat == "number"
    if (name in ("SUM", "AVG") and not numeric) or cat in ("boolean", "opaque"):
        raise at(MALFORMED, c.text, expr.args[0].pos,
                 f"field {inner.name} does not support aggregate operator {name}")  # fmt: skip
    if name == "AVG":
        return Operand(f"AVG({inner.sql})", "double", True, inner.name, expr.pos)
    x = f'{inner.sql} COLLATE "C"' if c.sql.pg and cat in ("text", "id") else inner.sql
    total = f"{name}({x})"
    scale = _scale(scope, expr.args[0])
    if name == "SUM" and scale:
        # a sum of values with `scale` decimals has as many: rounding drops the binary noise of
        # SQLite's REAL arithmetic, so both databases give PostgreSQL's exact NUMERIC sum
        total = f"ROUND(CAST({total} AS NUMERIC), {scale})" if c.sql.pg else \
            f"ROUND({total}, {scale})"  # fmt: skip
    return Operand(total, inner.type, True, inner.name, expr.pos)


def _scale(scope: Scope, path: ast.FieldPath) -> int:
    return scope.resolve(path).field.scale


def aggregate_plan(
    c: Compiler, scope: Scope, q: ast.Query, where: list[str], params: list[Any], where_joins: int
) -> Plan:
    if q.rollup:
        raise at(MALFORMED, c.text, q.group_pos, f"GROUP BY {q.rollup} is not supported")
    groups: list[str] = []
    ties: list[SortKey] = []
    for g in q.group_by:
        op = c.operand(scope, g)
        if category(op.type) == "opaque":
            raise at(
                MALFORMED, c.text, op.pos, f"field '{op.name}' can not be grouped in a query call"
            )
        groups.append(op.sql)
        # groups differing only in letter case tie under a case-insensitive ORDER BY: the raw
        # values, in byte order on both databases, settle their order
        raw = (
            f'{op.sql} COLLATE "C"' if c.sql.pg and category(op.type) in ("text", "id") else op.sql
        )
        ties.append(SortKey(raw, False, False, True, "", op.sql))
    columns: list[OutColumn] = []
    select: list[str] = []
    decoders: list[Callable[[Any], Any]] = []
    n = 0
    for item in q.select:
        if not isinstance(item, ast.SelectField):
            pos = item.pos
            raise at(MALFORMED, c.text, pos, "only fields and aggregate functions may be selected "
                     "in an aggregate query")  # fmt: skip
        expr = item.expr
        if isinstance(expr, ast.Call) and expr.name == "COUNT" and not expr.args:
            raise at(
                MALFORMED, c.text, expr.pos, "COUNT() must be the only element in the SELECT list"
            )
        if isinstance(expr, ast.Call) and (expr.name in AGGREGATES or expr.name in DATE_FUNCTIONS):
            op = c.operand(scope, expr, aggregates=True)
            if expr.name in DATE_FUNCTIONS and op.sql not in groups:
                raise at(
                    MALFORMED, c.text, expr.pos, f"Field must be grouped or aggregated: {expr.name}"
                )
            name = item.alias or f"expr{n}"
            if item.alias is None:
                n += 1
            path: tuple[str, ...] = (name,)
        else:
            op = c.operand(scope, expr)
            if op.sql not in groups:
                raise at(
                    MALFORMED, c.text, op.pos, f"Field must be grouped or aggregated: {op.name}"
                )
            name = item.alias or op.name
            path = (name,)
        if any(col.name.lower() == name.lower() for col in columns):
            raise at(MALFORMED, c.text, item.alias_pos or op.pos, f"duplicate alias: {name}")
        columns.append(OutColumn(name, path, op.type))
        decoders.append(decoder(op.type))
        select.append(op.sql)
    having = None
    having_params: list[Any] = []
    if q.having is not None:
        conds = Conditions(c.text, c.sql, having_params,
                           lambda e: _grouped(c, scope, e, groups), lambda _: "",
                           c.tz, c.now)  # fmt: skip
        having = conds.compile(q.having, top=False)
    sort = []
    for key in c.sort_keys_for(scope, q, aggregates=True):
        if key.raw not in groups and not _is_aggregate_sql(key.raw):
            raise at(MALFORMED, c.text, q.pos, "ORDER BY items must be grouped or aggregated")
        sort.append(key)
    sort += ties
    body = Body(c.sql, select, scope.from_sql(), where, params, group_by=groups, having=having,
                having_params=having_params, sort=sort, key_at=len(select),
                count_from=scope.from_sql(where_joins))  # fmt: skip
    return Plan(scope.root, columns, body, [], decoders, c.schema, children=[],
                count_only=False, aggregate=True, limit=q.limit, offset=q.offset, id_at=-1)  # fmt: skip


def _grouped(c: Compiler, scope: Scope, expr: ast.Expr, groups: list[str]) -> Operand:
    op = c.operand(scope, expr, aggregates=True)
    if not _is_aggregate_sql(op.sql) and op.sql not in groups:
        raise at(MALFORMED, c.text, op.pos, f"Field must be grouped or aggregated: {op.name}")
    return op


def _is_aggregate_sql(sql: str) -> bool:
    return sql.startswith(("COUNT(", "SUM(", "AVG(", "MIN(", "MAX(", "ROUND("))


def typeof_columns(
    c: Compiler, scope: Scope, item: ast.TypeOf, columns: list[OutColumn], select: list[str],
    outs: list[Out], decoders: list[Any],
) -> None:  # fmt: skip
    """Each WHEN branch's fields come from that type's join; ELSE fields from all targets.
    The flat columns (Bulk-style) take whichever branch matched; records keep the branch."""
    hop = scope.relationship(item.field)
    ref_sql = c.sql.col(scope.base, hop.ref.name)
    by_name: dict[str, list[str]] = {}
    types: dict[str, str] = {}
    branch_types = []
    for type_name, pos, paths in item.whens:
        target = next((t for t in hop.targets if t.name.lower() == type_name.lower()), None)
        if target is None:
            raise bad_type(c.text, pos, type_name)
        branch_types.append(target.name)
        alias = scope.join_target(hop, target)
        for p in paths:
            f = target.field(p.parts[-1]) if len(p.parts) == 1 else None
            if f is None:
                raise no_such_column(c.text, p.pos, p.text, target.name)
            expr = c.sql.col(alias, f.name)
            by_name.setdefault(f.name, []).append(expr)
            types.setdefault(f.name, f.type)
            outs.append(
                FieldOut(
                    (hop.name, f.name),
                    expr,
                    decoder(f.type),
                    (ref_sql,),
                    (None if hop.polymorphic else hop.targets[0].name,),
                    target.name,
                )
            )
    for p in item.otherwise:
        col = scope.resolve(ast.FieldPath(p.pos, (hop.name, *p.parts), (p.pos, *p.offsets)))
        by_name.setdefault(col.field.name, []).append(col.sql)
        types.setdefault(col.field.name, col.type)
        outs.append(FieldOut((hop.name, col.field.name), col.sql, decoder(col.type), (ref_sql,),
                             (None if hop.polymorphic else hop.targets[0].name,), None,
                             tuple(branch_types)))  # fmt: skip
    for name, exprs in by_name.items():
        columns.append(OutColumn(f"{hop.name}.{name}", (hop.name, name), types[name]))
        decoders.append(decoder(types[name]))
        select.append(exprs[0] if len(exprs) == 1 else f"COALESCE({', '.join(exprs)})")
