"""Bulk API 1.0 over raw HTTP: job and batch lifecycle, formats, results and the B1 checklist.

Spec: /work/shared/spec/bulk-api.md §1, §2.1-§2.7, §2.9, §2.11-§2.14, §5, §9 (B1-01...B1-37,
B1-44...B1-49; the query lines B1-26, B1-38...B1-43 are in test_bulk1_query_api.py).
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from bulk1_helpers import (
    ASYNC,
    BATCH_ORDER,
    EXCEPTION_CODES,
    INGEST,
    JOB,
    JOB_COUNTERS,
    JOB_OPTIONAL,
    JOB_ORDER,
    MEDIA,
    NS,
    RESULT_HEADER,
    UNABLE_TO_PARSE,
    Fmt,
    abort_job,
    add_batch,
    assert_error,
    b1_client,
    case,
    children,
    close_job,
    create_job,
    csv_results,
    fmt_of_job,
    get_batch,
    get_job,
    job_xml,
    json_results,
    list_batches,
    media,
    num,
    parse_xml,
    post_batch,
    post_job,
    read_batch,
    read_error,
    read_job,
    result_url,
    run_batch,
    sobjects_xml,
    update_job,
    wait_batch,
    wait_counters,
    xml_results,
)
from bulk2_helpers import SCHEMA, assert_id18, db_one, db_query, to18, unknown_id
from conftest import API, Server, unique


@pytest.fixture
def b1(server: Server) -> Iterator[httpx.Client]:
    with b1_client(server) as c:
        yield c


def sku() -> str:
    """A unique value short enough for the 20-char Sku__c / Code__c fields."""
    return unique("")[-20:]


def widget_csv(names: list[str]) -> str:
    return "Name\n" + "".join(f"{n}\n" for n in names)


def insert_widgets(c: httpx.Client, header: str, rows: list[str]) -> list[str]:
    """Insert Widget__c rows over Bulk 1.0 CSV; returns the new ids in row order."""
    body = header + "\n" + "".join(f"{r}\n" for r in rows)
    job_id, batch_id, done = run_batch(c, "Widget__c", "insert", body)
    assert done["state"] == "Completed" and num(done, "numberRecordsFailed") == 0, done
    results = csv_results(c, job_id, batch_id)
    assert all(r["Success"] == "true" for r in results), results
    return [r["Id"] for r in results]


def insert_account(c: httpx.Client, ext: str) -> str:
    job_id, batch_id, done = run_batch(
        c, "Account", "insert", f"Name,External_Id__c\n{unique('Acme')},{ext}\n"
    )
    assert done["state"] == "Completed", done
    (row,) = csv_results(c, job_id, batch_id)
    assert row["Success"] == "true", row
    return row["Id"]


def db_widget(server: Server, name: str) -> dict[str, Any]:
    rows = db_query(server, 'SELECT * FROM "Widget__c" WHERE "Name" = ?', (name,))
    assert len(rows) == 1, rows
    return rows[0]


RULE_ID = to18("01Q000000000001")
_GOOD = {"operation": "insert", "object": "Widget__c", "contentType": "CSV"}

# ---------------------------------------------------------------- job creation (B1-01...B1-13)


def test_b1_01_create_xml_job(b1: httpx.Client) -> None:
    body = job_xml({"operation": "insert", "object": "Widget__c", "contentType": "CSV"})
    r = post_job(b1, body)
    assert r.status_code == 201, r.text
    assert media(r) == "application/xml"
    root = parse_xml(r, "jobInfo")
    assert root.tag == f"{{{NS}}}jobInfo"
    info = read_job(r, "xml", 201)
    assert info["state"] == "Open"
    assert_id18(info["id"], "750")
    assert_id18(info["createdById"], "005")
    assert (info["operation"], info["object"], info["contentType"]) == (
        "insert",
        "Widget__c",
        "CSV",
    )
    assert info["concurrencyMode"] == "Parallel"
    assert info["apiVersion"] == API
    assert all(info[k] == "0" for k in JOB_COUNTERS), info
    assert "externalIdFieldName" not in info and "assignmentRuleId" not in info


def test_b1_02_jobinfo_element_order(b1: httpx.Client) -> None:
    plain = post_job(b1, job_xml({"operation": "insert", "object": "Widget__c"}))
    assert plain.status_code == 201, plain.text
    assert [t for t, _ in children(parse_xml(plain, "jobInfo"))] == [
        t for t in JOB_ORDER if t not in JOB_OPTIONAL
    ]
    upsert = post_job(
        b1,
        job_xml(
            [
                ("operation", "upsert"),
                ("object", "Widget__c"),
                ("externalIdFieldName", "Sku__c"),
                ("concurrencyMode", "Serial"),
                ("contentType", "CSV"),
            ]
        ),
    )
    assert upsert.status_code == 201, upsert.text
    tags = [t for t, _ in children(parse_xml(upsert, "jobInfo"))]
    assert tags == [t for t in JOB_ORDER if t != "assignmentRuleId"]
    info = read_job(upsert, "xml", 201)
    assert info["externalIdFieldName"] == "Sku__c" and info["concurrencyMode"] == "Serial"

    lead = post_job(
        b1,
        job_xml(
            [
                ("operation", "insert"),
                ("object", "Lead"),
                ("assignmentRuleId", RULE_ID),
                ("contentType", "CSV"),
            ]
        ),
    )
    assert lead.status_code == 201, lead.text
    tags = [t for t, _ in children(parse_xml(lead, "jobInfo"))]
    assert tags == [t for t in JOB_ORDER if t != "externalIdFieldName"]
    lead_info = read_job(lead, "xml", 201)
    assert lead_info["assignmentRuleId"] == RULE_ID
    # GET keeps the same order
    got = b1.get(f"{JOB}/{lead_info['id']}")
    assert [t for t, _ in children(parse_xml(got, "jobInfo"))] == tags
    # never the errorMessage / fastPathEnabled extras
    assert "errorMessage" not in lead.text and "fastPathEnabled" not in lead.text


def test_b1_03_json_create(b1: httpx.Client) -> None:
    body = json.dumps({"operation": "insert", "object": "Widget__c", "contentType": "JSON"})
    r = post_job(b1, body, "application/json")
    info = read_job(r, "json", 201)
    assert media(r) == "application/json"
    assert set(info) == set(JOB_ORDER) - JOB_OPTIONAL, set(info) ^ (set(JOB_ORDER) - JOB_OPTIONAL)
    assert info["state"] == "Open" and info["contentType"] == "JSON"
    assert info["concurrencyMode"] == "Parallel"
    assert_id18(info["id"], "750")
    assert info["apiVersion"] == float(API)
    assert re.search(r'"apiVersion"\s*:\s*59\.0\b', r.text), r.text
    for k in JOB_COUNTERS:
        assert info[k] == 0 and type(info[k]) is int, (k, info[k])
    assert info["createdDate"].endswith("+0000") and info["systemModstamp"].endswith("+0000")


def test_b1_04_xml_create_of_json_job_answers_xml(b1: httpx.Client) -> None:
    info = create_job(b1, "Widget__c", "insert", "JSON", fmt="xml")  # asserts an XML answer
    assert info["contentType"] == "JSON"
    # later requests without a body follow the job's content type (R2)
    got = get_job(b1, info["id"], "json")
    assert got["id"] == info["id"] and got["contentType"] == "JSON"
    assert list_batches(b1, info["id"], "json") == []


def test_b1_05_xml_body_sent_as_text_csv(b1: httpx.Client) -> None:
    body = job_xml({"operation": "insert", "object": "Widget__c", "contentType": "CSV"})
    info = read_job(post_job(b1, body, "text/csv"), "xml", 201)
    assert info["operation"] == "insert" and info["object"] == "Widget__c"
    r = b1.post(
        f"{JOB}/{info['id']}",
        content=job_xml({"state": "Closed"}),
        headers={"Content-Type": "text/csv"},
    )
    closed = read_job(r, "xml")
    assert closed["state"] == "Closed" and closed["id"] == info["id"]


_INNER = "<contentType>CSV</contentType><object>Widget__c</object><operation>insert</operation>"


@pytest.mark.parametrize(
    "body",
    [
        f'<?xml version="1.0" encoding="UTF-8"?><jobInfo xmlns="{NS}">{_INNER}</jobInfo>',
        f"<?xml version='1.0' encoding='UTF-8'?><jobInfo xmlns=\"{NS}\">{_INNER}</jobInfo>",
        f'<jobInfo xmlns="{NS}">{_INNER}</jobInfo>',
        f'<a:jobInfo xmlns:a="{NS}"><a:object>Widget__c</a:object>'
        "<a:operation>insert</a:operation><a:contentType>CSV</a:contentType></a:jobInfo>",
        f'<?xml version="1.0"?>\n<jobInfo xmlns="{NS}">\n  <operation>insert</operation>\n'
        "  <object>Widget__c</object>\n  <contentType>CSV</contentType>\n</jobInfo>\n",
        f'<jobInfo xmlns="{NS}"><operation>insert</operation><object>Widget__c</object>'
        "<concurrencyMode>Parallel</concurrencyMode><contentType>CSV</contentType></jobInfo>",
    ],
    ids=["any-order", "single-quoted-decl", "no-decl", "prefixed-ns", "indented", "jetstream"],
)
def test_b1_06_lenient_create_parser(b1: httpx.Client, body: str) -> None:
    info = read_job(post_job(b1, body), "xml", 201)
    assert (info["operation"], info["object"], info["contentType"]) == (
        "insert",
        "Widget__c",
        "CSV",
    )


@pytest.mark.parametrize(
    ("mode", "expected"),
    [(0, "Parallel"), (1, "Serial"), ("Serial", "Serial"), ("Parallel", "Parallel")],
)
def test_b1_07_concurrency_mode_ordinals(b1: httpx.Client, mode: Any, expected: str) -> None:
    info = create_job(b1, "Widget__c", "insert", "JSON", fmt="json", concurrencyMode=mode)
    assert info["concurrencyMode"] == expected


def test_b1_08_defaults(b1: httpx.Client) -> None:
    info = create_job(b1, "Widget__c", "insert", None, fmt="xml")
    assert info["concurrencyMode"] == "Parallel" and info["contentType"] == "XML"
    # a JSON request without contentType: a JSON answer (R1) for an XML job
    info = create_job(b1, "Widget__c", "insert", None, fmt="json")
    assert info["concurrencyMode"] == "Parallel" and info["contentType"] == "XML"
    assert get_job(b1, info["id"], "xml")["contentType"] == "XML"  # R2: XML job answers XML


@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_b1_09_operation_is_case_sensitive(b1: httpx.Client, fmt: Fmt) -> None:
    body = {"operation": "INSERT", "object": "Widget__c", "contentType": "CSV"}
    r = post_job(b1, json.dumps(body) if fmt == "json" else job_xml(body), MEDIA[fmt.upper()])
    assert_error(r, 400, "InvalidJob", UNABLE_TO_PARSE, fmt)


@pytest.mark.parametrize("fmt", ["xml", "json"])
@pytest.mark.parametrize("obj", ["Contact", "Widget__c"])
def test_b1_10_upsert_without_external_id(b1: httpx.Client, fmt: Fmt, obj: str) -> None:
    body = {"operation": "upsert", "object": obj, "contentType": "CSV"}
    r = post_job(b1, json.dumps(body) if fmt == "json" else job_xml(body), MEDIA[fmt.upper()])
    assert_error(
        r,
        400,
        "InvalidJob",
        f"External ID was blank for {obj}. An External ID must be specified for upsert.",
        fmt,
    )


@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_b1_11_unknown_object(b1: httpx.Client, fmt: Fmt) -> None:
    body = {"operation": "insert", "object": "Nope__c", "contentType": "CSV"}
    r = post_job(b1, json.dumps(body) if fmt == "json" else job_xml(body), MEDIA[fmt.upper()])
    assert_error(r, 400, "InvalidEntity", "Entity 'Nope__c' is not supported by the Bulk API.", fmt)


def test_b1_12_error_body_shapes(b1: httpx.Client) -> None:
    r = b1.get(f"{JOB}/{unknown_id('750')}")
    assert r.status_code == 400
    root = parse_xml(r, "error")
    assert [t for t, _ in children(root)] == ["exceptionCode", "exceptionMessage"]
    assert r.text.lstrip().startswith("<?xml"), r.text[:80]
    r = b1.get(f"{JOB}/{unknown_id('750')}", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert media(r) == "application/json"
    body = r.json()
    assert list(body) == ["exceptionCode", "exceptionMessage"], body
    assert body["exceptionCode"] == "InvalidJob" and body["exceptionMessage"]


_GOOD_JOB = job_xml({"operation": "insert", "object": "Widget__c", "contentType": "CSV"})


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-SFDC-Session": "00D000000000001AAA!NotTheToken"},
        {"X-SFDC-Session": ""},
        {"X-SFDC-Session": "Bearer 00D000000000001AAA!NotTheToken"},
        {"X-Session": "{token}"},
    ],
    ids=["missing", "wrong", "empty", "wrong-bearer", "other-header"],
)
def test_b1_13_invalid_session(server: Server, headers: dict[str, str]) -> None:
    hdrs = {k: v.format(token=server.token) for k, v in headers.items()}
    with httpx.Client(base_url=server.url, timeout=30) as raw, b1_client(server) as good:
        job = create_job(good, "Widget__c")
        r = raw.post(JOB, content=_GOOD_JOB, headers={**hdrs, "Content-Type": "application/xml"})
        assert_error(r, 400, "InvalidSessionId", fmt="xml")
        # jsforce detects expiry by this exact substring
        assert "<exceptionCode>InvalidSessionId</exceptionCode>" in r.text, r.text
        r = raw.get(f"{JOB}/{job['id']}", headers=hdrs)
        assert_error(r, 400, "InvalidSessionId", fmt="xml")
        r = raw.post(
            JOB,
            content=json.dumps({"operation": "insert", "object": "Widget__c"}),
            headers={**hdrs, "Content-Type": "application/json"},
        )
        assert_error(r, 400, "InvalidSessionId", fmt="json")
        r = raw.post(
            f"{JOB}/{job['id']}/batch",
            content="Name\nx\n",
            headers={**hdrs, "Content-Type": "text/csv"},
        )
        assert_error(r, 400, "InvalidSessionId", fmt="xml")
        assert get_job(good, job["id"])["numberBatchesTotal"] == "0"


@pytest.mark.parametrize(
    ("name", "prefix"),
    [
        ("X-SFDC-Session", ""),
        ("X-SFDC-SESSION", ""),
        ("x-sfdc-session", ""),
        ("X-SFDC-Session", "Bearer "),
        ("X-SFDC-SESSION", "Bearer "),
    ],
)
def test_a10_session_header_variants(server: Server, name: str, prefix: str) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as raw:
        r = raw.post(
            JOB,
            content=_GOOD_JOB,
            headers={name: prefix + server.token, "Content-Type": "application/xml"},
        )
        info = read_job(r, "xml", 201)
        r = raw.get(f"{JOB}/{info['id']}", headers={name: prefix + server.token})
        assert read_job(r, "xml")["id"] == info["id"]


# ---------------------------------------------------------------- get / update job (B1-14...B1-21)


@pytest.mark.parametrize("content_type", ["CSV", "XML", "JSON"])
def test_b1_14_get_job_in_job_format(b1: httpx.Client, content_type: str) -> None:
    fmt = fmt_of_job(content_type)
    created = create_job(b1, "Widget__c", "insert", content_type, fmt=fmt)
    got = get_job(b1, created["id"], fmt)
    assert {k: v for k, v in got.items() if k != "systemModstamp"} == {
        k: v for k, v in created.items() if k != "systemModstamp"
    }
    # a Content-Type on a GET (simple-salesforce sends one) does not change the format
    other = "application/xml" if fmt == "json" else "application/json"
    r = b1.get(f"{JOB}/{created['id']}", headers={"Content-Type": other})
    assert read_job(r, fmt)["id"] == created["id"]


def test_b1_15_unknown_job(b1: httpx.Client) -> None:
    for job_id in (unknown_id("750"), "750000000000000AAA", "nope", unknown_id("751")):
        assert_error(b1.get(f"{JOB}/{job_id}"), 400, "InvalidJob", fmt="xml")
    # no job: the error follows the request Content-Type (R5)
    r = b1.get(f"{JOB}/{unknown_id('750')}", headers={"Content-Type": "application/json"})
    assert_error(r, 400, "InvalidJob", fmt="json")


@pytest.mark.parametrize("content_type", ["CSV", "XML", "JSON"])
def test_b1_16_close_job(b1: httpx.Client, content_type: str) -> None:
    fmt = fmt_of_job(content_type)
    job = create_job(b1, "Widget__c", "insert", content_type, fmt=fmt)
    closed = close_job(b1, job["id"], fmt)
    assert closed["id"] == job["id"] and closed["createdDate"] == job["createdDate"]
    assert closed["systemModstamp"] >= job["systemModstamp"]
    assert get_job(b1, job["id"], fmt)["state"] == "Closed"


@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_b1_17_close_body_with_id(b1: httpx.Client, fmt: Fmt) -> None:
    job = create_job(b1, "Widget__c", "insert", "CSV")
    closed = read_job(update_job(b1, job["id"], "Closed", fmt, with_id=True), fmt)
    assert closed["state"] == "Closed" and closed["id"] == job["id"]
    # WSC aborts the same way
    job = create_job(b1, "Widget__c", "insert", "CSV")
    aborted = read_job(update_job(b1, job["id"], "Aborted", fmt, with_id=True), fmt)
    assert aborted["state"] == "Aborted"


def test_b1_18_close_body_with_created_by_id(b1: httpx.Client) -> None:
    job = create_job(b1, "Widget__c", "insert", "CSV")
    body = job_xml([("createdById", job["createdById"]), ("state", "Closed")])
    r = b1.post(f"{JOB}/{job['id']}", content=body, headers={"Content-Type": "application/xml"})
    assert_error(r, 400, "InvalidJob", "CreatedById cannot be specified", "xml")
    assert get_job(b1, job["id"])["state"] == "Open"


@pytest.mark.parametrize(
    ("job_type", "body_fmt", "state"),
    [
        ("JSON", "xml", "Closed"),
        ("CSV", "json", "Closed"),
        ("XML", "json", "Aborted"),
        ("JSON", "xml", "Aborted"),
        ("JSON", "json", "Closed"),
        ("CSV", "xml", "Closed"),
    ],
)
def test_b1_19_update_answers_in_request_format(
    b1: httpx.Client, job_type: str, body_fmt: Fmt, state: str
) -> None:
    job = create_job(b1, "Widget__c", "insert", job_type, fmt=fmt_of_job(job_type))
    info = read_job(update_job(b1, job["id"], state, body_fmt), body_fmt)
    assert info["state"] == state and info["contentType"] == job_type


def test_b1_20_close_closed_job_is_noop(b1: httpx.Client) -> None:
    job = create_job(b1, "Widget__c", "insert", "CSV")
    first = close_job(b1, job["id"])
    second = close_job(b1, job["id"])
    assert second["id"] == first["id"] and second["state"] == "Closed"
    assert get_job(b1, job["id"])["state"] == "Closed"


@pytest.mark.parametrize("start", ["Open", "Closed"])
def test_b1_21_abort_open_or_closed_job(b1: httpx.Client, start: str) -> None:
    job = create_job(b1, "Widget__c", "insert", "CSV")
    if start == "Closed":
        close_job(b1, job["id"])
    abort_job(b1, job["id"])
    assert get_job(b1, job["id"])["state"] == "Aborted"


def test_b1_21_abort_turns_queued_batches_not_processed(
    make_server: Callable[..., Server],
) -> None:
    srv = make_server("--schema", SCHEMA, "--workers", "0")
    names = [unique("nq"), unique("nq"), unique("nq")]
    with b1_client(srv) as c:
        job = create_job(c, "Widget__c", "insert", "CSV")
        b1_ = add_batch(c, job["id"], widget_csv(names[:2]))
        b2_ = add_batch(c, job["id"], widget_csv(names[2:]))
        info = get_job(c, job["id"])
        assert (num(info, "numberBatchesQueued"), num(info, "numberBatchesTotal")) == (2, 2)
        assert get_batch(c, job["id"], b1_["id"])["state"] == "Queued"
        aborted = abort_job(c, job["id"])
        assert num(aborted, "numberBatchesTotal") == 2
        assert num(aborted, "numberBatchesQueued") == 0
        batches = list_batches(c, job["id"])
        assert [b["id"] for b in batches] == [b1_["id"], b2_["id"]]
        assert [b["state"] for b in batches] == ["NotProcessed", "NotProcessed"]
        for b in batches:
            assert num(b, "numberRecordsProcessed") == 0
        info = get_job(c, job["id"])
        assert info["state"] == "Aborted" and num(info, "numberRecordsProcessed") == 0
        for k in ("numberBatchesQueued", "numberBatchesInProgress", "numberBatchesCompleted"):
            assert num(info, k) == 0, info
    rows = db_query(srv, 'SELECT "Id" FROM "Widget__c" WHERE "Name" IN (?, ?, ?)', tuple(names))
    assert rows == []


# ---------------------------------------------------------------- batches (B1-22...B1-30)


def test_b1_22_add_csv_batch(b1: httpx.Client, server: Server) -> None:
    job = create_job(b1, "Widget__c", "insert", "CSV")
    name = unique("b22")
    r = post_batch(b1, job["id"], widget_csv([name]), "text/csv")
    assert r.status_code == 201, r.text
    assert media(r) == "application/xml"
    info = read_batch(r, "xml", 201)
    assert info["state"] == "Queued" and info["jobId"] == job["id"]
    assert_id18(info["id"], "751")
    assert "stateMessage" not in info
    done = wait_batch(b1, job["id"], info["id"])
    assert done["state"] == "Completed" and num(done, "numberRecordsProcessed") == 1
    assert done["createdDate"] == info["createdDate"]
    db_widget(server, name)


def test_b1_22_add_batch_to_json_job(b1: httpx.Client, server: Server) -> None:
    job = create_job(b1, "Widget__c", "insert", "JSON", fmt="json")
    name = unique("b22j")
    r = post_batch(b1, job["id"], json.dumps([{"Name": name}]), "application/json")
    info = read_batch(r, "json", 201)
    assert info["state"] == "Queued" and info["jobId"] == job["id"]
    assert_id18(info["id"], "751")
    done = wait_batch(b1, job["id"], info["id"], "json")
    assert done["state"] == "Completed" and done["numberRecordsProcessed"] == 1
    assert done["numberRecordsFailed"] == 0
    db_widget(server, name)


def test_b1_23_batchinfo_element_order(b1: httpx.Client) -> None:
    job = create_job(b1, "Widget__c", "insert", "CSV")
    ok = post_batch(b1, job["id"], widget_csv([unique("b23")]), "text/csv")
    assert [t for t, _ in children(parse_xml(ok, "batchInfo"))] == [
        t for t in BATCH_ORDER if t != "stateMessage"
    ]
    bad = add_batch(b1, job["id"], "Name,Bogus__c\nx,y\n")
    failed = wait_batch(b1, job["id"], bad["id"])
    assert failed["state"] == "Failed"
    r = b1.get(f"{JOB}/{job['id']}/batch/{bad['id']}")
    assert [t for t, _ in children(parse_xml(r, "batchInfo"))] == list(BATCH_ORDER)
    lst = b1.get(f"{JOB}/{job['id']}/batch")
    for el in parse_xml(lst, "batchInfoList"):
        tags = [t for t, _ in children(el)]
        assert tags in ([t for t in BATCH_ORDER if t != "stateMessage"], list(BATCH_ORDER)), tags


@pytest.mark.parametrize(("job_type", "end"), [("CSV", "Closed"), ("CSV", "Aborted"),
                                               ("JSON", "Closed"), ("XML", "Aborted")])  # fmt: skip
def test_b1_24_batch_on_closed_or_aborted_job(b1: httpx.Client, job_type: str, end: str) -> None:
    fmt = fmt_of_job(job_type)
    job = create_job(b1, "Widget__c", "insert", job_type, fmt=fmt)
    read_job(update_job(b1, job["id"], end, fmt), fmt)
    data = {
        "CSV": "Name\nx\n",
        "JSON": json.dumps([{"Name": "x"}]),
        "XML": sobjects_xml([{"Name": "x"}]),
    }[job_type]
    r = post_batch(b1, job["id"], data, MEDIA[job_type])
    assert_error(r, 400, "InvalidJobState", fmt=fmt)
    assert num(get_job(b1, job["id"], fmt), "numberBatchesTotal") == 0


@pytest.mark.parametrize(
    ("job_type", "sent"),
    [
        ("CSV", "application/xml"),
        ("CSV", "application/json"),
        ("XML", "text/csv"),
        ("XML", "application/json"),
        ("JSON", "text/csv"),
        ("JSON", "application/xml"),
        ("JSON", "text/xml"),
    ],
)
def test_b1_25_batch_content_type_mismatch(b1: httpx.Client, job_type: str, sent: str) -> None:
    fmt = fmt_of_job(job_type)
    job = create_job(b1, "Widget__c", "insert", job_type, fmt=fmt)
    data = {
        "text/csv": "Name\nx\n",
        "application/json": json.dumps([{"Name": "x"}]),
        "application/xml": sobjects_xml([{"Name": "x"}]),
        "text/xml": sobjects_xml([{"Name": "x"}]),
    }[sent]
    assert_error(post_batch(b1, job["id"], data, sent), 400, "InvalidBatch", fmt=fmt)
    assert num(get_job(b1, job["id"], fmt), "numberBatchesTotal") == 0


@pytest.mark.parametrize(
    ("job_type", "sent"),
    [
        ("CSV", "text/csv; charset=UTF-8"),
        ("CSV", "TEXT/CSV"),
        ("XML", "text/xml"),
        ("XML", "application/xml; charset=utf-8"),
        ("JSON", "application/json; charset=UTF-8"),
        ("JSON", "Application/JSON"),
    ],
)
def test_c02_batch_content_type_parameters_ignored(
    b1: httpx.Client, server: Server, job_type: str, sent: str
) -> None:
    fmt = fmt_of_job(job_type)
    job = create_job(b1, "Widget__c", "insert", job_type, fmt=fmt)
    name = unique("c02")
    data = {
        "CSV": f"Name\n{name}\n",
        "JSON": json.dumps([{"Name": name}]),
        "XML": sobjects_xml([{"Name": name}]),
    }[job_type]
    info = read_batch(post_batch(b1, job["id"], data, sent), fmt, 201)
    done = wait_batch(b1, job["id"], info["id"], fmt)
    assert done["state"] == "Completed" and num(done, "numberRecordsFailed") == 0, done
    db_widget(server, name)


def test_b1_27_counters_and_processing_while_open(b1: httpx.Client, server: Server) -> None:
    job = create_job(b1, "Widget__c", "insert", "CSV")
    a, b, c, d = (unique("c27") for _ in range(4))
    first = add_batch(b1, job["id"], f"Name,Count__c\n{a},1\n,2\n{b},3\n")  # row 2: no Name
    second = add_batch(b1, job["id"], f"Name,Count__c\n{c},4\n{d},5\n")
    done1 = wait_batch(b1, job["id"], first["id"])
    done2 = wait_batch(b1, job["id"], second["id"])
    assert done1["state"] == done2["state"] == "Completed"
    assert (num(done1, "numberRecordsProcessed"), num(done1, "numberRecordsFailed")) == (3, 1)
    assert (num(done2, "numberRecordsProcessed"), num(done2, "numberRecordsFailed")) == (2, 0)
    info = get_job(b1, job["id"])
    assert info["state"] == "Open"  # batches ran while the job was still open
    assert {
        k: num(info, k)
        for k in (
            "numberBatchesQueued",
            "numberBatchesInProgress",
            "numberBatchesCompleted",
            "numberBatchesFailed",
            "numberBatchesTotal",
            "numberRecordsProcessed",
            "numberRecordsFailed",
            "numberRetries",
        )
    } == {
        "numberBatchesQueued": 0,
        "numberBatchesInProgress": 0,
        "numberBatchesCompleted": 2,
        "numberBatchesFailed": 0,
        "numberBatchesTotal": 2,
        "numberRecordsProcessed": 5,
        "numberRecordsFailed": 1,
        "numberRetries": 0,
    }
    for name, count in ((a, 1), (b, 3), (c, 4), (d, 5)):
        assert db_widget(server, name)["Count__c"] == count
    closed = close_job(b1, job["id"])
    assert num(closed, "numberRecordsProcessed") == 5 and closed["state"] == "Closed"


def test_b1_27_job_counters_with_a_failed_batch(b1: httpx.Client) -> None:
    job = create_job(b1, "Widget__c", "insert", "JSON", fmt="json")
    ok = add_batch(b1, job["id"], json.dumps([{"Name": unique("j27")}]), "JSON")
    bad = add_batch(b1, job["id"], json.dumps([{"Name": "x", "Bogus__c": 1}]), "JSON")
    assert wait_batch(b1, job["id"], ok["id"], "json")["state"] == "Completed"
    assert wait_batch(b1, job["id"], bad["id"], "json")["state"] == "Failed"
    info = get_job(b1, job["id"], "json")
    assert info["numberBatchesCompleted"] == 1 and info["numberBatchesFailed"] == 1
    assert info["numberBatchesTotal"] == 2 and info["numberBatchesQueued"] == 0
    assert info["numberRecordsProcessed"] == 1 and info["numberRecordsFailed"] == 0


def test_b1_28_unknown_header_field_fails_batch(b1: httpx.Client, server: Server) -> None:
    name = unique("b28")
    job_id, _, done = run_batch(b1, "Widget__c", "insert", f"Name,Bogus__c\n{name},1\n")
    assert done["state"] == "Failed", done
    assert done["stateMessage"] == "InvalidBatch : Field name not found : Bogus__c"
    assert num(done, "numberRecordsProcessed") == 0
    info = get_job(b1, job_id)
    assert num(info, "numberBatchesFailed") == 1 and num(info, "numberBatchesTotal") == 1
    assert db_query(server, 'SELECT "Id" FROM "Widget__c" WHERE "Name" = ?', (name,)) == []


@pytest.mark.parametrize("job_type", ["CSV", "JSON", "XML"])
def test_b1_29_list_batches(b1: httpx.Client, job_type: str) -> None:
    fmt = fmt_of_job(job_type)
    job = create_job(b1, "Widget__c", "insert", job_type, fmt=fmt)
    r = b1.get(f"{JOB}/{job['id']}/batch")
    assert r.status_code == 200, r.text
    if fmt == "xml":
        root = parse_xml(r, "batchInfoList")
        assert len(root) == 0 and not (root.text or "").strip()
    else:
        assert media(r) == "application/json" and r.json() == {"batchInfo": []}
    data = {
        "CSV": lambda n: f"Name\n{n}\n",
        "JSON": lambda n: json.dumps([{"Name": n}]),
        "XML": lambda n: sobjects_xml([{"Name": n}]),
    }[job_type]
    ids = [add_batch(b1, job["id"], data(unique("b29")), job_type)["id"] for _ in range(3)]
    listed = list_batches(b1, job["id"], fmt)
    assert [b["id"] for b in listed] == ids
    assert all(b["jobId"] == job["id"] for b in listed)
    for bid in ids:
        wait_batch(b1, job["id"], bid, fmt)
    assert [b["state"] for b in list_batches(b1, job["id"], fmt)] == ["Completed"] * 3


@pytest.mark.parametrize(
    ("job_type", "payload"),
    [
        ("CSV", 'Name,Notes__c\r\n{n},"multi\r\nline, ""quoted"" – ünï"\r\n'.encode()),
        ("CSV", b"Name\n{n}\n"),
        ("JSON", b'[ {"Name": "{n}", "Count__c": 2} ]\n'),
        ("XML", sobjects_xml([{"Name": "{n}", "Notes__c": "a < b & ü"}]).encode()),
    ],
    ids=["csv-crlf-unicode", "csv-plain", "json", "xml"],
)
def test_b1_30_batch_request_round_trip(b1: httpx.Client, job_type: str, payload: bytes) -> None:
    fmt = fmt_of_job(job_type)
    job = create_job(b1, "Widget__c", "insert", job_type, fmt=fmt)
    data = payload.replace(b"{n}", unique("b30").encode())
    batch = add_batch(b1, job["id"], data, job_type)
    for _ in range(2):  # before and after processing
        r = b1.get(f"{JOB}/{job['id']}/batch/{batch['id']}/request")
        assert r.status_code == 200, r.text
        assert media(r) == MEDIA[job_type]
        assert r.content == data
        done = wait_batch(b1, job["id"], batch["id"], fmt)
    assert done["state"] == "Completed" and num(done, "numberRecordsFailed") == 0, done


def test_b1_30_request_of_gzipped_batch_is_unzipped(b1: httpx.Client) -> None:
    job = create_job(b1, "Widget__c", "insert", "CSV")
    data = f"Name\n{unique('gz')}\n".encode()
    r = post_batch(b1, job["id"], gzip.compress(data), "text/csv", **{"Content-Encoding": "gzip"})
    batch = read_batch(r, "xml", 201)
    r = b1.get(f"{JOB}/{job['id']}/batch/{batch['id']}/request")
    assert r.status_code == 200 and media(r) == "text/csv"
    assert r.content == data


# ---------------------------------------------------------------- results (B1-31...B1-37)


def test_b1_31_csv_results_in_input_order(b1: httpx.Client, server: Server) -> None:
    names = [unique("r31") for _ in range(5)]
    rows = [f"{names[0]},1", f"{names[1]},2", ",3", f"{names[3]},4", f"{names[4]},x"]
    body = "Name,NumberOfEmployees\n" + "".join(f"{r}\n" for r in rows)
    job_id, batch_id, done = run_batch(b1, "Account", "insert", body)
    assert done["state"] == "Completed"
    assert (num(done, "numberRecordsProcessed"), num(done, "numberRecordsFailed")) == (5, 2)
    r = b1.get(result_url(job_id, batch_id))
    assert media(r) == "text/csv"
    assert r.text.startswith(RESULT_HEADER + "\n")
    results = csv_results(b1, job_id, batch_id)
    assert [x["Success"] for x in results] == ["true", "true", "false", "true", "false"]
    for i in (0, 1, 3):
        assert_id18(results[i]["Id"], "001")  # C-07
        assert results[i]["Created"] == "true" and results[i]["Error"] == ""
        assert db_one(server, "Account", results[i]["Id"])["Name"] == names[i]
    assert len({results[i]["Id"] for i in (0, 1, 3)}) == 3
    assert results[4]["Error"].startswith("INVALID_TYPE_ON_FIELD_IN_RECORD:"), results[4]
    assert results[4]["Error"].endswith(":NumberOfEmployees --"), results[4]


def test_b1_32_failed_csv_row(b1: httpx.Client) -> None:
    job_id, batch_id, _ = run_batch(b1, "Account", "insert", "Name,Phone\n,555\n")
    r = b1.get(result_url(job_id, batch_id))
    assert r.text == (
        RESULT_HEADER + "\n"
        '"","false","false","REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --"\n'
    )
    contact_job, contact_batch, _ = run_batch(b1, "Contact", "insert", "FirstName\nAda\n")
    (row,) = csv_results(b1, contact_job, contact_batch)
    assert row == {
        "Id": "",
        "Success": "false",
        "Created": "false",
        "Error": "REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --",
    }


def test_b1_33_created_only_for_inserts(b1: httpx.Client, server: Server) -> None:
    s1, s2, s3 = sku(), sku(), sku()
    ids = insert_widgets(b1, "Name,Sku__c", [f"{unique('c33')},{s1}", f"{unique('c33')},{s2}"])
    for rid in ids:
        assert_id18(rid, ids[0][:3])
    # update
    job_id, batch_id, _ = run_batch(b1, "Widget__c", "update", f"Id,Count__c\n{ids[0]},7\n")
    (upd,) = csv_results(b1, job_id, batch_id)
    assert (upd["Id"], upd["Success"], upd["Created"]) == (ids[0], "true", "false")
    # upsert: one match → update, no match → insert
    job_id, batch_id, _ = run_batch(
        b1,
        "Widget__c",
        "upsert",
        f"Sku__c,Name\n{s2},{unique('u')}\n{s3},{unique('u')}\n",
        externalIdFieldName="Sku__c",
    )
    up = csv_results(b1, job_id, batch_id)
    assert [(x["Success"], x["Created"]) for x in up] == [("true", "false"), ("true", "true")]
    assert up[0]["Id"] == ids[1]
    assert_id18(up[1]["Id"], ids[0][:3])
    # delete
    job_id, batch_id, _ = run_batch(b1, "Widget__c", "delete", f"Id\n{ids[0]}\n")
    (dl,) = csv_results(b1, job_id, batch_id)
    assert (dl["Id"], dl["Success"], dl["Created"]) == (ids[0], "true", "false")
    assert db_one(server, "Widget__c", ids[0])["IsDeleted"]
    assert db_one(server, "Widget__c", ids[1])["Count__c"] is None
    assert db_one(server, "Widget__c", up[1]["Id"])["Sku__c"] == s3


def test_b1_34_xml_results(b1: httpx.Client, server: Server) -> None:
    good = unique("x34")
    data = sobjects_xml([{"Name": good, "Count__c": 3}, {"Count__c": 4}])
    job_id, batch_id, done = run_batch(b1, "Widget__c", "insert", data, "XML")
    assert done["state"] == "Completed", done
    assert (num(done, "numberRecordsProcessed"), num(done, "numberRecordsFailed")) == (2, 1)
    r = b1.get(result_url(job_id, batch_id))
    assert media(r) == "application/xml"
    ok, bad = xml_results(b1, job_id, batch_id)
    assert ok["errors"] == [] and ok["success"] == "true" and ok["created"] == "true"
    assert_id18(ok["id"])
    assert db_one(server, "Widget__c", ok["id"])["Name"] == good
    assert "id" not in bad and bad["success"] == "false" and bad["created"] == "false"
    assert bad["errors"] == [
        {
            "fields": ["Name"],
            "message": "Required fields are missing: [Name]",
            "statusCode": "REQUIRED_FIELD_MISSING",
        }
    ]


def test_b1_35_json_results(b1: httpx.Client, server: Server) -> None:
    good = unique("j35")
    data = json.dumps([{"Name": good}, {"Count__c": 1}, {"Name": unique("j35"), "Count__c": "x"}])
    job_id, batch_id, done = run_batch(b1, "Widget__c", "insert", data, "JSON")
    assert done["state"] == "Completed"
    assert (done["numberRecordsProcessed"], done["numberRecordsFailed"]) == (3, 2)
    ok, missing, wrong = json_results(b1, job_id, batch_id)
    assert ok["success"] is True and ok["created"] is True and ok["errors"] == []
    assert_id18(ok["id"])
    assert db_one(server, "Widget__c", ok["id"])["Name"] == good
    assert missing == {
        "success": False,
        "created": False,
        "id": None,
        "errors": [
            {
                "statusCode": "REQUIRED_FIELD_MISSING",
                "message": "Required fields are missing: [Name]",
                "fields": ["Name"],
            }
        ],
    }
    assert wrong["success"] is False and wrong["id"] is None
    (err,) = wrong["errors"]
    assert err["statusCode"] == "INVALID_TYPE_ON_FIELD_IN_RECORD" and err["fields"] == ["Count__c"]
    assert err["message"] == "Count: value not of required type: x"


def test_b1_36_response_content_types_are_bare(b1: httpx.Client) -> None:
    seen: list[tuple[str, str]] = []

    def note(what: str, r: httpx.Response) -> httpx.Response:
        seen.append((what, r.headers.get("content-type", "")))
        return r

    for job_type in ("CSV", "XML", "JSON"):
        fmt = fmt_of_job(job_type)
        expected = MEDIA["JSON"] if fmt == "json" else MEDIA["XML"]
        body = {"operation": "insert", "object": "Widget__c", "contentType": job_type}
        for req_fmt in ("xml", "json"):
            r = note("create", post_job(b1, json.dumps(body) if req_fmt == "json" else job_xml(body),
                                        MEDIA[req_fmt.upper()]))  # fmt: skip
            assert media(r) == MEDIA[req_fmt.upper()]
        job_id = read_job(r, "json", 201)["id"]
        data = {
            "CSV": f"Name\n{unique('ct')}\n",
            "JSON": json.dumps([{"Name": unique("ct")}]),
            "XML": sobjects_xml([{"Name": unique("ct")}]),
        }[job_type]
        r = note("batch", post_batch(b1, job_id, data, MEDIA[job_type]))
        assert media(r) == expected
        batch_id = read_batch(r, fmt, 201)["id"]
        wait_batch(b1, job_id, batch_id, fmt)
        for path in ("", "/batch", f"/batch/{batch_id}"):
            assert media(note("get", b1.get(f"{JOB}/{job_id}{path}"))) == expected
        assert (
            media(note("request", b1.get(f"{JOB}/{job_id}/batch/{batch_id}/request")))
            == (MEDIA[job_type])
        )
        assert media(note("result", b1.get(result_url(job_id, batch_id)))) == MEDIA[job_type]
        r = note("error", b1.get(f"{JOB}/{job_id}/batch/{unknown_id('751')}"))
        assert r.status_code == 400 and media(r) == expected
        assert media(note("close", update_job(b1, job_id, "Closed", "xml"))) == MEDIA["XML"]
    for what, value in seen:
        assert value in ("application/xml", "application/json", "text/csv"), (what, value)


def test_b1_37_result_of_failed_batch(b1: httpx.Client) -> None:
    job_id, batch_id, done = run_batch(b1, "Widget__c", "insert", "Name,Nope__c\nx,y\n")
    assert done["state"] == "Failed" and num(done, "numberRecordsProcessed") == 0
    assert_error(b1.get(result_url(job_id, batch_id)), 400, "InvalidBatch", "Records not processed")
    json_job, json_batch, done = run_batch(
        b1, "Widget__c", "insert", json.dumps([{"Name": "x", "Nope__c": 1}]), "JSON"
    )
    assert done["state"] == "Failed"
    r = b1.get(result_url(json_job, json_batch))
    assert_error(r, 400, "InvalidBatch", "Records not processed", "json")


# ---------------------------------------------------------------- spec, codes, values (B1-44...)


def test_b1_44_transformation_spec(b1: httpx.Client, server: Server) -> None:
    job = create_job(b1, "Widget__c", "insert", "CSV")
    spec = (
        "Salesforce Field,Csv Header,Value,Hint\n"
        "Name,Widget Name,,\n"
        "Sku__c,Item Code,,\n"
        "Count__c,,7,\n"
    )
    r = b1.post(f"{JOB}/{job['id']}/spec", content=spec, headers={"Content-Type": "text/csv"})
    assert r.status_code == 201, r.text
    name, code = unique("spec"), sku()
    batch = add_batch(b1, job["id"], f"Widget Name,Item Code\n{name},{code}\n")
    done = wait_batch(b1, job["id"], batch["id"])
    assert done["state"] == "Completed" and num(done, "numberRecordsFailed") == 0, done
    row = db_widget(server, name)
    assert row["Sku__c"] == code and row["Count__c"] == 7
    # a spec after the first batch is refused
    r = b1.post(f"{JOB}/{job['id']}/spec", content=spec, headers={"Content-Type": "text/csv"})
    assert_error(r, 400, "InvalidJobState")


def test_b1_45_exception_codes_are_wsc_enum_members(b1: httpx.Client, server: Server) -> None:
    job = create_job(b1, "Widget__c", "insert", "CSV")
    requests: list[httpx.Response] = [
        post_job(b1, "<jobInfo"),
        post_job(b1, job_xml({"operation": "nope", "object": "Widget__c"})),
        post_job(b1, job_xml({"operation": "insert", "object": "Nope__c"})),
        post_job(
            b1, job_xml({"operation": "insert", "object": "Account", "contentType": "ZIP_CSV"})
        ),
        b1.get(f"{JOB}/{unknown_id('750')}"),
        b1.get(f"{JOB}/{job['id']}/batch/{unknown_id('751')}"),
        post_batch(b1, job["id"], "x", "application/pdf"),
        post_batch(b1, job["id"], "x", "application/xml"),
        update_job(b1, job["id"], "Open"),
        b1.get(f"/services/async/12.0/job/{job['id']}"),
        b1.get(f"{ASYNC}/nothing/here"),
        b1.put(f"{JOB}/{job['id']}"),
        httpx.get(f"{server.url}{JOB}/{job['id']}"),
    ]
    for r in requests:
        assert r.status_code >= 400, r.text
        code, _ = read_error(r, "xml")
        assert code in EXCEPTION_CODES


def test_b1_46_na_nulls_and_blank_keeps(b1: httpx.Client, server: Server) -> None:
    (rid,) = insert_widgets(b1, "Name,Notes__c,Count__c,Color__c", [f"{unique('n')},n,3,Red"])
    job_id, batch_id, done = run_batch(
        b1, "Widget__c", "update", f"Id,Notes__c,Count__c,Color__c\n{rid},#N/A,,#N/A\n"
    )
    assert num(done, "numberRecordsFailed") == 0, csv_results(b1, job_id, batch_id)
    row = db_one(server, "Widget__c", rid)
    assert row["Notes__c"] is None and row["Color__c"] is None
    assert row["Count__c"] == 3
    # #N/A on insert: not set; blank on upsert: unchanged
    code = sku()
    (rid2,) = insert_widgets(b1, "Name,Sku__c,Count__c", [f"{unique('n')},{code},#N/A"])
    assert db_one(server, "Widget__c", rid2)["Count__c"] is None
    run_batch(
        b1, "Widget__c", "upsert", f"Sku__c,Count__c,Notes__c\n{code},9,\n",
        externalIdFieldName="Sku__c",
    )  # fmt: skip
    row = db_one(server, "Widget__c", rid2)
    assert row["Count__c"] == 9 and row["Notes__c"] is None


def test_b1_47_xsi_nil_and_json_null(b1: httpx.Client, server: Server) -> None:
    ids = insert_widgets(
        b1, "Name,Notes__c,Count__c", [f"{unique('x')},keep,1", f"{unique('j')},keep,2"]
    )
    data = sobjects_xml([{"Id": ids[0], "Notes__c": None}])
    job_id, batch_id, done = run_batch(b1, "Widget__c", "update", data, "XML")
    assert done["state"] == "Completed" and num(done, "numberRecordsFailed") == 0
    assert [x["success"] for x in xml_results(b1, job_id, batch_id)] == ["true"]
    row = db_one(server, "Widget__c", ids[0])
    assert row["Notes__c"] is None and row["Count__c"] == 1
    data = json.dumps([{"Id": ids[1], "Notes__c": None, "Count__c": None}])
    job_id, batch_id, done = run_batch(b1, "Widget__c", "update", data, "JSON")
    assert done["state"] == "Completed" and done["numberRecordsFailed"] == 0
    row = db_one(server, "Widget__c", ids[1])
    assert row["Notes__c"] is None and row["Count__c"] is None


def test_b1_48_upsert_matching(b1: httpx.Client, server: Server) -> None:
    one, shared, fresh = sku(), sku(), sku()
    ids = insert_widgets(
        b1,
        "Name,Code__c",
        [f"{unique('u')},{one}", f"{unique('u')},{shared}", f"{unique('u')},{shared}"],
    )
    fresh_name = unique("fresh")
    body = f"Code__c,Name,Count__c\n{one},,11\n{fresh},{fresh_name},12\n{shared},,13\n"
    job_id, batch_id, done = run_batch(
        b1, "Widget__c", "upsert", body, externalIdFieldName="Code__c"
    )
    assert (num(done, "numberRecordsProcessed"), num(done, "numberRecordsFailed")) == (3, 1)
    upd, ins, dup = csv_results(b1, job_id, batch_id)
    assert (upd["Id"], upd["Success"], upd["Created"]) == (ids[0], "true", "false")
    assert ins["Success"] == "true" and ins["Created"] == "true" and ins["Id"] not in ids
    assert dup["Success"] == "false" and dup["Created"] == "false"
    assert dup["Error"].startswith("DUPLICATE_EXTERNAL_ID:Code: more than one record found for "
                                   "external id field: ["), dup  # fmt: skip
    assert dup["Error"].endswith(":Code__c --"), dup
    assert db_one(server, "Widget__c", ids[0])["Count__c"] == 11
    assert db_one(server, "Widget__c", ins["Id"])["Code__c"] == fresh
    assert db_one(server, "Widget__c", ins["Id"])["Name"] == fresh_name
    assert [db_one(server, "Widget__c", i)["Count__c"] for i in ids[1:]] == [None, None]


WRONG_METHODS = [
    ("PUT", ""),
    ("DELETE", ""),
    ("GET", "/job"),
    ("PATCH", "/job"),
    ("DELETE", "/job/{job}"),
    ("PUT", "/job/{job}"),
    ("PATCH", "/job/{job}"),
    ("PUT", "/job/{job}/batch"),
    ("DELETE", "/job/{job}/batch"),
    ("DELETE", "/job/{job}/batch/{batch}"),
    ("POST", "/job/{job}/batch/{batch}"),
    ("PUT", "/job/{job}/batch/{batch}"),
    ("POST", "/job/{job}/batch/{batch}/request"),
    ("POST", "/job/{job}/batch/{batch}/result"),
    ("DELETE", "/job/{job}/batch/{batch}/result"),
    ("GET", "/job/{job}/spec"),
    ("PUT", "/job/{job}/spec"),
]


def test_b1_49_wrong_method(b1: httpx.Client) -> None:
    job = create_job(b1, "Widget__c", "insert", "CSV")
    batch = add_batch(b1, job["id"], widget_csv([unique("m")]))
    for method, path in WRONG_METHODS:
        url = (JOB if path == "" else ASYNC + path).format(job=job["id"], batch=batch["id"])
        with case(f"{method} {url}"):
            assert_error(b1.request(method, url), 405, "InvalidUrl")
    info = get_job(b1, job["id"])
    assert info["state"] == "Open" and num(info, "numberBatchesTotal") == 1


# ---------------------------------------------------------------- common (C) and more


def test_c01_gzip_bodies(b1: httpx.Client, server: Server) -> None:
    gz = {"Content-Encoding": "gzip"}
    body = job_xml({"operation": "insert", "object": "Widget__c", "contentType": "CSV"})
    info = read_job(post_job(b1, gzip.compress(body.encode()), **gz), "xml", 201)
    name = unique("gz")
    r = post_batch(b1, info["id"], gzip.compress(widget_csv([name]).encode()), "text/csv", **gz)
    batch = read_batch(r, "xml", 201)
    assert wait_batch(b1, info["id"], batch["id"])["state"] == "Completed"
    db_widget(server, name)
    r = b1.post(
        f"{JOB}/{info['id']}",
        content=gzip.compress(json.dumps({"state": "Closed"}).encode()),
        headers={"Content-Type": "application/json", **gz},
    )
    assert read_job(r, "json")["state"] == "Closed"


def test_c03_trailing_slash(b1: httpx.Client) -> None:
    body = job_xml({"operation": "insert", "object": "Widget__c", "contentType": "CSV"})
    r = b1.post(f"{JOB}/", content=body, headers={"Content-Type": "application/xml"})
    info = read_job(r, "xml", 201)
    assert read_job(b1.get(f"{JOB}/{info['id']}/"), "xml")["id"] == info["id"]
    r = b1.post(
        f"{JOB}/{info['id']}/batch/", content="Name\nx\n", headers={"Content-Type": "text/csv"}
    )
    batch = read_batch(r, "xml", 201)
    assert b1.get(f"{JOB}/{info['id']}/batch/").status_code == 200
    assert (
        read_batch(b1.get(f"{JOB}/{info['id']}/batch/{batch['id']}/"), "xml")["id"] == (batch["id"])
    )
    r = b1.post(
        f"{JOB}/{info['id']}/",
        content=job_xml({"state": "Closed"}),
        headers={"Content-Type": "application/xml"},
    )
    assert read_job(r, "xml")["state"] == "Closed"


@pytest.mark.parametrize("version", ["31.0", "36.0", "40.0", "58.0", "66.0"])
def test_c04_supported_versions(b1: httpx.Client, version: str) -> None:
    base = f"/services/async/{version}/job"
    body = job_xml({"operation": "insert", "object": "Widget__c", "contentType": "CSV"})
    r = b1.post(base, content=body, headers={"Content-Type": "application/xml"})
    info = read_job(r, "xml", 201)
    assert info["apiVersion"] == version
    name = unique("v")
    r = b1.post(f"{base}/{info['id']}/batch", content=f"Name\n{name}\n",
                headers={"Content-Type": "text/csv"})  # fmt: skip
    batch = read_batch(r, "xml", 201)
    assert read_job(b1.get(f"{base}/{info['id']}"), "xml")["apiVersion"] == version
    assert wait_batch(b1, info["id"], batch["id"])["state"] == "Completed"


def test_classic_jobs_in_bulk2_job_list(b1: httpx.Client, server: Server) -> None:
    """B2-33: Bulk 1.0 jobs are listed with jobType Classic, and filtered out by V2Ingest."""
    job = create_job(b1, "Widget__c", "insert", "CSV")

    def listed(query: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        url: str | None = INGEST + query
        with server.client() as rest:
            while url:
                r = rest.get(url)
                assert r.status_code == 200, r.text
                page = r.json()
                out.extend(page["records"])
                url = page["nextRecordsUrl"]
        return out

    everything = {j["id"]: j for j in listed("")}
    assert job["id"] in everything
    assert everything[job["id"]]["jobType"] == "Classic"
    assert everything[job["id"]]["object"] == "Widget__c"
    assert job["id"] not in {j["id"] for j in listed("?jobType=V2Ingest")}
    assert job["id"] in {j["id"] for j in listed("?jobType=Classic")}


def test_relationships_in_csv_xml_and_json(b1: httpx.Client, server: Server) -> None:
    ext = unique("E")
    acc_id = insert_account(b1, ext)
    names = {k: unique(f"rel{k}") for k in ("csv", "xml", "json", "wcsv", "wxml", "wjson")}
    run_batch(b1, "Contact", "insert", f"LastName,Account.External_Id__c\n{names['csv']},{ext}\n")
    run_batch(
        b1, "Contact", "insert",
        sobjects_xml([{"LastName": names["xml"], "Account": {"External_Id__c": ext}}]), "XML",
    )  # fmt: skip
    run_batch(
        b1, "Contact", "insert",
        json.dumps([{"LastName": names["json"], "Account": {"External_Id__c": ext}}]), "JSON",
    )  # fmt: skip
    run_batch(b1, "Widget__c", "insert", f"Name,Account__r.External_Id__c\n{names['wcsv']},{ext}\n")
    run_batch(
        b1, "Widget__c", "insert",
        sobjects_xml([{"Name": names["wxml"], "Account__r": {"External_Id__c": ext}}]), "XML",
    )  # fmt: skip
    run_batch(
        b1, "Widget__c", "insert",
        json.dumps([{"Name": names["wjson"], "Account__r": {"External_Id__c": ext}}]), "JSON",
    )  # fmt: skip
    for k in ("csv", "xml", "json"):
        rows = db_query(
            server, 'SELECT "AccountId" FROM "Contact" WHERE "LastName" = ?', (names[k],)
        )
        assert rows == [{"AccountId": acc_id}], (k, rows)
    for k in ("wcsv", "wxml", "wjson"):
        assert db_widget(server, names[k])["Account__c"] == acc_id, k
    # an unknown parent key is a record error, not a batch failure
    data = json.dumps([{"LastName": unique("orphan"), "Account": {"External_Id__c": unique("no")}}])
    job_id, batch_id, done = run_batch(b1, "Contact", "insert", data, "JSON")
    assert done["state"] == "Completed" and done["numberRecordsFailed"] == 1
    (res,) = json_results(b1, job_id, batch_id)
    assert res["success"] is False and res["errors"][0]["statusCode"] == "INVALID_FIELD"


def test_json_batch_typed_values(b1: httpx.Client, server: Server) -> None:
    name = unique("typed")
    data = json.dumps(
        [
            {
                "Name": name,
                "Active__c": True,
                "Count__c": 5,
                "Price__c": 12.5,
                "Quantity__c": 3,
                "Released__c": "2024-03-01",
                "Color__c": "Green",
            }
        ]
    )
    job_id, batch_id, done = run_batch(b1, "Widget__c", "insert", data, "JSON")
    assert done["numberRecordsFailed"] == 0, json_results(b1, job_id, batch_id)
    row = db_widget(server, name)
    assert row["Active__c"] == 1 and row["Count__c"] == 5 and row["Price__c"] == 12.5
    assert row["Quantity__c"] == 3 and row["Released__c"] == "2024-03-01"
    assert row["Color__c"] == "Green"
    (res,) = json_results(b1, job_id, batch_id)
    assert res["id"] == row["Id"] and res["created"] is True


def test_xml_batch_values(b1: httpx.Client, server: Server) -> None:
    name = unique("xmlv")
    data = sobjects_xml(
        [{"Name": name, "Active__c": True, "Count__c": 6, "Notes__c": 'a <b> & "c" ü'}]
    )
    job_id, batch_id, done = run_batch(b1, "Widget__c", "insert", data, "XML")
    assert num(done, "numberRecordsFailed") == 0, xml_results(b1, job_id, batch_id)
    row = db_widget(server, name)
    assert row["Active__c"] == 1 and row["Count__c"] == 6
    assert row["Notes__c"] == 'a <b> & "c" ü'


def test_serial_job_and_delete(b1: httpx.Client, server: Server) -> None:
    job = create_job(b1, "Widget__c", "insert", "CSV", concurrencyMode="Serial")
    assert job["concurrencyMode"] == "Serial"
    batches = [add_batch(b1, job["id"], widget_csv([unique("s")])) for _ in range(3)]
    ids = []
    for b in batches:
        assert wait_batch(b1, job["id"], b["id"])["state"] == "Completed"
        ids.extend(r["Id"] for r in csv_results(b1, job["id"], b["id"]))
    info = wait_counters(b1, job["id"], 3)
    assert num(info, "numberRecordsProcessed") == 3
    job_id, batch_id, done = run_batch(
        b1, "Widget__c", "delete", "Id\n" + "".join(f"{i}\n" for i in ids)
    )
    assert num(done, "numberRecordsFailed") == 0
    assert all(r["Success"] == "true" for r in csv_results(b1, job_id, batch_id))
    assert all(db_one(server, "Widget__c", i)["IsDeleted"] for i in ids)


def test_batch_of_another_job(b1: httpx.Client) -> None:
    one = create_job(b1, "Widget__c", "insert", "CSV")
    two = create_job(b1, "Widget__c", "insert", "CSV")
    batch = add_batch(b1, one["id"], widget_csv([unique("o")]))
    wait_batch(b1, one["id"], batch["id"])
    for suffix in ("", "/request", "/result"):
        r = b1.get(f"{JOB}/{two['id']}/batch/{batch['id']}{suffix}")
        assert_error(r, 400, "InvalidBatch")
    assert get_batch(b1, one["id"], batch["id"])["state"] == "Completed"


@pytest.mark.parametrize("job_type", ["JSON", "XML"])
def test_unknown_field_in_json_or_xml_batch(
    b1: httpx.Client, server: Server, job_type: str
) -> None:
    name = unique("uf")
    records = [{"Name": name, "Bogus__c": "1"}]
    data = json.dumps(records) if job_type == "JSON" else sobjects_xml(records)
    _, _, done = run_batch(b1, "Widget__c", "insert", data, job_type)
    assert done["state"] == "Failed", done
    assert done["stateMessage"] == "InvalidBatch : Field name not found : Bogus__c"
    assert num(done, "numberRecordsProcessed") == 0
    assert db_query(server, 'SELECT "Id" FROM "Widget__c" WHERE "Name" = ?', (name,)) == []


def test_xml_batch_sent_as_text_xml_keeps_bytes(b1: httpx.Client) -> None:
    job = create_job(b1, "Widget__c", "insert", "XML")
    data = sobjects_xml([{"Name": unique("tx")}]).encode()
    batch = read_batch(post_batch(b1, job["id"], data, "text/xml; charset=UTF-8"), "xml", 201)
    r = b1.get(f"{JOB}/{job['id']}/batch/{batch['id']}/request")
    assert r.status_code == 200 and media(r) == "application/xml" and r.content == data


def test_concurrent_batches_on_one_job(b1: httpx.Client, server: Server) -> None:
    job = create_job(b1, "Widget__c", "insert", "CSV")
    tag = unique("par")

    def post(i: int) -> str:
        with b1_client(server) as c:
            body = "Name,Count__c\n" + "".join(f"{tag}-{i}-{j},{j}\n" for j in range(50))
            return str(add_batch(c, job["id"], body)["id"])

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(post, range(8)))
    assert len(set(ids)) == 8
    for bid in ids:
        done = wait_batch(b1, job["id"], bid)
        assert done["state"] == "Completed" and num(done, "numberRecordsProcessed") == 50
    info = get_job(b1, job["id"])
    assert num(info, "numberBatchesCompleted") == num(info, "numberBatchesTotal") == 8
    assert num(info, "numberRecordsProcessed") == 400 and num(info, "numberRecordsFailed") == 0
    assert sorted(b["id"] for b in list_batches(b1, job["id"])) == sorted(ids)
    rows = db_query(
        server, 'SELECT COUNT(*) AS n FROM "Widget__c" WHERE "Name" LIKE ?', (f"{tag}-%",)
    )
    assert rows == [{"n": 400}]


def test_upsert_on_id(b1: httpx.Client, server: Server) -> None:
    (rid,) = insert_widgets(b1, "Name,Count__c", [f"{unique('ui')},1"])
    fresh = unique("ui")
    job_id, batch_id, done = run_batch(
        b1, "Widget__c", "upsert", f"Id,Name,Count__c\n{rid},,2\n,{fresh},3\n",
        externalIdFieldName="Id",
    )  # fmt: skip
    assert num(done, "numberRecordsFailed") == 0, csv_results(b1, job_id, batch_id)
    upd, ins = csv_results(b1, job_id, batch_id)
    assert (upd["Id"], upd["Created"]) == (rid, "false")
    assert ins["Created"] == "true" and ins["Id"] != rid
    assert db_one(server, "Widget__c", rid)["Count__c"] == 2
    assert db_one(server, "Widget__c", ins["Id"])["Name"] == fresh


def test_invalid_session_json_request_gets_json(server: Server) -> None:
    with b1_client(server) as good:
        job = create_job(good, "Widget__c", "insert", "CSV")
    with httpx.Client(base_url=server.url, timeout=30) as raw:
        r = raw.get(f"{JOB}/{job['id']}", headers={"Content-Type": "application/json"})
        assert_error(r, 400, "InvalidSessionId", fmt="json")


def test_job_creation_headers_are_accepted(b1: httpx.Client, server: Server) -> None:
    """§2.9 request headers on an ingest job: accepted, and the job works as usual."""
    headers = {
        "Sforce-Disable-Batch-Retry": "TRUE",
        "Sforce-Line-Ending": "CRLF",
        "Sforce-Call-Options": "client=bulkforce-tests, defaultNamespace=ns",
        "X-PrettyPrint": "1",
        "Accept-Encoding": "gzip",
    }
    r = post_job(b1, json.dumps({**_GOOD, "contentType": "JSON"}), "application/json", **headers)
    info = read_job(r, "json", 201)
    assert r.headers.get("content-encoding") in (None, "gzip")
    name = unique("hdr")
    batch = add_batch(b1, info["id"], json.dumps([{"Name": name}]), "JSON")
    assert wait_batch(b1, info["id"], batch["id"], "json")["state"] == "Completed"
    db_widget(server, name)


def test_chunked_uploads(b1: httpx.Client) -> None:
    """Clients stream bodies with Transfer-Encoding: chunked and no Content-Length."""

    def chunks(data: bytes) -> Iterator[bytes]:
        for i in range(0, len(data), 7):
            yield data[i : i + 7]

    body = job_xml(_GOOD).encode()
    r = b1.post(JOB, content=chunks(body), headers={"Content-Type": "application/xml"})
    info = read_job(r, "xml", 201)
    data = (
        "Name,Notes__c\n" + "".join(f"{unique('ch')},{'x' * 100}\n" for _ in range(50))
    ).encode()
    r = b1.post(
        f"{JOB}/{info['id']}/batch", content=chunks(data), headers={"Content-Type": "text/csv"}
    )
    batch = read_batch(r, "xml", 201)
    done = wait_batch(b1, info["id"], batch["id"])
    assert done["state"] == "Completed" and num(done, "numberRecordsProcessed") == 50
    assert b1.get(f"{JOB}/{info['id']}/batch/{batch['id']}/request").content == data


def test_csv_bom_and_quoted_errors(b1: httpx.Client, server: Server) -> None:
    """A leading BOM is stripped; error text with commas and quotes is CSV-escaped."""
    name = unique("bom")
    data = f'\ufeffName,Count__c\n{name},1\n{unique("bom")},"a,""b"""\n'.encode()
    job_id, batch_id, done = run_batch(b1, "Widget__c", "insert", data)
    assert done["state"] == "Completed", done
    ok, bad = csv_results(b1, job_id, batch_id)
    assert ok["Success"] == "true" and db_widget(server, name)["Count__c"] == 1
    assert (
        bad["Error"]
        == 'INVALID_TYPE_ON_FIELD_IN_RECORD:Count: value not of required type: a,"b":Count__c --'
    )
    assert b1.get(f"{JOB}/{job_id}/batch/{batch_id}/request").content == data


