"""Options shared by the `bulkforce` commands."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


@contextlib.contextmanager
def exit_on_error() -> Iterator[None]:
    """Exit 2 with the message of an error that stops a command from opening or changing the
    server's data (bad schema, unreachable database, a refused operation)."""
    # imported here so that this module stays a leaf: auth/cli.py imports it
    from bulkforce.boot import BootError
    from bulkforce.engine.schema import SchemaError
    from bulkforce.errors import ServiceError
    from bulkforce.store import StoreError

    try:
        yield
    except (BootError, SchemaError, StoreError) as e:
        click.echo(f"bulkforce: {e}", err=True)
        sys.exit(2)
    except ServiceError as e:
        click.echo(f"bulkforce: {e.message}", err=True)
        sys.exit(2)


def env(name: str) -> str:
    """Every option is also an environment variable: --data-dir is BULKFORCE_DATA_DIR."""
    return "BULKFORCE_" + name.upper().replace("-", "_")


def with_options(options: Sequence[Callable[[F], F]], func: F) -> F:
    """`func` decorated with `options`, the first one outermost (listed first in --help)."""
    for option in reversed(options):
        func = option(func)
    return func


# The --schema of the commands that read a server's org (it adds to the built-in objects).
server_schema_option = click.option(
    "--schema", "schemas", multiple=True, type=click.Path(path_type=Path, exists=True),
    envvar=env("schema"), help="The --schema files or folders the server is started with.",
)  # fmt: skip


# --data-dir and --database of the commands that work on a server's data while it may run.
server_data_dir_option = click.option(
    "--data-dir", default="./data", show_default=True, type=click.Path(path_type=Path),
    envvar=env("data-dir"), help="The server's data dir.",
)  # fmt: skip
server_database_option = click.option(
    "--database", default=None, envvar=env("database"),
    help="Database URL (default: SQLite in the data dir).",
)  # fmt: skip


def store_options(func: F) -> F:
    """--data-dir, --database and --schema as `serve` takes them: the same org's data."""
    return with_options([server_data_dir_option, server_database_option, server_schema_option],
                        func)  # fmt: skip
