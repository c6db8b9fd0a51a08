"""Which records of a batch a unique index refuses, found for the whole batch at once.

An insert batch goes in with one statement; when a unique index refuses it, the records had
been written one by one, each in a savepoint, to fail only the offending ones. For a batch
that mostly repeats stored values (an insert run twice, the usual mistake) that was ~0.7 ms
per record on PostgreSQL: 200 s for 300,000 records, against 4 s for the first run. Instead,
one query per unique column finds the records whose value a stored record holds, under the
index's own equality (the database compares, not Python); they fail at once. Records that
may equal another of the same batch (a loose key: a superset of what any index finds equal)
are written one by one, in file order, so the first of them wins as before; the rest go in
again with one statement. An update batch likewise fails at once its records that take a
value held by a record it does not update (one it updates may give the value up first)."""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bulkforce.engine.errors import RecordError
from bulkforce.engine.schema import SObject
from bulkforce.store.base import ColumnRows, RecordTable


def loose(value: str) -> str:
    """A key equal for any two values a unique index may find equal, and for more: case
    folded with accents and marks dropped. A case-insensitive (citext) index compares the
    values lower-cased by the database's locale, which maps a few characters other than
    Unicode's case folding does (glibc lowers 'İ' to 'i'; folding gives 'i' + a dot)."""
    if value.isascii():
        return value.lower()
    decomposed = unicodedata.normalize("NFKD", value.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def duplicate_value(field_name: str, record_id: str) -> RecordError:
    """Salesforce's error for a value another record holds in a unique field."""
    return RecordError(
        "DUPLICATE_VALUE",
        f"duplicate value found: {field_name} duplicates value on record with id: {record_id[:15]}",
    )


@dataclass
class Split:
    """A refused batch, by position in it: records that fail, records that go in again
    together, records to write one by one (each in file order)."""

    failed: dict[int, RecordError] = field(default_factory=dict)
    together: list[int] = field(default_factory=list)
    one_by_one: list[int] = field(default_factory=list)


def split_refused(
    obj: SObject,
    table: RecordTable,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    update: bool = False,
) -> Split:
    """`rows`: the batch's records as written (a value per column of `columns`; an update's
    with its record's Id last). A record fails here only where writing the records one by one
    would fail it with the same message whatever the order: its first clashing unique column
    clashes with a record the batch does not write, and no earlier one may clash with one
    the batch writes (a value another of its records shares, loosely, or, for an update, that
    another record of the batch holds and may give up first)."""
    uniques = [
        (j, name)
        for j, name in enumerate(columns)
        if name != "Id" and (f := obj.field(name)) is not None and f.unique
    ]
    n = len(rows)
    own = _column(rows, len(columns)) if update else [""] * n
    moving = set(own) if update else set()
    values = {j: _column(rows, j) for j, _ in uniques}
    holders: dict[int, dict[int, str]] = {}
    shared: dict[int, set[int]] = {}
    for j, name in uniques:
        col = values[j]
        present = [p for p in range(n) if _set(col[p])]
        holders[j] = {
            present[k]: record_id
            for k, record_id in table.taken(name, [str(col[p]) for p in present])
        }
        by_key: dict[str, list[int]] = defaultdict(list)
        for p in present:
            by_key[loose(str(col[p]))].append(p)
        shared[j] = {p for members in by_key.values() if len(members) > 1 for p in members}
    out = Split()
    unsure: set[int] = set()
    for p in range(n):
        for j, name in uniques:
            if not _set(values[j][p]):
                continue
            if p in shared[j]:
                unsure.add(p)
                break
            holder = holders[j].get(p)
            if holder is None or holder == own[p]:
                continue
            if holder in moving:
                unsure.add(p)
                break
            out.failed[p] = duplicate_value(name, holder)
            break
    for p in range(n):
        if p not in out.failed:
            # an update's records keep their order, as the index sees it; an insert's that
            # may meet another of the batch go one by one, the first of them winning
            (out.one_by_one if p in unsure and not update else out.together).append(p)
    return out


def _column(rows: Sequence[tuple[Any, ...]], j: int) -> Sequence[Any]:
    if isinstance(rows, ColumnRows):  # no tuple per row
        return rows.columns[j]
    return [row[j] for row in rows]


def _set(value: Any) -> bool:
    """No two blanks are duplicates: an index holds any number of NULLs."""
    return value is not None and value != ""
