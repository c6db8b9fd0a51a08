"""Two write streams for a large PostgreSQL insert (bulkforce.streams, issue #14): a job's
batches are written two at a time, each in its own transaction, and commit in the file's order.
"""

from __future__ import annotations

import csv
import io
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import PG_PROBLEM, PG_URL, inprocess_context
from hypothesis import given, settings
from hypothesis import strategies as st

from bulkforce import streams
from bulkforce import worker as worker_mod
from bulkforce.engine.outcome import InsertRows, Outcome
from bulkforce.engine.schema import build_schema, builtin_definitions, load_file
from bulkforce.engine.stage import StagedInsert
from bulkforce.jobs.access import Caller
from bulkforce.jobs.service import Context, IngestService
from bulkforce.model import JobState
from bulkforce.prefetch import Batches
from bulkforce.store.base import ColumnRows, LockWaitTimeout, Tx
from bulkforce.streams import (
    Abandoned,
    Keys,
    Turns,
    loose,
    overlap,
    unique_keys,
    write_two_streams,
)
from bulkforce.wire.csvrows import CsvFormatError
from bulkforce.worker import Worker

ADMIN = Caller("005000000000000AAA", is_admin=True)
SCHEMA = Path(__file__).parent / "data" / "test_schema.json"
BATCH = 40


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Context]:
    with inprocess_context("postgresql", tmp_path / "data", [SCHEMA]) as context:
        yield context


def _job(ctx: Context, keys: list[str]) -> str:
    svc = IngestService(ctx)
    job = svc.insert(svc.create("59.0", {"object": "Contact", "operation": "insert"}))
    sink = svc.open_upload(job.id, ADMIN)
    sink.write(b"LastName,External_Id__c\n")
    sink.write("".join(f"n{i},{k}\n" for i, k in enumerate(keys)).encode())
    sink.finish()
    svc.close(job.id, ADMIN)
    return job.id


def _run(ctx: Context, slow_seq: int | None = None) -> list[int]:
    """Run the worker (batches of BATCH rows) on a thread, so that streams waiting for each
    other show as a timeout, not a hung suite. Returns how many batches were being written
    whenever one started. `slow_seq`: that batch waits 0.3 s before its writes."""
    real_batch = Worker._batch
    active: list[int] = []
    lock = threading.Lock()
    now = [0]

    def batch(self: Worker, tx: Tx, job: Any, plan: Any, seq: int, *args: Any, **kw: Any) -> None:
        with lock:
            now[0] += 1
            active.append(now[0])
        try:
            time.sleep(0.3 if seq == slow_seq else 0.05)
            real_batch(self, tx, job, plan, seq, *args, **kw)
        finally:
            with lock:
                now[0] -= 1

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(worker_mod, "BATCH_SIZE", BATCH)
        mp.setattr(Worker, "_batch", batch)
        runner = threading.Thread(target=Worker(ctx).run_once, daemon=True)
        runner.start()
        runner.join(60)
    assert not runner.is_alive(), "the worker's two write streams wait for each other"
    return active


def _results(ctx: Context, job_id: str, kind: str) -> list[dict[str, str]]:
    body = b"".join(IngestService(ctx).results(job_id, kind, ADMIN)[1])
    return list(csv.DictReader(io.StringIO(body.decode())))


def test_batches_are_written_two_at_a_time_and_commit_in_order(ctx: Context) -> None:
    keys = [f"k{i}" for i in range(5 * BATCH)]
    job_id = _job(ctx, keys)
    active = _run(ctx)
    assert max(active) == 2, active  # two streams, never more
    job = IngestService(ctx).get(job_id, ADMIN)
    assert job.state is JobState.JOB_COMPLETE and job.batches_done == 5, job
    ok = _results(ctx, job_id, "success")
    assert [r["External_Id__c"] for r in ok] == keys  # every row once, in the file's order
    ids = [r["sf__Id"] for r in ok]
    assert len(set(ids)) == len(ids) and ids == sorted(ids)
    assert _results(ctx, job_id, "failed") == []


def test_a_unique_value_in_two_adjacent_batches_fails_only_the_later_row(ctx: Context) -> None:
    """The first batch's last row and the second's first share a unique value (case aside).
    Written at once, the second would insert it first, the first batch would wait for the
    second's transaction and the second for the first's commit: the second must wait."""
    keys = [f"k{i}" for i in range(2 * BATCH)]
    keys[BATCH - 1], keys[BATCH] = "dup-x", "DUP-X"
    job_id = _job(ctx, keys)
    _run(ctx, slow_seq=0)
    job = IngestService(ctx).get(job_id, ADMIN)
    assert job.state is JobState.JOB_COMPLETE and job.records_failed == 1, job
    ok = _results(ctx, job_id, "success")
    assert [r["External_Id__c"] for r in ok] == keys[:BATCH] + keys[BATCH + 1 :]
    [bad] = _results(ctx, job_id, "failed")
    assert bad["External_Id__c"] == "DUP-X" and bad["sf__Error"].startswith("DUPLICATE_VALUE")


