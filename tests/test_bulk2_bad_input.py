"""Bulk API 2.0 ingest: every kind of bad input gets a Salesforce-shaped error and the server
keeps serving. Spec: /work/shared/spec/bulk-api.md §1.2, §1.3, §3.1-§3.5, §3.10-§3.12.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import httpx
import pytest
from bulk2_helpers import (
    BASE,
    INVALID_SESSION,
    NOT_FOUND,
    SCHEMA,
    assert_error,
    assert_serving,
    create,
    db_query,
    failed,
    gz,
    patch,
    put,
    run_job,
    success,
    unknown_id,
    unprocessed,
    upload_and_close,
)
from conftest import API, Server, unique, wait_for_job

# ---------------------------------------------------------------- malformed CSV


@pytest.mark.parametrize(
    "body",
    [
        'Name,Notes__c\n{a},"never closed\n{b},fine\n',
        'Name,Notes__c\n{a},fine\n"{b},fine\n',
    ],
    ids=["open-quote-in-value", "open-quote-at-row-start"],
)
def test_unbalanced_quote_fails_job(http: httpx.Client, server: Server, body: str) -> None:
    a, b = unique("uq"), unique("uq")
    info = run_job(http, "Widget__c", "insert", body.format(a=a, b=b))
    assert info["state"] == "Failed", info
    assert isinstance(info.get("errorMessage"), str) and info["errorMessage"], info
    # the unparsable upload wrote nothing
    rows = db_query(server, 'SELECT "Id" FROM "Widget__c" WHERE "Name" IN (?, ?)', (a, b))
    assert rows == [] or info["numberRecordsProcessed"] > 0
    assert_serving(http)


@pytest.mark.parametrize("bad_row", ["{n},7,extra", "{n}"], ids=["too-many", "too-few"])
def test_wrong_column_count_fails_only_that_row(
    http: httpx.Client, server: Server, bad_row: str
) -> None:
    header = "Name,Count__c"
    good1, good2, bad = unique("cc"), unique("cc"), unique("cc")
    body = f"{header}\n{good1},1\n{bad_row.format(n=bad)}\n{good2},2\n"
    info = run_job(http, "Widget__c", "insert", body)
    assert info["state"] == "JobComplete", info
    assert info["numberRecordsProcessed"] == 3 and info["numberRecordsFailed"] == 1, info
    ok = success(http, info["id"], header).dicts()
    assert sorted(r["Name"] for r in ok) == sorted([good1, good2])
    rows_failed = failed(http, info["id"], header).rows
    assert len(rows_failed) == 1, rows_failed
    assert rows_failed[0][0] == "" and bad in rows_failed[0][2:], rows_failed
    err = rows_failed[0][1]
    assert re.fullmatch(r"[A-Z_]+:.+--", err, re.S), err
    rows = db_query(server, 'SELECT "Name" FROM "Widget__c" WHERE "Name" = ?', (bad,))
    assert rows == []
    assert_serving(http)


@pytest.mark.parametrize(
    "body",
    [b"Name\nok\n\xff\xfe bad\n", b"Name\n\xc3\x28\n", b"Na\xe9me\nx\n"],
    ids=["invalid-bytes", "bad-continuation", "latin1-header"],
)
def test_invalid_utf8_fails_job(http: httpx.Client, body: bytes) -> None:
    info = run_job(http, "Widget__c", "insert", body)
    assert info["state"] == "Failed", info
    assert info["errorMessage"].startswith("InvalidBatch"), info
    assert_serving(http)


def test_utf8_bom_is_stripped(http: httpx.Client, server: Server) -> None:
    name = unique("bom") + "-é"
    body = "\ufeffName,Count__c\n" + f"{name},4\n"
    info = run_job(http, "Widget__c", "insert", body.encode("utf-8"))
    assert info["state"] == "JobComplete", info
    assert info["numberRecordsProcessed"] == 1 and info["numberRecordsFailed"] == 0, info
    rows = success(http, info["id"], "Name,Count__c").dicts()  # header echoed without BOM
    assert rows[0]["Name"] == name
    stored = db_query(server, 'SELECT "Count__c" FROM "Widget__c" WHERE "Name" = ?', (name,))
    assert stored == [{"Count__c": 4}]


@pytest.mark.parametrize(
    "body",
    [b"", b"Name", b"Name\n", b"Name,Count__c\r\n", b"Name\n\n\n"],
    ids=["empty", "header-no-newline", "header-lf", "header-crlf", "header-blank-lines"],
)
def test_empty_or_header_only_upload_completes_empty(http: httpx.Client, body: bytes) -> None:
    info = run_job(http, "Widget__c", "insert", body)
    assert info["state"] == "JobComplete", info
    assert info["numberRecordsProcessed"] == 0 and info["numberRecordsFailed"] == 0, info
    for kind in ("successfulResults", "failedResults", "unprocessedrecords"):
        r = http.get(f"{BASE}/{info['id']}/{kind}")
        assert r.status_code == 200
        assert len([ln for ln in r.text.splitlines() if ln]) <= 1, (kind, r.text)


# ---------------------------------------------------------------- media types and encodings


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/octet-stream", "text/csvx", "image/png"]
)
def test_put_wrong_content_type(http: httpx.Client, content_type: str) -> None:
    job = create(http, "Widget__c", "insert")
    r = put(http, job["id"], "Name\nx\n", content_type=content_type)
    assert_error(r, 415, "UNSUPPORTED_MEDIA_TYPE")
    # the job is untouched: a proper upload still works
    name = unique("ct")
    info = upload_and_close(http, job["id"], f"Name\n{name}\n")
    assert info["numberRecordsProcessed"] == 1, info
    assert [r["Name"] for r in success(http, job["id"], "Name").dicts()] == [name]


@pytest.mark.parametrize(
    "content_type", ["text/plain", "text/csv", "application/x-www-form-urlencoded", "text/xml"]
)
def test_create_wrong_content_type(http: httpx.Client, content_type: str) -> None:
    r = http.post(
        BASE,
        content=b'{"object":"Widget__c","operation":"insert"}',
        headers={"Content-Type": content_type},
    )
    assert_error(r, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert_serving(http)


@pytest.mark.parametrize(
    "body", [b'{"object": "Widget__c", "operation":', b"not json", b"{'object': 'Widget__c'}"]
)
def test_create_bad_json(http: httpx.Client, body: bytes) -> None:
    r = http.post(BASE, content=body, headers={"Content-Type": "application/json"})
    assert_error(r, 400, "JSON_PARSER_ERROR")
    assert_serving(http)


@pytest.mark.parametrize("body", [b'{"state": "UploadComplete"', b"state=Aborted", b"\xff"])
def test_patch_bad_json(http: httpx.Client, body: bytes) -> None:
    job = create(http, "Widget__c", "insert")
    r = http.patch(
        f"{BASE}/{job['id']}", content=body, headers={"Content-Type": "application/json"}
    )
    assert_error(r, 400, "JSON_PARSER_ERROR")
    r = http.get(f"{BASE}/{job['id']}")
    assert r.status_code == 200 and r.json()["state"] == "Open"


def test_bad_gzip_body(http: httpx.Client) -> None:
    junk = b"\x1f\x8b\x08\x00 this is not really gzip"
    r = http.post(
        BASE,
        content=junk,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert_error(r, 400, "CLIENTINPUTERROR")
    job = create(http, "Widget__c", "insert")
    r = http.put(
        f"{BASE}/{job['id']}/batches",
        content=b"Name\nplain text, not gzip\n",
        headers={"Content-Type": "text/csv", "Content-Encoding": "gzip"},
    )
    assert_error(r, 400, "CLIENTINPUTERROR")
    truncated = gz("Name\n" + "x\n" * 1000)[:-12]
    r = http.put(
        f"{BASE}/{job['id']}/batches",
        content=truncated,
        headers={"Content-Type": "text/csv", "Content-Encoding": "gzip"},
    )
    assert_error(r, 400, "CLIENTINPUTERROR")
    assert_serving(http)


@pytest.mark.parametrize("encoding", ["br", "x-made-up"])
def test_unsupported_content_encoding(http: httpx.Client, encoding: str) -> None:
    r = http.post(
        BASE,
        content=b'{"object":"Widget__c","operation":"insert"}',
        headers={"Content-Type": "application/json", "Content-Encoding": encoding},
    )
    assert_error(r, 415, "UNSUPPORTED_MEDIA_TYPE")
    job = create(http, "Widget__c", "insert")
    r = http.put(
        f"{BASE}/{job['id']}/batches",
        content=b"Name\nx\n",
        headers={"Content-Type": "text/csv", "Content-Encoding": encoding},
    )
    assert_error(r, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert_serving(http)


def test_oversize_upload(make_server: Callable[..., Server]) -> None:
    srv = make_server("--schema", SCHEMA, "--max-upload-mb", "0.01")  # about 10 KB
    big = ("Name\n" + "".join(f"{unique('big')}\n" for _ in range(1000))).encode()
    assert len(big) > 20_000
    with srv.client() as c:
        job = create(c, "Widget__c", "insert")
        r = put(c, job["id"], big)
        msg = assert_error(r, 400, "INVALIDJOB")
        assert re.search(r"limit|max|size|exceed", msg, re.I), msg

        def gen() -> Iterator[bytes]:
            for i in range(0, len(big), 1000):
                yield big[i : i + 1000]

        job2 = create(c, "Widget__c", "insert")
        r = c.put(
            f"{BASE}/{job2['id']}/batches", content=gen(), headers={"Content-Type": "text/csv"}
        )
        assert_error(r, 400, "INVALIDJOB")
        # a small upload on the same server still works
        job3 = create(c, "Widget__c", "insert")
        info = upload_and_close(c, job3["id"], "Name\nsmall\n")
        assert info["state"] == "JobComplete" and info["numberRecordsProcessed"] == 1, info
        assert_serving(c)


# ---------------------------------------------------------------- ids, paths, methods, auth


def test_unknown_job_id(http: httpx.Client) -> None:
    ghost = unknown_id("750")
    calls = [
        http.get(f"{BASE}/{ghost}"),
        http.get(f"{BASE}/{ghost}/successfulResults"),
        http.get(f"{BASE}/{ghost}/failedResults"),
        http.get(f"{BASE}/{ghost}/unprocessedrecords"),
        http.patch(f"{BASE}/{ghost}", json={"state": "UploadComplete"}),
        http.patch(f"{BASE}/{ghost}", json={"state": "Aborted"}),
        put(http, ghost, "Name\nx\n"),
        http.delete(f"{BASE}/{ghost}"),
        http.get(f"{BASE}/{ghost[:15]}"),
    ]
    for r in calls:
        assert r.status_code == 404, (r.request.method, r.request.url, r.text)
        assert r.json() == NOT_FOUND
    assert_serving(http)


@pytest.mark.parametrize(
    "job_id",
    [
        "nope",
        "750",
        "750000000000000000000000",
        "750R0000000zlh9IAA-x",
        "%27%3B--",
        "0010000000000AAAAA",
    ],
)
def test_malformed_job_id(http: httpx.Client, job_id: str) -> None:
    for r in (
        http.get(f"{BASE}/{job_id}"),
        http.patch(f"{BASE}/{job_id}", json={"state": "Aborted"}),
        put(http, job_id, "Name\nx\n"),
        http.get(f"{BASE}/{job_id}/successfulResults"),
    ):
        assert_error(r, 404, "NOT_FOUND")
    assert_serving(http)


def test_job_of_the_other_kind_is_not_found_under_ingest(
    http: httpx.Client, server: Server
) -> None:
    """Spec §3.1: a job id of another kind (here a Bulk 1.0 job) is 404 under /ingest,
    although the list shows it with jobType Classic."""
    r = http.post(
        f"/services/async/{API}/job",
        json={"operation": "insert", "object": "Contact", "contentType": "CSV"},
        headers={"X-SFDC-Session": server.token},
    )
    assert r.status_code == 201, r.text
    classic_id = r.json()["id"]
    for suffix in ("", "/successfulResults", "/batches"):
        method = "PUT" if suffix == "/batches" else "GET"
        r2 = http.request(method, f"{BASE}/{classic_id}{suffix}", content=b"LastName\nx\n",
                          headers={"Content-Type": "text/csv"})  # fmt: skip
        assert r2.status_code == 404 and r2.json() == NOT_FOUND, (suffix, r2.text)
    listed = http.get(BASE, params={"jobType": "Classic"}).json()
    while classic_id not in {j["id"] for j in listed["records"]}:
        assert listed["nextRecordsUrl"], "the Classic job must be listed"
        listed = http.get(listed["nextRecordsUrl"]).json()


@pytest.mark.parametrize(
    "path",
    [
        f"{BASE}/{{id}}/nonsense",
        f"{BASE}/{{id}}/batches/extra",
        f"/services/data/v{API}/jobs/nothing",
        f"/services/data/v{API}/nope",
        "/definitely/not/here",
        f"{BASE}/{{id}}/successfulResults/more",
    ],
)
def test_unknown_path(http: httpx.Client, path: str) -> None:
    job = create(http, "Widget__c", "insert")
    r = http.get(path.format(id=job["id"]))
    assert_error(r, 404, "NOT_FOUND")
    assert_serving(http)


@pytest.mark.parametrize("version", ["40.0", "31.0", "39.0"])
def test_ingest_below_v41_not_found(http: httpx.Client, version: str) -> None:
    base = f"/services/data/v{version}/jobs/ingest"
    r = http.post(base, json={"object": "Widget__c", "operation": "insert"})
    assert_error(r, 404, "NOT_FOUND")
    r = http.get(base)
    assert_error(r, 404, "NOT_FOUND")
    job = create(http, "Widget__c", "insert")
    r = http.get(f"{base}/{job['id']}")
    assert_error(r, 404, "NOT_FOUND")
    assert_serving(http)


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("POST", "/{id}"),
        ("PUT", "/{id}"),
        ("GET", "/{id}/batches"),
        ("POST", "/{id}/batches"),
        ("DELETE", "/{id}/batches"),
        ("POST", "/{id}/successfulResults"),
        ("DELETE", "/{id}/failedResults"),
        ("PUT", ""),
        ("DELETE", ""),
    ],
)
def test_wrong_method(http: httpx.Client, method: str, suffix: str) -> None:
    job = create(http, "Widget__c", "insert")
    r = http.request(
        method,
        BASE + suffix.format(id=job["id"]),
        content=b"Name\nx\n",
        headers={"Content-Type": "text/csv"},
    )
    assert_error(r, 405, "METHOD_NOT_ALLOWED")
    r = http.get(f"{BASE}/{job['id']}")
    assert r.status_code == 200 and r.json()["state"] == "Open"


@pytest.mark.parametrize(
    "auth",
    [None, "Bearer not-the-token", "Bearer", "Token x", "OAuth wrong", "X"],
)
def test_missing_or_invalid_token(server: Server, http: httpx.Client, auth: str | None) -> None:
    job = create(http, "Widget__c", "insert")
    headers = {} if auth is None else {"Authorization": auth}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as anon:
        calls = [
            anon.get(BASE),
            anon.post(BASE, json={"object": "Widget__c", "operation": "insert"}),
            anon.get(f"{BASE}/{job['id']}"),
            anon.put(
                f"{BASE}/{job['id']}/batches",
                content=b"Name\nx\n",
                headers={"Content-Type": "text/csv"},
            ),
            anon.patch(f"{BASE}/{job['id']}", json={"state": "Aborted"}),
            anon.delete(f"{BASE}/{job['id']}"),
            anon.get(f"{BASE}/{job['id']}/successfulResults"),
            anon.get(f"{BASE}/{unknown_id('750')}"),
        ]
    for r in calls:
        assert r.status_code == 401, (r.request.method, r.request.url, r.text)
        assert r.json() == INVALID_SESSION
    r = http.get(f"{BASE}/{job['id']}")
    assert r.status_code == 200 and r.json()["state"] == "Open"  # nothing happened to it


def test_oauth_authorization_scheme_accepted(server: Server) -> None:
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"OAuth {server.token}"}, timeout=30
    ) as c:
        name = unique("oauth")
        info = run_job(c, "Widget__c", "insert", f"Name\n{name}\n")
        assert info["state"] == "JobComplete" and info["numberRecordsProcessed"] == 1
        assert c.delete(f"{BASE}/{info['id']}").status_code == 204


# ---------------------------------------------------------------- create-time validation


@pytest.mark.parametrize(
    "payload",
    [
        {"object": "Widget__c"},
        {"object": "Widget__c", "operation": ""},
        {"object": "Widget__c", "operation": "INSERT"},
        {"object": "Widget__c", "operation": "Insert"},
        {"object": "Widget__c", "operation": "merge"},
        {"object": "Widget__c", "operation": "query"},
        {"object": "Widget__c", "operation": None},
    ],
    ids=["missing", "empty", "upper", "title", "merge", "query", "null"],
)
def test_bad_operation(http: httpx.Client, payload: dict[str, object]) -> None:
    r = http.post(BASE, json=payload)
    assert_error(r, 400, "INVALIDJOB")
    assert_serving(http)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("columnDelimiter", "COLON"),
        ("columnDelimiter", ","),
        ("columnDelimiter", "TABS"),
        ("lineEnding", "CR"),
        ("lineEnding", "\n"),
        ("contentType", "JSON"),
        ("contentType", "XML"),
        ("contentType", "ZIP_CSV"),
    ],
)
def test_bad_enum_values(http: httpx.Client, key: str, value: str) -> None:
    r = http.post(BASE, json={"object": "Widget__c", "operation": "insert", key: value})
    assert_error(r, 400, "INVALIDJOB")
    assert_serving(http)


@pytest.mark.parametrize(
    ("obj", "ext"),
    [
        ("Contact", None),
        ("Contact", ""),
        ("Contact", "No_Such_Field__c"),
        ("Contact", "LastName"),
        ("Widget__c", "Count__c"),
        ("Widget__c", "Notes__c"),
    ],
    ids=["missing", "empty", "unknown-field", "not-external-lastname", "not-external-int", "text"],
)
def test_bad_external_id_field(http: httpx.Client, obj: str, ext: str | None) -> None:
    payload: dict[str, object] = {"object": obj, "operation": "upsert"}
    if ext is not None:
        payload["externalIdFieldName"] = ext
    r = http.post(BASE, json=payload)
    assert_error(r, 400, "INVALIDJOB")
    assert_serving(http)


@pytest.mark.parametrize("obj", ["Foo__c", "Widgets__c", "Widget", "NoSuchThing"])
def test_unknown_object(http: httpx.Client, obj: str) -> None:
    r = http.post(BASE, json={"object": obj, "operation": "insert"})
    assert_error(r, 400, "INVALIDENTITY", f"Entity '{obj}' is not supported by the Bulk API.")
    assert_serving(http)


def test_multipart_content_too_large(http: httpx.Client) -> None:
    content = "Name\n" + "y" * 100_000
    r = http.post(
        BASE,
        files={
            "job": (None, b'{"object":"Widget__c","operation":"insert"}', "application/json"),
            "content": ("content", content.encode(), "text/csv"),
        },
    )
    assert_error(r, 400, "INVALIDJOB")
    assert_serving(http)


# ---------------------------------------------------------------- job-level header failures


def test_unknown_header_field(http: httpx.Client) -> None:
    info = run_job(http, "Widget__c", "insert", f"Name,Colour__c\n{unique('h')},Red\n")
    assert info["state"] == "Failed", info
    assert info["errorMessage"] == "InvalidBatch : Field name not found : Colour__c"
    assert info["numberRecordsProcessed"] == 0
    assert_serving(http)


@pytest.mark.parametrize("header", ["Name,Count__c,Name", "Name,name"], ids=["exact", "case"])
def test_duplicate_header_column(http: httpx.Client, header: str) -> None:
    row = ",".join([unique("dup")] * header.count(","))
    info = run_job(http, "Widget__c", "insert", f"{header}\n{row},1\n")
    assert info["state"] == "Failed", info
    assert info["errorMessage"].startswith("InvalidBatch : "), info
    assert info["numberRecordsProcessed"] == 0
    assert_serving(http)


@pytest.mark.parametrize(
    ("operation", "header", "extra"),
    [
        ("update", "Name,Count__c", {}),
        ("delete", "Name", {}),
        ("hardDelete", "Name", {}),
        ("upsert", "LastName", {"externalIdFieldName": "External_Id__c"}),
    ],
    ids=["update-no-id", "delete-no-id", "harddelete-no-id", "upsert-no-ext-column"],
)
def test_missing_required_column_fails_job(
    http: httpx.Client, operation: str, header: str, extra: dict[str, str]
) -> None:
    obj = "Contact" if operation == "upsert" else "Widget__c"
    row = ",".join([unique("mc")] * (header.count(",") + 1))
    job = http.post(BASE, json={"object": obj, "operation": operation, **extra})
    if operation == "hardDelete" and job.status_code == 400:
        assert job.json()[0]["errorCode"] == "FEATURENOTENABLED"
        pytest.skip("hardDelete not permitted for this user")
    assert job.status_code == 200, job.text
    info = upload_and_close(http, job.json()["id"], f"{header}\n{row}\n")
    assert info["state"] == "Failed", info
    assert info["errorMessage"].startswith("InvalidBatch : "), info
    assert info["numberRecordsProcessed"] == 0
    assert unprocessed(http, info["id"], header).rows == [row.split(",")]
    assert failed(http, info["id"], header).rows == []
    assert_serving(http)


def test_server_survives_a_burst_of_bad_requests(http: httpx.Client) -> None:
    job = create(http, "Widget__c", "insert")
    for _ in range(20):
        http.post(BASE, content=b"{", headers={"Content-Type": "application/json"})
        http.get(f"{BASE}/garbage")
        put(http, job["id"], b"\x00\xff", content_type="text/plain")
        http.patch(
            f"{BASE}/{job['id']}", content=b"[", headers={"Content-Type": "application/json"}
        )
    info = upload_and_close(http, job["id"], f"Name\n{unique('ok')}\n")
    assert info["state"] == "JobComplete" and info["numberRecordsProcessed"] == 1
    info2 = wait_for_job(http, job["id"])
    assert info2["numberRecordsFailed"] == 0
    patch(http, job["id"], "Aborted")  # already complete: 400, and still serving
    assert_serving(http)
