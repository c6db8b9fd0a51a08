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

    python bench/ingest.py                       # 1M-row insert, 100k-row upsert
    python bench/ingest.py --rows 20000 --upsert-rows 5000 --keep
    python bench/ingest.py --database postgresql://postgres@127.0.0.1:5432/test

See bench/README.md for what every number means.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import unicodedata
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import psutil  # also imported by the RSS sampler child process

if TYPE_CHECKING:  # imported where used: only --database postgresql://... needs psycopg
    import psycopg

API_VERSION = "59.0"
TOKEN = "00D000000000001AAA!AQEAQBench"
OBJECT = "Contact"
EXT_ID = "External_Id__c"
COLUMNS: tuple[str, ...] = (
    "FirstName",
    "LastName",
    "Email",
    "Phone",
    "Title",
    "Department",
    "MailingStreet",
    "MailingCity",
    "MailingState",
    "MailingPostalCode",
    "MailingCountry",
    "Description",
    EXT_ID,
)
CHUNK_ROWS = 10_000  # generator write unit; also the split granularity for --max-upload-mb
IO_BLOCK = 1 << 20  # upload / download block size
BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
DEFAULT_SCHEMA = BENCH_DIR / "contact_schema.json"
SERVER_UPLOAD_LIMIT = 150 * 1024 * 1024  # bulkforce serve's default --max-upload-mb (MiB)
TARGETS = {"insert": 0.50, "upsert": 0.40, "rss_mb": 300.0, "latency_ms": 50.0}
BULK1_JOB = f"/services/async/{API_VERSION}/job"
BULK1_NS = "http://www.force.com/2009/06/asyncapi/dataload"
BULK1_MODES = ("Parallel", "Serial")
BULK1_BATCHES = 10
BULK1_BATCH_ROWS = CHUNK_ROWS  # 10,000: the Bulk 1.0 per-batch record limit
BULK1_RESULT_HEADER = b'"Id","Success","Created","Error"'

# ---------------------------------------------------------------------------------------------
# Data generation
# ---------------------------------------------------------------------------------------------

FIRST_NAMES = (
    "Ada", "José", "Zoë", "Jürgen", "Hélène", "Li", "Mei", "Søren", "Émile", "Ana", "John",
    "Mary", "Kenji", "Yuki", "Olga", "Raúl", "François", "Björn", "Inès", "Omar", "太郎",
    "花子", "Chloé", "Łukasz", "Priya", "Noël", "Agnieszka", "Grace", "Ümit", "Sven",
)  # fmt: skip
LAST_NAMES = (
    "Lovelace", "García", "Müller", "Dupont", "O'Brien", "Nakamura", "山田", "Smith",
    "Østergaard", "Kowalski", "Nguyen", "Silva", "Brontë", "van der Berg", "Schäfer", "佐藤",
    "Hopper", "Fernández", "Dubois", "Johansson", "Wójcik", "Rossi", "Patel", "Lefèvre",
)  # fmt: skip
TITLES = (
    "Chief Executive Officer", "VP, Sales", "Directeur Général", "Ingénieur logiciel",
    "Head of R&D", "Senior Engineer, Platform", "営業部長", "Account Manager",
    "Geschäftsführer", "Buyer", "Procurement Lead, EMEA", "CTO",
)  # fmt: skip
DEPARTMENTS = (
    "Sales", "Marketing", "Finance", "R&D", "Support", "Opérations", "Legal", "IT", "経理",
    "Einkauf", "Customer Success",
)  # fmt: skip
STREETS = (
    "Rue de la Paix", "Hauptstraße", "Main St", "銀座通り", "Calle Mayor", "Market Street",
    "Bahnhofstrasse", "Avenue des Champs-Élysées", "Königsallee", "Rua Augusta",
)  # fmt: skip
PLACES = (  # city, state, country
    ("Paris", "Île-de-France", "France"),
    ("München", "Bayern", "Deutschland"),
    ("東京", "東京都", "日本"),
    ("São Paulo", "SP", "Brasil"),
    ("Zürich", "ZH", "Schweiz"),
    ("New York", "NY", "United States"),
    ("Montréal", "QC", "Canada"),
    ("Kraków", "Małopolskie", "Polska"),
    ("San Francisco", "CA", "United States"),
    ("Köln", "Nordrhein-Westfalen", "Deutschland"),
)
DESCRIPTIONS = (
    'Met at "Dreamforce"', "VIP, renewal Q3", "Kunde seit 2019", "Décideur", "日本語のメモ",
    "Call back\nafter 5pm", "Referred, partner", "Prefers email", "Budget validé", "Trial user",
)  # fmt: skip


def _ascii_slug(text: str, fallback: str) -> str:
    slug = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    slug = "".join(ch for ch in slug if ch.isalnum())
    return slug or fallback


FIRST_SLUGS = tuple(_ascii_slug(n, "user") for n in FIRST_NAMES)
LAST_SLUGS = tuple(_ascii_slug(n, "contact") for n in LAST_NAMES)


def ext_id(number: int) -> str:
    return f"EXT-{number:07d}"


def contact_row(bits: int, ext: str) -> list[str]:
    """One Contact row (13 values, COLUMNS order) drawn from 128 random bits."""
    r = bits
    f, r = r % len(FIRST_NAMES), r // len(FIRST_NAMES)
    ln, r = r % len(LAST_NAMES), r // len(LAST_NAMES)
    title, r = r % len(TITLES), r // len(TITLES)
    dept, r = r % len(DEPARTMENTS), r // len(DEPARTMENTS)
    street, r = r % len(STREETS), r // len(STREETS)
    city, state, country = PLACES[r % len(PLACES)]
    r //= len(PLACES)
    desc, r = r % len(DESCRIPTIONS), r // len(DESCRIPTIONS)
    num, r = r % 400 + 1, r // 400
    phone, r = r % 10_000_000, r // 10_000_000
    postal, r = r % 90_000 + 10_000, r // 90_000
    if r % 5 == 0:  # ~20%: a comma and an embedded newline, as in a two-line address
        address = f"{num} {STREETS[street]}, Apt {r % 97 + 1}\nBât. {'ABCDEF'[r % 6]}"
    else:
        address = f"{num} {STREETS[street]}"
    return [
        FIRST_NAMES[f],
        LAST_NAMES[ln],
        f"{FIRST_SLUGS[f]}.{LAST_SLUGS[ln]}{r % 100}@example.com",
        f"+1 415-{phone // 10_000:03d}-{phone % 10_000:04d}",
        TITLES[title],
        DEPARTMENTS[dept],
        address,
        city,
        state,
        str(postal),
        country,
        DESCRIPTIONS[desc],
        ext,
    ]


@dataclass(frozen=True)
class CsvFile:
    """A generated CSV file; `offsets[k]` is the byte offset of row k*CHUNK_ROWS."""

    path: Path
    rows: int
    offsets: tuple[int, ...]  # offsets[0] = end of header, offsets[-1] = file size

    @property
    def size(self) -> int:
        return self.offsets[-1]

    def header(self) -> bytes:
        with self.path.open("rb") as f:
            return f.read(self.offsets[0])


def write_contacts(path: Path, ext_numbers: Sequence[int], seed: int) -> CsvFile:
    """Write one row per external-id number, in the given order (LF line endings, UTF-8)."""
    rng = random.Random(seed)
    offsets: list[int] = []
    with path.open("wb") as out:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(COLUMNS)
        out.write(buf.getvalue().encode())
        offsets.append(out.tell())
        for start in range(0, len(ext_numbers), CHUNK_ROWS):
            buf = io.StringIO()
            writer = csv.writer(buf, lineterminator="\n")
            getrandbits = rng.getrandbits
            writer.writerows(
                contact_row(getrandbits(128), ext_id(n))
                for n in ext_numbers[start : start + CHUNK_ROWS]
            )
            out.write(buf.getvalue().encode())
            offsets.append(out.tell())
    return CsvFile(path, len(ext_numbers), tuple(offsets))


def insert_numbers(n: int, seed: int, ordered: bool) -> list[int]:
    numbers = list(range(1, n + 1))
    if not ordered:
        random.Random(seed).shuffle(numbers)
    return numbers