def test_two_streams_that_wait_for_each_other_are_written_again_one_at_a_time(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As above, but the keys fail to see the shared value (as a locale's own lower-casing
    could): the two batches wait for each other until the lock wait times out; then both
    are written again, alone, and the job ends as if they had never met."""
    monkeypatch.setattr(worker_mod, "unique_keys", lambda obj, staged: {})
    monkeypatch.setattr(streams, "LOCK_WAIT_SECONDS", 0.5)
    keys = [f"k{i}" for i in range(3 * BATCH)]
    keys[BATCH - 1], keys[BATCH] = "dup-y", "DUP-Y"
    job_id = _job(ctx, keys)
    active = _run(ctx, slow_seq=0)
    assert max(active) == 2, active  # they were written at once
    job = IngestService(ctx).get(job_id, ADMIN)
    assert job.state is JobState.JOB_COMPLETE and job.records_failed == 1, job
    assert job.records_processed == 3 * BATCH
    ok = _results(ctx, job_id, "success")
    assert [r["External_Id__c"] for r in ok] == keys[:BATCH] + keys[BATCH + 1 :]
    [bad] = _results(ctx, job_id, "failed")
    assert bad["External_Id__c"] == "DUP-Y" and bad["sf__Error"].startswith("DUPLICATE_VALUE")


def test_a_batchs_keys_are_its_unique_values_folded_as_an_index_may_compare_them() -> None:
    """Per unique column (not Id, not LastName), blanks left out; ASCII values lower-cased,
    others folded by `loose`, so 'İX' in one batch meets 'ix' in the next."""
    schema = build_schema(
        [*builtin_definitions(), *load_file(SCHEMA)], lambda name: "a0" + name[:1]
    )  # fmt: skip
    contact = schema.get("Contact")
    assert contact is not None

    def staged(last: list[str], ext: list[str | None]) -> StagedInsert:
        ids = [f"003R0000000000{i}AAA" for i in range(len(last))]
        rows = InsertRows(
            ["Id", "LastName", "External_Id__c"], ColumnRows([ids, last, ext]),
            list(range(len(last))), {},
        )  # fmt: skip
        return StagedInsert(rows, None, Outcome([], [], []))

    first = unique_keys(contact, staged(["a", "A", "b", "c"], ["K1", "", "İX", None]))
    assert first == {"external_id__c": frozenset({"k1", loose("İX")})}
    ascii_only = unique_keys(contact, staged(["A"], ["ix"]))
    assert ascii_only == {"external_id__c": frozenset({"ix"})}
    assert overlap(first, ascii_only) and overlap(ascii_only, first)
    assert not overlap(first, unique_keys(contact, staged(["a"], ["k2"])))  # "a": not unique
    assert unique_keys(contact, None) is None  # not staged: it may meet anything
    assert overlap(None, {}) and overlap({}, None)


TRICKY = "aAiIİıkKK sSßσςΣeéÉE\u0301ﬁfFΩΩ-1"  # Kelvin K, Ohm Ω, a combining accent, a ligature


@pytest.fixture(scope="module")
def pg() -> Iterator[Any]:
    if PG_PROBLEM:
        pytest.skip(PG_PROBLEM)
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS citext")
        yield conn


@settings(max_examples=300, deadline=None)
@given(a=st.text(TRICKY, max_size=4), data=st.data())
def test_values_a_unique_index_finds_equal_have_equal_keys(
    pg: Any, a: str, data: st.DataObject
) -> None:
    """Whatever PostgreSQL's unique indexes call equal (text exactly, citext by the database's
    lower-casing), `loose` must too, or two streams could wait for each other. `b` is `a`
    with each character's case changed or not (or another character), so most pairs are
    equal to citext."""
    variants = [
        st.sampled_from([c, c.upper(), c.lower(), c.swapcase(), c.casefold()])
        | st.sampled_from(TRICKY)
        for c in a
    ]
    b = "".join(data.draw(st.tuples(*variants))) + data.draw(st.text(TRICKY, max_size=1))
    same_text, same_citext = pg.execute("SELECT %s::text = %s::text, %s::citext = %s::citext",
                                        (a, b, a, b)).fetchone()  # fmt: skip
    if same_text or same_citext:
        assert loose(a) == loose(b), (a, b)


@pytest.mark.parametrize(
    ("a", "b"), [("İ", "i"), ("\u212a", "k"), ("\u2126", "ω"), ("ß", "SS"), ("ς", "Σ"), ("É", "é")]
)
def test_known_look_alikes_have_equal_keys_where_the_database_finds_them_equal(
    pg: Any, a: str, b: str
) -> None:
    """Characters the database's lower-casing maps differently from Unicode's case folding
    (glibc lowers the dotted 'İ' to a plain 'i')."""
    if pg.execute("SELECT %s::citext = %s::citext", (a, b)).fetchone()[0]:
        assert loose(a) == loose(b), (a, b)


class _Listed(Batches[int]):
    """Batches 0, 1, 2, ... of a list; `broken_at`: that one is a CSV error instead."""

    def __init__(self, n: int, broken_at: int | None = None) -> None:
        self.items = iter(range(n))
        self.broken_at = broken_at
        self.discarded: list[int] = []

    def __next__(self) -> int:
        item = next(self.items)
        if item == self.broken_at:
            raise CsvFormatError("InvalidBatch : Failed to parse CSV")
        return item

    def discard(self, item: int) -> None:
        self.discarded.append(item)

    def close(self) -> None:
        pass


def _writer(
    fail_at: int | None = None, timeout_at: int | None = None
) -> tuple[list[int], list[int], Any]:
    """(committed, written alone, write_one). `fail_at`: that batch fails; `timeout_at`: that
    batch's lock wait times out whenever it is written beside another."""
    committed: list[int] = []
    alone: list[int] = []

    def write_one(item: int, seq: int, turns: Turns | None) -> None:
        time.sleep(0.02 if item % 2 else 0.05)  # the later batch of a pair finishes first
        if item == fail_at:
            raise RuntimeError("this batch fails")
        if turns is None:
            alone.append(seq)
        else:
            if item == timeout_at:
                raise LockWaitTimeout("canceling statement due to lock timeout")
            turns.wait(seq)
        committed.append(seq)

    return committed, alone, write_one


