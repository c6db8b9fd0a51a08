"""The accounting invariant of Bulk 2.0 ingest (issue #9, item 3), as a property.

Whatever an upload holds and however its job ends (JobComplete, Aborted at any point, the
worker killed mid-batch and another taking over), every uploaded row is in exactly one of
successfulResults, failedResults and unprocessedrecords, and the object's table holds exactly
the successful ones. Uploads are generated with bad rows (malformed CSV, a space next to a
quote, missing required values, wrong column counts, out-of-range datetimes, NUL, blank lines)
at random positions, clustered around the internal-batch and read-chunk boundaries.

The worker runs in-process, with the internal batch size made small so that a few dozen rows
cross many boundaries, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import inprocess_context
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from bulkforce import worker as worker_mod
from bulkforce.jobs.access import Caller
from bulkforce.jobs.service import Context, IngestService
from bulkforce.model import JobState
from bulkforce.store.base import Tx
from bulkforce.worker import Worker

ADMIN = Caller("005000000000000AAA", is_admin=True)
SCHEMA = Path(__file__).parent / "data" / "test_schema.json"
HEADER = "Name,Notes__c,Seen_At__c"
MARK = re.compile(r"k\d+r\d+")
_examples = itertools.count()

# How a row is written; {n} is the row's Name, {m} its marker (in Notes__c).
KINDS = {
    "good": "{n},{m},",
    "good-quoted": '"{n}","{m} says ""hi""",2024-05-06T07:08:09Z',
    "space-before-quote": '{n}, "{m}",',
    "text-after-quote": '"{n}" ,{m},',
    "quote-in-value": '{n},{m} "x",',
    "no-name": ",{m},",
    "too-many-values": "{n},{m},,extra",
    "datetime-overflow": "{n},{m},0001-01-01T00:00:00+10:00",
    "nul": '{n},"{m}\x00",',
    "multi-line": '{n},"{m}\nsecond line",',
    "blank-line": "",
}
BAD = [k for k in KINDS if k not in ("good", "good-quoted")]


class Killed(BaseException):
    """The worker process dies here (not an Exception: nothing in the worker catches it)."""


@pytest.fixture(params=["sqlite", "postgresql"])
def ctx(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Context]:
    with inprocess_context(request.param, tmp_path / "data", [SCHEMA]) as context:
        yield context