def upsert_numbers(m: int, n: int, seed: int) -> tuple[list[int], int]:
    """M external-id numbers: half already loaded (updates), half new. Returns (numbers, updates)."""
    rng = random.Random(seed)
    updates = min(m // 2, n)
    numbers = rng.sample(range(1, n + 1), updates) + list(range(n + 1, n + 1 + m - updates))
    rng.shuffle(numbers)
    return numbers, updates


# ---------------------------------------------------------------------------------------------
# Server process and RSS sampling
# ---------------------------------------------------------------------------------------------


class BenchError(RuntimeError):
    """The run could not be measured."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# The sampler runs as `python -c SAMPLER_CODE PID OUT INTERVAL`: a thread in this process would
# be starved by the GIL while the raw baseline and the checks run (gaps of 0.5 s were seen) and
# would steal time from them. It writes "monotonic-seconds rss-bytes" lines until its stdin
# closes.
SAMPLER_CODE = """
import contextlib, select, sys, time
import psutil
pid, out, interval = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
def tree():
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += p.memory_info().rss
    return total
with open(out, "w", buffering=1) as f:
    while True:
        f.write(f"{time.monotonic():.4f} {tree()}\\n")
        if select.select([sys.stdin], [], [], interval)[0]:
            break
"""


class RssSampler:
    """Samples the RSS of a process tree (summed) every `interval` s from a child process."""

    def __init__(self, pid: int, out_path: Path, interval: float = 0.05) -> None:
        self.pid = pid
        self.out_path = out_path
        self.interval = interval
        self._proc: subprocess.Popen[bytes] | None = None
        self._phases: list[tuple[float, str]] = [(0.0, "startup")]
        self._t0 = time.monotonic()
        self.peak = 0
        self.phase_peaks: dict[str, int] = {}
        self.trace: list[tuple[float, str, int]] = []  # (seconds since start, phase, rss)

    def start(self) -> None:
        self._t0 = time.monotonic()
        cmd = [sys.executable, "-c", SAMPLER_CODE, str(self.pid), str(self.out_path)]
        self._proc = subprocess.Popen([*cmd, str(self.interval)], stdin=subprocess.PIPE)

    def set_phase(self, phase: str) -> None:
        self._phases.append((time.monotonic() - self._t0, phase))

    def stop(self) -> None:
        """Stop sampling and compute `peak`, `phase_peaks` and `trace`."""
        if self._proc is None:
            return
        proc, self._proc = self._proc, None
        if proc.stdin:
            proc.stdin.close()  # the sampler exits when it sees EOF
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if not self.out_path.exists():
            return
        k = 0
        for line in self.out_path.read_text().splitlines():
            try:
                stamp, value = line.split()
                t, rss = float(stamp) - self._t0, int(value)
            except ValueError:  # a torn last line after a kill
                continue
            while k + 1 < len(self._phases) and self._phases[k + 1][0] <= t:
                k += 1
            phase = self._phases[k][1]
            self.trace.append((t, phase, rss))
            self.peak = max(self.peak, rss)
            self.phase_peaks[phase] = max(self.phase_peaks.get(phase, 0), rss)


class Server:
    """A `python -m bulkforce serve` subprocess on a free loopback port."""

    def __init__(
        self,
        data_dir: Path,
        schema: Path,
        database: str | None,
        extra_args: Sequence[str],
        log_path: Path,
    ) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.log_path = log_path
        self.cmd = [
            sys.executable, "-m", "bulkforce", "serve",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--data-dir", str(data_dir), "--token", TOKEN, "--schema", str(schema),
            *(["--database", database] if database else []),
            *extra_args,
        ]  # fmt: skip
        self.proc: subprocess.Popen[bytes] | None = None
        self.sampler: RssSampler | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ingest_url(self) -> str:
        return f"{self.url}/services/data/v{API_VERSION}/jobs/ingest"

    def start(self, timeout: float) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                self.cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_DIR
            )
        rss_file = self.log_path.with_name(f"{self.log_path.stem}-rss.txt")
        self.sampler = RssSampler(self.proc.pid, rss_file)
        self.sampler.start()
        headers = {"Authorization": f"Bearer {TOKEN}"}
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"server exited with code {self.proc.returncode} during startup")
            try:
                r = httpx.get(self.ingest_url, headers=headers, timeout=2)
                if r.status_code == 200:
                    return
                last = f"HTTP {r.status_code}: {r.text[:200]}"
            except httpx.TransportError as exc:
                last = repr(exc)
            time.sleep(0.05)
        raise BenchError(f"server not ready after {timeout:.0f}s ({last})")

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> str:
        """SIGTERM (SIGKILL after 30 s); describes how the process ended."""
        if self.sampler:
            self.sampler.stop()
        return stop_process(self.proc)


def stop_process(proc: subprocess.Popen[bytes] | None) -> str:
    """SIGTERM (SIGKILL after 30 s) to one process we started; describes how it ended."""
    if proc is None:
        return "never started"
    if proc.poll() is not None:
        return f"had already exited with code {proc.returncode}"
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return "ignored SIGTERM for 30 s and was killed"
    code = proc.returncode
    return "stopped" if code in (0, -signal.SIGTERM) else f"exit code {code} after SIGTERM"


class WorkerProcess:
    """A `python -m bulkforce worker` subprocess (PostgreSQL only): processes jobs, no HTTP."""

    READY = b"bulkforce worker running"

    def __init__(
        self, database: str, schema: Path, data_dir: Path, extra_args: Sequence[str], log_path: Path
    ) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.cmd = [
            sys.executable, "-m", "bulkforce", "worker", "--database", database,
            "--schema", str(schema), "--data-dir", str(data_dir), *extra_args,
        ]  # fmt: skip
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                self.cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_DIR
            )

    def wait_ready(self, timeout: float) -> None:
        """Until the worker prints that its threads run (it has connected and migrated)."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.READY in self.log_path.read_bytes():
                return
            if self.proc.poll() is not None:
                raise BenchError(
                    f"worker exited with code {self.proc.returncode} during startup: "
                    f"{self.log_path.read_text(errors='replace')[-500:]}"
                )
            time.sleep(0.05)
        raise BenchError(f"worker not ready after {timeout:.0f}s (log {self.log_path})")

    def stop(self) -> str:
        return stop_process(self.proc)


# PostgreSQL processes that serve every database (their work is partly ours): not "foreign".
PG_SHARED = ("walwriter", "checkpointer", "background writer", "autovacuum launcher",
             "logical replication", "stats collector", "archiver")  # fmt: skip


class CpuWatch:
    """Where the CPU went during a timed phase: this run's processes by kind, and the rest.

    This run is the bench process and its descendants (server, workers, sampler) plus the
    PostgreSQL processes whose title names one of `markers` (our databases) or that serve
    every database (WAL writer, checkpointer, ...). Everything else, e.g. a test suite running
    at the same time, competes for the same cores and makes the numbers low and noisy. Both
    are lower bounds: a process that ends within the phase is not counted.
    """

    def __init__(self) -> None:
        self.markers: list[str] = []
        self._before: dict[tuple[int, float], tuple[float, str, str]] = {}
        self._t0 = 0.0

    def _snapshot(self) -> dict[tuple[int, float], tuple[float, str, str]]:
        """(CPU seconds so far, kind, title) of every process, by (pid, start time); kind is
        "other" for processes that are not this run's."""
        procs: dict[int, tuple[int, str, float, float]] = {}
        attrs = ["pid", "ppid", "cmdline", "cpu_times", "create_time"]
        for proc in psutil.process_iter(attrs):
            info = proc.info
            times = info.get("cpu_times")
            if times is None:
                continue
            title = " ".join(info.get("cmdline") or [])
            cpu = float(times.user + times.system)
            procs[int(info["pid"])] = (
                int(info["ppid"] or 0), title, float(info.get("create_time") or 0.0), cpu
            )  # fmt: skip
        me = os.getpid()
        out: dict[tuple[int, float], tuple[float, str, str]] = {}
        for pid, (ppid, title, created, cpu) in procs.items():
            parent = procs.get(ppid, (0, "", 0.0, 0.0))[1]
            ours = pid == me
            hops = 0
            while not ours and ppid and hops < 64:
                ours = ppid == me
                ppid = procs.get(ppid, (0, "", 0.0, 0.0))[0]
                hops += 1
            if not title and "postgres" in parent:
                kind = "PostgreSQL"  # a backend exiting: e.g. the raw load's, just closed
            elif title.startswith("postgres:"):
                mine = any(m in title for m in self.markers) or any(k in title for k in PG_SHARED)
                kind = "PostgreSQL" if mine else "other"
            elif pid == me:
                kind = "client"
            elif not ours:
                kind = "other"
            elif "bulkforce worker" in title:
                kind = "workers"
            elif "bulkforce serve" in title:
                kind = "server"
            else:
                kind = "sampler"
            out[(pid, created)] = (cpu, kind, title or f"pid {pid}")
        return out

    def start(self) -> None:
        self._before = self._snapshot()
        self._t0 = time.perf_counter()

    def stop(self, report: Report, what: str) -> None:
        elapsed = time.perf_counter() - self._t0
        after = self._snapshot()
        by_kind: dict[str, float] = {}
        foreign: list[tuple[float, str]] = []
        for key, (cpu, kind, title) in after.items():
            used = max(cpu - self._before.get(key, (0.0, "", ""))[0], 0.0)
            by_kind[kind] = by_kind.get(kind, 0.0) + used
            if kind == "other":
                foreign.append((used, title))
        other = by_kind.pop("other", 0.0)
        cores = os.cpu_count() or 1
        share = other / (elapsed * cores) if elapsed > 0 else 0.0
        foreign.sort(reverse=True)
        top = "; ".join(f"{t[:70].strip()} {c:.1f}" for c, t in foreign[:2] if c >= 0.5)
        mine = ", ".join(f"{k} {v:.1f}" for k, v in sorted(by_kind.items()) if v >= 0.05)
        say(
            f"{what}: CPU-s of {elapsed * cores:.1f} available ({cores} cores): {mine or '-'}; "
            f"other processes {other:.1f} ({share:.0%} of the machine)"
            + (f", most: {top}" if top else "")
        )
        if share >= 0.10:
            report.note(
                f"{what}: other processes used {share:.0%} of the machine's CPU during the "
                f"timed phase ({other:.1f} CPU-s; {top}): the rate is low and noisy"
            )


# ---------------------------------------------------------------------------------------------
# Bulk 2.0 client
# ---------------------------------------------------------------------------------------------


def check(response: httpx.Response, expected: int, what: str) -> None:
    if response.status_code != expected:
        body = response.read()[:1000].decode(errors="replace")
        raise BenchError(f"{what}: expected HTTP {expected}, got {response.status_code}: {body}")


def iter_body(csv_file: CsvFile, start: int, end: int) -> Iterator[bytes]:
    """The CSV header followed by bytes [start, end) of the file, read block by block."""
    with csv_file.path.open("rb") as f:
        yield f.read(csv_file.offsets[0])
        f.seek(start)
        remaining = end - start
        while remaining > 0:
            block = f.read(min(IO_BLOCK, remaining))
            if not block:
                raise BenchError(f"{csv_file.path} is shorter than expected")
            remaining -= len(block)
            yield block


def plan_parts(csv_file: CsvFile, max_bytes: int) -> list[tuple[int, int]]:
    """Byte ranges of data rows, one per upload; split at CHUNK_ROWS boundaries if needed."""
    offs = csv_file.offsets
    if max_bytes <= 0 or csv_file.size <= max_bytes:
        return [(offs[0], offs[-1])]
    parts: list[tuple[int, int]] = []
    start = offs[0]
    prev = offs[0]
    for off in offs[1:]:
        if off - start + offs[0] > max_bytes and prev > start:
            parts.append((start, prev))
            start = prev
        prev = off
    parts.append((start, offs[-1]))
    return parts


@dataclass
class JobRun:
    operation: str
    job_ids: list[str]
    seconds: float  # first create .. end of the last successfulResults download
    processed: int
    failed: int
    success_files: list[Path]
    failed_files: list[Path]


def create_job(client: httpx.Client, operation: str) -> str:
    body: dict[str, str] = {"object": OBJECT, "operation": operation, "contentType": "CSV"}
    if operation == "upsert":
        body["externalIdFieldName"] = EXT_ID
    r = client.post("", json=body)
    check(r, 200, f"create {operation} job")
    info: dict[str, Any] = r.json()
    if info.get("state") != "Open":
        raise BenchError(f"new job is {info.get('state')!r}, expected 'Open': {info}")
    return str(info["id"])


def wait_complete(client: httpx.Client, job_id: str, interval: float, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(f"/{job_id}")
        check(r, 200, f"get job {job_id}")
        info = r.json()
        state = info.get("state")
        if state == "JobComplete":
            return info
        if state in ("Failed", "Aborted"):
            raise BenchError(f"job {job_id} {state}: {info.get('errorMessage')!r}")
        if time.monotonic() > deadline:
            raise BenchError(f"job {job_id} still {state!r} after {timeout:.0f}s")
        if interval:
            time.sleep(interval)


def download(client: httpx.Client, url: str, dest: Path) -> None:
    with client.stream("GET", url) as r, dest.open("wb") as out:
        check(r, 200, f"GET {url}")
        for block in r.iter_bytes(IO_BLOCK):
            out.write(block)


def run_job(
    client: httpx.Client,
    operation: str,
    csv_file: CsvFile,
    parts: Sequence[tuple[int, int]],
    out_dir: Path,
    poll_interval: float,
    job_timeout: float,
) -> JobRun:
    """Create, upload, close, poll and download successfulResults, one job per part."""
    run = JobRun(operation, [], 0.0, 0, 0, [], [])
    t0 = time.perf_counter()
    for start, end in parts:
        job_id = create_job(client, operation)
        run.job_ids.append(job_id)
        length = csv_file.offsets[0] + end - start
        r = client.put(
            f"/{job_id}/batches",
            content=iter_body(csv_file, start, end),
            headers={"Content-Type": "text/csv", "Content-Length": str(length)},
        )
        check(r, 201, f"upload of {mb(length):.0f} MB to job {job_id}")
        r = client.patch(f"/{job_id}", json={"state": "UploadComplete"})
        check(r, 200, f"close job {job_id}")
        info = wait_complete(client, job_id, poll_interval, job_timeout)
        run.processed += int(info.get("numberRecordsProcessed", 0))
        run.failed += int(info.get("numberRecordsFailed", 0))
        dest = out_dir / f"{operation}-{job_id}-success.csv"
        download(client, f"/{job_id}/successfulResults", dest)
        run.success_files.append(dest)
    run.seconds = time.perf_counter() - t0
    for job_id in run.job_ids:  # not timed
        dest = out_dir / f"{operation}-{job_id}-failed.csv"
        download(client, f"/{job_id}/failedResults", dest)
        run.failed_files.append(dest)
    return run


@dataclass
class ResultScan:
    rows: int = 0
    created: int = 0
    headers_ok: bool = True
    bad_ids: int = 0
    errors: list[str] = field(default_factory=list)  # first few sf__Error values


def scan_results(paths: Sequence[Path], first_col: str, uploaded_header: list[str]) -> ResultScan:
    """Count data rows of result CSVs; check the header and (for successes) sf__Id/sf__Created."""
    scan = ResultScan()
    for path in paths:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:  # an empty body is acceptable for "no rows"
                continue
            if header != [first_col, header[1], *uploaded_header] or header[1] not in (
                "sf__Created",
                "sf__Error",
            ):
                scan.headers_ok = False
            for row in reader:
                if not row:
                    continue
                scan.rows += 1
                if header[1] == "sf__Created":
                    scan.created += row[1] == "true"
                    scan.bad_ids += len(row[0]) != 18 or not row[0].startswith("003")
                elif len(scan.errors) < 3:
                    scan.errors.append(row[1])
    return scan


def one_record_job(client: httpx.Client, header: bytes, index: int) -> tuple[float, int]:
    """Milliseconds from POST create to the first GET showing JobComplete, and the poll count."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(contact_row(index * 7919, f"LAT-{index:06d}"))
    body = header + buf.getvalue().encode()
    t0 = time.perf_counter()
    job_id = create_job(client, "insert")
    check(
        client.put(f"/{job_id}/batches", content=body, headers={"Content-Type": "text/csv"}),
        201,
        "one-record upload",
    )
    check(client.patch(f"/{job_id}", json={"state": "UploadComplete"}), 200, "one-record close")
    polls = 0
    while True:
        polls += 1
        r = client.get(f"/{job_id}")
        check(r, 200, "one-record poll")
        info = r.json()
        if info.get("state") == "JobComplete":
            break
        if info.get("state") in ("Failed", "Aborted"):
            raise BenchError(f"one-record job {job_id} {info.get('state')}: {info}")
        time.sleep(0.001)
    elapsed = (time.perf_counter() - t0) * 1000
    if info.get("numberRecordsFailed") != 0 or info.get("numberRecordsProcessed") != 1:
        raise BenchError(f"one-record job {job_id} did not insert its record: {info}")
    return elapsed, polls


# ---------------------------------------------------------------------------------------------
# Bulk 1.0 client
# ---------------------------------------------------------------------------------------------


def bulk1_numbers(count: int, first: int, seed: int, ordered: bool) -> list[int]:
    """External-id numbers first .. first+count-1, shuffled like the 2.0 insert unless ordered."""
    numbers = list(range(first, first + count))
    if not ordered:
        random.Random(seed).shuffle(numbers)
    return numbers


def xml_root(response: httpx.Response, tag: str, what: str) -> ET.Element:
    """The parsed XML body; its root must be `tag` in the async API namespace."""
    try:
        root = ET.fromstring(response.content)
    except ET.ParseError as exc:
        raise BenchError(f"{what}: response is not XML ({exc}): {response.text[:300]}") from None
    if root.tag != f"{{{BULK1_NS}}}{tag}":
        raise BenchError(f"{what}: expected <{tag}> in {BULK1_NS}, got {root.tag}")
    return root


def xml_text(elem: ET.Element, tag: str) -> str:
    return elem.findtext(f"{{{BULK1_NS}}}{tag}") or ""


def xml_int(elem: ET.Element, tag: str) -> int:
    text = xml_text(elem, tag)
    return int(text) if text.isdigit() else -1


def bulk1_job_body(**fields: str) -> bytes:
    inner = "".join(f"<{k}>{v}</{k}>" for k, v in fields.items())
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<jobInfo xmlns="{BULK1_NS}">{inner}</jobInfo>'
    ).encode()


@dataclass
class Bulk1Run:
    mode: str
    job_id: str = ""
    seconds: float = 0.0  # POST job .. end of the last batch result download
    upload_seconds: float = 0.0  # POST job .. job closed
    batch_ids: list[str] = field(default_factory=list)
    batch_counts: list[tuple[int, int]] = field(default_factory=list)  # (processed, failed)
    results: list[bytes] = field(default_factory=list)
    polls: int = 0


def run_bulk1_job(
    client: httpx.Client,
    mode: str,
    bodies: Sequence[bytes],
    poll_interval: float,
    job_timeout: float,
) -> Bulk1Run:
    """Create a CSV insert job, post the batches, close it, poll the batch list until every
    batch is Completed or Failed, then download every batch's result into memory."""
    run = Bulk1Run(mode)
    xml = {"Content-Type": "application/xml"}
    t0 = time.perf_counter()
    r = client.post(
        BULK1_JOB,
        content=bulk1_job_body(
            operation="insert", object=OBJECT, concurrencyMode=mode, contentType="CSV"
        ),
        headers=xml,
    )
    check(r, 201, f"create Bulk 1.0 {mode} job")
    info = xml_root(r, "jobInfo", "create Bulk 1.0 job")
    run.job_id = job_id = xml_text(info, "id")
    if xml_text(info, "state") != "Open" or xml_text(info, "concurrencyMode") != mode:
        raise BenchError(f"new Bulk 1.0 job: {r.text[:500]}")
    for k, data in enumerate(bodies):
        r = client.post(
            f"{BULK1_JOB}/{job_id}/batch", content=data, headers={"Content-Type": "text/csv"}
        )
        check(r, 201, f"batch {k + 1} of Bulk 1.0 job {job_id}")
        run.batch_ids.append(xml_text(xml_root(r, "batchInfo", "add batch"), "id"))
    r = client.post(f"{BULK1_JOB}/{job_id}", content=bulk1_job_body(state="Closed"), headers=xml)
    check(r, 200, f"close Bulk 1.0 job {job_id}")
    if xml_text(xml_root(r, "jobInfo", "close job"), "state") != "Closed":
        raise BenchError(f"closed Bulk 1.0 job {job_id} is not Closed: {r.text[:500]}")
    run.upload_seconds = time.perf_counter() - t0
    deadline = time.monotonic() + job_timeout
    while True:
        run.polls += 1
        r = client.get(f"{BULK1_JOB}/{job_id}/batch")
        check(r, 200, f"list batches of Bulk 1.0 job {job_id}")
        infos = xml_root(r, "batchInfoList", "list batches").findall(f"{{{BULK1_NS}}}batchInfo")
        states = {xml_text(b, "id"): xml_text(b, "state") for b in infos}
        if sorted(states) != sorted(run.batch_ids):
            raise BenchError(f"batch list of job {job_id} does not match the posted batches")
        if all(s in ("Completed", "Failed") for s in states.values()):
            break
        if "NotProcessed" in states.values():
            raise BenchError(f"Bulk 1.0 job {job_id} has NotProcessed batches: {states}")
        if time.monotonic() > deadline:
            raise BenchError(f"Bulk 1.0 job {job_id} not done after {job_timeout:.0f}s: {states}")
        if poll_interval:
            time.sleep(poll_interval)
    failed = {xml_text(b, "id"): xml_text(b, "stateMessage") for b in infos}
    failed = {b: msg for b, msg in failed.items() if states[b] == "Failed"}
    if failed:
        raise BenchError(f"Bulk 1.0 job {job_id}: {len(failed)} batch(es) Failed: {failed}")
    by_id = {xml_text(b, "id"): b for b in infos}
    for batch_id in run.batch_ids:
        r = client.get(f"{BULK1_JOB}/{job_id}/batch/{batch_id}/result")
        check(r, 200, f"result of batch {batch_id}")
        if r.headers.get("content-type", "").split(";")[0].strip() != "text/csv":
            raise BenchError(f"batch {batch_id} result is {r.headers.get('content-type')!r}")
        run.results.append(r.content)
        b = by_id[batch_id]
        run.batch_counts.append(
            (xml_int(b, "numberRecordsProcessed"), xml_int(b, "numberRecordsFailed"))
        )
    run.seconds = time.perf_counter() - t0
    return run


@dataclass(frozen=True)
class ServerTable:
    """Where the bench reads the server's Contact table: its SQLite file or its PostgreSQL
    database (then the table is `contact`, found through the search path)."""

    sqlite: Path | None = None
    pg_url: str | None = None

    def count(self) -> int:
        if self.pg_url is not None:
            return pg_count(self.pg_url, pg_server_table(self.pg_url))
        assert self.sqlite is not None
        return count_rows(self.sqlite)

    def misplaced(self, pairs: Sequence[tuple[str, str]]) -> int:
        if self.pg_url is not None:
            return pg_misplaced_ids(self.pg_url, pairs)
        assert self.sqlite is not None
        return misplaced_ids(self.sqlite, pairs)


def count_rows(server_db: Path) -> int:
    con = sqlite3.connect(f"file:{server_db}?mode=ro", uri=True)
    try:
        (rows,) = con.execute(f"SELECT count(*) FROM {qi(OBJECT)}").fetchone()
    finally:
        con.close()
    return int(rows)


def misplaced_ids(server_db: Path, pairs: Sequence[tuple[str, str]]) -> int:
    """How many (Id, External_Id__c) pairs have no server row with that Id and that value."""
    con = sqlite3.connect(f"file:{server_db}?mode=ro", uri=True)
    try:
        con.execute("CREATE TEMP TABLE expect (id TEXT, ext TEXT)")
        con.executemany("INSERT INTO temp.expect VALUES (?, ?)", pairs)
        (missing,) = con.execute(
            f"SELECT count(*) FROM temp.expect e WHERE NOT EXISTS (SELECT 1 FROM "
            f"main.{qi(OBJECT)} c WHERE c.Id = e.id AND c.{qi(EXT_ID)} = e.ext)"
        ).fetchone()
    finally:
        con.close()
    return int(missing)


def verify_bulk1(
    report: Report,
    client: httpx.Client,
    run: Bulk1Run,
    numbers: Sequence[int],
    table: ServerTable | None,
    rows_before: int | None,
) -> None:
    """Check every batch result (not timed), the job counters and the server's Contact table."""
    what = f"bulk1 {run.mode.lower()}"
    expected = BULK1_BATCHES * BULK1_BATCH_ROWS
    rows = created = bad_ids = 0
    errors: list[str] = []
    pairs: list[tuple[str, str]] = []
    for k, (batch_id, data) in enumerate(zip(run.batch_ids, run.results, strict=True)):
        first_line = data.split(b"\n", 1)[0].rstrip(b"\r")
        if first_line != BULK1_RESULT_HEADER:
            report.note(f"{what}: batch {batch_id} result header is {first_line[:80]!r}")
        reader = csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
        next(reader, None)
        batch_rows = [row for row in reader if row]
        if len(batch_rows) != BULK1_BATCH_ROWS:
            raise BenchError(
                f"{what}: batch {batch_id} result has {len(batch_rows)} rows, "
                f"expected {BULK1_BATCH_ROWS}"
            )
        for j, row in enumerate(batch_rows):
            if len(row) != 4 or row[1] != "true":
                if len(errors) < 3:
                    errors.append(",".join(row))
                continue
            rows += 1
            created += row[2] == "true"
            bad_ids += len(row[0]) != 18 or not row[0].startswith("003")
            pairs.append((row[0], ext_id(numbers[k * BULK1_BATCH_ROWS + j])))
        processed, failed = run.batch_counts[k]
        if processed != BULK1_BATCH_ROWS or failed != 0:
            report.note(
                f"{what}: batch {batch_id} numberRecordsProcessed={processed}, "
                f"numberRecordsFailed={failed}"
            )
    if rows != expected:
        raise BenchError(
            f"{what}: {expected - rows} result rows are not Success true, e.g. {errors}"
        )
    if created != expected:
        report.note(f"{what}: Created true on {created} of {expected} result rows")
    if bad_ids:
        report.note(f"{what}: {bad_ids} result Ids are not 18-char 003... ids")
    if len({rid for rid, _ in pairs}) != len(pairs):
        report.note(f"{what}: the result Ids are not all distinct")
    r = client.get(f"{BULK1_JOB}/{run.job_id}")
    check(r, 200, f"get Bulk 1.0 job {run.job_id}")
    info = xml_root(r, "jobInfo", "get job")
    counters = {
        "state": xml_text(info, "state"),
        "numberBatchesCompleted": xml_int(info, "numberBatchesCompleted"),
        "numberBatchesTotal": xml_int(info, "numberBatchesTotal"),
        "numberRecordsProcessed": xml_int(info, "numberRecordsProcessed"),
        "numberRecordsFailed": xml_int(info, "numberRecordsFailed"),
    }
    wanted = {
        "state": "Closed",
        "numberBatchesCompleted": BULK1_BATCHES,
        "numberBatchesTotal": BULK1_BATCHES,
        "numberRecordsProcessed": expected,
        "numberRecordsFailed": 0,
    }
    if counters != wanted:
        report.note(f"{what}: job info {counters}, expected {wanted}")
    if table is None or rows_before is None:
        say(f"{what}: {rows} result rows ({created} created); server table not checked")
        return
    rows_after = table.count()
    misplaced = table.misplaced(pairs)
    say(
        f"{what}: {rows} result rows ({created} created); server {OBJECT} table "
        f"{rows_before} -> {rows_after} rows; {misplaced} result Ids not on their input row"
    )
    if misplaced:
        report.note(
            f"{what}: {misplaced} result Ids do not name the record of the input row "
            "at the same position"
        )
    if rows_after - rows_before != expected:
        raise BenchError(
            f"{what}: server {OBJECT} table grew by {rows_after - rows_before} rows, "
            f"expected {expected}"
        )


# ---------------------------------------------------------------------------------------------
# Raw SQLite baseline
# ---------------------------------------------------------------------------------------------


def qi(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def copy_ddl(server_db: Path) -> tuple[list[str], list[str]]:
    """CREATE statements of table Contact and its indexes; plus names of triggers (not copied)."""
    con = sqlite3.connect(f"file:{server_db}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL"
            " ORDER BY type <> 'table', rowid",
            (OBJECT,),
        ).fetchall()
    finally:
        con.close()
    ddl = [str(sql) for kind, _, sql in rows if kind in ("table", "index")]
    triggers = [str(name) for kind, name, _ in rows if kind == "trigger"]
    if not ddl or not ddl[0].upper().startswith("CREATE TABLE"):
        raise BenchError(f"no CREATE TABLE for {OBJECT} in {server_db}")
    return ddl, triggers


def filler_columns(con: sqlite3.Connection, supplied: Sequence[str]) -> dict[str, object]:
    """NOT NULL columns without a default that the bench does not supply: constant values."""
    fill: dict[str, object] = {}
    lower = {c.lower() for c in supplied}
    for _, name, decl, notnull, default, pk in con.execute(f"PRAGMA table_info({qi(OBJECT)})"):
        if not notnull or default is not None or pk or str(name).lower() in lower:
            continue
        decl = str(decl).upper()
        if any(t in decl for t in ("INT", "BOOL")):
            fill[str(name)] = 0
        elif any(t in decl for t in ("REAL", "FLOA", "DOUB", "NUM")):
            fill[str(name)] = 0.0
        elif str(name).endswith(("Date", "Modstamp")):
            fill[str(name)] = "2024-01-01T00:00:00.000+0000"
        elif str(name).endswith("Id"):
            fill[str(name)] = "005000000000001AAA"
        else:
            fill[str(name)] = ""
    return fill


def open_raw(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    return con


def conflict_target(con: sqlite3.Connection) -> str:
    """The ON CONFLICT target matching the unique index on External_Id__c (collation, WHERE)."""
    for _, name, unique, _, partial in con.execute(f"PRAGMA index_list({qi(OBJECT)})"):
        if not unique:
            continue
        cols = [r for r in con.execute(f"PRAGMA index_xinfo({qi(name)})") if r[5]]  # key cols
        if len(cols) != 1 or str(cols[0][2]).lower() != EXT_ID.lower():
            continue
        target = f"({qi(EXT_ID)} COLLATE {cols[0][4]})"
        if partial:
            (sql,) = con.execute("SELECT sql FROM sqlite_master WHERE name = ?", (name,)).fetchone()
            where = str(sql)[str(sql).upper().rindex(" WHERE ") :]
            target += where
        return target
    raise BenchError(f"no UNIQUE index on {OBJECT}.{EXT_ID} in the copied DDL")


def raw_load(
    con: sqlite3.Connection, csv_file: CsvFile, id_prefix: str, upsert: bool
) -> tuple[float, int]:
    """csv.reader + ONE executemany in one transaction; returns (seconds, rows)."""
    fill = filler_columns(con, ("Id", *COLUMNS))
    names = ["Id", *COLUMNS, *fill]
    sql = (
        f"INSERT INTO {qi(OBJECT)} ({', '.join(map(qi, names))})"
        f" VALUES ({', '.join('?' * len(names))})"
    )
    if upsert:
        sets = ", ".join(f"{qi(c)} = excluded.{qi(c)}" for c in COLUMNS if c != EXT_ID)
        sql += f" ON CONFLICT{conflict_target(con)} DO UPDATE SET {sets}"
    extra = tuple(fill.values())
    con.execute("EXPLAIN " + sql, ["x"] * len(names))  # fail early on a bad statement
    count = 0
    t0 = time.perf_counter()
    with csv_file.path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        if tuple(next(reader)) != COLUMNS:
            raise BenchError(f"unexpected header in {csv_file.path}")

        def params() -> Iterator[tuple[object, ...]]:
            nonlocal count
            for i, row in enumerate(reader, 1):
                count = i
                yield (f"{id_prefix}{i:013d}", *row, *extra)

        con.execute("BEGIN")
        con.executemany(sql, params())
        con.execute("COMMIT")
    return time.perf_counter() - t0, count


def compare_tables(raw_db: Path, server_db: Path) -> tuple[int, int, int]:
    """(raw rows, server rows, raw rows with no identical server row) over the 13 columns."""
    con = sqlite3.connect(f"file:{raw_db}?mode=ro", uri=True)
    try:
        con.execute("ATTACH DATABASE ? AS srv", (f"file:{server_db}?mode=ro",))
        cols = ", ".join(map(qi, COLUMNS))
        (raw_rows,) = con.execute(f"SELECT count(*) FROM main.{qi(OBJECT)}").fetchone()
        (srv_rows,) = con.execute(f"SELECT count(*) FROM srv.{qi(OBJECT)}").fetchone()
        (missing,) = con.execute(
            f"SELECT count(*) FROM (SELECT {cols} FROM main.{qi(OBJECT)}"
            f" EXCEPT SELECT {cols} FROM srv.{qi(OBJECT)})"
        ).fetchone()
    finally:
        con.close()
    return int(raw_rows), int(srv_rows), int(missing)


def sqlite_path(database: str | None, data_dir: Path) -> Path | None:
    if not database:
        return data_dir / "bulkforce.db"
    if database.startswith("sqlite:///"):
        return Path(database[len("sqlite:///") :])
    return None


# ---------------------------------------------------------------------------------------------
# PostgreSQL: fresh databases, the raw COPY baseline and the worker-scaling runs
# ---------------------------------------------------------------------------------------------

PG_RAW_SCHEMA = "bench_raw"  # the raw table lives beside the server's, in the same database
PG_COLUMNS = tuple(c.lower() for c in COLUMNS)  # the server's record columns are lower-case


def is_postgres(url: str | None) -> bool:
    return bool(url) and str(url).startswith(("postgresql:", "postgres:"))


def pg_url(admin_url: str, dbname: str) -> str:
    """`admin_url` with its database part replaced by `dbname`."""
    parts = urllib.parse.urlsplit(admin_url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + dbname))


def pg_connect(url: str, autocommit: bool = True) -> psycopg.Connection[tuple[Any, ...]]:
    import psycopg

    try:
        return psycopg.connect(url, autocommit=autocommit)
    except psycopg.Error as exc:
        raise BenchError(f"cannot connect to {url}: {str(exc).strip()}") from None


def pg_scalar(conn: psycopg.Connection[tuple[Any, ...]], query: Any, params: Any = ()) -> Any:
    row = conn.execute(query, params).fetchone()
    return None if row is None else row[0]


class PgDatabases:
    """Creates fresh `bench_<random>` databases through the admin database, drops them at the
    end (DROP DATABASE ... WITH (FORCE): a server killed mid-run may leave connections)."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.created: list[str] = []
        self._checkpoint_ok = True

    def create(self) -> tuple[str, str]:
        """(name, URL) of a new empty database."""
        from psycopg import sql

        name = f"bench_{secrets.token_hex(6)}"
        with pg_connect(self.admin_url) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.created.append(name)
        return name, pg_url(self.admin_url, name)

    def drop(self, name: str) -> None:
        from psycopg import sql

        with pg_connect(self.admin_url) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        self.created.remove(name)

    def drop_all(self) -> list[str]:
        """Drop every database still listed; returns the ones that could not be dropped."""
        import psycopg

        left: list[str] = []
        for name in list(self.created):
            try:
                self.drop(name)
            except (psycopg.Error, BenchError) as exc:
                say(f"could not drop database {name}: {exc}")
                left.append(name)
        return left

    def settle(self, url: str | None, report: Report) -> None:
        """Untimed, between timed phases: VACUUM ANALYZE the database just written (what
        autovacuum would otherwise do in the middle of the next phase) and CHECKPOINT (so the
        next phase does not pay for flushing the previous one's dirty pages)."""
        import psycopg

        t0 = time.perf_counter()
        if url is not None:
            with pg_connect(url) as conn:
                conn.execute("VACUUM (ANALYZE)")
        if self._checkpoint_ok:
            try:
                with pg_connect(self.admin_url) as conn:
                    conn.execute("CHECKPOINT")
            except psycopg.Error as exc:
                self._checkpoint_ok = False
                report.note(f"CHECKPOINT failed, phases are not separated: {exc}")
        say(f"settled: VACUUM (ANALYZE) + CHECKPOINT ({time.perf_counter() - t0:.1f}s)")


def pg_server_table(url: str) -> str:
    """The server's Contact table as PostgreSQL names it (through the search path)."""
    with pg_connect(url) as conn:
        name = pg_scalar(conn, "SELECT to_regclass(%s)::text", (OBJECT.lower(),))
    if name is None:
        raise BenchError(f"no table {OBJECT.lower()!r} in {url}: did the server create it?")
    return str(name)


def pg_count(url: str, table: str) -> int:
    from psycopg import sql

    with pg_connect(url) as conn:
        return int(pg_scalar(conn, sql.SQL("SELECT count(*) FROM {}").format(sql.SQL(table))))


def pg_misplaced_ids(url: str, pairs: Sequence[tuple[str, str]]) -> int:
    """How many (Id, External_Id__c) pairs have no server row with that Id and that value."""
    from psycopg import sql

    table = sql.SQL(pg_server_table(url))
    with pg_connect(url, autocommit=False) as conn, conn.cursor() as cur:
        cur.execute("CREATE TEMP TABLE expect (id text, ext text) ON COMMIT DROP")
        with cur.copy("COPY expect (id, ext) FROM STDIN") as copy:
            for pair in pairs:
                copy.write_row(pair)
        missing = pg_scalar(
            conn,
            sql.SQL(
                "SELECT count(*) FROM expect e WHERE NOT EXISTS (SELECT 1 FROM {} c "
                "WHERE c.id = e.id AND c.{} = e.ext)"
            ).format(table, sql.Identifier(EXT_ID.lower())),
        )
    return int(missing)


def pg_raw_table() -> Any:
    from psycopg import sql

    return sql.Identifier(PG_RAW_SCHEMA, OBJECT.lower())


def pg_make_raw_table(url: str) -> tuple[str, list[str], list[str]]:
    """Create bench_raw.contact with LIKE <server table> INCLUDING ALL (column types, NOT NULL,
    defaults, primary key and the unique index on external_id__c) while the server's table is
    still empty. Returns (server table, raw index definitions, server triggers, not copied)."""
    from psycopg import sql

    src = pg_server_table(url)
    with pg_connect(url) as conn:
        rows = int(pg_scalar(conn, sql.SQL("SELECT count(*) FROM {}").format(sql.SQL(src))))
        if rows:
            raise BenchError(f"server table {src} already has {rows} rows")
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(PG_RAW_SCHEMA)))
        conn.execute(
            sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL)").format(pg_raw_table(), sql.SQL(src))
        )
        indexes = [
            str(r[0])
            for r in conn.execute(
                "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = %s::regclass",
                (f"{PG_RAW_SCHEMA}.{OBJECT.lower()}",),
            )
        ]
        triggers = [
            str(r[0])
            for r in conn.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal",
                (src,),
            )
        ]
    return src, indexes, triggers


