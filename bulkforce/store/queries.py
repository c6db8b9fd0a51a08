"""Loads the named-query files: `-- name: X` blocks, so SQL lives in .sql files, not strings."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


@cache
def load(dialect: str) -> dict[str, str]:
    text = resources.files("bulkforce.store").joinpath("sql", f"{dialect}.sql").read_text("utf-8")
    return parse(text)


def parse(text: str) -> dict[str, str]:
    """The named queries of a file's text. A name given twice is an error: the second would
    silently replace the first."""
    parts = _NAME.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice")
        lines = [ln for ln in body.strip().splitlines() if not ln.lstrip().startswith("--")]
        queries[name] = "\n".join(lines).strip()
    return queries
