"""Start-up: open the store, load the schema, make the org, user and token on first start."""

from __future__ import annotations

import fcntl
import os
import secrets
import string
from pathlib import Path
from typing import IO

from bulkforce.engine import ids
from bulkforce.engine.schema import ObjectDef, SObject, build_schema, builtin_definitions, load_file
from bulkforce.jobs.service import Context, Settings
from bulkforce.model import iso, utcnow
from bulkforce.store import Store, open_store
from bulkforce.store.base import RecordTable, UniqueViolation

_TOKEN_ALPHABET = string.ascii_letters + string.digits


class BootError(Exception):
    """Start-up cannot continue; the message says why."""


def _lock(path: Path, what: str) -> IO[str]:
    handle = path.open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise BootError(f"another bulkforce server is using {what}") from None
    return handle


def lock_data_dir(data_dir: Path) -> IO[str]:
    """Exclusive lock on the data dir: one server per directory (its upload files are named
    by job id, which every database counts from the same start)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return _lock(data_dir / "bulkforce.lock", str(data_dir))


def sqlite_path(data_dir: Path, database: str | None) -> Path | None:
    """The SQLite database file a server will use (None: not a SQLite URL)."""
    if database is None:
        return data_dir / "bulkforce.db"
    return Path(database.removeprefix("sqlite:///")) if database.startswith("sqlite:///") else None


def lock_sqlite(path: Path) -> IO[str]:
    """Exclusive lock on a SQLite database, whatever data dir it is named from: one server
    per database, so the leases left in it by a killed process can be cleared at start. The
    lock is a sibling file (flock on the database itself would share the file with SQLite's
    own POSIX locks, which any close of another descriptor of it drops)."""
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return _lock(path.with_name(path.name + ".lock"), f"the SQLite database {path}")


def _new_id(prefix: str) -> str:
    return ids.make_id(prefix, secrets.randbelow(62**6))


def _identity(store: Store) -> tuple[str, str]:
    # First writer wins: API and worker processes starting together on a fresh PostgreSQL
    # database must agree on one org and one admin user.
    org = store.add_meta("org_id", _new_id("00D"))
    user = store.add_meta("user_id", _new_id("005"))
    return org, user


def _ensure_user(ctx: Context) -> None:
    """The org's one user must exist as a User record: OwnerId and CreatedById point at it."""
    user_obj = ctx.schema.get("User")
    if user_obj is None:
        return
    uid = ctx.settings.user_id
    try:
        with ctx.store.transaction() as tx:
            _insert_admin(tx.records(user_obj), user_obj, uid)
    except UniqueViolation:
        pass  # another process starting at the same moment created it


def _insert_admin(table: RecordTable, user_obj: SObject, uid: str) -> None:
    if table.lookup("Id", [uid]):
        return
    now = iso(utcnow())
    values = {
        "Id": uid, "Username": "admin@bulkforce.local", "LastName": "Admin",
        "FirstName": "Bulkforce", "Email": "admin@bulkforce.local", "Alias": "admin",
        "TimeZoneSidKey": "America/Los_Angeles", "LocaleSidKey": "en_US",
        "EmailEncodingKey": "UTF-8", "LanguageLocaleKey": "en_US", "IsActive": True,
        "CreatedDate": now, "CreatedById": uid, "LastModifiedDate": now,
        "LastModifiedById": uid, "SystemModstamp": now,
    }  # fmt: skip
    cols = [c for c in values if user_obj.field(c) is not None]
    table.insert(cols, [tuple(values[c] for c in cols)])


def load_token(data_dir: Path, org_id: str, fixed: str | None, store: Store | None = None) -> str:
    """The admin access token: --token, else one generated on first start. SQLite keeps it in
    the data dir; PostgreSQL in the database, so every API process of a deployment accepts
    the same one (`store` is given for a store shared by several processes)."""
    if fixed:
        return fixed
    # sf CLI only treats `00D…!…` as an access token (clients.md §0.4)
    token = f"{org_id}!" + "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(64))
    if store is not None:
        return store.add_meta("admin_token", token)
    path = data_dir / "token"
    if path.exists():
        return path.read_text().strip()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token


def build_context(
    data_dir: Path,
    database: str | None,
    schema_files: list[Path],
    max_upload_bytes: int,
    commit_seconds: float = 1.0,
) -> Context:
    url = database or f"sqlite:///{data_dir / 'bulkforce.db'}"
    store = open_store(url)
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
    return ctx
