"""Bulk API 2.0 record-level errors (§5, checklist E-*) and per-type validation on Widget__c
(§3.11.2, §3.11.3), checked in the result CSVs and in the SQLite database.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from bulk2_helpers import (
    as_utc,
    assert_id18,
    bad_suffix,
    db_is_live,
    db_one,
    db_query,
    db_row,
    failed,
    only_error,
    run_job,
    success,
    to18,
    unknown_id,
)
from conftest import Server, unique

# ---------------------------------------------------------------- helpers


def insert_one(http: httpx.Client, obj: str, header: str, row: str) -> str:
    """Insert one record that must succeed; returns its id."""
    info = run_job(http, obj, "insert", f"{header}\n{row}\n")
    assert info["numberRecordsFailed"] == 0, failed(http, info["id"], header).rows
    rows = success(http, info["id"], header).dicts()
    assert len(rows) == 1
    return rows[0]["sf__Id"]


def new_widget(http: httpx.Client, **fields: str) -> str:
    cols = {"Name": unique("w"), **fields}
    return insert_one(http, "Widget__c", ",".join(cols), ",".join(cols.values()))


def new_account(http: httpx.Client) -> str:
    return insert_one(http, "Account", "Name", unique("acct"))


def new_contact(http: httpx.Client) -> str:
    return insert_one(http, "Contact", "LastName", unique("cont"))


def one_row_error(http: httpx.Client, obj: str, operation: str, header: str, row: str) -> str:
    """Run a one-row job whose row must fail; return the sf__Error."""
    info = run_job(http, obj, operation, f"{header}\n{row}\n")
    assert info["state"] == "JobComplete", info
    assert info["numberRecordsProcessed"] == 1 and info["numberRecordsFailed"] == 1, info
    return only_error(http, info["id"], header)


def type_error(label: str, api: str, value: str) -> str:
    return f"INVALID_TYPE_ON_FIELD_IN_RECORD:{label}: value not of required type: {value}:{api} --"


Good = list[tuple[str, Any]]
Bad = list[tuple[str, str]]


def check_field(
    http: httpx.Client, server: Server, api: str, good: Good, bad: Bad
) -> dict[str, dict[str, str]]:
    """Insert one widget per value: good values are stored as expected, bad ones fail with
    exactly the expected sf__Error and write nothing. Returns the success rows by tag."""
    header = f"Name,{api}"
    tags = {}
    lines = []
    for i, (value, _) in enumerate(good + [(v, "") for v, _ in bad]):
        tag = unique(f"t{i}-")
        tags[tag] = value
        quoted = '"' + value.replace('"', '""') + '"'
        lines.append(f"{tag},{quoted}")
    info = run_job(http, "Widget__c", "insert", header + "\n" + "\n".join(lines) + "\n")
    assert info["state"] == "JobComplete", info
    assert info["numberRecordsProcessed"] == len(good) + len(bad), info
    ok = {r["Name"]: r for r in success(http, info["id"], header).dicts()}
    ko = {r["Name"]: r for r in failed(http, info["id"], header).dicts()}
    by_value = {v: t for t, v in tags.items()}
    for value, expected in good:
        tag = by_value[value]
        assert tag in ok, (value, ko.get(tag))
        assert ok[tag][api] == value  # echoed as uploaded
        stored = db_one(server, "Widget__c", ok[tag]["sf__Id"])[api]
        if isinstance(expected, datetime):
            assert as_utc(stored) == expected, (value, stored)
        elif isinstance(expected, float):
            assert stored == pytest.approx(expected), (value, stored)
        else:
            assert stored == expected, (value, stored)
            assert type(stored) is type(expected), (value, stored)
    for value, error in bad:
        tag = by_value[value]
        assert tag in ko, (value, "unexpectedly succeeded")
        got = ko[tag]
        assert got["sf__Id"] == ""
        assert got[api] == value
        if error.endswith("*"):
            assert got["sf__Error"].startswith(error[:-1]), got["sf__Error"]
        else:
            assert got["sf__Error"] == error
    assert len(ok) == len(good) and len(ko) == len(bad)
    return ok


# ---------------------------------------------------------------- E lines


def test_e_01_required_field_missing(http: httpx.Client, server: Server) -> None:
    expected = "REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --"
    # column present but blank
    assert one_row_error(http, "Widget__c", "insert", "Name,Notes__c", f",{unique()}") == expected
    # column absent
    assert one_row_error(http, "Widget__c", "insert", "Notes__c", unique()) == expected
    # standard object
    assert one_row_error(http, "Contact", "insert", "FirstName,LastName", f"{unique()},") == (
        "REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --"
    )
    # set to null on update
    rid = new_widget(http)
    before = db_one(server, "Widget__c", rid)["Name"]
    assert one_row_error(http, "Widget__c", "update", "Id,Name", f"{rid},#N/A") == expected
    assert db_one(server, "Widget__c", rid)["Name"] == before


def test_e_02_update_of_missing_record(http: httpx.Client, server: Server) -> None:
    rid = new_widget(http)
    ghost = unknown_id(rid[:3])
    assert one_row_error(http, "Widget__c", "update", "Id,Name", f"{ghost},x") == (
        "INVALID_CROSS_REFERENCE_KEY:invalid cross reference id:--"
    )
    del_info = run_job(http, "Widget__c", "delete", f"Id\n{rid}\n")
    assert del_info["numberRecordsFailed"] == 0, del_info
    info = run_job(http, "Widget__c", "update", f"Id,Name\n{rid},{unique('again')}\n")
    assert info["numberRecordsFailed"] == 1, info
    rows = failed(http, info["id"], "Id,Name").dicts()
    assert rows[0]["sf__Error"] == "ENTITY_IS_DELETED:entity is deleted:--"
    assert rows[0]["sf__Id"] == rid  # v53+: the id is reported for update failures
    assert not db_is_live(server, "Widget__c", rid)


def test_e_03_wrong_object_id_in_reference(http: httpx.Client, server: Server) -> None:
    contact = new_contact(http)
    assert one_row_error(
        http, "Contact", "insert", "LastName,AccountId", f"{unique()},{contact}"
    ) == (f"MALFORMED_ID:Account ID: id value of incorrect type: {contact}:AccountId --")
    # custom lookup on Widget__c
    err = one_row_error(http, "Widget__c", "insert", "Name,Account__c", f"{unique()},{contact}")
    assert err.startswith("MALFORMED_ID:"), err
    assert err.endswith(f"id value of incorrect type: {contact}:Account__c --"), err


def test_e_04_string_too_long(http: httpx.Client, server: Server) -> None:
    check_field(
        http,
        server,
        "Code__c",
        good=[("c" * 20, "c" * 20), ("é" * 20, "é" * 20), ("a,b" * 6, "a,b" * 6)],
        bad=[
            ("d" * 21, f"STRING_TOO_LONG:Code: data value too large: {'d' * 21} (max length=20):Code__c --"),
            ("ü" * 25, f"STRING_TOO_LONG:Code: data value too large: {'ü' * 25} (max length=20):Code__c --"),
        ],
    )  # fmt: skip


def test_e_05_not_a_number(http: httpx.Client, server: Server) -> None:
    check_field(
        http,
        server,
        "Count__c",
        good=[("42", 42), ("-7", -7), ("0", 0)],
        bad=[(v, type_error("Count", "Count__c", v)) for v in ("abc", "12x", "1,000")],
    )


def test_e_06_duplicate_unique_value(http: httpx.Client, server: Server) -> None:
    ext = unique("dup")
    first = insert_one(http, "Contact", "LastName,External_Id__c", f"One,{ext}")
    err = one_row_error(http, "Contact", "insert", "LastName,External_Id__c", f"Two,{ext}")
    assert err == (
        "DUPLICATE_VALUE:duplicate value found: External_Id__c duplicates value on record "
        f"with id: {first[:15]}:--"
    )
    sku = unique("s")[-20:]
    w = new_widget(http, Sku__c=sku)
    err = one_row_error(http, "Widget__c", "insert", "Name,Sku__c", f"{unique()},{sku}")
    assert err == (
        f"DUPLICATE_VALUE:duplicate value found: Sku__c duplicates value on record with id: {w[:15]}:--"
    )
    rows = [r for r in [db_row(server, "Widget__c", w)] if r]
    assert [r["Sku__c"] for r in rows] == [sku]


def test_e_07_upsert_key_matching_two_records(http: httpx.Client, server: Server) -> None:
    code = unique("c")[-20:]
    a = new_widget(http, Code__c=code)
    b = new_widget(http, Code__c=code)
    header = "Code__c,Name"
    info = run_job(
        http, "Widget__c", "upsert", f"{header}\n{code},{unique()}\n", externalIdFieldName="Code__c"
    )
    assert info["numberRecordsFailed"] == 1, info
    err = failed(http, info["id"], header).dicts()[0]["sf__Error"]
    m = re.fullmatch(
        r"DUPLICATE_EXTERNAL_ID:Code: more than one record found for external id field: "
        r"\[(\w{15,18}), (\w{15,18})\]:Code__c --",
        err,
    )
    assert m, err
    assert {m[1][:15], m[2][:15]} == {a[:15], b[:15]}


def test_e_08_update_without_id(http: httpx.Client) -> None:
    assert one_row_error(http, "Widget__c", "update", "Id,Name", f",{unique()}") == (
        "MISSING_ARGUMENT:Id not specified in an update call:--"
    )


def test_e_09_delete_already_deleted(http: httpx.Client, server: Server) -> None:
    rid = new_widget(http)
    first = run_job(http, "Widget__c", "delete", f"Id\n{rid}\n")
    assert first["numberRecordsFailed"] == 0, first
    assert not db_is_live(server, "Widget__c", rid)
    info = run_job(http, "Widget__c", "delete", f"Id\n{rid}\n")
    assert info["numberRecordsFailed"] == 1, info
    row = failed(http, info["id"], "Id").dicts()[0]
    assert row["sf__Error"] == "ENTITY_IS_DELETED:entity is deleted:--"
    assert row["sf__Id"] == rid


def test_e_10_errors_without_fields_end_with_colon_dashes(http: httpx.Client) -> None:
    rid = new_widget(http)
    header = "Id,Name"
    body = f"{header}\n,{unique()}\n{unknown_id(rid[:3])},{unique()}\n{rid},#N/A\n"
    info = run_job(http, "Widget__c", "update", body)
    assert info["numberRecordsFailed"] == 3, info
    errors = sorted(r["sf__Error"] for r in failed(http, info["id"], header).dicts())
    no_fields = [e for e in errors if not e.startswith("REQUIRED_FIELD_MISSING")]
    assert len(no_fields) == 2
    for e in no_fields:
        assert e.endswith(":--") and not e.endswith(" :--"), e
    with_fields = [e for e in errors if e.startswith("REQUIRED_FIELD_MISSING")]
    assert with_fields == ["REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --"]


# ---------------------------------------------------------------- per-type validation


def test_type_email(http: httpx.Client, server: Server) -> None:
    check_field(
        http,
        server,
        "Email__c",
        good=[("a.b+c@example.com", "a.b+c@example.com"), ("x@sub.example.org", "x@sub.example.org")],
        bad=[
            (v, f"INVALID_EMAIL_ADDRESS:Email: invalid email address: {v}:Email__c --")
            for v in ("not-an-email", "two@@example.com", "sp ace@example.com")
        ],
    )  # fmt: skip


def test_type_int(http: httpx.Client, server: Server) -> None:
    check_field(
        http,
        server,
        "Count__c",
        good=[("2147483647", 2147483647), ("-2147483648", -2147483648), ("+5", 5)],
        bad=[(v, type_error("Count", "Count__c", v)) for v in ("seven", "1e", "--1", "0x10")],
    )


def test_type_double(http: httpx.Client, server: Server) -> None:
    check_field(
        http,
        server,
        "Quantity__c",
        good=[("1.5e3", 1500.0), ("-12", -12.0), ("1E2", 100.0)],
        bad=[(v, type_error("Quantity", "Quantity__c", v)) for v in ("abc", "1,000", "1.2.3")],
    )


def test_type_currency(http: httpx.Client, server: Server) -> None:
    check_field(
        http,
        server,
        "Price__c",
        good=[("12.34", 12.34), ("0.5", 0.5), ("1e2", 100.0)],
        bad=[(v, type_error("Price", "Price__c", v)) for v in ("$5", "12,34", "5 USD", "€3")],
    )


def test_type_percent(http: httpx.Client, server: Server) -> None:
    check_field(
        http,
        server,
        "Ratio__c",
        good=[("12.5", 12.5), ("-3", -3.0), ("99.99", 99.99)],
        bad=[(v, type_error("Ratio", "Ratio__c", v)) for v in ("12.5%", "ten", "1 2")],
    )


def test_type_boolean(http: httpx.Client, server: Server) -> None:
    check_field(
        http,
        server,
        "Active__c",
        good=[("true", 1), ("FALSE", 0), ("True", 1), ("1", 1), ("0", 0)],
        bad=[(v, type_error("Active", "Active__c", v)) for v in ("maybe", "2", "t r u e")],
    )


def test_type_date(http: httpx.Client, server: Server) -> None:
    check_field(
        http,
        server,
        "Released__c",
        good=[("2024-03-01", "2024-03-01"), ("1999-12-31", "1999-12-31")],
        bad=[
            (v, type_error("Released", "Released__c", v))
            for v in ("2024-02-30", "03/01/2024", "tomorrow", "2024-13-01")
        ],
    )


def test_type_datetime(http: httpx.Client, server: Server) -> None:
    check_field(
        http,
        server,
        "Seen_At__c",
        good=[
            ("2024-03-01T10:00:00Z", datetime(2024, 3, 1, 10, 0, tzinfo=UTC)),
            ("2024-03-01T10:00:00.000Z", datetime(2024, 3, 1, 10, 0, tzinfo=UTC)),
            ("2024-03-01T10:00:00.123+02:00", datetime(2024, 3, 1, 8, 0, 0, 123000, tzinfo=UTC)),
            ("2024-03-01T23:30:00.000-05:00", datetime(2024, 3, 2, 4, 30, tzinfo=UTC)),
        ],
        bad=[
            (v, type_error("Seen At", "Seen_At__c", v))
            for v in ("yesterday", "2024-03-01T25:00:00Z", "2024-13-01T00:00:00Z")
        ],
    )


def test_type_picklist(http: httpx.Client, server: Server) -> None:
    """Color__c is not a restricted picklist (no restrictedPicklist in the schema): any text
    is accepted, like Salesforce; the defined values are stored as given."""
    check_field(
        http,
        server,
        "Color__c",
        good=[("Red", "Red"), ("Green", "Green"), ("Blue", "Blue")],
        bad=[],
    )


def test_type_reference(http: httpx.Client, server: Server) -> None:
    acc = new_account(http)
    acc2 = new_account(http)
    contact = new_contact(http)
    ghost = unknown_id("001")
    ok = check_field(
        http,
        server,
        "Account__c",
        good=[(acc, acc), (acc2[:15], acc2)],
        bad=[
            (contact, "MALFORMED_ID:*"),
            ("not-an-id", "MALFORMED_ID:*"),
            (bad_suffix(acc), "MALFORMED_ID:*"),
            (ghost, "INVALID_CROSS_REFERENCE_KEY:invalid cross reference id:*"),
        ],
    )
    assert len(ok) == 2


def test_type_reference_error_texts(http: httpx.Client) -> None:
    contact = new_contact(http)
    err = one_row_error(http, "Widget__c", "insert", "Name,Account__c", f"{unique()},{contact}")
    assert re.fullmatch(
        rf"MALFORMED_ID:.+: id value of incorrect type: {contact}:Account__c --", err
    )
    ghost = unknown_id("001")
    err = one_row_error(http, "Widget__c", "insert", "Name,Account__c", f"{unique()},{ghost}")
    assert err in (
        "INVALID_CROSS_REFERENCE_KEY:invalid cross reference id:--",
        "INVALID_CROSS_REFERENCE_KEY:invalid cross reference id:Account__c --",
    ), err


def test_several_bad_fields_in_one_row(http: httpx.Client) -> None:
    header = "Name,Count__c,Email__c"
    err = one_row_error(http, "Widget__c", "insert", header, f"{unique()},x,bad")
    assert re.fullmatch(r"([A-Z_]+:.*?:[\w,]* --\s*)+", err, re.S), err
    assert "Count__c" in err or "Email__c" in err


# ---------------------------------------------------------------- nulls and blanks


ALL = {
    "Notes__c": ("some notes", "some notes"),
    "Count__c": ("3", 3),
    "Quantity__c": ("4", 4.0),
    "Price__c": ("5.25", 5.25),
    "Ratio__c": ("6.5", 6.5),
    "Active__c": ("true", 1),
    "Released__c": ("2024-03-01", "2024-03-01"),
    "Seen_At__c": ("2024-03-01T10:00:00Z", datetime(2024, 3, 1, 10, tzinfo=UTC)),
    "Email__c": ("n@example.com", "n@example.com"),
    "Phone__c": ("+1 555 0100", "+1 555 0100"),
    "Site__c": ("https://example.com", "https://example.com"),
    "Color__c": ("Red", "Red"),
}


def stored_equal(value: Any, expected: Any) -> bool:
    if isinstance(expected, datetime):
        return as_utc(value) == expected
    return bool(value == expected)


def test_na_sets_null_and_blank_leaves_unchanged(http: httpx.Client, server: Server) -> None:
    acc = new_account(http)
    fields = {**{k: v[0] for k, v in ALL.items()}, "Account__c": acc}
    rid = new_widget(http, **fields)
    row = db_one(server, "Widget__c", rid)
    for k, (_, expected) in ALL.items():
        assert stored_equal(row[k], expected), (k, row[k])
    assert row["Account__c"] == acc

    cols = list(fields)
    blank = run_job(http, "Widget__c", "update", f"Id,{','.join(cols)}\n{rid}{',' * len(cols)}\n")
    assert blank["numberRecordsFailed"] == 0, blank
    after_blank = db_one(server, "Widget__c", rid)
    for k in [*cols, "Name"]:
        assert after_blank[k] == row[k], (k, after_blank[k], row[k])  # nothing changed

    cols = [c for c in cols if c != "Active__c"]  # a checkbox is never null in Salesforce
    nulls = run_job(
        http, "Widget__c", "update", f"Id,{','.join(cols)}\n{rid}{',#N/A' * len(cols)}\n"
    )
    assert nulls["numberRecordsFailed"] == 0, failed(http, nulls["id"], "Id," + ",".join(cols)).rows
    after = db_one(server, "Widget__c", rid)
    for k in cols:
        assert after[k] is None, (k, after[k])
    assert after["Name"] == row["Name"]


def test_na_on_insert_and_blank_on_upsert(http: httpx.Client, server: Server) -> None:
    sku = unique("s")[-20:]
    rid = insert_one(http, "Widget__c", "Name,Sku__c,Count__c,Notes__c", f"{unique()},{sku},#N/A,n")
    row = db_one(server, "Widget__c", rid)
    assert row["Count__c"] is None and row["Notes__c"] == "n"
    header = "Sku__c,Count__c,Notes__c"
    info = run_job(
        http, "Widget__c", "upsert", f"{header}\n{sku},9,\n", externalIdFieldName="Sku__c"
    )
    assert info["numberRecordsFailed"] == 0, failed(http, info["id"], header).rows
    assert success(http, info["id"], header).dicts()[0]["sf__Created"] == "false"
    row = db_one(server, "Widget__c", rid)
    assert row["Count__c"] == 9 and row["Notes__c"] == "n"  # blank left unchanged
    info = run_job(
        http, "Widget__c", "upsert", f"{header}\n{sku},,#N/A\n", externalIdFieldName="Sku__c"
    )
    assert info["numberRecordsFailed"] == 0
    row = db_one(server, "Widget__c", rid)
    assert row["Count__c"] == 9 and row["Notes__c"] is None


# ---------------------------------------------------------------- Ids in CSV


def test_update_and_delete_by_15_char_id(http: httpx.Client, server: Server) -> None:
    rid = new_widget(http)
    assert_id18(rid)
    name = unique("u15")
    info = run_job(http, "Widget__c", "update", f"Id,Name\n{rid[:15]},{name}\n")
    assert info["numberRecordsFailed"] == 0, failed(http, info["id"], "Id,Name").rows
    out = success(http, info["id"], "Id,Name").dicts()[0]
    assert out["sf__Id"] == rid and out["Id"] == rid[:15]
    assert db_one(server, "Widget__c", rid)["Name"] == name
    info = run_job(http, "Widget__c", "delete", f"Id\n{rid[:15]}\n")
    assert info["numberRecordsFailed"] == 0, info
    assert success(http, info["id"], "Id").dicts()[0]["sf__Id"] == rid
    assert not db_is_live(server, "Widget__c", rid)


def test_upsert_by_id_with_15_and_18_char_ids(http: httpx.Client, server: Server) -> None:
    a, b = new_account(http), new_account(http)
    header = "Id,Name"
    na, nb, nc = unique("ua"), unique("ub"), unique("uc")
    info = run_job(
        http,
        "Account",
        "upsert",
        f"{header}\n{a},{na}\n{b[:15]},{nb}\n,{nc}\n",
        externalIdFieldName="Id",
    )
    assert info["numberRecordsFailed"] == 0, failed(http, info["id"], header).rows
    rows = {r["Name"]: r for r in success(http, info["id"], header).dicts()}
    assert (rows[na]["sf__Id"], rows[na]["sf__Created"]) == (a, "false")
    assert (rows[nb]["sf__Id"], rows[nb]["sf__Created"]) == (b, "false")
    assert rows[nc]["sf__Created"] == "true"
    assert_id18(rows[nc]["sf__Id"], "001")
    assert db_one(server, "Account", b)["Name"] == nb


@pytest.mark.parametrize("operation", ["update", "delete"])
def test_wrong_checksum_id_is_malformed(http: httpx.Client, server: Server, operation: str) -> None:
    rid = new_widget(http)
    wrong = bad_suffix(rid)
    assert wrong[:15] == rid[:15] and to18(wrong[:15]) != wrong
    if operation == "update":
        err = one_row_error(http, "Widget__c", "update", "Id,Name", f"{wrong},{unique()}")
    else:
        err = one_row_error(http, "Widget__c", "delete", "Id", wrong)
    assert err.startswith("MALFORMED_ID:"), err
    assert wrong in err
    assert db_is_live(server, "Widget__c", rid)  # untouched


def test_malformed_id_values_in_id_column(http: httpx.Client) -> None:
    header = "Id,Name"
    bad_ids = ["abc", "a" * 16, "a" * 19, "!!!!!!!!!!!!!!!"]
    body = header + "\n" + "".join(f"{b},{unique()}\n" for b in bad_ids)
    info = run_job(http, "Widget__c", "update", body)
    assert info["numberRecordsFailed"] == len(bad_ids), info
    for r in failed(http, info["id"], header).dicts():
        assert r["sf__Error"].startswith("MALFORMED_ID:"), r
        assert r["sf__Error"].endswith("--"), r


def test_db_columns_are_typed(http: httpx.Client, server: Server) -> None:
    """One column per field, named by API name, with a storage type that fits the field."""
    rid = new_widget(http)
    if server.backend != "sqlite":
        pytest.skip("SQLite column affinity; PostgreSQL column types: tests/test_postgres.py")
    cols = {c["name"]: c for c in db_query(server, 'PRAGMA table_info("Widget__c")')}
    assert cols["Id"]["pk"] == 1

    def affinity(decl: str) -> str:  # SQLite's column affinity rules
        d = decl.upper()
        if "INT" in d:
            return "INTEGER"
        if any(t in d for t in ("CHAR", "CLOB", "TEXT")):
            return "TEXT"
        if any(t in d for t in ("REAL", "FLOA", "DOUB")):
            return "REAL"
        return "BLOB" if not d else "NUMERIC"

    expected = {
        "Name": {"TEXT"}, "Sku__c": {"TEXT"}, "Code__c": {"TEXT"}, "Email__c": {"TEXT"},
        "Phone__c": {"TEXT"}, "Site__c": {"TEXT"}, "Notes__c": {"TEXT"}, "Color__c": {"TEXT"},
        "Account__c": {"TEXT"}, "Count__c": {"INTEGER"}, "Active__c": {"INTEGER", "NUMERIC"},
        "Quantity__c": {"REAL", "NUMERIC"}, "Price__c": {"REAL", "NUMERIC"},
        "Ratio__c": {"REAL", "NUMERIC"}, "Released__c": {"TEXT", "NUMERIC", "INTEGER"},
        "Seen_At__c": {"TEXT", "NUMERIC", "INTEGER", "REAL"},
    }  # fmt: skip
    for name, allowed in expected.items():
        assert name in cols, name
        assert affinity(cols[name]["type"]) in allowed, (name, cols[name]["type"])
    ids = db_query(server, 'SELECT "Id" FROM "Widget__c" LIMIT 50')
    assert rid in {row["Id"] for row in db_query(server, 'SELECT "Id" FROM "Widget__c"')}
    for row in ids:
        assert_id18(row["Id"])
