"""Small jobs claimed together are written in one transaction (a "commit group").

A burst of small jobs (CI suites: many jobs of a few rows) goes through SQLite's one write
lock a job at a time. Per job, the lock's hand-off between the worker threads and the API's
writers, the commit and the pages it writes into the WAL cost about as much as the rows
themselves. So the jobs of one claim (store.claim_jobs: up to worker.CLAIM_SMALL_JOBS of one
batch each) are read and prepared first, outside the lock, then written and completed in one
transaction, each in a savepoint of its own:

* a job aborted or deleted meanwhile (Stop), or one whose write raises, rolls back alone; the
  one that raised is failed after the commit, as a lone job would be;
* each job's records, result files, counters and JobComplete still commit together, and a
  crash before the commit leaves every job of the group to be claimed again, none half done;
* anything out of the ordinary (a resumed or retried job, a header or CSV problem, rows too
  wide for one batch, a query job) takes the usual path, one job at a time, which reports it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from bulkforce.chunk import prepare_chunk
from bulkforce.engine.plan import HeaderError, Plan, make_plan
from bulkforce.errors import Stop
from bulkforce.jobs.query import JOB_TYPE as QUERY_JOB
from bulkforce.jobs.service import Context
from bulkforce.model import Job
from bulkforce.prepare_proc import Chunk
from bulkforce.store.base import StoreError, Tx
from bulkforce.wire.csvio import CsvFormatError, RowReader

log = logging.getLogger("bulkforce.worker")


@dataclass
class Ready:
    """A small job read and prepared: its one batch waits only for the write lock."""

    job: Job
    plan: Plan
    header: list[str]
    item: Chunk


def read_small(ctx: Context, job: Job, size: int, cells: int) -> Ready | None:
    """The job's one batch prepared, or None when the job must take the usual path."""
    if job.upload_rows is None or job.upload_rows > size:
        return None  # not a small job (claim_jobs claims those alone)
    if job.records_processed or job.retries > ctx.settings.max_retries or job.upload_problem:
        return None
    obj = ctx.schema.get(job.object)
    if obj is None or job.job_type == QUERY_JOB:  # as Worker.process tells them apart
        return None
    f = ctx.blobs.open(job.id)
    if f is None:
        return None
    with f:
        rows = RowReader(f, job.delimiter)
        try:
            header = rows.header()
            if header is None:
                return None
            plan = make_plan(ctx.schema, obj, job.operation, header, job.external_id_field)
            item = prepare_chunk(ctx, job, plan, rows, size, cells)
            if item is None or prepare_chunk(ctx, job, plan, rows, size, cells) is not None:
                return None  # no rows, or more than one batch of them
        except (HeaderError, CsvFormatError):
            return None
    return Ready(job, plan, header, item)


@contextmanager
def contained(job: Job, failures: list[tuple[Job, str]]) -> Iterator[None]:
    """What a job's run raises costs that job only. Stop (it was aborted, deleted or taken
    over) ends it quietly; a bug is logged and the job added to `failures`, to be failed once
    no transaction of the worker's is open; a StoreError (the database is unwell) goes up,
    and the lease that then expires has the job retried."""
    try:
        yield
    except Stop:
        log.info("job %s stopped by another actor (aborted, deleted or taken over)", job.id)
    except StoreError:
        raise
    except Exception as e:
        log.exception("job %s failed with an internal error", job.id)
        failures.append((job, f"InternalError : {type(e).__name__}: {e}"))


def write_group(
    ctx: Context, owner: str, group: Sequence[Ready], write: Callable[[Tx, Ready], None]
) -> list[tuple[Job, str]]:
    """Write and complete every job of `group` in one transaction (`write`: the batch's
    records, results and progress). Returns the jobs whose write raised, with the message
    to fail them with once this transaction has committed."""
    failures: list[tuple[Job, str]] = []
    started = time.perf_counter()
    with ctx.store.transaction() as tx:
        for ready in group:
            # a StoreError leaves the whole group to be claimed again
            with contained(ready.job, failures), tx.savepoint():
                write(tx, ready)
                if not tx.complete_job(ready.job.id, owner, ready.header):
                    raise Stop()
    log.info(
        "%d small jobs in one transaction in %.3f s: %s",
        len(group), time.perf_counter() - started, " ".join(r.job.id for r in group),
    )  # fmt: skip
    return failures
