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
