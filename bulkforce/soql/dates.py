"""Date and datetime literals: the lexical forms clients send (query.md §2.2) and the
relative literals (TODAY, LAST_N_DAYS:n, THIS_FISCAL_QUARTER, …) as half-open day ranges.

Weeks start on Sunday and the fiscal year is the calendar year (an org's defaults); days are
those of the configured time zone (`--timezone`, UTC unless set)."""

from __future__ import annotations

import datetime as dt
import re
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):?(\d{2}))"
)

RELATIVE = frozenset(
    [
        "YESTERDAY",
        "TODAY",
        "TOMORROW",
        "LAST_WEEK",
        "THIS_WEEK",
        "NEXT_WEEK",
        "LAST_MONTH",
        "THIS_MONTH",
        "NEXT_MONTH",
        "LAST_90_DAYS",
        "NEXT_90_DAYS",
        "THIS_QUARTER",
        "LAST_QUARTER",
        "NEXT_QUARTER",
        "THIS_YEAR",
        "LAST_YEAR",
        "NEXT_YEAR",
        "THIS_FISCAL_QUARTER",
        "LAST_FISCAL_QUARTER",
        "NEXT_FISCAL_QUARTER",
        "THIS_FISCAL_YEAR",
        "LAST_FISCAL_YEAR",
        "NEXT_FISCAL_YEAR",
    ]
)
RELATIVE_N = frozenset(
    [
        "LAST_N_DAYS",
        "NEXT_N_DAYS",
        "N_DAYS_AGO",
        "NEXT_N_WEEKS",
        "LAST_N_WEEKS",
        "N_WEEKS_AGO",
        "NEXT_N_MONTHS",
        "LAST_N_MONTHS",
        "N_MONTHS_AGO",
        "NEXT_N_QUARTERS",
        "LAST_N_QUARTERS",
        "N_QUARTERS_AGO",
        "NEXT_N_YEARS",
        "LAST_N_YEARS",
        "N_YEARS_AGO",
        "NEXT_N_FISCAL_QUARTERS",
        "LAST_N_FISCAL_QUARTERS",
        "N_FISCAL_QUARTERS_AGO",
        "NEXT_N_FISCAL_YEARS",
        "LAST_N_FISCAL_YEARS",
        "N_FISCAL_YEARS_AGO",
    ]
)


def parse_date(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def parse_time(text: str) -> dt.time:
    """A time literal `hh:mm:ss[.sss]Z` (time fields hold no zone; Salesforce writes Z)."""
    return dt.time.fromisoformat(text[:-1])


def parse_datetime(text: str) -> dt.datetime:
    """`2024-01-01T00:00:00Z`, `….000Z`, `….000000Z`, `….000+0000`, `…+00:00`,
    `….123456789+02:00`: all the same kind of instant (digits past microseconds dropped)."""
    m = _DATETIME.fullmatch(text)
    if not m:
        raise ValueError(text)
    frac = (m[7] or "0")[:6].ljust(6, "0")
    tz = dt.UTC
    if m[9]:
        offset = dt.timedelta(hours=int(m[10]), minutes=int(m[11]))
        if offset >= dt.timedelta(hours=24):
            raise ValueError(text)
        tz = dt.timezone(-offset if m[9] == "-" else offset)
    y, mo, d, h, mi, s = (int(m[i]) for i in range(1, 7))
    return dt.datetime(y, mo, d, h, mi, s, int(frac), tzinfo=tz).astimezone(dt.UTC)


def _month_start(d: dt.date, add: int = 0) -> dt.date:
    months = d.year * 12 + d.month - 1 + add
    return dt.date(months // 12, months % 12 + 1, 1)


def _quarter_start(d: dt.date, add: int = 0) -> dt.date:
    return _month_start(dt.date(d.year, (d.month - 1) // 3 * 3 + 1, 1), 3 * add)


def _year_start(d: dt.date, add: int = 0) -> dt.date:
    return dt.date(d.year + add, 1, 1)


def _week_start(d: dt.date, add: int = 0) -> dt.date:
    return d - dt.timedelta(days=(d.weekday() + 1) % 7) + dt.timedelta(weeks=add)


_UNITS = {"WEEK": (_week_start,), "MONTH": (_month_start,), "QUARTER": (_quarter_start,),
          "YEAR": (_year_start,)}  # fmt: skip


def day_range(name: str, n: int, today: dt.date) -> tuple[dt.date, dt.date]:
    """The days [start, end) a relative literal covers, `today` being the current day."""
    day = dt.timedelta(days=1)
    name = name.replace("_FISCAL", "")
    simple = {"YESTERDAY": (today - day, today), "TODAY": (today, today + day),
              "TOMORROW": (today + day, today + 2 * day),
              "LAST_90_DAYS": (today - 90 * day, today + day),
              "NEXT_90_DAYS": (today + day, today + 91 * day)}  # fmt: skip
    if name in simple:
        return simple[name]
    if name == "LAST_N_DAYS":
        return today - n * day, today + day
    if name == "NEXT_N_DAYS":
        return today + day, today + (n + 1) * day
    if name == "N_DAYS_AGO":
        return today - n * day, today - (n - 1) * day
    if name.startswith("N_"):  # N_WEEKS_AGO …
        start = _UNITS[name[2:-4].rstrip("S")][0]
        return start(today, -n), start(today, -n + 1)
    word, _, unit = name.partition("_")
    if word in ("THIS", "LAST", "NEXT") and unit in _UNITS:
        start = _UNITS[unit][0]
        k = {"THIS": 0, "LAST": -1, "NEXT": 1}[word]
        return start(today, k), start(today, k + 1)
    # LAST_N_<UNIT>S / NEXT_N_<UNIT>S: whole units before or after the current one
    unit = name.split("_N_")[1].rstrip("S")
    start = _UNITS[unit][0]
    if name.startswith("LAST"):
        return start(today, -n), start(today, 0)
    return start(today, 1), start(today, n + 1)


@cache
def zone(tz: str) -> ZoneInfo:
    """The IANA zone `tz`; a configuration error (ValueError) when there is none."""
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {tz!r}") from None


def today_in(tz: str, now: dt.datetime) -> dt.date:
    return now.astimezone(zone(tz)).date()


def day_start_utc(day: dt.date, tz: str) -> dt.datetime:
    """The instant a day begins in the time zone, in UTC."""
    return dt.datetime.combine(day, dt.time(), tzinfo=zone(tz)).astimezone(dt.UTC)
