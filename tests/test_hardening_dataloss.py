"""Issue #9, items 1-9: no uploaded record is lost, replaced or left unaccounted for, and one
bad value fails only its own record. Every test runs on SQLite and PostgreSQL (the `server`
fixture) unless the behaviour is SQLite's alone.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from bulk2_helpers import (
    BASE,
    assert_error,
    assert_serving,
    create,
    db_query,
    failed,
    gz,
    patch,
    put,
    success,
    unprocessed,
    upload_and_close,
)
from conftest import Server, free_port, unique, wait_for_job

# ---------------------------------------------------------------- 1. multi-member gzip


def test_every_gzip_member_is_loaded(server: Server, http: httpx.Client) -> None:
    """`cat a.gz b.gz` is one valid gzip body (RFC 1952 §2.2): all of its rows load."""
    tag = unique("gz")
    first = "Name\n" + "".join(f"{tag}-a{i}\n" for i in range(3))
    second = "".join(f"{tag}-b{i}\n" for i in range(4))
    job = create(http, "Widget__c", "insert")
    r = http.put(
        f"{BASE}/{job['id']}/batches",
        content=gz(first) + gz(second),
        headers={"Content-Type": "text/csv", "Content-Encoding": "gzip"},
    )
    assert r.status_code == 201, r.text
    assert patch(http, job["id"], "UploadComplete").status_code == 200
    info = wait_for_job(http, job["id"])
    assert (info["state"], info["numberRecordsProcessed"]) == ("JobComplete", 7), info
    names = {row["Name"] for row in success(http, job["id"], "Name").dicts()}
    assert names == {f"{tag}-a{i}" for i in range(3)} | {f"{tag}-b{i}" for i in range(4)}
    rows = db_query(server, 'SELECT "Name" FROM "Widget__c" WHERE "Name" LIKE ?', (f"{tag}-%",))
    assert len(rows) == 7


@pytest.mark.parametrize("tail", [b"junk", b"\x00\x00\x00\x00", b"\x1f", b"\x1f\x8bxx"])
def test_data_after_the_gzip_stream_is_refused(http: httpx.Client, tail: bytes) -> None:
    job = create(http, "Widget__c", "insert")
    r = http.put(
        f"{BASE}/{job['id']}/batches",
        content=gz("Name\nx\n") + tail,
        headers={"Content-Type": "text/csv", "Content-Encoding": "gzip"},
    )
    assert_error(r, 400, "CLIENTINPUTERROR")
    info = http.get(f"{BASE}/{job['id']}").json()
    assert info["state"] == "Open"
    assert_serving(http)


# ---------------------------------------------------------------- 2. a refused PUT


class SlowBody:
    """A request body sent in two parts; the second waits until `release()`."""

    def __init__(self, first: bytes, second: bytes) -> None:
        self.first, self.second = first, second
        self.sent_first = threading.Event()
        self._go = threading.Event()

    def release(self) -> None:
        self._go.set()

    def __iter__(self) -> Iterator[bytes]:
        yield self.first
        self.sent_first.set()
        self._go.wait(30)
        yield self.second


def slow_put(
    server: Server, job_id: str, body: SlowBody
) -> tuple[threading.Thread, list[httpx.Response]]:
    out: list[httpx.Response] = []

    def run() -> None:
        with server.client() as c:
            out.append(
                c.put(
                    f"{BASE}/{job_id}/batches", content=body, headers={"Content-Type": "text/csv"}
                )
            )

    t = threading.Thread(target=run)
    t.start()
    assert body.sent_first.wait(10)
    time.sleep(0.3)  # the server has the first part and is waiting for the rest
    return t, out


def stored(server: Server, job_id: str) -> dict[str, bytes]:
    """Every upload blob or file stored under this job's id, by name."""
    if server.pg_url:
        rows = db_query(
            server,
            "SELECT name, data FROM bf_blob WHERE name LIKE ? OR name LIKE ? ORDER BY name, seq",
            (f"tmp:{job_id}%", f"upload:{job_id}"),
        )
        out: dict[str, bytes] = {}
        for r in rows:
            name = "upload" if r["name"].startswith("upload:") else r["name"]
            out[name] = out.get(name, b"") + bytes(r["data"])
        return out
    return {
        ("upload" if p.suffix == ".csv" else p.name): p.read_bytes()
        for p in (server.data_dir / "uploads").glob(f"{job_id}*")
        if p.is_file()
    }


