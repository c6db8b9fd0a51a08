"""Bulk API 2.0 ingest over raw HTTP: job lifecycle, state machine and the C/B2/ID checklist.

Spec: /work/shared/spec/bulk-api.md §1, §3, §7, §9.
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from bulk2_helpers import (
    ABORT_COMPLETED,
    BASE,
    COUNTERS,
    DATE_RE,
    DELIMITERS,
    LINE_ENDINGS,
    NOT_FOUND,
    NOT_TERMINATED,
    SCHEMA,
    assert_error,
    assert_id18,
    bad_suffix,
    create,
    db_is_live,
    db_one,
    db_query,
    db_row,
    failed,
    gz,
    patch,
    put,
    run_job,
    success,
    to18,
    unknown_id,
    unprocessed,
    upload_and_close,
)
from conftest import API, Server, unique, wait_for_job

# ---------------------------------------------------------------- helpers


def widget_csv(names: list[str], eol: str = "\n") -> str:
    return eol.join(["Name", *names]) + eol


def job_in_state(c: httpx.Client, state: str) -> dict[str, Any]:
    """A fresh Widget__c insert job in the given state (UploadComplete = just closed)."""
    if state == "Open":
        return create(c, "Widget__c", "insert")
    if state == "JobComplete":
        info = run_job(c, "Widget__c", "insert", widget_csv([unique("wc")]))
    elif state == "Failed":
        info = run_job(c, "Widget__c", "insert", f"Name,Bogus__c\n{unique('wf')},x\n")
    elif state == "Aborted":
        job = create(c, "Widget__c", "insert")
        r = patch(c, job["id"], "Aborted")
        assert r.status_code == 200, r.text
        info = c.get(f"{BASE}/{job['id']}").json()
    elif state == "UploadComplete":
        job = create(c, "Widget__c", "insert")
        assert put(c, job["id"], widget_csv([unique("wu")])).status_code == 201
        r = patch(c, job["id"], "UploadComplete")
        assert r.status_code == 200, r.text
        return dict(r.json())
    else:
        raise AssertionError(state)
    assert info["state"] == state, info
    return info


def big_job(c: httpx.Client, rows: int = 100_000) -> str:
    """An Open job holding a large upload, so that processing takes a while after closing."""
    job = create(c, "Widget__c", "insert")
    tag = unique("big")
    body = "Name\n" + "".join(f"{tag}-{i}\n" for i in range(rows))
    assert put(c, job["id"], body).status_code == 201
    return str(job["id"])


def get_job(c: httpx.Client, job_id: str) -> dict[str, Any]:
    r = c.get(f"{BASE}/{job_id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def all_jobs(c: httpx.Client, url: str = BASE) -> list[dict[str, Any]]:
    """Follow nextRecordsUrl to the end, checking the page shape on the way."""
    records: list[dict[str, Any]] = []
    pages = 0
    next_url: str | None = url
    while next_url is not None:
        r = c.get(next_url)
        assert r.status_code == 200, r.text
        page = r.json()
        assert set(page) >= {"done", "records", "nextRecordsUrl"}, page.keys()
        assert isinstance(page["done"], bool)
        assert isinstance(page["records"], list) and len(page["records"]) <= 1000
        if page["done"]:
            assert page["nextRecordsUrl"] is None
        else:
            assert page["nextRecordsUrl"].startswith(
                f"/services/data/v{API}/jobs/ingest?queryLocator="
            )
        records.extend(page["records"])
        next_url = page["nextRecordsUrl"]
        pages += 1
        assert pages < 10_000
    return records


# ---------------------------------------------------------------- common (C)


def test_c_01_gzip_request_bodies(http: httpx.Client, server: Server) -> None:
    body = b'{"object": "Widget__c", "operation": "insert"}'
    r = http.post(
        BASE,
        content=gzip.compress(body),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert r.status_code == 200, r.text
    job = r.json()
    assert job["object"] == "Widget__c" and job["state"] == "Open"
    names = [unique("gz1"), unique("gz2")]
    r = http.put(
        f"{BASE}/{job['id']}/batches",
        content=gz(widget_csv(names)),
        headers={"Content-Type": "text/csv", "Content-Encoding": "gzip"},
    )
    assert r.status_code == 201, r.text
    r = http.patch(
        f"{BASE}/{job['id']}",
        content=gz(b'{"state": "UploadComplete"}'),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert r.status_code == 200, r.text
    info = wait_for_job(http, job["id"])
    assert info["state"] == "JobComplete" and info["numberRecordsProcessed"] == 2, info
    rows = success(http, job["id"], "Name").dicts()
    assert sorted(r["Name"] for r in rows) == sorted(names)
    for row in rows:
        assert db_one(server, "Widget__c", row["sf__Id"])["Name"] == row["Name"]


def test_c_02_content_type_parameters_and_case(http: httpx.Client) -> None:
    r = http.post(
        BASE,
        content=b'{"object": "Widget__c", "operation": "insert"}',
        headers={"Content-Type": "Application/JSON; Charset=UTF-8"},
    )
    assert r.status_code == 200, r.text
    job_id = r.json()["id"]
    name = unique("ct")
    r = put(http, job_id, widget_csv([name]), content_type="TEXT/CSV; charset=UTF-8")
    assert r.status_code == 201, r.text
    r = http.patch(
        f"{BASE}/{job_id}",
        content=b'{"state":"UploadComplete"}',
        headers={"Content-Type": "application/json;charset=utf-8"},
    )
    assert r.status_code == 200, r.text
    info = wait_for_job(http, job_id)
    assert info["state"] == "JobComplete" and info["numberRecordsProcessed"] == 1, info
    assert [r["Name"] for r in success(http, job_id, "Name").dicts()] == [name]


def test_c_03_trailing_slash(http: httpx.Client) -> None:
    r = http.post(BASE + "/", json={"object": "Widget__c", "operation": "insert"})
    assert r.status_code == 200, r.text
    job_id = r.json()["id"]
    name = unique("ts")
    r = http.put(
        f"{BASE}/{job_id}/batches/",
        content=widget_csv([name]).encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert r.status_code == 201, r.text
    r = http.patch(f"{BASE}/{job_id}/", json={"state": "UploadComplete"})
    assert r.status_code == 200, r.text
    wait_for_job(http, job_id)
    r = http.get(f"{BASE}/{job_id}/")
    assert r.status_code == 200 and r.json()["id"] == job_id, r.text
    r = http.get(f"{BASE}/{job_id}/successfulResults/")
    assert r.status_code == 200 and name in r.text, r.text
    r = http.get(BASE + "/")
    assert r.status_code == 200 and "records" in r.json(), r.text
    r = http.delete(f"{BASE}/{job_id}/")
    assert r.status_code == 204, r.text


@pytest.mark.parametrize("version", ["41.0", "50.0", "66.0"])
def test_c_04_api_versions_accepted(http: httpx.Client, version: str) -> None:
    base = f"/services/data/v{version}/jobs/ingest"
    r = http.post(base, json={"object": "Widget__c", "operation": "insert"})
    assert r.status_code == 200, r.text
    job = r.json()
    assert job["apiVersion"] == float(version)
    assert job["contentUrl"] == f"services/data/v{version}/jobs/ingest/{job['id']}/batches"
    r = http.put(
        f"{base}/{job['id']}/batches",
        content=widget_csv([unique("v")]).encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert r.status_code == 201, r.text
    r = http.patch(f"{base}/{job['id']}", json={"state": "UploadComplete"})
    assert r.status_code == 200, r.text
    assert wait_for_job(http, job["id"])["state"] == "JobComplete"
    r = http.get(base)
    assert r.status_code == 200 and "records" in r.json()


def test_c_05_gzip_response_is_labelled(http: httpx.Client) -> None:
    names = [unique("gzr") for _ in range(50)]
    info = run_job(http, "Widget__c", "insert", widget_csv(names))
    for path in (f"{BASE}/{info['id']}/successfulResults", f"{BASE}/{info['id']}"):
        with http.stream("GET", path, headers={"Accept-Encoding": "gzip"}) as r:
            assert r.status_code == 200
            raw = b"".join(r.iter_raw())
            encoding = r.headers.get("content-encoding", "identity").lower()
        if encoding == "gzip":
            raw = gzip.decompress(raw)
        else:
            assert encoding == "identity", encoding
            assert not raw.startswith(b"\x1f\x8b"), "gzip body without Content-Encoding: gzip"
        assert info["id"].encode() in raw or names[0].encode() in raw


def test_c_06_job_ids(http: httpx.Client) -> None:
    job = create(http, "Widget__c", "insert")
    assert_id18(job["id"], "750")
    assert_id18(job["createdById"], "005")
    assert_id18(get_job(http, job["id"])["id"], "750")
    page = http.get(BASE).json()["records"]
    assert page, "the list holds at least the job just created"
    for j in page:
        assert_id18(j["id"], "750")
        assert_id18(j["createdById"], "005")


def test_c_07_record_ids_in_results(http: httpx.Client) -> None:
    for obj, header, row, prefix in [
        ("Account", "Name", unique("acc"), "001"),
        ("Contact", "LastName", unique("con"), "003"),
        ("Widget__c", "Name", unique("wid"), None),
    ]:
        info = run_job(http, obj, "insert", f"{header}\n{row}\n{row}b\n")
        assert info["numberRecordsFailed"] == 0, info
        rows = success(http, info["id"], header).dicts()
        assert len(rows) == 2
        for r in rows:
            assert_id18(r["sf__Id"], prefix)
        if prefix is None:  # custom object: one prefix, a00-aZZ (§7.2), not a standard one
            assert rows[0]["sf__Id"][:3] == rows[1]["sf__Id"][:3]
            assert rows[0]["sf__Id"][0] == "a", rows
        assert rows[0]["sf__Id"] != rows[1]["sf__Id"]


# ---------------------------------------------------------------- ids (ID)


def test_id_01_checksum_example_is_a_well_formed_account_id(http: httpx.Client) -> None:
    """`001D000000ISUr3IAH` (§7.3) is well formed: an unknown id, not a malformed one."""
    assert to18("001D000000ISUr3") == "001D000000ISUr3IAH"
    header = "Name,Account__c"
    info = run_job(http, "Widget__c", "insert", f"{header}\n{unique('id1')},001D000000ISUr3IAH\n")
    assert info["numberRecordsFailed"] == 1, info
    err = failed(http, info["id"], header).dicts()[0]["sf__Error"]
    assert err.startswith("INVALID_CROSS_REFERENCE_KEY:invalid cross reference id:"), err


def test_id_02_every_emitted_id_has_a_valid_checksum(http: httpx.Client) -> None:
    acc = run_job(http, "Account", "insert", f"Name\n{unique('id2')}\n")
    acc_id = success(http, acc["id"], "Name").dicts()[0]["sf__Id"]
    header = "Name,Account__c"
    ins = run_job(http, "Widget__c", "insert", f"{header}\n{unique('id2w')},{acc_id}\n")
    for job in (acc, ins):
        assert_id18(job["id"], "750")
        assert_id18(job["createdById"], "005")
    row = success(http, ins["id"], header).dicts()[0]
    assert_id18(row["sf__Id"])
    assert_id18(acc_id, "001")
    upd = run_job(http, "Widget__c", "update", f"Id,Name\n{row['sf__Id']},{unique('id2u')}\n")
    urow = success(http, upd["id"], "Id,Name").dicts()[0]
    assert urow["sf__Id"] == row["sf__Id"]


def test_id_03_15_and_18_char_ids_are_interchangeable(http: httpx.Client, server: Server) -> None:
    # paths
    job = run_job(http, "Widget__c", "insert", widget_csv([unique("id3")]))
    r = http.get(f"{BASE}/{job['id'][:15]}")
    assert r.status_code == 200, r.text
    assert r.json()["id"] == job["id"]
    r = http.get(f"{BASE}/{job['id'][:15]}/successfulResults")
    assert r.status_code == 200 and r.text.count("\n") >= 2, r.text
    # CSV Id column and reference field
    rec = success(http, job["id"], "Name").dicts()[0]["sf__Id"]
    acc = run_job(http, "Account", "insert", f"Name\n{unique('id3a')}\n")
    acc_id = success(http, acc["id"], "Name").dicts()[0]["sf__Id"]
    new_name = unique("id3u")
    upd = run_job(
        http, "Widget__c", "update", f"Id,Name,Account__c\n{rec[:15]},{new_name},{acc_id[:15]}\n"
    )
    assert upd["numberRecordsFailed"] == 0, failed(http, upd["id"], "Id,Name,Account__c").rows
    out = success(http, upd["id"], "Id,Name,Account__c").dicts()[0]
    assert out["sf__Id"] == rec  # results carry the 18-char form
    row = db_row(server, "Widget__c", rec)
    assert row is not None and row["Name"] == new_name
    assert row["Account__c"] == acc_id  # stored as the 18-char id


def test_id_04_wrong_checksum_is_malformed(http: httpx.Client) -> None:
    job = run_job(http, "Widget__c", "insert", widget_csv([unique("id4")]))
    r = http.get(f"{BASE}/{bad_suffix(job['id'])}")
    assert r.status_code in (400, 404), r.text
    assert isinstance(r.json(), list) and r.json()[0]["errorCode"]
    rec = success(http, job["id"], "Name").dicts()[0]["sf__Id"]
    upd = run_job(http, "Widget__c", "update", f"Id,Name\n{bad_suffix(rec)},{unique('x')}\n")
    assert upd["numberRecordsFailed"] == 1, upd
    err = failed(http, upd["id"], "Id,Name").dicts()[0]["sf__Error"]
    assert err.startswith("MALFORMED_ID:"), err


# ---------------------------------------------------------------- job creation


def test_b2_01_create_job(http: httpx.Client) -> None:
    r = http.post(BASE, json={"object": "Widget__c", "operation": "insert"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    job = r.json()
    assert_id18(job["id"], "750")
    assert job["state"] == "Open"
    assert job["operation"] == "insert" and job["object"] == "Widget__c"
    assert job["concurrencyMode"] == "Parallel"
    assert job["contentType"] == "CSV"
    assert job["apiVersion"] == 59.0 and not isinstance(job["apiVersion"], str | bool)
    assert job["lineEnding"] == "LF" and job["columnDelimiter"] == "COMMA"
    assert job["contentUrl"] == f"services/data/v{API}/jobs/ingest/{job['id']}/batches"
    assert DATE_RE.match(job["createdDate"]) and DATE_RE.match(job["systemModstamp"]), job
    assert "externalIdFieldName" not in job


def test_b2_01_create_job_with_all_options(http: httpx.Client) -> None:
    job = create(
        http,
        "Account",
        "insert",
        contentType="CSV",
        columnDelimiter="PIPE",
        lineEnding="CRLF",
    )
    assert job["columnDelimiter"] == "PIPE" and job["lineEnding"] == "CRLF"
    got = get_job(http, job["id"])
    assert got["columnDelimiter"] == "PIPE" and got["lineEnding"] == "CRLF"


def test_b2_02_upsert_job_has_external_id_field(http: httpx.Client) -> None:
    job = create(http, "Contact", "upsert", externalIdFieldName="External_Id__c")
    assert job["externalIdFieldName"] == "External_Id__c"
    assert job["operation"] == "upsert"
    assert get_job(http, job["id"])["externalIdFieldName"] == "External_Id__c"


def test_b2_03_json_even_when_accept_is_csv(http: httpx.Client) -> None:
    h = {"Accept": "text/csv"}
    r = http.post(BASE, json={"object": "Widget__c", "operation": "insert"}, headers=h)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    job_id = r.json()["id"]
    r = http.get(f"{BASE}/{job_id}", headers=h)
    assert r.status_code == 200 and r.json()["id"] == job_id
    r = http.patch(f"{BASE}/{job_id}", json={"state": "Aborted"}, headers=h)
    assert r.status_code == 200 and r.json()["state"] == "Aborted"
    r = http.get(BASE, headers=h)
    assert r.status_code == 200 and "records" in r.json()


def test_b2_04_unknown_object(http: httpx.Client) -> None:
    r = http.post(BASE, json={"object": "Foo__c", "operation": "insert"})
    assert r.status_code == 400
    assert r.json() == [
        {
            "errorCode": "INVALIDENTITY",
            "message": "Entity 'Foo__c' is not supported by the Bulk API.",
        }
    ]


def test_b2_06_missing_or_invalid_token(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as anon:
        for headers in (
            {},
            {"Authorization": "Bearer wrong-token"},
            {"Authorization": f"Basic {server.token}"},
            {"Authorization": server.token},
        ):
            r = anon.get(BASE, headers=headers)
            assert r.status_code == 401, (headers, r.text)
            assert r.json() == [
                {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
            ]
        r = anon.post(
            BASE,
            json={"object": "Widget__c", "operation": "insert"},
            headers={"Authorization": "Bearer nope"},
        )
        assert r.status_code == 401 and r.json()[0]["errorCode"] == "INVALID_SESSION_ID"
        r = anon.get(BASE, headers={"Authorization": f"OAuth {server.token}"})
        assert r.status_code == 200, r.text
        r = anon.get(BASE, headers={"Authorization": f"Bearer {server.token}"})
        assert r.status_code == 200, r.text


# ---------------------------------------------------------------- upload, close, results


def test_b2_07_put_returns_201_empty_body(http: httpx.Client) -> None:
    job = create(http, "Widget__c", "insert")
    r = put(http, job["id"], widget_csv([unique("p")]))
    assert r.status_code == 201
    assert r.content == b""
    assert get_job(http, job["id"])["state"] == "Open"


def test_b2_08_empty_put_completes_with_zero_records(http: httpx.Client) -> None:
    job = create(http, "Widget__c", "insert")
    r = put(http, job["id"], b"")
    assert r.status_code == 201, r.text
    r = patch(http, job["id"], "UploadComplete")
    assert r.status_code == 200, r.text
    info = wait_for_job(http, job["id"])
    assert info["state"] == "JobComplete", info
    assert info["numberRecordsProcessed"] == 0 and info["numberRecordsFailed"] == 0
    for kind in ("successfulResults", "failedResults", "unprocessedrecords"):
        r = http.get(f"{BASE}/{job['id']}/{kind}")
        assert r.status_code == 200, r.text
        lines = [ln for ln in r.text.splitlines() if ln]
        assert len(lines) <= 1, (kind, r.text)  # header only, or empty


def test_b2_09_two_puts_then_close_fails(http: httpx.Client) -> None:
    job = create(http, "Widget__c", "insert")
    assert put(http, job["id"], widget_csv([unique("a")])).status_code == 201
    assert put(http, job["id"], widget_csv([unique("b")])).status_code == 201
    r = patch(http, job["id"], "UploadComplete")
    assert_error(
        r,
        400,
        "INVALIDJOB",
        f"Found multipe contents for job: <{job['id'][:15]}>, please 'Close' / 'Abort' / "
        "'Delete' the current Job then create a new Job and make sure you only do 'PUT' once "
        "on a given Job.",
    )
    assert patch(http, job["id"], "Aborted").status_code == 200


def test_b2_10_close_returns_upload_complete(http: httpx.Client) -> None:
    job = create(http, "Widget__c", "insert")
    assert put(http, job["id"], widget_csv([unique("c")])).status_code == 201
    r = patch(http, job["id"], "UploadComplete")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["id"] == job["id"]
    assert body["state"] == "UploadComplete"
    assert body["object"] == "Widget__c" and body["operation"] == "insert"
    assert body["apiVersion"] == 59.0
    # a GET after close never shows Open (clients.md trap 17)
    assert get_job(http, job["id"])["state"] in (
        "UploadComplete",
        "InProgress",
        "JobComplete",
    )


def test_b2_11_job_completes_with_full_info(http: httpx.Client) -> None:
    info = run_job(http, "Widget__c", "insert", widget_csv([unique("d"), unique("e")]))
    assert info["state"] == "JobComplete"
    assert info["jobType"] == "V2Ingest"
    assert info["numberRecordsProcessed"] == 2 and info["numberRecordsFailed"] == 0
    for key in COUNTERS:
        assert key in info, key
    for key in ("id", "operation", "object", "createdById", "createdDate", "systemModstamp"):
        assert key in info, key
    assert info["concurrencyMode"] == "Parallel" and info["contentType"] == "CSV"
    assert info["lineEnding"] == "LF" and info["columnDelimiter"] == "COMMA"
    assert DATE_RE.match(info["systemModstamp"]), info
    assert info["systemModstamp"] >= info["createdDate"]


def test_b2_12_counters_are_integers(http: httpx.Client) -> None:
    job = create(http, "Widget__c", "insert")
    open_info = get_job(http, job["id"])
    header = "Name,Count__c"
    done = upload_and_close(http, job["id"], f"{header}\n{unique('n')},1\n{unique('n')},zz\n")
    assert done["numberRecordsProcessed"] == 2 and done["numberRecordsFailed"] == 1
    for info in (open_info, done):
        for key in COUNTERS:
            if key in info:
                assert type(info[key]) is int, (key, info[key])
        assert isinstance(info["apiVersion"], float | int) and not isinstance(
            info["apiVersion"], bool
        )
    for key in COUNTERS:
        assert key in done, key


def test_b2_13_content_url_only_while_open(http: httpx.Client) -> None:
    job = create(http, "Widget__c", "insert")
    assert get_job(http, job["id"])["contentUrl"] == (
        f"services/data/v{API}/jobs/ingest/{job['id']}/batches"
    )
    upload_and_close(http, job["id"], widget_csv([unique("cu")]))
    assert "contentUrl" not in get_job(http, job["id"])
    aborted = job_in_state(http, "Aborted")
    assert "contentUrl" not in get_job(http, aborted["id"])


def test_b2_14_all_records_failed_is_job_complete(http: httpx.Client) -> None:
    header = "Name,Count__c"
    info = run_job(http, "Widget__c", "insert", f"{header}\n,1\n{unique('f')},notanint\n")
    assert info["state"] == "JobComplete", info
    assert info["numberRecordsProcessed"] == 2
    assert info["numberRecordsFailed"] == info["numberRecordsProcessed"]
    assert "errorMessage" not in info
    assert len(failed(http, info["id"], header).rows) == 2
    assert success(http, info["id"], header).rows == []


def test_b2_15_unknown_header_field_fails_job(http: httpx.Client) -> None:
    header = "Name,Bogus__c"
    rows = [f"{unique('u')},1", f"{unique('u')},2"]
    info = run_job(http, "Widget__c", "insert", "\n".join([header, *rows]) + "\n")
    assert info["state"] == "Failed", info
    assert info["errorMessage"] == "InvalidBatch : Field name not found : Bogus__c"
    assert info["numberRecordsProcessed"] == 0 and info["numberRecordsFailed"] == 0
    assert success(http, info["id"], header).rows == []
    assert failed(http, info["id"], header).rows == []
    got = unprocessed(http, info["id"], header).rows
    assert [",".join(r) for r in got] == rows


def test_b2_16_header_names_case_insensitive(http: httpx.Client, server: Server) -> None:
    header = "NAME,sku__C,count__c"
    name, sku = unique("ci"), unique("s")[:20]
    info = run_job(http, "Widget__c", "insert", f"{header}\n{name},{sku},7\n")
    assert info["state"] == "JobComplete" and info["numberRecordsFailed"] == 0, info
    rows = success(http, info["id"], header).dicts()
    assert rows[0]["NAME"] == name
    row = db_row(server, "Widget__c", rows[0]["sf__Id"])
    assert row is not None
    assert (row["Name"], row["Sku__c"], row["Count__c"]) == (name, sku, 7)


@pytest.mark.parametrize("delimiter", list(DELIMITERS))
def test_b2_17_column_delimiters_on_upload(
    http: httpx.Client, server: Server, delimiter: str
) -> None:
    d = DELIMITERS[delimiter]
    tricky = f'a{d}b "q" c,d;e|f^g`h\tI'
    name = unique("dl")
    header = d.join(["Name", "Notes__c", "Count__c"])
    quoted = '"' + tricky.replace('"', '""') + '"'
    body = f"{header}\n{name}{d}{quoted}{d}5\n{name}x{d}plain{d}6\n"
    info = run_job(http, "Widget__c", "insert", body, columnDelimiter=delimiter)
    assert info["columnDelimiter"] == delimiter
    assert info["numberRecordsProcessed"] == 2 and info["numberRecordsFailed"] == 0, info
    rows = success(http, info["id"], header, delim=d).dicts()
    by_name = {r["Name"]: r for r in rows}
    first = db_row(server, "Widget__c", by_name[name]["sf__Id"])
    second = db_row(server, "Widget__c", by_name[name + "x"]["sf__Id"])
    assert first is not None and second is not None
    assert (first["Name"], first["Notes__c"], first["Count__c"]) == (name, tricky, 5)
    assert (second["Notes__c"], second["Count__c"]) == ("plain", 6)


@pytest.mark.parametrize("line_ending", list(LINE_ENDINGS))
@pytest.mark.parametrize("delimiter", list(DELIMITERS))
def test_b2_18_results_use_job_delimiter_and_quote_everything(
    http: httpx.Client, delimiter: str, line_ending: str
) -> None:
    d, eol = DELIMITERS[delimiter], LINE_ENDINGS[line_ending]
    header = d.join(["Name", "Notes__c", "Count__c"])
    name = unique("rs")
    tricky = f"x{d}y,z;w"
    quoted = '"' + tricky + '"'
    body = eol.join([header, f"{name}{d}{quoted}{d}1", f"{d}bad{d}2", ""])
    info = run_job(
        http, "Widget__c", "insert", body, columnDelimiter=delimiter, lineEnding=line_ending
    )
    assert info["numberRecordsProcessed"] == 2 and info["numberRecordsFailed"] == 1, info
    ok = success(http, info["id"], header, delim=d, eol=eol).dicts()
    assert len(ok) == 1
    assert ok[0]["sf__Created"] == "true"
    assert (ok[0]["Name"], ok[0]["Notes__c"]) == (name, tricky)
    assert ok[0]["Count__c"] in ("1", "1.0")
    bad = failed(http, info["id"], header, delim=d, eol=eol).dicts()
    assert len(bad) == 1
    assert bad[0]["sf__Id"] == "" and bad[0]["Notes__c"] == "bad"
    assert (
        bad[0]["sf__Error"] == "REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --"
    )


@pytest.mark.parametrize(
    ("job_ending", "upload_eol"),
    [("LF", "\n"), ("CRLF", "\r\n"), ("LF", "\r\n"), ("CRLF", "\n")],
)
def test_b2_19_line_endings_on_upload(
    http: httpx.Client, server: Server, job_ending: str, upload_eol: str
) -> None:
    names = [unique("le"), unique("le"), unique("le")]
    body = upload_eol.join(["Name,Notes__c", *(f"{n},{n}-note" for n in names)]) + upload_eol
    info = run_job(http, "Widget__c", "insert", body, lineEnding=job_ending)
    assert info["lineEnding"] == job_ending
    assert info["numberRecordsProcessed"] == 3 and info["numberRecordsFailed"] == 0, info
    rows = success(http, info["id"], "Name,Notes__c", eol=LINE_ENDINGS[job_ending]).dicts()
    assert sorted(r["Name"] for r in rows) == sorted(names)
    for r in rows:
        row = db_row(server, "Widget__c", r["sf__Id"])
        assert row is not None
        assert row["Notes__c"] == row["Name"] + "-note", row  # no stray \r


def test_b2_19_quoted_newlines_are_data(http: httpx.Client, server: Server) -> None:
    name = unique("nl")
    body = f'Name,Notes__c\n{name},"line1\nline2, ""quoted"""\n'
    info = run_job(http, "Widget__c", "insert", body)
    assert info["numberRecordsProcessed"] == 1 and info["numberRecordsFailed"] == 0, info
    rec = success(http, info["id"], "Name,Notes__c").dicts()[0]
    assert rec["Notes__c"] == 'line1\nline2, "quoted"'
    row = db_row(server, "Widget__c", rec["sf__Id"])
    assert row is not None and row["Notes__c"] == 'line1\nline2, "quoted"'


