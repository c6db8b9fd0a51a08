"""Reading records back with unchanged clients over real HTTP, on SQLite and PostgreSQL:
simple-salesforce 1.12 (`query`, `query_all`, `query_more`, `is_sandbox`, `bulk2` query with
`max_records` paging) over `serve --tls` (it builds https:// URLs itself), and jsforce 3
(`conn.query` with autoFetch past 2,000 rows, `scanAll`, `queryMore`, `conn.bulk2.query`)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from conftest import API, PG_PROBLEM, NodeScript, Server, drop_pg_database, new_pg_database, unique
from query_helpers import delete, load
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

WAIT: Any = 0.05


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def tls_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    pg_url = None
    if request.param == "postgresql":
        if PG_PROBLEM:
            pytest.skip(PG_PROBLEM)
        pg_url = new_pg_database()
    srv = Server(tmp_path_factory.mktemp("qtls"), ["--tls"], scheme="https", pg_url=pg_url)
    srv.start()
    yield srv
    srv.stop()
    if pg_url:
        drop_pg_database(pg_url)


@pytest.fixture
def sf(tls_server: Server) -> Salesforce:
    s = requests.Session()
    s.trust_env = False  # requests ignores Session.verify when REQUESTS_CA_BUNDLE is set
    s.verify = str(tls_server.ca_file)
    return Salesforce(
        instance_url=tls_server.url, session_id=tls_server.token, version=API, session=s
    )


def _contacts(server: Server, n: int, tag: str) -> list[str]:
    with server.client() as c:
        return load(
            c, "Contact", ["LastName", "Department"], [[f"n{i:05d}", tag] for i in range(n)]
        )


def test_simple_salesforce_query_query_more_and_query_all(
    sf: Salesforce, tls_server: Server
) -> None:
    tag = unique("ssq")
    ids = _contacts(tls_server, 2100, tag)
    soql = f"SELECT Id, LastName FROM Contact WHERE Department = '{tag}'"
    first = sf.query(soql)
    assert first["totalSize"] == 2100 and first["done"] is False
    assert len(first["records"]) == 2000
    rest = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert rest["done"] is True and len(rest["records"]) == 100
    by_locator = sf.query_more(first["nextRecordsUrl"].rsplit("/", 1)[1])
    assert by_locator["records"] == rest["records"]
    every = sf.query_all(soql)
    assert every["totalSize"] == 2100
    assert [r["Id"] for r in every["records"]] == sorted(ids)
    gone = ids[:10]
    with tls_server.client() as c:
        delete(c, "Contact", gone)
    live = sf.query_all(soql)
    assert live["totalSize"] == 2090
    with_deleted = sf.query_all(soql + " AND IsDeleted = true", include_deleted=True)
    assert sorted(r["Id"] for r in with_deleted["records"]) == sorted(gone)
    assert sf.is_sandbox() is False
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.query("SELECT Nope__c FROM Contact")
    assert err.value.content[0]["errorCode"] == "INVALID_FIELD"


def test_simple_salesforce_bulk2_query_pages(sf: Salesforce, tls_server: Server) -> None:
    tag = unique("ssb2")
    ids = _contacts(tls_server, 250, tag)
    pages = list(
        sf.bulk2.Contact.query(  # type: ignore[union-attr]
            f"SELECT Id, LastName, Department FROM Contact WHERE Department = '{tag}'",
            max_records=100, wait=WAIT,
        )
    )  # fmt: skip
    assert len(pages) == 3
    rows = [r for page in pages for r in csv.DictReader(io.StringIO(page))]
    assert [r["Id"] for r in rows] == sorted(ids)
    assert {r["Department"] for r in rows} == {tag}
    assert list(rows[0]) == ["Id", "LastName", "Department"]


# ---- jsforce ------------------------------------------------------------------------------


class JS(NodeScript):
    script = "query.mjs"


@pytest.fixture
def js(node: str, server: Server) -> JS:
    return JS(node, server)


def test_jsforce_autofetch_past_2000_and_scan_all(js: JS, server: Server) -> None:
    tag = unique("jsq")
    ids = _contacts(server, 2300, tag)
    soql = f"SELECT Id, LastName FROM Contact WHERE Department = '{tag}'"
    res = js.run("rest", {"soql": soql})
    assert res["totalSize"] == 2300 and res["done"] is True
    assert [r["Id"] for r in res["records"]] == sorted(ids)
    assert res["records"][0]["attributes"]["type"] == "Contact"
    with server.client() as c:
        delete(c, "Contact", ids[:5])
    assert js.run("rest", {"soql": soql})["totalSize"] == 2295
    res = js.run("rest", {"soql": soql, "scanAll": True})
    assert res["totalSize"] == 2300 and len(res["records"]) == 2300
    res = js.run("more", {"soql": soql, "scanAll": True})
    assert res["pages"] == [2000, 300]


def test_jsforce_bulk2_query(js: JS, server: Server) -> None:
    tag = unique("jsb2")
    ids = _contacts(server, 30, tag)
    res = js.run("bulk2", {"soql": f"SELECT Id, LastName FROM Contact WHERE Department = '{tag}'"})
    assert sorted(r["Id"] for r in res["records"]) == sorted(ids)
    with server.client() as c:
        delete(c, "Contact", ids[:3])
    res = js.run(
        "bulk2",
        {"soql": f"SELECT Id FROM Contact WHERE Department = '{tag}'", "scanAll": True,
         "columnDelimiter": "PIPE", "lineEnding": "CRLF"},
    )  # fmt: skip
    assert sorted(r["Id"] for r in res["records"]) == sorted(ids)


def test_jsforce_bad_query_error_name(js: JS) -> None:
    out = js.run("rest", {"soql": "SELECT Id FROM Contact WHERE"}, ok=False)
    assert (
        out["error"]["errorCode"] == "MALFORMED_QUERY" or out["error"]["name"] == "MALFORMED_QUERY"
    )
