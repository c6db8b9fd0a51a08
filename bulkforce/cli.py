"""`bulkforce` command line."""

from __future__ import annotations

import logging
import socket
import sys
from pathlib import Path
from typing import Any

import click

from bulkforce.auth.cli import LoginOptions, app, login_options, user
from bulkforce.boot import (
    BootError,
    admin_token,
    lock_data_dir,
    lock_sqlite,
    private_files,
    read_token,
    setup_logging,
    sqlite_path,
    tune_threads,
    tuned_context,
)
from bulkforce.cli_data import load_records, reset, schema
from bulkforce.cli_jobs import job, jobs
from bulkforce.cli_options import (
    F,
    env,
    exit_on_error,
    with_options,
)
from bulkforce.soql.dates import zone
from bulkforce.store import StoreError
from bulkforce.store.pool import DEFAULT_POOL_SIZE


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """A self-hosted server that speaks the Salesforce Bulk API."""
    private_files()


def _time_zone(value: str) -> str:
    try:
        zone(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None
    return value


# Processing settings shared by `serve` and `worker`: every process working on one database
# should be started with the same values (and the same --schema files).
_TUNING = [
    click.option("--commit-seconds", default=3.0, show_default=True, type=click.FloatRange(0, 60),
                 envvar=env("commit-seconds"),
                 help="A running job commits its progress at least this often (0: every batch)."),
    click.option("--log-level", default="warning", show_default=True, envvar=env("log-level"),
                 type=click.Choice(["debug", "info", "warning", "error"])),
    click.option("--lease-seconds", default=60.0, show_default=True, type=click.FloatRange(1),
                 envvar=env("lease-seconds"),
                 help="A worker that stops renewing its claim for this long is presumed dead."),
    click.option("--max-retries", default=10, show_default=True, type=click.IntRange(0),
                 envvar=env("max-retries"),
                 help="Times a job or batch is retried after its worker died, then it fails."),
    click.option("--retention-hours", default=168.0, show_default=True, type=click.FloatRange(0),
                 envvar=env("retention-hours"),
                 help="Ended jobs and their data are deleted after this long (Salesforce: 7 days)."),
    click.option("--open-job-hours", default=24.0, show_default=True, type=click.FloatRange(0),
                 envvar=env("open-job-hours"), help="Jobs left Open this long are aborted."),
    click.option("--timezone", default="UTC", show_default=True, envvar=env("timezone"),
                 callback=lambda _ctx, _param, value: _time_zone(value),
                 help="IANA time zone whose days SOQL date literals such as TODAY and "
                 "LAST_N_DAYS:n count (Salesforce: the querying user's)."),
    click.option("--pool-size", default=DEFAULT_POOL_SIZE, show_default=True,
                 type=click.IntRange(1, 200), envvar=env("pool-size"),
                 help="Database connections the process's request threads share (each worker "
                 "thread has its own besides)."),
    click.option("--query-result-mb", default=1024.0, show_default=True,
                 type=click.FloatRange(0, min_open=True), envvar=env("query-result-mb"),
                 help="Bulk 1.0 query results over this size get several result ids "
                 "(Salesforce: 1 GB)."),
]  # fmt: skip


# Options `serve` and `worker` share, worded for both.
data_dir_option = click.option(
    "--data-dir", default="./data", show_default=True, type=click.Path(path_type=Path),
    envvar=env("data-dir"),
    help="The SQLite database, uploads and the generated token (PostgreSQL: local files only).",
)  # fmt: skip
schema_option = click.option(
    "--schema", "schemas", multiple=True, type=click.Path(path_type=Path, exists=True),
    envvar=env("schema"),
    help="Describe JSON/YAML files or SFDX folders adding fields and objects (repeatable; "
    "':'-separated in the environment). Every process of a deployment needs the same ones.",
)  # fmt: skip


def tuning_options(func: F) -> F:
    return with_options(_TUNING, func)


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise BootError(
            f"cannot listen on {host}:{port} ({e.strerror}); another program may be using the "
            "port: choose another with --port N or BULKFORCE_PORT=N (make serve PORT=N)"
        ) from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def setup_access_log(enabled: bool) -> None:
    """Requests are logged whatever --log-level says (it is about the server's own warnings)."""
    log = logging.getLogger("bulkforce.access")
    log.propagate = False
    if not enabled:
        log.disabled = True
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s access %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)


def explain_tls_on_http(record: logging.LogRecord) -> bool:
    """uvicorn's bare "Invalid HTTP request received." is most often https sent to http."""
    if str(record.msg).startswith("Invalid HTTP request received"):
        record.msg = (
            "Invalid HTTP request received: if the client spoke https, this server speaks "
            "plain http here; use an http:// URL, or start the server with --tls"
        )
        record.args = ()
    return True


