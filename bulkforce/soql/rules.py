"""What each API refuses (query.md §2.1), with the texts clients match on.

REST runs all of the SOQL this engine knows. Bulk API 2.0 and 1.0 refuse GROUP BY, OFFSET,
TYPEOF, aggregate functions and COUNT(), and compound fields; Bulk 2.0 also refuses child
subqueries (Bulk 1.0 allows them in XML/JSON jobs; its CSV jobs refuse them, which the caller
checks because it depends on the job). FIELDS(): STANDARD in Bulk 2.0 only; ALL and CUSTOM on
REST with LIMIT ≤ 200."""

from __future__ import annotations

from enum import StrEnum

from bulkforce.engine.schema import SObject
from bulkforce.soql import ast
from bulkforce.soql.errors import MALFORMED, NOT_ENABLED, SoqlError, at
from bulkforce.soql.sqlgen import AGGREGATES

COMPOUND_TYPES = frozenset({"address", "location"})
MAX_OFFSET = 2000
FIELDS_LIMIT = 200
UNBOUNDED = "The SOQL FIELDS function is not supported with an unbounded set of fields in this API."
COMPOUND = "Selecting compound data not supported in Bulk Query"
BULK2_CHILDREN = "Aggregate Relationships not supported in Bulk V2 Query with CSV content type."


class Api(StrEnum):
    REST = "rest"
    BULK2 = "bulk2"
    BULK1 = "bulk1"


def _refuse(api: Api, what: str) -> SoqlError:
    # Bulk 2.0 answers job create with a 400 naming the construct (query.md §4.2: API_ERROR);
    # Bulk 1.0 fails the batch with FUNCTIONALITY_NOT_ENABLED, as it does for compound fields.
    code = "API_ERROR" if api is Api.BULK2 else NOT_ENABLED
    return SoqlError(code, f"{what} not supported in Bulk Query")


def _has_aggregate(items: tuple[ast.SelectItem, ...]) -> bool:
    return any(
        isinstance(i, ast.SelectField)
        and isinstance(i.expr, ast.Call)
        and i.expr.name in AGGREGATES
        for i in items
    )


def check_api(text: str, q: ast.Query, api: Api) -> None:
    """Refusals that depend on the statement's shape alone."""
    fields = [i for i in q.select if isinstance(i, ast.Fields)]
    if api is Api.REST:
        for f in fields:
            if f.kind != "STANDARD" and (q.limit is None or q.limit > FIELDS_LIMIT):
                raise at(MALFORMED, text, f.pos, UNBOUNDED)
        if q.offset is not None and q.offset > MAX_OFFSET:
            raise at("NUMBER_OUTSIDE_VALID_RANGE", text, q.offset_pos,
                     f"Maximum SOQL offset allowed is {MAX_OFFSET}")  # fmt: skip
        if "UPDATE" in q.for_:
            raise at(MALFORMED, text, q.pos, "FOR UPDATE not allowed in this context")
        return
    if _has_aggregate(q.select):
        raise _refuse(api, "Aggregate functions")
    if q.group_by:
        raise _refuse(api, "GROUP BY")
    if q.offset is not None:
        raise _refuse(api, "OFFSET")
    if any(isinstance(i, ast.TypeOf) for i in q.select):
        raise _refuse(api, "TYPEOF")
    if q.for_:
        raise _refuse(api, "FOR " + q.for_[0])
    for f in fields:
        if api is Api.BULK1 or f.kind != "STANDARD":
            raise SoqlError("API_ERROR" if api is Api.BULK2 else MALFORMED, UNBOUNDED)
    if api is Api.BULK2 and any(isinstance(i, ast.SelectSubquery) for i in q.select):
        raise SoqlError("API_ERROR", BULK2_CHILDREN)


def check_compound(api: Api, obj: SObject, field_type: str) -> None:
    if api is not Api.REST and field_type in COMPOUND_TYPES:
        code = "API_ERROR" if api is Api.BULK2 else NOT_ENABLED
        raise SoqlError(code, COMPOUND)
