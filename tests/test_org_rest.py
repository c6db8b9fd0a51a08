"""REST resources around bulk loads, generated from the imported schema: describeGlobal,
describe, one record, limits; simple-salesforce and jsforce reading them; fixtures loaded with
`bulkforce load-records` and reset through the admin endpoint and the CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from bulk2_helpers import run_job, success
from conftest import API, ORG_SCHEMA, Server, unique
from simple_salesforce import Salesforce

SOBJECTS = f"/services/data/v{API}/sobjects"
JS_DIR = Path(__file__).parent / "js"
NOT_FOUND = [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]
# the Contact fields the describe JSON defines beyond the built-in ones
IMPORTED = {"Level__c", "Languages__c", "Hobbies__c", "Badge__c", "Nickname__c", "Score__c",
            "Visits__c", "Legacy_Code__c", "Audit_Note__c", "Tier__c", "Age_Days__c",
            "IndividualId", "MailingAddress"}  # fmt: skip


def insert(c: httpx.Client, obj: str, csv: str) -> list[str]:
    info = run_job(c, obj, "insert", csv)
    assert info["numberRecordsFailed"] == 0, info
    return [r["sf__Id"] for r in success(c, info["id"], csv.split("\n", 1)[0]).dicts()]


def check_contact_describe(d: dict[str, Any]) -> None:
    """What a client gets from describe('Contact') reflects the imported describe."""
    assert (d["name"], d["keyPrefix"], d["labelPlural"], d["custom"]) == (
        "Contact", "003", "Contacts", False
    )  # fmt: skip
    fields = {f["name"]: f for f in d["fields"]}
    assert set(fields) >= IMPORTED and {"Id", "LastName", "AccountId"} <= set(fields)
    level = fields["Level__c"]
    assert level["type"] == "picklist" and level["restrictedPicklist"] is True
    assert [(p["value"], p["defaultValue"]) for p in level["picklistValues"]] == [
        ("Primary", False), ("Secondary", True), ("Tertiary", False)
    ]  # fmt: skip
    badge = fields["Badge__c"]
    assert (badge["externalId"], badge["unique"], badge["caseSensitive"], badge["length"]) == (
        True, True, True, 10
    )  # fmt: skip
    assert (fields["Score__c"]["precision"], fields["Score__c"]["scale"]) == (5, 2)
    assert fields["Visits__c"]["digits"] == 3
    assert fields["LastName"]["nillable"] is False and fields["LastName"]["createable"] is True
    assert fields["Legacy_Code__c"]["updateable"] is False
    assert fields["Audit_Note__c"]["createable"] is False
    assert fields["Age_Days__c"]["calculated"] is True
    assert fields["Tier__c"]["defaultedOnCreate"] is True
    assert fields["AccountId"]["referenceTo"] == ["Account"]
    assert fields["AccountId"]["relationshipName"] == "Account"
    assert fields["Id"]["type"] == "id" and fields["Id"]["idLookup"] is True


def test_describe_global_and_describe(org: httpx.Client) -> None:
    r = org.get(SOBJECTS)
    assert r.status_code == 200
    objects = {o["name"]: o for o in r.json()["sobjects"]}
    assert objects["Project__c"]["custom"] is True
    assert objects["Project__c"]["labelPlural"] == "Projects"
    assert objects["Project__c"]["keyPrefix"].startswith("a")
    assert objects["Account"]["urls"]["describe"] == f"{SOBJECTS}/Account/describe"
    check_contact_describe(org.get(f"{SOBJECTS}/contact/describe").json())
    project = org.get(f"{SOBJECTS}/Project__c/describe").json()
    fields = {f["name"]: f for f in project["fields"]}
    assert fields["Account__c"]["relationshipName"] == "Account__r"
    assert fields["Tags__c"]["type"] == "multipicklist"
    assert (
        fields["Summary__c"]["calculated"] is True and fields["Summary__c"]["createable"] is False
    )
    assert fields["Is_Active__c"]["defaultValue"] is True
    account = org.get(f"{SOBJECTS}/Account/describe").json()
    # the SFDX field's <relationshipName>Projects</relationshipName>, as SOQL spells it
    expected = {
        "childSObject": "Project__c",
        "field": "Account__c",
        "relationshipName": "Projects__r",
    }
    assert (
        expected.items()
        <= next(
            c for c in account["childRelationships"] if c["childSObject"] == "Project__c"
        ).items()
    )
    assert org.get(f"{SOBJECTS}/Project__c").json()["objectDescribe"]["name"] == "Project__c"
    for path in (f"{SOBJECTS}/Nope__c/describe", f"{SOBJECTS}/Nope__c",
                 "/services/data/v67.0/sobjects"):  # fmt: skip
        r = org.get(path)
        assert (r.status_code, r.json()) == (404, NOT_FOUND), path
    assert org.get("/services/data/v19.0/sobjects").status_code == 410  # retired


def test_get_record(org: httpx.Client) -> None:
    last = unique("Rec")
    (cid,) = insert(
        org, "Contact",
        f"LastName,Email,Score__c,Languages__c\n{last},{last}@example.com,1.5,French;English\n",
    )  # fmt: skip
    r = org.get(f"{SOBJECTS}/Contact/{cid[:15]}")
    assert r.status_code == 200
    rec = r.json()
    assert rec["attributes"] == {"type": "Contact", "url": f"{SOBJECTS}/Contact/{cid}"}
    assert (rec["Id"], rec["LastName"], rec["Score__c"]) == (cid, last, 1.5)
    assert rec["Languages__c"] == "English;French" and rec["IsDeleted"] is False
    assert rec["CreatedDate"].endswith("+0000") and rec["Tier__c"] == "Bronze"
    assert list(rec)[:3] == ["attributes", "Id", "IsDeleted"]
    r = org.get(f"{SOBJECTS}/Contact/{cid}", params={"fields": "LastName,Email"})
    assert list(r.json()) == ["attributes", "LastName", "Email"]
    r = org.get(f"{SOBJECTS}/Contact/{cid}", params={"fields": "Bogus__c"})
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "INVALID_FIELD"
    for bad in ("003R0000000000z", "not-an-id", cid.replace("003", "001", 1)):
        r = org.get(f"{SOBJECTS}/Contact/{bad}")
        assert (r.status_code, r.json()) == (404, NOT_FOUND), bad
    info = run_job(org, "Contact", "delete", f"Id\n{cid}\n")
    assert info["numberRecordsFailed"] == 0
    r = org.get(f"{SOBJECTS}/Contact/{cid}")
    assert r.status_code == 404
    assert r.json() == [{"errorCode": "ENTITY_IS_DELETED", "message": "entity is deleted",
                         "fields": []}]  # fmt: skip


def batches_left(c: httpx.Client) -> int:
    r = c.get(f"/services/data/v{API}/limits")
    assert r.status_code == 200
    body = r.json()
    assert body["DailyBulkV2QueryJobs"] == {"Max": 10000, "Remaining": 10000}
    assert body["DailyBulkApiBatches"]["Max"] == 15000
    return int(body["DailyBulkApiBatches"]["Remaining"])


def test_limits_count_bulk_batches(org: httpx.Client, org_server: Server) -> None:
    before = batches_left(org)
    insert(org, "Contact", f"LastName\n{unique('L')}\n")  # one Bulk 2.0 internal batch
    assert batches_left(org) == before - 1
    # two Bulk 1.0 batches
    headers = {"X-SFDC-Session": org_server.token, "Content-Type": "application/json"}
    job = httpx.post(f"{org_server.url}/services/async/{API}/job", headers=headers,
                     json={"operation": "insert", "object": "Contact", "contentType": "CSV"})  # fmt: skip
    assert job.status_code == 201, job.text
    for _ in range(2):
        r = httpx.post(
            f"{org_server.url}/services/async/{API}/job/{job.json()['id']}/batch",
            headers={**headers, "Content-Type": "text/csv"},
            content=f"LastName\n{unique('B')}\n",
        )
        assert r.status_code == 201, r.text
    assert batches_left(org) == before - 3


def test_simple_salesforce_describe_get_and_limits(org: httpx.Client, org_server: Server) -> None:
    (cid,) = insert(org, "Contact", f"LastName,Level__c\n{unique('S')},Tertiary\n")
    sf = Salesforce(instance_url=org_server.url, session_id=org_server.token, version=API)
    # simple-salesforce builds https:// URLs; base_url is read on every call
    sf.base_url = f"{org_server.url}/services/data/v{API}/"
    contact = sf.Contact
    contact.base_url = f"{org_server.url}/services/data/v{API}/sobjects/Contact/"
    check_contact_describe(contact.describe())
    assert {o["name"] for o in sf.describe()["sobjects"]} >= {"Contact", "Project__c"}
    got = contact.get(cid)
    assert (got["Id"], got["Level__c"]) == (cid, "Tertiary")
    assert sf.limits()["DailyBulkApiBatches"]["Max"] == 15000


def test_jsforce_describe_retrieve_and_limits(org: httpx.Client, org_server: Server) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node/npm not available: no `node` on PATH")
    if not (JS_DIR / "node_modules" / "jsforce").is_dir():
        pytest.skip("node/npm not available: tests/js/node_modules/jsforce missing (`make js`)")
    (cid,) = insert(org, "Contact", f"LastName,Badge__c\n{unique('J')},J{unique()[-8:]}\n")
    env = {k: v for k, v in os.environ.items()
           if k.lower() not in {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}}  # fmt: skip
    proc = subprocess.run(
        [node, str(JS_DIR / "rest.mjs"), org_server.url, org_server.token, "Contact", cid],
        capture_output=True, encoding="utf-8", timeout=90, cwd=JS_DIR, env=env,
    )  # fmt: skip
    out = json.loads(proc.stdout)
    assert proc.returncode == 0, out
    check_contact_describe(out["describe"])
    assert "Project__c" in {o["name"] for o in out["global"]["sobjects"]}
    assert out["record"]["Id"] == cid and out["record"]["attributes"]["type"] == "Contact"
    assert out["limits"]["DailyBulkApiBatches"]["Max"] == 15000
    assert out["missing"]["errorCode"] == "NOT_FOUND"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bulkforce", *args], capture_output=True, text=True, timeout=120
    )


def test_load_records_and_reset(make_server: Callable[..., Server], tmp_path: Path) -> None:
    srv = make_server(*ORG_SCHEMA, start=False)
    where = ["--data-dir", str(srv.data_dir), *ORG_SCHEMA]
    accounts = tmp_path / "accounts.csv"
    accounts.write_text("Name,Acct_Ext__c\nAcme,A1\nGlobex,A2\n")
    projects = tmp_path / "projects.csv"
    projects.write_text(
        "Code__c,Account__r.Acct_Ext__c,Stage__c\nP1,A1,Active\nP2,A2,Bogus\nP3,A9,\n"
    )
    proc = cli("load-records", "Account", str(accounts), *where)
    assert (proc.returncode, proc.stdout) == (0, "Account: 2 inserted, 0 failed\n"), proc.stderr
    proc = cli("load-records", "Project__c", str(projects), *where)
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == [
        "row 2: INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST:Stage: bad value for restricted picklist "
        "field: Bogus:Stage__c --",
        "row 3: INVALID_FIELD:Foreign key external ID: A9 not found for field Acct_Ext__c in "
        "entity Account:--",
        "Project__c: 1 inserted, 2 failed",
    ]
    proc = cli("load-records", "Nope__c", str(accounts), *where)
    assert proc.returncode == 2 and "Nope__c" in proc.stderr
    srv.start()
    with srv.client() as c:
        info = run_job(c, "Project__c", "upsert", "Code__c,Name\nP1,Seeded\n",
                       externalIdFieldName="Code__c")  # fmt: skip
        (row,) = success(c, info["id"], "Code__c,Name").dicts()
        assert row["sf__Created"] == "false"  # the fixture row was there
        pid = row["sf__Id"]
        got = c.get(f"{SOBJECTS}/Project__c/{pid}").json()
        assert (got["Name"], got["Stage__c"]) == ("Seeded", "Active")
        # the admin endpoint needs the token
        r = httpx.post(f"{srv.url}/bulkforce/admin/reset", json={"object": "Project__c"})
        assert r.status_code == 401
        r = c.post("/bulkforce/admin/reset", json={"object": "Nope__c"})
        assert r.status_code == 404 and r.json()[0]["errorCode"] == "NOT_FOUND"
        assert r.json()[0]["message"].startswith("No object named Nope__c in the schema")
        r = c.post("/bulkforce/admin/reset", json={"object": "project__c"})
        assert (r.status_code, r.json()) == (200, {"deleted": {"Project__c": 1}})
        assert c.get(f"{SOBJECTS}/Project__c/{pid}").status_code == 404
        # the job history stays
        assert c.get(f"/services/data/v{API}/jobs/ingest/{info['id']}").status_code == 200
        r = c.post("/bulkforce/admin/reset")
        assert r.status_code == 200 and r.json()["deleted"]["Account"] == 2
        # the org's own user stays: records still get an owner
        (again,) = insert(c, "Project__c", "Code__c\nP1\n")
        assert c.get(f"{SOBJECTS}/Project__c/{again}").json()["OwnerId"].startswith("005")
        (acc,) = insert(c, "Account", "Name\nAfter reset\n")
    # the CLI works on the same data while the server runs
    proc = cli("reset", "Account", *where)
    assert proc.returncode == 0 and "Account: 1 deleted" in proc.stdout, proc.stderr
    with srv.client() as c:
        assert c.get(f"{SOBJECTS}/Account/{acc}").status_code == 404
    proc = cli("reset", "--all", *where)
    assert proc.returncode == 0 and proc.stdout.endswith("1 records deleted\n"), proc.stdout
    assert cli("reset", *where).returncode == 2
