"""Every column type survives a bulk insert and a bulk update unchanged, on both stores.

PostgreSQL writes bulk rows by binary COPY (each value in its column's exact binary type) and
updates of many rows through a staging table; these are the values a wrong conversion would
change: dates, datetimes with offsets, decimals rounded to their scale, booleans, NULLs,
text with quotes, newlines and non-ASCII characters.
"""

from __future__ import annotations

import csv
import io

from bulk2_helpers import db_query, run_job, success
from conftest import Server, unique

HEADER = [
    "Name", "Sku__c", "Count__c", "Quantity__c", "Price__c", "Ratio__c", "Active__c",
    "Released__c", "Seen_At__c", "Notes__c",
]  # fmt: skip
ROWS = 60  # above the store's threshold for a staged update


def _csv(rows: list[list[str]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(HEADER)
    w.writerows(rows)
    return buf.getvalue()


def _row(sku: str, i: int, step: int) -> list[str]:
    if i == 0:  # blanks on insert (not set) and #N/A on update (set to null)
        blank = "" if step == 0 else "#N/A"
        return [f"w{i}", sku, blank, blank, blank, blank, "", blank, blank, blank]
    return [
        f"w{i}-{step}",
        sku,
        str(i * 7 + step),
        f"{i + step}.0",
        f"{i}.{step}55",  # rounds half up to 2 places
        "12.5",
        "true" if (i + step) % 2 else "false",
        f"2024-0{1 + step}-{10 + i % 18:02d}",
        f"2024-03-0{1 + step}T1{i % 10}:30:00.250+02:00",
        f'line "{i}", step {step}\nsecond line: é ü Ł 日本',
    ]


def _expected(i: int, step: int) -> dict[str, object]:
    if i == 0:
        return {
            "Name": "w0", "Count__c": None, "Quantity__c": None, "Price__c": None,
            "Ratio__c": None, "Active__c": 0, "Released__c": None, "Seen_At__c": None,
            "Notes__c": None,
        }  # fmt: skip
    return {
        "Name": f"w{i}-{step}",
        "Count__c": i * 7 + step,
        "Quantity__c": float(i + step),
        "Price__c": round(float(f"{i}.{step}6"), 2),
        "Ratio__c": 12.5,
        "Active__c": 1 if (i + step) % 2 else 0,
        "Released__c": f"2024-0{1 + step}-{10 + i % 18:02d}",
        "Seen_At__c": f"2024-03-0{1 + step}T{8 + i % 10:02d}:30:00.250Z",
        "Notes__c": f'line "{i}", step {step}\nsecond line: é ü Ł 日本',
    }


def _stored(server: Server, ids: list[str]) -> list[dict[str, object]]:
    out = []
    for rid in ids:
        (row,) = db_query(server, 'SELECT * FROM "Widget__c" WHERE "Id" = ?', (rid,))
        out.append({k: row[k] for k in ["Name", *HEADER[2:]]})
    return out


def test_bulk_insert_and_bulk_update_keep_every_type(server: Server) -> None:
    skus = [unique("ty")[-18:] + f"{i:02d}" for i in range(ROWS)]
    with server.client() as c:
        info = run_job(c, "Widget__c", "insert", _csv([_row(s, i, 0) for i, s in enumerate(skus)]))
        assert info["numberRecordsProcessed"] == ROWS and info["numberRecordsFailed"] == 0, info
        ids = [r["sf__Id"] for r in success(c, info["id"], ",".join(HEADER)).dicts()]
        assert _stored(server, ids) == [_expected(i, 0) for i in range(ROWS)]

        upsert = _csv([_row(s.upper(), i, 1) for i, s in enumerate(skus)])
        info = run_job(c, "Widget__c", "upsert", upsert, externalIdFieldName="Sku__c")
        assert info["numberRecordsProcessed"] == ROWS and info["numberRecordsFailed"] == 0, info
        results = success(c, info["id"], ",".join(HEADER)).dicts()
        assert [r["sf__Id"] for r in results] == ids
        assert {r["sf__Created"] for r in results} == {"false"}
        expected = [_expected(i, 1) for i in range(ROWS)]
        expected[0] = {k: None for k in expected[0]} | {"Name": "w0", "Active__c": 0}
        assert _stored(server, ids) == expected
