"""The upload reader's quote check (wire/csvrows.well_formed) against the grammar it stands
for. A wrong answer either way is noticed: rows read wrong silently (a malformed row loaded
as if it were well formed) or a good upload's rows failing."""

from __future__ import annotations

import re

from hypothesis import example, given, settings
from hypothesis import strategies as st

from bulkforce.wire.csvrows import well_formed


def grammar(delimiter: str) -> re.Pattern[str]:
    """Rows in which every quote opens, closes or doubles inside a quoted value: a value is
    quoted (`"…"` with `""` inside) or holds no quote, delimiter or line ending."""
    d = re.escape(delimiter)
    field = f'(?:"(?:[^"]|"")*+"|[^"{d}\\r\\n]*+)'
    row = f"{field}(?:{d}{field})*+"
    return re.compile(f"(?:{row}(?:\\r\\n|\\r|\\n))*+(?:{row})?+")


@settings(max_examples=3000, deadline=None)
@given(
    text=st.text(alphabet=st.sampled_from(['"', ",", "|", "\t", "\n", "\r", "a", " ", "é"])),
    delimiter=st.sampled_from([",", "|", "\t"]),
)
@example('"a""b",c\n', ",")
@example('"a" ,b\n', ",")
@example('a"b\n', ",")
@example('"",""""\r\n"x"', ",")
@example('"a"b""', ",")
@example('x,"y\nz"|', "|")
def test_the_quote_check_agrees_with_the_grammar(text: str, delimiter: str) -> None:
    assert well_formed(text, delimiter) == bool(grammar(delimiter).fullmatch(text))


@settings(max_examples=1000, deadline=None)
@given(
    rows=st.lists(
        st.lists(st.text(alphabet=st.sampled_from(['"', ",", "\n", "a", " "])), min_size=1),
        min_size=1,
    ),
)
def test_rows_written_by_a_csv_writer_are_well_formed(rows: list[list[str]]) -> None:
    import csv
    import io

    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    assert well_formed(out.getvalue(), ",")


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(
        st.tuples(
            st.text(alphabet=st.sampled_from(["a", "\x00", '"', ",", "\n"]), max_size=6),
            st.text(alphabet=st.sampled_from(["b", "\x00", " "]), max_size=4),
        ),
        max_size=12,
    ),
    size=st.integers(1, 5),
)
@example([("a", "b"), ("x\x00", "y")], 1)  # a NUL only in a later chunk
@example([('a"b', "c"), ("d", "e")], 1)  # a malformed row: read again, not searched
def test_skipping_the_unstorable_check_never_changes_a_result(
    lines: list[tuple[str, str]], size: int
) -> None:
    """The worker skips engine.coerce.unstorable (joining and encoding every value) while
    the reader says no value read so far can hold a NUL (RowReader.clean): every chunk's
    record errors must be the same as with the check. On PostgreSQL a missed NUL is a
    batch the database refuses whole."""
    import io

    from bulkforce.engine.plan import make_plan
    from bulkforce.engine.prepare import prepare
    from bulkforce.engine.schema import build_schema, builtin_definitions
    from bulkforce.model import Operation
    from bulkforce.wire.csvrows import RowReader

    schema = build_schema(builtin_definitions(), lambda name: "a01")
    obj = schema.get("Account")
    assert obj is not None
    plan = make_plan(schema, obj, Operation.INSERT, ["Name", "Description"], None)
    # written by hand, not csv.writer: the malformed rows are wanted too
    body = "Name,Description\n" + "".join(f"{a},{b}\n" for a, b in lines)
    reader = RowReader(io.BytesIO(body.encode()), ",")
    reader.header()
    chunks = clean_chunks = 0
    while chunk := reader.next_rows(size):
        chunks += 1
        with_check = prepare(schema, plan, chunk, {}, False, "005000000000001AAA")
        skipped = prepare(schema, plan, chunk, {}, False, "005000000000001AAA", reader.clean)
        assert [e and e.render() for e in skipped.errors] == [
            e and e.render() for e in with_check.errors
        ]
        clean_chunks += reader.clean
    if "\x00" not in body and '"' not in body:  # the fast path is kept where it is safe
        assert clean_chunks == chunks