def test_b2_20_successful_results(http: httpx.Client, server: Server) -> None:
    header = "Name,Sku__c"
    n1, n2 = unique("sr"), unique("sr")
    sku = unique("k")[-20:]
    info = run_job(http, "Widget__c", "insert", f"{header}\n{n1},{sku}\n{n2},\n")
    r = http.get(f"{BASE}/{info['id']}/successfulResults")
    assert r.headers["content-type"].startswith("text/csv")
    assert r.text.startswith('"sf__Id","sf__Created",Name,Sku__c\n'), r.text
    rows = success(http, info["id"], header).dicts()
    assert {(x["Name"], x["Sku__c"], x["sf__Created"]) for x in rows} == {
        (n1, sku, "true"),
        (n2, "", "true"),
    }
    for x in rows:
        assert db_is_live(server, "Widget__c", x["sf__Id"])


def test_b2_21_sf_created_true_only_for_inserts(http: httpx.Client) -> None:
    ext_old, ext_new = unique("e"), unique("e")
    ins = run_job(http, "Contact", "insert", f"LastName,External_Id__c\nOld,{ext_old}\n")
    created = success(http, ins["id"], "LastName,External_Id__c").dicts()
    assert [r["sf__Created"] for r in created] == ["true"]
    cid = created[0]["sf__Id"]

    ups_header = "External_Id__c,LastName"
    ups = run_job(
        http,
        "Contact",
        "upsert",
        f"{ups_header}\n{ext_old},Updated\n{ext_new},Fresh\n",
        externalIdFieldName="External_Id__c",
    )
    assert ups["numberRecordsFailed"] == 0, ups
    got = {r["External_Id__c"]: r for r in success(http, ups["id"], ups_header).dicts()}
    assert got[ext_old]["sf__Created"] == "false" and got[ext_old]["sf__Id"] == cid
    assert got[ext_new]["sf__Created"] == "true"

    upd = run_job(http, "Contact", "update", f"Id,LastName\n{cid},Again\n")
    assert [r["sf__Created"] for r in success(http, upd["id"], "Id,LastName").dicts()] == ["false"]
    dele = run_job(http, "Contact", "delete", f"Id\n{cid}\n")
    drows = success(http, dele["id"], "Id").dicts()
    assert [(r["sf__Id"], r["sf__Created"]) for r in drows] == [(cid, "false")]