@st.composite
def uploads(draw: st.DrawFn) -> dict[str, Any]:
    batch = draw(st.sampled_from([2, 3, 5, 8]))
    n = draw(st.integers(0, 6 * batch + 2))
    kinds = ["good"] * n
    if n:
        # bad rows just before, at and after batch boundaries, and anywhere
        near = [
            i for k in range(0, n // batch + 1) for i in (k * batch - 1, k * batch) if 0 <= i < n
        ]
        spots = draw(st.lists(st.sampled_from(near + list(range(n))), max_size=n))
        for i in spots:
            kinds[i] = draw(st.sampled_from([*BAD, "good-quoted"]))
    return {
        "batch": batch,
        # a cell budget: 1M never cuts these rows; the others end batches rows early
        "cells": draw(st.sampled_from([1_000_000, 1, 5, 9])),
        "kinds": kinds,
        "trailing_blanks": draw(st.integers(0, 2)),
        "crlf": draw(st.booleans()),
        # None: no abort; -1: before the job is closed; k: before the worker's k-th read
        "abort_at": draw(st.none() | st.integers(-1, n // batch + 2)),
        "kill_at": draw(st.none() | st.integers(0, n // batch + 1)),  # in the k-th batch
        "commit_each_batch": draw(st.booleans()),
    }


def build(kinds: list[str], tag: str, trailing: int, eol: str) -> tuple[str, dict[str, str]]:
    """The upload and every marker it carries → the kind of its row."""
    lines = [HEADER]
    markers: dict[str, str] = {}
    for i, kind in enumerate(kinds):
        mark = f"{tag}r{i}"
        lines.append(KINDS[kind].format(n=f"{tag}-n{i}", m=mark))
        if kind != "blank-line":
            markers[mark] = kind
    # a blank line last would be a trailing blank line, which is no record: end on a row
    while kinds and kinds[-1] == "blank-line":
        kinds.pop()
        lines.pop()
    return eol.join(lines) + eol + eol * trailing, markers


def rows_of(chunks: Iterator[bytes]) -> list[list[str]]:
    text = b"".join(chunks).decode()
    return list(csv.reader(io.StringIO(text, newline="")))[1:]


def marker(row: list[str]) -> str | None:
    found = MARK.findall("\x01".join(row))
    assert len(found) <= 1, row
    return found[0] if found else None


def run(
    ctx: Context, spec: dict[str, Any], tag: str, eol: str
) -> tuple[str, str, dict[str, str], int]:
    svc = IngestService(ctx)
    kinds = list(spec["kinds"])
    body, markers = build(kinds, tag, spec["trailing_blanks"], eol)
    blanks = kinds.count("blank-line")
    job = svc.insert(
        svc.create(
            "59.0",
            {
                "object": "Widget__c",
                "operation": "insert",
                "lineEnding": "CRLF" if eol == "\r\n" else "LF",
            },
        )
    )
    sink = svc.open_upload(job.id, ADMIN)
    data = body.encode()
    for part in (data[: len(data) // 2], data[len(data) // 2 :]):
        sink.write(part)
    sink.finish()
    if spec["abort_at"] == -1:
        svc.abort(job.id, ADMIN)
        return job.id, body, markers, blanks
    svc.close(job.id, ADMIN)
    ctx.settings.commit_seconds = (
        0 if spec["commit_each_batch"] or spec["abort_at"] is not None else 60
    )
    groups = itertools.count()
    batches = itertools.count()
    real_let_writers_in = Worker._let_writers_in
    real_batch = Worker._batch

    def let_writers_in(self: Worker, limit: float = 1.0) -> None:
        # with no transaction open, before batch N's (one batch per transaction here)
        if next(groups) == spec["abort_at"]:
            svc.abort(job.id, ADMIN)
        real_let_writers_in(self, limit)

    def batch(self: Worker, tx: Tx, *args: Any, **kwargs: Any) -> None:
        real_batch(self, tx, *args, **kwargs)
        if next(batches) == spec["kill_at"]:
            raise Killed  # after the batch's writes, before its commit

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Worker, "_let_writers_in", let_writers_in)
        mp.setattr(Worker, "_batch", batch)
        with contextlib.suppress(Killed):
            Worker(ctx).run_once()
    if ctx.store.get_job(job.id).state is JobState.IN_PROGRESS:  # killed: a new worker resumes
        ctx.store.clear_leases()
        assert Worker(ctx).run_once()
    return job.id, body, markers, blanks


@settings(
    max_examples=40,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target],
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spec=uploads())
def test_every_row_is_in_exactly_one_result_file(ctx: Context, spec: dict[str, Any]) -> None:
    tag = f"k{next(_examples)}"
    eol = "\r\n" if spec["crlf"] else "\n"
    with pytest.MonkeyPatch.context() as mp:
        # small internal batches: the same code paths, many more boundaries per row
        mp.setattr(worker_mod, "BATCH_SIZE", spec["batch"])
        mp.setattr(worker_mod, "BATCH_CELLS", spec["cells"])
        job_id, body, markers, blanks = run(ctx, spec, tag, eol)
        svc = IngestService(ctx)
        job = svc.get(job_id, ADMIN)
        assert job.state in (JobState.JOB_COMPLETE, JobState.ABORTED), job
        ok = rows_of(svc.results(job_id, "success", ADMIN)[1])
        bad = rows_of(svc.results(job_id, "failed", ADMIN)[1])
        rest = rows_of(svc.results(job_id, "unprocessed", ADMIN)[1])

    seen = Counter(marker(r) for r in ok + bad + rest)
    unmarked = seen.pop(None, 0)
    assert seen == Counter(markers.keys()), (body, seen)  # every row once, none twice, none lost
    assert unmarked == blanks, body  # blank lines are records too, in one file each
    assert job.records_processed == len(ok) + len(bad)
    assert job.records_failed == len(bad)
    if job.state is JobState.JOB_COMPLETE:
        assert rest == []
    for row in ok:
        assert markers[marker(row) or ""] in ("good", "good-quoted", "nul", "multi-line"), (
            row,
            body,
        )
    for row in bad:
        kind = markers.get(marker(row) or "", "blank-line")
        assert kind not in ("good", "good-quoted", "multi-line"), (row, body)

    with ctx.store.transaction() as tx:
        stored = tx.records(ctx.schema.get("Widget__c")).lookup(  # type: ignore[arg-type]
            "Name", [f"{tag}-n{i}" for i in range(len(spec["kinds"]))]
        )
    assert sorted(name for name, _, _ in stored) == sorted(r[2].strip() for r in ok)
