"""Raw-HTTP helpers shared by the Bulk API 1.0 tests (not a test module).

Spec: /work/shared/spec/bulk-api.md §1, §2. Every helper that reads a response checks the
Bulk 1.0 wire rules on the way: bare `Content-Type`, the dataload namespace, XSD element order,
numbers as JSON numbers and the two date formats.
"""

from __future__ import annotations

import json
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal
from xml.sax.saxutils import escape

import httpx
from bulk2_helpers import parse_quoted
from conftest import API, Server

Fmt = Literal["xml", "json"]

NS = "http://www.force.com/2009/06/asyncapi/dataload"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
ASYNC = f"/services/async/{API}"
JOB = f"{ASYNC}/job"
INGEST = f"/services/data/v{API}/jobs/ingest"

MEDIA = {"CSV": "text/csv", "XML": "application/xml", "JSON": "application/json"}

JOB_ORDER = (
    "id",
    "operation",
    "object",
    "createdById",
    "createdDate",
    "systemModstamp",
    "state",
    "externalIdFieldName",
    "concurrencyMode",
    "contentType",
    "numberBatchesQueued",
    "numberBatchesInProgress",
    "numberBatchesCompleted",
    "numberBatchesFailed",
    "numberBatchesTotal",
    "numberRecordsProcessed",
    "numberRetries",
    "apiVersion",
    "assignmentRuleId",
    "numberRecordsFailed",
    "totalProcessingTime",
    "apiActiveProcessingTime",
    "apexProcessingTime",
)
JOB_OPTIONAL = frozenset({"externalIdFieldName", "assignmentRuleId"})
JOB_COUNTERS = (
    "numberBatchesQueued",
    "numberBatchesInProgress",
    "numberBatchesCompleted",
    "numberBatchesFailed",
    "numberBatchesTotal",
    "numberRecordsProcessed",
    "numberRetries",
    "numberRecordsFailed",
    "totalProcessingTime",
    "apiActiveProcessingTime",
    "apexProcessingTime",
)
BATCH_ORDER = (
    "id",
    "jobId",
    "state",
    "stateMessage",
    "createdDate",
    "systemModstamp",
    "numberRecordsProcessed",
    "numberRecordsFailed",
    "totalProcessingTime",
    "apiActiveProcessingTime",
    "apexProcessingTime",
)
BATCH_OPTIONAL = frozenset({"stateMessage"})
BATCH_COUNTERS = (
    "numberRecordsProcessed",
    "numberRecordsFailed",
    "totalProcessingTime",
    "apiActiveProcessingTime",
    "apexProcessingTime",
)
JOB_STATES = frozenset({"Open", "Closed", "Aborted", "Failed"})
BATCH_STATES = frozenset({"Queued", "InProgress", "Completed", "Failed", "NotProcessed"})
TERMINAL = frozenset({"Completed", "Failed", "NotProcessed"})

# WSC's AsyncExceptionCode enum (spec §2.12): the only codes a server may send.
EXCEPTION_CODES = frozenset(
    {
        "Unknown",
        "InvalidSessionId",
        "InvalidOperation",
        "InvalidUrl",
        "InvalidUser",
        "InvalidXml",
        "FeatureNotEnabled",
        "ExceededQuota",
        "InvalidJob",
        "InvalidJobState",
        "InvalidBatch",
        "InternalServerError",
        "ClientInputError",
        "Timeout",
        "TooManyLockFailure",
        "InvalidVersion",
        "HttpsRequired",
        "UnsupportedContentType",
        "InvalidEntity",
        "TransactionSecurityBlock",
        "TransactionSecurityInternalError",
        "TransactionSecurityDeveloperError",
        "Gone",
    }
)

XML_DATE_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
JSON_DATE_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$")
UNABLE_TO_PARSE = "Unable to parse Job"
RESULT_HEADER = '"Id","Success","Created","Error"'

# ---------------------------------------------------------------- clients and headers


def b1_client(server: Server, header: str = "X-SFDC-Session") -> httpx.Client:
    """A client sending the Bulk 1.0 session header (no Authorization header)."""
    return httpx.Client(base_url=server.url, headers={header: server.token}, timeout=60)


def ct(fmt: Fmt) -> dict[str, str]:
    return {"Content-Type": "application/json" if fmt == "json" else "application/xml"}


