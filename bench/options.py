"""The command-line options of `python -m bench.ingest`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from bench.common import DEFAULT_SCHEMA


def worker_counts(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from None
    if any(c < 1 for c in counts):
        raise argparse.ArgumentTypeError("worker counts must be >= 1")
    return counts


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Bulk 2.0 ingest benchmark: bulkforce over HTTP vs. raw SQLite."
    )
    p.add_argument("--rows", type=int, default=1_000_000, help="insert rows N (default 1M)")
    p.add_argument("--upsert-rows", type=int, default=100_000, help="upsert rows M (100k)")
    p.add_argument("--skip-upsert", action="store_true", help="skip the upsert case")
    p.add_argument(
        "--skip-bulk1", action="store_true", help="skip the Bulk 1.0 Parallel and Serial jobs"
    )
    p.add_argument("--latency-jobs", type=int, default=20, help="one-record jobs (default 20)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (CSV, DBs, log)")
    p.add_argument(
        "--database",
        help="sqlite:///FILE: passed to the server; postgresql://.../ADMIN_DB: the bench creates "
        "(and drops) its own bench_<random> databases through ADMIN_DB (default: SQLite)",
    )
    p.add_argument("--schema", type=Path, default=DEFAULT_SCHEMA, help="server --schema file")
    p.add_argument(
        "--server-arg", action="append", default=[], help="extra server argument (repeatable)"
    )
    p.add_argument(
        "--worker-arg",
        action="append",
        default=[],
        help="extra `bulkforce worker` argument in the scaling runs (repeatable)",
    )
    p.add_argument(
        "--scaling-workers",
        type=worker_counts,
        default=(1, 2, 4),
        help="PostgreSQL: worker process counts for the scaling runs (default 1,2,4)",
    )
    p.add_argument(
        "--scaling-jobs",
        type=int,
        default=0,
        help="concurrent jobs the N rows are split into (default: the largest worker count)",
    )
    p.add_argument(
        "--scaling-poll-interval",
        type=float,
        default=0.1,
        help="poll interval per job in the scaling runs, s (default 0.1)",
    )
    p.add_argument("--skip-scaling", action="store_true", help="skip the worker-scaling runs")
    p.add_argument("--work-dir", type=Path, help="parent of the temp dir (default: system tmp)")
    p.add_argument("--seed", type=int, default=20240501, help="data generator seed")
    p.add_argument(
        "--ordered-ids",
        action="store_true",
        help="External_Id__c in row order (default: a seeded shuffle, i.e. random index order)",
    )
    p.add_argument(
        "--max-upload-mb",
        type=float,
        default=0,
        help="split the insert into jobs of at most this many MB (default 0: one upload)",
    )
    p.add_argument("--poll-interval", type=float, default=0.02, help="big-job poll interval, s")
    p.add_argument("--job-timeout", type=float, default=3600, help="max seconds per job")
    p.add_argument("--http-timeout", type=float, default=1800, help="HTTP read/write timeout, s")
    p.add_argument("--startup-timeout", type=float, default=60, help="server readiness wait, s")
    p.add_argument("--skip-verify", action="store_true", help="skip the table content comparison")
    p.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    p.add_argument("--rss-trace", type=Path, help="write every RSS sample to this CSV file")
    args = p.parse_args(argv)
    if args.rows < 1:
        p.error("--rows must be >= 1")
    if args.scaling_jobs < 0:
        p.error("--scaling-jobs must be >= 0")
    if not args.schema.is_file():
        p.error(f"schema file not found: {args.schema}")
    return args
