"""An org's own schema, imported from an sf CLI describe (`--json` envelope) and an SFDX folder:
every enforced property shown with a record that fails and one that passes, over Bulk 2.0."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from bulk2_helpers import failed, run_job, success, to18
from conftest import API, DATA, ORG_SCHEMA, unique

SOBJECTS = f"/services/data/v{API}/sobjects"


def load(c: httpx.Client, obj: str, op: str, csv: str, **extra: Any) -> dict[str, dict[str, str]]:
    """Run a job; every row's outcome keyed by its first column: {"ok": id} or {"error": ...}."""
    info = run_job(c, obj, op, csv, **extra)
    assert info["state"] == "JobComplete", info
    header = csv.split("\n", 1)[0]
    first = header.split(",")[0]
    out: dict[str, dict[str, str]] = {}
    for row in success(c, info["id"], header).dicts():
        out[row[first]] = {"ok": row["sf__Id"]}
    for row in failed(c, info["id"], header).dicts():
        out[row[first]] = {"error": row["sf__Error"]}
    return out


def record(c: httpx.Client, obj: str, rid: str) -> dict[str, Any]:
    r = c.get(f"{SOBJECTS}/{obj}/{rid}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def contact(c: httpx.Client, **values: str) -> str:
    """Insert one Contact; its Id."""
    values.setdefault("LastName", unique("C"))
    header = ",".join(values)
    out = load(c, "Contact", "insert", f"{header}\n{','.join(values.values())}\n")
    (res,) = out.values()
    assert "ok" in res, res
    return res["ok"]


def test_createable_and_compound_and_formula_fields(org: httpx.Client) -> None:
    a, b, d, e = (unique(k) for k in "abde")
    out = load(
        org, "Contact", "insert",
        f"LastName,Audit_Note__c,Legacy_Code__c,MailingAddress,Age_Days__c\n"
        f"{a},note,,,\n{b},,L1,,\n{d},,,1 Main St,\n{e},,,,5\n",
    )  # fmt: skip
    assert out[a]["error"] == (
        "INVALID_FIELD_FOR_INSERT_UPDATE:Unable to create/update fields: Audit_Note__c. Please "
        "check the security settings of this field and verify that it is read/write for your "
        "profile or permission set.:Audit_Note__c --"
    )
    assert out[d]["error"].startswith("INVALID_FIELD_FOR_INSERT_UPDATE:Unable to create/update "
                                      "fields: MailingAddress.")  # fmt: skip
    assert out[e]["error"].endswith(":Age_Days__c --")
    assert record(org, "Contact", out[b]["ok"])["Legacy_Code__c"] == "L1"
    # SFDX formula field: read-only
    p = unique("P")
    out = load(org, "Project__c", "insert", f"Code__c,Summary__c\n{p[-12:]},x\n")
    assert out[p[-12:]]["error"].startswith("INVALID_FIELD_FOR_INSERT_UPDATE:")


def test_updateable(org: httpx.Client) -> None:
    cid = contact(org, Legacy_Code__c="L2")
    out = load(org, "Contact", "update", f"Id,Legacy_Code__c\n{cid},L3\n")
    assert out[cid]["error"].startswith(
        "INVALID_FIELD_FOR_INSERT_UPDATE:Unable to create/update fields: Legacy_Code__c."
    )
    out = load(org, "Contact", "update", f"Id,Audit_Note__c\n{cid},checked\n")
    assert out[cid] == {"ok": cid}
    got = record(org, "Contact", cid)
    assert (got["Legacy_Code__c"], got["Audit_Note__c"]) == ("L2", "checked")


def test_nillable_required_and_defaults(org: httpx.Client) -> None:
    first = unique("F")[-30:]
    out = load(org, "Contact", "insert", f"FirstName,LastName\n{first},\n")
    assert out[first]["error"] == (
        "REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --"
    )
    # Tier__c is not nillable but defaulted on create (describe defaultValueFormula "Bronze");
    # Level__c's picklist default is Secondary
    cid = contact(org)
    got = record(org, "Contact", cid)
    assert (got["Tier__c"], got["Level__c"]) == ("Bronze", "Secondary")
    out = load(org, "Contact", "update", f"Id,Tier__c\n{cid},#N/A\n")
    assert (
        out[cid]["error"]
        == "REQUIRED_FIELD_MISSING:Required fields are missing: [Tier__c]:Tier__c --"
    )
    out = load(org, "Contact", "update", f"Id,Tier__c,LastName\n{cid},Gold,#N/A\n")
    assert out[cid]["error"].startswith("REQUIRED_FIELD_MISSING:Required fields are missing: [")
    out = load(org, "Contact", "update", f"Id,Tier__c\n{cid},Gold\n")
    assert out[cid] == {"ok": cid} and record(org, "Contact", cid)["Tier__c"] == "Gold"
    # SFDX: Checkbox default true, picklist default, required Text
    code = unique("k")[-12:]
    out = load(org, "Project__c", "insert", f"Code__c,Name\n{code},With code\n,Without code\n")
    got = record(org, "Project__c", out[code]["ok"])
    assert (got["Is_Active__c"], got["Stage__c"]) == (True, "Planned")
    out = load(org, "Project__c", "insert", "Name,Code__c\nNo code,\n")
    assert out["No code"]["error"] == (
        "REQUIRED_FIELD_MISSING:Required fields are missing: [Code__c]:Code__c --"
    )


def test_length(org: httpx.Client) -> None:
    ok, bad = "x" * 40, "y" * 41
    out = load(org, "Contact", "insert", f"FirstName,LastName\n{ok},{unique()}\n{bad},{unique()}\n")
    assert "ok" in out[ok]
    assert out[bad]["error"] == (
        f"STRING_TOO_LONG:First Name: data value too large: {bad} (max length=40):FirstName --"
    )
    code = "c" * 13
    out = load(org, "Project__c", "insert", f"Code__c\n{code}\n")
    assert out[code]["error"].startswith("STRING_TOO_LONG:Code: data value too large:")


def test_precision_scale_and_digits(org: httpx.Client) -> None:
    rows = {
        "a": ("999.994", None),  # rounds down to 999.99: fits 5,2
        "b": ("999.995", "NUMBER_OUTSIDE_VALID_RANGE"),  # rounds half up to 1000.00
        "c": ("1000", "NUMBER_OUTSIDE_VALID_RANGE"),
        "d": ("12.345", None),  # half up, not half even
        "e": ("-999.99", None),
    }
    tag = unique("n")
    csv = "LastName,Score__c\n" + "".join(f"{tag}{k},{v}\n" for k, (v, _) in rows.items())
    out = load(org, "Contact", "insert", csv)
    for k, (v, code) in rows.items():
        res = out[f"{tag}{k}"]
        if code:
            assert res["error"] == (
                f"{code}:Score: value outside of valid range on numeric field: {v}:Score__c --"
            )
    assert record(org, "Contact", out[f"{tag}a"]["ok"])["Score__c"] == 999.99
    assert record(org, "Contact", out[f"{tag}d"]["ok"])["Score__c"] == 12.35
    # int with describe digits 3
    out = load(org, "Contact", "insert", f"LastName,Visits__c\n{tag}v1,999\n{tag}v2,1000\n")
    assert "ok" in out[f"{tag}v1"]
    assert out[f"{tag}v2"]["error"] == (
        "NUMBER_OUTSIDE_VALID_RANGE:Visits: value outside of valid range on numeric field: "
        "1000:Visits__c --"
    )
    # SFDX Currency(8, 2): six integer digits
    k1, k2 = unique("b")[-12:], unique("B")[-12:]
    out = load(org, "Project__c", "insert", f"Code__c,Budget__c\n{k1},123456.785\n{k2},1234567\n")
    assert record(org, "Project__c", out[k1]["ok"])["Budget__c"] == 123456.79
    assert out[k2]["error"].startswith("NUMBER_OUTSIDE_VALID_RANGE:Budget: ")


def test_restricted_picklists(org: httpx.Client) -> None:
    tag = unique("p")
    out = load(org, "Contact", "insert",
               f"LastName,Level__c\n{tag}1,Primary\n{tag}2,Quaternary\n{tag}3,primary\n")  # fmt: skip
    assert "ok" in out[f"{tag}1"]
    assert out[f"{tag}2"]["error"] == (
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST:Level: bad value for restricted picklist field: "
        "Quaternary:Level__c --"
    )
    assert out[f"{tag}3"]["error"].startswith("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST:")
    k1, k2 = unique("s")[-12:], unique("S")[-12:]
    out = load(org, "Project__c", "insert", f"Code__c,Stage__c\n{k1},Active\n{k2},Paused\n")
    assert "ok" in out[k1] and out[k2]["error"].startswith("INVALID_OR_NULL_FOR_RESTRICTED")


def test_multi_select_picklists(org: httpx.Client) -> None:
    tag = unique("m")
    out = load(
        org, "Contact", "insert",
        f"LastName,Languages__c,Hobbies__c\n"
        f"{tag}1,German;English;German,Knitting;Chess\n"
        f"{tag}2,English;Klingon;Elvish,\n",
    )  # fmt: skip
    got = record(org, "Contact", out[f"{tag}1"]["ok"])
    # repeats dropped, selections in the picklist's order; unrestricted values kept after
    assert got["Languages__c"] == "English;German"
    assert got["Hobbies__c"] == "Chess;Knitting"
    assert out[f"{tag}2"]["error"] == (
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST:Languages: bad value for restricted picklist "
        "field: Klingon;Elvish:Languages__c --"
    )
    k1, k2 = unique("t")[-12:], unique("T")[-12:]
    out = load(org, "Project__c", "insert", f"Code__c,Tags__c\n{k1},Blue;Red\n{k2},Red;Pink\n")
    assert record(org, "Project__c", out[k1]["ok"])["Tags__c"] == "Red;Blue"
    assert out[k2]["error"].endswith("bad value for restricted picklist field: Pink:Tags__c --")


def test_unique_case_sensitive_and_insensitive(org: httpx.Client) -> None:
    badge = unique()[-8:]
    first = contact(org, Badge__c=f"Ab{badge}")
    # Badge__c is caseSensitive: another case is another value
    contact(org, Badge__c=f"aB{badge}")
    out = load(org, "Contact", "insert", f"Badge__c,LastName\nAb{badge},x\n")
    assert out[f"Ab{badge}"]["error"] == (
        f"DUPLICATE_VALUE:duplicate value found: Badge__c duplicates value on record with id: "
        f"{first[:15]}:--"
    )
    nick = unique("Ace")[-20:]
    first = contact(org, Nickname__c=nick)
    out = load(org, "Contact", "insert", f"Nickname__c,LastName\n{nick.upper()},x\n")
    assert out[nick.upper()]["error"] == (
        f"DUPLICATE_VALUE:duplicate value found: Nickname__c duplicates value on record with id: "
        f"{first[:15]}:--"
    )
    k = unique("u")[-11:]
    load(org, "Project__c", "insert", f"Code__c\n{k}a\n")
    out = load(org, "Project__c", "insert", f"Code__c\n{k}A\n")
    assert out[f"{k}A"]["error"].startswith("DUPLICATE_VALUE:duplicate value found: Code__c ")


def test_external_id_and_id_lookup_as_upsert_keys(org: httpx.Client) -> None:
    badge = unique()[-10:]
    cid = contact(org, Badge__c=badge)
    out = load(org, "Contact", "upsert", f"Badge__c,FirstName\n{badge},Up\n",
               externalIdFieldName="Badge__c")  # fmt: skip
    assert out[badge] == {"ok": cid} and record(org, "Contact", cid)["FirstName"] == "Up"
    email = f"{unique('e')}@example.com"
    cid = contact(org, Email=email)
    out = load(org, "Contact", "upsert", f"Email,FirstName\n{email},ByEmail\n",
               externalIdFieldName="Email")  # fmt: skip
    assert out[email] == {"ok": cid}
    r = org.post(f"/services/data/v{API}/jobs/ingest",
                 json={"object": "Contact", "operation": "upsert", "externalIdFieldName": "Nickname__c"})  # fmt: skip
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "INVALIDJOB"
    assert "Nickname__c is not an External ID" in r.json()[0]["message"]
    k = unique("x")[-12:]
    out = load(
        org, "Project__c", "upsert", f"Code__c,Name\n{k},first\n", externalIdFieldName="Code__c"
    )
    pid = out[k]["ok"]
    out = load(
        org, "Project__c", "upsert", f"Code__c,Name\n{k},second\n", externalIdFieldName="Code__c"
    )
    assert out[k] == {"ok": pid} and record(org, "Project__c", pid)["Name"] == "second"


def test_reference_fields_check_the_target_object(org: httpx.Client) -> None:
    acc = load(org, "Account", "insert", f"Name\n{unique('A')}\n")
    (acc_id,) = (v["ok"] for v in acc.values())
    other = contact(org)
    tag = unique("r")
    out = load(org, "Contact", "insert",
               f"LastName,AccountId\n{tag}1,{acc_id}\n{tag}2,{other}\n")  # fmt: skip
    assert record(org, "Contact", out[f"{tag}1"]["ok"])["AccountId"] == acc_id
    assert out[f"{tag}2"]["error"] == (
        f"MALFORMED_ID:Account ID: id value of incorrect type: {other}:AccountId --"
    )
    # IndividualId points at an object that is not loaded: any Id but another loaded object's
    out = load(org, "Contact", "insert",
               f"LastName,IndividualId\n{tag}3,0PK000000000001\n{tag}4,{acc_id}\n")  # fmt: skip
    got = record(org, "Contact", out[f"{tag}3"]["ok"])
    assert got["IndividualId"] == to18("0PK000000000001")
    assert out[f"{tag}4"]["error"].startswith("MALFORMED_ID:Individual ID: id value of incorrect")
    # an SFDX lookup: right and wrong object
    k1, k2 = unique("l")[-12:], unique("L")[-12:]
    out = load(org, "Project__c", "insert", f"Code__c,Account__c\n{k1},{acc_id}\n{k2},{other}\n")
    assert "ok" in out[k1]
    assert out[k2]["error"] == (
        f"MALFORMED_ID:Account: id value of incorrect type: {other}:Account__c --"
    )


def test_plain_id_column_of_another_object_is_malformed_id(org: httpx.Client) -> None:
    acc = load(org, "Account", "insert", f"Name\n{unique('A')}\n")
    (acc_id,) = (v["ok"] for v in acc.values())
    for op in ("update", "delete"):
        csv = f"Id,LastName\n{acc_id},x\n" if op == "update" else f"Id\n{acc_id}\n"
        out = load(org, "Contact", op, csv)
        assert out[acc_id]["error"] == (
            f"MALFORMED_ID:Contact ID: id value of incorrect type: {acc_id}:Id --"
        ), op


def test_schema_show_prints_what_is_enforced() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bulkforce", "schema", "show", "contact", *ORG_SCHEMA],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[0]: line for line in proc.stdout.splitlines()[2:] if line.strip()}
    assert proc.stdout.startswith("Contact (Contact): key prefix 003")
    assert "restricted to: Primary, Secondary, Tertiary" in lines["Level__c"]
    assert "default 'Secondary'" in lines["Level__c"]
    assert "multi-select" in lines["Languages__c"]
    assert "unique, case-sensitive" in lines["Badge__c"] and "external id" in lines["Badge__c"]
    assert "unique, case-insensitive" in lines["Nickname__c"]
    assert "at most 3 integer digits" in lines["Score__c"]
    assert "required on insert" in lines["LastName"] and "max length 80" in lines["LastName"]
    assert "insert only" in lines["Legacy_Code__c"] and "update only" in lines["Audit_Note__c"]
    assert "Account.Acct_Ext__c" in lines["AccountId"]
    assert "Individual (not loaded" in lines["IndividualId"]
    assert "read-only" in lines["MailingAddress"]
    proc = subprocess.run(
        [sys.executable, "-m", "bulkforce", "schema", "show", "Nope__c"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2 and "no object 'Nope__c'" in proc.stderr


@pytest.mark.parametrize(
    ("name", "text", "needle"),
    [
        ("env.json", '{"status": 1, "name": "NOT_FOUND", "message": "No such sobject"}',
         "the sf CLI reported an error (status 1): No such sobject"),
        ("objects/Thing__c/fields/X__c.field-meta.xml",
         '<CustomField xmlns="http://soap.sforce.com/2006/04/metadata"><fullName>X__c</fullName>'
         "<type>Hologram</type></CustomField>", "field X__c: unknown type 'Hologram'"),
        ("objects/Thing__c/fields/Y__c.field-meta.xml", "<CustomField><unclosed>",
         "not valid metadata XML"),
    ],
)  # fmt: skip
def test_bad_imports_stop_start_up_with_the_file_named(
    tmp_path: Path, name: str, text: str, needle: str
) -> None:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    arg = path if name.endswith(".json") else tmp_path
    proc = subprocess.run(
        [sys.executable, "-m", "bulkforce", "schema", "show", "Account", "--schema", str(arg)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2 and needle in proc.stderr and str(arg) in proc.stderr


def test_sfdx_folder_can_be_the_objects_folder_or_one_object() -> None:
    objects = DATA / "sfdx_project" / "force-app" / "main" / "default" / "objects"
    for arg in (objects, objects / "Project__c"):
        proc = subprocess.run(
            [sys.executable, "-m", "bulkforce", "schema", "show", "Project__c", "--schema", str(arg)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert "Project__c (Project)" in proc.stdout and "Tags__c" in proc.stdout