def test_close_keeps_queued_batches_then_abort(make_server: Callable[..., Server]) -> None:
    srv = make_server("--schema", SCHEMA, "--workers", "0")
    with b1_client(srv) as c:
        job = create_job(c, "Widget__c", "insert", "JSON", fmt="json")
        batch = add_batch(c, job["id"], json.dumps([{"Name": "q"}]), "JSON")
        closed = close_job(c, job["id"], "json")
        assert closed["numberBatchesQueued"] == 1 and closed["numberBatchesTotal"] == 1
        assert get_batch(c, job["id"], batch["id"], "json")["state"] == "Queued"
        aborted = abort_job(c, job["id"], "json")
        assert aborted["numberBatchesQueued"] == 0 and aborted["numberBatchesTotal"] == 1
        assert get_batch(c, job["id"], batch["id"], "json")["state"] == "NotProcessed"
        assert_error(c.get(result_url(job["id"], batch["id"])), 400, "InvalidBatch", fmt="json")


def test_id15_of_a_job_and_batch(b1: httpx.Client) -> None:
    """ID-03 [REC]: the 15-char form of an id addresses the same job and batch."""
    job = create_job(b1, "Widget__c", "insert", "CSV")
    batch = add_batch(b1, job["id"], widget_csv([unique("i15")]))
    assert get_job(b1, job["id"][:15])["id"] == job["id"]
    assert get_batch(b1, job["id"][:15], batch["id"][:15])["id"] == batch["id"]


