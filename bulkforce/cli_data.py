"""`bulkforce schema show`, `load-records` and `reset`: inspect the schema, load fixtures and
clear records (issue #5), on a server's data while it may run."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from bulkforce.boot import build_context
from bulkforce.cli_jobs import load_progress
from bulkforce.cli_options import exit_on_error, server_schema_option, store_options
from bulkforce.engine.schema import SchemaError


@click.group()
def schema() -> None:
    """Inspect the schema the server enforces."""


@schema.command("show")
@click.argument("object_name", metavar="OBJECT")
@server_schema_option
def schema_show(object_name: str, schemas: tuple[Path, ...]) -> None:
    """Print what the server enforces for OBJECT's fields."""
    from bulkforce.engine.schema import build_schema, builtin_definitions, load_file
    from bulkforce.engine.show import render_object

    try:
        defs = builtin_definitions()
        for path in schemas:
            defs.extend(load_file(path))
        taken: list[str] = []

        def provisional(name: str) -> str:
            # the server assigns custom prefixes on first start and keeps them; show the
            # next free ones in the same order
            taken.append(name)
            return f"a0{len(taken) - 1}"

        loaded = build_schema(defs, provisional)
    except SchemaError as e:
        click.echo(f"bulkforce: {e}", err=True)
        sys.exit(2)
    obj = loaded.get(object_name)
    if obj is None:
        click.echo(f"bulkforce: no object {object_name!r} in the schema", err=True)
        sys.exit(2)
    click.echo(render_object(loaded, obj, provisional=obj.name in taken))


@click.command("load-records")
@click.argument("object_name", metavar="OBJECT")
@click.argument("csv_file", metavar="FILE.csv", type=click.Path(path_type=Path, dir_okay=False))
@store_options
def load_records(
    object_name: str, csv_file: Path, data_dir: Path, database: str | None,
    schemas: tuple[Path, ...],
) -> None:  # fmt: skip
    """Insert FILE.csv's rows into OBJECT through the ingest engine (fixtures).

    The CSV is comma-separated UTF-8 with a header, as a Bulk 2.0 upload. Prints the counts
    and each failed row's error; exits 1 if any row failed.
    """
    from bulkforce.jobs.org import OrgService

    with exit_on_error():
        ctx = build_context(data_dir, database, list(schemas), 0)
        with load_progress(csv_file) as progress:
            report = OrgService(ctx).load_records(object_name, csv_file, progress)
    for row, error in report.errors:
        click.echo(f"row {row}: {error}")
    click.echo(f"{report.object}: {report.inserted} inserted, {report.failed} failed")
    if report.failed:
        sys.exit(1)


@click.command("reset")
@click.argument("object_name", metavar="[OBJECT]", required=False)
@click.option("--all", "everything", is_flag=True, help="Delete the records of every object.")
@store_options
def reset(
    object_name: str | None, everything: bool, data_dir: Path, database: str | None,
    schemas: tuple[Path, ...],
) -> None:  # fmt: skip
    """Delete the records of OBJECT, or of every object with --all.

    Schema, key prefixes, jobs and their results, users and tokens stay. A running server
    sees the change at once (the same as POST /bulkforce/admin/reset).
    """
    from bulkforce.jobs.org import OrgService

    if bool(object_name) == everything:
        click.echo("bulkforce: name one OBJECT, or --all", err=True)
        sys.exit(2)
    with exit_on_error():
        ctx = build_context(data_dir, database, list(schemas), 0)
        deleted = OrgService(ctx).reset(object_name)
    for name, n in deleted.items():
        if n or object_name:
            click.echo(f"{name}: {n} deleted")
    click.echo(f"{sum(deleted.values())} records deleted")