def pg_filler_columns(conn: psycopg.Connection[tuple[Any, ...]]) -> dict[str, object]:
    """NOT NULL columns without a default that the bench does not supply: constant values."""
    fill: dict[str, object] = {}
    supplied = {"id", *PG_COLUMNS}
    rows = conn.execute(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped AND attnotnull "
        "AND NOT atthasdef ORDER BY attnum",
        (f"{PG_RAW_SCHEMA}.{OBJECT.lower()}",),
    ).fetchall()
    for name, decl in rows:
        if name in supplied:
            continue
        if decl == "boolean":
            fill[name] = "false"
        elif decl.startswith(("integer", "bigint", "smallint", "numeric", "double", "real")):
            fill[name] = "0"
        elif decl.startswith(("timestamp", "date")):
            fill[name] = "2024-01-01T00:00:00Z" if decl.startswith("timestamp") else "2024-01-01"
        elif name.endswith("id"):
            fill[name] = "005000000000001AAA"
        else:
            fill[name] = ""
    return fill


def pg_conflict_target(conn: psycopg.Connection[tuple[Any, ...]]) -> str:
    """`(external_id__c)`, plus the index predicate if the unique index is partial."""
    rows = conn.execute(
        "SELECT a.attname, pg_get_expr(i.indpred, i.indrelid) FROM pg_index i "
        "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
        "WHERE i.indrelid = %s::regclass AND i.indisunique AND i.indnkeyatts = 1",
        (f"{PG_RAW_SCHEMA}.{OBJECT.lower()}",),
    ).fetchall()
    for column, predicate in rows:
        if column == EXT_ID.lower():
            return f"({column})" + (f" WHERE {predicate}" if predicate else "")
    raise BenchError(f"no UNIQUE index on {PG_RAW_SCHEMA}.{OBJECT.lower()}.{EXT_ID.lower()}")