@pytest.mark.parametrize("media_type", ["application/json; charset=UTF-8", "Application/JSON"])
def test_c02_json_create_and_close_with_parameters(b1: httpx.Client, media_type: str) -> None:
    info = read_job(post_job(b1, json.dumps(_GOOD), media_type), "json", 201)
    r = b1.post(
        f"{JOB}/{info['id']}",
        content=json.dumps({"state": "Closed"}),
        headers={"Content-Type": media_type},
    )
    assert read_job(r, "json")["state"] == "Closed"


def test_polymorphic_relationship_in_xml_and_json(b1: httpx.Client, server: Server) -> None:
    """§2.5.2/§2.5.3: the nested sObject names its type (`type` child / `attributes.type`)."""
    ext = unique("who")
    run_batch(b1, "Contact", "insert", f"LastName,External_Id__c\nWho,{ext}\n")
    (contact_id,) = (
        r["Id"]
        for r in db_query(server, 'SELECT "Id" FROM "Contact" WHERE "External_Id__c" = ?', (ext,))
    )
    s_xml, s_json = unique("call"), unique("call")
    xml = sobjects_xml([{"Subject": s_xml, "Who": {"type": "Contact", "External_Id__c": ext}}])
    _, _, done = run_batch(b1, "Task", "insert", xml, "XML")
    assert done["state"] == "Completed" and num(done, "numberRecordsFailed") == 0, done
    data = json.dumps(
        [{"Subject": s_json, "Who": {"attributes": {"type": "Contact"}, "External_Id__c": ext}}]
    )
    job_id, batch_id, done = run_batch(b1, "Task", "insert", data, "JSON")
    assert done["numberRecordsFailed"] == 0, json_results(b1, job_id, batch_id)
    for subject in (s_xml, s_json):
        rows = db_query(server, 'SELECT "WhoId" FROM "Task" WHERE "Subject" = ?', (subject,))
        assert rows == [{"WhoId": contact_id}], (subject, rows)