@pytest.mark.parametrize("action", ["UploadComplete", "Aborted", "DELETE"])
def test_a_put_that_ends_too_late_changes_nothing(
    server: Server, http: httpx.Client, action: str
) -> None:
    tag = unique("late")
    good = f"Name\n{tag}-kept1\n{tag}-kept2\n"
    job = create(http, "Widget__c", "insert")
    assert put(http, job["id"], good).status_code == 201
    late = SlowBody(
        f"Name\n{tag}-late0\n".encode(), "".join(f"{tag}-late{i}\n" for i in range(1, 50)).encode()
    )
    thread, response = slow_put(server, job["id"], late)
    if action == "DELETE":
        assert patch(http, job["id"], "Aborted").status_code == 200
        assert http.delete(f"{BASE}/{job['id']}").status_code == 204
    else:
        assert patch(http, job["id"], action).status_code == 200
        if action == "UploadComplete":
            wait_for_job(http, job["id"])
    late.release()
    thread.join(30)
    assert response and response[0].status_code in (400, 404), response
    assert response[0].json()[0]["errorCode"] in ("INVALIDJOBSTATE", "NOT_FOUND")
    time.sleep(0.2)
    # the accepted upload is the job's data, and nothing of the refused one is left anywhere
    assert stored(server, job["id"]) == ({} if action == "DELETE" else {"upload": good.encode()})
    loaded = db_query(server, 'SELECT "Name" FROM "Widget__c" WHERE "Name" LIKE ?', (f"{tag}-%",))
    if action == "UploadComplete":
        info = wait_for_job(http, job["id"])
        assert (info["state"], info["numberRecordsProcessed"]) == ("JobComplete", 2), info
        assert {r["Name"] for r in success(http, job["id"], "Name").dicts()} == {
            f"{tag}-kept1",
            f"{tag}-kept2",
        }
        assert sorted(r["Name"] for r in loaded) == [f"{tag}-kept1", f"{tag}-kept2"]
    elif action == "Aborted":
        rows = unprocessed(http, job["id"], "Name").rows
        assert rows == [[f"{tag}-kept1"], [f"{tag}-kept2"]]
        assert loaded == []
    else:
        assert http.get(f"{BASE}/{job['id']}").status_code == 404
        assert loaded == []


# ---------------------------------------------------------------- 4. one server per SQLite file