def media(r: httpx.Response) -> str:
    """The response's exact Content-Type header (no normalisation: §1.6 wants bare types)."""
    value = r.headers.get("content-type")
    assert value is not None, "every Bulk 1.0 response needs a Content-Type"
    return str(value)


def fmt_of_job(content_type: str) -> Fmt:
    """R2: the response format of requests on an existing job."""
    return "json" if content_type in ("JSON", "ZIP_JSON") else "xml"


# ---------------------------------------------------------------- XML reading


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_xml(r: httpx.Response, root: str) -> ET.Element:
    """The body as XML with root `{NS}root`; every element is in the dataload namespace."""
    assert media(r) == "application/xml", (r.status_code, r.headers, r.text[:300])
    el = ET.fromstring(r.content)
    assert el.tag == f"{{{NS}}}{root}", (el.tag, r.text[:300])
    for sub in el.iter():
        assert sub.tag.startswith(f"{{{NS}}}"), f"element outside the namespace: {sub.tag}"
    return el


def children(el: ET.Element) -> list[tuple[str, str]]:
    return [(local(c.tag), c.text or "") for c in el]


def check_order(tags: list[str], order: tuple[str, ...], optional: frozenset[str]) -> None:
    """Tags exactly in XSD order: no unknown, duplicated or missing required elements."""
    unknown = [t for t in tags if t not in order]
    assert not unknown, f"unexpected elements {unknown} in {tags}"
    assert len(set(tags)) == len(tags), f"duplicated elements: {tags}"
    expected = [t for t in order if t in tags or t not in optional]
    assert tags == expected, f"element order {tags} != {expected}"


def _xml_info(el: ET.Element, order: tuple[str, ...], optional: frozenset[str]) -> dict[str, Any]:
    pairs = children(el)
    check_order([t for t, _ in pairs], order, optional)
    for sub in el:
        assert len(sub) == 0, f"{local(sub.tag)} should be a simple element"
    return dict(pairs)


def _check_info(
    info: dict[str, Any],
    fmt: Fmt,
    order: tuple[str, ...],
    optional: frozenset[str],
    counters: tuple[str, ...],
) -> None:
    if fmt == "json":
        keys = set(info)
        assert keys <= set(order), f"unexpected keys {keys - set(order)}"
        missing = [k for k in order if k not in optional and k not in keys]
        assert not missing, f"missing keys {missing}"
        for k in optional & keys:
            assert isinstance(info[k], str) and info[k], (k, info[k])
    date_re = JSON_DATE_RE if fmt == "json" else XML_DATE_RE
    for k in ("createdDate", "systemModstamp"):
        assert isinstance(info[k], str) and date_re.match(info[k]), (k, info[k])
    for k in counters:
        v = info[k]
        if fmt == "json":
            assert isinstance(v, int) and not isinstance(v, bool) and v >= 0, (k, v)
        else:
            assert isinstance(v, str) and re.fullmatch(r"\d+", v), (k, v)


def read_job(r: httpx.Response, fmt: Fmt, status: int = 200) -> dict[str, Any]:
    """A JobInfo response: status, exact Content-Type, shape, order, numbers and dates."""
    assert r.status_code == status, (r.status_code, r.text)
    if fmt == "xml":
        info = _xml_info(parse_xml(r, "jobInfo"), JOB_ORDER, JOB_OPTIONAL)
        assert re.fullmatch(r"\d\d\.0", info["apiVersion"]), info["apiVersion"]
    else:
        assert media(r) == "application/json", (r.headers, r.text[:300])
        info = r.json()
        assert isinstance(info, dict), info
        v = info.get("apiVersion")
        assert isinstance(v, int | float) and not isinstance(v, bool), v
    _check_info(info, fmt, JOB_ORDER, JOB_OPTIONAL, JOB_COUNTERS)
    assert info["state"] in JOB_STATES, info
    return info


def read_batch(r: httpx.Response, fmt: Fmt, status: int = 200) -> dict[str, Any]:
    """A BatchInfo response, checked like `read_job`."""
    assert r.status_code == status, (r.status_code, r.text)
    if fmt == "xml":
        info = _xml_info(parse_xml(r, "batchInfo"), BATCH_ORDER, BATCH_OPTIONAL)
    else:
        assert media(r) == "application/json", (r.headers, r.text[:300])
        info = r.json()
        assert isinstance(info, dict), info
    check_batch(info, fmt)
    return info


