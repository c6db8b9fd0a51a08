"""The named-query files (store/sql/*.sql): each name once, and each one used."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import bulkforce
from bulkforce.store.queries import load, parse

SOURCE = Path(bulkforce.__file__).parent


def test_a_query_named_twice_is_refused() -> None:
    text = "-- name: one\nSELECT 1;\n\n-- name: one\nSELECT 2;\n"
    with pytest.raises(ValueError, match="'one' is defined twice"):
        parse(text)
    assert parse("-- name: one\n-- why\nSELECT 1;\n") == {"one": "SELECT 1;"}


def test_every_named_query_is_used_and_every_used_one_exists() -> None:
    code = "\n".join(p.read_text() for p in SOURCE.rglob("*.py"))
    used = set(re.findall(r'Q\["(\w+)"\]', code))
    defined = set(load("sqlite")) | set(load("postgres"))
    assert used - defined == set()
    # migrations run by their number prefix (store/sqlite.py, store/postgres.py)
    unused = {name for name in defined - used if not name.startswith("migrate_")}
    assert unused == set()
