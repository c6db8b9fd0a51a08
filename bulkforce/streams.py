"""Two write streams for a large PostgreSQL insert job (issue #14).

With one COPY at a time, one PostgreSQL backend does most of the work while the rest of the
machine waits: on a 1M-row insert the backend's COPY was busy ~87% of the job. Here the batches
of such a job alternate between two threads, each with its own connection and transaction, so
two COPYs run at once. Each batch is still one transaction with its results and progress, and
the batches commit in the file's order: batch k+1 records its progress only once batch k has
committed (`Turns`), as the job's counters require. A failed batch rolls back the one after it
too; both are redone when the job is taken up again, as after a crash.

That wait is one PostgreSQL cannot see: were batch k to wait inside the database for batch k+1
(a unique value both insert, the later batch first), neither could go on. So two batches are
written at once only when neither can wait for the other: both staged ahead (no look-ups, see
engine.stage) and no unique value of one among the other's, compared loosely (`loose`: a
superset of what the indexes compare equal). Any other batch is written alone, after the one
before it has committed.

Should `loose` still miss an equality (a locale's own lower-casing), a batch written beside
another waits for a lock at most `LOCK_WAIT_SECONDS`. Its lock wait then fails, the batches in
flight roll back, and they are written again one at a time, as a single stream would: the job
slows down once instead of hanging.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from bulkforce.engine.plan import Plan
from bulkforce.engine.schema import SObject
from bulkforce.engine.stage import StagedInsert
from bulkforce.engine.unique import loose
from bulkforce.model import Operation
from bulkforce.prefetch import Batches
from bulkforce.store.base import LockWaitTimeout, Store
from bulkforce.wire.csvio import CsvFormatError

T = TypeVar("T")

# The longest a batch written beside another waits for a lock before both are written again,
# one at a time. Far above any wait two independent transactions cause (a batch is written in
# well under a second); it only bounds a wait for each other that `loose` failed to foresee.
LOCK_WAIT_SECONDS = 5.0

# What a batch may meet in the other's unique indexes: per unique column, its values folded
# by `loose` (None: anything: it is written alone).
Keys = Mapping[str, frozenset[str]] | None


def two_streams(store: Store, plan: Plan) -> bool:
    """Whether a large job's batches are written two at a time: an insert, on a store whose
    writes may run side by side."""
    return store.write_streams > 1 and plan.operation is Operation.INSERT


class Abandoned(Exception):
    """An earlier batch failed: this one rolls back without recording its progress."""


class Turns:
    """The order in which batches record their progress and commit: the file's."""

    def __init__(self, first: int) -> None:
        self._cond = threading.Condition()
        self._next = first
        self._failed: int | None = None  # the first batch that failed

    def wait(self, seq: int) -> None:
        """Until every batch before `seq` has committed; Abandoned if one of them failed."""
        with self._cond:
            while self._next != seq and not self._lost(seq):
                self._cond.wait()
            if self._lost(seq):
                raise Abandoned()

    def _lost(self, seq: int) -> bool:
        return self._failed is not None and self._failed < seq

    def done(self, seq: int) -> None:
        with self._cond:
            self._next = seq + 1
            self._cond.notify_all()

    def fail(self, seq: int) -> None:
        """Batch `seq` failed: no batch after it may commit."""
        with self._cond:
            self._failed = seq if self._failed is None else min(self._failed, seq)
            self._cond.notify_all()


def unique_keys(obj: SObject, staged: StagedInsert | None) -> Keys:
    """The unique values a staged insert batch writes; None if it was not staged. Column by
    column (a row's tuple is never built), on the worker's own thread: it holds the GIL
    the prefetch thread needs, so it is kept cheap (ASCII values are only lower-cased)."""
    if staged is None:
        return None
    rows = staged.rows
    if rows is None:
        return {}  # no record passed the checks: nothing is written
    keys: dict[str, frozenset[str]] = {}
    for j, name in enumerate(rows.columns):
        field = obj.field(name)
        if name == "Id" or field is None or not field.unique:  # Ids: allocated, distinct
            continue
        # no two blanks are duplicates
        values = [str(v) for v in rows.rows.columns[j] if v is not None and v != ""]
        folded = map(str.lower, values) if "".join(values).isascii() else map(loose, values)
        keys[name.lower()] = frozenset(folded)
    return keys


def overlap(mine: Keys, theirs: Keys) -> bool:
    """Whether two batches may meet in a unique index (and must not be written at once)."""
    if mine is None or theirs is None:
        return True
    return any(not values.isdisjoint(theirs.get(name, ())) for name, values in mine.items())


# (item, its sequence number, the turns) -> None; raises what fails the batch. Turns None: the
# batch is written alone, every batch before it committed, and may wait for locks as long as
# a single stream would; else it waits for its turn to commit and limits its lock waits to
# LOCK_WAIT_SECONDS (Tx.limit_lock_waits).
WriteOne = Callable[[T, int, "Turns | None"], None]


def write_two_streams(
    batches: Batches[T], seq: int, write_one: WriteOne[T], keys: Callable[[T], Keys]
) -> tuple[str | None, int]:
    """Write `batches`, two at a time where they may be, numbered from `seq`. Returns a
    job-level error if the CSV breaks midway (the batches before it are committed) and the
    sequence number after the last batch written. The job is completed by the caller, in a
    transaction of its own: knowing which batch is the last would mean holding one more
    batch (~30 MB) while two are written."""
    turns = Turns(seq)
    pool = ThreadPoolExecutor(2, thread_name_prefix="bulkforce-write")
    # (future, item, its sequence number, its keys), oldest first; at most two
    inflight: deque[tuple[Future[None], T, int, Keys]] = deque()

    def run(item: T, n: int, turns: Turns) -> None:
        try:
            write_one(item, n, turns)
        except BaseException:
            turns.fail(n)
            raise
        turns.done(n)

    def oldest() -> None:
        future, item, _, _ = inflight[0]
        try:
            future.result()
        except (LockWaitTimeout, Abandoned):
            write_again_alone()
            return
        except BaseException:
            inflight.popleft()
            batches.discard(item)
            raise
        inflight.popleft()
        batches.discard(item)

    def write_again_alone() -> None:
        """A lock wait timed out. The batches in flight may have been waiting for each other:
        whichever did not commit is written again, in order, each alone."""
        nonlocal turns
        failures = [future.exception() for future, _, _, _ in inflight]
        for failure in failures:
            if failure is not None and not isinstance(failure, (LockWaitTimeout, Abandoned)):
                raise failure  # the cause, not the batch it made give up
        while inflight:
            future, item, n, _ = inflight[0]
            if future.exception() is not None:
                pool.submit(write_one, item, n, None).result()
            inflight.popleft()
            batches.discard(item)
            turns = Turns(n + 1)

    try:
        item = next(batches, None)
        while item is not None:
            mine = keys(item)
            if inflight and overlap(mine, inflight[-1][3]):
                oldest()  # written alone, after it
            inflight.append((pool.submit(run, item, seq, turns), item, seq, mine))
            seq += 1
            if len(inflight) == 2:
                oldest()
            del item  # the queue holds the next batch meanwhile, not this frame
            item = next(batches, None)
        while inflight:
            oldest()
    except CsvFormatError as e:
        while inflight:
            oldest()
        return str(e), seq
    finally:
        # A failure: the batch after it gives up at its turn; wait for it before going on.
        for future, _, _, _ in inflight:
            future.exception()
        pool.shutdown(wait=True)
    return None, seq
