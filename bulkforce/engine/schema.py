"""sObject schema: describe-shaped definitions, defaults, validation, and the built-in objects.

Definitions come from Salesforce *describe* output (one object, a list, `{"sobjects": [...]}`, or
the sf CLI's `{"status": 0, "result": ...}` envelope), in JSON or YAML, or from an SFDX source
folder (engine/sfdx.py). Omitted properties take describe's defaults.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

STRING_TYPES = frozenset(
    {"string", "textarea", "email", "phone", "url", "picklist", "multipicklist", "combobox",
     "encryptedstring"}
)  # fmt: skip
NUMBER_TYPES = frozenset({"double", "currency", "percent"})
# Types a real describe carries that hold no simple CSV value: compound address/location
# fields (never createable), anyType, and the like. Stored as text, passed through unchecked.
OPAQUE_TYPES = frozenset(
    {"address", "location", "anyType", "complexvalue", "json", "datacategorygroupreference"}
)
FIELD_TYPES = STRING_TYPES | NUMBER_TYPES | OPAQUE_TYPES | {
    "id", "boolean", "int", "long", "date", "datetime", "time", "reference", "base64",
}  # fmt: skip
_DEFAULT_LENGTH = {
    "string": 255, "textarea": 255, "email": 80, "phone": 40, "url": 255, "picklist": 255,
    "multipicklist": 4099, "combobox": 255, "encryptedstring": 175, "reference": 18, "id": 18,
    "base64": 32_000_000,
}  # fmt: skip

_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_LITERAL = re.compile(r'"[^"\\]*"|[+-]?\d+(?:\.\d+)?|true|false', re.IGNORECASE)
BASE62_PREFIX_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# Objects that reference fields may point at without the schema defining them; Ids of these
# are checked by key prefix only.
KNOWN_PREFIXES = {"Profile": "00e", "UserRole": "00E", "Group": "00G", "RecordType": "012",
                  "Pricebook2": "01s", "Organization": "00D"}  # fmt: skip
SYSTEM_FIELDS = ("Id", "IsDeleted", "CreatedDate", "CreatedById", "LastModifiedDate",
                 "LastModifiedById", "SystemModstamp")  # fmt: skip
_SYSTEM_TYPES = {"Id": "id", "IsDeleted": "boolean", "CreatedDate": "datetime",
                 "CreatedById": "reference", "LastModifiedDate": "datetime",
                 "LastModifiedById": "reference", "SystemModstamp": "datetime"}  # fmt: skip


class SchemaError(Exception):
    """A schema definition that cannot be loaded; the message names file, object and field."""


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    type: str
    length: int = 0
    nillable: bool = True
    createable: bool = True
    updateable: bool = True
    defaulted_on_create: bool = False
    external_id: bool = False
    unique: bool = False
    id_lookup: bool = False
    case_sensitive: bool = False
    calculated: bool = False
    precision: int = 0
    scale: int = 0
    digits: int = 0
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    # The name of the relationship seen from the parent (`Contacts` for Contact.AccountId): what
    # child subqueries and sObject trees use. A real describe reports it on the parent's
    # childRelationships; the built-in file and SFDX sources put it on the field.
    child_relationship: str | None = None
    picklist_values: tuple[str, ...] = ()
    restricted_picklist: bool = False
    default_value: str | None = None

    @property
    def required_on_create(self) -> bool:
        """Salesforce's rule: not nillable, createable, and no default."""
        return (not self.nillable) and self.createable and not self.defaulted_on_create

    @property
    def indexed_key(self) -> bool:
        return self.external_id or self.unique or self.id_lookup

    @property
    def integer_digits(self) -> int | None:
        """How many digits may stand before the decimal point; None: unlimited."""
        if self.type in ("int", "long"):
            return self.digits or self.precision or None
        if self.type in NUMBER_TYPES and self.precision:
            return self.precision - self.scale
        return None

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name, "label": self.label, "type": self.type, "length": self.length,
            "nillable": self.nillable, "createable": self.createable,
            "updateable": self.updateable, "defaultedOnCreate": self.defaulted_on_create,
            "externalId": self.external_id, "unique": self.unique, "idLookup": self.id_lookup,
            "caseSensitive": self.case_sensitive, "calculated": self.calculated,
            "precision": self.precision, "scale": self.scale, "digits": self.digits,
            "referenceTo": list(self.reference_to), "relationshipName": self.relationship_name,
            "picklistValues": [{"value": v, "label": v, "active": True, "defaultValue": False}
                               for v in self.picklist_values],
            "restrictedPicklist": self.restricted_picklist,
        }  # fmt: skip


