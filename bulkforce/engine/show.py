"""`bulkforce schema show OBJECT`: the checks the engine applies to each field, as text."""

from __future__ import annotations

from bulkforce.engine.schema import NUMBER_TYPES, STRING_TYPES, Field, Schema, SObject

_FORMATS = {
    "boolean": "true/false (also 1/0)", "date": "yyyy-MM-dd",
    "datetime": "yyyy-MM-ddTHH:mm:ss(.SSS)(Z|+hh:mm)", "time": "HH:mm:ss.SSSZ",
    "email": "an email address", "int": "a whole number", "long": "a whole number",
}  # fmt: skip


def _checks(schema: Schema, obj: SObject, f: Field) -> list[str]:
    out: list[str] = []
    if f.calculated or (not f.createable and not f.updateable):
        out.append("read-only (INVALID_FIELD_FOR_INSERT_UPDATE)")
    elif not f.updateable:
        out.append("insert only")
    elif not f.createable:
        out.append("update only")
    if f.required_on_create:
        out.append("required on insert (REQUIRED_FIELD_MISSING)")
    elif not f.nillable and f.updateable:
        out.append("cannot be set to null")
    if f.default_value is not None:
        out.append(f"default {f.default_value!r}")
    elif f.defaulted_on_create and f.createable and f.name != "Id":
        out.append("defaulted by the server")
    if f.type in STRING_TYPES and f.type not in ("picklist", "multipicklist"):
        out.append(f"max length {f.length} (STRING_TOO_LONG)")
    digits = f.integer_digits
    if f.type in NUMBER_TYPES:
        scale = f"rounded to {f.scale} decimal place{'s' if f.scale != 1 else ''}"
        limit = f", at most {digits} integer digits" if digits is not None else ""
        out.append(f"{scale}{limit} (NUMBER_OUTSIDE_VALID_RANGE)")
    elif digits is not None:
        out.append(f"at most {digits} digits (NUMBER_OUTSIDE_VALID_RANGE)")
    if f.type in _FORMATS:
        out.append(_FORMATS[f.type])
    if f.type in ("picklist", "multipicklist"):
        kind = "multi-select, ';'-separated, " if f.type == "multipicklist" else ""
        values = ", ".join(f.picklist_values) or "(none listed)"
        if f.restricted_picklist:
            out.append(f"{kind}restricted to: {values} (INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST)")
        else:
            out.append(f"{kind}unrestricted; values: {values}")
    if f.unique and f.name != "Id":
        sense = "case-sensitive" if f.case_sensitive else "case-insensitive"
        out.append(f"unique, {sense} (DUPLICATE_VALUE)")
    if f.external_id:
        out.append("external id (upsert key, relationship key)")
    elif f.id_lookup and f.name != "Id":
        out.append("idLookup (upsert key, relationship key)")
    if f.type == "reference":
        out.append(_reference(schema, f))
    return out


def _reference(schema: Schema, f: Field) -> str:
    parts = []
    for target in f.reference_to:
        parent = schema.get(target)
        if parent is None:
            parts.append(f"{target} (not loaded: Id shape checked only)")
            continue
        keys = [k.name for k in parent.fields.values() if k.external_id or k.id_lookup]
        parts.append(f"{parent.name} {parent.key_prefix} (MALFORMED_ID otherwise)")
        if f.relationship_name:
            rel = f.relationship_name
            head = rel if len(f.reference_to) == 1 else f"{parent.name}:{rel}"
            parts.append("columns " + ", ".join(f"{head}.{k}" for k in keys))
    return "Id of " + "; ".join(parts)


def render_object(schema: Schema, obj: SObject, provisional: bool = False) -> str:
    prefix = obj.key_prefix + (
        " (custom: assigned on the server's first start)" if provisional else ""
    )
    lines = [
        f"{obj.name} ({obj.label}): key prefix {prefix}",
        "",
    ]
    width = max(len(f.name) for f in obj.fields.values())
    twidth = max(len(_type(f)) for f in obj.fields.values())
    for f in obj.fields.values():
        checks = "; ".join(_checks(schema, obj, f))
        lines.append(f"  {f.name:<{width}}  {_type(f):<{twidth}}  {checks}".rstrip())
    lines.append("")
    lines.append(
        "Header names match case-insensitively; an unknown column fails the job "
        "(InvalidBatch : Field name not found)."
    )
    return "\n".join(lines)


def _type(f: Field) -> str:
    if f.type in STRING_TYPES or f.type in ("id", "reference"):
        return f"{f.type}({f.length})"
    if f.type in NUMBER_TYPES:
        return f"{f.type}({f.precision},{f.scale})"
    return f.type
