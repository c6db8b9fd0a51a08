"""The sf CLI reading records back, on SQLite and PostgreSQL: `sf data query` (REST query with
autoFetch, then `columns=true` for the column metadata it prints by), `--all-rows` (queryAll),
and `sf data export bulk` (a Bulk 2.0 query job whose result pages it joins into one file).
Needs node and `make js`; otherwise skipped with the reason."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from conftest import Server, unique
from query_helpers import delete, load
from test_client_sf_cli import SfCli, sf  # noqa: F401  (the logged-in CLI fixture)


def _contacts(server: Server, n: int, tag: str) -> list[str]:
    with server.client() as c:
        return load(
            c, "Contact", ["LastName", "Department"], [[f"n{i:05d}", tag] for i in range(n)]
        )


def test_sf_data_query_and_all_rows(sf: SfCli, server: Server) -> None:  # noqa: F811
    tag = unique("sfq")
    ids = _contacts(server, 2100, tag)
    soql = f"SELECT Id, LastName, Account.Name FROM Contact WHERE Department = '{tag}'"
    out = sf.run("data", "query", "--query", soql, "--target-org", "bf")
    assert out["totalSize"] == 2100 and out["done"] is True
    assert sorted(r["Id"] for r in out["records"]) == sorted(ids)
    assert out["records"][0]["Account"] is None
    with server.client() as c:
        delete(c, "Contact", ids[:4])
    out = sf.run("data", "query", "--query", soql, "--target-org", "bf")
    assert out["totalSize"] == 2096
    out = sf.run("data", "query", "--query", soql, "--all-rows", "--target-org", "bf")
    assert out["totalSize"] == 2100
    bad = sf.run("data", "query", "--query", "SELECT Nope__c FROM Contact", "--target-org", "bf",
                 ok=False)  # fmt: skip
    assert "No such column 'Nope__c'" in bad["message"]


def test_sf_data_export_bulk(sf: SfCli, server: Server, tmp_path: Path) -> None:  # noqa: F811
    tag = unique("sfx")
    ids = _contacts(server, 1500, tag)
    dest = tmp_path / "contacts.csv"
    out = sf.run(
        "data", "export", "bulk", "--query",
        f"SELECT Id, LastName FROM Contact WHERE Department = '{tag}'",
        "--output-file", str(dest), "--wait", "5", "--target-org", "bf",
    )  # fmt: skip
    assert out["totalSize"] == 1500, out
    rows = list(csv.DictReader(io.StringIO(dest.read_text(encoding="utf-8"), newline="")))
    assert sorted(r["Id"] for r in rows) == sorted(ids)
    json_dest = tmp_path / "contacts.json"
    sf.run(
        "data", "export", "bulk", "--query",
        f"SELECT Id FROM Contact WHERE Department = '{tag}'", "--output-file", str(json_dest),
        "--result-format", "json", "--wait", "5", "--target-org", "bf",
    )  # fmt: skip
    assert sorted(r["Id"] for r in json.loads(json_dest.read_text())) == sorted(ids)
