"""Bulk API 1.0: every kind of bad input gets a Bulk 1.0 error (status, exceptionCode, format)
and the server keeps serving. Spec: /work/shared/spec/bulk-api.md §1.1-§1.3, §2.2-§2.5, §2.7,
§2.11-§2.13.
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from bulk1_helpers import (
    ASYNC,
    JOB,
    NS,
    UNABLE_TO_PARSE,
    Fmt,
    abort_job,
    add_batch,
    assert_error,
    assert_serving,
    b1_client,
    case,
    close_job,
    create_job,
    fmt_of_job,
    get_batch,
    get_job,
    job_xml,
    num,
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
    xml_results,
)
from bulk2_helpers import SCHEMA, bad_suffix, db_query, unknown_id
from conftest import Server, unique


@pytest.fixture
def b1(server: Server) -> Iterator[httpx.Client]:
    with b1_client(server) as c:
        yield c


def body_for(fmt: Fmt, fields: dict[str, Any]) -> str:
    return json.dumps(fields) if fmt == "json" else job_xml(fields)


def media_for(fmt: Fmt) -> str:
    return "application/json" if fmt == "json" else "application/xml"


def no_widget(server: Server, *names: str) -> None:
    marks = ",".join("?" for _ in names)
    rows = db_query(server, f'SELECT "Name" FROM "Widget__c" WHERE "Name" IN ({marks})', names)
    assert rows == [], rows


GOOD_JOB = {"operation": "insert", "object": "Widget__c", "contentType": "CSV"}
FORMATS: tuple[Fmt, ...] = ("xml", "json")

# ---------------------------------------------------------------- XML that is not XML

NOT_WELL_FORMED = {
    "truncated": f'<jobInfo xmlns="{NS}"><operation>insert</operation>',
    "mismatched": f'<jobInfo xmlns="{NS}"><operation>insert</object></jobInfo>',
    "plain-text": "operation=insert&object=Widget__c",
    "empty": "",
    "two-roots": f'<jobInfo xmlns="{NS}"/><jobInfo xmlns="{NS}"/>',
    "bad-bytes": "<jobInfo>\udcff</jobInfo>",
    "undeclared-prefix": "<a:jobInfo><a:operation>insert</a:operation></a:jobInfo>",
    "bare-ampersand": f'<jobInfo xmlns="{NS}"><object>A & B</object></jobInfo>',
}


def _raw(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + "".join(
        f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'
        for i in range(1, 10)
    )
    + "]>\n"
)


def dtd_bodies(root: str, inner: str) -> dict[str, str]:
    """XML documents with a DTD: internal/external entities, billion laughs, external DTD."""
    return {
        "billion-laughs": f'{LAUGHS}<{root} xmlns="{NS}">{inner.format(v="&lol9;")}</{root}>',
        "external-entity": (
            f'<?xml version="1.0"?><!DOCTYPE {root} [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
            f'<{root} xmlns="{NS}">{inner.format(v="&xxe;")}</{root}>'
        ),
        "internal-entity": (
            f'<?xml version="1.0"?><!DOCTYPE {root} [<!ENTITY w "Widget__c">]>'
            f'<{root} xmlns="{NS}">{inner.format(v="&w;")}</{root}>'
        ),
        "external-dtd": (
            f'<?xml version="1.0"?><!DOCTYPE {root} SYSTEM "http://127.0.0.1:9/evil.dtd">'
            f'<{root} xmlns="{NS}">{inner.format(v="Widget__c")}</{root}>'
        ),
        "parameter-entity": (
            f'<?xml version="1.0"?><!DOCTYPE {root} [<!ENTITY % p SYSTEM '
            f'"file:///etc/passwd"> %p;]><{root} xmlns="{NS}">{inner.format(v="Widget__c")}</{root}>'
        ),
        "bare-doctype": (
            f'<?xml version="1.0"?><!DOCTYPE {root}><{root} xmlns="{NS}">'
            f"{inner.format(v='Widget__c')}</{root}>"
        ),
    }


JOB_INNER = "<operation>insert</operation><object>{v}</object><contentType>CSV</contentType>"
CLOSE_INNER = "<state>Closed</state><!-- {v} -->"
BATCH_INNER = "<sObject><Name>{v}</Name></sObject>"


def assert_nothing_expanded(r: httpx.Response, started: float) -> None:
    assert time.monotonic() - started < 10, "entity expansion took too long"
    assert len(r.content) < 2000, len(r.content)
    assert "lollollol" not in r.text and "root:" not in r.text, r.text[:300]


@pytest.mark.parametrize("name", list(NOT_WELL_FORMED))
def test_not_well_formed_job_body(b1: httpx.Client, name: str) -> None:
    for content_type in ("application/xml", "text/csv", "text/xml; charset=UTF-8", None):
        with case(content_type):
            r = post_job(b1, _raw(NOT_WELL_FORMED[name]), content_type)
            assert_error(r, 400, "InvalidJob", UNABLE_TO_PARSE, fmt="xml")
    assert_serving(b1)


@pytest.mark.parametrize("case", list(dtd_bodies("jobInfo", JOB_INNER)))
def test_dtd_in_job_body(b1: httpx.Client, case: str) -> None:
    started = time.monotonic()
    r = post_job(b1, dtd_bodies("jobInfo", JOB_INNER)[case])
    assert_error(r, 400, "InvalidJob", UNABLE_TO_PARSE, fmt="xml")
    assert_nothing_expanded(r, started)
    assert_serving(b1)


@pytest.mark.parametrize("case", ["truncated", "mismatched", "empty", "bare-ampersand"])
def test_not_well_formed_close_body(b1: httpx.Client, case: str) -> None:
    job = create_job(b1, "Widget__c", "insert", "CSV")
    body = NOT_WELL_FORMED[case].replace("insert", "Closed").replace("operation", "state")
    r = b1.post(f"{JOB}/{job['id']}", content=body, headers={"Content-Type": "application/xml"})
    assert_error(r, 400, "InvalidJob", UNABLE_TO_PARSE, fmt="xml")
    assert get_job(b1, job["id"])["state"] == "Open"
    assert_serving(b1)


@pytest.mark.parametrize("case", list(dtd_bodies("jobInfo", CLOSE_INNER)))
def test_dtd_in_close_body(b1: httpx.Client, case: str) -> None:
    job = create_job(b1, "Widget__c", "insert", "CSV")
    started = time.monotonic()
    r = b1.post(
        f"{JOB}/{job['id']}",
        content=dtd_bodies("jobInfo", CLOSE_INNER)[case],
        headers={"Content-Type": "application/xml"},
    )
    assert_error(r, 400, "InvalidJob", UNABLE_TO_PARSE, fmt="xml")
    assert_nothing_expanded(r, started)
    assert get_job(b1, job["id"])["state"] == "Open"
    assert_serving(b1)


def test_bad_close_body_on_json_job_answers_json(b1: httpx.Client) -> None:
    """Errors on a known job use the job's format (R5 → R2), whatever the body was."""
    job = create_job(b1, "Widget__c", "insert", "JSON", fmt="json")
    r = b1.post(
        f"{JOB}/{job['id']}", content="<jobInfo", headers={"Content-Type": "application/xml"}
    )
    assert_error(r, 400, "InvalidJob", UNABLE_TO_PARSE, fmt="json")
    assert get_job(b1, job["id"], "json")["state"] == "Open"
    assert_serving(b1)


