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


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--data-dir", default="./data", show_default=True, type=click.Path(path_type=Path),
              help="Database, uploads and the generated token live here.")  # fmt: skip
@click.option("--database", default=None,
              help="Database URL, e.g. sqlite:///data/bulkforce.db (default: SQLite in the data dir).")  # fmt: skip
@click.option("--schema", "schemas", multiple=True, type=click.Path(path_type=Path, dir_okay=False),
              help="Describe-shaped JSON/YAML adding fields and custom objects (repeatable).")  # fmt: skip
@click.option("--token", default=None, help="A fixed access token (for CI); else one is generated.")
@click.option("--max-upload-mb", default=150.0, show_default=True, type=float,
              help="Largest Bulk 2.0 upload accepted, in MiB.")  # fmt: skip
@click.option("--commit-seconds", default=1.0, show_default=True, type=click.FloatRange(0, 60),
              help="A running job commits its progress at least this often (0: every batch).")  # fmt: skip
@click.option("--workers", default=1, show_default=True, type=click.IntRange(0, 64),
              help="Worker threads processing jobs in this process (0: none).")  # fmt: skip
@click.option("--log-level", default="warning", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))  # fmt: skip
def serve(
    host: str, port: int, data_dir: Path, database: str | None, schemas: tuple[Path, ...],
    token: str | None, max_upload_mb: float, commit_seconds: float, workers: int, log_level: str,
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