def _apart(item: int) -> Keys:
    return {}


def test_streams_commit_in_order_and_stop_at_a_broken_csv() -> None:
    committed, _, write_one = _writer()
    batches = _Listed(6, broken_at=4)
    problem, after = write_two_streams(batches, 10, write_one, _apart)
    assert problem == "InvalidBatch : Failed to parse CSV"
    assert committed == [10, 11, 12, 13] and after == 14  # the batches before it, in order
    assert sorted(batches.discarded) == [0, 1, 2, 3]


def test_a_failed_batch_fails_the_one_in_flight_after_it() -> None:
    committed, _, write_one = _writer(fail_at=2)
    with pytest.raises(RuntimeError, match="this batch fails"):
        write_two_streams(_Listed(6), 0, write_one, _apart)
    assert committed == [0, 1]  # 3 was in flight: it gave up at its turn (Abandoned)


def test_a_later_batch_that_fails_lets_the_one_before_it_commit() -> None:
    committed, _, write_one = _writer(fail_at=3)  # the later of a pair fails first
    with pytest.raises(RuntimeError, match="this batch fails"):  # the cause, not Abandoned
        write_two_streams(_Listed(6), 0, write_one, _apart)
    assert committed == [0, 1, 2]


@pytest.mark.parametrize("timeout_at", [2, 3])  # the earlier or the later batch of a pair
def test_a_lock_wait_that_times_out_writes_the_pair_again_one_at_a_time(timeout_at: int) -> None:
    committed, alone, write_one = _writer(timeout_at=timeout_at)
    batches = _Listed(6)
    problem, after = write_two_streams(batches, 0, write_one, _apart)
    assert problem is None and after == 6
    assert committed == [0, 1, 2, 3, 4, 5]  # every batch once, in order
    # What had not committed is written again, alone: the failed batch and the one after it
    # (it gave up at its turn). A batch before the failed one still commits in its pair.
    assert alone == [timeout_at, timeout_at + 1]
    assert sorted(batches.discarded) == list(range(6))


def test_turns_abandon_the_waiters_after_a_failed_batch() -> None:
    turns = Turns(0)
    turns.done(0)
    turns.wait(1)  # its turn: returns at once
    turns.fail(2)
    turns.wait(1)  # before the failed batch: still its turn
    with pytest.raises(Abandoned):
        turns.wait(3)
