"""Bulk API 1.0 query jobs over raw HTTP, in CSV, XML and JSON, on SQLite and PostgreSQL.

Spec: /work/shared/spec/bulk-api.md §2.8, §2.10 and checklist B1-26, B1-38...B1-43;
query.md §2.4, §4.3, §5.1 and its lines B1-50...B1-53.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import httpx
import pytest
from bulk1_helpers import (
    JOB,
    MEDIA,
    assert_error,
    b1_client,
    fmt_of_job,
    get_job,
    num,
    post_job,
    wait_batch,
)
from bulk1query_helpers import (
    NO_RECORDS,
    csv_rows,
    fetch,
    json_records,
    query_job,
    records,
    result_ids,
    run_query,
    submit,
    xml_records,
)
from conftest import API, Server, unique
from query_helpers import delete, load

TYPES = ["CSV", "XML", "JSON"]


@pytest.fixture
def b1(server: Server) -> Iterator[httpx.Client]:
    with b1_client(server) as c:
        yield c


def account(http: httpx.Client, name: str) -> tuple[str, str]:
    """A new Account named `name` + a unique suffix: (its Id, the full name)."""
    ext = unique("acct")
    return load(http, "Account", ["Name", "External_Id__c"], [[f"{name} {ext}", ext]])[
        0
    ], f"{name} {ext}"


def widgets(http: httpx.Client, sku: str, n: int = 3) -> list[str]:
    """n Widget__c rows tagged with Code__c = sku; their Ids in order."""
    header = ["Name", "Code__c", "Count__c", "Price__c", "Active__c", "Released__c", "Seen_At__c"]
    rows = [[f"w{i}", sku, str(i), f"{i}.5", "true" if i % 2 else "false", "2024-02-29",
             f"2024-01-02T03:04:0{i}.250Z"] for i in range(n)]  # fmt: skip
    return load(http, "Widget__c", header, rows)


# ---- B1-26: raw SOQL whatever the Content-Type; /request returns it ----------------------------


@pytest.mark.parametrize("job_type", TYPES)
@pytest.mark.parametrize("sent_as", ["application/json", "text/csv", "application/xml"])
def test_b1_26_batch_is_raw_soql_under_any_content_type(
    b1: httpx.Client, http: httpx.Client, job_type: str, sent_as: str
) -> None:
    sku = unique("q26")[-20:]
    widgets(http, sku, 2)
    soql = f"SELECT Id, Name FROM Widget__c WHERE Code__c = '{sku}'"
    job_id = query_job(b1, "Widget__c", job_type)["id"]
    batch = submit(b1, job_id, soql, job_type, sent_as)
    done = wait_batch(b1, job_id, batch["id"], fmt_of_job(job_type))
    assert done["state"] == "Completed", done
    assert num(done, "numberRecordsProcessed") == 2
    r = b1.get(f"{JOB}/{job_id}/batch/{batch['id']}/request")
    assert r.status_code == 200 and r.text == soql
    assert sorted(rec["Name"] for rec in records(b1, job_id, batch["id"], job_type)) == ["w0", "w1"]


@pytest.mark.parametrize("operation", ["query", "queryAll"])
@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_query_jobs_are_created(b1: httpx.Client, operation: str, fmt: str) -> None:
    body = {"operation": operation, "object": "Account", "contentType": "CSV"}
    import json as _json

    from bulk1_helpers import job_xml, read_job

    r = post_job(b1, _json.dumps(body) if fmt == "json" else job_xml(body), MEDIA[fmt.upper()])
    info = read_job(r, fmt, 201)  # type: ignore[arg-type]
    assert (info["operation"], info["object"], info["state"]) == (operation, "Account", "Open")


# ---- B1-38: result-id lists -------------------------------------------------------------------


@pytest.mark.parametrize("job_type", TYPES)
def test_b1_38_completed_batch_lists_15_char_752_result_ids(
    b1: httpx.Client, http: httpx.Client, job_type: str
) -> None:
    sku = unique("q38")[-20:]
    widgets(http, sku)
    job_id, done = run_query(b1, "Widget__c", f"SELECT Id FROM Widget__c WHERE Code__c = '{sku}'",
                             job_type)  # fmt: skip
    assert done["state"] == "Completed", done
    ids = result_ids(b1, job_id, done["id"], job_type)
    assert len(ids) == 1 and len(ids[0]) == 15 and ids[0].startswith("752")
    # listing twice gives the same ids (results are kept, not regenerated)
    assert result_ids(b1, job_id, done["id"], job_type) == ids
    # an unknown result id is an InvalidBatch error in the job's format
    r = b1.get(f"{JOB}/{job_id}/batch/{done['id']}/result/752R0000zzzzzzz")
    assert_error(r, 400, "InvalidBatch", fmt=fmt_of_job(job_type))


# ---- B1-39: CSV results -----------------------------------------------------------------------


def test_b1_39_csv_header_names_quoting_and_relationship_columns(
    b1: httpx.Client, http: httpx.Client
) -> None:
    acct, acct_name = account(http, "Acme")
    tag = unique("c39")
    load(http, "Contact", ["LastName", "FirstName", "AccountId", "Email"],
         [[f"{tag} a \"q\", comma", "", acct, ""], [f"{tag} b", "Ann", "", ""]])  # fmt: skip
    soql = (f"select id, lastname, firstname, account.name from contact "
            f"where lastname like '{tag}%' order by lastname")  # fmt: skip
    job_id, done = run_query(b1, "Contact", soql)
    assert done["state"] == "Completed", done
    (rid,) = result_ids(b1, job_id, done["id"], "CSV")
    r = fetch(b1, job_id, done["id"], rid)
    header, rows = csv_rows(r)
    assert header == ["Id", "LastName", "FirstName", "Account.Name"]  # canonical, dotted
    assert [row[1:] for row in rows] == [
        [f'{tag} a "q", comma', "", acct_name],
        [f"{tag} b", "Ann", ""],  # null (and null parent) → ""
    ]
    assert r.text.startswith('"Id","LastName","FirstName","Account.Name"\n')


def test_b1_39_csv_values_and_crlf_line_ending(b1: httpx.Client, http: httpx.Client) -> None:
    sku = unique("q39")[-20:]
    widgets(http, sku, 2)
    soql = (f"SELECT Name, Count__c, Price__c, Active__c, Released__c, Seen_At__c FROM Widget__c "
            f"WHERE Code__c = '{sku}' ORDER BY Name")  # fmt: skip
    job_id, done = run_query(b1, "Widget__c", soql, **{"Sforce-Line-Ending": "CRLF"})
    (rid,) = result_ids(b1, job_id, done["id"], "CSV")
    _, rows = csv_rows(fetch(b1, job_id, done["id"], rid), "\r\n")
    assert rows == [
        ["w0", "0", "0.5", "false", "2024-02-29", "2024-01-02T03:04:00.250Z"],
        ["w1", "1", "1.5", "true", "2024-02-29", "2024-01-02T03:04:01.250Z"],
    ]


# ---- B1-40 / B1-53: JSON results ---------------------------------------------------------------


def _epoch_ms(text: str) -> int:
    ts = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(ts.timestamp() * 1000)


def test_b1_40_b1_53_json_records_attributes_and_epoch_milliseconds(
    b1: httpx.Client, http: httpx.Client
) -> None:
    acct, acct_name = account(http, "Acme")
    tag = unique("c40")
    cids = load(http, "Contact", ["LastName", "AccountId", "Birthdate"],
                [[f"{tag} a", acct, "1990-05-17"], [f"{tag} b", "", ""]])  # fmt: skip
    soql = (f"SELECT Id, LastName, Birthdate, CreatedDate, Account.Name FROM Contact "
            f"WHERE LastName LIKE '{tag}%' ORDER BY LastName")  # fmt: skip
    job_id, done = run_query(b1, "Contact", soql, "JSON")
    assert done["state"] == "Completed", done
    recs = records(b1, job_id, done["id"], "JSON")
    assert [r["Id"] for r in recs] == cids
    a, b = recs
    assert a["attributes"] == {
        "type": "Contact",
        "url": f"/services/data/v{API}/sobjects/Contact/{cids[0]}",
    }
    assert a["Birthdate"] == _epoch_ms("1990-05-17T00:00:00Z") and b["Birthdate"] is None
    assert isinstance(a["CreatedDate"], int)
    now_ms = dt.datetime.now(dt.UTC).timestamp() * 1000
    assert abs(a["CreatedDate"] - now_ms) < 10 * 60 * 1000, a["CreatedDate"]
    assert a["Account"] == {
        "attributes": {"type": "Account", "url": f"/services/data/v{API}/sobjects/Account/{acct}"},
        "Name": acct_name,
    }
    assert b["Account"] is None


# ---- XML results ------------------------------------------------------------------------------


def test_xml_query_result_records_with_nested_parents(b1: httpx.Client, http: httpx.Client) -> None:
    acct, acct_name = account(http, "Acme <&>")
    tag = unique("cxml")
    cids = load(http, "Contact", ["LastName", "AccountId"], [[f"{tag} a", acct], [f"{tag} b", ""]])
    soql = (f"SELECT Id, LastName, Email, Account.Name FROM Contact "
            f"WHERE LastName LIKE '{tag}%' ORDER BY LastName")  # fmt: skip
    job_id, done = run_query(b1, "Contact", soql, "XML")
    (rid,) = result_ids(b1, job_id, done["id"], "XML")
    r = fetch(b1, job_id, done["id"], rid)
    assert b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"' in r.content
    assert xml_records(r) == [
        {"type": "Contact", "Id": cids[0], "LastName": f"{tag} a", "Email": None,
         "Account": {"type": "Account", "Name": acct_name}},
        {"type": "Contact", "Id": cids[1], "LastName": f"{tag} b", "Email": None, "Account": None},
    ]  # fmt: skip


# ---- B1-50: zero rows -------------------------------------------------------------------------


@pytest.mark.parametrize("job_type", TYPES)
def test_b1_50_zero_rows(b1: httpx.Client, job_type: str) -> None:
    soql = f"SELECT Id, Name FROM Widget__c WHERE Code__c = '{unique('none')[-20:]}'"
    job_id, done = run_query(b1, "Widget__c", soql, job_type)
    assert done["state"] == "Completed" and num(done, "numberRecordsProcessed") == 0, done
    (rid,) = result_ids(b1, job_id, done["id"], job_type)
    r = fetch(b1, job_id, done["id"], rid)
    if job_type == "CSV":
        assert r.text == NO_RECORDS and r.headers["content-type"] == "text/csv"
    elif job_type == "XML":
        assert xml_records(r) == []
    else:
        assert json_records(r) == []


# ---- B1-41 / B1-42 and the other refusals (query.md §4.3) --------------------------------------


def failed_with(b1: httpx.Client, obj: str, soql: str, job_type: str) -> str:
    job_id, done = run_query(b1, obj, soql, job_type)
    assert done["state"] == "Failed", done
    assert num(done, "numberRecordsProcessed") == 0, done
    r = b1.get(f"{JOB}/{job_id}/batch/{done['id']}/result")
    assert_error(r, 400, "InvalidBatch", fmt=fmt_of_job(job_type))
    return str(done["stateMessage"])


@pytest.mark.parametrize("job_type", TYPES)
def test_b1_41_root_object_must_be_the_jobs(b1: httpx.Client, job_type: str) -> None:
    message = failed_with(b1, "Account", "SELECT Id FROM Contact", job_type)
    assert message == (
        "InvalidBatch : Failed to process query: INVALID_TYPE_FOR_OPERATION: The root entity of "
        "the requested query (Contact) does not match the entity of the requested Bulk API Job "
        "(Account)."
    )


@pytest.mark.parametrize("job_type", TYPES)
def test_b1_42_unknown_field_fails_the_batch(b1: httpx.Client, job_type: str) -> None:
    message = failed_with(b1, "Account", "SELECT Id, Nope__c FROM Account", job_type)
    assert message.startswith("InvalidBatch : Failed to process query: INVALID_FIELD:"), message
    assert "Nope__c" in message


NOT_ENABLED = "InvalidBatch : Failed to process query: FUNCTIONALITY_NOT_ENABLED: "


@pytest.mark.parametrize(
    ("soql", "needle"),
    [
        ("SELECT Id FROM Account WHERE", "InvalidBatch : Failed to process query: MALFORMED_QUERY:"),
        ("SELECT COUNT() FROM Account", NOT_ENABLED + "Aggregate functions not supported in Bulk Query"),
        ("SELECT MAX(Name) FROM Account", NOT_ENABLED + "Aggregate functions not supported in Bulk Query"),
        ("SELECT Name, COUNT(Id) FROM Account GROUP BY Name", NOT_ENABLED),
        ("SELECT Id FROM Account LIMIT 5 OFFSET 2", NOT_ENABLED + "OFFSET not supported in Bulk Query"),
        ("SELECT TYPEOF Who WHEN Contact THEN LastName END FROM Task", NOT_ENABLED + "TYPEOF not supported in Bulk Query"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("job_type", TYPES)
def test_what_bulk_1_refuses_fails_the_batch(
    b1: httpx.Client, job_type: str, soql: str, needle: str
) -> None:
    obj = soql.rsplit(" FROM ", 1)[1].split()[0]
    assert failed_with(b1, obj, soql, job_type).startswith(needle)


def test_compound_fields_refused(org: httpx.Client, org_server: Server) -> None:
    """A compound field of a real describe (MailingAddress) fails the batch (query.md §4.3)."""
    with b1_client(org_server) as c:
        message = failed_with(c, "Contact", "SELECT Id, MailingAddress FROM Contact", "CSV")
    assert message == (
        "InvalidBatch : Failed to process query: FUNCTIONALITY_NOT_ENABLED: Selecting compound "
        "data not supported in Bulk Query"
    )


def test_b1_52_child_subquery_refused_in_csv_jobs(b1: httpx.Client) -> None:
    message = failed_with(b1, "Account", "SELECT Id, (SELECT Id FROM Contacts) FROM Account", "CSV")
    assert message == (
        "FeatureNotEnabled : Aggregate Relationships not supported in Bulk Query with CSV "
        "content type"
    )


@pytest.mark.parametrize("job_type", ["XML", "JSON"])
def test_child_subqueries_accepted_in_xml_and_json_jobs(
    b1: httpx.Client, http: httpx.Client, job_type: str
) -> None:
    ext = unique("ach")
    a1, _ = load(
        http, "Account", ["Name", "External_Id__c"], [[f"P1 {ext}", ext], [f"P2 {ext}", ext + "b"]]
    )
    load(http, "Contact", ["LastName", "AccountId"], [["k1", a1], ["k2", a1]])
    soql = (f"SELECT Name, (SELECT LastName FROM Contacts ORDER BY LastName) FROM Account "
            f"WHERE Name LIKE '%{ext}' ORDER BY Name")  # fmt: skip
    job_id, done = run_query(b1, "Account", soql, job_type)
    assert done["state"] == "Completed", done
    recs = records(b1, job_id, done["id"], job_type)
    assert [r["Name"] for r in recs] == [f"P1 {ext}", f"P2 {ext}"]
    if job_type == "XML":
        assert [c["LastName"] for c in recs[0]["Contacts"]] == ["k1", "k2"]
    else:
        assert recs[0]["Contacts"]["totalSize"] == 2
        assert [c["LastName"] for c in recs[0]["Contacts"]["records"]] == ["k1", "k2"]
    assert recs[1]["Contacts"] is None


# ---- queryAll ---------------------------------------------------------------------------------


@pytest.mark.parametrize("job_type", TYPES)
def test_query_all_returns_deleted_rows_query_does_not(
    b1: httpx.Client, http: httpx.Client, job_type: str
) -> None:
    sku = unique("qall")[-20:]
    ids = widgets(http, sku, 3)
    delete(http, "Widget__c", ids[:1])
    soql = f"SELECT Id, IsDeleted FROM Widget__c WHERE Code__c = '{sku}'"
    seen = {}
    for op in ("query", "queryAll"):
        job_id, done = run_query(b1, "Widget__c", soql, job_type, op)
        assert done["state"] == "Completed", done
        seen[op] = {
            r["Id"]: str(r["IsDeleted"]).lower() for r in records(b1, job_id, done["id"], job_type)
        }
    assert seen["query"] == {ids[1]: "false", ids[2]: "false"}
    assert seen["queryAll"] == {ids[0]: "true", ids[1]: "false", ids[2]: "false"}


# ---- jobs: counters, closing, states ----------------------------------------------------------


def test_job_counters_and_closing_is_optional(b1: httpx.Client, http: httpx.Client) -> None:
    sku = unique("qcnt")[-20:]
    widgets(http, sku, 4)
    job_id = query_job(b1, "Widget__c", "XML")["id"]
    one = submit(b1, job_id, f"SELECT Id FROM Widget__c WHERE Code__c = '{sku}'", "XML")
    two = submit(b1, job_id, "SELECT Id FROM Widget__c WHERE Nope__c = 1", "XML")
    assert wait_batch(b1, job_id, one["id"])["state"] == "Completed"
    assert wait_batch(b1, job_id, two["id"])["state"] == "Failed"
    info = get_job(b1, job_id)
    assert info["state"] == "Open"
    assert (num(info, "numberBatchesCompleted"), num(info, "numberBatchesFailed"),
            num(info, "numberBatchesTotal"), num(info, "numberRecordsProcessed")) == (1, 1, 2, 4)  # fmt: skip
