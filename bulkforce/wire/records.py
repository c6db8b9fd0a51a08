"""REST record writes on the wire: JSON record bodies into the engine's cells, and SaveResults,
collection results and REST error bodies out.

A JSON value becomes the cell text a bulk CSV would carry for it, so the engine validates,
coerces and stores it exactly as it does a bulk row: `null` and `""` set null (Salesforce
stores an empty string as null), `true`/`false` and numbers their JSON text, strings as they
are. A relationship value (`"Account": {"External_Id__c": "A-1"}`) becomes the bulk
relationship column `Account.External_Id__c`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bulkforce.engine.coerce import NULL
from bulkforce.engine.errors import RecordError
from bulkforce.engine.schema import Field, Schema, SObject
from bulkforce.engine.writes import WriteResult
from bulkforce.errors import Kind, ServiceError
from bulkforce.wire import rest
from bulkforce.wire.decode import DecodeError, load_json

# Kinds only the record resources raise, beyond those of wire/rest.py.
RECORD_ERRORS: dict[Kind, tuple[int, str]] = {
    Kind.PRECONDITION_FAILED: (412, "PRECONDITION_FAILED"),
    Kind.LIMIT_EXCEEDED: (400, "EXCEEDED_ID_LIMIT"),
    Kind.MALFORMED_ID: (400, "MALFORMED_ID"),
    Kind.INVALID_INPUT: (400, "INVALID_INPUT"),
    Kind.INVALID_ENTITY: (400, "INVALID_TYPE"),
    # the one INVALID_JOB a record call meets: a body over the size limit (http/body.py)
    Kind.INVALID_JOB: (413, "REQUEST_ENTITY_TOO_LARGE"),
}
ROLLED_BACK = RecordError(
    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "Record rolled back because not all records were valid and the request was using "
    "AllOrNone header",
)


def error_body(kind: Kind, message: str) -> tuple[int, list[dict[str, Any]]]:
    if kind in RECORD_ERRORS:
        status, code = RECORD_ERRORS[kind]
        return status, [{"errorCode": code, "message": message, "fields": []}]
    return rest.error_body(kind, message)


def record_errors(err: RecordError) -> list[dict[str, Any]]:
    """A record's error as the body of a failed single-record call."""
    return [{"message": err.message, "errorCode": err.code, "fields": list(err.fields)}]


def status_errors(err: RecordError) -> list[dict[str, Any]]:
    """A record's error inside a SaveResult (collections, tree): `statusCode`, not
    `errorCode`."""
    return [{"statusCode": err.code, "message": err.message, "fields": list(err.fields)}]


def no_such_column(name: str, obj: SObject) -> ServiceError:
    return ServiceError(
        Kind.INVALID_FIELD,
        f"No such column '{name}' on sobject of type {obj.name}",
    )


def _json_type(value: Any) -> str:
    return "START_OBJECT" if isinstance(value, dict) else "START_ARRAY"


def _cell(obj: SObject, f: Field, value: Any) -> str:
    if value is None or value == "":
        return NULL
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return value
    raise ServiceError(
        Kind.JSON_PARSE,
        f"Cannot deserialize instance of {f.type} from {_json_type(value)} value "
        f"{'{' if isinstance(value, dict) else '['} or request may be missing a required field",
    )


