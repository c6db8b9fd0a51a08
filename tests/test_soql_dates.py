"""Relative date literals as day ranges, checked as properties over any day: the documented
relations between THIS/LAST/NEXT and their _N_ forms, Sunday weeks, calendar fiscal years."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bulkforce.soql.dates import RELATIVE, RELATIVE_N, day_range, day_start_utc

DAYS = st.dates(dt.date(1990, 1, 1), dt.date(2090, 12, 31))
UNITS = ["WEEK", "MONTH", "QUARTER", "YEAR", "FISCAL_QUARTER", "FISCAL_YEAR"]


@given(today=DAYS)
def test_units_tile_time_around_today(today: dt.date) -> None:
    for unit in UNITS:
        last, this, nxt = (day_range(f"{w}_{unit}", 0, today) for w in ("LAST", "THIS", "NEXT"))
        assert last[1] == this[0] and this[1] == nxt[0], unit
        assert this[0] <= today < this[1], unit
        plural = unit + "S"
        assert day_range(f"LAST_N_{plural}", 1, today) == last, unit
        assert day_range(f"NEXT_N_{plural}", 1, today) == nxt, unit
        assert day_range(f"N_{plural}_AGO", 1, today) == last, unit
        assert day_range(f"N_{plural}_AGO", 0, today) == this, unit
        three = day_range(f"LAST_N_{plural}", 3, today)
        assert three[1] == this[0] and three[0] == day_range(f"N_{plural}_AGO", 3, today)[0]


@given(today=DAYS, n=st.integers(0, 400))
def test_day_literals(today: dt.date, n: int) -> None:
    day = dt.timedelta(days=1)
    assert day_range("LAST_N_DAYS", n, today) == (today - n * day, today + day)
    assert day_range("NEXT_N_DAYS", n, today) == (today + day, today + (n + 1) * day)
    assert day_range("N_DAYS_AGO", n, today) == (today - n * day, today - (n - 1) * day)
    assert day_range("LAST_90_DAYS", 0, today) == day_range("LAST_N_DAYS", 90, today)
    assert day_range("NEXT_90_DAYS", 0, today) == day_range("NEXT_N_DAYS", 90, today)
    assert day_range("YESTERDAY", 0, today)[1] == day_range("TODAY", 0, today)[0]
    assert day_range("TOMORROW", 0, today)[0] == day_range("TODAY", 0, today)[1]


@given(today=DAYS)
def test_weeks_start_on_sunday_and_years_on_january_first(today: dt.date) -> None:
    start, end = day_range("THIS_WEEK", 0, today)
    assert start.weekday() == 6 and (end - start).days == 7
    assert day_range("THIS_FISCAL_YEAR", 0, today) == (dt.date(today.year, 1, 1),
                                                       dt.date(today.year + 1, 1, 1))  # fmt: skip
    q_start, q_end = day_range("THIS_QUARTER", 0, today)
    assert q_start.day == 1 and q_start.month in (1, 4, 7, 10) and q_start <= today < q_end


def test_every_documented_literal_is_known() -> None:
    documented = {
        "YESTERDAY", "TODAY", "TOMORROW", "LAST_WEEK", "THIS_WEEK", "NEXT_WEEK", "LAST_MONTH",
        "THIS_MONTH", "NEXT_MONTH", "LAST_90_DAYS", "NEXT_90_DAYS", "THIS_QUARTER",
        "LAST_QUARTER", "NEXT_QUARTER", "THIS_YEAR", "LAST_YEAR", "NEXT_YEAR",
        "THIS_FISCAL_QUARTER", "LAST_FISCAL_QUARTER", "NEXT_FISCAL_QUARTER", "THIS_FISCAL_YEAR",
        "LAST_FISCAL_YEAR", "NEXT_FISCAL_YEAR",
    }  # fmt: skip
    documented_n = {
        "LAST_N_DAYS", "NEXT_N_DAYS", "N_DAYS_AGO", "NEXT_N_WEEKS", "LAST_N_WEEKS", "N_WEEKS_AGO",
        "NEXT_N_MONTHS", "LAST_N_MONTHS", "N_MONTHS_AGO", "NEXT_N_QUARTERS", "LAST_N_QUARTERS",
        "N_QUARTERS_AGO", "NEXT_N_YEARS", "LAST_N_YEARS", "N_YEARS_AGO", "NEXT_N_FISCAL_QUARTERS",
        "LAST_N_FISCAL_QUARTERS", "N_FISCAL_QUARTERS_AGO", "NEXT_N_FISCAL_YEARS",
        "LAST_N_FISCAL_YEARS", "N_FISCAL_YEARS_AGO",
    }  # fmt: skip
    assert documented == RELATIVE and documented_n == RELATIVE_N


@pytest.mark.parametrize(("tz", "start"), [
    ("UTC", "2024-03-10T00:00:00+00:00"),
    ("America/New_York", "2024-03-10T05:00:00+00:00"),  # the day daylight time begins
    ("Asia/Kolkata", "2024-03-09T18:30:00+00:00"),
])  # fmt: skip
def test_days_begin_at_local_midnight(tz: str, start: str) -> None:
    assert day_start_utc(dt.date(2024, 3, 10), tz) == dt.datetime.fromisoformat(start)