@pytest.mark.parametrize(
    "body",
    [
        "<sObjects",
        f'<sObjects xmlns="{NS}"><sObject><Name>x</sObject></sObjects>',
        f'<sObjects xmlns="{NS}"><sObject><Name>a & b</Name></sObject></sObjects>',
        "Name\nx\n",
        "",
    ],
    ids=["truncated", "mismatched", "bare-ampersand", "csv-text", "empty"],
)
def test_not_well_formed_xml_batch(b1: httpx.Client, body: str) -> None:
    job = create_job(b1, "Widget__c", "insert", "XML")
    accepted_then_failed(b1, job["id"], body, "application/xml", "xml")
    assert_serving(b1)


def accepted_then_failed(
    b1: httpx.Client, job_id: str, body: str | bytes, media_type: str, fmt: Any, **headers: str
) -> dict[str, Any]:
    """Salesforce takes any batch body (201, Queued) and fails the batch that cannot be read
    when it processes it, with a stateMessage (issue #9 item 9)."""
    batch = read_batch(post_batch(b1, job_id, body, media_type, **headers), fmt, 201)
    done = wait_batch(b1, job_id, batch["id"], fmt)
    assert done["state"] == "Failed", done
    assert done["stateMessage"].startswith("InvalidBatch : "), done
    assert num(done, "numberRecordsProcessed") == 0
    assert_error(b1.get(result_url(job_id, batch["id"])), 400, "InvalidBatch", fmt=fmt)
    return done


@pytest.mark.parametrize("case", list(dtd_bodies("sObjects", BATCH_INNER)))
def test_dtd_in_xml_batch(b1: httpx.Client, server: Server, case: str) -> None:
    job = create_job(b1, "Widget__c", "insert", "XML")
    started = time.monotonic()
    done = accepted_then_failed(
        b1, job["id"], dtd_bodies("sObjects", BATCH_INNER)[case], "application/xml", "xml"
    )
    assert time.monotonic() - started < 10, "entity expansion took too long"
    assert "lollollol" not in done["stateMessage"] and "root:" not in done["stateMessage"]
    rows = db_query(server, 'SELECT "Name" FROM "Widget__c" WHERE "Name" LIKE ?', ("lollol%",))
    assert rows == []
    assert_serving(b1)


# ---------------------------------------------------------------- unusable JobInfo


@pytest.mark.parametrize(
    "body",
    [
        f'<batchInfo xmlns="{NS}"><operation>insert</operation><object>Widget__c</object>'
        "</batchInfo>",
        '<jobInfo xmlns="urn:not-the-dataload-ns"><operation>insert</operation>'
        "<object>Widget__c</object></jobInfo>",
        "<foo/>",
        f'<jobInfo xmlns="{NS}"><operation><insert/></operation><object>Widget__c</object>'
        "</jobInfo>",
    ],
    ids=["wrong-root", "wrong-namespace", "foreign-root", "element-in-operation"],
)
def test_well_formed_but_unusable_job(b1: httpx.Client, body: str) -> None:
    assert_error(post_job(b1, body), 400, "InvalidJob", UNABLE_TO_PARSE)
    assert_serving(b1)


