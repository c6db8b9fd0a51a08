"""The two-stage worker: batches read and coerced on a prefetch thread, written in file order
through multi-row INSERT statements. What users would notice if it went wrong: rows out of
order or lost between the stages, a different error reported for a row, or a whole
statement's rows failing for one duplicate."""

from __future__ import annotations

import csv
import io
import itertools
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import inprocess_context
from hypothesis import given, settings
from hypothesis import strategies as st

from bulkforce import worker as worker_mod
from bulkforce.engine.outcome import Outcome
from bulkforce.jobs.access import Caller
from bulkforce.jobs.service import Context, IngestService
from bulkforce.model import JobState
from bulkforce.prefetch import Prefetch
from bulkforce.store.records import statement_sizes
from bulkforce.wire.csvio import quoted, quoted_bodies, render_outcome
from bulkforce.worker import Worker

ADMIN = Caller("005000000000000AAA", is_admin=True)
SCHEMA = Path(__file__).parent / "data" / "test_schema.json"


# ---- Prefetch --------------------------------------------------------------------------------


def counter(n: int, fail_at: int | None = None) -> tuple[list[str], object]:
    threads: list[str] = []
    it = iter(range(n))

    def produce() -> int | None:
        threads.append(threading.current_thread().name)
        i = next(it, None)
        if i is not None and i == fail_at:
            raise ValueError(f"bad item {i}")
        return i

    return threads, produce


def test_prefetch_yields_every_item_in_order_first_one_inline() -> None:
    threads, produce = counter(50)
    with Prefetch(produce, cheap=0) as items:  # type: ignore[arg-type]
        assert list(items) == list(range(50))
    assert threads[0] == threading.current_thread().name  # a one-batch job starts no thread
    assert set(threads[1:]) == {"bulkforce-prefetch"}


def test_items_cheap_to_produce_start_no_thread_an_expensive_one_does() -> None:
    """A small job's batches cost less to produce than a thread costs to start."""
    threads, produce = counter(5)
    with Prefetch(produce, cheap=0.05) as items:  # type: ignore[arg-type]
        assert list(items) == list(range(5))
    assert set(threads) == {threading.current_thread().name}

    costs = iter([0.0, 0.0, 0.06, 0.0, 0.0, 0.0])
    threads.clear()

    def produce_costly() -> int | None:
        threads.append(threading.current_thread().name)
        until = time.thread_time() + next(costs)
        while time.thread_time() < until:  # CPU spent producing the item
            pass
        return len(threads) if len(threads) <= 5 else None

    with Prefetch(produce_costly, cheap=0.05) as items:
        assert list(items) == [1, 2, 3, 4, 5]
    here = threading.current_thread().name
    assert threads[:3] == [here] * 3  # the third took 60 ms: the fourth is made ahead
    assert set(threads[3:]) == {"bulkforce-prefetch"}


def test_prefetch_raises_the_producers_error_where_its_item_would_be() -> None:
    _, produce = counter(50, fail_at=7)
    got: list[int] = []
    with Prefetch(produce) as items, pytest.raises(ValueError, match="bad item 7"):  # type: ignore[arg-type]
        for i in items:
            got.append(i)
    assert got == list(range(7))


def test_leaving_early_stops_the_thread_and_reads_no_further() -> None:
    calls = 0

    def produce() -> int:
        nonlocal calls
        calls += 1
        return calls

    with Prefetch(produce, depth=1) as items:
        assert next(items) == 1
        assert next(items) == 2
        time.sleep(0.1)  # the thread fills the queue and blocks
    seen = calls
    time.sleep(0.2)
    assert calls == seen  # stopped and joined: nothing read after the source was closed
    assert seen <= 5  # 2 taken, 1 queued, 1 waiting to be queued, at most one more made
    assert not any(t.name == "bulkforce-prefetch" for t in threading.enumerate())


# ---- multi-row statements --------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(n=st.integers(0, 20_000), per=st.integers(1, 3_000))
def test_statement_sizes_cover_every_row_once_from_few_texts(n: int, per: int) -> None:
    parts = list(statement_sizes(n, per))
    sizes = [size for size, _ in parts]
    assert [start for _, start in parts] == [0, *itertools.accumulate(sizes)][: len(parts)]
    assert sum(sizes) == n
    assert all(size <= per for size in sizes)
    small = [size for size in sizes if size != per]
    assert all(size & (size - 1) == 0 for size in small)  # powers of two: texts recur
    assert len(set(small)) == len(small)  # each at most once per chunk