def test_second_server_on_the_same_sqlite_database_refuses(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    """Another data dir does not make it another database: the second server must not start
    (it would clear the first one's leases and take over its running job)."""
    db = tmp_path / "shared" / "org.db"
    first = make_server("--database", f"sqlite:///{db}", data_dir=tmp_path / "one")
    with first.client() as c:
        job = create(c, "Contact", "insert")
        assert put(c, job["id"], "LastName\nStill-mine\n").status_code == 201
    # the same file named another way (a relative path through a symlinked folder)
    (tmp_path / "alias").symlink_to(db.parent)
    for url in (f"sqlite:///{db}", "sqlite:///alias/org.db"):
        proc = subprocess.run(
            [sys.executable, "-m", "bulkforce", "serve", "--port", str(free_port()),
             "--data-dir", str(tmp_path / "two"), "--database", url],
            capture_output=True, text=True, timeout=60, cwd=tmp_path,
        )  # fmt: skip
        assert proc.returncode == 2, proc.stderr
        assert "another bulkforce server (PID" in proc.stderr  # names its holder (issue #13)
        assert f"is using the SQLite database {db}" in proc.stderr
    with first.client() as c:
        assert c.get(f"{BASE}/{job['id']}").json()["state"] == "Open"
    first.stop()
    # once the first server is gone the database is free again
    second = make_server("--database", f"sqlite:///{db}", data_dir=tmp_path / "two")
    with second.client() as c:
        assert c.get(f"{BASE}/{job['id']}").status_code == 200


# ---------------------------------------------------------------- 3. every row in one result file


def accounted(c: httpx.Client, job_id: str, header: str) -> tuple[list[str], list[str], list[str]]:
    """Names in successfulResults, failedResults and unprocessedrecords."""
    return (
        [r["Name"] for r in success(c, job_id, header).dicts()],
        [r["Name"] for r in failed(c, job_id, header).dicts()],
        [r[0] for r in unprocessed(c, job_id, header).rows],
    )


def test_a_malformed_row_deep_in_an_upload_fails_alone(server: Server, http: httpx.Client) -> None:
    """25,000 rows, malformed ones in the second and third internal batch (and at the first
    row of the third): only those fail, and every row is in exactly one result file."""
    tag = unique("deep")
    bad_at = {14_321: '{n}, "x"', 20_000: '"{n}" ,x', 24_999: '"{n}"x,y'}
    lines = ["Name,Sku__c"]
    for i in range(25_000):
        n = f"{tag}-{i}"
        lines.append(bad_at[i].format(n=n) if i in bad_at else f"{n},")
    job = create(http, "Widget__c", "insert")
    info = upload_and_close(http, job["id"], "\n".join(lines) + "\n")
    assert (info["state"], info["numberRecordsProcessed"], info["numberRecordsFailed"]) == (
        "JobComplete", 25_000, 3,
    ), info  # fmt: skip
    ok, bad, rest = accounted(http, job["id"], "Name,Sku__c")
    assert rest == []
    assert len(ok) == 25_000 - 3 and len(set(ok)) == len(ok)
    errors = [r["sf__Error"] for r in failed(http, job["id"], "Name,Sku__c").dicts()]
    assert all(e.startswith("INVALID_FIELD:Malformed CSV row: ") for e in errors), errors
    assert len(bad) == 3
    assert set(ok) == {f"{tag}-{i}" for i in range(25_000) if i not in bad_at}
    rows = db_query(
        server, 'SELECT count(*) AS n FROM "Widget__c" WHERE "Name" LIKE ?', (f"{tag}-%",)
    )
    assert rows[0]["n"] == 25_000 - 3


def test_rows_of_an_aborted_job_are_all_accounted_for(server: Server, http: httpx.Client) -> None:
    """A job that never ran lists every uploaded row, malformed ones included, as unprocessed."""
    tag = unique("abrt")
    body = f'Name,Sku__c\n{tag}-0,\n{tag}-1, "q"\n\n{tag}-3,\n'
    job = create(http, "Widget__c", "insert")
    assert put(http, job["id"], body).status_code == 201
    assert patch(http, job["id"], "Aborted").status_code == 200
    rows = unprocessed(http, job["id"], "Name,Sku__c").rows
    assert [r[0] for r in rows] == [f"{tag}-0", f"{tag}-1", "", f"{tag}-3"]


def test_a_quote_left_open_to_the_end_is_one_failed_record(
    server: Server, http: httpx.Client
) -> None:
    """An even number of quotes passes the upload check, yet a stray quote inside a value
    can leave the last quote open: the rest of the upload is then one malformed record,
    and the rows before it still load."""
    tag = unique("open")
    body = f'Name,Notes__c\n{tag}-0,fine\n{tag}-1,a"b\n{tag}-2,"never closed\n{tag}-3,x\n'
    job = create(http, "Widget__c", "insert")
    info = upload_and_close(http, job["id"], body)
    assert (info["state"], info["numberRecordsProcessed"], info["numberRecordsFailed"]) == (
        "JobComplete", 3, 2,
    ), info  # fmt: skip
    ok, bad, rest = accounted(http, job["id"], "Name,Notes__c")
    assert (ok, bad, rest) == ([f"{tag}-0"], [f"{tag}-1", f"{tag}-2"], [])
    last = failed(http, job["id"], "Name,Notes__c").dicts()[1]
    assert last["Notes__c"] == f"never closed\n{tag}-3,x\n"
    assert last["sf__Error"].endswith("EOF reached before closing an opened quote:--")


# ---------------------------------------------------------------- 5. blank lines


def test_a_blank_line_is_a_record_and_trailing_ones_are_not(
    server: Server, http: httpx.Client
) -> None:
    """jsforce writes a blank line for a record with none of the header's keys: that record
    fails (Name is required) in its place; blank lines after the last row are no records."""
    tag = unique("blank")
    job = create(http, "Widget__c", "insert")
    info = upload_and_close(http, job["id"], f"Name\n{tag}-a\n\n{tag}-b\n\n\n")
    assert (info["numberRecordsProcessed"], info["numberRecordsFailed"]) == (3, 1), info
    ok, bad, rest = accounted(http, job["id"], "Name")
    assert (sorted(ok), bad, rest) == ([f"{tag}-a", f"{tag}-b"], [""], [])
    (err,) = [r["sf__Error"] for r in failed(http, job["id"], "Name").dicts()]
    assert err.startswith("REQUIRED_FIELD_MISSING:"), err


def test_jsforce_bulk1_results_stay_in_step_with_a_blank_record(node: str, server: Server) -> None:
    """Bulk 1.0 clients zip results with their records by position (spec §2.6): the record
    written as a blank line gets its own (failed) result, and the next record keeps its own."""
    from test_client_jsforce_bulk1 import JS as Bulk1JS

    tag = unique("jsblank")
    records = [{"Name": f"{tag}-a"}, {"Sku__c": f"{tag}-s"}, {"Name": f"{tag}-b"}]
    out = Bulk1JS(node, server).load("Widget__c", "insert", records)
    results = out["results"]
    assert [r["success"] for r in results] == [True, False, True], results
    assert results[1]["errors"] and "REQUIRED_FIELD_MISSING" in results[1]["errors"][0]
    assert out["closed"]["numberRecordsProcessed"] == "3"
    assert out["closed"]["numberRecordsFailed"] == "1"
    stored = db_query(
        server, 'SELECT "Id", "Name" FROM "Widget__c" WHERE "Name" LIKE ?', (f"{tag}-%",)
    )
    assert {r["Name"]: r["Id"] for r in stored} == {
        f"{tag}-a": results[0]["id"],
        f"{tag}-b": results[2]["id"],
    }


# ---------------------------------------------------------------- 8. a space next to a quote


def sku() -> str:
    """A unique value for Widget__c.Sku__c (unique, 20 characters at most)."""
    return f"s{time.time_ns() % 10**15}"


MALFORMED = [
    ('{n}, "b"', "Found unescaped quote. A value with quote should be within a quote"),
    ('"{n}" ,b', "Not expecting more text after end quote"),
    ('{n},"b" ', "Not expecting more text after end quote"),
]


def test_space_next_to_a_quote_fails_that_record_bulk2(server: Server, http: httpx.Client) -> None:
    tag = unique("sp2")
    lines = [f"{tag}-ok0,{sku()}"]
    lines += [form.format(n=f"{tag}-bad{i}") for i, (form, _) in enumerate(MALFORMED)]
    lines += [f"{tag}-ok1,{sku()}"]
    job = create(http, "Widget__c", "insert")
    info = upload_and_close(http, job["id"], "Name,Sku__c\n" + "\n".join(lines) + "\n")
    assert (info["state"], info["numberRecordsProcessed"], info["numberRecordsFailed"]) == (
        "JobComplete", 5, 3,
    ), info  # fmt: skip
    got = failed(http, job["id"], "Name,Sku__c").dicts()
    assert [r["sf__Error"] for r in got] == [
        f"INVALID_FIELD:Malformed CSV row: {why}:--" for _, why in MALFORMED
    ]
    assert sorted(r["Name"] for r in success(http, job["id"], "Name,Sku__c").dicts()) == [
        f"{tag}-ok0",
        f"{tag}-ok1",
    ]
    stored = db_query(server, 'SELECT "Name" FROM "Widget__c" WHERE "Name" LIKE ?', (f"{tag}-%",))
    assert sorted(r["Name"] for r in stored) == [f"{tag}-ok0", f"{tag}-ok1"]


def test_space_next_to_a_quote_fails_that_record_bulk1(server: Server) -> None:
    from bulk1_helpers import add_batch, b1_client, close_job, create_job, csv_results, wait_batch

    tag = unique("sp1")
    lines = [f"{tag}-ok0,{sku()}"] + [
        f.format(n=f"{tag}-bad{i}") for i, (f, _) in enumerate(MALFORMED)
    ]
    with b1_client(server) as c:
        job = create_job(c, "Widget__c")
        batch = add_batch(c, job["id"], "Name,Sku__c\n" + "\n".join(lines) + "\n")
        info = wait_batch(c, job["id"], batch["id"])
        assert (info["state"], info["numberRecordsProcessed"], info["numberRecordsFailed"]) == (
            "Completed", "4", "3",
        ), info  # fmt: skip
        results = csv_results(c, job["id"], batch["id"])
        close_job(c, job["id"])
    assert [r["Success"] for r in results] == ["true", "false", "false", "false"]
    assert [r["Error"] for r in results[1:]] == [
        f"INVALID_FIELD:Malformed CSV row: {why}:--" for _, why in MALFORMED
    ]


# ---------------------------------------------------------------- 6. NUL


def test_a_nul_character_fails_only_its_record_on_postgresql(
    server: Server, http: httpx.Client
) -> None:
    """Salesforce keeps a NUL inside a value (its query results carry them), and so does
    SQLite; PostgreSQL text cannot hold one, so there that record fails alone, at once,
    instead of the worker retrying the whole job as if the database were down."""
    tag = unique("nul")
    body = f'Name,Notes__c\n{tag}-0,plain\n{tag}-1,"with\x00nul"\n{tag}-2,plain\n'
    job = create(http, "Widget__c", "insert")
    assert put(http, job["id"], body).status_code == 201
    assert patch(http, job["id"], "UploadComplete").status_code == 200
    info = wait_for_job(http, job["id"], timeout=30)
    stored = db_query(
        server, 'SELECT "Name", "Notes__c" FROM "Widget__c" WHERE "Name" LIKE ?', (f"{tag}-%",)
    )
    names = sorted(r["Name"] for r in stored)
    if server.pg_url:
        assert (info["state"], info["numberRecordsProcessed"], info["numberRecordsFailed"]) == (
            "JobComplete", 3, 1,
        ), info  # fmt: skip
        (bad,) = failed(http, job["id"], "Name,Notes__c").dicts()
        assert bad["Name"] == f"{tag}-1" and bad["Notes__c"] == "with\x00nul"
        assert bad["sf__Error"].startswith("INVALID_FIELD:Notes__c: a NUL character"), bad
        assert names == [f"{tag}-0", f"{tag}-2"]
    else:
        assert (info["state"], info["numberRecordsFailed"]) == ("JobComplete", 0), info
        assert names == [f"{tag}-0", f"{tag}-1", f"{tag}-2"]
        assert {r["Name"]: r["Notes__c"] for r in stored}[f"{tag}-1"] == "with\x00nul"


# ---------------------------------------------------------------- 7. overflow, lone surrogate


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00+10:00", "9999-12-31T23:59:59-10:00"])
def test_a_datetime_out_of_range_in_utc_fails_its_record(
    server: Server, http: httpx.Client, stamp: str
) -> None:
    tag = unique("dt")
    body = f"Name,Seen_At__c\n{tag}-0,2024-01-02T03:04:05Z\n{tag}-1,{stamp}\n"
    job = create(http, "Widget__c", "insert")
    info = upload_and_close(http, job["id"], body)
    assert (info["state"], info["numberRecordsProcessed"], info["numberRecordsFailed"]) == (
        "JobComplete", 2, 1,
    ), info  # fmt: skip
    (bad,) = failed(http, job["id"], "Name,Seen_At__c").dicts()
    assert bad["sf__Error"].startswith("INVALID_TYPE_ON_FIELD_IN_RECORD:"), bad
    assert bad["Name"] == f"{tag}-1"


def test_a_lone_surrogate_in_a_bulk1_json_batch_fails_its_record(server: Server) -> None:
    from bulk1_helpers import add_batch, b1_client, create_job, wait_batch

    tag = unique("sur")
    body = f'[{{"Name": "{tag}-0"}}, {{"Name": "{tag}-1\\ud800"}}, {{"Name": "{tag}-2"}}]'
    with b1_client(server) as c:
        job = create_job(c, "Widget__c", content_type="JSON", fmt="json")
        batch = add_batch(c, job["id"], body, "JSON")
        done = wait_batch(c, job["id"], batch["id"], "json")
        assert (done["state"], done["numberRecordsProcessed"], done["numberRecordsFailed"]) == (
            "Completed", 3, 1,
        ), done  # fmt: skip
        r = c.get(f"/services/async/59.0/job/{job['id']}/batch/{batch['id']}/result")
    results = r.json()
    assert [x["success"] for x in results] == [True, False, True], results
    assert results[1]["errors"][0]["statusCode"] == "INVALID_FIELD", results
    stored = db_query(server, 'SELECT "Name" FROM "Widget__c" WHERE "Name" LIKE ?', (f"{tag}-%",))
    assert sorted(r["Name"] for r in stored) == [f"{tag}-0", f"{tag}-2"]


# ---------------------------------------------------------------- 9. unreadable 1.0 batches


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("XML", '<sObjects xmlns="http://www.force.com/2009/06/asyncapi/dataload"><sObject>'),
        ("XML", "Name\nnot xml\n"),
        ("JSON", '[{"Name": "x"}'),
        ("JSON", '{"Name": "x"}'),
    ],
    ids=["xml-truncated", "xml-csv-text", "json-truncated", "json-object"],
)
def test_an_unreadable_bulk1_batch_is_accepted_then_fails(
    server: Server, content_type: str, body: str
) -> None:
    from bulk1_helpers import MEDIA, b1_client, create_job, post_batch, read_batch, wait_batch

    fmt = "json" if content_type == "JSON" else "xml"
    with b1_client(server) as c:
        job = create_job(c, "Widget__c", content_type=content_type, fmt=fmt)
        r = post_batch(c, job["id"], body, MEDIA[content_type])
        batch = read_batch(r, fmt, 201)
        assert batch["state"] == "Queued"
        done = wait_batch(c, job["id"], batch["id"], fmt)
    assert done["state"] == "Failed", done
    assert done["stateMessage"].startswith("InvalidBatch : "), done
