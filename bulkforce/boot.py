"""Start-up: open the store, load the schema, make the org, user and token on first start."""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import string
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from bulkforce.auth import crypto
from bulkforce.engine import ids
from bulkforce.engine.schema import ObjectDef, build_schema, builtin_definitions, load_file
from bulkforce.heap import fix_mmap_threshold
from bulkforce.jobs.service import Context, Settings
from bulkforce.model import iso, utcnow
from bulkforce.store import Store, open_store
from bulkforce.store.base import UniqueViolation
from bulkforce.store.pool import DEFAULT_POOL_SIZE

_TOKEN_ALPHABET = string.ascii_letters + string.digits


class BootError(Exception):
    """Start-up cannot continue; the message says why."""


def _lock(path: Path, what: str, port: int | None) -> IO[str]:
    """An exclusive lock file that names its holder (PID and port) for whoever comes next."""
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = path.read_text().split()
        handle.close()
        who = ""
        if holder:
            who = f" (PID {holder[0]}" + (f", port {holder[1]})" if len(holder) > 1 else ")")
        raise BootError(
            f"another bulkforce server{who} is using {what}; stop it, or give this one its own "
            "--data-dir (or --database)"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}" + (f" {port}" if port is not None else "") + "\n")
    handle.flush()
    return handle


def lock_data_dir(data_dir: Path, port: int | None = None) -> IO[str]:
    """Exclusive lock on the data dir: one server per directory (its upload files are named
    by job id, which every database counts from the same start)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return _lock(data_dir / "bulkforce.lock", str(data_dir), port)


def sqlite_path(data_dir: Path, database: str | None) -> Path | None:
    """The SQLite database file a server will use (None: not a SQLite URL)."""
    if database is None:
        return data_dir / "bulkforce.db"
    return Path(database.removeprefix("sqlite:///")) if database.startswith("sqlite:///") else None


def lock_sqlite(path: Path, port: int | None = None) -> IO[str]:
    """Exclusive lock on a SQLite database, whatever data dir it is named from: one server
    per database, so the leases left in it by a killed process can be cleared at start. The
    lock is a sibling file (flock on the database itself would share the file with SQLite's
    own POSIX locks, which any close of another descriptor of it drops)."""
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return _lock(path.with_name(path.name + ".lock"), f"the SQLite database {path}", port)


def _new_id(prefix: str) -> str:
    return ids.make_id(prefix, secrets.randbelow(62**6))


def _identity(store: Store) -> tuple[str, str]:
    # First writer wins: API and worker processes starting together on a fresh PostgreSQL
    # database must agree on one org and one admin user.
    org = store.add_meta("org_id", _new_id("00D"))
    user = store.add_meta("user_id", _new_id("005"))
    return org, user


def _ensure_record(ctx: Context, name: str, values: dict[str, object]) -> None:
    """Insert one built-in record (by Id) unless it exists; every process may try at once."""
    obj = ctx.schema.get(name)
    if obj is None:
        return
    uid = ctx.settings.user_id
    now = iso(utcnow())
    values = values | {
        "CreatedDate": now, "CreatedById": uid, "LastModifiedDate": now,
        "LastModifiedById": uid, "SystemModstamp": now,
    }  # fmt: skip
    try:
        with ctx.store.transaction() as tx:
            table = tx.records(obj)
            if table.lookup("Id", [values["Id"]]):
                return
            cols = [c for c in values if obj.field(c) is not None]
            table.insert(cols, [tuple(values[c] for c in cols)])
    except UniqueViolation:
        pass  # another process starting at the same moment created it


def _ensure_user(ctx: Context) -> None:
    """The org's one user must exist as a User record: OwnerId and CreatedById point at it."""
    _ensure_record(ctx, "User", {
        "Id": ctx.settings.user_id, "Username": "admin@bulkforce.local", "LastName": "Admin",
        "FirstName": "Bulkforce", "Name": "Bulkforce Admin", "Email": "admin@bulkforce.local",
        "Alias": "admin", "TimeZoneSidKey": "America/Los_Angeles", "LocaleSidKey": "en_US",
        "EmailEncodingKey": "UTF-8", "LanguageLocaleKey": "en_US", "IsActive": True,
    })  # fmt: skip


def _ensure_org(ctx: Context) -> None:
    """The Organization record clients read before they start (query.md §1.1: simple-salesforce
    `is_sandbox()`, @salesforce/core's org check)."""
    _ensure_record(ctx, "Organization", {
        "Id": ctx.settings.org_id, "Name": ctx.store.get_meta("org_name") or "Bulkforce",
        "InstanceName": "BF1", "OrganizationType": "Developer Edition", "IsSandbox": False,
        "IsReadOnly": False, "NamespacePrefix": None, "TrialExpirationDate": None,
        "TimeZoneSidKey": "America/Los_Angeles", "DefaultLocaleSidKey": "en_US",
        "LanguageLocaleKey": "en_US", "FiscalYearStartMonth": 1,
    })  # fmt: skip


TOKEN_FILE = "token"
TOKEN_DIGEST = "admin_token_digest"
_LEGACY_TOKEN = "admin_token"  # the clear token older versions kept in bf_meta


@dataclass(frozen=True)
class AdminToken:
    """The admin access token as a server holds it: the SHA-256 digest it compares presented
    tokens with, and the token itself only when this start generated it (shown once)."""

    digest: str
    generated: str | None = None


def private_files() -> None:
    """What bulkforce writes (database, uploads, results, token, TLS keys) is its owner's
    only: files 0600, directories 0700, whatever the shell's umask."""
    os.umask(0o077)


