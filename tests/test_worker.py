"""The worker in-process: a failing job must not take later jobs down with it."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import inprocess_context
from hypothesis import given, settings
from hypothesis import strategies as st
from worker_helpers import ADMIN, submit

from bulkforce import chunk as chunk_mod
from bulkforce import worker as worker_mod
from bulkforce.boot import build_context
from bulkforce.jobs.service import Context, IngestService
from bulkforce.model import Job, JobState, iso
from bulkforce.store import sqlite as sqlite_store
from bulkforce.store import sqlitewal
from bulkforce.store.base import StoreError
from bulkforce.store.rows import parse_iso
from bulkforce.wire.csvio import RowReader
from bulkforce.worker import Worker


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Context]:
    # closed after the test: a store left open keeps its checkpoint thread, which acts on
    # its database while later tests run
    context = build_context(tmp_path / "d", None, [], 10**8)
    yield context
    context.store.close()


def test_internal_error_fails_that_job_and_the_next_job_still_runs(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = IngestService(ctx)
    first = submit(svc, b"LastName\nOne\nTwo\n")
    second = submit(svc, b"LastName\nThree\n")

    real = worker_mod.apply_prepared
    calls: list[str] = []

    def boom(*args: Any, **kwargs: Any) -> Any:
        calls.append("apply")
        if len(calls) == 1:
            raise RuntimeError("simulated bug")
        return real(*args, **kwargs)

    monkeypatch.setattr(worker_mod, "apply_prepared", boom)
    w = Worker(ctx)
    assert w.run_once()  # both small jobs claimed at once; the second runs after the bug
    assert not w.run_once()

    failed = svc.get(first, ADMIN)
    assert failed.state is JobState.FAILED
    assert failed.error_message == "InternalError : RuntimeError: simulated bug"
    assert failed.records_processed == 0
    _, rows = svc.results(first, "unprocessed", ADMIN)
    assert b"".join(rows).decode().splitlines() == ["LastName", '"One"', '"Two"']
    done = svc.get(second, ADMIN)
    assert done.state is JobState.JOB_COMPLETE and done.records_processed == 1


def test_abort_between_batches_leaves_rest_unprocessed(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = IngestService(ctx)
    rows = b"".join(b"N%d\n" % i for i in range(25_000))
    job_id = submit(svc, b"LastName\n" + rows)
    ctx.settings.commit_seconds = 0  # commit after every batch
    reads = []
    real_next_rows = RowReader.next_rows

    def next_rows(self: RowReader, n: int, *cells: int) -> list[list[str]]:
        reads.append(n)
        if len(reads) == 2:  # the first batch has committed; no transaction is open
            svc.abort(job_id, ADMIN)
        return real_next_rows(self, n, *cells)

    monkeypatch.setattr(RowReader, "next_rows", next_rows)
    Worker(ctx).run_once()
    job = svc.get(job_id, ADMIN)
    assert job.state is JobState.ABORTED
    assert job.records_processed == 10_000
    _, ok = svc.results(job_id, "success", ADMIN)
    _, rest = svc.results(job_id, "unprocessed", ADMIN)
    assert len(b"".join(ok).splitlines()) == 1 + 10_000
    unprocessed = b"".join(rest).splitlines()
    assert len(unprocessed) == 1 + 15_000 and unprocessed[1] == b'"N10000"'


def test_sqlite_writers_queue_in_process_and_give_up_like_sqlite(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writers of one process queue on the store's own lock, not in SQLite's sleeping busy
    handler: a queued writer counts in writers_waiting (the worker steps aside for it), runs
    once the holder commits, and one queued past the busy timeout fails as SQLite would."""
    store = ctx.store
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with store.transaction():
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(30)
    queued = threading.Thread(target=store.set_meta, args=("queued", "1"))
    queued.start()
    deadline = time.monotonic() + 30
    while store.writers_waiting() != 1 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert store.writers_waiting() == 1
    monkeypatch.setattr(sqlite_store, "BUSY_TIMEOUT_MS", 50)
    with pytest.raises(StoreError, match="database is locked"):
        store.set_meta("late", "1")
    # the worker's step aside: wakes as soon as the queued writer has the lock
    stepped: list[float] = []

    def step_aside() -> None:
        started = time.monotonic()
        store.let_writers_in(20)
        stepped.append(time.monotonic() - started)

    aside = threading.Thread(target=step_aside)
    aside.start()
    time.sleep(0.05)
    assert not stepped  # still queued: the worker waits
    release.set()
    holder.join(30)
    queued.join(30)
    aside.join(30)
    assert store.writers_waiting() == 0
    assert stepped and 0.05 <= stepped[0] < 5
    assert store.get_meta("queued") == "1" and store.get_meta("late") is None
    started = time.monotonic()
    store.let_writers_in(20)  # nobody queued: no wait at all
    assert time.monotonic() - started < 1


