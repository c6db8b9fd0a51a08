"""PostgreSQL: an insert chunk's checks, Ids, COPY data and result lines are made ahead of its
transaction, on the worker's prefetch thread (engine.stage); the writer only sends
them. What was made ahead must be exactly what the write would have made, and a record that
fails at the write must still fail alone."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import inprocess_context
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from worker_helpers import ADMIN, submit

from bulkforce import chunk as chunk_mod
from bulkforce import worker as worker_mod
from bulkforce.engine.ids import make_id
from bulkforce.engine.plan import make_plan
from bulkforce.engine.prepare import prepare
from bulkforce.engine.stage import stage_insert
from bulkforce.jobs.service import Context, IngestService
from bulkforce.model import JobState, Operation
from bulkforce.store.pgcopy import CopyPlan
from bulkforce.worker import Worker

SCHEMA = Path(__file__).parent / "data" / "test_schema.json"
USER = "005000000000001AAA"
NOW = "2024-05-06T07:08:09.123+0000"


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[Context]:
    with inprocess_context("postgresql", tmp_path / "data", [SCHEMA]) as context:
        yield context


def results(svc: IngestService, job_id: str, kind: str) -> list[list[str]]:
    _, chunks = svc.results(job_id, kind, ADMIN)
    lines = b"".join(chunks).decode().splitlines()[1:]
    return [[v.strip('"') for v in line.split('","')] for line in lines]


def staged(ctx: Context, obj: str, header: list[str], rows: list[list[str]]) -> Any:
    plan = make_plan(ctx.schema, ctx.schema.get(obj), Operation.INSERT, header, None)
    prepared = prepare(ctx.schema, plan, rows, {}, False, USER)
    return stage_insert(
        ctx.schema, plan, prepared, USER, NOW, ctx.store.allocate, ctx.store.encode_insert
    )


def test_only_an_insert_whose_checks_read_no_records_is_staged(pg: Context) -> None:
    plain = staged(pg, "Widget__c", ["Name", "Count__c"], [["a", "1"], ["b", "x"]])
    assert plain is not None and isinstance(plain.encoded, bytes)
    # the bad number fails at staging; the good row has its Id and the rows to COPY
    assert [e is None for e in plain.outcome.errors] == [True, False]
    assert plain.outcome.created == [True, False] and plain.outcome.ids[0].startswith(
        pg.schema.get("Widget__c").key_prefix
    )
    assert plain.rows.good == [0]
    # a blank reference column reads nothing either
    assert staged(pg, "Widget__c", ["Name", "Account__c"], [["a", ""]]) is not None
    # a reference value is looked up in the transaction: not staged
    account = make_id(pg.schema.get("Account").key_prefix, 1)
    assert staged(pg, "Widget__c", ["Name", "Account__c"], [["a", account]]) is None
    # nor a parent by external id (Rel.Field)
    header = ["Name", "Account__r.External_Id__c"]
    assert staged(pg, "Widget__c", header, [["a", "ext-1"]]) is None


def test_a_duplicate_in_a_staged_chunk_fails_alone_and_the_rest_keeps_its_ids(
    pg: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The COPY of a staged chunk fails on the duplicate; the chunk is redone row by row and
    its result lines made again, not the ones rendered ahead."""
    svc = IngestService(pg)
    monkeypatch.setattr(worker_mod, "BATCH_SIZE", 3)
    calls: list[int] = []
    real = chunk_mod.stage_insert

    def counting(*args: Any, **kwargs: Any) -> Any:
        out = real(*args, **kwargs)
        calls.append(out is not None)
        return out

    monkeypatch.setattr(chunk_mod, "stage_insert", counting)
    csv = b"LastName,External_Id__c\nA,k1\nB,K1\nC,k3\nD,k4\nE,k3\nF,k6\n"
    job_id = submit(svc, csv, "Contact")
    assert Worker(pg).run_once()
    job = svc.get(job_id, ADMIN)
    assert job.state is JobState.JOB_COMPLETE
    assert (job.records_processed, job.records_failed) == (6, 2)
    assert calls == [True, True]  # both batches were staged
    ok = results(svc, job_id, "success")
    bad = results(svc, job_id, "failed")
    assert [r[1:] for r in ok] == [
        ["true", "A", "k1"], ["true", "C", "k3"], ["true", "D", "k4"], ["true", "F", "k6"]
    ]  # fmt: skip
    assert [(r[0], r[1].split(":")[0], r[2]) for r in bad] == [
        ("", "DUPLICATE_VALUE", "B"), ("", "DUPLICATE_VALUE", "E")
    ]  # fmt: skip
    # every success line names the record that holds its row
    for rid, _, name, ext in ok:
        rec = pg.store.get_record(pg.schema.get("Contact"), rid)
        assert (rec["LastName"], rec["External_Id__c"]) == (name, ext)
    assert len({r[0] for r in ok}) == 4


