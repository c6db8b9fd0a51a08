"""Raw-HTTP helpers for the Bulk 1.0 query tests (not a test module): query jobs and batches,
result-id lists and result files read in all three formats with their wire rules checked.

Spec: /work/shared/spec/bulk-api.md §2.8, §2.10; query.md §2.4, §4.3, §5.1.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import Any

import httpx
from bulk1_helpers import (
    JOB,
    MEDIA,
    NS,
    XSI,
    create_job,
    fmt_of_job,
    local,
    media,
    parse_xml,
    post_batch,
    read_batch,
    wait_batch,
)
from bulk2_helpers import parse_quoted

RESULT_ID = re.compile(r"752[0-9A-Za-z]{12}")
NO_RECORDS = "Records not found for this query"


def query_job(
    c: httpx.Client, obj: str, job_type: str = "CSV", operation: str = "query", **headers: str
) -> dict[str, Any]:
    """Create a query job (XML body, as salesforce-bulk and jsforce do), with extra headers."""
    if not headers:
        return create_job(c, obj, operation, job_type)
    fields = f"<operation>{operation}</operation><object>{obj}</object><contentType>{job_type}</contentType>"
    body = f'<?xml version="1.0" encoding="UTF-8"?><jobInfo xmlns="{NS}">{fields}</jobInfo>'
    r = c.post(JOB, content=body, headers={"Content-Type": "application/xml", **headers})
    assert r.status_code == 201, r.text
    return {"id": parse_xml(r, "jobInfo").find(f"{{{NS}}}id").text}  # type: ignore[union-attr]


def submit(
    c: httpx.Client, job_id: str, soql: str, job_type: str, content_type: str | None = None
) -> dict[str, Any]:
    """Post SOQL as a batch (by default under the job's media type); asserts 201 Queued."""
    r = post_batch(c, job_id, soql, content_type or MEDIA[job_type])
    info = read_batch(r, fmt_of_job(job_type), 201)
    assert info["state"] == "Queued", info
    return info


def run_query(
    c: httpx.Client, obj: str, soql: str, job_type: str = "CSV", operation: str = "query",
    **headers: str,
) -> tuple[str, dict[str, Any]]:  # fmt: skip
    """One query batch run to its end: (job id, final BatchInfo)."""
    job_id = query_job(c, obj, job_type, operation, **headers)["id"]
    batch = submit(c, job_id, soql, job_type)
    return job_id, wait_batch(c, job_id, batch["id"], fmt_of_job(job_type), timeout=60)


def result_ids(c: httpx.Client, job_id: str, batch_id: str, job_type: str) -> list[str]:
    """The batch's result ids: `result-list/result` (XML) or a JSON array of 15-char 752 ids."""
    r = c.get(f"{JOB}/{job_id}/batch/{batch_id}/result")
    assert r.status_code == 200, r.text
    if job_type == "JSON":
        assert media(r) == "application/json", r.headers
        got = r.json()
        assert isinstance(got, list), got
    else:
        assert media(r) == "application/xml", r.headers
        root = parse_xml(r, "result-list")
        assert all(local(el.tag) == "result" for el in root), r.text
        got = [el.text for el in root]
    assert all(isinstance(i, str) and RESULT_ID.fullmatch(i) for i in got), got
    return list(got)


def fetch(c: httpx.Client, job_id: str, batch_id: str, result_id: str) -> httpx.Response:
    r = c.get(f"{JOB}/{job_id}/batch/{batch_id}/result/{result_id}")
    assert r.status_code == 200, r.text
    return r


def csv_rows(r: httpx.Response, newline: str = "\n") -> tuple[list[str], list[list[str]]]:
    """A CSV query result: exact text/csv, every value quoted, (header, rows)."""
    assert media(r) == "text/csv", r.headers
    text = r.content.decode("utf-8")
    if text == NO_RECORDS:
        return [], []
    assert text.endswith(newline), repr(text[-40:])
    if newline == "\n":
        assert "\r" not in text, repr(text[:200])
    rows = parse_quoted(text, ",", newline)
    # every value quoted: a row of n values has at least 2n quotes
    for line in text.split(newline)[:-1][:50]:
        assert line.startswith('"') and line.endswith('"'), line
    return rows[0], rows[1:]


def _xml_value(el: ET.Element) -> Any:
    if el.get(f"{{{XSI}}}nil") == "true":
        assert len(el) == 0 and not el.text, ET.tostring(el)
        return None
    if el.get(f"{{{XSI}}}type") == "sObject":
        return xml_record(el)
    if el.get(f"{{{XSI}}}type") == "QueryResult":
        return [xml_record(r) for r in el if local(r.tag) == "records"]
    assert len(el) == 0, ET.tostring(el)
    return el.text or ""


def xml_record(el: ET.Element) -> dict[str, Any]:
    """`<records xsi:type="sObject"><type>T</type>fields…` → {"type": T, field: value…}."""
    assert el.get(f"{{{XSI}}}type") == "sObject", el.attrib
    kids = list(el)
    assert kids and local(kids[0].tag) == "type", [local(k.tag) for k in kids]
    out: dict[str, Any] = {"type": kids[0].text}
    for k in kids[1:]:
        out[local(k.tag)] = _xml_value(k)
    return out


def xml_records(r: httpx.Response) -> list[dict[str, Any]]:
    assert media(r) == "application/xml", r.headers
    root = parse_xml(r, "queryResult")
    assert all(local(el.tag) == "records" for el in root), r.text[:300]
    return [xml_record(el) for el in root]


def json_records(r: httpx.Response) -> list[dict[str, Any]]:
    assert media(r) == "application/json", r.headers
    body = json.loads(r.content)
    assert isinstance(body, list), body
    for rec in body:
        assert next(iter(rec)) == "attributes", rec
    return body


def records(c: httpx.Client, job_id: str, batch_id: str, job_type: str) -> list[dict[str, Any]]:
    """Every record of a Completed batch, across its result ids, as dicts of field → text or
    value (CSV: header → text; XML: element → text; JSON: key → JSON value)."""
    out: list[dict[str, Any]] = []
    for rid in result_ids(c, job_id, batch_id, job_type):
        r = fetch(c, job_id, batch_id, rid)
        if job_type == "CSV":
            header, rows = csv_rows(r)
            out.extend(dict(zip(header, row, strict=True)) for row in rows)
        elif job_type == "XML":
            out.extend(xml_records(r))
        else:
            out.extend(json_records(r))
    return out
