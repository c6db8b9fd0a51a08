"""The worker: claims ingest jobs from the store and runs them in internal batches.

Each batch's record writes and its result rows commit in one transaction together with the
job's progress counter, so a crash at any point resumes at the first uncommitted batch and no
record is applied twice.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, ExitStack

from bulkforce import streams
from bulkforce.chunk import prepare_chunk
from bulkforce.classic_batches import ClassicBatches
from bulkforce.engine.dml import apply_prepared
from bulkforce.engine.plan import HeaderError, Plan, make_plan
from bulkforce.engine.prepare import Prepared
from bulkforce.errors import Stop
from bulkforce.heap import trim_heap
from bulkforce.jobs.query import JOB_TYPE as QUERY_JOB
from bulkforce.jobs.query import run_query_job
from bulkforce.jobs.service import Context
from bulkforce.model import BATCH_CELLS, BATCH_SIZE, BatchState, Job, JobState, iso, utcnow
from bulkforce.prefetch import Batches, Prefetch
from bulkforce.prepare_proc import (
    Chunk,
    PrepareProcess,
    PrepareProcessDied,
    Spec,
)
from bulkforce.smalljobs import Ready, contained, read_small, write_group
from bulkforce.store.base import StoreError, Tx
from bulkforce.streams import Turns, two_streams, unique_keys, write_two_streams
from bulkforce.wire.csvio import (
    FAILED_IDS_SINCE,
    CsvFormatError,
    RowReader,
    render_outcome,
)  # fmt: skip

log = logging.getLogger("bulkforce.worker")

# A job with more rows than this prepares its batches in a child process (prepare_proc);
# smaller ones on a thread (the child's start-up and pickling would cost them more than the
# overlap saves).
PROCESS_MIN_ROWS = 3 * BATCH_SIZE

# Small jobs (one batch) claimed in one write, at most: a burst of small jobs hands the write
# lock over once per this many jobs to claim them. Each still runs in its own transaction.
CLAIM_SMALL_JOBS = 8

# What a crash leaves (store/blobs.py: sweep_orphans) is looked for hourly; anything younger
# than an hour may belong to an upload still running (stalled ones are cut off far sooner).
ORPHAN_SWEEP_SECONDS = 3600.0
ORPHAN_MIN_AGE = 3600.0


def sweep_orphans(ctx: Context, min_age: float) -> int:
    """Unfinished uploads and never-recorded Bulk 1.0 payloads older than `min_age` seconds
    (0 at the start of a server that owns its data dir: nothing else can be writing)."""
    return ctx.blobs.sweep_orphans(lambda key: ctx.store.get_batch(key) is not None, min_age)


def one_batch(job: Job) -> bool:
    """Whether the job's upload holds at most one batch's rows (every small job)."""
    return job.upload_rows is not None and job.upload_rows <= BATCH_SIZE


class Worker:
    def __init__(self, ctx: Context, name: str | None = None) -> None:
        self.ctx = ctx
        self.owner = name or f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.stopping = threading.Event()
        self.classic = ClassicBatches(ctx, self.owner)
        self._next_sweep = 0.0
        self._next_orphan_sweep = 0.0
        self.preparer = PrepareProcess()

    def run_forever(self, idle_wait: float = 0.5) -> None:
        self.ctx.store.tune_for_bulk()
        while not self.stopping.is_set():
            try:
                self.sweep()
                worked = self.run_once()
            except StoreError:
                log.exception("store error in worker; retrying")
                worked = False
                time.sleep(0.5)
            if not worked:
                self.ctx.wake.wait(idle_wait)
        self.close()

    def close(self) -> None:
        """Stop the batch-preparing child, if one was started."""
        self.preparer.kill()

    def sweep(self) -> None:
        """Retention like Salesforce's: ended jobs and their data go after `retention`, jobs
        left Open too long are aborted. Cheap enough to run every minute from any worker."""
        settings = self.ctx.settings
        if time.monotonic() < self._next_sweep:
            return
        self._next_sweep = time.monotonic() + settings.sweep_seconds
        now = utcnow()
        gone, aborted = self.ctx.store.delete_expired(
            iso(now - dt.timedelta(hours=settings.retention_hours)),
            iso(now - dt.timedelta(hours=settings.open_job_hours)),
        )
        for key in gone:
            self.ctx.blobs.delete(key)
        if time.monotonic() >= self._next_orphan_sweep:
            self._next_orphan_sweep = time.monotonic() + ORPHAN_SWEEP_SECONDS
            swept = sweep_orphans(self.ctx, ORPHAN_MIN_AGE)
            if swept:
                log.warning("retention: deleted %d uploads or payloads a crash left", swept)
        if gone or aborted:
            log.info(
                "retention: deleted %d jobs/batches' data, aborted %d stale Open jobs",
                len(gone),
                aborted,
            )

    def run_once(self) -> bool:
        jobs = self.ctx.store.claim_jobs(
            self.owner, self.ctx.settings.lease_seconds, BATCH_SIZE, CLAIM_SMALL_JOBS
        )
        if not jobs:
            batch = self.ctx.store.claim_batch(self.owner, self.ctx.settings.lease_seconds)
            if batch is None:
                return False
            try:
                self.classic.process(batch)
            except Stop:
                log.info("batch %s stopped: its lease was taken over", batch.id)
            except StoreError:
                raise
            except Exception as e:
                log.exception("batch %s failed with an internal error", batch.id)
                self.classic.finish(
                    batch, BatchState.FAILED, f"InternalError : {type(e).__name__}: {e}"
                )
            return True
        if len(jobs) > 1:
            jobs = self._run_group(jobs)
        for job in jobs:
            # A StoreError here leaves the rest claimed: they are taken again when their
            # leases run out, as after a crash.
            self._run_job(job)
        return True

    def _run_group(self, jobs: list[Job]) -> list[Job]:
        """Small jobs claimed together: those ready to write are written and completed in one
        transaction (bulkforce.smalljobs). Returns the others, to run one by one."""
        group: list[Ready] = []
        rest: list[Job] = []
        for job in jobs:
            try:
                ready = read_small(self.ctx, job, BATCH_SIZE, BATCH_CELLS)
            except StoreError:
                raise
            except Exception:  # the usual path meets it again and reports it
                log.debug("job %s: reading it for a group failed", job.id, exc_info=True)
                ready = None
            if ready is None:
                rest.append(job)
            else:
                group.append(ready)
        if not group:
            return rest

        def write(tx: Tx, r: Ready) -> None:
            self._batch(tx, r.job, r.plan, r.job.batches_done, False, *r.item)

        self._let_writers_in()
        for job, message in write_group(self.ctx, self.owner, group, write):
            self._fail(job, message)
        return rest

    def _run_job(self, job: Job) -> None:
        # A bug must cost one job, not the worker: fail it visibly and carry on. The failing
        # batch rolled back, so its rows show up as unprocessed.
        failures: list[tuple[Job, str]] = []
        with contained(job, failures):
            self.process(job)
        for failed, message in failures:
            self._fail(failed, message)

    # ---- Bulk 2.0 jobs -----------------------------------------------------------------------

    def _fail(self, job: Job, message: str, header: list[str] | None = None) -> None:
        changes = {"header": header} if header is not None and job.header is None else {}
        self.ctx.store.transition(
            job.id, [JobState.IN_PROGRESS], JobState.FAILED, error_message=message, **changes
        )

    def process(self, job: Job) -> None:
        ctx = self.ctx
        if job.retries > ctx.settings.max_retries:  # each retry is a worker that died on it
            self._fail(
                job, f"InternalServerError : retried {job.retries - 1} times without finishing"
            )
            return
        if job.job_type == QUERY_JOB:
            run_query_job(ctx, job, self.owner)
            return
        if job.upload_problem:
            self._fail(job, job.upload_problem)
            return
        obj = ctx.schema.get(job.object)
        if obj is None:
            self._fail(job, f"InvalidBatch : Entity '{job.object}' is no longer defined")
            return
        f = ctx.blobs.open(job.id)
        if f is None:  # closed without an upload: nothing to do (spec §3.10 [REC])
            ctx.store.transition(job.id, [JobState.IN_PROGRESS], JobState.JOB_COMPLETE)
            return
        header: list[str] | None = None
        with f:
            rows = RowReader(f, job.delimiter)
            try:
                header = rows.header()
                if header is None:
                    ctx.store.transition(job.id, [JobState.IN_PROGRESS], JobState.JOB_COMPLETE)
                    return
                # The header is stored with the job's end, not in a write of its own (one
                # transaction less per job); results read before then peek at the upload.
                plan = make_plan(ctx.schema, obj, job.operation, header, job.external_id_field)
                in_child = (
                    ctx.store.prepare_in_child
                    and job.upload_rows is not None
                    and job.upload_rows > PROCESS_MIN_ROWS
                )
                if not in_child:
                    rows.skip(job.records_processed)  # the rows of the batches committed
            except (HeaderError, CsvFormatError) as e:
                self._fail(job, str(e), header)
                return
            gc.disable()  # millions of short-lived small objects; collections only cost time
            try:
                try:
                    problem, completed = self._run_batches(
                        job, plan, None if in_child else rows, header
                    )
                except PrepareProcessDied:
                    # What it had not delivered rolled back: go on from the batches
                    # committed, on a thread, rather than leave the job until its lease ends.
                    log.warning("job %s: the batch-preparing process died; going on", job.id)
                    now = ctx.store.get_job(job.id)
                    if now is None:
                        raise Stop() from None
                    rows.skip(now.records_processed)
                    problem, completed = self._run_batches(now, plan, rows, header)
            finally:
                gc.enable()
                if not one_batch(job):
                    ctx.store.release_memory()
                    trim_heap()
        if problem:
            self._fail(job, problem, header)
        elif not completed:
            changes = {"header": header} if job.header is None else {}
            ctx.store.transition(job.id, [JobState.IN_PROGRESS], JobState.JOB_COMPLETE, **changes)

    def _run_batches(
        self, job: Job, plan: Plan, rows: RowReader | None, header: list[str]
    ) -> tuple[str | None, bool]:
        """Apply every remaining batch. Returns a job-level error if the CSV breaks midway,
        and whether the job was completed in the transaction of its last batches (one write
        transaction less per job: what a burst of small jobs waits on).

        Consecutive batches share one write transaction for `commit_seconds`: with a
        randomly ordered unique index, each commit rewrites most index pages into the WAL,
        so committing per 10,000 records would double the cost of a large job. Every batch
        is still all-or-nothing with its results and counters.

        The next batch is read, parsed and coerced ahead while this thread writes the
        current one: by a child process reading the upload afresh (`rows` None; see
        bulkforce.prepare_proc), else on a thread from `rows` (bulkforce.prefetch). Only the
        writes, their results and the commits happen here, in the order of the file.
        """
        seq = job.batches_done
        store, schema = self.ctx.store, self.ctx.schema

        def produce() -> Chunk | None:
            assert rows is not None
            return prepare_chunk(self.ctx, job, plan, rows, BATCH_SIZE, BATCH_CELLS)

        batches: Batches[Chunk]
        with ExitStack() as stack:
            if rows is None:
                source = self.ctx.blobs.open(job.id)
                if source is None:
                    raise Stop()  # the job was deleted under us
                stack.enter_context(source)
                spec = Spec(
                    schema, plan, job.delimiter, job.newline, job.records_processed,
                    store.text_holds_nul,
                    job.created_by, BATCH_SIZE, BATCH_CELLS,
                )  # fmt: skip
                batches = self.preparer.batches(spec, source)
            elif one_batch(job):
                # a few batches at most (wide rows): a thread could only find the end sooner
                batches = Prefetch(produce, inline=sys.maxsize)
            else:
                batches = Prefetch(produce)
            stack.enter_context(batches)
            return self._write_batches(job, plan, batches, seq, header)

    def _write_batches(
        self, job: Job, plan: Plan, batches: Batches[Chunk], seq: int,
        header: list[str],
    ) -> tuple[str | None, bool]:  # fmt: skip
        group: AbstractContextManager[Tx] | None = None
        tx: Tx | None = None
        opened = 0.0
        held = False
        started, cpu = time.perf_counter(), time.thread_time()
        try:
            # A job of one batch (every small job) looks for the end before it may commit:
            # it then ends in this transaction, not in one of its own that would queue again
            # for the write lock behind a burst's API writers. A larger job commits first when
            # it is due or someone waits: it must not hold the lock while its next batch is
            # being prepared.
            small = one_batch(job)
            if not small and two_streams(self.ctx.store, plan):
                problem, seq = write_two_streams(
                    batches, seq, lambda it, n, turns: self._write_alone(job, plan, it, n, turns),
                    lambda it: unique_keys(plan.obj, it[1].staged),
                )  # fmt: skip
                return problem, False  # the caller completes the job
            try:
                item = next(batches, None)
            except CsvFormatError as e:
                return str(e), False  # the rest: unprocessed
            while item is not None:
                if group is None or tx is None:
                    self._let_writers_in()
                    group = self.ctx.store.transaction()
                    tx = group.__enter__()
                    opened = time.perf_counter()
                    held = False
                self._batch(tx, job, plan, seq, held, *item)
                held = True  # commit_batch updated the job's row: it is ours until the commit
                batches.discard(item)
                del item
                seq += 1
                if not small and self._commit_due(opened):
                    group.__exit__(None, None, None)
                    group = tx = None
                try:
                    item = next(batches, None)
                except CsvFormatError as e:
                    # the batches before it commit below; the rest: unprocessed
                    return str(e), False
                if item is None:  # the end: with the last batches if they are not committed
                    return None, tx is not None and tx.complete_job(job.id, self.owner, header)
                if group is not None and self._commit_due(opened):
                    group.__exit__(None, None, None)
                    group = tx = None
            return None, False  # no batch at all
        except BaseException as e:
            if group is not None:
                group.__exit__(type(e), e, e.__traceback__)
                group = None
            raise
        finally:
            if group is not None:
                group.__exit__(None, None, None)
            log.info(
                "job %s: %d batches in %.2f s; CPU s: writer %.2f, prefetch %.2f",
                job.id, seq - job.batches_done, time.perf_counter() - started,
                time.thread_time() - cpu, batches.thread_seconds,
            )  # fmt: skip

    def _write_alone(
        self, job: Job, plan: Plan, item: Chunk, seq: int, turns: Turns | None
    ) -> None:
        """One batch in a transaction of its own, its progress recorded in its turn (None: the
        batches before it have committed). No lease check before it: commit_batch checks
        owner, state and progress."""
        self._let_writers_in()
        with self.ctx.store.transaction() as tx:
            if turns is None:
                self._batch(tx, job, plan, seq, True, *item)
            else:
                tx.limit_lock_waits(streams.LOCK_WAIT_SECONDS)  # see bulkforce.streams
                self._batch(tx, job, plan, seq, True, *item, turn=lambda: turns.wait(seq))

    def _commit_due(self, opened: float) -> bool:
        """Whether the open group of batches commits now: it has been open for
        `commit_seconds`, or another writer is waiting for the lock."""
        due = time.perf_counter() - opened >= self.ctx.settings.commit_seconds
        return due or bool(self.ctx.store.writers_waiting())

    def _let_writers_in(self, limit: float = 1.0) -> None:
        """Before re-taking the write lock, wait (briefly) for API writers queued on it."""
        self.ctx.store.let_writers_in(limit)

    def _batch(
        self, tx: Tx, job: Job, plan: Plan, seq: int, held: bool,
        chunk: Sequence[Sequence[str]], prepared: Prepared, bodies: list[bytes] | None,
        turn: Callable[[], None] | None = None,
    ) -> None:  # fmt: skip
        """`held`: an earlier batch of this transaction has updated the job's row, so no one
        else can have changed its state since (they wait for the row lock, or SQLite's).
        `turn`: returns when this batch may record its progress (bulkforce.streams)."""
        ctx = self.ctx
        started = time.perf_counter()
        # Not for the first batch after the claim (a round trip less per small job): the
        # claim was a moment ago, and commit_batch below checks owner, state and progress.
        # Nor after a batch of the same transaction (`held`).
        if seq != job.batches_done and not held:
            state = tx.job_state(job.id)
            if state is None or state != (JobState.IN_PROGRESS, self.owner):
                raise Stop()
        # An exception here rolls back the whole uncommitted group; its batches were never
        # counted, so they show as unprocessed and a retry redoes them.
        outcome = apply_prepared(ctx.schema, plan, tx, prepared, job.created_by, iso(utcnow()))
        staged = prepared.staged
        if staged is not None and staged.results is not None and not any(outcome.errors):
            ok_csv, bad_csv = staged.results, b""  # rendered ahead, and still true
        else:
            failed_ids = float(job.api_version) >= FAILED_IDS_SINCE
            ok_csv, bad_csv = render_outcome(
                chunk, outcome, job.delimiter, job.newline, failed_ids, bodies
            )
        ctx.blobs.write_results(job.id, seq, ok_csv, bad_csv)
        failed = sum(e is not None for e in outcome.errors)
        ms = int((time.perf_counter() - started) * 1000)
        if turn is not None:
            turn()
        if not tx.commit_batch(
            job.id, self.owner, seq, len(chunk), failed, ms, self.ctx.settings.lease_seconds
        ):
            raise Stop()
