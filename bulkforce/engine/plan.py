"""A job's CSV header resolved onto its object, once per job: the columns' fields, the Id and
upsert-key columns, and `Rel.Field` parent look-ups. A header that cannot be resolved fails the
whole job (HeaderError)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bulkforce.engine.schema import Field, Schema, SObject
from bulkforce.model import Operation


class HeaderError(Exception):
    """The header makes the whole job fail; str(e) is the job's errorMessage."""


@dataclass(frozen=True)
class Plan:
    """How a job's header maps onto the object, resolved once per job."""

    obj: SObject
    operation: Operation
    fields: tuple[Field, ...]
    id_col: int | None
    key_field: Field | None  # upsert key (the Id field for upsert on Id)
    key_col: int | None
    # header column → (parent object, its external-id/idLookup field) for `Rel.Field` columns
    lookups: dict[int, tuple[SObject, Field]]


def _relationship(schema: Schema, obj: SObject, name: str) -> tuple[Field, SObject, Field] | None:
    """Resolve a relationship header: `Account.Ext__c`, `Parent__r.Ext__c`, and the polymorphic
    `Type:Rel.Field` (or `Rel:Type.Field`) forms (spec §3.11.2)."""
    path, dot, key_name = name.rpartition(".")
    if not dot or not path or not key_name:
        return None
    candidates: list[tuple[str | None, str]] = [(None, path)]
    if ":" in path:
        a, _, b = path.partition(":")
        candidates = [(a, b), (b, a)]
    for type_name, rel in candidates:
        for f in obj.fields.values():
            if f.type != "reference" or (f.relationship_name or "").lower() != rel.lower():
                continue
            targets = [
                t for t in f.reference_to if type_name is None or t.lower() == type_name.lower()
            ]
            if len(targets) != 1:
                continue
            parent = schema.get(targets[0])
            key = parent.field(key_name) if parent is not None else None
            if parent is not None and key is not None and (key.external_id or key.id_lookup):
                return f, parent, key
    return None


def make_plan(
    schema: Schema, obj: SObject, operation: Operation, header: Sequence[str], ext_field: str | None
) -> Plan:
    fields: list[Field] = []
    lookups: dict[int, tuple[SObject, Field]] = {}
    seen: set[str] = set()
    for j, name in enumerate(header):
        f = obj.field(name)
        if f is None:
            rel = _relationship(schema, obj, name)
            if rel is None:
                raise HeaderError(f"InvalidBatch : Field name not found : {name}")
            f, parent, key = rel
            lookups[j] = (parent, key)
        if f.name in seen:
            raise HeaderError(f"InvalidBatch : Duplicate field name : {name}")
        seen.add(f.name)
        fields.append(f)
    names = [f.name for f in fields]
    id_col = names.index("Id") if "Id" in names else None
    key_field = key_col = None
    if operation in (Operation.UPDATE, Operation.DELETE, Operation.HARD_DELETE) and id_col is None:
        raise HeaderError(f"InvalidBatch : Field name not found : Id (required for {operation})")
    if operation is Operation.UPSERT:
        key_field = obj.field(ext_field or "")
        if key_field is None:  # validated at job creation; the schema may have changed since
            raise HeaderError(f"InvalidBatch : Field name not found : {ext_field}")
        key_col = names.index(key_field.name) if key_field.name in names else None
        if key_col is None and key_field.name != "Id":
            raise HeaderError(
                f"InvalidBatch : Field name not found : {key_field.name} (the upsert key)"
            )
    return Plan(obj, operation, tuple(fields), id_col, key_field, key_col, lookups)