def pg_raw_load(url: str, csv_file: CsvFile, id_prefix: str, upsert: bool) -> tuple[float, int]:
    """csv.reader + COPY (copy.write_row) in one transaction; for an upsert, COPY into a temp
    staging table then one INSERT ... ON CONFLICT (external_id__c) DO UPDATE.
    Returns (seconds, rows). Timed: parse + COPY (+ the INSERT) + commit."""
    from psycopg import sql

    raw = pg_raw_table()
    with pg_connect(url, autocommit=False) as conn:
        fill = pg_filler_columns(conn)
        target = pg_conflict_target(conn) if upsert else ""
        conn.commit()
        names = ["id", *PG_COLUMNS, *fill]
        cols = sql.SQL(", ").join(map(sql.Identifier, names))
        extra = tuple(fill.values())
        stage = sql.Identifier("bench_stage")
        count = 0
        t0 = time.perf_counter()
        with csv_file.path.open(newline="", encoding="utf-8") as f, conn.cursor() as cur:
            reader = csv.reader(f)
            if tuple(next(reader)) != COLUMNS:
                raise BenchError(f"unexpected header in {csv_file.path}")
            if upsert:
                cur.execute(
                    sql.SQL(
                        "CREATE TEMP TABLE {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP"
                    ).format(stage, raw)
                )
            dest = stage if upsert else raw
            with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(dest, cols)) as copy:
                write = copy.write_row
                for count, row in enumerate(reader, 1):
                    write((f"{id_prefix}{count:013d}", *row, *extra))
            if upsert:
                sets = sql.SQL(", ").join(
                    sql.SQL("{0} = excluded.{0}").format(sql.Identifier(c))
                    for c in PG_COLUMNS
                    if c != EXT_ID.lower()
                )
                cur.execute(
                    sql.SQL(
                        "INSERT INTO {raw} ({cols}) SELECT {cols} FROM {stage} "
                        "ON CONFLICT {target} DO UPDATE SET {sets}"
                    ).format(raw=raw, cols=cols, stage=stage, target=sql.SQL(target), sets=sets)
                )
        conn.commit()
        return time.perf_counter() - t0, count


