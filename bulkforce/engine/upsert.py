"""Which rows of an upsert by external id update which record, and which insert (the
DUPLICATE_EXTERNAL_ID rules); ChunkRun.upsert writes them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bulkforce.engine.errors import RecordError
from bulkforce.engine.schema import Field

# (the key values to look for) -> (stored key value, record Id, deleted) per record found
Lookup = Callable[[list[Any]], Iterable[tuple[Any, str, bool]]]


@dataclass
class Matches:
    errors: dict[int, RecordError] = field(default_factory=dict)
    targets: dict[int, str] = field(default_factory=dict)  # row -> the record it updates
    inserts: list[int] = field(default_factory=list)  # in row order


def match_external_ids(
    key: Field, values: Sequence[object], rows: Iterable[int], lookup: Lookup
) -> Matches:
    """`rows`: the rows still live, in order; `values`: the key column, coerced."""
    out = Matches()
    fold = (lambda s: s) if key.case_sensitive else str.lower
    rows_by_key: dict[object, list[int]] = defaultdict(list)
    for i in rows:
        v = values[i]
        if v == "" or v is None:
            out.errors[i] = RecordError("MISSING_ARGUMENT", f"{key.name} not specified")
            continue
        rows_by_key[fold(v) if isinstance(v, str) else v].append(i)
    for members in rows_by_key.values():
        if len(members) > 1:
            for i in members:
                out.errors[i] = RecordError(
                    "DUPLICATE_EXTERNAL_ID",
                    f"Duplicate external id specified: {values[i]}",
                    (key.name,),
                )
    keys = [values[m[0]] for m in rows_by_key.values() if len(m) == 1]
    found_by_key: dict[object, list[str]] = defaultdict(list)
    for stored, rid, deleted in lookup(keys):
        if not deleted:
            found_by_key[fold(stored) if isinstance(stored, str) else stored].append(rid)
    for k, members in rows_by_key.items():
        if len(members) != 1:
            continue
        i = members[0]
        found = found_by_key.get(k, [])
        if len(found) > 1:
            out.errors[i] = RecordError(
                "DUPLICATE_EXTERNAL_ID",
                f"{key.label}: more than one record found for external id field: [{', '.join(sorted(found))}]",
                (key.name,),
            )
        elif found:
            out.targets[i] = found[0]
        else:
            out.inserts.append(i)
    out.inserts.sort()
    return out
