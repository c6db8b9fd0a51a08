"""The part of a chunk's work that needs no database: row shape checks and column coercion.

Kept apart from engine.dml so that the worker can run it on a thread of its own for the next
internal batch while the current one is being written (worker.Prefetch): everything here is a
pure function of the rows, the plan and the schema. Lookups of parent records by external id
need the write transaction and stay in engine.dml.
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bulkforce.engine.coerce import Errors, coerce, coerce_id, unstorable
from bulkforce.engine.errors import RecordError
from bulkforce.engine.plan import Plan
from bulkforce.engine.schema import KNOWN_PREFIXES, STRING_TYPES, Field, Schema
from bulkforce.model import Operation

if TYPE_CHECKING:
    from bulkforce.engine.stage import StagedInsert


@dataclass
class Prepared:
    """One chunk, checked and coerced column by column.

    `errors` holds what the file itself got wrong (malformed row, wrong width, a value no
    database can hold); `col_errors` the coercion errors per column, merged into `errors`
    in column order by engine.dml once the lookup columns are resolved, so that a row with
    several bad cells reports the same one whichever thread coerced it."""

    n: int
    raw: list[Sequence[str]]
    errors: list[RecordError | None]
    values: dict[int, Sequence[object]] = field(default_factory=dict)
    col_errors: dict[int, Errors] = field(default_factory=dict)
    # columns as an insert stores them (stored_column), made ahead for inserting operations
    stored: dict[int, Sequence[object]] = field(default_factory=dict)
    # the whole insert made ready ahead of the transaction, if it could be (engine.stage)
    staged: StagedInsert | None = None


def default_value(f: Field) -> object:
    """The field's default as a stored value; None if the schema's default does not fit it."""
    vals, errs = coerce(f, [f.default_value or ""])
    return None if errs or vals[0] == "" else vals[0]


def stored_column(f: Field, vals: Sequence[object], user: str) -> Sequence[object]:
    """A coerced column as an insert stores it: a blank cell means "not specified", so the
    field's default applies (false for a checkbox, the user for OwnerId), else NULL."""
    if f.type == "boolean":
        return [False if v == "" or v is None else v for v in vals]
    if f.default_value is not None and "" in vals:
        dv = default_value(f)
        return [dv if v == "" else v for v in vals]
    if f.name == "OwnerId":
        return [user if v == "" else v for v in vals]
    if "" not in vals:  # one C-level scan; most columns have no blanks
        return vals
    if f.type in STRING_TYPES:
        return [v or None for v in vals]  # str or None only: "" is the one falsy
    return [None if v == "" else v for v in vals]


class _Except:
    """Every key prefix but some."""

    def __init__(self, excluded: set[str]) -> None:
        self.excluded = excluded

    def __contains__(self, prefix: object) -> bool:
        return prefix not in self.excluded


def reference_prefixes(schema: Schema, f: Field) -> Container[str]:
    """Key prefixes a reference field accepts. When a target is not loaded, any prefix
    except the other loaded objects' (its own is unknown to us)."""
    out = set()
    unknown = False
    for ref in f.reference_to:
        target = schema.get(ref)
        if target is not None:
            out.add(target.key_prefix)
        elif ref in KNOWN_PREFIXES:
            out.add(KNOWN_PREFIXES[ref])
        else:
            unknown = True
    if not unknown:
        return out
    others = {o.key_prefix for o in schema.objects.values()} | set(KNOWN_PREFIXES.values())
    return _Except(others - out)


def coerced_columns(plan: Plan) -> list[int]:
    """The columns an operation validates, in header order (lookup columns included)."""
    op = plan.operation
    if op in (Operation.DELETE, Operation.HARD_DELETE):
        return []  # only the Id column matters, parsed against the table
    skip: set[int] = set()
    if op is Operation.UPDATE and plan.id_col is not None:
        skip.add(plan.id_col)
    key = plan.key_field
    if op is Operation.UPSERT and key is not None and key.name == "Id" and plan.key_col is not None:
        skip.add(plan.key_col)
    return [j for j in range(len(plan.fields)) if j not in skip]


def prepare(
    schema: Schema, plan: Plan, rows: Sequence[Sequence[str]], bad: Mapping[int, RecordError],
    holds_nul: bool, user_id: str, checked: bool = False,
) -> Prepared:  # fmt: skip
    """`bad`: rows (by index) that already failed (malformed CSV); `holds_nul`: whether the
    store keeps a NUL inside text (engine.coerce.unstorable); `user_id`: the user the chunk
    is applied as (a blank OwnerId in Prepared.stored is theirs); `checked`: the caller
    knows that no value holds a NUL or a lone surrogate (RowReader.clean), so unstorable
    need not look (it joins and encodes every value: ~9 ms per 10,000 rows)."""
    n = len(rows)
    width = len(plan.fields)
    errors: list[RecordError | None] = [None] * n
    if not checked:
        bad = {**unstorable(rows, [f.name for f in plan.fields], holds_nul), **bad}
    if rows and (bad or set(map(len, rows)) != {width}):
        blank = [""] * width
        fixed: list[Sequence[str]] = []
        for i, r in enumerate(rows):
            if i in bad:
                fixed.append(blank)
                errors[i] = bad[i]
            elif len(r) == width:
                fixed.append(r)
            else:
                fixed.append(blank)
                errors[i] = RecordError(
                    "INVALID_FIELD", f"Row has {len(r)} values but the header has {width} columns"
                )
        rows = fixed
    raw: list[Sequence[str]] = list(zip(*rows, strict=True)) if n else [() for _ in range(width)]
    out = Prepared(n, raw, errors)
    own = {plan.obj.key_prefix}
    inserting = plan.operation in (Operation.INSERT, Operation.UPSERT)
    for j in coerced_columns(plan):
        if j in plan.lookups:
            continue  # resolved against the table inside the transaction (engine.dml)
        f = plan.fields[j]
        if f.type == "id":
            vals, errs = coerce_id(f, raw[j], own)
        elif f.type == "reference":
            vals, errs = coerce_id(f, raw[j], reference_prefixes(schema, f))
        else:
            vals, errs = coerce(f, raw[j])
        out.values[j] = vals
        out.col_errors[j] = errs
        if inserting and f.createable and f.name != "Id":
            out.stored[j] = stored_column(f, vals, user_id)
    return out
