"""sObject trees (`composite/tree/{Object}`): parents with their children nested under the
child relationship name (`Contacts`), all created in one transaction or none at all.

Records are created level by level (every root, then every child of a root, …), each level
through the bulk engine with the parent Ids of the level before filled in; that is also the
order of the results, as Salesforce returns them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bulkforce.engine.errors import RecordError
from bulkforce.engine.schema import SObject
from bulkforce.engine.writes import RecordWrite, apply_writes
from bulkforce.errors import Kind, ServiceError
from bulkforce.jobs.records import MAX_RECORDS, RecordService
from bulkforce.model import Operation, iso, utcnow
from bulkforce.wire.records import json_object, record_cells

MAX_DEPTH = 5
_REFERENCE_ID = re.compile(r"[A-Za-z0-9_]+")


@dataclass
class _Node:
    obj: SObject
    ref: str
    cells: dict[str, str]
    parent: _Node | None = None
    parent_field: str | None = None
    id: str = ""


@dataclass
class TreeResult:
    """(referenceId, Id) of every record created, or (referenceId, error) of the failures."""

    created: list[tuple[str, str]] = field(default_factory=list)
    errors: list[tuple[str, RecordError]] = field(default_factory=list)


class _Failed(Exception):
    pass


class TreeService:
    def __init__(self, records: RecordService) -> None:
        self.records = records
        self.schema = records.ctx.schema

    def _nodes(
        self, obj: SObject, records: Any, depth: int, parent: _Node | None, via: str | None,
        levels: list[list[_Node]], errors: list[tuple[str, RecordError]],
    ) -> None:  # fmt: skip
        if not isinstance(records, list):
            raise ServiceError(Kind.JSON_PARSE, "'records' must be a list of records")
        if depth > MAX_DEPTH:
            raise ServiceError(
                Kind.INVALID_INPUT, f"An sObject tree can be at most {MAX_DEPTH} levels deep"
            )
        while len(levels) < depth:
            levels.append([])
        for raw in records:
            record = json_object(raw, "Each record")
            attrs = record.get("attributes")
            attrs = attrs if isinstance(attrs, dict) else {}
            ref = attrs.get("referenceId")
            type_name = attrs.get("type")
            if not isinstance(ref, str) or not _REFERENCE_ID.fullmatch(ref):
                raise ServiceError(
                    Kind.INVALID_INPUT,
                    "Each record needs a referenceId of letters, digits and underscores in "
                    "its attributes",
                )
            if not isinstance(type_name, str) or type_name.lower() != obj.name.lower():
                errors.append(
                    (ref, RecordError("INVALID_INPUT", f"The record must be of type {obj.name}"))
                )
                continue
            children: list[tuple[str, Any]] = []
            body: dict[str, Any] = {}
            for key, value in record.items():
                rel = self.schema.child_relationship(obj, key) if key != "attributes" else None
                if rel is not None:
                    children.append((key, value))
                else:
                    body[key] = value
            node = _Node(obj, ref, record_cells(self.schema, obj, body), parent, via)
            levels[depth - 1].append(node)
            for key, value in children:
                rel = self.schema.child_relationship(obj, key)
                assert rel is not None
                nested = json_object(value, f"The {key} relationship").get("records")
                self._nodes(rel.child, nested, depth + 1, node, rel.field.name, levels, errors)

    def create(self, user_id: str, name: str, body: Mapping[str, Any]) -> TreeResult:
        obj = self.records.sobject(name)
        levels: list[list[_Node]] = []
        out = TreeResult()
        self._nodes(obj, body.get("records"), 1, None, None, levels, out.errors)
        nodes = [n for level in levels for n in level]
        if len(nodes) + len(out.errors) > MAX_RECORDS:
            raise ServiceError(
                Kind.LIMIT_EXCEEDED,
                f"An sObject tree can hold at most {MAX_RECORDS} records in all",
            )
        seen: dict[str, int] = {}
        for n in nodes:
            seen[n.ref.lower()] = seen.get(n.ref.lower(), 0) + 1
        for n in nodes:
            if seen[n.ref.lower()] > 1:
                out.errors.append(
                    (n.ref, RecordError("INVALID_INPUT", "Duplicate ReferenceId provided"))
                )
        if out.errors:
            return out
        try:
            with self.records.transaction() as tx:
                for level in levels:
                    writes = []
                    for n in level:
                        if n.parent is not None and n.parent_field is not None:
                            n.cells[n.parent_field] = n.parent.id
                        writes.append(RecordWrite(n.obj, Operation.INSERT, n.cells))
                    results = apply_writes(self.schema, tx, writes, user_id, iso(utcnow()))
                    for n, r in zip(level, results, strict=True):
                        if r.error is not None:
                            out.errors.append((n.ref, r.error))
                        n.id = r.id
                    if out.errors:
                        raise _Failed
        except _Failed:
            out.created = []
            return out
        out.created = [(n.ref, n.id) for n in nodes]
        return out
