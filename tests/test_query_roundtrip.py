"""Load, then read back: values with commas, quotes, newlines, non-ASCII and `#N/A`-nulled
fields come back exactly through REST JSON and Bulk 2.0 CSV, on SQLite and PostgreSQL; and
the timestamp indexes incremental extracts rely on exist on every object table."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
from bulk2_helpers import run_job
from conftest import DB, Server, unique
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from query_helpers import bulk_query, csv_text, load, rest_all

TRICKY = [
    "plain",
    "comma, inside",
    'say "hello"',
    "line one\nline two",
    "crlf\r\nline",
    "Zoë Ørsted 山田 — ✓",
    '"",,"\n',
    "  padded  ",
    "tab\there",
]


def test_tricky_values_round_trip(http: httpx.Client) -> None:
    tag = unique("rt")
    rows = [[f"{tag}-{i:02d}", tag, v, v[:40]] for i, v in enumerate(TRICKY)]
    ids = load(http, "Contact", ["LastName", "Department", "Description", "Title"], rows)
    # `#N/A` sets a field to null; a blank cell leaves it as it was
    nulled = ids[:3]
    info = run_job(
        http, "Contact", "update",
        csv_text(["Id", "Description", "Title"], [[i, "#N/A", ""] for i in nulled]),
    )  # fmt: skip
    assert info["numberRecordsFailed"] == 0, info
    expected = {ids[i]: (None if ids[i] in nulled else v, v[:40]) for i, v in enumerate(TRICKY)}
    soql = f"SELECT Id, Description, Title FROM Contact WHERE Department = '{tag}'"
    recs, _ = rest_all(http, soql)
    assert {r["Id"]: (r["Description"], r["Title"]) for r in recs} == expected
    _, header, got = bulk_query(http, soql)
    assert header == ["Id", "Description", "Title"]
    # Bulk CSV cannot tell null from empty: null comes back as the empty string
    assert {r[0]: (r[1], r[2]) for r in got} == {k: (d or "", t) for k, (d, t) in expected.items()}


_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\x00")
    | st.sampled_from(['"', ",", "\n", "\r", "|", "\t", ";"]),
    min_size=1,
    max_size=60,
).filter(lambda s: s.strip() != "" and s != "#N/A")


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(values=st.lists(_text, min_size=1, max_size=20))
def test_generated_values_round_trip(http: httpx.Client, values: list[str]) -> None:
    tag = unique("rtg")
    ids = load(http, "Contact", ["LastName", "Department", "Description"],
               [[f"{tag}-{i}", tag, v] for i, v in enumerate(values)])  # fmt: skip
    want = dict(zip(ids, values, strict=True))
    soql = f"SELECT Id, Description FROM Contact WHERE Department = '{tag}'"
    recs, _ = rest_all(http, soql)
    assert {r["Id"]: r["Description"] for r in recs} == want
    _, _, rows = bulk_query(http, soql, columnDelimiter="PIPE", lineEnding="CRLF")
    assert {r[0]: r[1] for r in rows} == want


def _indexes(srv: Server, table: str) -> dict[str, list[str]]:
    """index name -> its columns, lower-cased."""
    with srv.db() as db:
        if db.pg:
            rows = db.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ?", [table.lower()]
            ).fetchall()
            return {
                r[0].lower(): [
                    c.strip().lower() for c in r[1].split("(", 1)[1].rstrip(")").split(",")
                ]
                for r in rows
            }
        out = {}
        for (name,) in db.execute(
            f"SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = '{table}'"
        ).fetchall():
            cols = db.execute(f"PRAGMA index_info('{name}')").fetchall()
            out[name.lower()] = [c[2].lower() for c in cols]
        return out


def test_timestamp_indexes_on_every_object_table(server: Server) -> None:
    for table in ("Contact", "Account", "Widget__c", "Organization", "User"):
        cols = list(_indexes(server, table).values())
        for field in ("systemmodstamp", "lastmodifieddate", "createddate"):
            assert [field, "id"] in cols, (table, field, cols)


def _compiled(soql: str, pg: bool, count: bool = False) -> tuple[str, list[object]]:
    """The SQL the server runs for `soql` (compiled here against the same schema)."""
    from bulkforce.engine.schema import build_schema, builtin_definitions, load_file
    from bulkforce.soql import Api, Dialect, compile_query

    defs = builtin_definitions() + load_file(Path(__file__).parent / "data" / "test_schema.json")
    schema = build_schema(defs, lambda name: "a00")
    dialect = Dialect.POSTGRES if pg else Dialect.SQLITE
    plan = compile_query(soql, schema, api=Api.REST, dialect=dialect)
    return plan.count_sql() if count else plan.sql()


def _plan_text(db: DB, sql: str, params: list[object]) -> str:
    if db.pg:
        db.conn.execute("SET enable_seqscan = off")  # a tiny table: ask what it could use
        rows = db.conn.execute("EXPLAIN " + sql, params).fetchall()
        return " ".join(str(r[0]) for r in rows).lower()
    rows = db.conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
    return " ".join(str(r[3]) for r in rows).lower()


def test_incremental_window_and_total_size_use_indexes(server: Server) -> None:
    """What an incremental extract (`WHERE SystemModstamp >= … AND SystemModstamp < …`, query
    and queryAll) and a REST totalSize run is answered from an index, not a table scan — with
    the SQL the server really compiles."""
    window = (
        "SELECT Id, LastName FROM Contact WHERE SystemModstamp >= 2024-01-01T00:00:00Z "
        "AND SystemModstamp < 2024-02-01T00:00:00.000+0000"
    )
    with server.db() as db:
        for soql in (window, window.replace("SystemModstamp", "LastModifiedDate"),
                     window.replace("SystemModstamp", "CreatedDate")):  # fmt: skip
            field = soql.split("WHERE ")[1].split(" ")[0].lower()
            plan = _plan_text(db, *_compiled(soql, db.pg))
            assert f"contact_{field}_ix" in plan, plan
        plan = _plan_text(db, *_compiled("SELECT COUNT() FROM Contact", db.pg, count=True))
        assert "contact_live_ix" in plan, plan


def test_existing_database_gets_the_indexes(
    make_server: Callable[..., Server], tmp_path: object
) -> None:
    """A database made before the indexes existed gets them at the next start."""
    srv = make_server()
    srv.stop()
    import sqlite3

    con = sqlite3.connect(srv.db_path)
    con.execute('DROP INDEX "Contact_SystemModstamp_ix"')
    con.commit()
    con.close()
    srv.start()
    assert ["systemmodstamp", "id"] in list(_indexes(srv, "Contact").values())
