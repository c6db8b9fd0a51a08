"""Raw rows → nested records, fast: the select list is turned once into a tree of relationship
levels, so building a record is a walk over prepared tuples (REST pages build 2,000 at a time)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bulkforce.engine.schema import Schema

if TYPE_CHECKING:
    from bulkforce.soql.plan import Out

_FIELD, _CHILD, _REL = 0, 1, 2


@dataclass
class Rec:
    type: str  # "Contact", "AggregateResult", or the TYPEOF-resolved type
    id: str | None  # 18-char Id for attributes.url; None for AggregateResult
    fields: dict[str, Any] = field(default_factory=dict)  # name → value | Rec | None | child


class _Level:
    """One record level: its items in SELECT order (fields, child placeholders, parents)."""

    def __init__(self) -> None:
        self.items: list[tuple[Any, ...]] = []
        self.rels: dict[str, _Level] = {}


class RecordBuilder:
    def __init__(self, typ: str, outs: Sequence[Out], schema: Schema) -> None:
        from bulkforce.soql.plan import ChildOut

        self.typ = typ
        self.schema = schema
        self.root = _Level()
        for out in outs:
            if isinstance(out, ChildOut):
                self.root.items.append((_CHILD, out.name))
                continue
            level = self.root
            for k, name in enumerate(out.names[:-1]):
                sub = level.rels.get(name)
                if sub is None:
                    sub = level.rels[name] = _Level()
                    level.items.append((_REL, name, _int(out.hop_ids[k]), out.hop_types[k], sub))
                level = sub
            level.items.append((_FIELD, out.names[-1], _int(out.index), out.decode,
                                out.only_type, out.except_types))  # fmt: skip

    def build(self, rid: Any, row: Sequence[Any]) -> Rec:
        rec = Rec(self.typ, None if rid is None else str(rid), {})
        self._fill(self.root, rec, row)
        return rec

    def _fill(self, level: _Level, rec: Rec, row: Sequence[Any]) -> None:
        fields = rec.fields
        for item in level.items:
            kind = item[0]
            if kind == _FIELD:
                _, name, index, decode, only, excluded = item
                if (only is None or rec.type == only) and rec.type not in excluded:
                    fields[name] = decode(row[index])
            elif kind == _CHILD:
                fields[item[1]] = None
            else:
                _, name, id_index, ptype, sub = item
                pid = row[id_index]
                if pid is None:
                    fields[name] = None
                    continue
                if ptype is None:  # polymorphic: the Id's key prefix says which object
                    found = self.schema.by_prefix(str(pid)[:3])
                    ptype = found.name if found else "Name"
                parent = Rec(ptype, str(pid), {})
                self._fill(sub, parent, row)
                fields[name] = parent


def _int(index: int | str) -> int:
    assert isinstance(index, int), "select expressions are placed before records are built"
    return index
