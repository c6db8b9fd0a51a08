"""Server and worker processes under measurement: start/stop, peak RSS and CPU sampling."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx
import psutil  # also imported by the RSS sampler child process

from bench.common import API_VERSION, REPO_DIR, TOKEN
from bench.report import Report, say


class BenchError(RuntimeError):
    """The run could not be measured."""


def make_work_dir(base: Path | None, prefix: str) -> Path:
    """A fresh temp dir for a bench run (CSV files, databases, the server log), under `base`."""
    if base is not None:
        base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=base))


def run_guarded(work: Path, run: Callable[[], None]) -> int:
    """Exit status of `run`: 0; 1 after a bench or HTTP failure, shown with the tail of the
    server log in `work`; 130 when interrupted."""
    try:
        run()
    except (BenchError, httpx.HTTPError) as exc:
        say(f"ERROR: {exc if isinstance(exc, BenchError) else f'HTTP failure: {exc!r}'}")
        log = work / "server.log"
        if log.exists():
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
            print(f"--- server log tail ({log}) ---\n{tail}\n---", flush=True)
        return 1
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    return 0


def remove_work_dir(work: Path, keep: bool) -> None:
    if keep:
        say(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


def settle_disk() -> None:
    """Untimed, before each timed phase: write out the OS's dirty pages (os.sync), so that a
    phase does not share the disk with the writeback of what came before it: the generated
    CSV files (~200 MB), the last phase's database or results."""
    t0 = time.perf_counter()
    os.sync()
    say(f"settled: sync ({time.perf_counter() - t0:.1f}s)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# The sampler runs as `python -c SAMPLER_CODE PID OUT INTERVAL`: a thread in this process would
# be starved by the GIL while the raw baseline and the checks run (gaps of 0.5 s were seen) and
# would steal time from them. It writes "monotonic-seconds rss-bytes" lines until its stdin
# closes. The tree's members are looked up every TREE_SECONDS only: finding a process's
# children reads every process on the machine, and doing it every 50 ms cost ~3 CPU-s per
# 40 s phase, taken from the two cores the server shares with PostgreSQL. A child lives
# far longer than that (the workers, a large job's preparing process).
SAMPLER_CODE = """
import contextlib, select, sys, time
import psutil
pid, out, interval = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
TREE_SECONDS = 0.5
procs, found = [], 0.0
def tree():
    global procs, found
    if time.monotonic() - found >= TREE_SECONDS:
        found = time.monotonic()
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            procs = []
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

    This run is the bench process and its descendants (server and its children, workers,
    sampler) plus the PostgreSQL processes whose title names one of `markers` (our databases)
    or that serve every database (WAL writer, checkpointer, ...). Everything else, e.g. a test suite running
    at the same time, competes for the same cores and makes the numbers low and noisy. Both
    are lower bounds: a process that ends within the phase is not counted, except PostgreSQL
    backends, through the postmaster's children's times: those of other databases too, and a
    backend that started before the phase and ends within it with all its CPU.
    """

    def __init__(self) -> None:
        self.markers: list[str] = []
        self._before: dict[tuple[int, float], tuple[float, str, str]] = {}
        self._t0 = 0.0

    def _snapshot(self) -> dict[tuple[int, float], tuple[float, str, str]]:
        """(CPU seconds so far, kind, title) of every process, by (pid, start time); kind is
        "other" for processes that are not this run's."""
        procs: dict[int, tuple[int, str, float, float]] = {}
        reaped: dict[int, float] = {}  # CPU of each process's children that have exited
        attrs = ["pid", "ppid", "cmdline", "cpu_times", "create_time"]
        for proc in psutil.process_iter(attrs):
            info = proc.info
            times = info.get("cpu_times")
            if times is None:
                continue
            title = " ".join(info.get("cmdline") or [])
            cpu = float(times.user + times.system)
            pid = int(info["pid"])
            procs[pid] = (int(info["ppid"] or 0), title, float(info.get("create_time") or 0.0), cpu)
            reaped[pid] = float(times.children_user + times.children_system)
        # The postmaster: the parent of the "postgres: …" processes. Backends that exit within
        # the phase (the raw load's, autovacuum workers) leave their CPU to it as it reaps
        # them; counted from its children's times (before, the raw COPY's backend was lost and
        # the raw insert showed 0.1 CPU-s of PostgreSQL). A backend in the middle of exiting
        # is in neither: stop() waits for that.
        postmasters = {pp for pp, title, _, _ in procs.values() if title.startswith("postgres:")}
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
            if pid in postmasters:
                kind = "PostgreSQL"
                cpu += reaped[pid]
            elif not title and "postgres" in parent:
                kind = "PostgreSQL"  # a backend exiting: e.g. the raw load's, just closed
            elif title.startswith("postgres:"):
                mine = any(m in title for m in self.markers) or any(k in title for k in PG_SHARED)
                kind = "PostgreSQL" if mine else "other"
            elif pid == me:
                kind = "client"
            elif not ours:
                kind = "other"
            elif "bulkforce worker" in title or "bulkforce.workerproc" in title:
                kind = "workers"
            elif "bulkforce serve" in title or "bulkforce.prepare_proc" in title:
                kind = "server"  # with the child that prepares a large SQLite job's batches
            else:
                kind = "sampler"
            out[(pid, created)] = (cpu, kind, title or f"pid {pid}")
        return out

    def start(self) -> None:
        self._before = self._snapshot()
        self._t0 = time.perf_counter()

    def stop(self, report: Report, what: str) -> None:
        elapsed = time.perf_counter() - self._t0
        time.sleep(0.3)  # a backend closed just now: exited and reaped, its CPU the postmaster's
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
