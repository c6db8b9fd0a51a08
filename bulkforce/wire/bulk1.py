"""Bulk API 1.0 wire shapes: JobInfo, BatchInfo, errors and results in XML and JSON, and the
parsing of XML/JSON request bodies and batch payloads.

Every response shape is one ordered field list rendered by both the XML and the JSON writer, so
element order (which WSC and Data Loader read strictly) cannot drift between formats.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape

from bulkforce.engine.coerce import NULL
from bulkforce.engine.outcome import Outcome
from bulkforce.errors import Kind
from bulkforce.model import Batch, BatchStats, Job
from bulkforce.wire.csvio import quoted
from bulkforce.wire.decode import DecodeError, UnsafeXml, load_json, load_xml

NS = "http://www.force.com/2009/06/asyncapi/dataload"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>'

# (status, exceptionCode) per domain error kind; spec §2.12 (codes from WSC's enum only).
ERRORS: dict[Kind, tuple[int, str]] = {
    Kind.NOT_FOUND: (404, "InvalidUrl"),
    Kind.GONE: (400, "InvalidVersion"),
    Kind.INSUFFICIENT_ACCESS: (400, "InvalidUser"),
    Kind.INVALID_JOB: (400, "InvalidJob"),
    Kind.INVALID_JOB_STATE: (400, "InvalidJobState"),
    Kind.INVALID_ENTITY: (400, "InvalidEntity"),
    Kind.INVALID_BATCH: (400, "InvalidBatch"),
    Kind.FEATURE_NOT_ENABLED: (400, "FeatureNotEnabled"),
    Kind.API_ERROR: (400, "InvalidJob"),
    Kind.CLIENT_INPUT: (400, "ClientInputError"),
    Kind.JSON_PARSE: (400, "ClientInputError"),
    Kind.UNSUPPORTED_MEDIA: (415, "UnsupportedContentType"),
    Kind.UNSUPPORTED_CONTENT_TYPE: (400, "UnsupportedContentType"),
    Kind.METHOD_NOT_ALLOWED: (405, "InvalidUrl"),
    Kind.INVALID_SESSION: (400, "InvalidSessionId"),
    Kind.INVALID_XML: (400, "InvalidXml"),
    Kind.INVALID_VERSION: (400, "InvalidVersion"),
    Kind.UNKNOWN: (500, "InternalServerError"),
    Kind.UNAVAILABLE: (503, "Unknown"),
}


class PayloadError(ValueError):
    """A request body that cannot be read; `kind` says which error answers it."""

    def __init__(self, kind: Kind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


# ---- rendering ---------------------------------------------------------------------------------

# Characters XML 1.0 cannot carry, not even as references: a message echoing one (a cell value,
# an object name) would make the whole document unreadable to every XML parser.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(value: str) -> str:
    """`value` as XML character data: escaped, unrepresentable characters as U+FFFD."""
    return escape(_NOT_XML.sub("\ufffd", value))


Getter = Callable[[Any], Any]
Shape = list[tuple[str, Getter, str]]  # (element, value getter, kind: str|int|float|date)


def _xml_value(value: Any, kind: str) -> str:
    if kind == "date":
        ts: dt.datetime = value.astimezone(dt.UTC)
        return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"
    if kind == "float":
        return f"{float(value):.1f}"
    return xml_text(str(value))


def _json_value(value: Any, kind: str) -> Any:
    if kind == "date":
        ts: dt.datetime = value.astimezone(dt.UTC)
        return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}+0000"
    if kind == "float":
        return float(value)
    return value


def _xml_fields(shape: Shape, obj: Any) -> str:
    parts = []
    for name, get, kind in shape:
        value = get(obj)
        if value is not None:
            parts.append(f"<{name}>{_xml_value(value, kind)}</{name}>")
    return "".join(parts)


def _json_fields(shape: Shape, obj: Any) -> dict[str, Any]:
    out = {}
    for name, get, kind in shape:
        value = get(obj)
        if value is not None:
            out[name] = _json_value(value, kind)
    return out


def xml_doc(root: str, inner: str) -> bytes:
    if not inner:
        return f'{XML_DECL}<{root} xmlns="{NS}"/>'.encode()
    return f'{XML_DECL}<{root} xmlns="{NS}">{inner}</{root}>'.encode()


def json_doc(data: Any) -> bytes:
    return json.dumps(data).encode()


JobView = tuple[Job, BatchStats]

JOB_SHAPE: Shape = [
    ("id", lambda v: v[0].id, "str"),
    ("operation", lambda v: v[0].operation.value, "str"),
    ("object", lambda v: v[0].object, "str"),
    ("createdById", lambda v: v[0].created_by, "str"),
    ("createdDate", lambda v: v[0].created_date, "date"),
    ("systemModstamp", lambda v: v[0].system_modstamp, "date"),
    ("state", lambda v: v[0].state.value, "str"),
    ("externalIdFieldName", lambda v: v[0].external_id_field, "str"),
    ("concurrencyMode", lambda v: v[0].concurrency_mode, "str"),
    ("contentType", lambda v: v[0].content_type, "str"),
    ("numberBatchesQueued", lambda v: v[1].queued, "int"),
    ("numberBatchesInProgress", lambda v: v[1].in_progress, "int"),
    ("numberBatchesCompleted", lambda v: v[1].completed, "int"),
    ("numberBatchesFailed", lambda v: v[1].failed, "int"),
    ("numberBatchesTotal", lambda v: v[1].total, "int"),
    ("numberRecordsProcessed", lambda v: v[1].records_processed, "int"),
    ("numberRetries", lambda v: v[1].retries, "int"),
    ("apiVersion", lambda v: v[0].api_version, "float"),
    ("assignmentRuleId", lambda v: v[0].assignment_rule_id, "str"),
    ("numberRecordsFailed", lambda v: v[1].records_failed, "int"),
    ("totalProcessingTime", lambda v: v[1].total_processing_time, "int"),
    ("apiActiveProcessingTime", lambda v: v[1].total_processing_time, "int"),
    ("apexProcessingTime", lambda v: 0, "int"),
]

BATCH_SHAPE: Shape = [
    ("id", lambda b: b.id, "str"),
    ("jobId", lambda b: b.job_id, "str"),
    ("state", lambda b: b.state.value, "str"),
    ("stateMessage", lambda b: b.state_message, "str"),
    ("createdDate", lambda b: b.created_date, "date"),
    ("systemModstamp", lambda b: b.system_modstamp, "date"),
    ("numberRecordsProcessed", lambda b: b.records_processed, "int"),
    ("numberRecordsFailed", lambda b: b.records_failed, "int"),
    ("totalProcessingTime", lambda b: b.total_processing_time, "int"),
    ("apiActiveProcessingTime", lambda b: b.api_active_processing_time, "int"),
    ("apexProcessingTime", lambda b: b.apex_processing_time, "int"),
]


def job_fields(view: JobView) -> dict[str, Any]:
    """JobInfo's fields in the documented order, as JSON values (the web console shows them)."""
    return _json_fields(JOB_SHAPE, view)