@pytest.mark.parametrize(
    "body",
    ["{not json", '["insert", "Widget__c"]', '"insert"', "42", "null", ""],
    ids=["broken", "array", "string", "number", "null", "empty"],
)
def test_json_job_body_not_an_object(b1: httpx.Client, body: str) -> None:
    r = post_job(b1, body, "application/json")
    assert_error(r, 400, "InvalidJob", UNABLE_TO_PARSE, "json")
    assert_serving(b1)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("operation", "INSERT"),
        ("operation", "Insert"),
        ("operation", "upsertt"),
        ("operation", "merge"),
        ("contentType", "TSV"),
        ("contentType", "text/csv"),
        ("concurrencyMode", "Fast"),
        ("concurrencyMode", "Sequential"),
    ],
)
def test_unknown_enum_value(b1: httpx.Client, field: str, value: str) -> None:
    for fmt in FORMATS:
        with case(fmt):
            r = post_job(b1, body_for(fmt, {**GOOD_JOB, field: value}), media_for(fmt))
            assert_error(r, 400, "InvalidJob", UNABLE_TO_PARSE, fmt)
    assert_serving(b1)


def test_json_concurrency_mode_out_of_range(b1: httpx.Client) -> None:
    for mode in (2, -1, True, False, 1.5, [0], {"v": 0}):
        with case(mode):
            body = json.dumps({**GOOD_JOB, "concurrencyMode": mode})
            assert_error(post_job(b1, body, "application/json"), 400, "InvalidJob",
                         UNABLE_TO_PARSE, "json")  # fmt: skip
    assert_serving(b1)


@pytest.mark.parametrize("fmt", ["xml", "json"])
@pytest.mark.parametrize("missing", ["operation", "object"])
def test_missing_operation_or_object(b1: httpx.Client, fmt: Fmt, missing: str) -> None:
    fields = {k: v for k, v in GOOD_JOB.items() if k != missing}
    assert_error(post_job(b1, body_for(fmt, fields), media_for(fmt)), 400, "InvalidJob", fmt=fmt)
    assert_serving(b1)


@pytest.mark.parametrize("obj", ["Nope__c", "Account; DROP TABLE Account", "Widget__c_x", "bf_job"])
def test_unknown_object(b1: httpx.Client, obj: str) -> None:
    r = post_job(b1, body_for("xml", {**GOOD_JOB, "object": obj}))
    assert_error(r, 400, "InvalidEntity", f"Entity '{obj}' is not supported by the Bulk API.")
    r = post_job(b1, body_for("json", {**GOOD_JOB, "object": obj}), "application/json")
    assert_error(
        r, 400, "InvalidEntity", f"Entity '{obj}' is not supported by the Bulk API.", "json"
    )
    assert_serving(b1)


@pytest.mark.parametrize("field", ["Name", "Count__c", "Nope__c", "Sku__c.x"])
def test_external_id_field_not_an_external_id(b1: httpx.Client, field: str) -> None:
    r = post_job(
        b1, body_for("xml", {**GOOD_JOB, "operation": "upsert", "externalIdFieldName": field})
    )
    assert_error(r, 400, "InvalidJob")
    assert_serving(b1)


@pytest.mark.parametrize("content_type", ["ZIP_CSV", "ZIP_XML", "ZIP_JSON"])
@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_zip_content_types_not_enabled(b1: httpx.Client, content_type: str, fmt: Fmt) -> None:
    r = post_job(b1, body_for(fmt, {**GOOD_JOB, "contentType": content_type}), media_for(fmt))
    assert_error(r, 400, "FeatureNotEnabled", fmt=fmt)
    assert_serving(b1)


READ_ONLY = [
    ("createdById", "005R0000000wXyZIAU", "CreatedById"),
    ("createdDate", "2024-05-01T10:00:00.000Z", "CreatedDate"),
    ("systemModstamp", "2024-05-01T10:00:00.000Z", "SystemModstamp"),
    ("numberBatchesTotal", 0, "NumberBatchesTotal"),
    ("numberBatchesQueued", 0, "NumberBatchesQueued"),
    ("numberRecordsProcessed", 0, "NumberRecordsProcessed"),
    ("numberRetries", 0, "NumberRetries"),
    ("apiVersion", 59.0, "ApiVersion"),
    ("totalProcessingTime", 0, "TotalProcessingTime"),
]


@pytest.mark.parametrize(("field", "value", "label"), READ_ONLY)
def test_read_only_field_on_create(b1: httpx.Client, field: str, value: Any, label: str) -> None:
    for fmt in FORMATS:
        with case(fmt):
            r = post_job(b1, body_for(fmt, {**GOOD_JOB, field: value}), media_for(fmt))
            assert_error(r, 400, "InvalidJob", f"{label} cannot be specified", fmt)
    assert_serving(b1)