@dataclass
class SObject:
    name: str
    label: str
    label_plural: str
    key_prefix: str
    custom: bool
    fields: dict[str, Field] = field(default_factory=dict)  # by lower-cased name, in order

    def field(self, name: str) -> Field | None:
        return self.fields.get(name.lower())

    @property
    def table(self) -> str:
        return self.name


@dataclass
class Schema:
    objects: dict[str, SObject] = field(default_factory=dict)  # by lower-cased name

    def get(self, name: str) -> SObject | None:
        return self.objects.get(name.lower())

    def by_prefix(self, prefix: str) -> SObject | None:
        for obj in self.objects.values():
            if obj.key_prefix == prefix:
                return obj
        return None

    def child_relationships(self, parent: SObject) -> list[ChildRelationship]:
        """Every loaded field that points at `parent`, with its relationship name (None when
        Salesforce gives it none), in object-name then field order."""
        out = []
        for child in sorted(self.objects.values(), key=lambda o: o.name.lower()):
            for f in child.fields.values():
                if any(t.lower() == parent.name.lower() for t in f.reference_to):
                    out.append(ChildRelationship(f.child_relationship, child, f))
        return out

    def child_relationship(self, parent: SObject, name: str) -> ChildRelationship | None:
        """The child relationship `name` of `parent` (case-insensitive), as SOQL subqueries and
        sObject trees name it."""
        for rel in self.child_relationships(parent):
            if rel.name is not None and rel.name.lower() == name.lower():
                return rel
        return None


@dataclass(frozen=True)
class ChildRelationship:
    name: str | None
    child: SObject
    field: Field


def _label_from_name(name: str) -> str:
    base = name[:-3] if name.endswith("__c") else name
    return base.replace("_", " ")


def _bool(raw: Mapping[str, Any], key: str, default: bool, where: str) -> bool:
    value = raw.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise SchemaError(f"{where}: property {key!r} must be true or false, got {value!r}")
    return value


def _int(raw: Mapping[str, Any], key: str, default: int, where: str) -> int:
    value = raw.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SchemaError(f"{where}: property {key!r} must be a non-negative integer")
    return value


def parse_field(raw: Any, where: str) -> Field:
    if not isinstance(raw, Mapping):
        raise SchemaError(f"{where}: a field must be an object with a 'name'")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise SchemaError(f"{where}: field name {name!r} is not a valid API name")
    where = f"{where}, field {name}"
    ftype = raw.get("type", "string")
    if ftype not in FIELD_TYPES:
        raise SchemaError(
            f"{where}: unknown type {ftype!r} (one of {', '.join(sorted(FIELD_TYPES))})"
        )
    is_bool = ftype == "boolean"
    picklist = raw.get("picklistValues") or []
    if not isinstance(picklist, list):
        raise SchemaError(f"{where}: picklistValues must be a list")
    values = []
    picklist_default = None
    for p in picklist:
        v = p.get("value") if isinstance(p, Mapping) else p
        if not isinstance(v, str):
            raise SchemaError(f"{where}: picklist value {p!r} has no string 'value'")
        if not isinstance(p, Mapping) or p.get("active", True):
            values.append(v)
            if isinstance(p, Mapping) and p.get("defaultValue") is True:
                picklist_default = v
    refs = raw.get("referenceTo") or []
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        raise SchemaError(f"{where}: referenceTo must be a list of object names")
    if ftype == "reference" and not refs:
        raise SchemaError(f"{where}: a reference field needs referenceTo")
    length = _int(raw, "length", _DEFAULT_LENGTH.get(ftype, 0), where)
    if ftype in STRING_TYPES and length == 0:
        length = _DEFAULT_LENGTH[ftype]
    precision = _int(raw, "precision", 18 if ftype in NUMBER_TYPES else 0, where)
    scale = _int(raw, "scale", 0, where)
    if ftype in NUMBER_TYPES and scale > precision:
        raise SchemaError(f"{where}: scale {scale} exceeds precision {precision}")
    digits = _int(raw, "digits", 0, where)
    default = raw.get("defaultValue")
    formula = raw.get("defaultValueFormula")
    if default is None and isinstance(formula, str) and _LITERAL.fullmatch(formula.strip()):
        # a describe reports a custom field's default as a formula; a literal is a value
        default = formula.strip().strip('"')
    if default is None:
        default = picklist_default
    elif isinstance(default, bool):
        default = "true" if default else "false"
    return Field(
        name=name,
        label=str(raw.get("label") or _label_from_name(name)),
        type=ftype,
        length=length,
        nillable=_bool(raw, "nillable", not is_bool, where),
        createable=_bool(raw, "createable", True, where),
        updateable=_bool(raw, "updateable", True, where),
        defaulted_on_create=_bool(raw, "defaultedOnCreate", is_bool, where),
        external_id=_bool(raw, "externalId", False, where),
        unique=_bool(raw, "unique", False, where),
        id_lookup=_bool(raw, "idLookup", False, where),
        case_sensitive=_bool(raw, "caseSensitive", False, where),
        calculated=_bool(raw, "calculated", False, where),
        precision=precision,
        scale=scale,
        digits=digits,
        reference_to=tuple(refs),
        relationship_name=raw.get("relationshipName"),
        child_relationship=raw.get("childRelationshipName"),
        picklist_values=tuple(values),
        restricted_picklist=_bool(raw, "restrictedPicklist", False, where),
        default_value=None if default is None else str(default),
    )


