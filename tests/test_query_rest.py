"""The REST query resource over real HTTP on SQLite and PostgreSQL (query.md §6, checklist
QR-01..05, SQ-04..06): paths, paging by locator, record shapes, COUNT(), aggregates,
columns=true, explain=, errors, and pages that stay exact while other jobs write."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
from conftest import API, Server, unique
from query_helpers import REST, delete, load, rest, rest_all, rest_ok

DT_REST = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$")
LOCATOR_URL = re.compile(rf"^/services/data/v{API}/query/01g[0-9A-Za-z]{{15}}-(\d+)$")


def contacts(c: httpx.Client, n: int, tag: str, names: list[str] | None = None) -> list[str]:
    """n Contacts whose Department is `tag`; LastNames n00000.. (or `names`)."""
    rows = [[names[i] if names else f"n{i:05d}", tag] for i in range(n)]
    return load(c, "Contact", ["LastName", "Department"], rows)


def test_query_path_forms_and_plus_as_space(http: httpx.Client) -> None:
    """QR-01, SQ-04: `/query?q=` and `/query/?q=` both answer; `+` is a space; names come
    back canonical whatever case the SOQL used."""
    tag = unique("qr01")
    ids = contacts(http, 3, tag)
    soql = f"select id, lastname from contact where department = '{tag}'"
    a = rest_ok(http, soql)
    raw = soql.replace(" ", "+")
    r = http.get(f"{REST}/query/?q={raw}")
    assert r.status_code == 200, r.text
    b = r.json()
    assert a == b
    assert a["totalSize"] == 3 and a["done"] is True and "nextRecordsUrl" not in a
    assert sorted(rec["Id"] for rec in a["records"]) == sorted(ids)
    for rec in a["records"]:
        assert list(rec) == ["attributes", "Id", "LastName"]
        assert rec["attributes"] == {
            "type": "Contact",
            "url": f"/services/data/v{API}/sobjects/Contact/{rec['Id']}",
        }
    r = http.get(f"{REST}/queryAll/?q={raw}")
    assert r.status_code == 200 and r.json()["totalSize"] == 3


def test_pages_follow_next_records_url_without_gaps(http: httpx.Client) -> None:
    """QR-02: more than 2,000 rows: pages of 2,000, a server-relative nextRecordsUrl, totalSize
    the full count, and the rest on the next page; a locator fetched twice gives the same page."""
    tag = unique("qr02")
    ids = contacts(http, 2300, tag)
    first = rest_ok(http, f"SELECT Id FROM Contact WHERE Department = '{tag}'")
    assert first["totalSize"] == 2300 and first["done"] is False
    assert len(first["records"]) == 2000
    m = LOCATOR_URL.match(first["nextRecordsUrl"])
    assert m and m[1] == "2000", first["nextRecordsUrl"]
    second = http.get(first["nextRecordsUrl"]).json()
    assert second["done"] is True and "nextRecordsUrl" not in second
    assert second["totalSize"] == 2300 and len(second["records"]) == 300
    again = http.get(first["nextRecordsUrl"]).json()
    assert again == second
    got = [r["Id"] for r in first["records"] + second["records"]]
    assert got == sorted(ids), "no ORDER BY: Id order, no repeats, no gaps"


def test_batch_size_option_and_limit_across_pages(http: httpx.Client) -> None:
    tag = unique("qrbs")
    ids = contacts(http, 450, tag)
    soql = f"SELECT Id FROM Contact WHERE Department = '{tag}'"
    recs, pages = rest_all(http, soql, **{"Sforce-Query-Options": "batchSize=200"})
    assert [len(p["records"]) for p in pages] == [200, 200, 50]
    assert [r["Id"] for r in recs] == sorted(ids)
    # below the minimum of 200: Salesforce uses 200
    _, pages = rest_all(http, soql, **{"Sforce-Query-Options": "batchSize=10"})
    assert [len(p["records"]) for p in pages] == [200, 200, 50]
    recs, pages = rest_all(
        http,
        soql + " ORDER BY LastName DESC LIMIT 250",
        **{"Sforce-Query-Options": "batchSize=200"},
    )
    assert pages[0]["totalSize"] == 250
    assert [len(p["records"]) for p in pages] == [200, 50]
    assert len({r["Id"] for r in recs}) == 250


def test_query_all_shows_deleted_and_its_locator_works_on_query(http: httpx.Client) -> None:
    """Q: query hides deleted rows, queryAll shows them with IsDeleted true; jsforce follows a
    queryAll result through `/query/{locator}`."""
    tag = unique("qrall")
    ids = contacts(http, 260, tag)
    gone = ids[:30]
    delete(http, "Contact", gone)
    soql = f"SELECT Id, IsDeleted FROM Contact WHERE Department = '{tag}'"
    live = rest_ok(http, soql)
    assert live["totalSize"] == 230
    first = rest_ok(http, soql, all_rows=True, **{"Sforce-Query-Options": "batchSize=200"})
    assert first["totalSize"] == 260 and not first["done"]
    assert "/query/" in first["nextRecordsUrl"]
    rest_page = http.get(first["nextRecordsUrl"]).json()
    recs = first["records"] + rest_page["records"]
    assert sorted(r["Id"] for r in recs) == sorted(ids)
    assert {r["Id"] for r in recs if r["IsDeleted"]} == set(gone)
    locator = first["nextRecordsUrl"].rsplit("/", 1)[1]
    via_all = http.get(f"{REST}/queryAll/{locator}").json()
    assert via_all == rest_page


def test_pages_never_repeat_or_skip_while_others_write(http: httpx.Client) -> None:
    """Rows that exist throughout appear exactly once even when rows sorting before the
    reader's position are inserted and others deleted between pages (keyset paging)."""
    tag = unique("qrks")
    ids = contacts(http, 600, tag, [f"m{i:05d}" for i in range(600)])
    soql = f"SELECT Id, LastName FROM Contact WHERE Department = '{tag}' ORDER BY LastName"
    first = rest_ok(http, soql, **{"Sforce-Query-Options": "batchSize=200"})
    seen = [r["Id"] for r in first["records"]]
    # inserted before the position already read, and deletions of not-yet-read rows
    contacts(http, 150, tag, [f"a{i:05d}" for i in range(150)])
    unread_gone = ids[400:420]
    delete(http, "Contact", unread_gone)
    page = first
    while not page["done"]:
        page = http.get(page["nextRecordsUrl"]).json()
        seen += [r["Id"] for r in page["records"]]
    assert len(seen) == len(set(seen)), "a row was repeated"
    throughout = set(ids) - set(unread_gone)
    assert throughout <= set(seen), "a row that existed throughout was skipped"
    assert not set(unread_gone) & set(seen[200:])


