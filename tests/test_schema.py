"""Schema loading: describe defaults, custom objects, and bad files stopping start-up."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Server

from bulkforce.engine.schema import SchemaError, build_schema, builtin_definitions, load_file


def prefixes(name: str) -> str:
    return {"Gadget__c": "a00"}.get(name, "a01")


def test_builtin_objects_have_real_prefixes_and_required_fields() -> None:
    schema = build_schema(builtin_definitions(), prefixes)
    expected = {"Account": "001", "Contact": "003", "Lead": "00Q", "Opportunity": "006",
                "Case": "500", "Campaign": "701", "Product2": "01t", "Task": "00T", "User": "005"}  # fmt: skip
    for name, prefix in expected.items():
        obj = schema.get(name)
        assert obj is not None and obj.key_prefix == prefix
    contact = schema.get("contact")
    assert contact is not None
    required = {f.name for f in contact.fields.values() if f.required_on_create}
    assert required == {"LastName"}
    for name in (
        "FirstName",
        "Email",
        "MailingCity",
        "Birthdate",
        "AccountId",
        "OwnerId",
        "Id",
        "IsDeleted",
    ):
        assert contact.field(name.lower()) is not None, name
    lead = schema.get("Lead")
    assert lead is not None
    assert {f.name for f in lead.fields.values() if f.required_on_create} == {"LastName", "Company"}


def test_describe_defaults_fill_omitted_properties(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: Gadget__c\nfields:\n  - name: Size__c\n  - name: Ok__c\n    type: boolean\n"
    )
    schema = build_schema(builtin_definitions() + load_file(path), prefixes)
    obj = schema.get("Gadget__c")
    assert obj is not None and obj.custom and obj.key_prefix == "a00"
    size = obj.field("Size__c")
    assert size is not None and size.type == "string" and size.length == 255 and size.nillable
    ok = obj.field("Ok__c")
    assert ok is not None and not ok.nillable and ok.defaulted_on_create
    assert obj.field("Name") is not None and obj.field("OwnerId") is not None


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        (
            {"name": "Thing__c", "fields": [{"name": "X__c", "type": "bogus"}]},
            "object Thing__c, field X__c: unknown type",
        ),
        ({"name": "Thing__c", "fields": [{"name": "9bad"}]}, "object Thing__c: field name '9bad'"),
        (
            {"name": "Thing__c", "fields": [{"name": "R__c", "type": "reference"}]},
            "field R__c: a reference field needs referenceTo",
        ),
        (
            {
                "name": "Thing__c",
                "fields": [{"name": "N__c", "type": "double", "precision": 2, "scale": 5}],
            },
            "field N__c: scale 5 exceeds precision 2",
        ),
        ({"sobjects": "nope"}, "expected an object"),
        ({"name": "Contact", "fields": [{"name": "Id"}]}, "system fields cannot be redefined"),
    ],
)
def test_bad_schema_messages_name_file_object_and_field(
    tmp_path: Path, doc: object, needle: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(SchemaError) as err:
        build_schema(builtin_definitions() + load_file(path), prefixes)
    assert needle in str(err.value)


def test_bad_schema_file_stops_serve_with_message(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text(
        json.dumps({"name": "Widget__c", "fields": [{"name": "Size__c", "type": "float"}]})
    )
    proc = subprocess.run(
        [sys.executable, "-m", "bulkforce", "serve", "--data-dir", str(tmp_path / "d"), "--port", "1",
         "--schema", str(path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert str(path) in proc.stderr and "Widget__c" in proc.stderr and "Size__c" in proc.stderr


def test_invalid_yaml_stops_serve(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: [unclosed\n")
    proc = subprocess.run(
        [sys.executable, "-m", "bulkforce", "serve", "--data-dir", str(tmp_path / "d"), "--schema", str(path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2 and "not valid YAML" in proc.stderr


def test_custom_object_prefix_and_table_survive_restart(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    a = tmp_path / "a.json"
    a.write_text(json.dumps({"sobjects": [{"name": "Alpha__c"}, {"name": "Beta__c"}]}))
    srv = make_server("--schema", str(a))
    with srv.client() as c:
        job = c.post(
            "/services/data/v59.0/jobs/ingest", json={"object": "Beta__c", "operation": "insert"}
        ).json()
        c.put(f"/services/data/v59.0/jobs/ingest/{job['id']}/batches", content=b"Name\nfirst\n",
              headers={"Content-Type": "text/csv"})  # fmt: skip
        c.patch(f"/services/data/v59.0/jobs/ingest/{job['id']}", json={"state": "UploadComplete"})
        from conftest import wait_for_job

        assert wait_for_job(c, job["id"])["numberRecordsProcessed"] == 1
    srv.stop()
    with sqlite3.connect(srv.db_path) as db:
        (beta_id,) = db.execute('SELECT Id FROM "Beta__c"').fetchone()
    # Restart with the objects defined in another order: prefixes must not move.
    b = tmp_path / "b.json"
    b.write_text(
        json.dumps({"sobjects": [{"name": "Gamma__c"}, {"name": "Beta__c"}, {"name": "Alpha__c"}]})
    )
    srv2 = make_server("--schema", str(b), data_dir=srv.data_dir)
    with srv2.client() as c:
        job = c.post(
            "/services/data/v59.0/jobs/ingest", json={"object": "Beta__c", "operation": "insert"}
        ).json()
        c.put(f"/services/data/v59.0/jobs/ingest/{job['id']}/batches", content=b"Name\nsecond\n",
              headers={"Content-Type": "text/csv"})  # fmt: skip
        c.patch(f"/services/data/v59.0/jobs/ingest/{job['id']}", json={"state": "UploadComplete"})
        from conftest import wait_for_job

        wait_for_job(c, job["id"])
    with sqlite3.connect(srv.db_path) as db:
        rows = db.execute('SELECT Id, Name FROM "Beta__c" ORDER BY Id').fetchall()
    assert [r[1] for r in rows] == ["first", "second"]
    assert rows[0][0] == beta_id and rows[1][0][:3] == beta_id[:3]