def check_batch(info: dict[str, Any], fmt: Fmt) -> None:
    _check_info(info, fmt, BATCH_ORDER, BATCH_OPTIONAL, BATCH_COUNTERS)
    assert info["state"] in BATCH_STATES, info


def num(info: dict[str, Any], key: str) -> int:
    """A counter from an XML (text) or JSON (number) info."""
    return int(info[key])


# ---------------------------------------------------------------- errors


def read_error(r: httpx.Response, fmt: Fmt) -> tuple[str, str]:
    """A Bulk 1.0 error body in the given format: (exceptionCode, exceptionMessage)."""
    if fmt == "xml":
        el = parse_xml(r, "error")
        pairs = children(el)
        assert [t for t, _ in pairs] == ["exceptionCode", "exceptionMessage"], pairs
        code, message = pairs[0][1], pairs[1][1]
    else:
        assert media(r) == "application/json", (r.status_code, r.headers, r.text[:300])
        body = r.json()
        assert isinstance(body, dict) and list(body) == ["exceptionCode", "exceptionMessage"], body
        code, message = body["exceptionCode"], body["exceptionMessage"]
        assert isinstance(code, str) and isinstance(message, str), body
    assert code in EXCEPTION_CODES, f"{code} is not an AsyncExceptionCode"
    return code, message


def assert_error(
    r: httpx.Response, status: int, code: str, message: str | None = None, fmt: Fmt = "xml"
) -> str:
    """A Bulk 1.0 error with this status and exceptionCode (and exact message if given)."""
    assert r.status_code == status, (r.status_code, r.text[:500])
    got_code, got_message = read_error(r, fmt)
    assert got_code == code, (got_code, got_message)
    assert got_message, "exceptionMessage must not be empty"
    if message is not None:
        assert got_message == message, got_message
    return got_message


def assert_serving(c: httpx.Client) -> None:
    """The server still answers normal Bulk 1.0 requests after a bad one."""
    info = create_job(c, "Widget__c", "insert", "CSV")
    read_job(c.get(f"{JOB}/{info['id']}"), "xml")


# ---------------------------------------------------------------- request bodies


def job_xml(fields: list[tuple[str, Any]] | dict[str, Any], decl: bool = True) -> str:
    """A jobInfo XML body with the fields in the given order (values escaped)."""
    items = list(fields.items()) if isinstance(fields, dict) else fields
    inner = "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in items)
    head = '<?xml version="1.0" encoding="UTF-8"?>' if decl else ""
    return f'{head}<jobInfo xmlns="{NS}">{inner}</jobInfo>'


def job_body(fmt: Fmt, fields: dict[str, Any]) -> str:
    return json.dumps(fields) if fmt == "json" else job_xml(fields)


def sobjects_xml(records: list[dict[str, Any]]) -> str:
    """An XML batch: None → xsi:nil, a dict → relationship with a nested sObject."""

    def field(k: str, v: Any) -> str:
        if v is None:
            return f'<{k} xsi:nil="true"/>'
        if isinstance(v, dict):
            return f"<{k}><sObject>{''.join(field(a, b) for a, b in v.items())}</sObject></{k}>"
        if isinstance(v, bool):
            v = "true" if v else "false"
        return f"<{k}>{escape(str(v))}</{k}>"

    body = "".join(
        "<sObject>" + "".join(field(k, v) for k, v in rec.items()) + "</sObject>" for rec in records
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>'
        f'<sObjects xmlns="{NS}" xmlns:xsi="{XSI}">{body}</sObjects>'
    )


# ---------------------------------------------------------------- job calls


def post_job(
    c: httpx.Client, body: str | bytes, content_type: str | None = "application/xml", **hdrs: str
) -> httpx.Response:
    headers = dict(hdrs)
    if content_type is not None:
        headers["Content-Type"] = content_type
    data = body.encode() if isinstance(body, str) else body
    return c.post(JOB, content=data, headers=headers)