# ---- through the worker, on both stores --------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def ctx(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Context]:
    with inprocess_context(request.param, tmp_path / "data", [SCHEMA]) as context:
        yield context


def run_job(ctx: Context, body: str) -> tuple[str, list[list[str]], list[list[str]]]:
    svc = IngestService(ctx)
    job = svc.insert(svc.create("59.0", {"object": "Widget__c", "operation": "insert"}))
    sink = svc.open_upload(job.id, ADMIN)
    sink.write(body.encode())
    sink.finish()
    svc.close(job.id, ADMIN)
    Worker(ctx).run_once()
    done = svc.get(job.id, ADMIN)
    assert done.state is JobState.JOB_COMPLETE, done

    def rows(kind: str) -> list[list[str]]:
        data = b"".join(svc.results(job.id, kind, ADMIN)[1]).decode()
        return list(csv.reader(io.StringIO(data, newline="")))[1:]

    return job.id, rows("success"), rows("failed")


def test_a_duplicate_in_a_large_batch_fails_only_that_row(ctx: Context) -> None:
    tag = f"{time.time_ns() % 10**9:09d}"
    n = 3_000
    skus = [f"{tag}-{i}" for i in range(n)]
    dupes = {1_000: 10, 2_999: 1_500}  # row -> the earlier row whose Sku__c it repeats
    lines = ["Name,Sku__c"] + [f"w{i},{skus[dupes.get(i, i)]}" for i in range(n)]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(worker_mod, "BATCH_SIZE", 2_500)  # two batches; the second holds a dupe too
        _, ok, bad = run_job(ctx, "\n".join(lines) + "\n")
    assert [r[2] for r in ok] == [f"w{i}" for i in range(n) if i not in dupes]  # file order
    assert [r[2] for r in bad] == ["w1000", "w2999"]
    assert all(r[1].startswith("DUPLICATE_VALUE:") for r in bad), bad
    assert len({r[0] for r in ok}) == n - 2  # every success has its own Id


def test_a_row_reports_its_first_bad_cell_whichever_thread_checked_it(ctx: Context) -> None:
    # Account__r.External_Id__c is looked up inside the transaction, Count__c coerced on the
    # prefetch thread: the lookup column comes first, so its error is the one reported.
    tag = f"{time.time_ns() % 10**9:09d}"
    lines = ["Name,Account__r.External_Id__c,Count__c"]
    lines += [f"ok{i},,{i}" for i in range(100)]
    lines += [f"both,missing-{tag},notanumber", "count,,notanumber"]
    _, ok, bad = run_job(ctx, "\n".join(lines) + "\n")
    assert len(ok) == 100
    errors = {r[2]: r[1] for r in bad}
    assert errors["both"].startswith("INVALID_FIELD:Foreign key external ID: missing-"), errors
    assert errors["count"].startswith("INVALID_TYPE_ON_FIELD_IN_RECORD:"), errors


# ---- result lines made ahead ------------------------------------------------------------------

CELLS = st.text(
    alphabet=st.sampled_from(["a", "é", '"', ",", "|", "\t", "\n", "\r", "\x00", "\x01", " "])
)


@settings(max_examples=300, deadline=None)
@given(
    rows=st.lists(st.lists(CELLS, min_size=1, max_size=4), max_size=8),
    delimiter=st.sampled_from([",", "|", "\t", ";"]),
    newline=st.sampled_from(["\n", "\r\n"]),
    created=st.booleans(),
)
def test_result_lines_made_ahead_read_back_as_the_uploaded_values(
    rows: list[list[str]], delimiter: str, newline: str, created: bool
) -> None:
    ids = [f"a00R{i:014d}" for i in range(len(rows))]
    outcome = Outcome(ids, [created] * len(rows), [None] * len(rows))
    ahead, _ = render_outcome(
        rows, outcome, delimiter, newline, bodies=quoted_bodies(rows, delimiter, newline)
    )
    text = ahead.decode()
    back = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    flag = "true" if created else "false"
    assert back == [[rid, flag, *row] for rid, row in zip(ids, rows, strict=True)]
    assert text == "".join(
        quoted([rid, flag, *row], delimiter) + newline for rid, row in zip(ids, rows, strict=True)
    )
