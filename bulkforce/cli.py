"""`bulkforce` command line."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from bulkforce.boot import BootError, build_context, load_token, lock_data_dir
from bulkforce.engine.schema import SchemaError
from bulkforce.store import StoreError


@click.group(
    context_settings={"auto_envvar_prefix": "BULKFORCE", "help_option_names": ["-h", "--help"]}
)
def main() -> None:
    """A self-hosted server that speaks the Salesforce Bulk API."""


def env(name: str) -> str:
    """Every option is also an environment variable: --data-dir is BULKFORCE_DATA_DIR."""
    return "BULKFORCE_" + name.upper().replace("-", "_")


@main.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    envvar=env("host"),
    help="Address to listen on.",
)
@click.option("--port", default=8000, show_default=True, type=int, envvar=env("port"))
@click.option(
    "--data-dir",
    default="./data",
    show_default=True,
    type=click.Path(path_type=Path),
    envvar=env("data-dir"),
    help="Database, uploads and the generated token live here.",
)
@click.option(
    "--database",
    default=None,
    envvar=env("database"),
    help="Database URL, e.g. sqlite:///data/bulkforce.db (default: SQLite in the data dir).",
)
@click.option(
    "--schema",
    "schemas",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    envvar=env("schema"),
    help="Describe-shaped JSON/YAML adding fields and custom objects (repeatable; "
    "in the environment, paths separated by ':').",
)
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
    "--commit-seconds",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0, 60),
    envvar=env("commit-seconds"),
    help="A running job commits its progress at least this often (0: every batch).",
)
@click.option(
    "--workers",
    default=2,
    show_default=True,
    type=click.IntRange(0, 64),
    envvar=env("workers"),
    help="Worker threads processing jobs (0: none). Two let a small job pass a big one.",
)
@click.option(
    "--hard-delete/--no-hard-delete",
    default=True,
    show_default=True,
    envvar=env("hard-delete"),
    help="Whether the user has the Bulk API Hard Delete permission.",
)
@click.option(
    "--log-level",
    default="warning",
    show_default=True,
    envvar=env("log-level"),
    type=click.Choice(["debug", "info", "warning", "error"]),
)
def serve(
    host: str, port: int, data_dir: Path, database: str | None, schemas: tuple[Path, ...],
    token: str | None, max_upload_mb: float, commit_seconds: float, workers: int,
    hard_delete: bool, log_level: str,
) -> None:  # fmt: skip
    """Run the API server (and its worker) on HOST:PORT."""
    import uvicorn

    from bulkforce.http.app import create_app

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        lock = lock_data_dir(data_dir)
        ctx = build_context(
            data_dir, database, list(schemas), int(max_upload_mb * 1024 * 1024), commit_seconds
        )
        ctx.settings.hard_delete = hard_delete
        ctx.store.clear_leases()  # we hold the data-dir lock: any lease is a dead process's
        access_token = load_token(data_dir, ctx.settings.org_id, token)
    except (BootError, SchemaError, StoreError) as e:
        click.echo(f"bulkforce: {e}", err=True)
        sys.exit(2)
    app = create_app(ctx, access_token, workers=workers)
    click.echo(f"bulkforce listening on http://{host}:{port}")
    click.echo(f"instance URL: http://{host}:{port}")
    click.echo(f"access token: {access_token}")
    sys.stdout.flush()
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)
    lock.close()
