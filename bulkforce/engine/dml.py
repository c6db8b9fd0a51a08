"""Applies one chunk of CSV rows to an sObject table: insert, update, upsert, delete, hardDelete.

Validation is column-wise (engine.coerce); the database sees one executemany per chunk on
the happy path. Per-record outcomes come back in row order for the result files.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence

from bulkforce.engine import ids
from bulkforce.engine.coerce import NULL, Coerced, Errors
from bulkforce.engine.errors import (
    ENTITY_IS_DELETED,
    INVALID_CROSS_REFERENCE,
    RecordError,
    not_writable,
    required_missing,
)
from bulkforce.engine.outcome import InsertRows, Outcome
from bulkforce.engine.plan import Plan
from bulkforce.engine.prepare import (
    Prepared,
    coerced_columns,
    default_value,
    prepare,
    stored_column,
)
from bulkforce.engine.refusals import RowWrites
from bulkforce.engine.schema import Schema
from bulkforce.engine.upsert import match_external_ids
from bulkforce.model import Operation
from bulkforce.store import Tx
from bulkforce.store.base import ColumnRows, RecordTable


def _merge(errors: list[RecordError | None], new: Errors) -> None:
    for i, e in new.items():
        if errors[i] is None:
            errors[i] = e


class ChunkRun:
    """One chunk through one operation, inside the caller's transaction (`tx` None: the
    part of an insert that needs no database, ahead of it: engine.stage)."""

    def __init__(
        self, schema: Schema, plan: Plan, tx: Tx | None, prepared: Prepared, user_id: str,
        now: str, allocate: Callable[[str, int], int] | None = None,
    ) -> None:  # fmt: skip
        self.schema, self.plan, self._tx, self.user_id, self.now = schema, plan, tx, user_id, now
        self._allocate = allocate
        self.obj = plan.obj
        self.staged = prepared.staged
        self.n = prepared.n
        self.errors = prepared.errors
        self.ids = [""] * self.n
        self.created = [False] * self.n
        self.raw = prepared.raw
        self.values: dict[int, Sequence[object]] = dict(prepared.values)
        self.col_errors = prepared.col_errors
        self.stored = prepared.stored  # made with the same user_id (apply_chunk, worker)

    # ---- helpers ---------------------------------------------------------------------------

    @property
    def tx(self) -> Tx:
        assert self._tx is not None, "staged work that needs the database"
        return self._tx

    @functools.cached_property
    def table(self) -> RecordTable:
        return self.tx.records(self.obj)

    def allocate(self, counter: str, count: int) -> int:
        return (self._allocate or self.tx.allocate)(counter, count)

    def outcome(self) -> Outcome:
        return Outcome(self.ids, self.created, self.errors)

    def _finish_columns(self) -> None:
        """Resolve the lookup columns, then take each column's coercion errors in header
        order: a row's first bad cell is the one it reports."""
        for j in coerced_columns(self.plan):
            if j in self.plan.lookups:
                vals, errs = self._resolve_parents(j, self.raw[j])
                self.values[j] = vals
            else:
                errs = self.col_errors[j]
            _merge(self.errors, errs)

    def _resolve_parents(self, j: int, col: Sequence[str]) -> Coerced:
        """Parent Ids for a `Rel.Field` column, by one indexed lookup per chunk."""
        parent, key = self.plan.lookups[j]
        fold = (lambda s: s) if key.case_sensitive else str.lower
        wanted = {fold(v) for v in col if v and v != NULL}
        found: dict[str, list[str]] = defaultdict(list)
        if wanted:
            keys = sorted({v for v in col if v and v != NULL})
            for stored, rid, deleted in self.tx.records(parent).lookup(key.name, keys):
                if not deleted:
                    found[fold(str(stored))].append(rid)
        vals: list[object] = []
        errs: Errors = {}
        for i, v in enumerate(col):
            if v == "" or v == NULL:
                vals.append(None if v == NULL else "")
                continue
            ids_ = found.get(fold(v), [])
            vals.append(ids_[0] if len(ids_) == 1 else "")
            if not ids_:
                errs[i] = RecordError(
                    "INVALID_FIELD",
                    f"Foreign key external ID: {v} not found for field {key.name} in entity {parent.name}",
                )
            elif len(ids_) > 1:
                errs[i] = RecordError(
                    "DUPLICATE_EXTERNAL_ID",
                    f"{key.label}: more than one record found for external id field: [{', '.join(sorted(ids_))}]",
                    (key.name,),
                )
        return vals, errs

    def _live(self, idx: Sequence[int]) -> list[int]:
        errors = self.errors
        return [i for i in idx if errors[i] is None]

    def _check_references(self, idx: Sequence[int]) -> None:
        for j, f in enumerate(self.plan.fields):
            if f.type != "reference" or j not in self.values or j in self.plan.lookups:
                continue
            vals = self.values[j]
            wanted: dict[str, list[int]] = defaultdict(list)
            for i in idx:
                v = vals[i]
                if self.errors[i] is None and isinstance(v, str) and v:
                    wanted[v].append(i)
            by_prefix: dict[str, list[str]] = defaultdict(list)
            for v in wanted:
                by_prefix[v[:3]].append(v)
            for prefix, values in by_prefix.items():
                target = self.schema.by_prefix(prefix)
                if target is None:
                    continue  # an object we only know by prefix (Profile, ...): shape-checked
                found = {
                    i
                    for _, i, deleted in self.tx.records(target).lookup("Id", values)
                    if not deleted
                }
                for v in values:
                    if v not in found:
                        for i in wanted[v]:
                            if self.errors[i] is None:
                                self.errors[i] = RecordError(
                                    "INVALID_CROSS_REFERENCE_KEY",
                                    "invalid cross reference id",
                                    (f.name,),
                                )

    def _target_ids(self, col: Sequence[str], verb: str, blank_ok: bool = False) -> list[str]:
        """Parse an Id column of update/delete rows; errors for blank, malformed, wrong object."""
        out: list[str] = []
        prefix = self.obj.key_prefix
        for i, v in enumerate(col):
            norm = ids.normalize(v) if v and v != NULL else None
            if norm is not None and norm[:3] == prefix:
                out.append(norm)
                continue
            out.append("")
            if self.errors[i] is not None or (blank_ok and v == ""):
                continue
            if not v or v == NULL:
                self.errors[i] = RecordError(
                    "MISSING_ARGUMENT", f"Id not specified in an {verb} call"
                )
            elif norm is None:
                self.errors[i] = RecordError("MALFORMED_ID", f"bad id {v}")
            else:
                self.errors[i] = RecordError(
                    "MALFORMED_ID", f"{self.obj.label} ID: id value of incorrect type: {v}", ("Id",)
                )
        return out

    def _existing(self, idx: Sequence[int], targets: Sequence[str], allow_deleted: bool) -> None:
        """Fail rows whose target record is missing (or deleted), and repeated ids."""
        live = [i for i in idx if self.errors[i] is None]
        state = {
            rid: deleted for _, rid, deleted in self.table.lookup("Id", [targets[i] for i in live])
        }
        seen: set[str] = set()
        for i in live:
            rid = targets[i]
            self.ids[i] = rid
            if rid not in state:
                self.errors[i] = INVALID_CROSS_REFERENCE
            elif state[rid] and not allow_deleted:
                self.errors[i] = ENTITY_IS_DELETED
            elif rid in seen:
                self.errors[i] = RecordError("DUPLICATE_VALUE", f"Duplicate id in list: {rid}")
            seen.add(rid)

    def _write(
        self, columns: Sequence[str], rows: Sequence[tuple[object, ...]], idx: list[int], insert: bool,
        constants: dict[str, object], encoded: object = None,
    ) -> None:  # fmt: skip
        """One statement on the happy path; the rows the database refuses fail alone
        (engine.refusals)."""
        writes = RowWrites(self.tx, self.table, self.obj)
        for p, error in writes.write(columns, rows, insert, constants, encoded).items():
            self._fail(idx[p], error, insert)

    def _fail(self, i: int, error: RecordError, insert: bool) -> None:
        self.errors[i] = error
        self.created[i] = False
        if insert:
            self.ids[i] = ""

    # ---- operations ------------------------------------------------------------------------

    def insert(self, idx: Sequence[int]) -> None:
        rows = self.insert_rows(idx)
        if rows is not None:
            self._write(rows.columns, rows.rows, rows.good, insert=True, constants=rows.constants)

    def insert_rows(self, idx: Sequence[int]) -> InsertRows | None:
        """The checks of an insert, and the rows it writes with their new Ids (None: no row
        passed); every row's outcome is set as if the write succeeds."""
        fields = self.plan.fields
        obj = self.obj
        writable: list[int] = []
        for j, f in enumerate(fields):
            if j == self.plan.id_col and self.plan.operation is Operation.UPSERT:
                continue
            col = self.raw[j]
            if f.name == "Id" or not f.createable:
                err = (
                    RecordError(
                        "INVALID_FIELD_FOR_INSERT_UPDATE",
                        "cannot specify Id in an insert call",
                        ("Id",),
                    )
                    if f.name == "Id"
                    else not_writable(f.name)
                )
                for i in idx:
                    if col[i] != "" and self.errors[i] is None:
                        self.errors[i] = err
            else:
                writable.append(j)
        # required fields: missing column, blank, or #N/A
        in_header = {fields[j].name: j for j in writable}
        required = [f for f in obj.fields.values() if f.required_on_create]
        missing: dict[int, list[str]] = defaultdict(list)
        for f in required:
            at = in_header.get(f.name)
            if at is None:
                for i in idx:
                    missing[i].append(f.name)
                continue
            vals = self.values[at]
            if len(idx) == self.n and "" not in vals and None not in vals:
                continue  # the usual case, decided by two C-level scans
            for i in idx:
                if vals[i] == "" or vals[i] is None:
                    missing[i].append(f.name)
        for i, names in missing.items():
            if self.errors[i] is None:
                self.errors[i] = required_missing(names)
        self._check_references(idx)
        good = self._live(idx)
        if not good:
            return None
        first = self.allocate(f"id:{obj.key_prefix}", len(good))
        new_ids = ids.make_ids(obj.key_prefix, first, len(good))
        now, user = self.now, self.user_id
        columns = ["Id"]
        data: list[Sequence[object]] = [new_ids]
        defaults: dict[str, object] = {
            "CreatedDate": now, "CreatedById": user, "LastModifiedDate": now,
            "LastModifiedById": user, "SystemModstamp": now,
        }  # fmt: skip
        owner = obj.field("OwnerId")
        if owner is not None and "OwnerId" not in in_header:
            defaults["OwnerId"] = user
        for f in obj.fields.values():
            if not f.createable or f.name in in_header:
                continue
            if f.type == "boolean":
                defaults[f.name] = (f.default_value or "").lower() == "true"
            elif f.default_value is not None:
                defaults[f.name] = default_value(f)
        all_rows = len(good) == self.n
        for j in writable:
            f = fields[j]
            column = self.stored.get(j)
            if column is None:  # a lookup column, resolved in the transaction
                column = stored_column(f, self.values[j], user)
            if not all_rows:
                column = [column[i] for i in good]
            columns.append(f.name)
            data.append(column)
        for i, rid in zip(good, new_ids, strict=True):
            self.ids[i] = rid
            self.created[i] = True
        return InsertRows(columns, ColumnRows(data), good, defaults)

    def update(self, idx: Sequence[int], targets: Sequence[str]) -> None:
        fields = self.plan.fields
        writable: list[int] = []
        for j, f in enumerate(fields):
            if f.name == "Id" or j == self.plan.key_col:
                continue
            if not f.updateable:
                col = self.raw[j]
                for i in idx:
                    if col[i] != "" and self.errors[i] is None:
                        self.errors[i] = not_writable(f.name)
            else:
                writable.append(j)
        nonnull = [j for j in writable if not fields[j].nillable]
        for i in self._live(idx):
            missing = [fields[j].name for j in nonnull if self.values[j][i] is None]
            if missing:
                self.errors[i] = required_missing(missing)
        self._check_references(idx)
        good = self._live(idx)
        groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
        if any("" in self.values[j] for j in writable):  # one C-level scan per column
            for i in good:
                groups[tuple(j for j in writable if self.values[j][i] != "")].append(i)
        elif good:
            groups[tuple(writable)] = good  # the usual case: no blank cell, every column set
        stamp: dict[str, object] = {
            "LastModifiedDate": self.now, "SystemModstamp": self.now,
            "LastModifiedById": self.user_id,
        }  # fmt: skip
        for cols, members in groups.items():
            columns = [fields[j].name for j in cols]
            data = [[vals[i] for i in members] for vals in (self.values[j] for j in cols)]
            data.append([targets[i] for i in members])
            rows = list(zip(*data, strict=True))
            for i in members:
                self.ids[i] = targets[i]
            self._write(columns, rows, members, insert=False, constants=stamp)

    def run(self) -> Outcome:
        op = self.plan.operation
        everyone = range(self.n)
        if op is Operation.INSERT and self.staged is not None:
            staged = self.staged  # checked, with Ids and rows, ahead (engine.stage)
            self.ids, self.created = staged.outcome.ids, staged.outcome.created
            rows = staged.rows
            if rows is not None:
                self._write(
                    rows.columns, rows.rows, rows.good, insert=True, constants=rows.constants,
                    encoded=staged.encoded,
                )  # fmt: skip
        elif op is Operation.INSERT:
            self._finish_columns()
            self.insert(everyone)
        elif op is Operation.UPDATE:
            assert self.plan.id_col is not None
            targets = self._target_ids(self.raw[self.plan.id_col], "update")
            self._finish_columns()
            self._existing(everyone, targets, allow_deleted=False)
            self.update(everyone, targets)
        elif op in (Operation.DELETE, Operation.HARD_DELETE):
            assert self.plan.id_col is not None
            hard = op is Operation.HARD_DELETE
            targets = self._target_ids(self.raw[self.plan.id_col], "delete")
            self._existing(everyone, targets, allow_deleted=hard)
            good = [targets[i] for i in self._live(everyone)]
            if hard:
                self.table.hard_delete(good)
            else:
                self.table.soft_delete(good, self.now, self.user_id)
        else:
            self.upsert()
        return self.outcome()

    def upsert(self) -> None:
        plan = self.plan
        key = plan.key_field
        assert key is not None
        self._finish_columns()
        inserts: list[int] = []
        updates: list[int] = []
        targets = [""] * self.n
        if key.name == "Id":
            if plan.key_col is None:
                self.insert(range(self.n))
                return
            col = self.raw[plan.key_col]
            with_id = [i for i, v in enumerate(col) if v != ""]
            inserts = [i for i, v in enumerate(col) if v == ""]
            parsed = self._target_ids(col, "upsert", blank_ok=True)  # blank Id: insert
            self._existing(with_id, parsed, allow_deleted=False)
            targets = parsed
            updates = self._live(with_id)
        else:
            assert plan.key_col is not None
            found = match_external_ids(
                key, self.values[plan.key_col], self._live(range(self.n)),
                lambda keys: self.table.lookup(key.name, keys),
            )  # fmt: skip
            _merge(self.errors, found.errors)
            for i, rid in found.targets.items():
                targets[i] = self.ids[i] = rid
            updates = sorted(found.targets)
            inserts = found.inserts
        self.update(updates, targets)
        self.insert(inserts)


def apply_chunk(
    schema: Schema, plan: Plan, tx: Tx, rows: Sequence[Sequence[str]], user_id: str, now: str,
    bad: Mapping[int, RecordError] | None = None,
) -> Outcome:  # fmt: skip
    """`bad`: rows (by index) that already failed (malformed CSV); they are not written."""
    prepared = prepare(schema, plan, rows, bad or {}, tx.text_holds_nul, user_id)
    return ChunkRun(schema, plan, tx, prepared, user_id, now).run()


def apply_prepared(
    schema: Schema, plan: Plan, tx: Tx, prepared: Prepared, user_id: str, now: str
) -> Outcome:
    """apply_chunk for a chunk already through engine.prepare (the worker's prefetch)."""
    return ChunkRun(schema, plan, tx, prepared, user_id, now).run()
