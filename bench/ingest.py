#!/usr/bin/env python3
"""Bulk API 2.0 ingest benchmark: bulkforce over HTTP against a raw SQLite baseline.

Generates N Contact-like rows, loads them with a Bulk 2.0 insert job through a real
`bulkforce serve` process, loads the same CSV straight into SQLite (csv.reader + one
executemany into an identical table), repeats both for an upsert on External_Id__c, times
20 one-record jobs, and prints records/s, server/raw ratios, peak server RSS and latency.

It is a measurement, not a test: it exits 0 whatever the numbers are, and non-zero only
when the run could not be measured (server did not start, a job failed, wrong row counts).

    python bench/ingest.py                       # 1M-row insert, 100k-row upsert
    python bench/ingest.py --rows 20000 --upsert-rows 5000 --keep

See bench/README.md for what every number means.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil  # noqa: F401  (fail early: the RSS sampler child process imports it)

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
        self.sampler = RssSampler(self.proc.pid, self.log_path.with_name("rss.txt"))
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
        if self.proc is None:
            return "never started"
        if self.proc.poll() is not None:
            return f"had already exited with code {self.proc.returncode}"
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return "ignored SIGTERM for 30 s and was killed"
        code = self.proc.returncode
        return "stopped" if code in (0, -signal.SIGTERM) else f"exit code {code} after SIGTERM"


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
    insert: Phase | None = None
    upsert: Phase | None = None
    upsert_updates: int = 0
    latency_ms: list[float] = field(default_factory=list)
    peak_rss: int = 0
    phase_rss: dict[str, int] = field(default_factory=dict)
    rss_trace: list[tuple[float, str, int]] = field(default_factory=list)
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

    if report.insert:
        lines.append(phase_line(f"insert  N={n}  ", report.insert, TARGETS["insert"]))
    if report.upsert:
        label = f"upsert  M={report.upsert.rows} into {n} ({report.upsert_updates} updates)  "
        lines.append(phase_line(label, report.upsert, TARGETS["upsert"]))
    peak = mb(report.peak_rss)
    lines.append(
        f"peak RSS {peak:.0f} MB (target <= {TARGETS['rss_mb']:.0f}, "
        f"{verdict(peak <= TARGETS['rss_mb'])})  by phase: "
        + ", ".join(f"{k} {mb(v):.0f}" for k, v in report.phase_rss.items())
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


def run_bench(args: argparse.Namespace, work: Path, report: Report) -> None:
    n: int = args.rows
    m: int = min(args.upsert_rows, 2 * n)
    do_upsert = not args.skip_upsert and m > 0

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
    server = Server(data_dir, args.schema, args.database, server_args, work / "server.log")
    server_db = sqlite_path(args.database, data_dir)
    raw_db = work / "raw.db"
    results_dir = work / "results"
    results_dir.mkdir()
    timeout = httpx.Timeout(connect=10, read=args.http_timeout, write=args.http_timeout, pool=10)
    say(f"starting server: {' '.join(server.cmd)}")
    try:
        server.start(args.startup_timeout)
        assert server.sampler is not None
        say(f"server ready at {server.url} (pid {server.proc.pid if server.proc else '?'})")
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
            run = run_job(
                client, "insert", ins, parts, results_dir, args.poll_interval, args.job_timeout
            )
            report.insert = Phase(n, run.seconds)
            say(f"server insert: {run.seconds:.2f}s, {report.insert.server_rps:,.0f} rec/s")
            server.sampler.set_phase("idle")
            verify_run(report, run, header, n, n)

            if server_db is not None and server_db.exists():
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
                    seconds, count = raw_load(raw, ins, "003R0", upsert=False)
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
                server.sampler.set_phase("upsert")
                say(f"server upsert: {m} rows ({updates} updates, {m - updates} inserts)")
                run = run_job(
                    client,
                    "upsert",
                    ups,
                    plan_parts(ups, max_bytes),
                    results_dir,
                    args.poll_interval,
                    args.job_timeout,
                )
                report.upsert = Phase(m, run.seconds)
                report.upsert_updates = updates
                say(f"server upsert: {run.seconds:.2f}s, {report.upsert.server_rps:,.0f} rec/s")
                server.sampler.set_phase("idle")
                verify_run(report, run, header, m, m - updates)
                if server_db is not None:
                    raw = open_raw(raw_db)
                    try:
                        seconds, count = raw_load(raw, ups, "003R1", upsert=True)
                    finally:
                        raw.close()
                    report.upsert.raw_seconds = seconds
                    say(f"raw upsert: {seconds:.2f}s, {rate(m, seconds):,.0f} rec/s")
                    if not args.skip_verify:
                        check_contents(report, raw_db, server_db, "after upsert")

            # 3. latency --------------------------------------------------------------------
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


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Bulk 2.0 ingest benchmark: bulkforce over HTTP vs. raw SQLite."
    )
    p.add_argument("--rows", type=int, default=1_000_000, help="insert rows N (default 1M)")
    p.add_argument("--upsert-rows", type=int, default=100_000, help="upsert rows M (100k)")
    p.add_argument("--skip-upsert", action="store_true", help="skip the upsert case")
    p.add_argument("--latency-jobs", type=int, default=20, help="one-record jobs (default 20)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (CSV, DBs, log)")
    p.add_argument("--database", help="passed to the server as --database URL (default: SQLite)")
    p.add_argument("--schema", type=Path, default=DEFAULT_SCHEMA, help="server --schema file")
    p.add_argument(
        "--server-arg", action="append", default=[], help="extra server argument (repeatable)"
    )
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
    if not args.schema.is_file():
        p.error(f"schema file not found: {args.schema}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    base = args.work_dir
    if base is not None:
        base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bulkforce-bench-", dir=base))
    report = Report()
    status = 0
    try:
        run_bench(args, work, report)
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
        data.update(rows=args.rows, status=status)
        args.json.write_text(json.dumps(data, indent=2))
    if args.keep:
        say(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
