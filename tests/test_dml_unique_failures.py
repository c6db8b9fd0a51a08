"""A unique violation in the middle of a chunk's update fails that record only: the records
before and after it in the file (and in Id order, the order the store writes them) keep their
new values and stamps, on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import inprocess_context

from bulkforce.engine.dml import apply_chunk
from bulkforce.engine.outcome import Outcome
from bulkforce.engine.plan import make_plan
from bulkforce.model import Operation

SCHEMA = Path(__file__).parent / "data" / "test_schema.json"
USER = "005000000000001AAA"
T0, T1 = "2024-01-01T00:00:00.000+0000", "2024-02-02T00:00:00.000+0000"
S0, S1 = T0[:19], T1[:19]


@pytest.fixture(params=["sqlite", "postgresql"])
def ctx(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    with inprocess_context(request.param, tmp_path / "data", [SCHEMA]) as context:
        yield context


def chunk(
    ctx: Any, op: Operation, header: list[str], rows: list[list[str]], now: str,
    ext: str | None = None,
) -> Outcome:  # fmt: skip
    obj = ctx.schema.get("Contact")
    plan = make_plan(ctx.schema, obj, op, header, ext)
    with ctx.store.transaction() as tx:
        return apply_chunk(ctx.schema, plan, tx, rows, USER, now)


def stored(ctx: Any, rid: str) -> tuple[str, str, str]:
    rec = ctx.store.get_record(ctx.schema.get("Contact"), rid)
    # to the second: the databases render the stored timestamp differently
    return rec["LastName"], rec["External_Id__c"], str(rec["LastModifiedDate"])[:19]


def test_update_with_a_taken_unique_value_fails_that_record_only(ctx: Any) -> None:
    made = chunk(
        ctx, Operation.INSERT, ["LastName", "External_Id__c"],
        [["A", "a"], ["B", "b"], ["C", "c"], ["D", "d"]], T0,
    )  # fmt: skip
    a, b, c, d = made.ids
    # b takes c's key while c still holds it: b comes second in Id order and in the file
    out = chunk(
        ctx, Operation.UPDATE, ["Id", "LastName", "External_Id__c"],
        [[d, "D2", "x"], [b, "B2", "c"], [a, "A2", "y"], [c, "C2", "z"]], T1,
    )  # fmt: skip
    assert out.ids == [d, b, a, c]
    assert out.created == [False] * 4
    assert [e is None for e in out.errors] == [True, False, True, True]
    err = out.errors[1]
    assert err is not None and (err.code, err.message) == (
        "DUPLICATE_VALUE",
        f"duplicate value found: External_Id__c duplicates value on record with id: {c[:15]}",
    )
    assert stored(ctx, a) == ("A2", "y", S1)
    assert stored(ctx, b) == ("B", "b", S0)
    assert stored(ctx, c) == ("C2", "z", S1)
    assert stored(ctx, d) == ("D2", "x", S1)


def test_upsert_update_with_a_taken_unique_value_fails_that_record_only(ctx: Any) -> None:
    made = chunk(
        ctx, Operation.INSERT, ["LastName", "External_Id__c"],
        [["A", "a"], ["B", "b"], ["C", "c"]], T0,
    )  # fmt: skip
    a, b, c = made.ids
    # keyed by Id: a and c update, the blank Id inserts, b takes c's external id before c
    # gives it up (in the file's order)
    out = chunk(
        ctx, Operation.UPSERT, ["Id", "LastName", "External_Id__c"],
        [[b, "B2", "c"], ["", "N", "n"], [c, "C2", "z"], [a, "A2", "y"]], T1, "Id",
    )  # fmt: skip
    assert out.created == [False, True, False, False]
    assert [e is None for e in out.errors] == [False, True, True, True]
    err = out.errors[0]
    assert err is not None and err.code == "DUPLICATE_VALUE" and c[:15] in err.message
    assert [out.ids[i] for i in (0, 2, 3)] == [b, c, a]
    assert stored(ctx, a) == ("A2", "y", S1)
    assert stored(ctx, b) == ("B", "b", S0)
    assert stored(ctx, c) == ("C2", "z", S1)
    assert stored(ctx, out.ids[1]) == ("N", "n", S1)
