"""Large jobs prepare their batches in a child process (bulkforce.prepare_proc). What users
would notice if it went wrong: results that differ from the same job run on a thread, rows
lost or written twice when the child dies, a CSV error reported at another place, a child
left running, or batches garbled on their way through the pipe."""

from __future__ import annotations

import csv
import io
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import inprocess_context
from hypothesis import given, settings
from hypothesis import strategies as st

from bulkforce import prepare_proc
from bulkforce import worker as worker_mod
from bulkforce.engine.errors import RecordError
from bulkforce.engine.plan import make_plan
from bulkforce.engine.prepare import prepare
from bulkforce.engine.schema import build_schema, load_file
from bulkforce.jobs.access import Caller
from bulkforce.jobs.service import Context, IngestService
from bulkforce.model import JobState, Operation
from bulkforce.prepare_proc import PrepareProcess, Rows, Spec
from bulkforce.wire.csvio import CsvFormatError
from bulkforce.worker import Worker

ADMIN = Caller("005000000000000AAA", is_admin=True)
SCHEMA = Path(__file__).parent / "data" / "test_schema.json"


@pytest.fixture(params=["sqlite", "postgresql"])
def ctx(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Context]:
    with inprocess_context(request.param, tmp_path / "data", [SCHEMA]) as context:
        yield context


def submit(svc: IngestService, body: bytes) -> str:
    job = svc.open_job("59.0", {"object": "Widget__c", "operation": "insert"}, ADMIN.user_id)
    svc.upload(job.id, ADMIN, body)
    svc.close(job.id, ADMIN)
    return job.id


def results(svc: IngestService, job_id: str, kind: str) -> list[list[str]]:
    data = b"".join(svc.results(job_id, kind, ADMIN)[1]).decode()
    return list(csv.reader(io.StringIO(data, newline="")))[1:]


def upload(tag: str, n: int) -> bytes:
    """Rows of every kind the child must treat as the thread does: good ones, a malformed
    one, a short one, a bad number, a duplicate unique key, quoted newlines and quotes."""
    lines = ["Name,Sku__c,Count__c"]
    for i in range(n):
        if i == 5:
            lines.append(f'bad "quote",{tag}-{i},1')
        elif i == 9:
            lines.append("short")
        elif i == 14:
            lines.append(f"nan,{tag}-{i},notanumber")
        elif i == 20:
            lines.append(f"dupe,{tag}-3,2")
        elif i == 25:  # a NUL: stored on SQLite, a record error on PostgreSQL
            lines.append(f"nul\x00name,{tag}-{i},{i}")
        else:
            lines.append(f'"w{i}\nline ""two""",{tag}-{i},{i}')
    return ("\n".join(lines) + "\n").encode()


def run(ctx: Context, body: bytes, in_child: bool) -> tuple[list[list[str]], list[list[str]]]:
    svc = IngestService(ctx)
    job_id = submit(svc, body)
    w = Worker(ctx)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(worker_mod, "BATCH_SIZE", 7)  # many batches, several commit groups
        mp.setattr(worker_mod, "PROCESS_MIN_ROWS", 0 if in_child else 10**9)
        mp.setattr(ctx.store, "prepare_in_child", True)  # PostgreSQL's default is a thread
        assert w.run_once()
    assert (w.preparer._proc is not None) == in_child
    w.close()
    job = svc.get(job_id, ADMIN)
    assert job.state is JobState.JOB_COMPLETE, job
    ok, bad = results(svc, job_id, "success"), results(svc, job_id, "failed")
    return [r[1:] for r in ok], [r[1:] for r in bad]  # Ids differ between the two runs


def test_a_job_through_the_child_has_the_results_it_has_on_a_thread(ctx: Context) -> None:
    tag = f"{time.time_ns() % 10**9:09d}"
    ok_child, bad_child = run(ctx, upload(tag + "c", 60), in_child=True)
    ok_thread, bad_thread = run(ctx, upload(tag + "t", 60), in_child=False)

    def strip(rows: list[list[str]]) -> list[list[str]]:  # the tags and Ids of each run
        out = [[c.replace(tag + "c", "").replace(tag + "t", "") for c in r] for r in rows]
        return [[re.sub(r"a00R\w{11}", "ID", c) for c in r] for r in out]

    assert strip(ok_child) == strip(ok_thread)
    assert strip(bad_child) == strip(bad_thread)
    nul_fails = not ctx.store.text_holds_nul
    assert len(ok_child) == 56 - nul_fails and len(bad_child) == 4 + nul_fails
    assert [r[0] for r in ok_child[:2]] == ["true", "true"]
    assert ok_child[0][1:] == ['w0\nline "two"', f"{tag}c-0", "0"]


