"""What a PostgreSQL user sees in psql: typed lower-case tables, case-insensitive keys."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from bulk2_helpers import run_job, success
from conftest import Server, inprocess_context, unique

from bulkforce.store.blobs import BlobGone

SCHEMA = Path(__file__).parent / "data" / "test_schema.json"


def test_record_tables_are_typed_for_psql(make_server: Callable[..., Server]) -> None:
    srv = make_server("--schema", str(SCHEMA), backend="postgresql")
    with srv.db() as db:
        types = {
            r[0]: r[1]
            for r in db.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = 'widget__c'"
            )
        }
        assert types["id"] == "text"
        assert types["isdeleted"] == "boolean"
        assert types["count__c"] == "integer"
        assert types["active__c"] == "boolean"
        assert types["price__c"] == "numeric" and types["quantity__c"] == "numeric"
        assert types["released__c"] == "date"
        assert types["seen_at__c"] == "timestamp with time zone"
        assert types["sku__c"] == "USER-DEFINED"  # citext: external ids match in any case
        unique_indexes = [
            r[0] for r in db.execute(
                "SELECT indexdef FROM pg_indexes WHERE tablename = 'widget__c' AND indexdef LIKE '%UNIQUE%'"
            )
        ]  # fmt: skip
    assert any("(sku__c)" in d for d in unique_indexes), unique_indexes
    with srv.client() as c:
        sku = unique("pg")[-18:]
        info = run_job(
            c, "Widget__c", "insert", f"Name,Sku__c,Price__c,Active__c\nw,{sku},12.5,true\n"
        )
        rid = success(c, info["id"], "Name,Sku__c,Price__c,Active__c").dicts()[0]["sf__Id"]
        # the key matches case-insensitively on upsert, as in Salesforce
        up = run_job(c, "Widget__c", "upsert", f"Sku__c,Name\n{sku.upper()},renamed\n",
                     externalIdFieldName="Sku__c")  # fmt: skip
        assert success(c, up["id"], "Sku__c,Name").dicts()[0]["sf__Created"] == "false"
    with srv.db() as db:
        row = db.execute(
            "SELECT name, price__c, active__c FROM widget__c WHERE id = ?", (rid,)
        ).fetchone()
    assert row == ("renamed", 12.5, 1)


def test_api_processes_on_one_database_share_the_generated_token(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    first = make_server(backend="postgresql", start=False)
    first.token = ""  # no --token: the server generates one
    second = make_server(pg_url=first.pg_url, start=False, data_dir=tmp_path / "other")
    tokens = []
    for srv in (first, second):
        proc = subprocess.run(
            [sys.executable, "-c", TOKEN_OF, str(srv.data_dir), str(srv.pg_url)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        tokens.append(proc.stdout.strip())
    # the first generated it (and keeps it for its owner); both compare its digest
    assert tokens[0].split()[0] == tokens[1].split()[0], tokens
    assert tokens[0].split()[1].startswith("00D") and tokens[1].split()[1] == "-", tokens
    assert (first.data_dir / "token").read_text().split()[0] == tokens[0].split()[1]
    assert not (second.data_dir / "token").exists()


# What `bulkforce serve` does at start to find its token, run in a separate process each time.
TOKEN_OF = """
import sys
from pathlib import Path
from bulkforce.boot import admin_token, build_context
ctx = build_context(Path(sys.argv[1]), sys.argv[2], [], 1)
token = admin_token(Path(sys.argv[1]), ctx.settings.org_id, None, ctx.store)
print(token.digest, token.generated or "-")
"""


def test_blobs_are_stored_lz4_compressed_when_the_server_has_lz4(
    make_server: Callable[..., Server],
) -> None:
    """Uploads and results are CSV: lz4 makes PostgreSQL write ~3x less WAL for them. A server
    built without lz4 keeps them uncompressed; either way the results read back whole."""
    srv = make_server("--schema", str(SCHEMA), backend="postgresql")
    rows = [f"widget {i} {'x' * (i % 50)},{unique('lz')[-18:]}" for i in range(400)]
    with srv.client() as c:
        info = run_job(c, "Widget__c", "insert", "Name,Sku__c\n" + "\n".join(rows) + "\n")
        got = success(c, info["id"], "Name,Sku__c").dicts()
    assert [f"{r['Name']},{r['Sku__c']}" for r in got] == rows
    with srv.db() as db:
        try:
            db.conn.execute("SET default_toast_compression = lz4")
            has_lz4 = True
        except psycopg.Error:  # a server built without lz4 refuses the setting
            has_lz4 = False
        methods = {
            r[0]
            for r in db.execute(
                "SELECT pg_column_compression(data) FROM bf_blob WHERE name LIKE 'results:%:ok'"
            )
        }
    assert methods == ({"lz4"} if has_lz4 else {None}), methods


def test_an_upload_of_several_chunks_reads_back_byte_for_byte(tmp_path: Path) -> None:
    """Uploads are stored in 1 MiB chunks; a reader's small reads cross the chunk ends."""
    data = bytes(range(256)) * (10 * 1024 + 7)  # ~2.5 MiB: three chunks, the last partial
    with inprocess_context("postgresql", tmp_path) as ctx:
        writer = ctx.blobs.upload_writer("job1")
        for i in range(0, len(data), 7777):
            writer.write(data[i : i + 7777])
        writer.close()
        with ctx.store.transaction():
            writer.swap()
        f = ctx.blobs.open("job1")
        assert f is not None
        with f:
            pieces = [f.read(1000), f.read1(8192)]
            while piece := f.read(300_001):
                pieces.append(piece)
        assert b"".join(pieces) == data


def test_a_discarded_upload_leaves_no_chunk_behind(tmp_path: Path) -> None:
    """Chunks are inserted while the next ones arrive: discard waits for the one in flight,
    else it could land after the delete and stay until the hourly sweep."""
    with inprocess_context("postgresql", tmp_path) as ctx:
        writer = ctx.blobs.upload_writer("job1")
        for _ in range(5):
            writer.write(b"x" * (1 << 20))
        writer.discard()
        store = ctx.store
        with store._conns.borrow() as conn:
            left = conn.execute("SELECT count(*) AS n FROM bf_blob").fetchone()
        assert left == {"n": 0}


def test_result_blobs_read_back_in_batch_order_and_a_deleted_one_is_gone(tmp_path: Path) -> None:
    """Each batch's result blob is read while the one before is sent; order and the
    deleted-while-read error stay as they were."""
    with inprocess_context("postgresql", tmp_path) as ctx:
        for seq in range(4):
            ctx.blobs.write_results("job1", seq, f"ok{seq}\n".encode() * 1000, b"")
        assert b"".join(ctx.blobs.read_results("job1", "ok", 4)) == b"".join(
            f"ok{seq}\n".encode() * 1000 for seq in range(4)
        )
        assert list(ctx.blobs.read_results("job1", "err", 4)) == []  # empty blobs: no piece
        early = ctx.blobs.read_results("job1", "ok", 4)
        assert next(early).startswith(b"ok0")
        early.close()  # a client that went away: the read ahead is waited for, not leaked
        ctx.blobs.delete("job1")
        with pytest.raises(BlobGone):
            list(ctx.blobs.read_results("job1", "ok", 4))
