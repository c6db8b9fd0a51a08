"""Relationship columns against an imported org schema: parents loaded earlier, missing and
duplicate parents, polymorphic headers, and a parent created earlier in the same job."""

from __future__ import annotations

import httpx
from bulk2_helpers import failed, run_job, success
from conftest import API, unique

SOBJECTS = f"/services/data/v{API}/sobjects"


def ids_of(c: httpx.Client, obj: str, csv: str) -> list[str]:
    info = run_job(c, obj, "insert", csv)
    assert info["numberRecordsFailed"] == 0, info
    return [r["sf__Id"] for r in success(c, info["id"], csv.split("\n", 1)[0]).dicts()]


def get(c: httpx.Client, obj: str, rid: str, field: str) -> object:
    r = c.get(f"{SOBJECTS}/{obj}/{rid}", params={"fields": field})
    assert r.status_code == 200, r.text
    return r.json()[field]


def test_parent_loaded_earlier_by_external_id(org: httpx.Client) -> None:
    ext = unique("acc")
    (acc,) = ids_of(org, "Account", f"Name,Acct_Ext__c\nParent,{ext}\n")
    code = unique("p")[-12:]
    # SFDX lookup Account__c: relationship Account__r; standard AccountId: Account
    (proj,) = ids_of(org, "Project__c", f"Code__c,Account__r.Acct_Ext__c\n{code},{ext}\n")
    assert get(org, "Project__c", proj, "Account__c") == acc
    (con,) = ids_of(org, "Contact", f"LastName,Account.acct_ext__c\nKid,{ext.upper()}\n")
    assert get(org, "Contact", con, "AccountId") == acc
    # upsert with a relationship column updates the reference
    (acc2,) = ids_of(org, "Account", f"Name,Acct_Ext__c\nOther,{ext}2\n")
    info = run_job(org, "Project__c", "upsert", f"Code__c,Account__r.Acct_Ext__c\n{code},{ext}2\n",
                   externalIdFieldName="Code__c")  # fmt: skip
    assert info["numberRecordsFailed"] == 0, info
    assert get(org, "Project__c", proj, "Account__c") == acc2


def test_missing_and_duplicate_parents(org: httpx.Client) -> None:
    region = unique("R")[-20:]
    a1, a2 = ids_of(org, "Account", f"Name,Region_Code__c\nEast 1,{region}\nEast 2,{region}\n")
    missing = unique("none")[-20:]
    header = "LastName,Account.Region_Code__c"
    info = run_job(org, "Contact", "insert", f"{header}\nDup,{region}\nLost,{missing}\n")
    assert info["numberRecordsFailed"] == 2, info
    errors = {r["LastName"]: r["sf__Error"] for r in failed(org, info["id"], header).dicts()}
    assert errors["Dup"] == (
        f"DUPLICATE_EXTERNAL_ID:Region Code: more than one record found for external id field: "
        f"[{', '.join(sorted([a1, a2]))}]:Region_Code__c --"
    )
    assert errors["Lost"] == (
        f"INVALID_FIELD:Foreign key external ID: {missing} not found for field Region_Code__c "
        "in entity Account:--"
    )


def test_polymorphic_headers(org: httpx.Client) -> None:
    badge = "Ab" + unique()[-8:]
    (con,) = ids_of(org, "Contact", f"LastName,Badge__c\nWho,{badge}\n")
    ext = unique("what")
    (acc,) = ids_of(org, "Account", f"Name,Acct_Ext__c\nWhat,{ext}\n")
    s1, s2 = unique("call"), unique("call")
    t1, t2 = ids_of(
        org, "Task",
        f"Subject,Contact:Who.Badge__c,Account:What.Acct_Ext__c\n{s1},{badge},{ext}\n"
        f"{s2},{badge},#N/A\n",
    )  # fmt: skip
    assert (get(org, "Task", t1, "WhoId"), get(org, "Task", t1, "WhatId")) == (con, acc)
    assert (get(org, "Task", t2, "WhoId"), get(org, "Task", t2, "WhatId")) == (con, None)
    # the other spelling, Relationship:Type.Field
    (t3,) = ids_of(org, "Task", f"Subject,Who:Contact.Badge__c\n{unique('c')},{badge}\n")
    assert get(org, "Task", t3, "WhoId") == con
    # Badge__c is case-sensitive: another case is another (missing) parent
    header = "Subject,Contact:Who.Badge__c"
    info = run_job(org, "Task", "insert", f"{header}\nx,{badge.swapcase()}\n")
    (row,) = failed(org, info["id"], header).dicts()
    assert row["sf__Error"].startswith("INVALID_FIELD:Foreign key external ID:")


def test_parent_created_earlier_in_the_same_job(org: httpx.Client) -> None:
    """The job runs in upload order in internal batches of 10,000 rows: a parent from an earlier
    batch is visible, one from the same batch is not (README: relationship columns)."""
    p = unique("top")
    rows = [f"Top,{p},", f"Same batch,{p}c1,{p}"]
    rows += [f"Filler {n},{p}f{n}," for n in range(9_998)]
    rows += [f"Next batch,{p}c2,{p}"]
    header = "Name,Acct_Ext__c,Parent.Acct_Ext__c"
    info = run_job(org, "Account", "insert", header + "\n" + "\n".join(rows) + "\n")
    assert (info["numberRecordsProcessed"], info["numberRecordsFailed"]) == (10_001, 1), info
    (bad,) = failed(org, info["id"], header).dicts()
    assert bad["Name"] == "Same batch"
    assert bad["sf__Error"] == (
        f"INVALID_FIELD:Foreign key external ID: {p} not found for field Acct_Ext__c in entity "
        "Account:--"
    )
    ok = {r["Name"]: r["sf__Id"] for r in success(org, info["id"], header).dicts()}
    assert get(org, "Account", ok["Next batch"], "ParentId") == ok["Top"]