def widget_spec(header: list[str], batch_size: int) -> Spec:
    prefixes = iter(range(100, 1000))
    schema = build_schema(load_file(SCHEMA), lambda name: f"a{next(prefixes)}")
    obj = schema.get("Widget__c")
    assert obj is not None
    plan = make_plan(schema, obj, Operation.INSERT, header, None)
    return Spec(schema, plan, ",", "\n", 0, True, "005000000000000AAA", batch_size)


def test_invalid_utf8_midway_is_raised_after_the_batches_before_it() -> None:
    # (Bulk 2.0 uploads are checked as they arrive; this is the reader's own guard.)
    good = b"".join(b"n%d\n" % i for i in range(30_000))
    body = b"Name\n" + good + b"bad \xff\n" + good
    owner = PrepareProcess()
    got = 0
    try:
        spec = widget_spec(["Name"], 1_000)
        with (
            owner.batches(spec, io.BytesIO(body)) as batches,
            pytest.raises(CsvFormatError, match="Invalid UTF-8"),
        ):
            for rows, prepared, _ in batches:
                assert prepared.n == len(rows) == 1_000
                got += 1
        assert 20 <= got < 30  # the reader decodes some way ahead of the rows it returns
        # the child went back to waiting: the next job uses the same process
        proc = owner._proc
        with owner.batches(widget_spec(["Name"], 7), io.BytesIO(b"Name\na\nb\n")) as batches:
            assert [list(rows) for rows, _, _ in batches] == [[["a"], ["b"]]]
        assert owner._proc is proc
    finally:
        owner.kill()


@pytest.mark.parametrize("commit_seconds", [0, 60])
def test_a_child_killed_midway_loses_and_repeats_nothing(
    ctx: Context, commit_seconds: float, caplog: pytest.LogCaptureFixture
) -> None:
    svc = IngestService(ctx)
    n = 300
    tag = f"{time.time_ns() % 10**9:09d}".encode()
    notes = b"x" * 20_000  # batches too large for the pipe to hold them all: the child is busy
    rows = b"".join(b"n%d,%s-%d,%s\n" % (i, tag, i, notes) for i in range(n))
    job_id = submit(svc, b"Name,Sku__c,Notes__c\n" + rows)
    # 0: every batch commits, some are done when the child dies; 60: none is, all roll back
    ctx.settings.commit_seconds = commit_seconds
    w = Worker(ctx)
    real_batch = Worker._batch
    written: list[int] = []

    def batch(self: Worker, *args: Any, **kwargs: Any) -> None:
        real_batch(self, *args, **kwargs)
        written.append(1)
        if len(written) == 3 and self.preparer._proc is not None:
            self.preparer._proc.kill()

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(worker_mod, "BATCH_SIZE", 10)
        mp.setattr(worker_mod, "PROCESS_MIN_ROWS", 0)
        mp.setattr(ctx.store, "prepare_in_child", True)
        mp.setattr(Worker, "_batch", batch)
        assert w.run_once()  # goes on on a thread: no wait for the lease to run out
    w.close()
    assert "the batch-preparing process died" in caplog.text
    job = svc.get(job_id, ADMIN)
    assert job.state is JobState.JOB_COMPLETE and job.records_processed == n
    ok = results(svc, job_id, "success")
    assert [r[2] for r in ok] == [f"n{i}" for i in range(n)]  # each row once, in order
    assert len({r[0] for r in ok}) == n


def test_closing_the_worker_stops_its_child(ctx: Context) -> None:
    w = Worker(ctx)
    proc = w.preparer._started()
    w.close()
    assert proc.poll() is not None and w.preparer._proc is None


