"""Names against the Schema: object and field paths resolved case-insensitively to canonical
API names, with Salesforce's INVALID_TYPE / INVALID_FIELD texts, and the LEFT JOINs each
relationship path needs (one per hop; one per loaded target of a polymorphic hop)."""

from __future__ import annotations

from dataclasses import dataclass, field

from bulkforce.engine.schema import Field, Schema, SObject
from bulkforce.soql import ast
from bulkforce.soql.errors import MALFORMED, at, bad_relationship, bad_type, no_such_column
from bulkforce.soql.sqlgen import Sql

MAX_HOPS = 5
# The field a polymorphic relationship offers that no target defines: the target's type.
TYPE_FIELD = Field("Type", "Type", "string")


@dataclass(frozen=True)
class Hop:
    ref: Field  # the reference field on the object before the hop
    name: str  # canonical relationship name
    targets: tuple[SObject, ...]  # the loaded objects it may point at

    @property
    def polymorphic(self) -> bool:
        return len(self.ref.reference_to) > 1


@dataclass(frozen=True)
class Col:
    """A resolved field path: relationship hops from the root, then a field."""

    hops: tuple[Hop, ...]
    field: Field
    sql: str  # the expression selecting it
    id_sqls: tuple[str, ...]  # per hop: the parent record's Id (NULL when there is none)
    names_override: tuple[str, ...] = ()  # an alias (toLabel(Status) label)

    @property
    def names(self) -> tuple[str, ...]:
        return self.names_override or (*(h.name for h in self.hops), self.field.name)

    @property
    def type(self) -> str:
        return self.field.type


@dataclass
class Scope:
    """One FROM: its object, alias, and the joins its paths have needed so far."""

    text: str
    schema: Schema
    sql: Sql
    root: SObject
    alias: str | None
    prefix: str = "t"  # table aliases: t0, t1 … (subqueries use their own letter)
    joins: list[str] = field(default_factory=list)
    _aliases: dict[tuple[str, ...], str] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"{self.prefix}0"

    def from_sql(self, joins: int | None = None) -> str:
        parts = [f"{self.sql.table(self.root.table)} {self.base}", *self.joins[:joins]]
        return " ".join(parts)

    def _join(self, key: tuple[str, ...], target: SObject, parent: str, ref: Field) -> str:
        alias = self._aliases.get(key)
        if alias is None:
            alias = f"{self.prefix}{len(self._aliases) + 1}"
            self._aliases[key] = alias
            self.joins.append(
                f"LEFT JOIN {self.sql.table(target.table)} {alias} "
                f"ON {self.sql.col(alias, 'Id')} = {self.sql.col(parent, ref.name)}"
            )
        return alias

    def strip(self, path: ast.FieldPath) -> tuple[tuple[str, ...], tuple[int, ...]]:
        """Drop a leading object name or FROM alias (`Contact.Name`, `c.Name`)."""
        parts, offsets = path.parts, path.offsets
        if len(parts) > 1:
            head = parts[0].lower()
            if head == self.root.name.lower() or (self.alias and head == self.alias.lower()):
                return parts[1:], offsets[1:]
        return parts, offsets

    def resolve(self, path: ast.FieldPath) -> Col:
        parts, offsets = self.strip(path)
        obj: SObject = self.root
        alias = self.base
        hops: list[Hop] = []
        id_sqls: list[str] = []
        key: tuple[str, ...] = ()
        for part, pos in zip(parts[:-1], offsets[:-1], strict=True):
            if hops and hops[-1].polymorphic:
                raise bad_relationship(self.text, pos, part)
            ref = _relationship(obj, part)
            targets = tuple(t for t in (self.schema.get(n) for n in ref.reference_to) if t) \
                if ref else ()  # fmt: skip
            if ref is None or not targets:
                raise bad_relationship(self.text, pos, part)
            if len(hops) == MAX_HOPS:
                raise at(
                    MALFORMED,
                    self.text,
                    pos,
                    "SOQL statements cannot query more than 5 levels of relationships",
                )
            hop = Hop(ref, ref.relationship_name or part, targets)
            key = (*key, hop.name.lower())
            if hop.polymorphic:
                aliases = [self._join((*key, t.name), t, alias, ref) for t in targets]
                id_sqls.append(_coalesce([self.sql.col(a, "Id") for a in aliases]))
                hops.append(hop)
                return self._poly_field(path, parts, offsets, hops, id_sqls, aliases, alias)
            alias = self._join(key, targets[0], alias, ref)
            id_sqls.append(self.sql.col(alias, "Id"))
            hops.append(hop)
            obj = targets[0]
        f = obj.field(parts[-1])
        if f is None:
            raise no_such_column(self.text, path.pos, parts[-1], obj.name)
        return Col(tuple(hops), f, self.sql.col(alias, f.name), tuple(id_sqls))

    def _poly_field(
        self, path: ast.FieldPath, parts: tuple[str, ...], offsets: tuple[int, ...],
        hops: list[Hop], id_sqls: list[str], aliases: list[str], parent: str,
    ) -> Col:  # fmt: skip
        if len(parts) != len(hops) + 1:
            raise bad_relationship(self.text, offsets[len(hops)], parts[len(hops)])
        name = parts[-1]
        hop = hops[-1]
        if name.lower() == "type":
            ref_sql = self.sql.col(parent, hop.ref.name)
            whens = " ".join(f"WHEN '{t.key_prefix}' THEN '{t.name}'" for t in hop.targets)
            expr = f"CASE substr({ref_sql}, 1, 3) {whens} END"
            return Col(tuple(hops), TYPE_FIELD, expr, tuple(id_sqls))
        found = [(t.field(name), a) for t, a in zip(hop.targets, aliases, strict=True)]
        have = [(f, a) for f, a in found if f is not None]
        if not have:
            raise no_such_column(self.text, path.pos, name, hop.name)
        expr = _coalesce([self.sql.col(a, f.name) for f, a in have])
        return Col(tuple(hops), have[0][0], expr, tuple(id_sqls))

    def relationship(self, path: ast.FieldPath) -> Hop:
        """A path naming a relationship itself (TYPEOF What)."""
        parts, offsets = self.strip(path)
        ref = _relationship(self.root, parts[0]) if len(parts) == 1 else None
        targets = tuple(t for t in (self.schema.get(n) for n in ref.reference_to) if t) \
            if ref else ()  # fmt: skip
        if ref is None or not targets:
            raise bad_relationship(self.text, offsets[0], parts[-1])
        return Hop(ref, ref.relationship_name or parts[0], targets)

    def join_target(self, hop: Hop, target: SObject) -> str:
        """The alias of the join for one target of a root-level hop (TYPEOF branches)."""
        key = (hop.name.lower(),) + ((target.name,) if hop.polymorphic else ())
        return self._join(key, target, self.base, hop.ref)


def _relationship(obj: SObject, name: str) -> Field | None:
    low = name.lower()
    for f in obj.fields.values():
        if f.relationship_name and f.relationship_name.lower() == low and f.reference_to:
            return f
    return None


def _coalesce(exprs: list[str]) -> str:
    return exprs[0] if len(exprs) == 1 else f"COALESCE({', '.join(exprs)})"


def resolve_object(text: str, schema: Schema, name: str, pos: int) -> SObject:
    obj = schema.get(name)
    if obj is None:
        raise bad_type(text, pos, name)
    return obj