def create_job(
    c: httpx.Client,
    obj: str,
    operation: str = "insert",
    content_type: str | None = "CSV",
    fmt: Fmt = "xml",
    **extra: Any,
) -> dict[str, Any]:
    """Create a job (request body in `fmt`) and return its JobInfo; asserts 201 and Open."""
    fields: dict[str, Any] = {"operation": operation, "object": obj}
    if content_type is not None:
        fields["contentType"] = content_type
    fields.update(extra)
    r = post_job(c, job_body(fmt, fields), ct(fmt)["Content-Type"])
    info = read_job(r, fmt, 201)
    assert info["state"] == "Open", info
    return info


def get_job(c: httpx.Client, job_id: str, fmt: Fmt = "xml") -> dict[str, Any]:
    return read_job(c.get(f"{JOB}/{job_id}"), fmt)


def update_job(
    c: httpx.Client, job_id: str, state: str, fmt: Fmt = "xml", with_id: bool = False
) -> httpx.Response:
    fields: dict[str, Any] = {"id": job_id} if with_id else {}
    fields["state"] = state
    return c.post(f"{JOB}/{job_id}", content=job_body(fmt, fields).encode(), headers=ct(fmt))


def close_job(c: httpx.Client, job_id: str, fmt: Fmt = "xml") -> dict[str, Any]:
    info = read_job(update_job(c, job_id, "Closed", fmt), fmt)
    assert info["state"] == "Closed", info
    return info


def abort_job(c: httpx.Client, job_id: str, fmt: Fmt = "xml") -> dict[str, Any]:
    info = read_job(update_job(c, job_id, "Aborted", fmt), fmt)
    assert info["state"] == "Aborted", info
    return info


# ---------------------------------------------------------------- batch calls


def post_batch(
    c: httpx.Client, job_id: str, data: str | bytes, content_type: str, **hdrs: str
) -> httpx.Response:
    body = data.encode() if isinstance(data, str) else data
    return c.post(
        f"{JOB}/{job_id}/batch", content=body, headers={"Content-Type": content_type, **hdrs}
    )


def add_batch(
    c: httpx.Client, job_id: str, data: str | bytes, job_type: str = "CSV"
) -> dict[str, Any]:
    """Add a batch with the job's media type; asserts 201 and a Queued BatchInfo."""
    info = read_batch(post_batch(c, job_id, data, MEDIA[job_type]), fmt_of_job(job_type), 201)
    assert info["state"] == "Queued", info
    assert info["jobId"] == job_id, info
    return info


def get_batch(c: httpx.Client, job_id: str, batch_id: str, fmt: Fmt = "xml") -> dict[str, Any]:
    return read_batch(c.get(f"{JOB}/{job_id}/batch/{batch_id}"), fmt)


def wait_batch(
    c: httpx.Client, job_id: str, batch_id: str, fmt: Fmt = "xml", timeout: float = 30
) -> dict[str, Any]:
    """Poll a batch until Completed, Failed or NotProcessed."""
    deadline = time.monotonic() + timeout
    while True:
        info = get_batch(c, job_id, batch_id, fmt)
        if info["state"] in TERMINAL:
            return info
        assert time.monotonic() < deadline, f"batch never finished: {info}"
        time.sleep(0.02)


def list_batches(c: httpx.Client, job_id: str, fmt: Fmt = "xml") -> list[dict[str, Any]]:
    r = c.get(f"{JOB}/{job_id}/batch")
    assert r.status_code == 200, r.text
    if fmt == "xml":
        root = parse_xml(r, "batchInfoList")
        assert not (root.text or "").strip(), root.text
        out = []
        for el in root:
            assert local(el.tag) == "batchInfo", el.tag
            info = _xml_info(el, BATCH_ORDER, BATCH_OPTIONAL)
            check_batch(info, fmt)
            out.append(info)
        return out
    assert media(r) == "application/json", r.headers
    body = r.json()
    assert isinstance(body, dict) and list(body) == ["batchInfo"], body
    assert isinstance(body["batchInfo"], list), body
    for info in body["batchInfo"]:
        check_batch(info, fmt)
    return list(body["batchInfo"])


def run_batch(
    c: httpx.Client,
    obj: str,
    operation: str,
    data: str | bytes,
    job_type: str = "CSV",
    **extra: Any,
) -> tuple[str, str, dict[str, Any]]:
    """Create a job, add one batch and wait for it (job left Open): (job id, batch id, info)."""
    job = create_job(c, obj, operation, job_type, **extra)
    batch = add_batch(c, job["id"], data, job_type)
    done = wait_batch(c, job["id"], batch["id"], fmt_of_job(job_type))
    return job["id"], batch["id"], done