def test_b2_22_failed_results(http: httpx.Client) -> None:
    header = "Name,Notes__c"
    note = unique("fr")
    info = run_job(http, "Widget__c", "insert", f"{header}\n,{note}\n")
    r = http.get(f"{BASE}/{info['id']}/failedResults")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.text.startswith('"sf__Id","sf__Error",Name,Notes__c\n'), r.text
    rows = failed(http, info["id"], header).dicts()
    assert rows == [
        {
            "sf__Id": "",
            "sf__Error": "REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --",
            "Name": "",
            "Notes__c": note,
        }
    ]


def test_b2_23_unprocessed_records_both_spellings(http: httpx.Client) -> None:
    job = create(http, "Widget__c", "insert")
    names = [unique("up"), unique("up")]
    assert put(http, job["id"], widget_csv(names)).status_code == 201
    r = patch(http, job["id"], "Aborted")
    assert r.status_code == 200 and r.json()["state"] == "Aborted"
    for path in ("unprocessedrecords", "unprocessedRecords", "UnprocessedRecords"):
        rows = unprocessed(http, job["id"], "Name", path=path).rows
        assert rows == [[n] for n in names], path
    assert success(http, job["id"], "Name").rows == []
    assert failed(http, job["id"], "Name").rows == []


def test_b2_23_completed_job_has_no_unprocessed_rows(http: httpx.Client) -> None:
    info = run_job(http, "Widget__c", "insert", widget_csv([unique("nu")]))
    assert unprocessed(http, info["id"], "Name").rows == []