def test_state_open_tolerated_on_create(b1: httpx.Client) -> None:
    info = read_job(post_job(b1, job_xml({**GOOD_JOB, "state": "Open"})), "xml", 201)
    assert info["state"] == "Open"


@pytest.mark.parametrize(("field", "value", "label"), READ_ONLY)
def test_read_only_field_on_close(b1: httpx.Client, field: str, value: Any, label: str) -> None:
    job = create_job(b1, "Widget__c", "insert", "CSV")
    for fmt in FORMATS:
        with case(fmt):
            r = b1.post(
                f"{JOB}/{job['id']}",
                content=body_for(fmt, {field: value, "state": "Closed"}),
                headers={"Content-Type": media_for(fmt)},
            )
            # a CSV job is known: its errors are XML whatever the request format (R5)
            assert_error(r, 400, "InvalidJob", f"{label} cannot be specified", "xml")
    assert get_job(b1, job["id"])["state"] == "Open"
    assert_serving(b1)


@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_close_body_with_other_job_id(b1: httpx.Client, fmt: Fmt) -> None:
    job = create_job(b1, "Widget__c", "insert", "CSV")
    other = create_job(b1, "Widget__c", "insert", "CSV")
    for wrong in (other["id"], unknown_id("750"), "nope"):
        r = b1.post(
            f"{JOB}/{job['id']}",
            content=body_for(fmt, {"id": wrong, "state": "Closed"}),
            headers={"Content-Type": media_for(fmt)},
        )
        assert_error(r, 400, "InvalidJob")
    assert get_job(b1, job["id"])["state"] == "Open"
    assert get_job(b1, other["id"])["state"] == "Open"
    assert_serving(b1)


@pytest.mark.parametrize(
    "extra",
    [{"operation": "delete"}, {"object": "Account"}, {"contentType": "JSON"},
     {"externalIdFieldName": "Sku__c"}, {"concurrencyMode": "Serial"}],
)  # fmt: skip
def test_close_body_with_other_client_fields(b1: httpx.Client, extra: dict[str, str]) -> None:
    job = create_job(b1, "Widget__c", "insert", "CSV")
    r = b1.post(
        f"{JOB}/{job['id']}",
        content=job_xml({**extra, "state": "Closed"}),
        headers={"Content-Type": "application/xml"},
    )
    assert_error(r, 400, "InvalidJob")
    info = get_job(b1, job["id"])
    assert (
        info["state"] == "Open" and info["operation"] == "insert" and info["contentType"] == "CSV"
    )
    assert_serving(b1)


# ---------------------------------------------------------------- state machine


@pytest.mark.parametrize(
    ("start", "target", "code"),
    [
        ("Aborted", "Closed", "InvalidJobState"),
        ("Aborted", "Aborted", "InvalidJobState"),
        ("Open", "Open", "InvalidJobState"),
        ("Closed", "Open", "InvalidJobState"),
        ("Aborted", "Open", "InvalidJobState"),
        ("Open", "Done", "InvalidJob"),
        ("Open", "UploadComplete", "InvalidJob"),
        ("Open", "closed", "InvalidJob"),
        ("Closed", "Done", "InvalidJob"),
    ],
)
def test_bad_state_transition(b1: httpx.Client, start: str, target: str, code: str) -> None:
    for job_type in ("CSV", "JSON"):
        fmt = fmt_of_job(job_type)
        job = create_job(b1, "Widget__c", "insert", job_type, fmt=fmt)
        if start == "Closed":
            close_job(b1, job["id"], fmt)
        elif start == "Aborted":
            abort_job(b1, job["id"], fmt)
        for body_fmt in FORMATS:
            with case(f"{job_type} job, {body_fmt} body"):
                r = update_job(b1, job["id"], target, body_fmt)
                # errors on a known job come in the job's format (R5)
                msg = assert_error(r, 400, code, fmt=fmt)
                if code == "InvalidJob":
                    assert msg == UNABLE_TO_PARSE
        assert get_job(b1, job["id"], fmt)["state"] == start
    assert_serving(b1)


# ---------------------------------------------------------------- unknown ids


BAD_JOB_IDS = [unknown_id("750"), "750000000000000AAA", "nope", "750", "750R0000000000OIAQX",
               unknown_id("750")[:15], unknown_id("001"), "%20"]  # fmt: skip


@pytest.mark.parametrize("job_id", BAD_JOB_IDS)
def test_unknown_or_malformed_job_id(b1: httpx.Client, job_id: str) -> None:
    bid = unknown_id("751")
    calls: list[httpx.Response] = [
        b1.get(f"{JOB}/{job_id}"),
        update_job(b1, job_id, "Closed"),
        update_job(b1, job_id, "Aborted"),
        post_batch(b1, job_id, "Name\nx\n", "text/csv"),
        b1.get(f"{JOB}/{job_id}/batch"),
        b1.get(f"{JOB}/{job_id}/batch/{bid}"),
        b1.get(f"{JOB}/{job_id}/batch/{bid}/request"),
        b1.get(result_url(job_id, bid)),
        b1.post(
            f"{JOB}/{job_id}/spec",
            content="Salesforce Field,Csv Header,Value,Hint\nName,N,,\n",
            headers={"Content-Type": "text/csv"},
        ),
    ]
    for r in calls:
        assert_error(r, 400, "InvalidJob", fmt="xml")
    r = b1.get(f"{JOB}/{job_id}", headers={"Content-Type": "application/json"})
    assert_error(r, 400, "InvalidJob", fmt="json")
    assert_serving(b1)


