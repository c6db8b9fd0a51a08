"""Bulk API 1.0 query results on the wire (bulk-api.md §2.8, query.md §2.4): the result-id
list of a batch, and records as XML `queryResult` and JSON arrays. CSV results use the Bulk CSV
rendering every query API shares (`wire/query.py`).

A result file is written record by record and may be served in several parts (results over
1 GB get several result ids), so each format here is a head, a body of self-contained record
fragments, and a tail: `RESULT_HEAD[fmt] + fragments + RESULT_TAIL[fmt]` is one document.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from bulkforce.soql import Rec
from bulkforce.wire.bulk1 import NS, XML_DECL, XSI, json_doc, xml_doc, xml_text
from bulkforce.wire.query import csv_text, rest_record

NO_RECORDS = b"Records not found for this query"

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def result_list(result_ids: Sequence[str], as_json: bool) -> bytes:
    if as_json:
        return json_doc(list(result_ids))
    return xml_doc("result-list", "".join(f"<result>{r}</result>" for r in result_ids))


# ---- XML ---------------------------------------------------------------------------------------


def _xml_record(rec: Rec, tag: str) -> str:
    parts = [f'<{tag} xsi:type="sObject"><type>{rec.type}</type>']
    for name, value in rec.fields.items():
        if value is None:
            parts.append(f'<{name} xsi:nil="true"/>')
        elif isinstance(value, Rec):
            parts.append(_xml_record(value, name))
        elif isinstance(value, list):
            parts.append(_xml_children(name, value))
        else:
            parts.append(f"<{name}>{xml_text(csv_text(value))}</{name}>")
    parts.append(f"</{tag}>")
    return "".join(parts)


def _xml_children(name: str, children: list[Rec]) -> str:
    """A child subquery's rows as the partner API's nested QueryResult; none is nil."""
    if not children:
        return f'<{name} xsi:nil="true"/>'
    rows = "".join(_xml_record(c, "records") for c in children)
    return (f'<{name} xsi:type="QueryResult"><done>true</done><queryLocator xsi:nil="true"/>'
            f"{rows}<size>{len(children)}</size></{name}>")  # fmt: skip


def xml_record(rec: Rec) -> bytes:
    """One `<records xsi:type="sObject">` fragment: `type`, then the fields in SELECT order,
    parents nested as sObjects, nulls as `xsi:nil`."""
    return _xml_record(rec, "records").encode()


# ---- JSON --------------------------------------------------------------------------------------


def _json_value(value: Any) -> Any:
    # Bulk 1.0 JSON carries dates and datetimes as epoch milliseconds (query.md §2.4, B1-53)
    if isinstance(value, dt.datetime):
        delta = value.astimezone(dt.UTC) - _EPOCH
        return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000
    if isinstance(value, dt.date):
        return (value - _EPOCH.date()).days * 86_400_000
    if isinstance(value, dt.time):
        return csv_text(value)
    return value


def json_record(rec: Rec, ver: str) -> bytes:
    """One record of the JSON array, with its separator in front (the head drops the first)."""
    doc = rest_record(rec, ver, _json_value)
    return b"," + json.dumps(doc, separators=(",", ":")).encode()


RESULT_HEAD = {
    "XML": f'{XML_DECL}<queryResult xmlns="{NS}" xmlns:xsi="{XSI}">'.encode(),
    "JSON": b"[",
}
RESULT_TAIL = {"XML": b"</queryResult>", "JSON": b"]"}
# bytes at the start of a body that the head replaces (the first record's separator)
RESULT_SKIP = {"XML": 0, "JSON": 1}