def test_b2_24_result_counts_match_counters(http: httpx.Client) -> None:
    header = "Name,Count__c,Email__c"
    rows = [
        f"{unique('ac')},1,a@example.com",
        f"{unique('ac')},x,",
        ",2,",
        f"{unique('ac')},3,not-an-email",
        f"{unique('ac')},4,",
    ]
    info = run_job(http, "Widget__c", "insert", "\n".join([header, *rows]) + "\n")
    assert info["state"] == "JobComplete"
    ok = success(http, info["id"], header).rows
    bad = failed(http, info["id"], header).rows
    assert len(ok) + len(bad) == info["numberRecordsProcessed"] == 5
    assert len(bad) == info["numberRecordsFailed"] == 3


def test_b2_25_abort_open_job(http: httpx.Client) -> None:
    job = create(http, "Widget__c", "insert")
    r = patch(http, job["id"], "Aborted")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == job["id"] and body["state"] == "Aborted"
    info = get_job(http, job["id"])
    assert info["state"] == "Aborted"
    assert info["numberRecordsProcessed"] == 0


def test_b2_25_abort_running_job(http: httpx.Client) -> None:
    rows = 100_000
    job_id = big_job(http, rows)
    r = patch(http, job_id, "UploadComplete")
    assert r.status_code == 200, r.text
    # The abort must get in at the next batch boundary, not wait for the job to finish.
    r = patch(http, job_id, "Aborted")
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "Aborted"
    info = wait_for_job(http, job_id)
    assert info["state"] == "Aborted", info
    time.sleep(0.5)  # let an in-flight chunk settle before counting
    info = get_job(http, job_id)
    assert info["state"] == "Aborted", info
    done = len(success(http, job_id, "Name").rows) + len(failed(http, job_id, "Name").rows)
    left = unprocessed(http, job_id, "Name").rows
    assert info["numberRecordsProcessed"] == done
    assert len(left) > 0
    assert len(left) + done == rows