def test_record_shapes_parents_values_and_child_results(http: httpx.Client) -> None:
    """QR-04: attributes on every record, nested parents (null parent → null), JSON-typed
    values, `…000+0000` datetimes; child relationship results or null when empty."""
    tag = unique("qrshape")
    acct, bare = load(http, "Account", ["Name"], [[f"{tag}-a"], [f"{tag}-b"]])
    widgets = load(
        http, "Widget__c",
        ["Name", "Account__c", "Ratio__c", "Count__c", "Price__c", "Active__c",
         "Released__c", "Seen_At__c", "Notes__c"],
        [[f"{tag}-w1", acct, "2.5", "7", "100", "true", "2024-01-02",
          "2024-03-04T05:06:07.000Z", "line1\nline2"],
         [f"{tag}-w2", "", "", "", "", "false", "", "", ""]],
    )  # fmt: skip
    page = rest_ok(
        http,
        "SELECT Id, Name, Account__r.Name, Ratio__c, Count__c, Price__c, Active__c, "
        f"Released__c, Seen_At__c, Notes__c FROM Widget__c WHERE Name LIKE '{tag}%' ORDER BY Name",
    )
    w1, w2 = page["records"]
    assert w1["Id"] == widgets[0]
    assert w1["Account__r"] == {
        "attributes": {"type": "Account", "url": f"/services/data/v{API}/sobjects/Account/{acct}"},
        "Name": f"{tag}-a",
    }
    assert w2["Account__r"] is None
    assert w1["Ratio__c"] == 2.5 and w1["Count__c"] == 7 and w1["Price__c"] == 100
    assert w1["Active__c"] is True and w2["Active__c"] is False
    assert w1["Released__c"] == "2024-01-02"
    assert w1["Seen_At__c"] == "2024-03-04T05:06:07.000+0000"
    assert w1["Notes__c"] == "line1\nline2"
    assert w2["Ratio__c"] is None and w2["Released__c"] is None and w2["Seen_At__c"] is None
    describe = http.get(f"{REST}/sobjects/Account/describe").json()
    rel = next(
        r["relationshipName"] for r in describe["childRelationships"]
        if r["childSObject"] == "Widget__c"
    )  # fmt: skip
    page = rest_ok(
        http,
        f"SELECT Name, (SELECT Name FROM {rel} ORDER BY Name) FROM Account "
        f"WHERE Name LIKE '{tag}%' ORDER BY Name",
    )
    a, b = page["records"]
    assert a[rel]["totalSize"] == 1 and a[rel]["done"] is True
    assert [r["Name"] for r in a[rel]["records"]] == [f"{tag}-w1"]
    assert a[rel]["records"][0]["attributes"]["type"] == "Widget__c"
    assert b[rel] is None
    assert bare