def batch_fields(batch: Batch) -> dict[str, Any]:
    return _json_fields(BATCH_SHAPE, batch)


def job_info(view: JobView, as_json: bool) -> bytes:
    if as_json:  # Salesforce's JSON examples list keys alphabetically
        return json_doc(dict(sorted(_json_fields(JOB_SHAPE, view).items())))
    return xml_doc("jobInfo", _xml_fields(JOB_SHAPE, view))


def batch_info(batch: Batch, as_json: bool) -> bytes:
    if as_json:
        return json_doc(dict(sorted(_json_fields(BATCH_SHAPE, batch).items())))
    return xml_doc("batchInfo", _xml_fields(BATCH_SHAPE, batch))


def batch_list(batches: Sequence[Batch], as_json: bool) -> bytes:
    if as_json:
        return json_doc(
            {"batchInfo": [dict(sorted(_json_fields(BATCH_SHAPE, b).items())) for b in batches]}
        )
    inner = "".join(f"<batchInfo>{_xml_fields(BATCH_SHAPE, b)}</batchInfo>" for b in batches)
    return xml_doc("batchInfoList", inner)


def error_body(kind: Kind, message: str, as_json: bool) -> tuple[int, bytes]:
    status, code = ERRORS[kind]
    if as_json:
        return status, json_doc({"exceptionCode": code, "exceptionMessage": message})
    inner = f"<exceptionCode>{code}</exceptionCode><exceptionMessage>{xml_text(message)}</exceptionMessage>"
    return status, xml_doc("error", inner)


