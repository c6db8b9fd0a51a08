"""`bulkforce user …`, `bulkforce app …`, and the login/TLS options of `bulkforce serve`."""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from bulkforce.auth import service
from bulkforce.auth.model import User
from bulkforce.auth.service import AuthSettings
from bulkforce.auth.throttle import ThrottleSettings
from bulkforce.cli_options import (
    F,
    env,
    server_data_dir_option,
    server_database_option,
    with_options,
)
from bulkforce.engine.schema import Schema, build_schema, builtin_definitions
from bulkforce.errors import ServiceError
from bulkforce.store import Store, StoreError, open_store
from bulkforce.tls import ServerFiles, local_server_files

# ---- serve: sessions, lockout, TLS ---------------------------------------------------------


@dataclass(frozen=True)
class LoginOptions:
    session_seconds: int
    lockout_attempts: int
    lockout_seconds: int
    tls: bool
    tls_cert: Path | None
    tls_key: Path | None
    login_threads: int = 2
    login_failures_per_minute: int = 30

    def auth_settings(self) -> AuthSettings:
        throttle = ThrottleSettings(
            threads=self.login_threads, failures_per_minute=self.login_failures_per_minute
        )
        return AuthSettings(
            self.session_seconds, self.lockout_attempts, self.lockout_seconds, throttle
        )

    def server_files(self, data_dir: Path, host: str) -> ServerFiles | None:
        """The certificate to serve https with, or None for plain http."""
        if (self.tls_cert is None) != (self.tls_key is None):
            raise click.UsageError("--tls-cert and --tls-key go together")
        if self.tls_cert is not None and self.tls_key is not None:
            return ServerFiles(self.tls_cert, self.tls_key, None)
        return local_server_files(data_dir, host) if self.tls else None


_LOGIN_OPTIONS = [
    click.option("--session-seconds", default=7200, show_default=True, type=click.IntRange(1),
                 envvar=env("session-seconds"),
                 help="A login's token expires after this long unused (sessionSecondsValid)."),
    click.option("--lockout-attempts", default=10, show_default=True, type=click.IntRange(0),
                 envvar=env("lockout-attempts"),
                 help="Failed logins in a row that lock a user out (0: never)."),
    click.option("--lockout-seconds", default=900, show_default=True, type=click.IntRange(1),
                 envvar=env("lockout-seconds"), help="How long a lockout lasts."),
    click.option("--login-threads", default=2, show_default=True, type=click.IntRange(1, 32),
                 envvar=env("login-threads"),
                 help="Threads checking passwords (argon2id, 64 MiB each while it runs), apart "
                 "from the ones serving the API."),
    click.option("--login-failures-per-minute", default=30, show_default=True,
                 type=click.IntRange(1), envvar=env("login-failures-per-minute"),
                 help="Failed logins per client address, and per username, after which "
                 "further logins from it are refused unchecked for the rest of the minute."),
    click.option("--tls", is_flag=True, envvar=env("tls"),
                 help="Serve https with a certificate from a local CA kept in the data dir "
                 "(its path is printed: hand it to clients)."),
    click.option("--tls-cert", type=click.Path(path_type=Path, dir_okay=False, exists=True),
                 envvar=env("tls-cert"), help="Serve https with this certificate (PEM)..."),
    click.option("--tls-key", type=click.Path(path_type=Path, dir_okay=False, exists=True),
                 envvar=env("tls-key"), help="...and this private key (PEM)."),
]  # fmt: skip


def login_options(func: F) -> F:
    """Adds the options above to a command, which receives them as one `login` argument."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        names = ("session_seconds", "lockout_attempts", "lockout_seconds", "tls", "tls_cert",
                 "tls_key", "login_threads", "login_failures_per_minute")  # fmt: skip
        login = LoginOptions(**{n: kwargs.pop(n) for n in names})
        return func(*args, login=login, **kwargs)

    decorated: Any = wrapper
    return with_options(_LOGIN_OPTIONS, decorated)  # type: ignore[no-any-return]


# ---- user and app administration -----------------------------------------------------------

# Cheap hashes for test suites that create many users; hidden so no one picks it by accident.
_fast_hash = click.option("--insecure-fast-hash", "fast_hash", is_flag=True, hidden=True)


# Roles (see bulkforce/jobs/access.py). Unset (None) leaves a user's role as it is in `user set`.
_admin = click.option(
    "--admin/--no-admin", "admin", default=None,
    help="May reset the org's records (POST /bulkforce/admin/reset) and sees every job.",
)  # fmt: skip
_integrations = click.option(
    "--manage-data-integrations/--no-manage-data-integrations", "integrations", default=None,
    help="Sees and acts on every user's bulk jobs (Salesforce's Manage Data Integrations).",
)  # fmt: skip


def _roles(u: User) -> str:
    roles = [r for r, on in (("admin", u.is_admin),
                             ("manage-data-integrations", u.manage_data_integrations)) if on]  # fmt: skip
    return f"  {','.join(roles)}" if roles else ""


@contextmanager
def _store(data_dir: Path, database: str | None) -> Iterator[Store]:
    try:
        store = open_store(database or f"sqlite:///{data_dir / 'bulkforce.db'}")
        store.migrate()
    except StoreError as e:
        raise click.ClickException(str(e)) from None
    try:
        yield store
    except (StoreError, ServiceError) as e:
        raise click.ClickException(str(e)) from None
    finally:
        store.close()


def _user(store: Store, username: str) -> User:
    """USERNAME's user; exits 1 when there is none."""
    found = store.get_user_by_name(username)
    if found is None:
        click.echo(f"bulkforce: no user {username}", err=True)
        sys.exit(1)
    return found