def test_pretty_xml_batch_and_dates_with_zone(b1: httpx.Client, server: Server) -> None:
    """Indented XML batches parse; Bulk 1.0 accepts a date with `Z` (§2.5.1)."""
    name = unique("pretty")
    data = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<sObjects xmlns="{NS}">\n'
        f"  <sObject>\n    <Name>{name}</Name>\n    <Released__c>1940-06-07Z</Released__c>\n"
        "    <Count__c>4</Count__c>\n  </sObject>\n</sObjects>\n"
    )
    job_id, batch_id, done = run_batch(b1, "Widget__c", "insert", data, "XML")
    assert num(done, "numberRecordsFailed") == 0, xml_results(b1, job_id, batch_id)
    row = db_widget(server, name)
    assert row["Released__c"] == "1940-06-07" and row["Count__c"] == 4
    name2 = unique("zdate")
    job_id, batch_id, done = run_batch(
        b1, "Widget__c", "insert", f"Name,Released__c\n{name2},2024-03-01Z\n"
    )
    assert num(done, "numberRecordsFailed") == 0, csv_results(b1, job_id, batch_id)
    assert db_widget(server, name2)["Released__c"] == "2024-03-01"


def test_classic_job_counts_in_the_bulk2_list(b1: httpx.Client, server: Server) -> None:
    job = create_job(b1, "Widget__c", "insert", "CSV")
    batch = add_batch(b1, job["id"], f"Name\n{unique('l1')}\n{unique('l2')}\n\n")
    wait_batch(b1, job["id"], batch["id"])
    with httpx.Client(base_url=server.url, headers=server.headers(), timeout=30) as c:
        page = c.get(f"/services/data/v{API}/jobs/ingest", params={"jobType": "Classic"}).json()
        while job["id"] not in {j["id"] for j in page["records"]}:
            page = c.get(page["nextRecordsUrl"]).json()
    listed = next(j for j in page["records"] if j["id"] == job["id"])
    assert listed["jobType"] == "Classic"
    assert listed["numberRecordsProcessed"] == 2 and listed["numberRecordsFailed"] == 0
