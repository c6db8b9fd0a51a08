"""The sf CLI (@salesforce/cli 2.143.6, tests/js) against a real server on SQLite and
PostgreSQL: `sf org login access-token`, `sf data create|update|get|delete record` and
`sf data import tree` with a plan of parents and children and with nested children. Needs node
and `make js`; otherwise skipped with the reason."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bulk2_helpers import db_one, db_query
from conftest import JS_DIR, NodeScript, Server, unique

SF = JS_DIR / "node_modules" / ".bin" / "sf"


class SfCli:
    def __init__(self, server: Server, home: Path) -> None:
        self.server = server
        env = {k: v for k, v in os.environ.items() if k.lower() not in NodeScript.NO_PROXY_ENV}
        self.env = {
            # no telemetry, no update checks, no background `sf update` processes
            **env, "HOME": str(home), "SF_DISABLE_TELEMETRY": "true",
            "SF_DISABLE_AUTOUPDATE": "true", "SF_SKIP_NEW_VERSION_CHECK": "true",
            "PATH": f"{SF.parent}{os.pathsep}{env.get('PATH', '')}",
        }  # fmt: skip

    def run(self, *args: str, ok: bool = True, cwd: Path | None = None) -> Any:
        proc = subprocess.run(
            [str(SF), *args, "--json"], capture_output=True, encoding="utf-8", timeout=120,
            env=self.env, cwd=cwd,
        )  # fmt: skip
        try:
            out = json.loads(proc.stdout)
        except json.JSONDecodeError:
            raise AssertionError(
                f"sf {args} printed no JSON:\n{proc.stdout}\n{proc.stderr}"
            ) from None
        assert (out["status"] == 0) is ok, out
        return out["result"] if ok else out


@pytest.fixture(scope="module")
def sf(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SfCli]:
    if not SF.exists():
        pytest.skip("node/npm not available: tests/js/node_modules/.bin/sf missing (`make js`)")
    cli = SfCli(server, tmp_path_factory.mktemp("sfhome"))
    cli.env["SF_ACCESS_TOKEN"] = server.token
    who = cli.run("org", "login", "access-token", "--instance-url", server.url, "--no-prompt",
                  "--alias", "bf")  # fmt: skip
    assert who["instanceUrl"].rstrip("/") == server.url
    yield cli


def test_create_update_get_delete_record(sf: SfCli, server: Server) -> None:
    tag = unique("sfcli")
    made = sf.run("data", "create", "record", "-s", "Contact", "-o", "bf",
                  "-v", f"LastName={tag} FirstName=Ada External_Id__c={tag}")  # fmt: skip
    rid = made["id"]
    assert made == {"id": rid, "success": True, "errors": []}
    sf.run("data", "update", "record", "-s", "Contact", "-i", rid, "-v", "FirstName=Grace",
           "-o", "bf")  # fmt: skip
    got = sf.run("data", "get", "record", "-s", "Contact", "-i", rid, "-o", "bf")
    assert (got["FirstName"], got["LastName"], got["External_Id__c"]) == ("Grace", tag, tag)
    assert db_one(server, "Contact", rid)["FirstName"] == "Grace"
    # -w finds the record by a SOQL query, then reads it
    found = sf.run("data", "get", "record", "-s", "Contact", "-w", f"External_Id__c={tag}",
                   "-o", "bf")  # fmt: skip
    assert found["Id"] == rid and found["FirstName"] == "Grace"
    sf.run("data", "delete", "record", "-s", "Contact", "-i", rid, "-o", "bf")
    assert db_one(server, "Contact", rid)["IsDeleted"] == 1
    err = sf.run("data", "create", "record", "-s", "Contact", "-v", "FirstName=x", "-o", "bf",
                 ok=False)  # fmt: skip
    assert "REQUIRED_FIELD_MISSING" in json.dumps(err)


def _write(path: Path, doc: Any) -> None:
    path.write_text(json.dumps(doc), encoding="utf-8")


def test_import_tree_with_a_plan_and_nested_children(
    sf: SfCli, server: Server, tmp_path: Path
) -> None:
    tag = unique("sftree")

    def record(obj: str, ref: str, **fields: Any) -> dict[str, Any]:
        return {"attributes": {"type": obj, "referenceId": ref}, **fields}

    _write(tmp_path / "Account.json", {"records": [
        record("Account", "AccRef1", Name=f"{tag}-1"), record("Account", "AccRef2", Name=f"{tag}-2"),
    ]})  # fmt: skip
    _write(tmp_path / "Contact.json", {"records": [
        record("Contact", "ConRef1", LastName=tag, AccountId="@AccRef1"),
        record("Contact", "ConRef2", LastName=tag, AccountId="@AccRef2"),
    ]})  # fmt: skip
    _write(tmp_path / "plan.json", [
        {"sobject": "Account", "files": ["Account.json"]},
        {"sobject": "Contact", "files": ["Contact.json"]},
    ])  # fmt: skip
    out = sf.run("data", "import", "tree", "-p", "plan.json", "-o", "bf", cwd=tmp_path)
    ids = {r["refId"]: r["id"] for r in out}
    assert set(ids) == {"AccRef1", "AccRef2", "ConRef1", "ConRef2"}
    assert db_one(server, "Contact", ids["ConRef2"])["AccountId"] == ids["AccRef2"]
    assert db_one(server, "Account", ids["AccRef1"])["Name"] == f"{tag}-1"

    _write(tmp_path / "nested.json", {"records": [
        record("Account", "N1", Name=f"{tag}-n", Contacts={"records": [
            record("Contact", "NC1", LastName=f"{tag}-kid")]}),
    ]})  # fmt: skip
    out = sf.run("data", "import", "tree", "-f", "nested.json", "-o", "bf", cwd=tmp_path)
    ids = {r["refId"]: r["id"] for r in out}
    assert db_one(server, "Contact", ids["NC1"])["AccountId"] == ids["N1"]

    _write(tmp_path / "bad.json", {"records": [
        record("Account", "B1", Name=f"{tag}-bad", Contacts={"records": [
            record("Contact", "BC1", LastName=f"{tag}-kid", Email="not-an-email")]}),
    ]})  # fmt: skip
    err = sf.run("data", "import", "tree", "-f", "bad.json", "-o", "bf", cwd=tmp_path, ok=False)
    assert "INVALID_EMAIL_ADDRESS" in json.dumps(err)
    assert db_query(server, 'SELECT "Id" FROM "Account" WHERE "Name" = ?', (f"{tag}-bad",)) == []
