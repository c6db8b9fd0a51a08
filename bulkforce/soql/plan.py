"""What a compiled query hands its caller: the SQL per page (keyset paging on the ORDER BY
keys plus Id), and the decoding of raw rows into typed values and nested records."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bulkforce.engine.schema import Schema, SObject
from bulkforce.soql.decode import key_value
from bulkforce.soql.records import Rec, RecordBuilder
from bulkforce.soql.sqlgen import Sql

Key = list[Any]


@dataclass(frozen=True)
class OutColumn:
    name: str  # header / key as Salesforce prints it: "Id", "Account.Name", "expr0", alias
    path: tuple[str, ...]  # canonical relationship path + field; (alias,) for aggregates
    type: str  # describe type driving rendering (aggregates: their result type)


@dataclass(frozen=True)
class SortKey:
    sql: str
    desc: bool
    nulls_last: bool
    nillable: bool
    kind: str  # placeholder kind when a key value is bound back
    raw: str = ""  # the expression before case folding


@dataclass(frozen=True)
class FieldOut:
    """How one selected value lands in the nested record."""

    names: tuple[str, ...]  # relationship names then the field name
    index: int | str  # raw row position of the value (its SQL expression until placed)
    decode: Callable[[Any], Any]
    hop_ids: tuple[int | str, ...]  # raw row positions of each hop's parent Id (ditto)
    hop_types: tuple[str | None, ...]  # each hop's type; None: by the Id's key prefix
    only_type: str | None = None  # TYPEOF branch: set only when the parent is of this type
    except_types: tuple[str, ...] = ()  # TYPEOF ELSE: set unless the parent is of these


@dataclass(frozen=True)
class ChildOut:
    name: str


Out = FieldOut | ChildOut


@dataclass
class Body:
    """The parts of one SELECT statement."""

    sql: Sql
    select: list[str]  # every raw column, visible ones first
    from_: str
    where: list[str]
    params: list[Any]
    group_by: list[str] = field(default_factory=list)
    having: str | None = None
    having_params: list[Any] = field(default_factory=list)
    sort: list[SortKey] = field(default_factory=list)
    key_at: int = 0  # raw position of the first sort key
    count_from: str = ""  # FROM with only the joins WHERE needs

    def text(self, extra_where: Sequence[str] = (), extra_params: Sequence[Any] = (),
             limit: int | None = None, offset: int | None = None,
             finish: bool = True) -> tuple[str, list[Any]]:  # fmt: skip
        where = [*self.where, *extra_where]
        # every column named c0…: wrapping queries (child LIMIT, counts) refer to them
        cols = ", ".join(f"{e} AS c{i}" for i, e in enumerate(self.select))
        out = f"SELECT {cols} FROM {self.from_}"
        if where:
            out += " WHERE " + " AND ".join(where)
        params = [*self.params, *extra_params]
        if self.group_by:
            out += " GROUP BY " + ", ".join(self.group_by)
        if self.having:
            out += " HAVING " + self.having
            params += self.having_params
        if self.sort:
            out += " ORDER BY " + ", ".join(_order_term(k.sql, k) for k in self.sort)
        out += limit_clause(self.sql, limit, offset)
        return (self.sql.finish(out) if finish else out), params

    def after(self, key: Key) -> tuple[str, list[Any]]:
        """Rows strictly after `key` in the sort order: OR over i of (keys before i equal,
        key i beyond)."""
        if len(self.sort) > 1 and all(not k.nillable for k in self.sort) and \
                len({k.desc for k in self.sort}) == 1:  # fmt: skip
            # one direction, no nulls: a row-value comparison, which both databases answer
            # from an index on the keys (ORDER BY SystemModstamp pages: (SystemModstamp, Id))
            cols = ", ".join(k.sql for k in self.sort)
            marks = ", ".join(self.sql.ph(k.kind) for k in self.sort)
            return f"({cols}) {'<' if self.sort[0].desc else '>'} ({marks})", list(key)
        ors: list[str] = []
        params: list[Any] = []
        for i, k in enumerate(self.sort):
            terms: list[str] = []
            tparams: list[Any] = []
            for j in range(i):
                kj, vj = self.sort[j], key[j]
                if vj is None:
                    terms.append(f"{kj.sql} IS NULL")
                else:
                    terms.append(f"{kj.sql} = {self.sql.ph(kj.kind)}")
                    tparams.append(vj)
            v = key[i]
            if v is None:
                if k.nulls_last:
                    continue  # nothing sorts after a null at the end
                terms.append(f"{k.sql} IS NOT NULL")
            else:
                beyond = f"{k.sql} {'<' if k.desc else '>'} {self.sql.ph(k.kind)}"
                tparams.append(v)
                if k.nulls_last and k.nillable:
                    beyond = f"({beyond} OR {k.sql} IS NULL)"
                terms.append(beyond)
            ors.append("(" + " AND ".join(terms) + ")" if len(terms) > 1 else terms[0])
            params += tparams
        if not ors:
            return "1 = 0", []
        return ("(" + " OR ".join(ors) + ")" if len(ors) > 1 else ors[0]), params


@dataclass
class ChildPlan:
    name: str  # relationship name as written canonically ("Contacts")
    object: SObject
    columns: list[OutColumn]
    body: Body
    outs: list[Out]
    fk_sql: str
    fk_at: int
    id_at: int
    limit: int | None
    schema: Schema

    def sql(self, parent_ids: Sequence[str]) -> tuple[str, list[Any]]:
        """Rows of these parents, grouped by parent, each parent's in the subquery's order."""
        s = self.body.sql
        marks = ", ".join(s.ph("text") for _ in parent_ids)
        where = [f"{self.fk_sql} IN ({marks})"]
        if self.limit is None:
            return self.body.text(where, list(parent_ids))
        # LIMIT in a child subquery counts per parent
        b = self.body
        order = ", ".join(_order_term(k.sql, k) for k in b.sort[1:])
        window = f"ROW_NUMBER() OVER (PARTITION BY {self.fk_sql} ORDER BY {order})"
        inner = Body(s, [*b.select, window], b.from_, b.where, b.params)
        text, params = inner.text(where, list(parent_ids), finish=False)
        cols = ", ".join(f"bf_q.c{i}" for i in range(len(b.select)))
        outer_order = ", ".join(_order_term(f"bf_q.c{b.key_at + i}", k) for i, k in
                                enumerate(b.sort))  # fmt: skip
        n = len(b.select)
        out = (f"SELECT {cols} FROM ({text}) bf_q WHERE bf_q.c{n} <= {int(self.limit)} "
               f"ORDER BY {outer_order}")  # fmt: skip
        return s.finish(out), params

    def __post_init__(self) -> None:
        self._builder = RecordBuilder(self.object.name, self.outs, self.schema)

    def parent_id(self, row: Sequence[Any]) -> str:
        return str(row[self.fk_at])

    def record(self, row: Sequence[Any]) -> Rec:
        return self._builder.build(row[self.id_at], row)


def _order_term(expr: str, k: SortKey) -> str:
    term = f"{expr} {'DESC' if k.desc else 'ASC'}"
    # a NULLS clause on a column that has no nulls would keep PostgreSQL from reading the
    # order off a plain index (ASC NULLS LAST): page after page would sort
    if k.nillable:
        term += f" NULLS {'LAST' if k.nulls_last else 'FIRST'}"
    return term


class Plan:
    def __init__(
        self, root: SObject, columns: list[OutColumn], body: Body, outs: list[Out],
        decoders: list[Callable[[Any], Any]], schema: Schema, *, children: list[ChildPlan],
        count_only: bool, aggregate: bool, limit: int | None, offset: int | None, id_at: int,
    ) -> None:  # fmt: skip
        self.root = root
        self.columns = columns
        self.children = children
        self.count_only = count_only
        self.aggregate = aggregate
        self.limit = limit
        self.offset = offset
        self._body = body
        self._builder = RecordBuilder(root.name, outs, schema)
        self._decoders = decoders
        self._schema = schema
        self._id_at = id_at

    def sql(self, after: Key | None = None, size: int | None = None) -> tuple[str, list[Any]]:
        """The rows after keyset position `after` (None: from the start, OFFSET applied), at
        most `size` (None: all). Order: the query's ORDER BY with Id appended, else Id."""
        if self.count_only:
            return self._body.text(["1 = 0"])
        limit = size
        if after is None and self.limit is not None:
            limit = self.limit if size is None else min(size, self.limit)
        if self.aggregate:
            # aggregate results are small and unpaged in Salesforce: `after` is a row count
            skip = (self.offset or 0) + (int(after[0]) if after else 0)
            return self._body.text(limit=limit, offset=skip)
        if after is None:
            return self._body.text(limit=limit, offset=self.offset)
        cond, params = self._body.after(after)
        return self._body.text([cond], params, limit=limit)

    def count_sql(self) -> tuple[str, list[Any]]:
        """The number of rows the query returns (WHERE, LIMIT and OFFSET honoured)."""
        b = self._body
        if self.aggregate and not self.count_only:
            inner, params = b.text(limit=self.limit, offset=self.offset, finish=False)
            return b.sql.finish(f"SELECT COUNT(*) FROM ({inner}) bf_c"), params
        where = " WHERE " + " AND ".join(b.where) if b.where else ""
        base = f"FROM {b.count_from}{where}"
        if self.limit is None and not self.offset:
            return b.sql.finish(f"SELECT COUNT(*) {base}"), list(b.params)
        inner = f"SELECT 1 AS c0 {base}{limit_clause(b.sql, self.limit, self.offset)}"
        return b.sql.finish(f"SELECT COUNT(*) FROM ({inner}) bf_c"), list(b.params)

    def key(self, row: Sequence[Any]) -> Key:
        if self.aggregate:
            raise ValueError("aggregate rows have no keyset key; page by row count")
        b = self._body
        return [key_value(row[b.key_at + i]) for i in range(len(b.sort))]

    def values(self, row: Sequence[Any]) -> list[Any]:
        return [d(v) for d, v in zip(self._decoders, row, strict=False)]

    def record(self, row: Sequence[Any]) -> Rec:
        if self.aggregate:
            return Rec(
                "AggregateResult",
                None,
                {c.name: v for c, v in zip(self.columns, self.values(row), strict=True)},
            )
        return self._builder.build(row[self._id_at], row)


def limit_clause(sql: Sql, limit: int | None, offset: int | None) -> str:
    out = ""
    if limit is not None:
        out += f" LIMIT {int(limit)}"
    if offset:
        if limit is None and not sql.pg:
            out += " LIMIT -1"  # SQLite has no OFFSET without LIMIT
        out += f" OFFSET {int(offset)}"
    return out
