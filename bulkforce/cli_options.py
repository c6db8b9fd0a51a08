"""Options shared by the `bulkforce` commands."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def env(name: str) -> str:
    """Every option is also an environment variable: --data-dir is BULKFORCE_DATA_DIR."""
    return "BULKFORCE_" + name.upper().replace("-", "_")


def store_options(func: F) -> F:
    """--data-dir, --database and --schema as `serve` takes them: the same org's data."""
    func = click.option(
        "--schema", "schemas", multiple=True, type=click.Path(path_type=Path, exists=True),
        envvar=env("schema"), help="The --schema files or folders the server is started with.",
    )(func)  # fmt: skip
    func = click.option(
        "--database", default=None, envvar=env("database"),
        help="Database URL (default: SQLite in the data dir).",
    )(func)  # fmt: skip
    return click.option(
        "--data-dir", default="./data", show_default=True, type=click.Path(path_type=Path),
        envvar=env("data-dir"),
    )(func)  # fmt: skip
