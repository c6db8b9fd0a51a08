"""PostgreSQL: fresh databases, the raw COPY baseline and table comparisons."""

from __future__ import annotations

import csv
import secrets
import time
import urllib.parse
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: only --database postgresql://... needs psycopg
    import psycopg

from bench.common import COLUMNS, EXT_ID, OBJECT
from bench.data import CsvFile
from bench.procs import BenchError, settle_disk
from bench.report import Report, say

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

        settle_disk()
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


def pg_server_constants(
    conn: psycopg.Connection[tuple[Any, ...]], server_table: str
) -> dict[str, object]:
    """The columns the server set on its first stored record beyond the uploaded ones (audit
    stamps, owner, field defaults), with that record's values."""
    from psycopg import sql

    cur = conn.execute(sql.SQL("SELECT * FROM {} LIMIT 1").format(sql.SQL(server_table)))
    row = cur.fetchone()
    if row is None or cur.description is None:
        raise BenchError(f"server table {server_table} is empty")
    supplied = {"id", *PG_COLUMNS}
    return {
        d.name: v for d, v in zip(cur.description, row, strict=True)
        if v is not None and d.name not in supplied
    }  # fmt: skip


def pg_raw_load(
    url: str, csv_file: CsvFile, id_prefix: str, upsert: bool, stamped_like: str | None = None
) -> tuple[float, int]:
    """csv.reader + COPY (copy.write_row) in one transaction; for an upsert, COPY into a temp
    staging table then one INSERT ... ON CONFLICT (external_id__c) DO UPDATE.
    `stamped_like` (a server table, insert only): into a fresh table LIKE it that also sets
    every column the server sets (pg_server_constants), dropped afterwards.
    Returns (seconds, rows). Timed: parse + COPY (+ the INSERT) + commit."""
    from psycopg import sql

    raw = pg_raw_table()
    if stamped_like is not None:
        # The server's values become the columns' defaults: PostgreSQL fills them in C, and
        # the client sends the same columns as the plain load (write_row adapting 9 more
        # values a row made the client, not PostgreSQL, the bottleneck: 17 CPU-s against 6).
        raw = sql.Identifier(PG_RAW_SCHEMA, f"{OBJECT.lower()}_stamped")
        with pg_connect(url) as conn:
            conn.execute(
                sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL)").format(
                    raw, sql.SQL(stamped_like)
                )
            )
            for column, value in pg_server_constants(conn, stamped_like).items():
                conn.execute(
                    sql.SQL("ALTER TABLE {} ALTER COLUMN {} SET DEFAULT {}").format(
                        raw, sql.Identifier(column), sql.Literal(value)
                    )
                )
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
        seconds = time.perf_counter() - t0
        if stamped_like is not None:
            conn.execute(sql.SQL("DROP TABLE {}").format(raw))
            conn.commit()
        return seconds, count


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