@st.composite
def widget_rows(draw: st.DrawFn) -> list[tuple[Any, ...]]:
    text = st.one_of(st.none(), st.text(st.characters(exclude_characters="\x00"), max_size=12))
    day = st.dates(dt.date(1, 1, 1), dt.date(9999, 12, 31))
    stamp = st.datetimes(dt.datetime(1, 1, 2), dt.datetime(9999, 12, 30)).map(
        lambda d: d.replace(tzinfo=dt.UTC).isoformat()
    )
    row = st.tuples(
        text, st.one_of(st.none(), st.integers(-(2**31), 2**31 - 1)),
        st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
        st.one_of(st.none(), st.booleans()), st.one_of(st.none(), day.map(dt.date.isoformat)),
        st.one_of(st.none(), stamp),
    )  # fmt: skip
    return draw(st.lists(row, max_size=30))


COLUMNS = ["Name", "Count__c", "Quantity__c", "Active__c", "Released__c", "Seen_At__c"]


@pytest.fixture(scope="module")
def pg_cursor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    data = tmp_path_factory.mktemp("enc")
    with (
        inprocess_context("postgresql", data, [SCHEMA]) as ctx,
        psycopg.connect(ctx.store.url) as conn,
        conn.cursor() as cur,
    ):
        yield ctx, cur


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=widget_rows())
def test_the_copy_data_made_ahead_is_what_the_write_sends(
    pg_cursor: tuple[Any, Any], rows: list[tuple[Any, ...]]
) -> None:
    ctx, cur = pg_cursor
    obj = ctx.schema.get("Widget__c")
    constants = {"CreatedDate": NOW, "CreatedById": USER, "IsDeleted": False}
    plan = CopyPlan(obj, COLUMNS, constants)
    sent: list[bytes] = []

    class Sink:
        def write(self, data: Any) -> None:
            sent.append(bytes(data))

    plan.write(cur, Sink(), rows)
    assert ctx.store.encode_insert(obj, COLUMNS, rows, constants) == b"".join(sent)


def test_copy_data_made_ahead_is_not_sent_on_a_connection_of_another_encoding(
    pg: Context,
) -> None:
    """The data made ahead holds UTF-8 text; a connection set to another client encoding
    formats the rows itself, so the text is stored as written, not read as Latin-1."""
    obj = pg.schema.get("Widget__c")
    first = pg.store.allocate(f"id:{obj.key_prefix}", 2)
    rid, other = make_id(obj.key_prefix, first), make_id(obj.key_prefix, first + 1)
    constants = {"IsDeleted": False}
    with pg.store.transaction() as tx:
        tx.conn.execute("SET LOCAL client_encoding TO 'LATIN1'")
        rows = [(rid, "café")]
        tx.records(obj).insert(
            ["Id", "Name"],
            rows,
            constants,
            pg.store.encode_insert(obj, ["Id", "Name"], rows, constants),
        )
    with pg.store.transaction() as tx:  # the same data on a UTF-8 connection is sent as made
        rows = [(other, "café")]
        tx.records(obj).insert(
            ["Id", "Name"],
            rows,
            constants,
            pg.store.encode_insert(obj, ["Id", "Name"], rows, constants),
        )
    assert pg.store.get_record(obj, rid)["Name"] == "café"
    assert pg.store.get_record(obj, other)["Name"] == "café"
