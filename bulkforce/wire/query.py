"""Query results on the wire: values and records as REST JSON and as Bulk CSV (query.md §2.4).

Shared by every query API. Bulk API 1.0 CSV results reuse `csv_formatters` / `CsvRenderer`
(the same quoting, null, number, date and datetime rules as Bulk API 2.0); the REST query
resource uses `rest_record` / `query_page`. Typed values come from `bulkforce.soql`
(`Plan.values`, `Plan.record`): str, bool, int, float, date, datetime (aware, UTC), time, None.
"""

from __future__ import annotations

import base64
import binascii
import csv
import datetime as dt
import io
import math
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any

from bulkforce.engine.schema import NUMBER_TYPES, STRING_TYPES, Field, Schema, SObject
from bulkforce.model import Job, JobState
from bulkforce.soql import ChildPlan, OutColumn, Plan, Rec

Formatter = Callable[[Any], str]

# ---- single values -------------------------------------------------------------------------


def java_double(x: float) -> str:
    """A double as Java's Double.toString prints it (what Salesforce's Bulk CSV shows):
    `23.0`, `0.001`, `1.0E7`, `1.6147805824397E13`."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "-0.0" if math.copysign(1.0, x) < 0 else "0.0"
    if 1e-3 <= abs(x) < 1e7:
        text = repr(x)  # shortest round-trip digits, positional in this range
        return text if "." in text else text + ".0"
    sign, digits, exponent = Decimal(repr(x)).as_tuple()
    assert isinstance(exponent, int)
    power = len(digits) - 1 + exponent
    mantissa = "".join(map(str, digits)).rstrip("0") or "0"
    return f"{'-' if sign else ''}{mantissa[0]}.{mantissa[1:] or '0'}E{power}"


def _ms(t: dt.datetime | dt.time) -> str:
    return f"{t.microsecond // 1000:03d}"


def csv_datetime(v: dt.datetime) -> str:
    v = v.astimezone(dt.UTC)
    return v.strftime("%Y-%m-%dT%H:%M:%S.") + _ms(v) + "Z"


def rest_datetime(v: dt.datetime) -> str:
    v = v.astimezone(dt.UTC)
    return v.strftime("%Y-%m-%dT%H:%M:%S.") + _ms(v) + "+0000"


def time_text(v: dt.time) -> str:
    return v.strftime("%H:%M:%S.") + _ms(v) + "Z"


def csv_text(value: Any) -> str:
    """Any typed value as Bulk CSV shows it; None is empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return java_double(value)
    if isinstance(value, dt.datetime):
        return csv_datetime(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return time_text(value)
    return str(value)


_AS_IS = frozenset({str, int, float, bool, type(None)})


def rest_value(value: Any) -> Any:
    """A typed value as REST JSON carries it: JSON numbers and booleans, ISO texts."""
    if value.__class__ in _AS_IS:
        return value
    if isinstance(value, dt.datetime):
        return rest_datetime(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return time_text(value)
    return value


# ---- Bulk CSV ------------------------------------------------------------------------------


def _none_or(f: Callable[[Any], str]) -> Formatter:
    return lambda v: "" if v is None else f(v)


_BY_TYPE: dict[str, Formatter] = {
    "boolean": _none_or(lambda v: "true" if v else "false"),
    "int": _none_or(str),
    "long": _none_or(str),
    "datetime": _none_or(csv_datetime),
    "date": _none_or(lambda v: v.isoformat()),
    "time": _none_or(time_text),
    **{t: _none_or(lambda v: java_double(float(v))) for t in NUMBER_TYPES},
}
_PLAIN = frozenset(STRING_TYPES | {"id", "reference"})


def csv_formatters(columns: Sequence[OutColumn]) -> list[Formatter | None]:
    """Per column, how to print its typed values; None where the value is already its text
    (strings and Ids: the hot path of a large extract does nothing for them)."""
    out: list[Formatter | None] = []
    for c in columns:
        if c.type in _PLAIN:
            out.append(None)
        else:
            out.append(_BY_TYPE.get(c.type, csv_text))
    return out


def quoted_header(names: Sequence[str], delimiter: str, newline: str) -> bytes:
    return (delimiter.join('"' + n.replace('"', '""') + '"' for n in names) + newline).encode()


def plain_columns(columns: Sequence[OutColumn]) -> bool:
    """Whether every column is text as stored (strings, Ids): both stores return such columns
    as str or None, which is already their Bulk CSV text, so their raw SQL values can be
    written without decoding — the common extract of text fields runs at csv.writer speed."""
    return all(c.type in _PLAIN for c in columns)


class CsvRenderer:
    """Typed rows → Bulk CSV lines: every value quoted, null as `""`, the job's delimiter and
    line ending. One C-level csv.writer call per block of rows."""

    def __init__(self, columns: Sequence[OutColumn], delimiter: str, newline: str) -> None:
        self.fmts = [(i, f) for i, f in enumerate(csv_formatters(columns)) if f is not None]
        self.buf = io.StringIO()
        self.writer = csv.writer(
            self.buf, delimiter=delimiter, lineterminator=newline, quoting=csv.QUOTE_ALL
        )

    def render(self, rows: Iterable[Sequence[Any]]) -> bytes:
        """`rows` are sequences of typed values."""
        fmts = self.fmts
        if fmts:
            out = [list(r) for r in rows]
            for row in out:
                for i, f in fmts:
                    row[i] = f(row[i])
            rows = out
        self.writer.writerows(rows)
        text = self.buf.getvalue().replace("\x00", "")  # clients strip NULs; never send one
        self.buf.seek(0)
        self.buf.truncate()
        return text.encode()


# ---- Bulk 2.0 query jobs -------------------------------------------------------------------


def job_info(job: Job, *, created: bool = False) -> dict[str, Any]:
    """A query job's info (bulk-api.md §4.2): the create answer is the short form."""
    info: dict[str, Any] = {
        "id": job.id,
        "operation": job.operation.value,
        "object": job.object,
        "createdById": job.created_by,
        "createdDate": _job_ts(job.created_date),
        "systemModstamp": _job_ts(job.system_modstamp),
        "state": job.state.value,
        "concurrencyMode": job.concurrency_mode,
        "contentType": job.content_type,
        "apiVersion": float(job.api_version),
    }
    if not created:
        info["jobType"] = job.job_type
    info["lineEnding"] = job.line_ending
    info["columnDelimiter"] = job.column_delimiter
    if not created:
        info["numberRecordsProcessed"] = job.records_processed
        info["retries"] = job.retries
        info["totalProcessingTime"] = job.total_processing_time
        info["isPkChunkingSupported"] = True
        if job.error_message and job.state in (JobState.FAILED, JobState.ABORTED):
            info["errorMessage"] = job.error_message
    return info


def _job_ts(ts: dt.datetime) -> str:
    return rest_datetime(ts)


def encode_locator(offset: int) -> str:
    """Unpadded URL-safe base64 of the row offset, like Salesforce's `MTAwMDA` (10000)."""
    return base64.urlsafe_b64encode(str(offset).encode()).decode().rstrip("=")


def decode_locator(locator: str) -> int | None:
    try:
        text = base64.urlsafe_b64decode(locator + "=" * (-len(locator) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return int(text) if text.isdigit() else None


def result_pages(urls: list[str], next_url: str | None) -> dict[str, Any]:
    return {
        "resultPages": [{"resultUrl": u} for u in urls],
        "nextRecordsUrl": next_url,
        "done": next_url is None,
    }


# ---- REST JSON -----------------------------------------------------------------------------


def rest_record(rec: Rec, ver: str, value: Callable[[Any], Any] = rest_value) -> dict[str, Any]:
    """A record with `attributes` first, parents nested, child results as
    `{totalSize, done, records}` or null when empty. `value` renders the scalars: REST JSON's
    by default; Bulk 1.0 JSON results (`wire/bulk1query.py`) give dates as epoch ms."""
    attrs: dict[str, Any] = {"type": rec.type}
    if rec.id is not None:
        attrs["url"] = f"/services/data/v{ver}/sobjects/{rec.type}/{rec.id}"
    out: dict[str, Any] = {"attributes": attrs}
    for name, field in rec.fields.items():
        if isinstance(field, Rec):
            out[name] = rest_record(field, ver, value)
        elif isinstance(field, list):
            out[name] = child_result(field, ver, value)
        else:
            out[name] = value(field)
    return out


def flat_records(
    sobject: str, names: Sequence[str], id_at: int, rows: Iterable[Sequence[Any]], ver: str
) -> list[dict[str, Any]]:
    """`rest_record` for the common plan without parents or children (values of `names`, the
    record's Id at `id_at`), without building the nested records first."""
    base = f"/services/data/v{ver}/sobjects/{sobject}/"
    out = []
    for row in rows:
        rec: dict[str, Any] = {"attributes": {"type": sobject, "url": base + row[id_at]}}
        for name, value in zip(names, row, strict=True):
            rec[name] = value if value.__class__ in _AS_IS else rest_value(value)
        out.append(rec)
    return out


def child_result(
    children: list[Rec], ver: str, value: Callable[[Any], Any] = rest_value
) -> dict[str, Any] | None:
    if not children:
        return None
    return {
        "totalSize": len(children),
        "done": True,
        "records": [rest_record(c, ver, value) for c in children],
    }


def query_page(total: int, records: list[dict[str, Any]], next_url: str | None) -> dict[str, Any]:
    page: dict[str, Any] = {"totalSize": total, "done": next_url is None}
    if next_url is not None:
        page["nextRecordsUrl"] = next_url
    page["records"] = records
    return page


def explain(obj: SObject, cardinality: int, total: int, indexed: bool) -> dict[str, Any]:
    """The `explain=` answer: one plan, a table scan unless an index leads."""
    return {
        "plans": [
            {
                "cardinality": cardinality,
                "fields": [],
                "leadingOperationType": "Index" if indexed else "TableScan",
                "notes": [],
                "relativeCost": round(cardinality / total, 4) if total else 0.0,
                "sobjectCardinality": total,
                "sobjectType": obj.name,
            }
        ]
    }


# ---- columns=true (the sf CLI's `sf data query` asks for it) --------------------------------

_APEX = {
    "id": "Id", "reference": "Id", "boolean": "Boolean", "int": "Integer", "long": "Long",
    "double": "Double", "currency": "Decimal", "percent": "Double", "date": "Date",
    "datetime": "Datetime", "time": "Time", "base64": "Blob",
}  # fmt: skip


def _meta(
    name: str, display: str, f: Field | None, *, aggregate: bool = False,
    fk: str | None = None, join: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:  # fmt: skip
    ftype = f.type if f is not None else ""
    leaf = f is not None and not join
    return {
        "aggregate": aggregate,
        "apexType": (_APEX.get(ftype, "String") if leaf else None),
        "booleanType": leaf and ftype == "boolean",
        "columnName": name,
        "custom": f is not None and f.name.endswith("__c"),
        "displayName": display,
        "foreignKeyName": fk,
        "insertable": bool(leaf and f is not None and f.createable),
        "joinColumns": join or [],
        "numberType": (leaf and ftype in NUMBER_TYPES | {"int", "long"})
        or (aggregate and not join and ftype in NUMBER_TYPES | {"int", "long", ""}),
        "textType": leaf and ftype in STRING_TYPES,
        "updatable": bool(leaf and f is not None and f.updateable),
    }


def _parent_field(schema: Schema, obj: SObject, rel: str) -> tuple[Field, SObject | None] | None:
    for f in obj.fields.values():
        if f.relationship_name and f.relationship_name.lower() == rel.lower():
            target = schema.get(f.reference_to[0]) if f.reference_to else None
            return f, target
    return None


def _path_meta(schema: Schema, obj: SObject | None, path: Sequence[str]) -> dict[str, Any]:
    if obj is None:
        return _meta(path[-1], ".".join(path), None)
    if len(path) == 1:
        f = obj.field(path[0])
        return _meta(path[0], path[0], f)
    hop = _parent_field(schema, obj, path[0])
    ref, target = hop if hop else (None, None)
    inner = _path_meta(schema, target, path[1:])
    return _meta(path[0], path[0], None, fk=ref.name if ref else None, join=[inner])


def _merge(columns: list[dict[str, Any]], meta: dict[str, Any]) -> None:
    """Parent paths sharing a relationship (`Owner.Name`, `Owner.Email`) share one column."""
    for c in columns:
        if c["joinColumns"] and meta["joinColumns"] and c["columnName"] == meta["columnName"]:
            for j in meta["joinColumns"]:
                _merge(c["joinColumns"], j)
            return
    columns.append(meta)


def column_metadata(plan: Plan, schema: Schema) -> dict[str, Any]:
    cols: list[dict[str, Any]] = []
    for c in plan.columns:
        if plan.aggregate and len(c.path) == 1 and plan.root.field(c.path[0]) is None:
            cols.append(_meta(c.name, c.name, None, aggregate=True))
        else:
            _merge(cols, _path_meta(schema, plan.root, c.path))
    for child in plan.children:
        cols.append(_child_meta(schema, plan.root, child))
    return {
        "columnMetadata": cols,
        "entityName": plan.root.name,
        "groupBy": plan.aggregate,
        "idSelected": any(c.path == ("Id",) for c in plan.columns),
        "keyPrefix": None if plan.aggregate else plan.root.key_prefix,
    }


def _child_meta(schema: Schema, parent: SObject, child: ChildPlan) -> dict[str, Any]:
    rel = schema.child_relationship(parent, child.name)
    child_obj = rel.child if rel is not None else None
    join = [_path_meta(schema, child_obj, c.path) for c in getattr(child, "columns", [])]
    meta = _meta(child.name, child.name, None, aggregate=True, join=join)
    return meta