def test_count_and_aggregates(http: httpx.Client) -> None:
    """QR-03: COUNT() answers totalSize with no records; aggregate rows are AggregateResult
    with expr0… names."""
    tag = unique("qrcount")
    contacts(http, 5, tag)
    page = rest_ok(http, f"SELECT COUNT() FROM Contact WHERE Department = '{tag}'")
    assert page == {"totalSize": 5, "done": True, "records": []}
    page = rest_ok(
        http,
        f"SELECT Department, COUNT(Id) FROM Contact WHERE Department = '{tag}' GROUP BY Department",
    )
    assert page["totalSize"] == 1 and page["done"] is True
    (row,) = page["records"]
    assert row == {"attributes": {"type": "AggregateResult"}, "Department": tag, "expr0": 5}


def test_columns_true_gives_column_metadata(http: httpx.Client) -> None:
    """QR-05: the sf CLI's `columns=true` call (plugin-data queryFields exemplars)."""
    r = http.get(
        f"{REST}/query", params={"q": "SELECT Id, Name, Owner.Name FROM Account", "columns": "true"}
    )
    assert r.status_code == 200, r.text
    meta = r.json()["columnMetadata"]
    assert [m["columnName"] for m in meta] == ["Id", "Name", "Owner"]
    assert meta[0]["apexType"] == "Id" and meta[0]["joinColumns"] == []
    assert meta[1]["textType"] is True and meta[1]["aggregate"] is False
    owner = meta[2]
    assert owner["foreignKeyName"] == "OwnerId" and owner["apexType"] is None
    assert [j["columnName"] for j in owner["joinColumns"]] == ["Name"]
    for m in meta:
        assert set(m) == {
            "aggregate", "apexType", "booleanType", "columnName", "custom", "displayName",
            "foreignKeyName", "insertable", "joinColumns", "numberType", "textType", "updatable",
        }  # fmt: skip


def test_explain_is_answered(http: httpx.Client) -> None:
    r = http.get(f"{REST}/query/", params={"explain": "SELECT Id FROM Contact"})
    assert r.status_code == 200, r.text
    plan = r.json()["plans"][0]
    assert plan["sobjectType"] == "Contact"
    assert {"cardinality", "leadingOperationType", "relativeCost", "sobjectCardinality"} <= set(
        plan
    )