def pg_compare_tables(url: str, server_table: str) -> tuple[int, int, int]:
    """(raw rows, server rows, raw rows with no identical server row) over the 13 columns."""
    from psycopg import sql

    cols = sql.SQL(", ").join(map(sql.Identifier, PG_COLUMNS))
    srv = sql.SQL(server_table)
    with pg_connect(url) as conn:
        raw_rows = pg_scalar(conn, sql.SQL("SELECT count(*) FROM {}").format(pg_raw_table()))
        srv_rows = pg_scalar(conn, sql.SQL("SELECT count(*) FROM {}").format(srv))
        missing = pg_scalar(
            conn,
            sql.SQL(
                "SELECT count(*) FROM (SELECT {cols} FROM {raw} EXCEPT SELECT {cols} FROM {srv}) d"
            ).format(cols=cols, raw=pg_raw_table(), srv=srv),
        )
    return int(raw_rows), int(srv_rows), int(missing)


def pg_check_contents(report: Report, url: str, server_table: str, what: str) -> None:
    t0 = time.perf_counter()
    raw_rows, srv_rows, missing = pg_compare_tables(url, server_table)
    say(
        f"{what}: raw table {raw_rows} rows, server table {srv_rows} rows, "
        f"{missing} raw rows without an identical server row ({time.perf_counter() - t0:.1f}s)"
    )
    if raw_rows != srv_rows or missing:
        report.note(f"{what}: server table differs from the raw load ({missing} rows differ)")


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


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------