@pytest.mark.parametrize("state", ["JobComplete", "Failed", "Aborted"])
def test_b2_26_abort_terminal_job_fails(http: httpx.Client, state: str) -> None:
    job = job_in_state(http, state)
    r = patch(http, job["id"], "Aborted")
    assert r.status_code == 400
    assert r.json() == ABORT_COMPLETED
    assert get_job(http, job["id"])["state"] == state


@pytest.mark.parametrize("state", ["UploadComplete", "JobComplete", "Failed", "Aborted"])
def test_b2_27_close_non_open_job_fails(http: httpx.Client, state: str) -> None:
    job = job_in_state(http, state)
    r = patch(http, job["id"], "UploadComplete")
    assert_error(r, 400, "INVALIDJOBSTATE")
    if state != "UploadComplete":
        assert get_job(http, job["id"])["state"] == state


@pytest.mark.parametrize("state", ["UploadComplete", "JobComplete", "Failed", "Aborted"])
def test_b2_28_put_on_non_open_job_fails(http: httpx.Client, state: str) -> None:
    job = job_in_state(http, state)
    r = put(http, job["id"], widget_csv([unique("late")]))
    assert_error(r, 400, "INVALIDJOBSTATE")
    info = wait_for_job(http, job["id"])
    if state != "UploadComplete":
        assert info["state"] == state
    else:
        assert info["numberRecordsProcessed"] == 1, info  # the late rows were not added


@pytest.mark.parametrize("state", ["JobComplete", "Failed", "Aborted"])
def test_b2_29_delete_terminal_job(http: httpx.Client, server: Server, state: str) -> None:
    job = job_in_state(http, state)
    r = http.delete(f"{BASE}/{job['id']}")
    assert r.status_code == 204, r.text
    assert r.content == b""
    for path in ("", "/successfulResults", "/failedResults", "/unprocessedrecords"):
        r = http.get(f"{BASE}/{job['id']}{path}")
        assert r.status_code == 404 and r.json() == NOT_FOUND, (path, r.text)
    assert job["id"] not in {j["id"] for j in all_jobs(http)}


def test_b2_29_delete_upload_complete_job(http: httpx.Client) -> None:
    """Delete right after close: 204 while UploadComplete; 400 only if already InProgress."""
    job_id = big_job(http, 60_000)
    r = patch(http, job_id, "UploadComplete")
    assert r.status_code == 200 and r.json()["state"] == "UploadComplete"
    r = http.delete(f"{BASE}/{job_id}")
    if r.status_code == 204:
        assert r.content == b""
        assert http.get(f"{BASE}/{job_id}").json() == NOT_FOUND
    else:
        assert r.status_code == 400 and r.json() == NOT_TERMINATED, r.text
        info = wait_for_job(http, job_id)
        assert http.delete(f"{BASE}/{job_id}").status_code == 204, info