@main.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    envvar=env("host"),
    help="Address to listen on.",
)
@click.option("--port", default=8000, show_default=True, type=int, envvar=env("port"))
@data_dir_option
@click.option(
    "--database",
    default=None,
    envvar=env("database"),
    help="Database URL, e.g. sqlite:///data/bulkforce.db (default: SQLite in the data dir).",
)
@schema_option
@click.option(
    "--token",
    default=None,
    envvar=env("token"),
    help="A fixed access token (for CI); else one is generated.",
)
@click.option(
    "--max-upload-mb",
    default=150.0,
    show_default=True,
    type=float,
    envvar=env("max-upload-mb"),
    help="Largest Bulk 2.0 upload accepted, in MiB.",
)
@click.option(
    "--workers",
    default=2,
    show_default=True,
    type=click.IntRange(0, 64),
    envvar=env("workers"),
    help="Workers processing jobs (0: none). Two let a small job pass a big one.",
)
@click.option(
    "--no-worker",
    is_flag=True,
    envvar=env("no-worker"),
    help="Serve the API only; `bulkforce worker` processes run the jobs (PostgreSQL).",
)
@click.option(
    "--worker-process/--worker-threads", "worker_process", default=True,
    envvar=env("worker-process"),
    help="The --workers run in one child process (the default), where they do not share "
    "the API's GIL, or as threads of this one (a second interpreter less: ~30 MB).",
)  # fmt: skip
@tuning_options
@login_options
@click.option(
    "--head-timeout", default=30.0, show_default=True, type=click.FloatRange(0.1),
    envvar=env("head-timeout"),
    help="Seconds a client has to send a request's line and headers (then 408).",
)  # fmt: skip
@click.option(
    "--body-timeout", default=120.0, show_default=True, type=click.FloatRange(0.1),
    envvar=env("body-timeout"),
    help="Seconds a request body may stall before the connection is closed.",
)  # fmt: skip
@click.option(
    "--shutdown-timeout", default=30, show_default=True, type=click.IntRange(1),
    envvar=env("shutdown-timeout"),
    help="Seconds a stopping server lets responses in flight finish (then it cancels them).",
)  # fmt: skip
@click.option(
    "--hard-delete/--no-hard-delete",
    default=True,
    show_default=True,
    envvar=env("hard-delete"),
    help="Whether the user has the Bulk API Hard Delete permission.",
)
@click.option(
    "--access-log/--no-access-log", default=True, show_default=True, envvar=env("access-log"),
    help="Log each request: method, path, status, milliseconds, job id (never a token).",
)  # fmt: skip
def serve(
    host: str, port: int, data_dir: Path, database: str | None, schemas: tuple[Path, ...],
    token: str | None, max_upload_mb: float, workers: int, hard_delete: bool, no_worker: bool,
    worker_process: bool, login: LoginOptions, head_timeout: float, body_timeout: float,
    shutdown_timeout: int, access_log: bool,
    **tuning: Any,
) -> None:  # fmt: skip
    """Run the API server (and its worker) on HOST:PORT."""
    import uvicorn

    from bulkforce.http.app import create_app
    from bulkforce.http.protocol import guarded_protocol
    from bulkforce.worker import sweep_orphans
    from bulkforce.workerproc import ChildWakeup, WorkerChild, worker_command

    setup_logging(tuning)
    tune_threads()
    setup_access_log(access_log)
    with exit_on_error():
        # Bound before anything is printed: a taken port must not look like a running server.
        listener = bind(host, port)
        sqlite = not (database or "").startswith(("postgresql:", "postgres:"))
        # SQLite: one server per data dir; holding the lock, any lease is a dead process's.
        # PostgreSQL: many processes share the database and dead workers' leases expire.
        db_file = sqlite_path(data_dir, database)
        locks = [lock_data_dir(data_dir, port)] if sqlite else []
        if db_file is not None:
            locks.append(lock_sqlite(db_file, port))
        ctx = tuned_context(data_dir, database, schemas, int(max_upload_mb * 1024 * 1024), tuning)
        ctx.settings.hard_delete = hard_delete
        if sqlite:
            ctx.store.clear_leases()
            # holding the lock, every unfinished upload or unrecorded payload is a crash's
            sweep_orphans(ctx, 0)
        access = admin_token(data_dir, ctx.settings.org_id, token, ctx.store)
        tls = login.server_files(data_dir, host)
    scheme = "https" if tls else "http"
    if no_worker:
        workers = 0
    child = None
    # A process on SQLite too since the heap's fixed mmap threshold (heap.py): the 1M-row
    # insert's peak is 280 MB with it (threads: 247), and a 50-job burst's p95 168-220 ms
    # against threads' 222-264 on 2 cores.
    if workers and worker_process:
        url = database if db_file is None else f"sqlite:///{db_file.resolve()}"
        assert url is not None
        argv, env = worker_command(url, str(data_dir), [str(s) for s in schemas], workers, tuning)
        if sqlite:
            # the server's locks stay held while the child lives; a dead child's leases are
            # cleared before the next starts; API writes wake the child through its pipe
            child = WorkerChild(
                argv, env, [lock.fileno() for lock in locks], ctx.store.clear_leases
            )
            ctx.wake = ChildWakeup(child)
        else:
            child = WorkerChild(argv, env)
        workers = 0
    asgi = create_app(
        ctx,
        access.digest,
        workers=workers,
        auth_settings=login.auth_settings(),
        tls=bool(tls),
        background=[child] if child is not None else [],
    )
    click.echo(f"bulkforce listening on {scheme}://{host}:{port}")
    click.echo(f"instance URL: {scheme}://{host}:{port}")
    if access.generated is not None:  # shown this once; kept for the owner in the data dir
        click.echo(f"access token: {access.generated}")
    elif token:
        click.echo("access token: the one given with --token")
    else:
        click.echo(f"access token: print it with `bulkforce token --data-dir {data_dir}`")
    if tls and tls.ca:
        click.echo(f"CA certificate: {tls.ca.resolve()} (REQUESTS_CA_BUNDLE, NODE_EXTRA_CA_CERTS)")
    sys.stdout.flush()
    if not tls:
        logging.getLogger("uvicorn.error").addFilter(explain_tls_on_http)
    config = uvicorn.Config(
        asgi, host=host, port=port, log_level=tuning["log_level"], access_log=False,
        http=guarded_protocol(head_timeout, body_timeout),
        # uvicorn waits for every response in flight without end: one client that stopped
        # reading a results download held a SIGTERM'd server forever
        timeout_graceful_shutdown=shutdown_timeout,
        ssl_certfile=str(tls.cert) if tls else None, ssl_keyfile=str(tls.key) if tls else None,
    )  # fmt: skip
    uvicorn.Server(config).run(sockets=[listener])
    listener.close()
    for lock in locks:
        lock.close()