def _system_fields(obj_name: str) -> list[Field]:
    def ro(name: str, label: str, ftype: str, ref: str | None = None) -> Field:
        return Field(
            name, label, ftype, 18 if ftype in ("id", "reference") else 0,
            nillable=False, createable=False, updateable=False, defaulted_on_create=True,
            id_lookup=name == "Id", reference_to=(ref,) if ref else (),
            relationship_name=name[:-2] if ref else None,
        )  # fmt: skip

    return [
        ro("Id", f"{obj_name} ID", "id"),
        ro("IsDeleted", "Deleted", "boolean"),
        ro("CreatedDate", "Created Date", "datetime"),
        ro("CreatedById", "Created By ID", "reference", "User"),
        ro("LastModifiedDate", "Last Modified Date", "datetime"),
        ro("LastModifiedById", "Last Modified By ID", "reference", "User"),
        ro("SystemModstamp", "System Modstamp", "datetime"),
    ]


def _objects_of(doc: Any, where: str) -> list[Any]:
    if (
        isinstance(doc, Mapping)
        and isinstance(doc.get("status"), int)
        and ("result" in doc or doc["status"] != 0)
    ):
        # the sf CLI's `--json` envelope around a describe (or a list of them)
        if doc["status"] != 0:
            raise SchemaError(
                f"{where}: the sf CLI reported an error (status {doc['status']}): "
                f"{doc.get('message') or doc.get('name') or 'no message'}"
            )
        doc = doc["result"]
    if isinstance(doc, Mapping) and "sobjects" in doc:
        doc = doc["sobjects"]
    errors = doc if isinstance(doc, list) else [doc]
    if errors and all(
        isinstance(e, Mapping) and "errorCode" in e and "name" not in e for e in errors
    ):
        # what `curl …/describe` saves when the call failed (e.g. no Authorization header)
        said = "; ".join(f"{e.get('errorCode')}: {e.get('message', '')}" for e in errors)
        raise SchemaError(
            f"{where}: holds an API error, not a describe ({said}); fetch it again with an "
            "Authorization header, or use `sf sobject describe --sobject X --json`"
        )
    if isinstance(doc, Mapping):
        return [doc]
    if isinstance(doc, list):
        return doc
    raise SchemaError(f"{where}: expected an object, a list of objects, or {{'sobjects': [...]}}")


@dataclass
class ObjectDef:
    """One object definition as read from a file, before merging and prefix assignment."""

    name: str
    label: str | None
    label_plural: str | None
    key_prefix: str | None
    fields: list[Field]
    source: str
    # (child object, reference field) → relationship name, from a describe's childRelationships
    child_names: dict[tuple[str, str], str] = field(default_factory=dict)


def _child_names(raw: Any, where: str) -> dict[tuple[str, str], str]:
    out: dict[tuple[str, str], str] = {}
    if not isinstance(raw, list):
        return out
    for rel in raw:
        if not isinstance(rel, Mapping):
            continue
        child, fname, name = rel.get("childSObject"), rel.get("field"), rel.get("relationshipName")
        if isinstance(child, str) and isinstance(fname, str) and isinstance(name, str):
            if not _NAME_RE.fullmatch(name):
                raise SchemaError(f"{where}: child relationship name {name!r} is not valid")
            out[(child.lower(), fname.lower())] = name
    return out


def parse_document(doc: Any, source: str) -> list[ObjectDef]:
    out = []
    for i, raw in enumerate(_objects_of(doc, source)):
        if not isinstance(raw, Mapping):
            raise SchemaError(f"{source}: object #{i + 1} is not a mapping")
        name = raw.get("name")
        if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
            raise SchemaError(f"{source}: object #{i + 1} has no valid 'name' (got {name!r})")
        where = f"{source}: object {name}"
        raw_fields = raw.get("fields") or []
        if not isinstance(raw_fields, list):
            raise SchemaError(f"{where}: 'fields' must be a list")
        fields = [parse_field(f, where) for f in raw_fields]
        seen: set[str] = set()
        for f in fields:
            if f.name.lower() in seen:
                raise SchemaError(f"{where}, field {f.name}: defined twice")
            seen.add(f.name.lower())
        prefix = raw.get("keyPrefix")
        if prefix is not None and not (
            isinstance(prefix, str) and re.fullmatch(r"[0-9A-Za-z]{3}", prefix)
        ):
            raise SchemaError(f"{where}: keyPrefix must be 3 alphanumeric characters")
        children = _child_names(raw.get("childRelationships"), where)
        out.append(
            ObjectDef(
                name, raw.get("label"), raw.get("labelPlural"), prefix, fields, where, children
            )
        )
    return out