@pytest.mark.parametrize("job_type", ["CSV", "JSON"])
def test_unknown_or_malformed_batch_id(b1: httpx.Client, job_type: str) -> None:
    fmt = fmt_of_job(job_type)
    job = create_job(b1, "Widget__c", "insert", job_type, fmt=fmt)
    for batch_id in (unknown_id("751"), "nope", unknown_id("751")[:15], unknown_id("750"), "751"):
        for suffix in ("", "/request", "/result"):
            with case(f"{batch_id}{suffix}"):
                r = b1.get(f"{JOB}/{job['id']}/batch/{batch_id}{suffix}")
                assert_error(r, 400, "InvalidBatch", fmt=fmt)
    assert_serving(b1)


def test_batch_of_another_job_everywhere(b1: httpx.Client) -> None:
    one = create_job(b1, "Widget__c", "insert", "JSON", fmt="json")
    two = create_job(b1, "Widget__c", "insert", "CSV")
    batch = add_batch(b1, one["id"], json.dumps([{"Name": unique("ab")}]), "JSON")
    wait_batch(b1, one["id"], batch["id"], "json")
    for suffix in ("", "/request", "/result"):
        assert_error(b1.get(f"{JOB}/{two['id']}/batch/{batch['id']}{suffix}"), 400, "InvalidBatch")
    assert_serving(b1)


# ---------------------------------------------------------------- batch content


@pytest.mark.parametrize("job_type", ["CSV", "JSON", "XML"])
def test_unsupported_batch_content_type(b1: httpx.Client, job_type: str) -> None:
    fmt = fmt_of_job(job_type)
    job = create_job(b1, "Widget__c", "insert", job_type, fmt=fmt)
    for media in ("application/pdf", "text/plain", "application/octet-stream", "image/png",
                  "multipart/form-data; boundary=x", "text/html"):  # fmt: skip
        with case(media):
            r = post_batch(b1, job["id"], "Name\nx\n", media)
            assert_error(r, 400, "UnsupportedContentType", fmt=fmt)
    assert num(get_job(b1, job["id"], fmt), "numberBatchesTotal") == 0
    assert_serving(b1)


def test_batch_over_ten_million_bytes(b1: httpx.Client, server: Server) -> None:
    job = create_job(b1, "Widget__c", "insert", "CSV")
    first = unique("big")
    row = "," + "n" * 9_990 + "\n"
    body = "Name,Notes__c\n" + f"{first}{row}" + "".join(f"b{i}{row}" for i in range(1_001))
    assert 10_000_000 < len(body.encode()) < 10_200_000
    assert_error(post_batch(b1, job["id"], body, "text/csv"), 400, "InvalidBatch")
    assert num(get_job(b1, job["id"]), "numberBatchesTotal") == 0
    no_widget(server, first)
    assert_serving(b1)


@pytest.mark.parametrize("job_type", ["CSV", "JSON", "XML"])
def test_batch_over_ten_thousand_records(b1: httpx.Client, server: Server, job_type: str) -> None:
    fmt = fmt_of_job(job_type)
    job = create_job(b1, "Widget__c", "insert", job_type, fmt=fmt)
    tag = unique("many")
    names = [f"{tag}-{i}" for i in range(10_001)]
    data = {
        "CSV": lambda: "Name\n" + "".join(f"{n}\n" for n in names),
        "JSON": lambda: json.dumps([{"Name": n} for n in names]),
        "XML": lambda: sobjects_xml([{"Name": n} for n in names]),
    }[job_type]()
    r = post_batch(b1, job["id"], data, {"CSV": "text/csv", "JSON": "application/json",
                                         "XML": "application/xml"}[job_type])  # fmt: skip
    assert_error(r, 400, "InvalidBatch", fmt=fmt)
    assert num(get_job(b1, job["id"], fmt), "numberBatchesTotal") == 0
    no_widget(server, names[0], names[-1])
    assert_serving(b1)


def test_batch_of_exactly_ten_thousand_records(b1: httpx.Client, server: Server) -> None:
    tag = unique("tenk")
    body = "Name\n" + "".join(f"{tag}-{i}\n" for i in range(10_000))
    _, _, done = run_batch(b1, "Widget__c", "insert", body)
    assert done["state"] == "Completed", done
    assert num(done, "numberRecordsProcessed") == 10_000 and num(done, "numberRecordsFailed") == 0
    rows = db_query(
        server, 'SELECT COUNT(*) AS n FROM "Widget__c" WHERE "Name" LIKE ?', (f"{tag}-%",)
    )
    assert rows == [{"n": 10_000}]


