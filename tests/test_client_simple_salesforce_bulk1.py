"""simple-salesforce 1.12.10 `sf.bulk` (Bulk API 1.0, always JSON jobs) against bulkforce.

The unchanged client talks to the session server over real HTTP; `sf.bulk_url` is overwritten
because simple-salesforce forces `https://` into the URLs it builds (clients.md §1.2).

simple-salesforce polls each batch once right away and then every 5 s, hard-coded for DML. The
`fast_poll` fixture shortens only that sleep (the module's `sleep` name) so the suite stays fast;
every request the client makes is unchanged. `test_default_polling_unpatched` runs without it.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
import simple_salesforce.bulk
from client_helpers import is_id, make_sf
from conftest import DB, Server, by, rows_where, unique
from simple_salesforce import Salesforce
from simple_salesforce.bulk import SFBulkType
from simple_salesforce.exceptions import SalesforceMalformedRequest

MISSING_LASTNAME = {
    "statusCode": "REQUIRED_FIELD_MISSING",
    "message": "Required fields are missing: [LastName]",
    "fields": ["LastName"],
}
JSON_DATE = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$"
COUNTERS = [
    "numberBatchesQueued", "numberBatchesInProgress", "numberBatchesCompleted",
    "numberBatchesFailed", "numberBatchesTotal", "numberRecordsProcessed", "numberRetries",
    "numberRecordsFailed", "totalProcessingTime", "apiActiveProcessingTime", "apexProcessingTime",
]  # fmt: skip


@pytest.fixture
def sf(server: Server) -> Salesforce:
    return make_sf(server)


@pytest.fixture
def contact(sf: Salesforce) -> SFBulkType:
    bulk: SFBulkType = sf.bulk.Contact
    return bulk


@pytest.fixture
def fast_poll(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Cap simple-salesforce's hard-coded 5 s batch-poll sleep at 50 ms; returns the asked waits."""
    asked: list[float] = []
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        asked.append(seconds)
        real_sleep(min(seconds, 0.05))

    monkeypatch.setattr(simple_salesforce.bulk, "sleep", sleep)
    return asked


def live_ids(db: DB, ids: list[str]) -> set[str]:
    return {r["Id"] for r in rows_where(db, "Contact", "Id", ids) if not r["IsDeleted"]}


def ok(created: bool, record_id: str) -> dict[str, Any]:
    return {"success": True, "created": created, "id": record_id, "errors": []}


def insert_contacts(contact: SFBulkType, records: list[dict[str, Any]]) -> list[str]:
    results = list(contact.insert(records))
    assert all(r["success"] for r in results), results
    return [r["id"] for r in results]