def test_b2_30_delete_open_job_fails(http: httpx.Client) -> None:
    job = create(http, "Widget__c", "insert")
    r = http.delete(f"{BASE}/{job['id']}")
    assert r.status_code == 400
    assert r.json() == NOT_TERMINATED
    assert get_job(http, job["id"])["state"] == "Open"


def test_b2_30_delete_in_progress_job_fails(http: httpx.Client) -> None:
    job_id = big_job(http)
    assert patch(http, job_id, "UploadComplete").status_code == 200
    deadline = time.monotonic() + 10
    state = get_job(http, job_id)["state"]
    while state == "UploadComplete" and time.monotonic() < deadline:
        time.sleep(0.005)
        state = get_job(http, job_id)["state"]
    if state != "InProgress":
        patch(http, job_id, "Aborted")
        pytest.skip(f"never observed InProgress (went to {state})")
    r = http.delete(f"{BASE}/{job_id}")
    assert r.status_code == 400 and r.json() == NOT_TERMINATED, r.text
    assert patch(http, job_id, "Aborted").status_code in (200, 400)
    wait_for_job(http, job_id)


def test_b2_31_unknown_or_deleted_job_not_found(http: httpx.Client) -> None:
    ghost = unknown_id("750")
    for method, path in [
        ("GET", ""),
        ("GET", "/successfulResults"),
        ("GET", "/failedResults"),
        ("GET", "/unprocessedrecords"),
        ("DELETE", ""),
    ]:
        r = http.request(method, f"{BASE}/{ghost}{path}")
        assert r.status_code == 404 and r.json() == NOT_FOUND, (method, path, r.text)
    r = http.patch(f"{BASE}/{ghost}", json={"state": "Aborted"})
    assert r.status_code == 404 and r.json() == NOT_FOUND
    r = put(http, ghost, "Name\nx\n")
    assert r.status_code == 404 and r.json() == NOT_FOUND
    job = job_in_state(http, "JobComplete")
    assert http.delete(f"{BASE}/{job['id']}").status_code == 204
    r = http.get(f"{BASE}/{job['id']}")
    assert r.status_code == 404 and r.json() == NOT_FOUND
    r = http.delete(f"{BASE}/{job['id']}")
    assert r.status_code == 404 and r.json() == NOT_FOUND


# ---------------------------------------------------------------- list jobs


def test_b2_32_list_jobs_page_shape(http: httpx.Client) -> None:
    mine = {create(http, "Widget__c", "insert")["id"] for _ in range(3)}
    r = http.get(BASE)
    assert r.status_code == 200
    page = r.json()
    assert isinstance(page["done"], bool) and len(page["records"]) <= 1000
    if page["done"]:
        assert page["nextRecordsUrl"] is None
    jobs = all_jobs(http)
    ids = [j["id"] for j in jobs]
    assert len(ids) == len(set(ids)), "a job appeared on two pages"
    assert mine <= set(ids)
    for j in jobs:
        if j["id"] in mine:
            assert j["state"] == "Open" and j["object"] == "Widget__c"
            assert j["jobType"] == "V2Ingest" and j["apiVersion"] == 59.0
            for key in ("operation", "createdById", "createdDate", "systemModstamp"):
                assert key in j
            assert j["concurrencyMode"] == "Parallel" and j["contentType"] == "CSV"
            assert j["lineEnding"] == "LF" and j["columnDelimiter"] == "COMMA"


def test_b2_32_list_paging_visits_every_job(make_server: Callable[..., Server]) -> None:
    srv = make_server("--schema", SCHEMA)
    with srv.client() as c:
        created = {create(c, "Widget__c", "insert")["id"] for _ in range(1001)}
        first = c.get(BASE).json()
        assert first["done"] is False and len(first["records"]) == 1000
        assert first["nextRecordsUrl"].startswith(
            f"/services/data/v{API}/jobs/ingest?queryLocator="
        )
        second = c.get(first["nextRecordsUrl"]).json()
        assert second["done"] is True and second["nextRecordsUrl"] is None
        assert len(second["records"]) == 1
        ids = [j["id"] for j in first["records"] + second["records"]]
        assert len(ids) == len(set(ids)) == 1001
        assert set(ids) == created


def test_b2_33_job_type_filter(http: httpx.Client) -> None:
    mine = create(http, "Widget__c", "insert")["id"]
    v2 = all_jobs(http, f"{BASE}?jobType=V2Ingest")
    assert mine in {j["id"] for j in v2}
    assert all(j["jobType"] == "V2Ingest" for j in v2)
    classic = all_jobs(http, f"{BASE}?jobType=Classic")
    assert mine not in {j["id"] for j in classic}
    assert all(j["jobType"] == "Classic" for j in classic)
    everything = all_jobs(http)
    assert {j["jobType"] for j in everything} <= {"V2Ingest", "Classic", "BigObjectIngest"}


def test_list_jobs_concurrency_mode_filter(http: httpx.Client) -> None:
    mine = create(http, "Widget__c", "insert")["id"]
    assert mine in {j["id"] for j in all_jobs(http, f"{BASE}?concurrencyMode=parallel")}
    assert mine in {j["id"] for j in all_jobs(http, f"{BASE}?concurrencyMode=Parallel")}
    assert mine not in {j["id"] for j in all_jobs(http, f"{BASE}?concurrencyMode=serial")}


# ---------------------------------------------------------------- multipart, chunked


def multipart(job: dict[str, Any], content: str, boundary: str, eol: str = "\r\n") -> bytes:
    parts = [
        f"--{boundary}",
        "Content-Type: application/json",
        'Content-Disposition: form-data; name="job"',
        "",
        json.dumps(job),
        "",
        f"--{boundary}",
        "Content-Type: text/csv",
        'Content-Disposition: form-data; name="content"; filename="content"',
        "",
        content,
        f"--{boundary}--",
        "",
    ]
    return eol.join(parts).encode()


@pytest.mark.parametrize(("quoted", "eol"), [(False, "\r\n"), (True, "\r\n"), (False, "\n")])
def test_b2_34_multipart_create_with_data(
    http: httpx.Client, server: Server, quoted: bool, eol: str
) -> None:
    names = [unique("mp"), unique("mp")]
    boundary = "BOUNDARY" + unique("b")
    body = multipart(
        {"object": "Widget__c", "contentType": "CSV", "operation": "insert"},
        eol.join(["Name", *names]),
        boundary,
        eol,
    )
    b = f'"{boundary}"' if quoted else boundary
    r = http.post(
        BASE, content=body, headers={"Content-Type": f"multipart/form-data; boundary={b}"}
    )
    assert r.status_code == 200, r.text
    job = r.json()
    assert_id18(job["id"], "750")
    assert job["state"] == "UploadComplete"
    assert "contentUrl" not in job
    info = wait_for_job(http, job["id"])
    assert info["state"] == "JobComplete" and info["numberRecordsProcessed"] == 2, info
    rows = success(http, job["id"], "Name").dicts()
    assert sorted(r["Name"] for r in rows) == sorted(names)
    for row in rows:
        assert db_is_live(server, "Widget__c", row["sf__Id"])
    r = patch(http, job["id"], "UploadComplete")
    assert_error(r, 400, "INVALIDJOBSTATE")


