"""`bulkforce jobs` and `bulkforce job ID`: the jobs of a data dir (or database) in the
terminal, read through the same services as the APIs and the console."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.live import Live
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from bulkforce.boot import build_context
from bulkforce.cli_options import exit_on_error, store_options
from bulkforce.errors import ServiceError
from bulkforce.jobs.access import Caller
from bulkforce.jobs.classic import ClassicService
from bulkforce.jobs.service import Context, IngestService
from bulkforce.model import Job, JobFilter, JobState
from bulkforce.wire import bulk1, bulk2

APIS = {"V2Ingest": "2.0 ingest", "V2Query": "2.0 query", "Classic": "1.0"}
API_CHOICES = {"2.0": "V2Ingest", "query": "V2Query", "1.0": "Classic"}


def operator(ctx: Context) -> Caller:
    """Whoever can read the data dir or database is its operator: every job is theirs."""
    return Caller(ctx.settings.user_id, is_admin=True, manage_data_integrations=True)


def console() -> Console:
    out = Console()
    # a pipe or a file gets whole lines, not an 80-column guess
    return out if out.is_terminal else Console(width=200)


def _open(data_dir: Path, database: str | None, schemas: tuple[Path, ...]) -> Context:
    with exit_on_error():
        return build_context(data_dir, database, list(schemas), 0)


def jobs_table(service: IngestService, flt: JobFilter, limit: int) -> Table:
    table = Table(title="Bulk data load jobs, newest first", title_justify="left")
    for name, justify in (("Job", "left"), ("API", "left"), ("Object", "left"),
                          ("Operation", "left"), ("State", "left"), ("Processed", "right"),
                          ("Failed", "right"), ("Created (UTC)", "left")):  # fmt: skip
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for job in service.recent(flt, operator(service.ctx), limit):
        table.add_row(
            job.id, APIS.get(job.job_type, job.job_type), job.object, job.operation.value,
            job.state.value, str(job.records_processed), str(job.records_failed),
            job.created_date.strftime("%Y-%m-%d %H:%M:%S"),
        )  # fmt: skip
    if not table.rows:
        table.caption = "no jobs"
    return table


@click.command("jobs")
@click.option("--watch", is_flag=True, help="Keep the table on screen, refreshed (Ctrl-C ends).")
@click.option("--interval", default=2.0, show_default=True, type=click.FloatRange(0.2),
              help="Seconds between refreshes with --watch.")  # fmt: skip
@click.option("--limit", default=30, show_default=True, type=click.IntRange(1, 1000))
@click.option("--api", type=click.Choice(list(API_CHOICES)), help="Only this API's jobs.")
@click.option("--state", type=click.Choice([s.value for s in JobState]), help="Only this state.")
@click.option("--object", "object_name", help="Only jobs on this object.")
@store_options
def jobs(
    watch: bool, interval: float, limit: int, api: str | None, state: str | None,
    object_name: str | None, data_dir: Path, database: str | None, schemas: tuple[Path, ...],
) -> None:  # fmt: skip
    """List the newest jobs of every API (Bulk 2.0 ingest and query, Bulk 1.0)."""
    service = IngestService(_open(data_dir, database, schemas))
    flt = JobFilter(job_type=API_CHOICES.get(api or ""), state=state, object=object_name)
    out = console()
    if not watch:
        out.print(jobs_table(service, flt, limit))
        return
    try:
        with Live(jobs_table(service, flt, limit), console=out, auto_refresh=False) as live:
            while True:
                time.sleep(interval)
                live.update(jobs_table(service, flt, limit), refresh=True)
    except KeyboardInterrupt:
        pass


# files smaller than this load too fast for a progress bar to help
PROGRESS_MIN_BYTES = 1 << 20


@contextlib.contextmanager
def load_progress(path: Path) -> Iterator[Callable[[int], None] | None]:
    """A progress bar (on stderr) for `load-records` on a large file: bytes read of the size."""
    try:
        size = path.stat().st_size
    except OSError:
        size = 0
    if size < PROGRESS_MIN_BYTES:
        yield None
        return
    err = Console(stderr=True)
    columns = (TextColumn(f"loading {path.name}"), BarColumn(), DownloadColumn(),
               TimeRemainingColumn())  # fmt: skip
    with Progress(
        *columns, console=err if err.is_terminal else Console(stderr=True, width=120)
    ) as bar:
        task = bar.add_task("load", total=size)
        yield lambda done: bar.update(task, completed=min(done, size))
        bar.update(task, completed=size)


def _progress(ctx: Context, job: Job) -> tuple[int, int | None, bool]:
    """(records processed, total if known, still running) of a job."""
    if job.job_type == "Classic":
        classic = ClassicService(ctx)
        _, stats = classic.view(job)
        total = sum(b.record_count for b in classic.list_batches(job))
        busy = job.state is JobState.OPEN or stats.queued + stats.in_progress > 0
        return stats.records_processed, total, busy and not job.state.terminal
    return job.records_processed, job.upload_rows, not job.state.terminal


def _fields(ctx: Context, job: Job) -> dict[str, Any]:
    if job.job_type == "Classic":
        return bulk1.job_fields(ClassicService(ctx).view(job))
    return bulk2.job_info(job)


@click.command("job")
@click.argument("job_id", metavar="JOB_ID")
@click.option("--wait", is_flag=True,
              help="Follow the job with a progress bar until it ends; exit 1 unless JobComplete.")  # fmt: skip
@click.option("--interval", default=0.5, show_default=True, type=click.FloatRange(0.05))
@store_options
def job(
    job_id: str, wait: bool, interval: float, data_dir: Path, database: str | None,
    schemas: tuple[Path, ...],
) -> None:  # fmt: skip
    """Show a job's fields and state changes (any API)."""
    ctx = _open(data_dir, database, schemas)
    service = IngestService(ctx)
    out = console()
    try:
        current = service.find(job_id, operator(ctx))
    except ServiceError:
        click.echo(f"bulkforce: no job {job_id}", err=True)
        sys.exit(2)
    if wait:
        current = _follow(ctx, service, current, interval, out)
    info = Table(show_header=False, title=f"Job {current.id}", title_justify="left")
    info.add_column(style="bold")
    info.add_column()
    for name, value in _fields(ctx, current).items():
        info.add_row(name, str(value))
    out.print(info)
    history = Table("State", "Since (UTC)", title="State changes", title_justify="left")
    for state, at in service.history(current.id):
        history.add_row(state, at)
    out.print(history)
    if wait and current.state is not JobState.JOB_COMPLETE and current.job_type != "Classic":
        sys.exit(1)


def _follow(ctx: Context, service: IngestService, job: Job, interval: float, out: Console) -> Job:
    done, total, running = _progress(ctx, job)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("records"), TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=out) as bar:
        task = bar.add_task(job.state.value, total=total or None, completed=done)
        while running:
            time.sleep(interval)
            job = service.find(job.id, operator(ctx))
            done, total, running = _progress(ctx, job)
            if not running and total is None:
                total = done  # a finished job is whole, whatever its upload estimate was
            bar.update(task, description=job.state.value, completed=done, total=total or None)
        if total is not None and job.state is JobState.JOB_COMPLETE:
            bar.update(task, completed=max(done, total), total=max(done, total))
    return job