@settings(max_examples=300, deadline=None)
@given(st.datetimes(min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(9999, 12, 30)))
def test_stored_timestamps_read_back_to_the_millisecond(when: dt.datetime) -> None:
    """A job row's timestamps (model.iso) read back as the same UTC instant, milliseconds
    kept; text of another shape still fails as it always did."""
    when = when.replace(tzinfo=dt.UTC)
    back = parse_iso(iso(when))
    assert back == when.replace(microsecond=when.microsecond // 1000 * 1000)
    assert back.tzinfo is dt.UTC
    with pytest.raises(ValueError):
        parse_iso(iso(when).removesuffix("Z"))


def test_a_multi_batch_job_hands_its_freed_heap_back(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    trims: list[str] = []
    monkeypatch.setattr(worker_mod, "trim_heap", lambda: trims.append("trim"))
    # the page cache first (SQLite: PRAGMA shrink_memory), then the heap it lived in
    monkeypatch.setattr(ctx.store, "release_memory", lambda: trims.append("cache"))
    monkeypatch.setattr(worker_mod, "BATCH_SIZE", 5)
    svc = IngestService(ctx)
    small = submit(svc, b"LastName\n" + b"".join(b"S%d\n" % i for i in range(5)))
    assert Worker(ctx).run_once()
    assert svc.get(small, ADMIN).state is JobState.JOB_COMPLETE and trims == []
    large = submit(svc, b"LastName\n" + b"".join(b"L%d\n" % i for i in range(12)))
    assert Worker(ctx).run_once()
    assert svc.get(large, ADMIN).state is JobState.JOB_COMPLETE and trims == ["cache", "trim"]


@pytest.fixture(params=["sqlite", "postgresql"])
def any_ctx(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Context]:
    with inprocess_context(request.param, tmp_path / "data") as context:
        yield context


def test_a_job_ends_in_the_transaction_of_its_last_batch(
    any_ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One write transaction less per job (a burst of small jobs waits on each), and no
    moment where every batch is committed but the job still reads InProgress."""
    svc = IngestService(any_ctx)
    store_type = type(any_ctx.store)
    calls: list[object] = []
    real = store_type.transition

    def transition(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return real(self, *args, **kwargs)

    groups: list[object] = []
    real_tx = store_type.transaction

    def transaction(self: Any) -> Any:
        groups.append(self)
        return real_tx(self)

    monkeypatch.setattr(store_type, "transition", transition)
    monkeypatch.setattr(store_type, "transaction", transaction)

    def run(csv: bytes) -> tuple[Job, int, int]:
        """The job done, its write transactions and its transitions of their own."""
        job_id = submit(svc, csv)
        calls.clear()  # the close's own transition
        groups.clear()
        assert Worker(any_ctx).run_once()
        job = svc.get(job_id, ADMIN)
        assert job.state is JobState.JOB_COMPLETE
        return job, len(groups), len(calls)

    job, _, own = run(b"LastName\nOne\nTwo\n")
    assert (job.records_processed, own, job.header) == (2, 0, ["LastName"])
    # with a request waiting for the write lock, a one-batch job still ends in its batch's
    # transaction: it looks for a next batch before committing
    monkeypatch.setattr(store_type, "writers_waiting", lambda self: 1)
    monkeypatch.setattr(Worker, "_let_writers_in", lambda self, limit=1.0: None)
    assert run(b"LastName\nThree\n")[1:] == (1, 0)
    # a larger job commits each batch before reading the next while someone waits (the
    # lock is not held while a batch is prepared); its end is then a transaction of its own
    monkeypatch.setattr(worker_mod, "BATCH_SIZE", 1)
    job, groups_used, own = run(b"LastName\nThree\nFour\nFive\n")
    assert (job.records_processed, job.batches_done, groups_used, own) == (3, 3, 3, 1)
    # with no batch at all (a header only), the end is a transaction of its own
    assert run(b"LastName\n")[1:] == (0, 1)


def test_a_job_of_one_batch_starts_no_prefetch_thread(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A thread costs a small job ~0.3-0.5 ms of CPU and, in a burst, a wait for the GIL;
    with one batch it could only find the end of the file sooner. A job of more batches
    still prepares the next one on a thread while it writes the current one."""
    svc = IngestService(ctx)
    real = chunk_mod.prepare

    def slow_prepare(*args: Any, **kwargs: Any) -> Any:
        spin = time.thread_time()  # CPU, as a busy server's batch takes: past CHEAP_SECONDS
        while time.thread_time() - spin < 0.003:
            pass
        return real(*args, **kwargs)

    started: list[str] = []
    real_start = threading.Thread.start

    def start(self: threading.Thread) -> None:
        started.append(self.name)
        real_start(self)

    monkeypatch.setattr(chunk_mod, "prepare", slow_prepare)
    monkeypatch.setattr(threading.Thread, "start", start)
    submit(svc, b"LastName\nOne\nTwo\n")
    assert Worker(ctx).run_once()
    assert "bulkforce-prefetch" not in started
    monkeypatch.setattr(worker_mod, "BATCH_SIZE", 1)
    job_id = submit(svc, b"LastName\nOne\nTwo\nThree\n")
    assert Worker(ctx).run_once()
    assert "bulkforce-prefetch" in started
    assert svc.get(job_id, ADMIN).records_processed == 3


def test_small_jobs_are_claimed_together_in_close_order(
    any_ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite claims a small job and the small ones closed right after it in one write
    (a burst hands the write lock over once per few jobs); a large job is claimed alone and
    never behind a small one. PostgreSQL, whose workers run on many hosts, claims one."""
    svc = IngestService(any_ctx)
    monkeypatch.setattr(worker_mod, "BATCH_SIZE", 2)
    small = [submit(svc, b"LastName\nA\nB\n") for _ in range(3)]
    large = submit(svc, b"LastName\nA\nB\nC\n")
    tail = submit(svc, b"LastName\nA\n")
    store, lease = any_ctx.store, any_ctx.settings.lease_seconds
    many = any_ctx.store.prepare_in_child  # SQLite only
    first = store.claim_jobs("w1", lease, 2, 8)
    assert [j.id for j in first] == (small if many else small[:1])
    assert all(j.state is JobState.IN_PROGRESS for j in first)
    if not many:
        assert [j.id for j in store.claim_jobs("w1", lease, 2, 8)] == [small[1]]
        assert [j.id for j in store.claim_jobs("w1", lease, 2, 8)] == [small[2]]
    assert [j.id for j in store.claim_jobs("w2", lease, 2, 8)] == [large]  # alone
    assert [j.id for j in store.claim_jobs("w2", lease, 2, 8)] == [tail]
    assert store.claim_jobs("w3", lease, 2, 8) == []  # leases held: nothing to take
    # through the worker: every claimed job runs in the one pass, each to its own end
    more = [submit(svc, b"LastName\nX\n") for _ in range(3)]
    assert Worker(any_ctx).run_once()
    states = [svc.get(j, ADMIN).state for j in more]
    expected = 3 if many else 1
    assert states.count(JobState.JOB_COMPLETE) == expected


def test_sqlite_checkpoints_run_outside_the_write_lock_and_bound_the_wal(ctx: Context) -> None:
    """SQLite's own autocheckpoint copies the WAL back inside a COMMIT, with every other
    writer queued behind it (7-8 ms each, several per burst of small jobs); the store runs
    the checkpoints itself once the lock is free, often enough that the WAL stays small."""
    store = ctx.store
    assert isinstance(store, sqlite_store.SQLiteStore)
    held: list[bool] = []
    real = sqlitewal.Checkpoints.after_commit

    def after_commit(self: Any, conn: Any, changed: int) -> None:
        free: list[bool] = []

        def probe() -> None:  # from another thread: the write lock is re-entrant
            got = store._writer.acquire(blocking=False)
            if got:
                store._writer.release()
            free.append(got)

        prober = threading.Thread(target=probe)
        prober.start()
        prober.join()
        held.append(not free[0])
        real(self, conn, changed)

    wal = Path(str(store.path) + "-wal")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sqlitewal.Checkpoints, "after_commit", after_commit)
        for i in range(2000):
            store.set_meta(f"k{i}", "x" * 2000)  # ~1 page of WAL per commit
    assert len(held) == 2000 and not any(held)
    # without checkpoints the WAL would hold ~2,000 pages (8 MB); autocheckpoint is off
    assert wal.stat().st_size < 2 * 1024 * 1024, wal.stat().st_size
    assert store.get_meta("k1999") == "x" * 2000


def test_sqlite_checkpoints_after_large_commits_run_on_a_thread_until_the_wal_is_large(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a large commit (a job's batches) the committing thread goes on while the WAL is
    copied back. But a writer that never pauses keeps the WAL from starting over, so past
    SYNC_ABOVE_BYTES the committing thread checkpoints itself and the WAL stops growing."""
    store = ctx.store
    assert isinstance(store, sqlite_store.SQLiteStore)
    ran_on: list[str] = []
    real = sqlitewal.checkpoint

    def checkpoint(conn: Any) -> int | None:
        ran_on.append(threading.current_thread().name)
        if ran_on[-1] == "bulkforce-checkpoint":
            time.sleep(0.005)  # slower than a commit: each write begins while it runs
        return real(conn)

    monkeypatch.setattr(sqlitewal, "checkpoint", checkpoint)
    monkeypatch.setattr(sqlitewal, "CHECKPOINT_ROWS", 1)  # every commit is a large one
    wal = Path(str(store.path) + "-wal")
    sizes: dict[int, int] = {}
    for limit in (64 * 1024, 1 << 40):  # 64 KB, then none (the file only grows)
        monkeypatch.setattr(sqlitewal, "SYNC_ABOVE_BYTES", limit)
        ran_on.clear()
        for i in range(2000):
            store.set_meta(f"b{limit}-{i}", "y" * 8000)  # ~3 pages of WAL per commit
        sizes[limit] = wal.stat().st_size
        assert "bulkforce-checkpoint" in ran_on
        if limit == 64 * 1024:
            assert threading.current_thread().name in ran_on  # the committing thread's own
        else:
            assert set(ran_on) == {"bulkforce-checkpoint"}
    # ~45 MB without the limit, 3-6 MB with it whatever the number of commits: 2,000 of them
    # keep the two far apart (with 1,000, ~22 MB against up to ~8 MB failed 1 run in 20)
    assert sizes[64 * 1024] * 4 < sizes[1 << 40], sizes


def test_sqlite_wal_file_is_cut_back_once_quiet_and_never_holds_up_a_write(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a large job the WAL file keeps its size (~450 MB after the 1M-row bench) until
    the server stops. Once no process has written to it for a while, the checkpoint thread
    cuts it back to nothing. A reader in the way makes it give up and retry, and a write
    meanwhile goes through at once; while another process writes, it does not even try
    (the API's store commits nothing while a worker's commit groups run)."""
    import sqlite3

    store = ctx.store
    assert isinstance(store, sqlite_store.SQLiteStore)
    tries: list[bool] = []
    real = sqlitewal.truncate

    def truncate(conn: sqlite3.Connection) -> bool:
        done = real(conn)
        # only this store's: an earlier test's store may still have its checkpoint thread
        if conn.execute("PRAGMA database_list").fetchone()[2] == str(store.path):
            tries.append(done)
        return done

    monkeypatch.setattr(sqlitewal, "truncate", truncate)
    monkeypatch.setattr(sqlitewal, "CHECKPOINT_ROWS", 1)  # every commit is a large one
    monkeypatch.setattr(sqlitewal, "SHRINK_ABOVE_BYTES", 256 * 1024)
    monkeypatch.setattr(sqlitewal, "QUIET_SECONDS", 0.2)
    wal = Path(str(store.path) + "-wal")

    def size() -> int:
        return wal.stat().st_size if wal.exists() else 0

    reader = sqlite3.connect(store.path, isolation_level=None)
    other = sqlite3.connect(store.path, isolation_level=None)  # as another process's store
    other.execute("PRAGMA wal_autocheckpoint = 0")
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM bf_meta").fetchone()  # holds its snapshot
        for i in range(200):  # ~3 pages each; the reader keeps the WAL from starting over
            store.set_meta(f"w{i}", "z" * 8000)
        grown = size()
        assert grown > 1024 * 1024, grown
        time.sleep(1.0)  # quiet, but the reader is in the way: tried, not cut
        assert tries and not any(tries) and size() == grown
        started = time.perf_counter()
        store.set_meta("during", "x")
        assert time.perf_counter() - started < 0.15
        tries.clear()
        for i in range(40):  # ~1 s of small commits elsewhere: never quiet for 0.2 s
            other.execute("INSERT INTO bf_meta (key, value) VALUES (?, ?)", (f"o{i}", "q"))
            time.sleep(0.025)
        assert tries == []
        reader.execute("COMMIT")
    finally:
        reader.close()
        other.close()
    deadline = time.monotonic() + 10
    while size() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert size() == 0
    assert store.get_meta("w199") == "z" * 8000 and store.get_meta("during") == "x"
    assert store.get_meta("o39") == "q"


def test_an_abort_between_the_claim_and_the_first_batch_writes_nothing(
    any_ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first batch after a claim skips the job-state query (a round trip per small job);
    its commit_batch still finds the job aborted, and the batch's writes roll back."""
    svc = IngestService(any_ctx)
    job_id = submit(svc, b"LastName\nOne\nTwo\n")
    real = Worker._let_writers_in

    def abort_first(self: Worker, limit: float = 1.0) -> None:
        svc.abort(job_id, ADMIN)  # no transaction is open yet
        real(self, limit)

    monkeypatch.setattr(Worker, "_let_writers_in", abort_first)
    assert Worker(any_ctx).run_once()
    job = svc.get(job_id, ADMIN)
    assert (job.state, job.records_processed, job.batches_done) == (JobState.ABORTED, 0, 0)
    assert b"".join(svc.results(job_id, "unprocessed", ADMIN)[1]).splitlines()[1:] == [
        b'"One"',
        b'"Two"',
    ]
    table = any_ctx.schema.get("Contact").table  # type: ignore[union-attr]
    with any_ctx.store._conns.borrow() as conn:  # type: ignore[attr-defined]
        row = conn.execute(f"SELECT count(*) AS n FROM {table}").fetchone()  # unquoted: both
    assert row["n"] == 0