T_START = time.perf_counter()


def say(msg: str) -> None:
    print(f"[{time.perf_counter() - T_START:7.1f}s] {msg}", flush=True)


def rate(rows: int, seconds: float) -> float:
    return rows / seconds if seconds > 0 else 0.0


def mb(nbytes: float) -> float:
    return nbytes / 1_000_000


@dataclass
class Phase:
    rows: int
    server_seconds: float = 0.0
    raw_seconds: float | None = None

    @property
    def server_rps(self) -> float:
        return rate(self.rows, self.server_seconds)

    @property
    def raw_rps(self) -> float | None:
        return None if self.raw_seconds is None else rate(self.rows, self.raw_seconds)

    @property
    def ratio(self) -> float | None:
        raw = self.raw_rps
        return self.server_rps / raw if raw else None


@dataclass
class Report:
    backend: str = "sqlite"  # or "postgresql"
    insert: Phase | None = None
    upsert: Phase | None = None
    upsert_updates: int = 0
    bulk1: dict[str, Phase] = field(default_factory=dict)  # "parallel" / "serial"
    latency_ms: list[float] = field(default_factory=list)
    peak_rss: int = 0
    phase_rss: dict[str, int] = field(default_factory=dict)
    rss_trace: list[tuple[float, str, int]] = field(default_factory=list)
    scaling: dict[str, Phase] = field(default_factory=dict)  # worker processes -> N-row insert
    scaling_jobs: list[int] = field(default_factory=list)  # rows of each concurrent job
    notes: list[str] = field(default_factory=list)

    def note(self, msg: str) -> None:
        self.notes.append(msg)
        say(f"NOTE: {msg}")