# ---------------------------------------------------------------- results


def result_url(job_id: str, batch_id: str) -> str:
    return f"{JOB}/{job_id}/batch/{batch_id}/result"


def csv_results(c: httpx.Client, job_id: str, batch_id: str) -> list[dict[str, str]]:
    """A CSV job's result: exact `text/csv`, quoted header and values, LF, four columns."""
    r = c.get(result_url(job_id, batch_id))
    assert r.status_code == 200, r.text
    assert media(r) == "text/csv", r.headers
    text = r.content.decode("utf-8")
    header, sep, rest = text.partition("\n")
    assert header == RESULT_HEADER, header
    assert sep == "\n" and "\r" not in text, repr(text[:200])
    rows = parse_quoted(rest, ",", "\n") if rest else []
    assert rest == "" or rest.endswith("\n"), repr(rest[-50:])
    out = []
    for row in rows:
        assert len(row) == 4, row
        d = dict(zip(("Id", "Success", "Created", "Error"), row, strict=True))
        assert d["Success"] in ("true", "false") and d["Created"] in ("true", "false"), d
        out.append(d)
    return out


def xml_results(c: httpx.Client, job_id: str, batch_id: str) -> list[dict[str, Any]]:
    """An XML job's result: `results/result`, children errors*, id?, success, created."""
    r = c.get(result_url(job_id, batch_id))
    assert r.status_code == 200, r.text
    root = parse_xml(r, "results")
    out: list[dict[str, Any]] = []
    for res in root:
        assert local(res.tag) == "result", res.tag
        tags = [local(x.tag) for x in res]
        n_err = 0
        while n_err < len(tags) and tags[n_err] == "errors":
            n_err += 1
        rest = tags[n_err:]
        assert rest in (["id", "success", "created"], ["success", "created"]), tags
        item: dict[str, Any] = {"errors": []}
        for x in res:
            name = local(x.tag)
            if name == "errors":
                etags = [local(e.tag) for e in x]
                nf = 0
                while nf < len(etags) and etags[nf] == "fields":
                    nf += 1
                assert etags[nf:] == ["message", "statusCode"], etags
                texts = [e.text or "" for e in x]
                item["errors"].append(
                    {"fields": texts[:nf], "message": texts[nf], "statusCode": texts[nf + 1]}
                )
            else:
                assert len(x) == 0, name
                item[name] = x.text or ""
        assert item["success"] in ("true", "false") and item["created"] in ("true", "false")
        out.append(item)
    return out


def json_results(c: httpx.Client, job_id: str, batch_id: str) -> list[dict[str, Any]]:
    """A JSON job's result: an array of {success, created, id, errors[]}."""
    r = c.get(result_url(job_id, batch_id))
    assert r.status_code == 200, r.text
    assert media(r) == "application/json", r.headers
    body = r.json()
    assert isinstance(body, list), body
    for item in body:
        assert isinstance(item, dict) and set(item) == {"success", "created", "id", "errors"}, item
        assert isinstance(item["success"], bool) and isinstance(item["created"], bool), item
        assert item["id"] is None or isinstance(item["id"], str), item
        assert isinstance(item["errors"], list), item
        for err in item["errors"]:
            assert set(err) == {"statusCode", "message", "fields"}, err
            assert isinstance(err["fields"], list), err
    return body


def wait_counters(
    c: httpx.Client, job_id: str, done: int, fmt: Fmt = "xml", timeout: float = 30
) -> dict[str, Any]:
    """Poll the job until `numberBatchesCompleted + numberBatchesFailed` reaches `done`."""
    deadline = time.monotonic() + timeout
    while True:
        info = get_job(c, job_id, fmt)
        if num(info, "numberBatchesCompleted") + num(info, "numberBatchesFailed") >= done:
            return info
        assert time.monotonic() < deadline, info
        time.sleep(0.02)


@contextmanager
def case(label: object) -> Iterator[None]:
    """Name the sub-case in a failure of a test that loops over several inputs."""
    try:
        yield
    except AssertionError as e:
        e.add_note(f"case: {label!r}")
        raise