def load_file(path: Path) -> list[ObjectDef]:
    """A describe JSON/YAML file, or an SFDX source folder (`objects/*/fields/*.field-meta.xml`)."""
    if path.is_dir():
        from bulkforce.engine import sfdx  # sfdx builds on this module's parser

        return parse_document(sfdx.load_folder(path), str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise SchemaError(f"{path}: cannot read schema file: {e.strerror}") from None
    try:
        doc = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        raise SchemaError(
            f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {e}"
        ) from None
    return parse_document(doc, str(path))


def builtin_definitions() -> list[ObjectDef]:
    text = resources.files("bulkforce.engine").joinpath("standard_objects.json").read_text("utf-8")
    return parse_document(json.loads(text), "built-in standard objects")


def _default_child_name(f: Field, child: SObject) -> str | None:
    if not f.name.endswith("__c"):
        return None  # standard lookups without a known name have none (OwnerId, CreatedById)
    base = re.sub(r"[^A-Za-z0-9]+", "_", child.label_plural).strip("_") or child.name[:-3]
    if not base[0].isalpha():
        base = "R_" + base
    return f"{base}__r"


def build_schema(definitions: Iterable[ObjectDef], assign_prefix: Callable[[str], str]) -> Schema:
    """Merge definitions in order (later ones add or replace fields) into a Schema.

    Objects without a key prefix (custom objects) get one from `assign_prefix`, which must
    return the same prefix for the same name across restarts.
    """
    merged: dict[str, ObjectDef] = {}
    child_names: dict[tuple[str, str], str] = {}
    for d in definitions:
        child_names.update(d.child_names)
        key = d.name.lower()
        if key not in merged:
            merged[key] = ObjectDef(d.name, d.label, d.label_plural, d.key_prefix, [], d.source)
        m = merged[key]
        m.label = d.label or m.label
        m.label_plural = d.label_plural or m.label_plural
        m.key_prefix = d.key_prefix or m.key_prefix
        by_name = {f.name.lower(): i for i, f in enumerate(m.fields)}
        for f in d.fields:
            if f.name in SYSTEM_FIELDS:
                # A whole describe lists them too: the same field is fine and ours is kept.
                if f.type == _SYSTEM_TYPES[f.name]:
                    continue
                raise SchemaError(f"{d.source}, field {f.name}: system fields cannot be redefined")
            if f.name.lower() in by_name:
                m.fields[by_name[f.name.lower()]] = f
            else:
                by_name[f.name.lower()] = len(m.fields)
                m.fields.append(f)
    schema = Schema()
    for key, d in merged.items():
        custom = d.name.endswith("__c")
        fields = list(d.fields)
        names = {f.name.lower() for f in fields}
        if custom and "name" not in names:
            fields.insert(0, Field("Name", f"{_label_from_name(d.name)} Name", "string", 80))
        if custom and "ownerid" not in names:
            fields.append(Field("OwnerId", "Owner ID", "reference", 18, nillable=False,
                                defaulted_on_create=True, reference_to=("User",),
                                relationship_name="Owner"))  # fmt: skip
        prefix = d.key_prefix or assign_prefix(d.name)
        label = d.label or _label_from_name(d.name)
        obj = SObject(d.name, label, d.label_plural or label + "s", prefix, custom)
        for f in _system_fields(d.name) + fields:
            named = child_names.get((key, f.name.lower()))
            if f.type == "reference" and named is None and f.child_relationship is None:
                # Salesforce names a custom lookup's child relationship after the child's plural
                # label; in SOQL it carries __r.
                named = _default_child_name(f, obj)
            if named is not None:
                f = replace(f, child_relationship=named)
            obj.fields[f.name.lower()] = f
        schema.objects[key] = obj
    prefixes: dict[str, str] = {}
    for obj in schema.objects.values():
        other = prefixes.setdefault(obj.key_prefix, obj.name)
        if other != obj.name:
            raise SchemaError(f"objects {other} and {obj.name} share key prefix {obj.key_prefix}")
    # A reference to an object that is not loaded (a whole describe names dozens: Individual,
    # Group, ...) is kept: its Ids are checked for shape and for not being another loaded
    # object's (engine/dml.py), but cannot be checked for existence.
    return schema