def _schema(store: Store) -> Schema:
    # The standard objects are enough for User rows; a server's --schema only adds to them.
    schema = build_schema(builtin_definitions(), store.key_prefix)
    store.ensure_tables(schema)
    return schema


@click.group()
def user() -> None:
    """Users who log in with a username and password (OAuth password flow, SOAP login)."""


@user.command("add")
@click.argument("username")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              envvar=env("user-password"), help="Prompted for when not given.")  # fmt: skip
@click.option("--security-token", default="", envvar=env("user-security-token"),
              help="If set, logins must append it to the password, as on Salesforce.")  # fmt: skip
@click.option("--email", default=None, help="Default: the username.")
@click.option("--full-name", default=None, help="Default: the username's local part.")
@_admin
@_integrations
@server_data_dir_option
@server_database_option
@_fast_hash
def user_add(
    username: str, password: str, security_token: str, email: str | None,
    full_name: str | None, admin: bool, integrations: bool, data_dir: Path,
    database: str | None, fast_hash: bool,
) -> None:  # fmt: skip
    """Add USERNAME (shaped like an email address)."""
    with _store(data_dir, database) as store:
        added = service.add_user(
            store, _schema(store), username, password, security_token, email, full_name,
            fast_hash, bool(admin), bool(integrations),
        )  # fmt: skip
    click.echo(f"user {added.username} added, id {added.id}")
    if _roles(added):
        click.echo(f"roles:{_roles(added)}")


@user.command("set")
@click.argument("username")
@_admin
@_integrations
@server_data_dir_option
@server_database_option
def user_set(
    username: str, admin: bool | None, integrations: bool | None, data_dir: Path,
    database: str | None,
) -> None:  # fmt: skip
    """Grant or take away USERNAME's roles; effective on their next request."""
    with _store(data_dir, database) as store:
        found = _user(store, username)
        is_admin = found.is_admin if admin is None else admin
        mdi = found.manage_data_integrations if integrations is None else integrations
        store.set_user_roles(found.id, is_admin, mdi)
        changed = store.get_user(found.id)
    assert changed is not None
    click.echo(f"user {username}:{_roles(changed) or ' no roles'}")


@user.command("list")
@server_data_dir_option
@server_database_option
def user_list(data_dir: Path, database: str | None) -> None:
    """Usernames, ids, and who is locked out."""
    import time

    with _store(data_dir, database) as store:
        users = store.list_users()
    now = time.time()
    for u in users:
        locked = "  locked" if u.locked_until is not None and u.locked_until > now else ""
        click.echo(f"{u.username}\t{u.id}\t{u.email}{_roles(u)}{locked}")


@user.command("remove")
@click.argument("username")
@server_data_dir_option
@server_database_option
def user_remove(username: str, data_dir: Path, database: str | None) -> None:
    """Remove USERNAME: their logins end at once; their records keep an inactive User."""
    with _store(data_dir, database) as store:
        user_id = store.remove_user(username)
        if user_id is None:
            click.echo(f"bulkforce: no user {username}", err=True)
            sys.exit(1)
        service.deactivate_user_record(store, _schema(store), user_id)
    click.echo(f"user {username} removed")


@user.command("unlock")
@click.argument("username")
@server_data_dir_option
@server_database_option
def user_unlock(username: str, data_dir: Path, database: str | None) -> None:
    """End USERNAME's lockout after too many failed logins."""
    with _store(data_dir, database) as store:
        store.login_ok(_user(store, username).id)
    click.echo(f"user {username} unlocked")


@click.group()
def app() -> None:
    """Connected apps: client_id and client_secret for the OAuth token endpoint."""


@app.command("add")
@click.argument("name")
@click.option("--run-as", default=None, metavar="USERNAME",
              help="The user that the client_credentials flow logs in as.")  # fmt: skip
@server_data_dir_option
@server_database_option
@_fast_hash
def app_add(
    name: str, run_as: str | None, data_dir: Path, database: str | None, fast_hash: bool
) -> None:
    """Add a connected app NAME; prints its client_id and client_secret (shown only once)."""
    with _store(data_dir, database) as store:
        added, secret = service.add_app(store, name, run_as, fast_hash)
    click.echo(f"client_id: {added.client_id}")
    click.echo(f"client_secret: {secret}")


@app.command("list")
@server_data_dir_option
@server_database_option
def app_list(data_dir: Path, database: str | None) -> None:
    """Connected apps: name, client_id, run-as user id."""
    with _store(data_dir, database) as store:
        apps = store.list_apps()
    for a in apps:
        click.echo(f"{a.name}\t{a.client_id}\t{a.run_as or '-'}")


@app.command("token")
@click.argument("client_id")
@click.argument("username")
@server_data_dir_option
@server_database_option
def app_token(client_id: str, username: str, data_dir: Path, database: str | None) -> None:
    """Print a refresh token for USERNAME through app CLIENT_ID (for ETL tools and jsforce).

    It lasts until revoked (POST /services/oauth2/revoke) or the user is removed."""
    with _store(data_dir, database) as store:
        token = service.issue_refresh_token(store, client_id, username)
    click.echo(f"refresh_token: {token}")