def verdict(ok: bool) -> str:
    return "ok" if ok else "BELOW TARGET"


def summary(report: Report, n: int, complete: bool) -> str:
    lines = ["", "=" * 100, "summary" if complete else "summary (INCOMPLETE: see the error above)"]

    def phase_line(label: str, phase: Phase, target: float) -> str:
        raw = phase.raw_rps
        ratio = phase.ratio
        raw_txt = f"raw {raw:,.0f} rec/s" if raw is not None else "raw n/a"
        ratio_txt = (
            f"ratio {ratio:.2f} (target >= {target:.2f}, {verdict(ratio >= target)})"
            if ratio is not None
            else f"ratio n/a (target >= {target:.2f})"
        )
        return f"{label}server {phase.server_rps:,.0f} rec/s  {raw_txt}  {ratio_txt}"

    def pg_line(label: str, phase: Phase) -> str:
        raw, ratio = phase.raw_rps, phase.ratio
        return (
            f"{label}server {phase.server_rps:,.0f} rec/s  "
            + (f"raw COPY {raw:,.0f} rec/s  " if raw is not None else "raw n/a  ")
            + (f"ratio {ratio:.2f}" if ratio is not None else "ratio n/a")
        )

    pg = report.backend == "postgresql"
    if report.insert:
        if pg:
            lines.append(pg_line(f"pg insert  N={n}  ", report.insert))
        else:
            lines.append(phase_line(f"insert  N={n}  ", report.insert, TARGETS["insert"]))
    if report.upsert:
        updates = f"({report.upsert_updates} updates)"
        if pg:
            label = f"pg upsert  M={report.upsert.rows} into {n} {updates}  "
            lines.append(pg_line(label, report.upsert))
        else:
            label = f"upsert  M={report.upsert.rows} into {n} {updates}  "
            lines.append(phase_line(label, report.upsert, TARGETS["upsert"]))
    if report.scaling:
        first = next(iter(report.scaling.values())).server_rps
        rates = "   ".join(
            f"{k}: {v.server_rps:,.0f} rec/s" + (f" ({v.server_rps / first:.2f}x)" if first else "")
            for k, v in report.scaling.items()
        )
        sizes = sorted(set(report.scaling_jobs))
        size = str(sizes[0]) if len(sizes) == 1 else f"{sizes[0]}-{sizes[-1]}"
        lines.append(f"pg workers {rates}  ({len(report.scaling_jobs)} jobs of {size}, concurrent)")
    if report.bulk1:
        rates = "  ".join(f"{k} {v.server_rps:,.0f} rec/s" for k, v in report.bulk1.items())
        base = f"  (2.0 insert {report.insert.server_rps:,.0f} rec/s)" if report.insert else ""
        lines.append(f"bulk1   {BULK1_BATCHES} x {BULK1_BATCH_ROWS}  {rates}{base}")
    peak = mb(report.peak_rss)
    lines.append(
        f"peak RSS {peak:.0f} MB (target <= {TARGETS['rss_mb']:.0f}, "
        f"{verdict(peak <= TARGETS['rss_mb'])})  by phase: "
        + ", ".join(f"{k} {mb(v):.0f}" for k, v in report.phase_rss.items())
        + ("  (bulkforce processes only, not PostgreSQL's)" if pg else "")
    )
    if report.latency_ms:
        med = statistics.median(report.latency_ms)
        worst = max(report.latency_ms)
        lines.append(
            f"1-record job latency median {med:.0f} ms, max {worst:.0f} ms "
            f"(target <= {TARGETS['latency_ms']:.0f}, {verdict(worst <= TARGETS['latency_ms'])})"
        )
    for msg in report.notes:
        lines.append(f"note: {msg}")
    lines.append("=" * 100)
    return "\n".join(lines)


def verify_run(
    report: Report,
    run: JobRun,
    header: list[str],
    expected_rows: int,
    expected_created: int,
) -> None:
    ok = run.success_files
    scan = scan_results(ok, "sf__Id", header)
    failed = scan_results(run.failed_files, "sf__Id", header)
    say(
        f"{run.operation}: job info processed={run.processed} failed={run.failed}; "
        f"successfulResults {scan.rows} rows ({scan.created} created); "
        f"failedResults {failed.rows} rows"
    )
    if not scan.headers_ok or not failed.headers_ok:
        report.note(f"{run.operation}: result CSV header is not sf__ columns + uploaded header")
    if scan.bad_ids:
        report.note(f"{run.operation}: {scan.bad_ids} sf__Id values are not 18-char 003... ids")
    if scan.created != expected_created:
        report.note(
            f"{run.operation}: sf__Created true on {scan.created} rows, expected {expected_created}"
        )
    if run.processed != expected_rows or run.failed != failed.rows:
        report.note(
            f"{run.operation}: numberRecordsProcessed={run.processed}, "
            f"numberRecordsFailed={run.failed}, failedResults rows={failed.rows}"
        )
    if failed.rows:
        raise BenchError(
            f"{run.operation}: {failed.rows} records failed, e.g. {failed.errors}; "
            f"see {run.failed_files[0]}"
        )
    if scan.rows != expected_rows:
        raise BenchError(
            f"{run.operation}: successfulResults has {scan.rows} rows, expected {expected_rows}"
        )