def results(outcome: Outcome, content_type: str) -> bytes:
    """A batch's results, one per input row in input order, in the job's data format."""
    rows = zip(outcome.ids, outcome.created, outcome.errors, strict=True)
    if content_type == "CSV":
        lines = ['"Id","Success","Created","Error"']
        for rid, created, err in rows:
            if err is None:
                lines.append(quoted([rid, "true", _flag(created), ""], ","))
            else:
                lines.append(quoted([rid, "false", "false", err.render()], ","))
        return ("\n".join(lines) + "\n").encode()
    if content_type == "JSON":
        out = []
        for rid, created, err in rows:
            errors = [] if err is None else [
                {"statusCode": err.code, "message": err.message, "fields": list(err.fields)}
            ]  # fmt: skip
            out.append({"success": err is None, "created": err is None and created,
                        "id": rid or None, "errors": errors})  # fmt: skip
        return json_doc(out)
    parts = []
    for rid, created, err in rows:
        inner = ""
        if err is not None:
            fields = "".join(f"<fields>{xml_text(f)}</fields>" for f in err.fields)
            inner += (f"<errors>{fields}<message>{xml_text(err.message)}</message>"
                      f"<statusCode>{err.code}</statusCode></errors>")  # fmt: skip
        if rid:
            inner += f"<id>{rid}</id>"
        inner += f"<success>{_flag(err is None)}</success><created>{_flag(err is None and created)}</created>"
        parts.append(f"<result>{inner}</result>")
    return xml_doc("results", "".join(parts))


def result_errors(doc: bytes, content_type: str) -> list[str | None]:
    """Each result row's error as `CODE:message:fields --` (None for a success), in input
    order: the reading of `results` (the console groups failures by code)."""
    if content_type == "CSV":
        rows = list(csv.reader(io.StringIO(doc.decode("utf-8"))))[1:]
        return [None if len(r) < 4 or r[1] == "true" else r[3] for r in rows]
    if content_type == "JSON":
        out: list[str | None] = []
        for item in json.loads(doc):
            errs = item.get("errors") or []
            if item.get("success") or not errs:
                out.append(None)
                continue
            e = errs[0]
            fields = ",".join(e.get("fields") or [])
            out.append(
                f"{e.get('statusCode')}:{e.get('message')}:{fields + ' --' if fields else '--'}"
            )
        return out
    results: list[str | None] = []
    for result in parse_xml(doc):
        errors = [c for c in result if _local(c.tag)[1] == "errors"]
        if not errors:
            results.append(None)
            continue
        parts = {_local(c.tag)[1]: c.text or "" for c in errors[0]}
        fields = ",".join(c.text or "" for c in errors[0] if _local(c.tag)[1] == "fields")
        tail = fields + " --" if fields else "--"
        results.append(f"{parts.get('statusCode')}:{parts.get('message')}:{tail}")
    return results


def _flag(value: bool) -> str:
    return "true" if value else "false"


# ---- parsing -----------------------------------------------------------------------------------


def _local(tag: str) -> tuple[str | None, str]:
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        return ns, local
    return None, tag


def parse_xml(data: bytes) -> Element:
    try:
        return load_xml(data)
    except UnsafeXml as e:
        raise PayloadError(
            Kind.INVALID_XML, f"XML with DTDs or entity declarations is not accepted: {e}"
        ) from None
    except DecodeError as e:
        raise PayloadError(Kind.INVALID_XML, f"Failed to parse XML: {e}") from None