def wait_batch(t: SFBulkType, job_id: str, batch_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        info: dict[str, Any] = t._get_batch(job_id, batch_id)
        if info["state"] in ("Completed", "Failed", "NotProcessed"):
            return info
        assert time.monotonic() < deadline, info
        time.sleep(0.02)


# --- insert ----------------------------------------------------------------------------------


@pytest.mark.parametrize("use_serial", [False, True], ids=["parallel", "serial"])
def test_insert_several_batches_in_input_order(
    contact: SFBulkType, db: DB, fast_poll: list[float], use_serial: bool
) -> None:
    u = unique("ssins")
    records = [
        {"FirstName": f"F{i}", "LastName": f"Ins{i}-{u}", "Email": f"i{i}-{u}@example.com"}
        for i in range(7)
    ]
    records[3]["FirstName"] = "Zoé 日本"
    records[5]["Email"] = None

    results = list(contact.insert(records, batch_size=3, use_serial=use_serial))

    assert len(results) == 7
    assert all(r["success"] is True and r["created"] is True for r in results), results
    assert all(r["errors"] == [] for r in results)
    assert all(is_id(r["id"], "003") for r in results)
    names = [r["LastName"] for r in records]
    rows = by(rows_where(db, "Contact", "LastName", names), "LastName")
    # flattened across 3 batches (3 + 3 + 1) in batch order = input order
    assert [rows[n]["Id"] for n in names] == [r["id"] for r in results]
    assert rows[f"Ins3-{u}"]["FirstName"] == "Zoé 日本"
    assert rows[f"Ins5-{u}"]["Email"] is None
    assert rows[f"Ins6-{u}"]["Email"] == f"i6-{u}@example.com"


def test_insert_failures_keep_their_position(
    contact: SFBulkType, db: DB, fast_poll: list[float]
) -> None:
    u = unique("ssfail")
    records: list[dict[str, Any]] = [
        {"FirstName": "A", "LastName": f"A-{u}"},
        {"FirstName": f"NoLast-{u}"},  # key missing
        {"FirstName": f"NullLast-{u}", "LastName": None},  # JSON null
        {"FirstName": "D", "LastName": f"D-{u}"},
        {"FirstName": f"Empty-{u}", "LastName": ""},
    ]
    results = list(contact.insert(records, batch_size=2))

    assert [r["success"] for r in results] == [True, False, False, True, False]
    for bad in (results[1], results[2], results[4]):
        assert bad == {"success": False, "created": False, "id": None, "errors": [MISSING_LASTNAME]}
    rows = by(rows_where(db, "Contact", "LastName", [f"A-{u}", f"D-{u}"]), "LastName")
    assert [rows[f"A-{u}"]["Id"], rows[f"D-{u}"]["Id"]] == [results[0]["id"], results[3]["id"]]
    failed = [f"NoLast-{u}", f"NullLast-{u}", f"Empty-{u}"]
    assert rows_where(db, "Contact", "FirstName", failed) == []


def test_include_detailed_results(contact: SFBulkType, fast_poll: list[float]) -> None:
    u = unique("ssdet")
    records = [
        {"FirstName": "Zoé", "LastName": f"Det1-{u}"},
        {"FirstName": f"NoLast-{u}", "LastName": ""},
        {"FirstName": "Ada", "LastName": f"Det2-{u}"},
    ]
    # also GETs .../batch/{id}/request and merges request row i into result i
    results = list(contact.insert(records, batch_size=2, include_detailed_results=True))
    assert [(r["FirstName"], r["LastName"], r["success"]) for r in results] == [
        ("Zoé", f"Det1-{u}", True),
        (f"NoLast-{u}", "", False),
        ("Ada", f"Det2-{u}", True),
    ]
    assert results[1]["errors"] == [MISSING_LASTNAME]


def test_bypass_results_then_low_level_job_check(contact: SFBulkType, db: DB) -> None:
    u = unique("ssbyp")
    records = [{"LastName": f"Byp{i}-{u}"} for i in range(5)]
    out = list(contact.insert(records, batch_size=2, bypass_results=True))
    # one {"bypass_results": True} and one {"job_id": ...} per batch
    job_ids = {d["job_id"] for d in out if "job_id" in d}
    assert len(out) == 6 and len(job_ids) == 1
    (job_id,) = job_ids
    assert is_id(job_id, "750")

    job = contact._get_job(job_id)
    assert job["state"] == "Closed"  # closed right after adding the batches
    assert job["numberBatchesTotal"] == 3
    # closing does not stop queued batches: they all complete
    deadline = time.monotonic() + 30
    while job["numberBatchesCompleted"] < 3:
        assert time.monotonic() < deadline, job
        time.sleep(0.02)
        job = contact._get_job(job_id)
    assert (job["numberRecordsProcessed"], job["numberRecordsFailed"]) == (5, 0)
    assert len(rows_where(db, "Contact", "LastName", [r["LastName"] for r in records])) == 5


def test_auto_batch_size(contact: SFBulkType, db: DB, fast_poll: list[float]) -> None:
    u = unique("ssauto")
    records = [{"LastName": f"Auto{i}-{u}"} for i in range(4)]
    results = list(contact.insert(records, batch_size="auto"))  # type: ignore[arg-type]
    names = [r["LastName"] for r in records]
    rows = by(rows_where(db, "Contact", "LastName", names), "LastName")
    assert results == [ok(True, rows[n]["Id"]) for n in names]


def test_submit_dml(sf: Salesforce, db: DB, fast_poll: list[float]) -> None:
    u = unique("ssdml")
    results = sf.bulk.submit_dml("Contact", "insert", [{"LastName": f"Dml-{u}"}])
    (res,) = list(results)
    (row,) = rows_where(db, "Contact", "LastName", [f"Dml-{u}"])
    assert res == ok(True, row["Id"])


def test_default_polling_unpatched(contact: SFBulkType, db: DB) -> None:
    """No fast_poll: the real 5 s poll interval; must finish well inside it or on one poll."""
    u = unique("ssdef")
    started = time.monotonic()
    (res,) = list(contact.insert([{"LastName": f"Default-{u}"}]))
    assert time.monotonic() - started < 12
    (row,) = rows_where(db, "Contact", "LastName", [f"Default-{u}"])
    assert res == ok(True, row["Id"])


# --- update / upsert / delete ----------------------------------------------------------------


def test_update(contact: SFBulkType, db: DB, fast_poll: list[float]) -> None:
    u = unique("ssupd")
    ids = insert_contacts(
        contact,
        [
            {"FirstName": "Keep", "LastName": f"U{i}-{u}", "Email": f"u{i}-{u}@example.com"}
            for i in range(3)
        ],
    )
    results = list(
        contact.update(
            [
                {"Id": ids[0], "Title": "Chef 日本", "Email": None},  # null clears
                {"Id": ids[1], "Title": "Second"},  # Email absent: unchanged
                {"Id": ids[2], "LastName": None},  # required field nulled: row error
            ],
            batch_size=2,
        )
    )
    assert results[:2] == [ok(False, ids[0]), ok(False, ids[1])]
    assert results[2]["success"] is False
    assert results[2]["errors"] == [MISSING_LASTNAME]

    rows = by(rows_where(db, "Contact", "Id", ids), "Id")
    assert (rows[ids[0]]["Title"], rows[ids[0]]["Email"]) == ("Chef 日本", None)
    assert (rows[ids[1]]["Title"], rows[ids[1]]["Email"]) == ("Second", f"u1-{u}@example.com")
    assert rows[ids[2]]["LastName"] == f"U2-{u}"
    assert all(r["FirstName"] == "Keep" for r in rows.values())


@pytest.mark.parametrize("use_serial", [False, True], ids=["parallel", "serial"])
def test_upsert_on_external_id(
    contact: SFBulkType, db: DB, fast_poll: list[float], use_serial: bool
) -> None:
    u = unique("ssups")
    ext = [f"E{i}-{u}" for i in range(5)]
    old_ids = insert_contacts(
        contact,
        [
            {"LastName": f"Before0-{u}", "External_Id__c": ext[0]},
            {"LastName": f"Before3-{u}", "External_Id__c": ext[3]},
        ],
    )
    records = [{"External_Id__c": e, "LastName": f"After{i}-{u}"} for i, e in enumerate(ext)]
    results = list(contact.upsert(records, "External_Id__c", batch_size=2, use_serial=use_serial))

    assert [r["created"] for r in results] == [False, True, True, False, True]
    assert all(r["success"] is True and r["errors"] == [] for r in results)
    assert (results[0]["id"], results[3]["id"]) == tuple(old_ids)
    rows = by(rows_where(db, "Contact", "External_Id__c", ext), "External_Id__c")
    assert [rows[e]["Id"] for e in ext] == [r["id"] for r in results]
    assert [rows[e]["LastName"] for e in ext] == [f"After{i}-{u}" for i in range(5)]


def test_delete_and_hard_delete(contact: SFBulkType, db: DB, fast_poll: list[float]) -> None:
    u = unique("ssdel")
    ids = insert_contacts(contact, [{"LastName": f"D{i}-{u}"} for i in range(5)])

    results = list(contact.delete([{"Id": i} for i in ids[:3]], batch_size=2))
    assert results == [ok(False, i) for i in ids[:3]]
    assert live_ids(db, ids) == set(ids[3:])

    # deleting again: row error, the other row goes through
    results = list(contact.delete([{"Id": ids[0]}, {"Id": ids[3]}], batch_size=1))
    assert results[1] == ok(False, ids[3])
    assert (results[0]["success"], results[0]["created"]) == (False, False)
    assert [e["statusCode"] for e in results[0]["errors"]] == ["ENTITY_IS_DELETED"]
    assert results[0]["errors"][0]["message"] == "entity is deleted"

    results = list(contact.hard_delete([{"Id": ids[4]}], use_serial=True))
    assert results == [ok(False, ids[4])]
    # hard-deleted: the row is gone; soft-deleted rows stay (IsDeleted) until purged
    assert {r["Id"] for r in rows_where(db, "Contact", "Id", ids)} == set(ids[:4])


# --- the low-level calls of this version -----------------------------------------------------


def test_low_level_job_lifecycle(contact: SFBulkType, db: DB) -> None:
    u = unique("sslow")
    job = contact._create_job(operation="insert", use_serial=True)
    job_id = job["id"]
    assert is_id(job_id, "750")
    assert (job["state"], job["object"], job["operation"]) == ("Open", "Contact", "insert")
    assert (job["contentType"], job["concurrencyMode"]) == ("JSON", "Serial")  # sent as int 1
    assert job["apiVersion"] == 59.0
    assert is_id(job["createdById"], "005")
    assert re.match(JSON_DATE, job["createdDate"]), job["createdDate"]
    assert {k: job[k] for k in COUNTERS} == dict.fromkeys(COUNTERS, 0)  # JSON numbers
    assert "externalIdFieldName" not in job

    batches = [
        contact._add_batch(job_id, [{"LastName": f"Low1-{u}"}, {"FirstName": "x"}], "insert"),
        contact._add_batch(job_id, [{"LastName": f"Low2-{u}"}], "insert"),
    ]
    for b in batches:
        assert is_id(b["id"], "751")
        assert b["jobId"] == job_id
        assert b["state"] in ("Queued", "InProgress", "Completed")
    infos = [wait_batch(contact, job_id, b["id"]) for b in batches]
    assert [i["state"] for i in infos] == ["Completed", "Completed"]
    assert [(i["numberRecordsProcessed"], i["numberRecordsFailed"]) for i in infos] == [
        (2, 1),
        (1, 0),
    ]

    (first,) = list(contact._get_batch_results(job_id, batches[0]["id"], operation="insert"))
    assert first[0]["success"] is True and is_id(first[0]["id"], "003")
    assert first[1] == {
        "success": False,
        "created": False,
        "id": None,
        "errors": [MISSING_LASTNAME],
    }

    # still Open: 1.0 batches are processed before the job is closed
    mid = contact._get_job(job_id)
    assert mid["state"] == "Open"
    assert (mid["numberBatchesTotal"], mid["numberBatchesCompleted"]) == (2, 2)
    assert (mid["numberRecordsProcessed"], mid["numberRecordsFailed"]) == (3, 1)

    closed = contact._close_job(job_id)
    assert (closed["id"], closed["state"]) == (job_id, "Closed")
    assert contact._get_job(job_id)["state"] == "Closed"

    with pytest.raises(SalesforceMalformedRequest) as exc:
        contact._add_batch(job_id, [{"LastName": f"Late-{u}"}], "insert")
    assert exc.value.status == 400
    assert exc.value.content["exceptionCode"] == "InvalidJobState"
    assert rows_where(db, "Contact", "LastName", [f"Late-{u}"]) == []
    (row,) = rows_where(db, "Contact", "LastName", [f"Low1-{u}"])
    assert row["Id"] == first[0]["id"]


def test_low_level_batch_request(contact: SFBulkType) -> None:
    u = unique("ssreq")
    data = [{"LastName": f"Req-{u}", "FirstName": "Zoé", "Email": None}]
    job_id = contact._create_job(operation="insert", use_serial=False)["id"]
    batch = contact._add_batch(job_id, data, "insert")
    wait_batch(contact, job_id, batch["id"])
    (merged,) = list(contact._get_batch_request_with_batch_results(job_id, batch["id"]))
    assert len(merged) == 1
    assert merged[0]["LastName"] == f"Req-{u}"
    assert merged[0]["FirstName"] == "Zoé"
    assert merged[0]["Email"] is None
    assert merged[0]["success"] is True
    contact._close_job(job_id)


# --- errors ----------------------------------------------------------------------------------


def test_unknown_field_fails_the_batch(contact: SFBulkType, fast_poll: list[float]) -> None:
    u = unique("ssbogus")
    # the batch ends Failed; simple-salesforce still asks for its results -> 400 InvalidBatch
    with pytest.raises(SalesforceMalformedRequest) as exc:
        contact.insert([{"LastName": f"Bogus-{u}", "Bogus__c": "1"}])
    assert exc.value.status == 400
    assert exc.value.content == {
        "exceptionCode": "InvalidBatch",
        "exceptionMessage": "Records not processed",
    }


def test_failed_batch_state_message(contact: SFBulkType) -> None:
    u = unique("ssbogus2")
    job_id = contact._create_job(operation="insert", use_serial=False)["id"]
    batch = contact._add_batch(job_id, [{"LastName": f"B-{u}", "Bogus__c": "1"}], "insert")
    info = wait_batch(contact, job_id, batch["id"])
    assert info["state"] == "Failed"
    assert info["stateMessage"] == "InvalidBatch : Field name not found : Bogus__c"
    assert (info["numberRecordsProcessed"], info["numberRecordsFailed"]) == (0, 0)
    contact._close_job(job_id)


def test_unknown_object_is_rejected(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.bulk.NoSuchThing__c.insert([{"Name": "x"}])
    assert exc.value.status == 400
    assert exc.value.content == {
        "exceptionCode": "InvalidEntity",
        "exceptionMessage": "Entity 'NoSuchThing__c' is not supported by the Bulk API.",
    }


def test_upsert_without_external_id_field(contact: SFBulkType) -> None:
    with pytest.raises(SalesforceMalformedRequest) as exc:
        contact._create_job(operation="upsert", use_serial=False, external_id_field=None)
    assert exc.value.status == 400
    assert exc.value.content["exceptionCode"] == "InvalidJob"
    assert "External ID was blank for Contact" in exc.value.content["exceptionMessage"]


def test_wrong_session_id(server: Server) -> None:
    sf = make_sf(server, token="00D000000000001AAA!wrong")
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.bulk.Contact.insert([{"LastName": "never"}])
    assert exc.value.status == 400
    assert exc.value.content["exceptionCode"] == "InvalidSessionId"


def test_unknown_job(contact: SFBulkType) -> None:
    with pytest.raises(SalesforceMalformedRequest) as exc:
        contact._get_job("750000000000000AAA")
    assert exc.value.status == 400
    assert exc.value.content["exceptionCode"] == "InvalidJob"
