#!/usr/bin/env python3
"""Bulk API 2.0 ingest benchmark: bulkforce over HTTP against a raw SQLite baseline.

Generates N Contact-like rows, loads them with a Bulk 2.0 insert job through a real
`bulkforce serve` process, loads the same CSV straight into SQLite (csv.reader + one
executemany into an identical table), repeats both for an upsert on External_Id__c, runs two
Bulk 1.0 CSV insert jobs of 10 x 10,000 records (Parallel, then Serial), times 20 one-record
jobs, and prints records/s, server/raw ratios, peak server RSS and latency.

With `--database postgresql://.../ADMIN_DB` the server runs on PostgreSQL in a fresh database
the bench creates (and drops), the raw baseline is a psycopg COPY into an identical table
(bench_raw.contact, LIKE the server's INCLUDING ALL), and a worker-scaling case follows: the
same N rows as 4 concurrent jobs against `serve --no-worker` plus 1, 2 and 4 `bulkforce
worker` processes.

It is a measurement, not a test: it exits 0 whatever the numbers are, and non-zero only
when the run could not be measured (server did not start, a job failed, wrong row counts).

    python -m bench.ingest                       # 1M-row insert, 100k-row upsert
    python -m bench.ingest --rows 20000 --upsert-rows 5000 --keep
    python -m bench.ingest --database postgresql://postgres@127.0.0.1:5432/test

See bench/README.md for what every number means.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from functools import partial
from pathlib import Path

import httpx

from bench.bulk1 import ServerTable, bulk1_numbers, run_bulk1_job, verify_bulk1
from bench.bulk2 import one_record_job, plan_parts, run_job, verify_run
from bench.common import (
    BULK1_BATCH_ROWS,
    BULK1_BATCHES,
    BULK1_MODES,
    COLUMNS,
    OBJECT,
    SERVER_UPLOAD_LIMIT,
    TOKEN,
)
from bench.data import CsvFile, ext_id, insert_numbers, upsert_numbers, write_contacts
from bench.options import parse_args
from bench.pg import (
    PG_RAW_SCHEMA,
    PgDatabases,
    is_postgres,
    pg_check_contents,
    pg_make_raw_table,
    pg_raw_load,
)
from bench.procs import (
    BenchError,
    CpuWatch,
    Server,
    make_work_dir,
    remove_work_dir,
    run_guarded,
    settle_disk,
)
from bench.raw_sqlite import (
    check_contents,
    copy_ddl,
    filler_columns,
    open_raw,
    raw_load,
    server_now,
    sqlite_path,
)
from bench.report import Phase, Report, mb, rate, say, summary
from bench.scaling import run_scaling


def run_bench(
    args: argparse.Namespace, work: Path, report: Report, dbs: PgDatabases | None
) -> None:
    n: int = args.rows
    m: int = min(args.upsert_rows, 2 * n)
    do_upsert = not args.skip_upsert and m > 0
    bulk1_rows = BULK1_BATCHES * BULK1_BATCH_ROWS

    say(f"work dir {work}")
    t0 = time.perf_counter()
    ins = write_contacts(
        work / "insert.csv", insert_numbers(n, args.seed, args.ordered_ids), args.seed + 1
    )
    say(
        f"generated {ins.path.name}: {n} rows, {mb(ins.size):.1f} MB, "
        f"{(ins.size - ins.offsets[0]) / max(n, 1):.0f} bytes/row "
        f"({time.perf_counter() - t0:.1f}s)"
    )
    ups: CsvFile | None = None
    updates = 0
    if do_upsert:
        numbers, updates = upsert_numbers(m, n, args.seed + 2)
        ups = write_contacts(work / "upsert.csv", numbers, args.seed + 3)
        say(f"generated {ups.path.name}: {m} rows ({updates} existing external ids)")
    bulk1_files: list[tuple[str, list[int], CsvFile]] = []
    if not args.skip_bulk1:
        first = n + m + 1  # above every 2.0 insert and upsert external id
        for i, mode in enumerate(BULK1_MODES):
            numbers = bulk1_numbers(bulk1_rows, first, args.seed + 4 + 2 * i, args.ordered_ids)
            path = work / f"bulk1-{mode.lower()}.csv"
            bulk1_files.append(
                (mode, numbers, write_contacts(path, numbers, args.seed + 5 + 2 * i))
            )
            first += bulk1_rows
        say(
            f"generated {len(bulk1_files)} Bulk 1.0 files of {BULK1_BATCHES} x "
            f"{BULK1_BATCH_ROWS} rows (external ids {ext_id(n + m + 1)} .. {ext_id(first - 1)})"
        )
    header = list(COLUMNS)
    max_bytes = int(args.max_upload_mb * 1_000_000)

    data_dir = work / "data"
    server_args = list(args.server_arg)
    largest = max(ins.size, ups.size if ups else 0) if max_bytes <= 0 else max_bytes
    if largest > SERVER_UPLOAD_LIMIT and not any("--max-upload-mb" in a for a in server_args):
        # one upload of the whole file, as the bench intends: lift the server's cap to fit it
        limit_mib = largest // (1 << 20) + 1
        server_args += ["--max-upload-mb", str(limit_mib)]
        report.note(
            f"the {mb(largest):.0f} MB upload exceeds the server's default 150 MiB limit; "
            f"server started with --max-upload-mb {limit_mib}"
        )
    db_url: str | None = args.database
    db_name = ""
    if dbs is not None:
        report.backend = "postgresql"
        db_name, db_url = dbs.create()
        say(f"created database {db_name} (server tables in public, raw table in {PG_RAW_SCHEMA})")
    server = Server(data_dir, args.schema, db_url, server_args, work / "server.log")
    server_db = None if dbs is not None else sqlite_path(args.database, data_dir)
    table: ServerTable | None = None
    pg_table = ""
    cpu = CpuWatch()
    cpu.markers.append(db_name or "\0")
    raw_db = work / "raw.db"
    results_dir = work / "results"
    results_dir.mkdir()
    timeout = httpx.Timeout(connect=10, read=args.http_timeout, write=args.http_timeout, pool=10)
    say(f"starting server: {' '.join(server.cmd)}")
    try:
        server.start(args.startup_timeout)
        assert server.sampler is not None
        say(f"server ready at {server.url} (pid {server.proc.pid if server.proc else '?'})")
        if dbs is not None and db_url is not None:
            pg_table, indexes, triggers = pg_make_raw_table(db_url)
            table = ServerTable(pg_url=db_url)
            say(
                f"raw table {PG_RAW_SCHEMA}.{OBJECT.lower()} created LIKE {pg_table} INCLUDING "
                f"ALL (still empty); its indexes: {'; '.join(indexes)}"
            )
            if triggers:
                report.note(f"server has triggers on {pg_table} (not copied): {triggers}")
            dbs.settle(db_url, report)
        client = httpx.Client(
            base_url=server.ingest_url,
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=timeout,
        )
        with client:
            # 1. insert ---------------------------------------------------------------------
            parts = plan_parts(ins, max_bytes)
            if dbs is None:
                settle_disk()  # PostgreSQL's settle (above) syncs too
            server.sampler.set_phase("insert")
            say(f"server insert: {n} rows in {len(parts)} job(s)")
            cpu.start()
            run = run_job(
                client, "insert", ins, parts, results_dir, args.poll_interval, args.job_timeout
            )
            cpu.stop(report, "server insert")
            report.insert = Phase(n, run.seconds)
            say(f"server insert: {run.seconds:.2f}s, {report.insert.server_rps:,.0f} rec/s")
            server.sampler.set_phase("idle")
            verify_run(report, run, header, n, n)

            if dbs is not None and db_url is not None:
                dbs.settle(db_url, report)
                say(f"raw insert: COPY of {n} rows into {PG_RAW_SCHEMA}.{OBJECT.lower()}")
                load = partial(pg_raw_load, db_url, ins, "003R0", upsert=False)
                raw_phase(report, cpu, report.insert, "insert", load)
                if not args.skip_verify:
                    pg_check_contents(report, db_url, pg_table, "after insert")
                report.insert_stamped = Phase(n, run.seconds)
                dbs.settle(db_url, report)
                say("raw insert (stamped): the same COPY, also setting what the server sets")
                load = partial(pg_raw_load, db_url, ins, "003R0", False, stamped_like=pg_table)
                raw_phase(report, cpu, report.insert_stamped, "insert (stamped)", load)
            elif server_db is not None and server_db.exists():
                table = ServerTable(sqlite=server_db)
                ddl, triggers = copy_ddl(server_db)
                if triggers:
                    report.note(f"server has triggers on {OBJECT} (not copied): {triggers}")
                settle_disk()
                raw = open_raw(raw_db)
                try:
                    for stmt in ddl:
                        raw.execute(stmt)
                    fill = filler_columns(raw, ("Id", *COLUMNS))
                    if fill:
                        report.note(f"raw load also fills NOT NULL columns {sorted(fill)}")
                    say(f"raw insert: copied {len(ddl)} DDL statement(s); loading {n} rows")
                    load = partial(raw_load, raw, ins, "003R0", upsert=False)
                    raw_phase(report, cpu, report.insert, "insert", load)
                finally:
                    raw.close()
                if not args.skip_verify:
                    check_contents(report, raw_db, server_db, "after insert")
            else:
                report.note(f"no SQLite database at {server_db}: raw baseline skipped")
                server_db = None

            # 2. upsert ---------------------------------------------------------------------
            if ups is not None:
                if dbs is not None:
                    dbs.settle(db_url, report)
                else:
                    settle_disk()
                server.sampler.set_phase("upsert")
                say(f"server upsert: {m} rows ({updates} updates, {m - updates} inserts)")
                cpu.start()
                run = run_job(
                    client,
                    "upsert",
                    ups,
                    plan_parts(ups, max_bytes),
                    results_dir,
                    args.poll_interval,
                    args.job_timeout,
                )
                cpu.stop(report, "server upsert")
                report.upsert = Phase(m, run.seconds)
                report.upsert_updates = updates
                say(f"server upsert: {run.seconds:.2f}s, {report.upsert.server_rps:,.0f} rec/s")
                server.sampler.set_phase("idle")
                verify_run(report, run, header, m, m - updates)
                if dbs is not None and db_url is not None:
                    dbs.settle(db_url, report)
                    say(f"raw upsert: COPY of {m} rows into a staging table + INSERT ON CONFLICT")
                    load = partial(pg_raw_load, db_url, ups, "003R1", upsert=True)
                    raw_phase(report, cpu, report.upsert, "upsert", load)
                    if not args.skip_verify:
                        pg_check_contents(report, db_url, pg_table, "after upsert")
                elif server_db is not None:
                    stamped_db = work / "raw-stamped.db"
                    shutil.copyfile(raw_db, stamped_db)  # the raw table before the upsert
                    settle_disk()
                    raw = open_raw(raw_db)
                    try:
                        load = partial(raw_load, raw, ups, "003R1", upsert=True)
                        raw_phase(report, cpu, report.upsert, "upsert", load)
                    finally:
                        raw.close()
                    if not args.skip_verify:
                        check_contents(report, raw_db, server_db, "after upsert")
                    report.upsert_stamped = Phase(m, run.seconds)
                    settle_disk()
                    raw = open_raw(stamped_db)
                    try:
                        load = partial(raw_load, raw, ups, "003R1", upsert=True, stamp=server_now())
                        raw_phase(report, cpu, report.upsert_stamped, "upsert (stamped)", load)
                    finally:
                        raw.close()
                        stamped_db.unlink()

            # 3. Bulk 1.0 -------------------------------------------------------------------
            if bulk1_files:
                bulk1_client = httpx.Client(
                    base_url=server.url, headers={"X-SFDC-Session": TOKEN}, timeout=timeout
                )
                with bulk1_client:
                    for mode, numbers, csv_file in bulk1_files:
                        head = csv_file.header()
                        offs = csv_file.offsets
                        bodies: list[bytes] = []
                        with csv_file.path.open("rb") as f:
                            for k in range(BULK1_BATCHES):
                                f.seek(offs[k])
                                bodies.append(head + f.read(offs[k + 1] - offs[k]))
                        before = table.count() if table is not None else None
                        server.sampler.set_phase("bulk1")
                        say(
                            f"bulk1 {mode.lower()}: {BULK1_BATCHES} CSV batches x {BULK1_BATCH_ROWS}"
                        )
                        b1 = run_bulk1_job(
                            bulk1_client, mode, bodies, args.poll_interval, args.job_timeout
                        )
                        server.sampler.set_phase("idle")
                        phase = Phase(bulk1_rows, b1.seconds)
                        report.bulk1[mode.lower()] = phase
                        say(
                            f"bulk1 {mode.lower()}: job {b1.job_id} {b1.seconds:.2f}s, "
                            f"{phase.server_rps:,.0f} rec/s (create + batches + close "
                            f"{b1.upload_seconds:.2f}s, {b1.polls} batch-list polls)"
                        )
                        verify_bulk1(report, bulk1_client, b1, numbers, table, before)

            # 4. latency --------------------------------------------------------------------
            if args.latency_jobs:
                if dbs is not None:  # as before every phase: not the last one's flushing
                    dbs.settle(db_url, report)
                else:
                    settle_disk()
                server.sampler.set_phase("latency")
                head = ins.header()
                polls: list[int] = []
                for i in range(args.latency_jobs):
                    one = one_record_job(client, head, i + 1)
                    report.latency_ms.append(one.completed)
                    report.latency_seen_ms.append(one.seen)
                    polls.append(one.polls)
                say(
                    "1-record jobs create→JobComplete by the server's stamp (ms): "
                    + " ".join(f"{x:.1f}" for x in report.latency_ms)
                    + "; seen by a GET: "
                    + " ".join(f"{x:.1f}" for x in report.latency_seen_ms)
                    + f"; polls per job: median {statistics.median(polls):.0f}, max {max(polls)}"
                )
    finally:
        how = server.stop()
        if server.sampler:
            report.peak_rss = server.sampler.peak
            report.phase_rss = dict(server.sampler.phase_peaks)
            report.rss_trace = list(server.sampler.trace)
        say(f"server {how}; log: {server.log_path}")
        if how != "stopped":
            report.note(f"server {how}")

    # 5. worker scaling (PostgreSQL) ---------------------------------------------------------
    if dbs is not None:
        if not args.keep:
            dbs.drop(db_name)
        if args.scaling_workers and not args.skip_scaling:
            run_scaling(args, work, report, dbs, ins, server_args, timeout)


def raw_phase(
    report: Report,
    cpu: CpuWatch,
    phase: Phase,
    label: str,
    load: Callable[[], tuple[float, int]],
) -> None:
    """Times the raw baseline `load` of `phase`'s rows (`label`: insert or upsert), which must
    load every one of them."""
    cpu.start()
    seconds, count = load()
    cpu.stop(report, f"raw {label}")
    if count != phase.rows:
        raise BenchError(f"raw {label} loaded {count} rows, expected {phase.rows}")
    phase.raw_seconds = seconds
    say(f"raw {label}: {seconds:.2f}s, {rate(phase.rows, seconds):,.0f} rec/s")


def main(argv: Sequence[str] | None = None) -> int:
    flag = argparse.ArgumentParser(add_help=False)
    flag.add_argument("--relationship", action="store_true")
    picked, rest = flag.parse_known_args(argv)
    if picked.relationship:
        from bench.relationship import relationship_main

        return relationship_main(rest)
    args = parse_args(argv)
    work = make_work_dir(args.work_dir, "bulkforce-bench-")
    report = Report()
    status = 0
    dbs = PgDatabases(args.database) if is_postgres(args.database) else None
    try:
        status = run_guarded(work, partial(run_bench, args, work, report, dbs))
    finally:
        if dbs is not None and dbs.created:
            if args.keep:
                say(f"kept databases {', '.join(dbs.created)}")
            else:
                left = dbs.drop_all()
                if left:
                    report.note(f"could not drop databases {left}")
    print(summary(report, args.rows, status == 0), flush=True)
    if args.rss_trace and report.rss_trace:
        with args.rss_trace.open("w", newline="") as f:
            out = csv.writer(f, lineterminator="\n")
            out.writerow(["seconds", "phase", "rss_mb"])
            out.writerows((f"{t:.2f}", ph, f"{mb(r):.1f}") for t, ph, r in report.rss_trace)
    if args.json:
        data = asdict(report)
        del data["rss_trace"]
        for name in ("insert", "insert_stamped", "upsert", "upsert_stamped"):
            phase: Phase | None = getattr(report, name)
            if phase is not None:
                data[name].update(
                    server_rps=phase.server_rps, raw_rps=phase.raw_rps, ratio=phase.ratio
                )
        for mode, b1 in report.bulk1.items():
            data["bulk1"][mode].update(server_rps=b1.server_rps, batches=BULK1_BATCHES)
        for k, sc in report.scaling.items():
            data["scaling"][k].update(server_rps=sc.server_rps)
        data.update(rows=args.rows, status=status)
        args.json.write_text(json.dumps(data, indent=2))
    remove_work_dir(work, args.keep)
    return status


if __name__ == "__main__":
    sys.exit(main())