def _relationship_cell(
    schema: Schema, obj: SObject, key: str, value: Mapping[str, Any]
) -> tuple[str, str] | None:
    """`"Account": {"External_Id__c": "A-1"}` → (`Account.External_Id__c`, `A-1`); the
    polymorphic form names its type in `attributes`: (`Contact:Who.Badge__c`, …)."""
    ref = next(
        (
            f
            for f in obj.fields.values()
            if f.type == "reference" and (f.relationship_name or "").lower() == key.lower()
        ),
        None,
    )
    if ref is None:
        return None
    attrs = value.get("attributes")
    type_name = attrs.get("type") if isinstance(attrs, dict) else None
    keys = [k for k in value if k != "attributes"]
    targets = [t for t in ref.reference_to if type_name is None or t.lower() == type_name.lower()]
    if len(keys) != 1 or len(targets) != 1:
        raise ServiceError(
            Kind.INVALID_FIELD,
            f"The relationship {key} on {obj.name} needs exactly one external id field"
            + (" and its type in attributes" if len(ref.reference_to) > 1 else ""),
        )
    parent = schema.get(targets[0])
    key_field = parent.field(keys[0]) if parent is not None else None
    if parent is None or key_field is None:
        raise no_such_column(keys[0], parent or obj)
    if not (key_field.external_id or key_field.id_lookup):
        raise ServiceError(
            Kind.INVALID_FIELD,
            f"Field {key_field.name} is not an External ID or indexed field for {parent.name}",
        )
    rel = ref.relationship_name or key
    name = f"{rel}.{key_field.name}"
    if len(ref.reference_to) > 1:
        name = f"{parent.name}:{name}"
    return name, _cell(parent, key_field, value[keys[0]])


def record_cells(schema: Schema, obj: SObject, body: Mapping[str, Any]) -> dict[str, str]:
    """A JSON record's fields as cells by API name (`attributes` dropped)."""
    cells: dict[str, str] = {}
    for key, value in body.items():
        if key == "attributes":
            continue
        f = obj.field(key)
        if f is None and isinstance(value, dict):
            rel = _relationship_cell(schema, obj, key, value)
            if rel is not None:
                cells[rel[0]] = rel[1]
                continue
        if f is None:
            raise no_such_column(key, obj)
        cells[f.name] = _cell(obj, f, value)
    return cells


def parse_body(data: bytes) -> Any:
    """JSON body of a record call; Salesforce answers a syntax error with JSON_PARSER_ERROR."""
    if not data.strip():
        raise ServiceError(Kind.JSON_PARSE, "The request body is empty")
    try:
        return load_json(data)
    except DecodeError as e:
        raise ServiceError(Kind.JSON_PARSE, f"Unexpected character in the JSON body: {e}") from None


def json_object(value: Any, what: str = "The request body") -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ServiceError(
            Kind.JSON_PARSE,
            f"{what} must be a JSON object: Cannot deserialize instance of SObject from "
            f"{_json_type(value) if isinstance(value, dict | list) else 'VALUE'} value",
        )
    return value


# ---- results ---------------------------------------------------------------------------------


def save_result(result: WriteResult, upsert: bool = False) -> dict[str, Any]:
    """A successful single-record create or upsert (201/200)."""
    out: dict[str, Any] = {"id": result.id, "success": True, "errors": []}
    if upsert:
        out["created"] = result.created
    return out


def collection_result(
    result: WriteResult, *, rolled_back: bool, with_id: bool, upsert: bool = False
) -> dict[str, Any]:
    """One SaveResult/DeleteResult of a collection call. A create that failed has no id;
    an update or delete names the record it was about."""
    out: dict[str, Any] = {}
    if result.ok and not rolled_back:
        out = {"id": result.id, "success": True, "errors": []}
    else:
        if with_id and result.id:
            out["id"] = result.id
        out["success"] = False
        out["errors"] = status_errors(result.error or ROLLED_BACK)
    if upsert:
        out["created"] = result.created and result.ok and not rolled_back
    return out


def record_urls(obj: SObject, ids: list[str], ver: str) -> list[str]:
    """The body of a 300 Multiple Choices: where each matching record lives."""
    return [f"/services/data/v{ver}/sobjects/{obj.name}/{rid}" for rid in ids]


def tree_body(created: list[tuple[str, str]], errors: list[tuple[str, RecordError]]) -> Any:
    """`composite/tree`: every record's Id, or only the failures (nothing was created)."""
    if errors:
        return {
            "hasErrors": True,
            "results": [{"referenceId": ref, "errors": status_errors(e)} for ref, e in errors],
        }
    return {"hasErrors": False, "results": [{"referenceId": r, "id": i} for r, i in created]}