def parse_job_body(data: bytes, as_json: bool) -> dict[str, Any]:
    """A JobInfo request body as a dict of element name → value (any element order)."""
    if as_json:
        try:
            doc = load_json(data)
        except DecodeError:
            raise PayloadError(Kind.INVALID_JOB, "Unable to parse Job") from None
        if not isinstance(doc, dict):
            raise PayloadError(Kind.INVALID_JOB, "Unable to parse Job")
        return doc
    try:
        root = parse_xml(data)
    except PayloadError:  # Salesforce reads a JobInfo it cannot parse as no job at all
        raise PayloadError(Kind.INVALID_JOB, "Unable to parse Job") from None
    ns, local = _local(root.tag)
    if local != "jobInfo" or ns != NS:
        raise PayloadError(Kind.INVALID_JOB, "Unable to parse Job")
    out: dict[str, Any] = {}
    for child in root:
        if len(child):
            raise PayloadError(Kind.INVALID_JOB, "Unable to parse Job")
        out[_local(child.tag)[1]] = (child.text or "").strip()
    return out


def _records_to_rows(records: Iterable[dict[str, str | None]]) -> tuple[list[str], list[list[str]]]:
    records = list(records)
    header: dict[str, None] = {}
    for rec in records:
        for key in rec:
            header.setdefault(key, None)
    names = list(header)
    rows: list[list[str]] = []
    for rec in records:
        row = []
        for n in names:
            value = rec.get(n, "")
            row.append(NULL if value is None else value)
        rows.append(row)
    return names, rows


def _json_scalar(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return value
    raise ValueError(value)


def parse_json_records(data: bytes) -> tuple[list[str], list[list[str]]]:
    try:
        doc = load_json(data)
    except DecodeError as e:
        raise PayloadError(Kind.INVALID_BATCH, f"Failed to parse JSON: {e}") from None
    if not isinstance(doc, list) or not all(isinstance(r, dict) for r in doc):
        raise PayloadError(Kind.INVALID_BATCH, "A JSON batch must be an array of record objects")
    records = []
    try:
        for raw in doc:
            rec: dict[str, str | None] = {}
            for key, value in raw.items():
                if key == "attributes":
                    continue
                if isinstance(value, dict):  # relationship: {"Ext__c": "v"} (+ attributes.type)
                    target = (value.get("attributes") or {}).get("type")
                    for sub, subval in value.items():
                        if sub != "attributes":
                            col = f"{target}:{key}.{sub}" if target else f"{key}.{sub}"
                            rec[col] = _json_scalar(subval)
                else:
                    rec[key] = _json_scalar(value)
            records.append(rec)
    except (ValueError, AttributeError) as e:
        raise PayloadError(Kind.INVALID_BATCH, f"Unsupported JSON value in a record: {e}") from None
    return _records_to_rows(records)


def parse_xml_records(data: bytes) -> tuple[list[str], list[list[str]]]:
    root = parse_xml(data)
    if _local(root.tag)[1] != "sObjects":
        raise PayloadError(Kind.INVALID_BATCH, "An XML batch must have the root element sObjects")
    nil = f"{{{XSI}}}nil"
    records = []
    for obj in root:
        if _local(obj.tag)[1] != "sObject":
            raise PayloadError(
                Kind.INVALID_BATCH, f"Unexpected element {_local(obj.tag)[1]} in sObjects"
            )
        rec: dict[str, str | None] = {}
        for child in obj:
            name = _local(child.tag)[1]
            nested = [c for c in child if _local(c.tag)[1] == "sObject"]
            if nested:
                target = None
                for sub in nested[0]:
                    sub_name = _local(sub.tag)[1]
                    if sub_name == "type":
                        target = (sub.text or "").strip()
                for sub in nested[0]:
                    sub_name = _local(sub.tag)[1]
                    if sub_name != "type":
                        col = f"{target}:{name}.{sub_name}" if target else f"{name}.{sub_name}"
                        rec[col] = None if sub.get(nil) == "true" else (sub.text or "")
            else:
                rec[name] = None if child.get(nil) == "true" else (child.text or "")
        records.append(rec)
    return _records_to_rows(records)
