"""Progress lines, measured phases, the report and its summary."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

from bench.common import BULK1_BATCH_ROWS, BULK1_BATCHES, TARGETS

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
    # the same insert (PostgreSQL) and upsert (SQLite) against a raw baseline that also sets
    # the audit columns, owner and field defaults, as the server must
    insert_stamped: Phase | None = None
    upsert_stamped: Phase | None = None
    bulk1: dict[str, Phase] = field(default_factory=dict)  # "parallel" / "serial"
    latency_ms: list[float] = field(default_factory=list)  # create → JobComplete, server stamp
    latency_seen_ms: list[float] = field(default_factory=list)  # create → the GET that saw it
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
    stamped = report.insert_stamped
    if stamped and stamped.raw_rps is not None and stamped.ratio is not None:
        lines.append(
            f"        vs a stamped raw COPY (also sets the audit columns, owner and defaults, as"
            f" the server must; no target): raw {stamped.raw_rps:,.0f} rec/s  ratio {stamped.ratio:.2f}"
        )
    if report.upsert:
        updates = f"({report.upsert_updates} updates)"
        if pg:
            label = f"pg upsert  M={report.upsert.rows} into {n} {updates}  "
            lines.append(pg_line(label, report.upsert))
        else:
            label = f"upsert  M={report.upsert.rows} into {n} {updates}  "
            lines.append(phase_line(label, report.upsert, TARGETS["upsert"]))
    stamped = report.upsert_stamped
    if stamped and stamped.raw_rps is not None and stamped.ratio is not None:
        lines.append(
            f"        vs a stamped raw upsert (also sets the audit columns, as the server must;"
            f" no target): raw {stamped.raw_rps:,.0f} rec/s  ratio {stamped.ratio:.2f}"
        )
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
        seen = report.latency_seen_ms
        lines.append(
            f"1-record job create→JobComplete median {med:.1f} ms, max {worst:.1f} ms "
            f"(targets median <= {TARGETS['latency_ms']:.0f}, max <= "
            f"{TARGETS['latency_max_ms']:.0f}: "
            f"{verdict(med <= TARGETS['latency_ms'] and worst <= TARGETS['latency_max_ms'])}); "
            f"seen by a GET: median {statistics.median(seen):.1f}, max {max(seen):.1f}"
        )
    for msg in report.notes:
        lines.append(f"note: {msg}")
    lines.append("=" * 100)
    return "\n".join(lines)
