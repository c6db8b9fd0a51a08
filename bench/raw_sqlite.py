"""The raw SQLite baseline: the same rows loaded with csv.reader + executemany into an
identical table, and the comparison of both tables."""

from __future__ import annotations

import csv
import datetime as dt
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from bench.common import COLUMNS, EXT_ID, OBJECT
from bench.data import CsvFile
from bench.procs import BenchError
from bench.report import Report, say


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


# What the server stamps: every record it creates gets all five, every update the last three.
STAMP_USER = "005000000000001AAA"
CREATE_STAMPS = ("CreatedDate", "CreatedById", "LastModifiedDate", "LastModifiedById",
                 "SystemModstamp")  # fmt: skip
UPDATE_STAMPS = ("LastModifiedDate", "LastModifiedById", "SystemModstamp")


def server_now() -> str:
    """The current time as the server stores a stamp."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def raw_load(
    con: sqlite3.Connection, csv_file: CsvFile, id_prefix: str, upsert: bool,
    stamp: str | None = None,
) -> tuple[float, int]:  # fmt: skip
    """csv.reader + ONE executemany in one transaction; returns (seconds, rows).

    `stamp`: also set the audit columns to that time, as the server must (all five on new
    rows; LastModifiedDate, LastModifiedById, SystemModstamp on updated ones). Like the server,
    the statement carries them as literals, not parameters."""
    stamps = {
        c: STAMP_USER if c.endswith("ById") else stamp for c in (CREATE_STAMPS if stamp else ())
    }
    fill = filler_columns(con, ("Id", *COLUMNS, *stamps))
    names = ["Id", *COLUMNS, *fill, *stamps]
    marks = ["?"] * (len(names) - len(stamps)) + [f"'{v}'" for v in stamps.values()]
    sql = f"INSERT INTO {qi(OBJECT)} ({', '.join(map(qi, names))}) VALUES ({', '.join(marks)})"
    if upsert:
        sets = ", ".join(f"{qi(c)} = excluded.{qi(c)}" for c in COLUMNS if c != EXT_ID)
        if stamp:
            sets += "".join(f", {qi(c)} = excluded.{qi(c)}" for c in UPDATE_STAMPS)
        sql += f" ON CONFLICT{conflict_target(con)} DO UPDATE SET {sets}"
    extra = tuple(fill.values())
    con.execute("EXPLAIN " + sql, ["x"] * marks.count("?"))  # fail early on a bad statement
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
