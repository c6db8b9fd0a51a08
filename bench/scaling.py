"""Concurrent jobs and the worker-scaling runs (PostgreSQL, several worker processes)."""

from __future__ import annotations

import argparse
import csv
import shutil
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

from bench.bulk2 import JobRun, run_job, verify_run
from bench.common import CHUNK_ROWS, COLUMNS, TOKEN
from bench.data import CsvFile
from bench.pg import PgDatabases, pg_count, pg_server_table
from bench.procs import BenchError, CpuWatch, Server, WorkerProcess
from bench.report import Phase, Report, say


def row_offset(csv_file: CsvFile, row: int) -> int:
    """Byte offset at which data row `row` (0-based) starts; `csv_file.rows` gives the size."""
    k, skip = divmod(row, CHUNK_ROWS)
    if skip == 0:
        return csv_file.offsets[k]
    consumed = 0
    with csv_file.path.open("rb") as f:
        f.seek(csv_file.offsets[k])

        def lines() -> Iterator[str]:
            nonlocal consumed
            for line in f:  # UTF-8 never has a 0x0A inside a character
                consumed += len(line)
                yield line.decode("utf-8")

        reader = csv.reader(lines())  # asks for the next line only when a record needs it
        for _ in range(skip):
            next(reader)
    return csv_file.offsets[k] + consumed


def split_rows(csv_file: CsvFile, jobs: int) -> list[tuple[int, int, int]]:
    """`jobs` consecutive slices of the data rows, as even as possible: (rows, start, end)."""
    n = csv_file.rows
    sizes = [n // jobs + (1 if i < n % jobs else 0) for i in range(jobs)]
    bounds = [0]
    for size in sizes:
        bounds.append(bounds[-1] + size)
    offsets = [row_offset(csv_file, b) for b in bounds]
    return [(sizes[i], offsets[i], offsets[i + 1]) for i in range(jobs)]


def run_concurrent_jobs(
    base_url: str,
    csv_file: CsvFile,
    slices: Sequence[tuple[int, int, int]],
    out_dir: Path,
    poll_interval: float,
    job_timeout: float,
    timeout: httpx.Timeout,
) -> tuple[float, list[JobRun]]:
    """One insert job per slice, each on its own thread and connection, all started at once.
    Returns (seconds from the common start to the last byte of the last successfulResults,
    the runs)."""
    start = threading.Barrier(len(slices) + 1)
    ends: list[float] = [0.0] * len(slices)
    runs: list[JobRun | None] = [None] * len(slices)
    errors: list[BaseException] = []

    def one(i: int) -> None:
        _, lo, hi = slices[i]
        client = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=timeout
        )
        with client:
            start.wait()
            t = time.perf_counter()
            try:
                run = run_job(
                    client, "insert", csv_file, [(lo, hi)], out_dir, poll_interval, job_timeout
                )
            except BaseException as exc:  # reported by the caller
                errors.append(exc)
                return
            ends[i] = t + run.seconds
            runs[i] = run

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(len(slices))]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    done = [r for r in runs if r is not None]
    return max(ends) - t0, done


def run_scaling(
    args: argparse.Namespace,
    work: Path,
    report: Report,
    dbs: PgDatabases,
    ins: CsvFile,
    server_args: Sequence[str],
    timeout: httpx.Timeout,
) -> None:
    """The same N-row insert, split into J jobs submitted at once, against an API process
    started --no-worker plus 1, 2, 4 ... `bulkforce worker` processes; a fresh database each."""
    n = ins.rows
    jobs = min(args.scaling_jobs or max(args.scaling_workers), n)
    slices = split_rows(ins, jobs)
    report.scaling_jobs = [rows for rows, _, _ in slices]
    header = list(COLUMNS)
    for k in args.scaling_workers:
        name, url = dbs.create()
        tag = f"scale{k}"
        server = Server(
            work / f"{tag}-data", args.schema, url, [*server_args, "--no-worker"],
            work / f"server-{tag}.log",
        )  # fmt: skip
        workers = [
            WorkerProcess(
                url, args.schema, work / f"{tag}-worker{i}", args.worker_arg,
                work / f"worker-{tag}-{i}.log",
            )
            for i in range(k)
        ]  # fmt: skip
        out_dir = work / f"results-{tag}"
        out_dir.mkdir()
        say(f"workers={k}: database {name}; API --no-worker + {k} `bulkforce worker` process(es)")
        try:
            server.start(args.startup_timeout)
            for w in workers:  # after the API: it has made the org, user and tables
                w.start()
            for w in workers:
                w.wait_ready(args.startup_timeout)
            dbs.settle(None, report)
            say(
                f"workers={k}: {jobs} concurrent insert jobs of "
                f"{'/'.join(str(r) for r, _, _ in slices[:2])}{'/...' if jobs > 2 else ''} rows"
            )
            cpu = CpuWatch()
            cpu.markers.append(name)
            cpu.start()
            seconds, runs = run_concurrent_jobs(
                server.ingest_url, ins, slices, out_dir, args.scaling_poll_interval,
                args.job_timeout, timeout,
            )  # fmt: skip
            cpu.stop(report, f"workers={k}")
            phase = Phase(n, seconds)
            report.scaling[str(k)] = phase
            per_job = ", ".join(f"{r.seconds:.1f}" for r in runs)
            say(
                f"workers={k}: {seconds:.2f}s, {phase.server_rps:,.0f} rec/s "
                f"(per job, s: {per_job})"
            )
            for (rows, _, _), run in zip(slices, runs, strict=True):
                verify_run(report, run, header, rows, rows)
            stored = pg_count(url, pg_server_table(url))
            if stored != n:
                raise BenchError(f"workers={k}: server table has {stored} rows, expected {n}")
        finally:
            for i, w in enumerate(workers):
                if w.proc is None:
                    continue
                how = w.stop()
                if how != "stopped":
                    report.note(f"workers={k}: worker {i} {how}; log {w.log_path}")
            how = server.stop()
            if how != "stopped":
                report.note(f"workers={k}: API server {how}")
            if not args.keep:
                dbs.drop(name)
                shutil.rmtree(out_dir, ignore_errors=True)