def test_a_job_left_early_kills_the_child_and_the_next_job_starts_another(
    ctx: Context,
) -> None:
    svc = IngestService(ctx)
    first = submit(svc, b"Name\n" + b"".join(b"a%d\n" % i for i in range(50)))
    ctx.settings.commit_seconds = 0
    w = Worker(ctx)
    procs = []
    real_batch = Worker._batch

    aborter = threading.Thread(target=svc.abort, args=(first, ADMIN))

    def batch(self: Worker, *args: Any, **kwargs: Any) -> None:
        procs.append(self.preparer._proc)
        if len(procs) == 2 and aborter.ident is None:  # from another thread, as a client would
            aborter.start()
            time.sleep(0.2)
        real_batch(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(worker_mod, "BATCH_SIZE", 10)
        mp.setattr(worker_mod, "PROCESS_MIN_ROWS", 0)
        mp.setattr(ctx.store, "prepare_in_child", True)
        mp.setattr(Worker, "_batch", batch)
        w.run_once()
        aborter.join()
        assert svc.get(first, ADMIN).state is JobState.ABORTED
        assert procs[0] is not None and procs[0].poll() is not None  # killed, not left busy
        killed = procs[0]
        second = submit(svc, b"Name\n" + b"".join(b"b%d\n" % i for i in range(25)))
        procs.clear()
        w.run_once()
    w.close()
    assert procs and procs[0] is not None and procs[0] is not killed
    done = svc.get(second, ADMIN)
    assert done.state is JobState.JOB_COMPLETE and done.records_processed == 25


# ---- the pipe --------------------------------------------------------------------------------


def test_frames_arrive_whole_while_signals_interrupt_the_reads() -> None:
    r, w = os.pipe()
    payloads = [os.urandom(size) for size in (0, 1, 70_000, 1 << 20, 3_000_000)]
    ticks = []
    old = signal.signal(signal.SIGALRM, lambda *_: ticks.append(1))
    signal.setitimer(signal.ITIMER_REAL, 0.0005, 0.0005)

    def send() -> None:
        for i, p in enumerate(payloads):
            prepare_proc._write(w, b"B", p)
            time.sleep(0.01 * (i % 2))
        os.close(w)

    sender = threading.Thread(target=send)
    sender.start()
    try:
        got = [prepare_proc._read(r) for _ in payloads]
        with pytest.raises(EOFError):
            prepare_proc._read(r)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        sender.join()
        os.close(r)
    assert [(k, bytes(p)) for k, p in got] == [(b"B", p) for p in payloads]
    assert ticks  # the reads were interrupted, and retried


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(
        st.lists(st.text(alphabet='ab"é,\n\x00'), min_size=0, max_size=4), min_size=1, max_size=12
    ),
    width=st.integers(1, 3),
)
def test_rows_rebuilt_from_columns_are_the_rows_read(rows: list[list[str]], width: int) -> None:
    spec = widget_spec(["Name", "Notes__c", "Code__c"][:width], 10)
    schema, plan = spec.schema, spec.plan
    bad = {0: RecordError("X", "malformed")} if len(rows) > 1 else {}
    prepared = prepare(schema, plan, rows, bad, True, "005000000000000AAA")
    kept = {i: rows[i] for i, e in enumerate(prepared.errors) if e is not None}
    rebuilt = Rows(prepared.raw, prepared.n, kept)
    assert len(rebuilt) == len(rows)
    assert [list(r) for r in rebuilt] == rows
    assert [list(rebuilt[i]) for i in range(-len(rows), 0)] == rows


def test_only_sqlite_prepares_large_jobs_in_a_child(ctx: Context) -> None:
    svc = IngestService(ctx)
    submit(svc, b"Name\n" + b"".join(b"n%d\n" % i for i in range(40)))
    w = Worker(ctx)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(worker_mod, "BATCH_SIZE", 10)
        mp.setattr(worker_mod, "PROCESS_MIN_ROWS", 0)
        w.run_once()
    used_child = w.preparer._proc is not None
    w.close()
    # PostgreSQL formats COPY rows holding the GIL and needs the second core for its backend
    assert used_child == (ctx.store.dialect == "sqlite")