def check_contents(report: Report, raw_db: Path, server_db: Path | None, what: str) -> None:
    if server_db is None:
        return
    t0 = time.perf_counter()
    raw_rows, srv_rows, missing = compare_tables(raw_db, server_db)
    say(
        f"{what}: raw table {raw_rows} rows, server table {srv_rows} rows, "
        f"{missing} raw rows without an identical server row ({time.perf_counter() - t0:.1f}s)"
    )
    if raw_rows != srv_rows or missing:
        report.note(f"{what}: server table differs from the raw load ({missing} rows differ)")


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
                cpu.start()
                seconds, count = pg_raw_load(db_url, ins, "003R0", upsert=False)
                cpu.stop(report, "raw insert")
                if count != n:
                    raise BenchError(f"raw insert loaded {count} rows, expected {n}")
                report.insert.raw_seconds = seconds
                say(f"raw insert: {seconds:.2f}s, {rate(n, seconds):,.0f} rec/s")
                if not args.skip_verify:
                    pg_check_contents(report, db_url, pg_table, "after insert")
            elif server_db is not None and server_db.exists():
                table = ServerTable(sqlite=server_db)
                ddl, triggers = copy_ddl(server_db)
                if triggers:
                    report.note(f"server has triggers on {OBJECT} (not copied): {triggers}")
                raw = open_raw(raw_db)
                try:
                    for stmt in ddl:
                        raw.execute(stmt)
                    fill = filler_columns(raw, ("Id", *COLUMNS))
                    if fill:
                        report.note(f"raw load also fills NOT NULL columns {sorted(fill)}")
                    say(f"raw insert: copied {len(ddl)} DDL statement(s); loading {n} rows")
                    cpu.start()
                    seconds, count = raw_load(raw, ins, "003R0", upsert=False)
                    cpu.stop(report, "raw insert")
                finally:
                    raw.close()
                if count != n:
                    raise BenchError(f"raw insert loaded {count} rows, expected {n}")
                report.insert.raw_seconds = seconds
                say(f"raw insert: {seconds:.2f}s, {rate(n, seconds):,.0f} rec/s")
                if not args.skip_verify:
                    check_contents(report, raw_db, server_db, "after insert")
            else:
                report.note(f"no SQLite database at {server_db}: raw baseline skipped")
                server_db = None

            # 2. upsert ---------------------------------------------------------------------
            if ups is not None:
                if dbs is not None:
                    dbs.settle(db_url, report)
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
                    cpu.start()
                    seconds, count = pg_raw_load(db_url, ups, "003R1", upsert=True)
                    cpu.stop(report, "raw upsert")
                    if count != m:
                        raise BenchError(f"raw upsert loaded {count} rows, expected {m}")
                    report.upsert.raw_seconds = seconds
                    say(f"raw upsert: {seconds:.2f}s, {rate(m, seconds):,.0f} rec/s")
                    if not args.skip_verify:
                        pg_check_contents(report, db_url, pg_table, "after upsert")
                elif server_db is not None:
                    raw = open_raw(raw_db)
                    try:
                        cpu.start()
                        seconds, count = raw_load(raw, ups, "003R1", upsert=True)
                        cpu.stop(report, "raw upsert")
                    finally:
                        raw.close()
                    report.upsert.raw_seconds = seconds
                    say(f"raw upsert: {seconds:.2f}s, {rate(m, seconds):,.0f} rec/s")
                    if not args.skip_verify:
                        check_contents(report, raw_db, server_db, "after upsert")

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
                server.sampler.set_phase("latency")
                head = ins.header()
                polls: list[int] = []
                for i in range(args.latency_jobs):
                    ms, p = one_record_job(client, head, i + 1)
                    report.latency_ms.append(ms)
                    polls.append(p)
                say(
                    "1-record jobs (ms): "
                    + " ".join(f"{x:.1f}" for x in report.latency_ms)
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


def main(argv: Sequence[str] | None = None) -> int:
    flag = argparse.ArgumentParser(add_help=False)
    flag.add_argument("--relationship", action="store_true")
    picked, rest = flag.parse_known_args(argv)
    if picked.relationship:
        return relationship_main(rest)
    args = parse_args(argv)
    base = args.work_dir
    if base is not None:
        base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bulkforce-bench-", dir=base))
    report = Report()
    status = 0
    dbs = PgDatabases(args.database) if is_postgres(args.database) else None
    try:
        run_bench(args, work, report, dbs)
    except (BenchError, httpx.HTTPError) as exc:
        say(f"ERROR: {exc if isinstance(exc, BenchError) else f'HTTP failure: {exc!r}'}")
        log = work / "server.log"
        if log.exists():
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
            print(f"--- server log tail ({log}) ---\n{tail}\n---", flush=True)
        status = 1
    except KeyboardInterrupt:
        say("interrupted")
        status = 130
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
        for name in ("insert", "upsert"):
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
    if args.keep:
        say(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return status


# ---------------------------------------------------------------------------------------------
# --relationship: child upsert resolving `Account.External_Id__c` against N accounts (issue #5)
# ---------------------------------------------------------------------------------------------

RELATIONSHIP_SCHEMA = {
    "sobjects": [
        {"name": name, "fields": [{"name": EXT_ID, "type": "string", "length": 80,
                                   "externalId": True, "unique": True}]}
        for name in ("Account", "Contact")
    ]
}  # fmt: skip


def relationship_job(
    client: httpx.Client, obj: str, operation: str, body: bytes, timeout: float
) -> tuple[float, Any]:
    """One Bulk 2.0 job, create to JobComplete: (seconds, final job info)."""
    spec = {"object": obj, "operation": operation, "contentType": "CSV"}
    if operation == "upsert":
        spec["externalIdFieldName"] = EXT_ID
    t0 = time.perf_counter()
    r = client.post("", json=spec)
    check(r, 200, f"create {obj} {operation} job")
    job_id = r.json()["id"]
    r = client.put(f"/{job_id}/batches", content=body, headers={"Content-Type": "text/csv"})
    check(r, 201, f"upload to {job_id}")
    check(client.patch(f"/{job_id}", json={"state": "UploadComplete"}), 200, f"close {job_id}")
    info = wait_complete(client, job_id, 0.02, timeout)
    return time.perf_counter() - t0, info


def relationship_main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(
        description="Child upsert with an Account.External_Id__c relationship column."
    )
    p.add_argument("--rows", type=int, default=100_000, help="accounts and contacts (100k)")
    p.add_argument("--database", help="sqlite:///FILE, or postgresql://.../ADMIN_DB (a fresh DB)")
    p.add_argument("--work-dir", type=Path, help="parent of the temp dir (default: system tmp)")
    p.add_argument("--job-timeout", type=float, default=3600, help="max seconds per job")
    p.add_argument("--seed", type=int, default=20240501, help="data generator seed")
    args = p.parse_args(argv)
    n = args.rows
    work = Path(tempfile.mkdtemp(prefix="bulkforce-bench-rel-", dir=args.work_dir))
    schema = work / "schema.json"
    schema.write_text(json.dumps(RELATIONSHIP_SCHEMA))
    dbs = PgDatabases(args.database) if is_postgres(args.database) else None
    database = dbs.create()[1] if dbs is not None else args.database
    server = Server(work / "data", schema, database, [], work / "server.log")
    rng = random.Random(args.seed)
    parents = [f"ACC{i:08d}" for i in range(n)]
    rng.shuffle(parents)  # random index order, as real keys arrive
    accounts = "Name,External_Id__c\n" + "".join(f"Account {k},{k}\n" for k in parents)
    links = [rng.randrange(n) for _ in range(n)]
    contacts = "External_Id__c,LastName,Account.External_Id__c\n" + "".join(
        f"CON{i:08d},Child {i},{parents[j]}\n" for i, j in enumerate(links)
    )
    status = 0
    try:
        server.start(60)
        with httpx.Client(
            base_url=server.ingest_url, headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=1800,
        ) as client:  # fmt: skip
            secs, info = relationship_job(client, "Account", "insert", accounts.encode(), 3600)
            say(f"parents: {n:,} Account inserts in {secs:.1f}s ({rate(n, secs):,.0f} rec/s)")
            for label in ("child upsert (all inserts)", "child upsert (all updates)"):
                secs, info = relationship_job(
                    client, "Contact", "upsert", contacts.encode(), args.job_timeout
                )
                failed = int(info["numberRecordsFailed"])
                say(f"{label}: {n:,} Contacts with Account.External_Id__c in {secs:.1f}s "
                    f"({rate(n, secs):,.0f} rec/s), {failed} failed")  # fmt: skip
                if failed:
                    status = 1
        db = None if dbs is not None else sqlite_path(args.database, work / "data")
        if db is not None:
            expected = {f"CON{i:08d}": parents[j] for i, j in enumerate(links)}
            with sqlite3.connect(db) as con:
                got = dict(
                    con.execute(
                        'SELECT c."External_Id__c", a."External_Id__c" FROM "Contact" c '
                        'JOIN "Account" a ON a."Id" = c."AccountId"'
                    )
                )
            wrong = sum(got.get(k) != v for k, v in expected.items())
            say(f"contacts whose AccountId is not the named parent: {wrong}")
            status = status or (1 if wrong else 0)
    except (BenchError, httpx.HTTPError) as exc:
        say(f"ERROR: {exc}")
        say(server.log_tail())
        status = 1
    finally:
        say(f"server {server.stop()}")
        if dbs is not None:
            dbs.drop_all()
        shutil.rmtree(work, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