def _error(r: httpx.Response, code: str) -> str:
    assert r.status_code == 400, r.text
    body = r.json()
    assert isinstance(body, list) and body[0]["errorCode"] == code, body
    return str(body[0]["message"])


def test_bad_soql_and_bad_locators(http: httpx.Client) -> None:
    """SQ-05, SQ-06 and the REST error shape `[{"message", "errorCode"}]`."""
    msg = _error(rest(http, "SELECT Id, Nope__c FROM Contact"), "INVALID_FIELD")
    assert (
        "ERROR at Row:1:Column:12" in msg and "No such column 'Nope__c' on entity 'Contact'" in msg
    )
    msg = _error(rest(http, "SELECT Id FROM Nope__c"), "INVALID_TYPE")
    assert "sObject type 'Nope__c' is not supported" in msg
    assert "unexpected token" in _error(
        rest(http, "SELECT Id FROM Contact WHERE"), "MALFORMED_QUERY"
    )
    _error(http.get(f"{REST}/query/01gZZZZZZZZZZZZZZZ-2000"), "INVALID_QUERY_LOCATOR")
    _error(http.get(f"{REST}/query/garbage"), "INVALID_QUERY_LOCATOR")
    r = httpx.get(str(http.base_url) + f"{REST}/query", params={"q": "SELECT Id FROM Contact"})
    assert r.status_code == 401 and r.json()[0]["errorCode"] == "INVALID_SESSION_ID"


def test_organization_and_user_rows(http: httpx.Client) -> None:
    """The records clients read before they start (query.md §1.1)."""
    page = rest_ok(http, "SELECT IsSandbox FROM Organization LIMIT 1")
    assert page["totalSize"] == 1
    assert page["records"][0]["IsSandbox"] is False
    page = rest_ok(
        http,
        "SELECT Name, InstanceName, IsSandbox, TrialExpirationDate, NamespacePrefix, "
        "OrganizationType FROM Organization",
    )
    (org,) = page["records"]
    assert org["attributes"]["url"].startswith(f"/services/data/v{API}/sobjects/Organization/00D")
    assert org["Name"] and org["InstanceName"] and org["OrganizationType"]
    assert org["NamespacePrefix"] is None and org["TrialExpirationDate"] is None
    page = rest_ok(
        http, "SELECT Id, Username, IsActive FROM User WHERE Username = 'admin@bulkforce.local'"
    )
    (user,) = page["records"]
    assert user["Id"].startswith("005") and user["IsActive"] is True


def test_created_records_carry_system_datetimes(http: httpx.Client) -> None:
    tag = unique("qrsys")
    contacts(http, 1, tag)
    rec: dict[str, Any] = rest_ok(
        http,
        f"SELECT CreatedDate, SystemModstamp, CreatedBy.Username FROM Contact WHERE Department = '{tag}'",
    )["records"][0]
    assert DT_REST.match(rec["CreatedDate"]) and DT_REST.match(rec["SystemModstamp"])
    assert rec["CreatedBy"]["Username"] == "admin@bulkforce.local"


def test_locators_are_shared_by_api_processes(make_server: Callable[..., Server]) -> None:
    """Two API processes on one PostgreSQL database: a page started on one continues on the
    other, because the cursor lives in the database."""
    a = make_server(backend="postgresql")
    b = make_server("--no-worker", pg_url=a.pg_url)
    tag = unique("qrproc")
    with a.client() as ca, b.client() as cb:
        ids = contacts(ca, 300, tag)
        soql = f"SELECT Id FROM Contact WHERE Department = '{tag}'"
        first = rest_ok(ca, soql, **{"Sforce-Query-Options": "batchSize=200"})
        r = cb.get(first["nextRecordsUrl"])
        assert r.status_code == 200, r.text
        rest_page = r.json()
        assert rest_page["done"] is True and rest_page["totalSize"] == 300
        got = [x["Id"] for x in first["records"] + rest_page["records"]]
        assert got == sorted(ids)