def test_json_batch_not_an_array_of_objects(b1: httpx.Client) -> None:
    job = create_job(b1, "Widget__c", "insert", "JSON", fmt="json")
    for body in ("{not json", '{"Name": "x"}', "[1, 2]", '["a"]', "[[]]", "null", '"Name"', "",
                 "[{}, 3]", '[{"Name": "x"}'):  # fmt: skip
        with case(body):
            accepted_then_failed(b1, job["id"], body, "application/json", "json")
    assert_serving(b1)


@pytest.mark.parametrize(
    "body",
    [
        f'<records xmlns="{NS}"><sObject><Name>x</Name></sObject></records>',
        f'<sObject xmlns="{NS}"><Name>x</Name></sObject>',
        f'<jobInfo xmlns="{NS}"><operation>insert</operation></jobInfo>',
    ],
    ids=["records", "single-sobject", "jobinfo"],
)
def test_xml_batch_root_not_sobjects(b1: httpx.Client, body: str) -> None:
    job = create_job(b1, "Widget__c", "insert", "XML")
    accepted_then_failed(b1, job["id"], body, "application/xml", "xml")
    assert_serving(b1)


@pytest.mark.parametrize(
    "body",
    ['Name,Notes__c\n{a},"never closed\n{b},fine\n', 'Name,Notes__c\n{a},fine\n"{b},fine\n'],
    ids=["open-quote-in-value", "open-quote-at-row-start"],
)
def test_malformed_csv_batch_fails(b1: httpx.Client, server: Server, body: str) -> None:
    a, b = unique("mq"), unique("mq")
    job = create_job(b1, "Widget__c", "insert", "CSV")
    r = post_batch(b1, job["id"], body.format(a=a, b=b), "text/csv")
    batch = read_batch(r, "xml", 201)
    done = wait_batch(b1, job["id"], batch["id"])
    assert done["state"] == "Failed", done
    assert done["stateMessage"].startswith("InvalidBatch : "), done
    assert num(done, "numberRecordsProcessed") == 0
    no_widget(server, a, b)
    assert_error(b1.get(result_url(job["id"], batch["id"])), 400, "InvalidBatch")
    assert_serving(b1)


@pytest.mark.parametrize("field", ["Bogus__c", "Account__r.Nope__c", "Name2"])
def test_unknown_csv_header_field(b1: httpx.Client, server: Server, field: str) -> None:
    name = unique("uf")
    _, _, done = run_batch(b1, "Widget__c", "insert", f"Name,{field}\n{name},v\n")
    assert done["state"] == "Failed"
    assert done["stateMessage"] == f"InvalidBatch : Field name not found : {field}"
    no_widget(server, name)
    assert_serving(b1)


# ---------------------------------------------------------------- results of unfinished batches


def test_results_of_queued_and_not_processed_batches(
    make_server: Callable[..., Server],
) -> None:
    srv = make_server("--schema", SCHEMA, "--workers", "0")
    with b1_client(srv) as c:
        job = create_job(c, "Widget__c", "insert", "CSV")
        batch = add_batch(c, job["id"], "Name\nq\n")
        assert get_batch(c, job["id"], batch["id"])["state"] == "Queued"
        assert_error(c.get(result_url(job["id"], batch["id"])), 400, "InvalidBatch")
        # the request is available at once
        r = c.get(f"{JOB}/{job['id']}/batch/{batch['id']}/request")
        assert r.status_code == 200 and r.content == b"Name\nq\n"
        json_job = create_job(c, "Widget__c", "insert", "JSON", fmt="json")
        json_batch = add_batch(c, json_job["id"], json.dumps([{"Name": "q"}]), "JSON")
        r = c.get(result_url(json_job["id"], json_batch["id"]))
        assert_error(r, 400, "InvalidBatch", fmt="json")
        abort_job(c, job["id"])
        assert get_batch(c, job["id"], batch["id"])["state"] == "NotProcessed"
        assert_error(c.get(result_url(job["id"], batch["id"])), 400, "InvalidBatch")
        assert_serving(c)


# ---------------------------------------------------------------- spec after a batch


def test_spec_after_batch(b1: httpx.Client) -> None:
    spec = "Salesforce Field,Csv Header,Value,Hint\nName,Widget Name,,\n"
    job = create_job(b1, "Widget__c", "insert", "CSV")
    add_batch(b1, job["id"], f"Name\n{unique('sp')}\n")
    r = b1.post(f"{JOB}/{job['id']}/spec", content=spec, headers={"Content-Type": "text/csv"})
    assert_error(r, 400, "InvalidJobState")
    assert_serving(b1)


# ---------------------------------------------------------------- compression