@main.command()
@data_dir_option
@click.option("--database", default=None, envvar=env("database"),
              help="Check the token against this database (default: SQLite in the data dir).")  # fmt: skip
def token(data_dir: Path, database: str | None) -> None:
    """Print the generated admin access token, kept for its owner in the data dir (of the
    process that generated it, on PostgreSQL)."""
    from bulkforce.auth import crypto
    from bulkforce.boot import TOKEN_DIGEST
    from bulkforce.store import open_store

    found = read_token(data_dir)
    if found is None:
        click.echo(f"bulkforce: no token in {data_dir}: it was generated in another process's "
                   "data dir, or the server runs with --token", err=True)  # fmt: skip
        sys.exit(1)
    db_file = sqlite_path(data_dir, database)
    if database is not None or (db_file is not None and db_file.exists()):
        try:
            store = open_store(database or f"sqlite:///{db_file}")
            kept = store.get_meta(TOKEN_DIGEST)
            store.close()
        except StoreError as e:
            click.echo(f"bulkforce: {e}", err=True)
            sys.exit(2)
        if kept is not None and kept != crypto.token_digest(found):
            click.echo(f"bulkforce: the token in {data_dir} is not this database's admin token",
                       err=True)  # fmt: skip
            sys.exit(1)
    click.echo(found)


@main.command()
@click.option(
    "--database",
    required=True,
    envvar=env("database"),
    help="The PostgreSQL database the API processes use: postgresql://…",
)
@data_dir_option
@schema_option
@click.option(
    "--threads",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    envvar=env("threads"),
    help="Worker threads in this process.",
)
@tuning_options
def worker(
    database: str, data_dir: Path, schemas: tuple[Path, ...], threads: int, **tuning: Any,
) -> None:  # fmt: skip
    """Process jobs without serving HTTP: scale workers apart from API processes."""
    from bulkforce.workerproc import run_workers, worker_context

    if not database.startswith(("postgresql:", "postgres:")):
        click.echo("bulkforce: separate worker processes need PostgreSQL (--database "
                   "postgresql://…); with SQLite, `bulkforce serve` runs the workers", err=True)  # fmt: skip
        sys.exit(2)
    with exit_on_error():
        ctx = worker_context(data_dir, database, schemas, tuning)
    run_workers(ctx, threads)


main.add_command(user)
main.add_command(app)
main.add_command(jobs)
main.add_command(job)
main.add_command(schema)
main.add_command(load_records)
main.add_command(reset)