def test_b2_34_multipart_built_by_httpx(http: httpx.Client) -> None:
    name = unique("mph")
    r = http.post(
        BASE,
        files={
            "job": (None, b'{"object":"Widget__c","operation":"insert"}', "application/json"),
            "content": ("content", f"Name\n{name}\n".encode(), "text/csv"),
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "UploadComplete"
    info = wait_for_job(http, r.json()["id"])
    assert info["numberRecordsProcessed"] == 1 and info["numberRecordsFailed"] == 0, info
    assert [x["Name"] for x in success(http, info["id"], "Name").dicts()] == [name]


def test_b2_35_multipart_content_limit(http: httpx.Client) -> None:
    boundary = "LIMIT" + unique("b")
    ctype = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    job = {"object": "Widget__c", "operation": "insert"}
    # exactly 100,000 characters is still allowed
    fill = unique("lim")
    line = f"{fill}-" + "x" * (48 - len(fill)) + "\n"  # 50 chars per row
    at_limit = "Name\n" + line * 1999 + "y" * 45  # 5 + 99,950 + 45 = 100,000
    assert len(at_limit) == 100_000
    r = http.post(BASE, content=multipart(job, at_limit, boundary), headers=ctype)
    assert r.status_code == 200, r.text
    info = wait_for_job(http, r.json()["id"])
    assert info["numberRecordsProcessed"] == 2000 and info["numberRecordsFailed"] == 0, info
    over = at_limit + "z"
    r = http.post(BASE, content=multipart(job, over, boundary), headers=ctype)
    assert_error(r, 400, "INVALIDJOB")
    r = http.get(BASE)
    assert r.status_code == 200


def test_chunked_put(http: httpx.Client, server: Server) -> None:
    job = create(http, "Widget__c", "insert")
    names = [unique("ch") for _ in range(500)]
    data = widget_csv(names).encode()

    def gen() -> Iterator[bytes]:
        for i in range(0, len(data), 997):  # split mid-row and mid-value
            yield data[i : i + 997]

    r = http.put(f"{BASE}/{job['id']}/batches", content=gen(), headers={"Content-Type": "text/csv"})
    assert r.status_code == 201, r.text
    assert r.request.headers.get("transfer-encoding") == "chunked"
    assert patch(http, job["id"], "UploadComplete").status_code == 200
    info = wait_for_job(http, job["id"])
    assert info["numberRecordsProcessed"] == 500 and info["numberRecordsFailed"] == 0, info
    rows = success(http, job["id"], "Name").dicts()
    assert sorted(r["Name"] for r in rows) == sorted(names)
    count = db_query(
        server,
        'SELECT COUNT(*) AS n FROM "Widget__c" WHERE "Name" IN (?, ?, ?)',
        (names[0], names[250], names[-1]),
    )
    assert count[0]["n"] == 3


def test_gzip_chunked_put(http: httpx.Client) -> None:
    job = create(http, "Widget__c", "insert")
    names = [unique("gc") for _ in range(50)]
    data = gz(widget_csv(names))
    r = http.put(
        f"{BASE}/{job['id']}/batches",
        content=iter([data[:10], data[10:]]),
        headers={"Content-Type": "text/csv", "Content-Encoding": "gzip"},
    )
    assert r.status_code == 201, r.text
    assert patch(http, job["id"], "UploadComplete").status_code == 200
    info = wait_for_job(http, job["id"])
    assert info["numberRecordsProcessed"] == 50 and info["numberRecordsFailed"] == 0, info


# ---------------------------------------------------------------- remaining B2 lines and states


def test_b2_36_upsert_on_id_without_id_column_inserts(http: httpx.Client) -> None:
    names = [unique("ui"), unique("ui")]
    info = run_job(
        http, "Account", "upsert", "Name\n" + "\n".join(names) + "\n", externalIdFieldName="Id"
    )
    assert info["state"] == "JobComplete" and info["numberRecordsFailed"] == 0, info
    rows = success(http, info["id"], "Name").dicts()
    assert sorted(r["Name"] for r in rows) == sorted(names)
    assert {r["sf__Created"] for r in rows} == {"true"}
    for r in rows:
        assert_id18(r["sf__Id"], "001")


def test_b2_37_relationship_column_resolves_parent(http: httpx.Client, server: Server) -> None:
    ext = unique("par")
    acc = run_job(http, "Account", "insert", f"Name,External_Id__c\n{unique('A')},{ext}\n")
    acc_id = success(http, acc["id"], "Name,External_Id__c").dicts()[0]["sf__Id"]
    header = "Name,Account__r.External_Id__c"
    good, bad = unique("rel"), unique("rel")
    missing = unique("nope")
    info = run_job(http, "Widget__c", "insert", f"{header}\n{good},{ext}\n{bad},{missing}\n")
    assert info["numberRecordsProcessed"] == 2 and info["numberRecordsFailed"] == 1, info
    ok = success(http, info["id"], header).dicts()
    assert [r["Name"] for r in ok] == [good]
    row = db_row(server, "Widget__c", ok[0]["sf__Id"])
    assert row is not None and row["Account__c"] == acc_id
    fail = failed(http, info["id"], header).dicts()
    assert fail[0]["Name"] == bad
    assert fail[0]["sf__Error"].startswith("INVALID_FIELD:"), fail
    assert missing in fail[0]["sf__Error"]
    assert fail[0]["sf__Error"].endswith("--")


def test_b2_38_na_nulls_and_empty_leaves_unchanged(http: httpx.Client, server: Server) -> None:
    header = "Name,Notes__c,Count__c,Email__c"
    name = unique("na")
    ins = run_job(http, "Widget__c", "insert", f"{header}\n{name},note,3,a@example.com\n")
    rid = success(http, ins["id"], header).dicts()[0]["sf__Id"]
    upd = run_job(http, "Widget__c", "update", f"Id,Notes__c,Count__c,Email__c\n{rid},#N/A,,\n")
    assert upd["numberRecordsFailed"] == 0, upd
    row = db_row(server, "Widget__c", rid)
    assert row is not None
    assert row["Notes__c"] is None
    assert (row["Name"], row["Count__c"], row["Email__c"]) == (name, 3, "a@example.com")


def test_b2_39_error_bodies_are_arrays(http: httpx.Client, server: Server) -> None:
    responses = [
        http.get(f"{BASE}/{unknown_id('750')}"),
        http.post(BASE, json={"object": "Nope__c", "operation": "insert"}),
        http.post(BASE, json={"object": "Widget__c", "operation": "explode"}),
        httpx.get(server.ingest_url, headers={"Authorization": "Bearer bad"}),
        http.post(f"{BASE}/{create(http, 'Widget__c', 'insert')['id']}", json={}),
    ]
    for r in responses:
        assert r.status_code >= 400
        body = r.json()
        assert isinstance(body, list) and body, r.text
        for err in body:
            assert set(err) == {"errorCode", "message"}, err
            assert isinstance(err["errorCode"], str) and isinstance(err["message"], str)


def test_b2_40_wrong_method(http: httpx.Client) -> None:
    job = create(http, "Widget__c", "insert")
    for method, path in [
        ("POST", f"{BASE}/{job['id']}"),
        ("PUT", f"{BASE}/{job['id']}"),
        ("POST", f"{BASE}/{job['id']}/batches"),
        ("DELETE", BASE),
        ("PATCH", BASE),
    ]:
        r = http.request(method, path, content=b"{}", headers={"Content-Type": "application/json"})
        assert_error(r, 405, "METHOD_NOT_ALLOWED")
    assert get_job(http, job["id"])["state"] == "Open"


def test_b2_41_error_message_only_on_failed(http: httpx.Client) -> None:
    ok = job_in_state(http, "JobComplete")
    assert "errorMessage" not in ok
    opened = create(http, "Widget__c", "insert")
    assert "errorMessage" not in get_job(http, opened["id"])
    bad = job_in_state(http, "Failed")
    assert isinstance(bad["errorMessage"], str) and bad["errorMessage"]


@pytest.mark.parametrize("value", ["Open", "JobComplete", "InProgress", "Closed", "Failed", ""])
def test_state_patch_other_state_value_fails(http: httpx.Client, value: str) -> None:
    job = create(http, "Widget__c", "insert")
    r = patch(http, job["id"], value)
    assert_error(r, 400, "INVALIDJOB")
    assert get_job(http, job["id"])["state"] == "Open"


def test_state_patch_other_state_value_on_completed_job(http: httpx.Client) -> None:
    job = job_in_state(http, "JobComplete")
    r = patch(http, job["id"], "Open")
    assert_error(r, 400, "INVALIDJOB")
    assert get_job(http, job["id"])["state"] == "JobComplete"


def test_state_close_never_uploaded_job_completes_empty(http: httpx.Client) -> None:
    job = create(http, "Widget__c", "insert")
    r = patch(http, job["id"], "UploadComplete")
    assert r.status_code == 200 and r.json()["state"] == "UploadComplete", r.text
    info = wait_for_job(http, job["id"])
    assert info["state"] == "JobComplete", info
    assert info["numberRecordsProcessed"] == 0 and info["numberRecordsFailed"] == 0


def test_state_open_put_then_abort_then_delete(http: httpx.Client) -> None:
    job = create(http, "Widget__c", "insert")
    assert put(http, job["id"], widget_csv([unique("st")])).status_code == 201
    assert patch(http, job["id"], "Aborted").json()["state"] == "Aborted"
    assert http.delete(f"{BASE}/{job['id']}").status_code == 204
    assert http.get(f"{BASE}/{job['id']}").status_code == 404


def test_db_insert_update_delete_round_trip(http: httpx.Client, server: Server) -> None:
    if server.backend != "sqlite":
        pytest.skip("SQLite column affinity; PostgreSQL column types: tests/test_postgres.py")
    cols = {c["name"]: c for c in db_query(server, 'PRAGMA table_info("Widget__c")')}
    assert cols["Id"]["pk"] == 1
    for field in ("Name", "Sku__c", "Count__c", "Account__c", "Seen_At__c"):
        assert field in cols, field
    sku = unique("s")[-20:]
    name = unique("db")
    ins = run_job(http, "Widget__c", "insert", f"Name,Sku__c\n{name},{sku}\n")
    rid = success(http, ins["id"], "Name,Sku__c").dicts()[0]["sf__Id"]
    row = db_row(server, "Widget__c", rid)
    assert row is not None and (row["Name"], row["Sku__c"]) == (name, sku)
    assert len(row["Id"]) == 18
    run_job(http, "Widget__c", "update", f"Id,Name\n{rid},{name}-2\n")
    assert db_one(server, "Widget__c", rid)["Name"] == f"{name}-2"
    dele = run_job(http, "Widget__c", "delete", f"Id\n{rid}\n")
    assert dele["numberRecordsFailed"] == 0, dele
    assert not db_is_live(server, "Widget__c", rid)


def test_paths_match_case_insensitively(http: httpx.Client) -> None:
    name = unique("case")
    info = run_job(http, "Widget__c", "insert", widget_csv([name]))
    for path in ("successfulresults", "SUCCESSFULRESULTS", "successfulResults"):
        r = http.get(f"{BASE}/{info['id']}/{path}")
        assert r.status_code == 200 and name in r.text, (path, r.text)
    for path in ("failedresults", "FailedResults"):
        r = http.get(f"{BASE}/{info['id']}/{path}")
        assert r.status_code == 200 and r.text.startswith('"sf__Id","sf__Error"'), path
    r = http.get(f"/services/data/v{API}/JOBS/Ingest/{info['id']}")
    assert r.status_code == 200 and r.json()["id"] == info["id"]


def test_get_and_delete_with_json_content_type_and_no_body(http: httpx.Client) -> None:
    """simple-salesforce sends Content-Type: application/json on GET and DELETE (trap 28)."""
    info = run_job(http, "Widget__c", "insert", widget_csv([unique("ct")]))
    h = {"Content-Type": "application/json", "Accept": "text/csv; charset=UTF-8"}
    r = http.get(f"{BASE}/{info['id']}", headers=h)
    assert r.status_code == 200 and r.json()["state"] == "JobComplete"
    r = http.get(f"{BASE}/{info['id']}/successfulResults", headers=h)
    assert r.status_code == 200
    r = http.delete(f"{BASE}/{info['id']}", headers=h)
    assert r.status_code == 204


def test_concurrent_result_downloads(http: httpx.Client, server: Server) -> None:
    """jsforce fetches the three result files in parallel (clients.md trap 36)."""
    from concurrent.futures import ThreadPoolExecutor

    header = "Name,Count__c"
    rows = [f"{unique('cr')},{i}" for i in range(300)] + [f"{unique('cr')},bad"] * 5
    info = run_job(http, "Widget__c", "insert", header + "\n" + "\n".join(rows) + "\n")
    kinds = ["successfulResults", "failedResults", "unprocessedrecords"] * 4

    def fetch(kind: str) -> tuple[str, int]:
        with server.client() as c:
            if kind == "successfulResults":
                return kind, len(success(c, info["id"], header).rows)
            if kind == "failedResults":
                return kind, len(failed(c, info["id"], header).rows)
            return kind, len(unprocessed(c, info["id"], header).rows)

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(fetch, kinds))
    counts = {"successfulResults": 300, "failedResults": 5, "unprocessedrecords": 0}
    for kind, n in results:
        assert n == counts[kind], kind


def test_hard_delete_removes_record(http: httpx.Client, server: Server) -> None:
    """B2-05 (permission) has no knob on this server; hardDelete itself must work."""
    ins = run_job(http, "Widget__c", "insert", widget_csv([unique("hd")]))
    rid = success(http, ins["id"], "Name").dicts()[0]["sf__Id"]
    job = http.post(BASE, json={"object": "Widget__c", "operation": "hardDelete"})
    if job.status_code == 400:
        assert_error(job, 400, "FEATURENOTENABLED")
        return
    assert job.status_code == 200 and job.json()["operation"] == "hardDelete", job.text
    info = upload_and_close(http, job.json()["id"], f"Id\n{rid}\n")
    assert info["numberRecordsFailed"] == 0, failed(http, info["id"], "Id").rows
    rows = success(http, info["id"], "Id").dicts()
    assert [(r["sf__Id"], r["sf__Created"]) for r in rows] == [(rid, "false")]
    assert db_row(server, "Widget__c", rid) is None  # gone for good, not in a recycle bin