def test_bad_gzip(b1: httpx.Client) -> None:
    gz = {"Content-Encoding": "gzip"}
    not_gzip = job_xml(GOOD_JOB).encode()
    truncated = gzip.compress(not_gzip)[:-12]
    for body in (not_gzip, truncated):
        assert_error(post_job(b1, body, **gz), 400, "ClientInputError", fmt="xml")
        r = post_job(b1, body, "application/json", **gz)
        assert_error(r, 400, "ClientInputError", fmt="json")
    job = create_job(b1, "Widget__c", "insert", "JSON", fmt="json")
    for body in (b"[]", gzip.compress(b'[{"Name": "x"}]')[:-12]):
        r = post_batch(b1, job["id"], body, "application/json", **gz)
        assert_error(r, 400, "ClientInputError", fmt="json")
        r = b1.post(
            f"{JOB}/{job['id']}",
            content=body,
            headers={"Content-Type": "application/json", **gz},
        )
        assert_error(r, 400, "ClientInputError", fmt="json")
    info = get_job(b1, job["id"], "json")
    assert info["state"] == "Open" and info["numberBatchesTotal"] == 0
    assert_serving(b1)


# ---------------------------------------------------------------- session, versions, urls


def test_invalid_session_everywhere(b1: httpx.Client, server: Server) -> None:
    job_id, batch_id, _ = run_batch(b1, "Widget__c", "insert", f"Name\n{unique('s')}\n")
    with httpx.Client(
        base_url=server.url, headers={"X-SFDC-Session": server.token + "x"}, timeout=30
    ) as bad:
        calls = [
            bad.get(f"{JOB}/{job_id}"),
            bad.get(f"{JOB}/{job_id}/batch"),
            bad.get(f"{JOB}/{job_id}/batch/{batch_id}"),
            bad.get(f"{JOB}/{job_id}/batch/{batch_id}/request"),
            bad.get(result_url(job_id, batch_id)),
            bad.post(f"{JOB}/{job_id}", content=job_xml({"state": "Aborted"})),
            bad.post(
                f"{JOB}/{job_id}/spec",
                content="Salesforce Field,Csv Header,Value,Hint\n",
                headers={"Content-Type": "text/csv"},
            ),
        ]
        for r in calls:
            assert_error(r, 400, "InvalidSessionId")
            assert "Widget__c" not in r.text and job_id not in r.text
    assert get_job(b1, job_id)["state"] == "Open"
    assert_serving(b1)


@pytest.mark.parametrize(
    "version", ["30.0", "20.0", "67.0", "99.0", "abc", "59", "v59.0", "59.0.1", "-1.0", "59.5"]
)
def test_unsupported_version(b1: httpx.Client, version: str) -> None:
    body = job_xml(GOOD_JOB)
    r = b1.post(
        f"/services/async/{version}/job", content=body, headers={"Content-Type": "application/xml"}
    )
    assert_error(r, 400, "InvalidVersion")
    r = b1.post(
        f"/services/async/{version}/job",
        content=json.dumps(GOOD_JOB),
        headers={"Content-Type": "application/json"},
    )
    assert_error(r, 400, "InvalidVersion", fmt="json")
    assert_error(
        b1.get(f"/services/async/{version}/job/{unknown_id('750')}"), 400, "InvalidVersion"
    )
    assert_serving(b1)


def test_unknown_path(b1: httpx.Client) -> None:
    job = create_job(b1, "Widget__c", "insert", "CSV")
    batch = add_batch(b1, job["id"], f"Name\n{unique('p')}\n")
    for path in ("/foo", "", "/", "/jobs", "/job/{job}/bogus", "/job/{job}/batch/{batch}/nonsense",
                 "/job/{job}/batch/{batch}/request/x", "/job/{job}/batch/{batch}/result/a/b",
                 "/job/{job}/spec/x", "/job//batch", "/AsyncApi.xsd/x"):  # fmt: skip
        url = ASYNC + path.format(job=job["id"], batch=batch["id"])
        for method in ("GET", "POST"):
            with case(f"{method} {url}"):
                assert_error(b1.request(method, url), 404, "InvalidUrl")
    assert_serving(b1)


def test_wrong_method_with_body(b1: httpx.Client) -> None:
    job = create_job(b1, "Widget__c", "insert", "CSV")
    r = b1.put(f"{JOB}/{job['id']}", content=job_xml({"state": "Closed"}),
               headers={"Content-Type": "application/xml"})  # fmt: skip
    assert_error(r, 405, "InvalidUrl")
    r = b1.delete(f"{JOB}/{job['id']}")
    assert_error(r, 405, "InvalidUrl")
    assert get_job(b1, job["id"])["state"] == "Open"
    assert_serving(b1)


def test_huge_and_odd_job_bodies(b1: httpx.Client) -> None:
    """Oversized text, deep nesting and odd characters do not break the server."""
    deep = f'<jobInfo xmlns="{NS}">' + "<a>" * 5_000 + "</a>" * 5_000 + "</jobInfo>"
    assert_error(post_job(b1, deep), 400, "InvalidJob")
    huge = job_xml({**GOOD_JOB, "object": "X" * 1_000_000})
    r = post_job(b1, huge)
    assert_error(r, 400, "InvalidEntity")
    assert len(r.content) < 1_100_000
    nul = job_xml({**GOOD_JOB, "object": "Widget__c\x00"}).replace("\x00", "&#0;")
    assert_error(post_job(b1, nul), 400, "InvalidJob", UNABLE_TO_PARSE)
    assert_serving(b1)