def tighten(data_dir: Path, database_file: Path | None) -> None:
    """Make a data dir (and a SQLite database kept elsewhere) left readable by an older
    version private: a 0700 directory bars everyone else from what is inside."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    paths = [data_dir, data_dir / TOKEN_FILE]
    if database_file is not None:
        paths += [database_file.with_name(database_file.name + s) for s in ("", "-wal", "-shm")]
    for path in paths:
        try:
            if path.exists() and path.stat().st_uid == os.getuid():
                path.chmod(0o700 if path.is_dir() else 0o600)
        except OSError:
            pass  # not ours to change; the umask still covers what we create


def admin_token(data_dir: Path, org_id: str, fixed: str | None, store: Store) -> AdminToken:
    """--token, else the org's generated admin token. The database keeps only its digest, so
    every API process of a PostgreSQL deployment accepts it; the token itself is kept for its
    owner in `<data dir>/token` (0600) of the process that generated it, printed once there
    and later by `bulkforce token`."""
    if fixed:
        return AdminToken(crypto.token_digest(fixed))
    path = data_dir / TOKEN_FILE
    legacy = store.get_meta(_LEGACY_TOKEN)
    if legacy is not None:
        _keep_token(path, legacy, replace=False)
        store.add_meta(TOKEN_DIGEST, crypto.token_digest(legacy))
        store.delete_meta(_LEGACY_TOKEN)
    kept = store.get_meta(TOKEN_DIGEST)
    if kept is None and path.exists():  # a data dir from before digests: its token stays
        kept = store.add_meta(TOKEN_DIGEST, crypto.token_digest(path.read_text().strip()))
    if kept is not None:
        return AdminToken(kept)
    # sf CLI only treats `00D…!…` as an access token (clients.md §0.4)
    token = f"{org_id}!" + "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(64))
    digest = crypto.token_digest(token)
    pending = path.with_name(TOKEN_FILE + ".new")
    _keep_token(pending, token, replace=True)  # on disk before the database names it
    if store.add_meta(TOKEN_DIGEST, digest) != digest:  # another process started first
        pending.unlink(missing_ok=True)
        return AdminToken(store.get_meta(TOKEN_DIGEST) or digest)
    pending.replace(path)
    return AdminToken(digest, token)


def _keep_token(path: Path, token: str, replace: bool) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if replace else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")


def read_token(data_dir: Path) -> str | None:
    """The generated admin token as its owner keeps it, or None if this data dir has none."""
    try:
        return (data_dir / TOKEN_FILE).read_text().strip() or None
    except FileNotFoundError:
        return None


# With another thread busy in Python (the worker's prefetch thread, request threads), a thread
# coming back from a database step waits for the GIL up to the switch interval (5 ms by
# default) each time. A write step of one multi-row statement is ~20 ms, so at 5 ms the
# writer would lose a fifth of its time; at 0.5 ms it loses a few percent (measured: 400k rows through 2,000-row INSERTs beside a busy thread,
# 2.87 s at 5 ms, 1.86 s at 1 ms, 1.71 s at 0.2 ms; 1.47 s alone).
SWITCH_INTERVAL = 0.0005


def apply_tuning(settings: Settings, tuning: dict[str, Any]) -> None:
    """The processing options shared by `serve` and `worker` (cli.py's _TUNING) onto settings."""
    for name, value in tuning.items():
        if name not in ("log_level", "pool_size"):
            setattr(settings, name, value)


def tuned_context(
    data_dir: Path, database: str | None, schemas: Sequence[Path], max_upload: int,
    tuning: dict[str, Any],
) -> Context:  # fmt: skip
    """The context of a process that runs jobs (`serve`, its worker process, `bulkforce
    worker`): the tuning options applied and, where the store wants it (SQLite), the heap's
    mmap threshold fixed."""
    ctx = build_context(data_dir, database, list(schemas), max_upload,
                        pool_size=tuning["pool_size"])  # fmt: skip
    apply_tuning(ctx.settings, tuning)
    if ctx.store.fixed_mmap_threshold:
        fix_mmap_threshold()
    return ctx


def setup_logging(tuning: dict[str, Any]) -> None:
    logging.basicConfig(
        level=str(tuning["log_level"]).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def tune_threads() -> None:
    """A server's threads (event loop, request threads, workers) pass the GIL back and forth
    all the time: one coming back from a database call or a queue waits up to the switch
    interval for it (5 ms by default) while another runs Python. Measured at 0.5 ms, 50
    concurrent 100-row jobs on SQLite: close→JobComplete p95 250-349 → 196-203 ms; 1-record
    job median 12-24 → 6-9 ms (load ~5). The prefetch thread of a large job wants the same."""
    sys.setswitchinterval(SWITCH_INTERVAL)


def build_context(
    data_dir: Path,
    database: str | None,
    schema_files: list[Path],
    max_upload_bytes: int,
    commit_seconds: float = 3.0,
    pool_size: int = DEFAULT_POOL_SIZE,
) -> Context:
    tighten(data_dir, sqlite_path(data_dir, database))
    url = database or f"sqlite:///{data_dir / 'bulkforce.db'}"
    store = open_store(url, pool_size)
    store.migrate()
    defs: list[ObjectDef] = builtin_definitions()
    for path in schema_files:
        defs.extend(load_file(path))
    schema = build_schema(defs, store.key_prefix)
    store.ensure_tables(schema)
    org, user = _identity(store)
    ctx = Context(
        store=store,
        blobs=store.blobs(data_dir),
        wake=store.wakeup(),
        schema=schema,
        settings=Settings(
            org_id=org,
            user_id=user,
            max_upload_bytes=max_upload_bytes,
            commit_seconds=commit_seconds,
        ),
    )
    _ensure_user(ctx)
    _ensure_org(ctx)
    return ctx