def test_wrong_checksum_suffix_is_malformed(b1: httpx.Client) -> None:
    """ID-04: an 18-char id with a wrong suffix is not the job (or batch)."""
    job = create_job(b1, "Widget__c", "insert", "CSV")
    batch = add_batch(b1, job["id"], f"Name\n{unique('sfx')}\n")
    assert_error(b1.get(f"{JOB}/{bad_suffix(job['id'])}"), 400, "InvalidJob")
    r = b1.get(f"{JOB}/{job['id']}/batch/{bad_suffix(batch['id'])}")
    assert_error(r, 400, "InvalidBatch")
    assert_serving(b1)


@pytest.mark.parametrize("obj", ['A<b>&c"', "Wídget__c"])
def test_unknown_object_with_odd_characters(b1: httpx.Client, obj: str) -> None:
    message = f"Entity '{obj}' is not supported by the Bulk API."
    r = post_job(b1, body_for("xml", {**GOOD_JOB, "object": obj}))
    assert_error(r, 400, "InvalidEntity", message)
    r = post_job(b1, body_for("json", {**GOOD_JOB, "object": obj}), "application/json")
    assert_error(r, 400, "InvalidEntity", message, "json")
    assert_serving(b1)


def test_body_format_follows_content_type(b1: httpx.Client) -> None:
    """R1: a JSON body sent as XML and an XML body sent as JSON are both unparsable jobs."""
    r = post_job(b1, json.dumps(GOOD_JOB), "application/xml")
    assert_error(r, 400, "InvalidJob", UNABLE_TO_PARSE)
    r = post_job(b1, job_xml(GOOD_JOB), "application/json")
    assert_error(r, 400, "InvalidJob", UNABLE_TO_PARSE, "json")
    assert_serving(b1)


def test_gzip_bomb_batch_is_refused(b1: httpx.Client) -> None:
    """The 10,000,000-byte limit applies to the gunzipped body; a bomb is refused quickly."""
    job = create_job(b1, "Widget__c", "insert", "CSV")
    row = b"x" * 99 + b"\n"
    raw = b"Name\n" + row * 600_000  # 60 MB of CSV, ~60 KB gzipped
    bomb = gzip.compress(raw, compresslevel=9)
    assert len(bomb) < 1_000_000
    started = time.monotonic()
    r = post_batch(b1, job["id"], bomb, "text/csv", **{"Content-Encoding": "gzip"})
    assert_error(r, 400, "InvalidBatch")
    assert time.monotonic() - started < 20
    assert num(get_job(b1, job["id"]), "numberBatchesTotal") == 0
    assert_serving(b1)


def test_gzip_bomb_job_body_is_refused(b1: httpx.Client) -> None:
    body = job_xml(GOOD_JOB).replace("<operation>", " " * 50_000_000 + "<operation>")
    bomb = gzip.compress(body.encode(), compresslevel=9)
    started = time.monotonic()
    r = post_job(b1, bomb, **{"Content-Encoding": "gzip"})
    assert time.monotonic() - started < 20
    assert r.status_code in (201, 400), r.text[:300]  # a huge but valid body may be accepted
    if r.status_code == 400:
        read_error(r, "xml")
    assert_serving(b1)


def test_chunked_batch_over_ten_million_bytes(b1: httpx.Client) -> None:
    job = create_job(b1, "Widget__c", "insert", "CSV")

    def stream() -> Iterator[bytes]:
        yield b"Name,Notes__c\n"
        for i in range(1_100):
            yield f"c{i},".encode() + b"n" * 9_990 + b"\n"

    r = b1.post(f"{JOB}/{job['id']}/batch", content=stream(), headers={"Content-Type": "text/csv"})
    assert_error(r, 400, "InvalidBatch")
    assert num(get_job(b1, job["id"]), "numberBatchesTotal") == 0
    assert_serving(b1)


def test_error_texts_are_escaped(b1: httpx.Client) -> None:
    """Field names and values with markup or quotes come back escaped in XML and JSON."""
    odd = 'Bad<&>"Q\u00fc'
    csv_header = 'Name,"Bad<&>""Q\u00fc"'
    _, _, done = run_batch(b1, "Widget__c", "insert", f"{csv_header}\nx,1\n")
    assert done["state"] == "Failed"
    assert done["stateMessage"] == f"InvalidBatch : Field name not found : {odd}"
    _, _, done = run_batch(b1, "Widget__c", "insert", json.dumps([{"Name": "x", odd: 1}]), "JSON")
    assert done["stateMessage"] == f"InvalidBatch : Field name not found : {odd}"
    data = sobjects_xml([{"Name": unique("esc"), "Count__c": "1<2&3"}])
    job_id, batch_id, done = run_batch(b1, "Widget__c", "insert", data, "XML")
    assert done["state"] == "Completed"
    (res,) = xml_results(b1, job_id, batch_id)
    assert res["errors"] == [
        {
            "fields": ["Count__c"],
            "message": "Count: value not of required type: 1<2&3",
            "statusCode": "INVALID_TYPE_ON_FIELD_IN_RECORD",
        }
    ]
    assert_serving(b1)
