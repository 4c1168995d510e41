"""Business calendars: when a store is working, and business time measured on that.

Pure functions over a `Calendar` value; nothing here touches the database, so the arithmetic can be
tested day by day and reused by the sweep, the API and the reports alike.

Which days are working days:
- China: statutory holidays and the 调休 make-up working days come from the `chinesecalendar` package.
  It only knows the years the State Council has published (up to 2026 in the version we pin); for a
  later year it raises, and we fall back to the store's weekly hours alone (weekends off, no statutory
  holidays) until the package is updated. A make-up Saturday or Sunday uses the store's hours for that
  weekday if it has any, otherwise its first configured weekday's hours (it is a normal working day).
- Elsewhere: public holidays from the `holidays` package for the store's country (and subdivision).
- Everywhere: the store's own closures (stocktaking, company holidays).

Times are worked out on the store's local wall clock and converted to UTC before any subtraction:
subtracting two aware datetimes in the same zone uses the wall clock, which is an hour wrong across a
daylight-saving change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from zoneinfo import ZoneInfo

import chinese_calendar
import holidays as holidays_lib

UTC = dt.UTC
Interval = tuple[dt.time, dt.time]

DEFAULT_HOURS: dict[int, tuple[Interval, ...]] = {
    weekday: ((dt.time(9, 0), dt.time(18, 0)),) for weekday in range(5)
}
# A calendar with no working time at all would make "add N business minutes" run forever.
_MAX_DAYS = 3 * 366


@dataclass(frozen=True)
class Calendar:
    timezone: str = "Asia/Shanghai"
    # weekday (Monday = 0) -> working intervals in local time; an end of 00:00 means midnight.
    hours: Mapping[int, tuple[Interval, ...]] = field(default_factory=lambda: dict(DEFAULT_HOURS))
    country: str = "CN"  # ISO 3166 code, or "" for no public holidays
    subdivision: str = ""
    closures: frozenset[dt.date] = frozenset()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class DayKind:
    WORKDAY = "workday"
    MAKEUP_WORKDAY = "makeup_workday"  # 调休: a weekend day worked in exchange for a holiday
    HOLIDAY = "holiday"
    CLOSURE = "closure"
    WEEKLY = "weekly"  # no hours configured for this weekday


def chinese_day(day: dt.date) -> tuple[bool, str] | None:
    """(is a statutory holiday, is a make-up workday) from chinesecalendar, or None outside its years."""
    try:
        on_holiday, name = chinese_calendar.get_holiday_detail(day)
    except NotImplementedError:
        return None
    if on_holiday and name:
        return True, ""
    if not on_holiday and name:
        return False, "makeup"
    return False, ""


@lru_cache(maxsize=64)
def _public_holidays(country: str, subdivision: str, year: int) -> frozenset[dt.date]:
    try:
        found = holidays_lib.country_holidays(country, subdiv=subdivision or None, years=year)
    except NotImplementedError:  # the package does not know this country
        return frozenset()
    return frozenset(found.keys())


def day_kind(calendar: Calendar, day: dt.date) -> str:
    if day in calendar.closures:
        return DayKind.CLOSURE
    if calendar.country == "CN":
        detail = chinese_day(day)
        if detail is not None:
            is_holiday, makeup = detail
            if is_holiday:
                return DayKind.HOLIDAY
            if makeup:
                return DayKind.MAKEUP_WORKDAY
    elif calendar.country and day in _public_holidays(calendar.country, calendar.subdivision, day.year):
        return DayKind.HOLIDAY
    return DayKind.WORKDAY if calendar.hours.get(day.weekday()) else DayKind.WEEKLY


def _hours_on(calendar: Calendar, day: dt.date) -> tuple[Interval, ...]:
    kind = day_kind(calendar, day)
    if kind == DayKind.WORKDAY:
        return tuple(calendar.hours.get(day.weekday(), ()))
    if kind == DayKind.MAKEUP_WORKDAY:
        own = calendar.hours.get(day.weekday())
        if own:
            return tuple(own)
        for weekday in sorted(calendar.hours):
            if calendar.hours[weekday]:
                return tuple(calendar.hours[weekday])
    return ()


def working_intervals(calendar: Calendar, day: dt.date) -> list[tuple[dt.datetime, dt.datetime]]:
    """The working intervals of one local day, in UTC."""
    zone = calendar.zone
    result = []
    for start, end in _hours_on(calendar, day):
        start_at = dt.datetime.combine(day, start, tzinfo=zone).astimezone(UTC)
        end_day = day + dt.timedelta(days=1) if end == dt.time(0, 0) else day
        end_at = dt.datetime.combine(end_day, end, tzinfo=zone).astimezone(UTC)
        if end_at > start_at:
            result.append((start_at, end_at))
    return result


def _intervals_from(calendar: Calendar, moment: dt.datetime) -> Iterator[tuple[dt.datetime, dt.datetime]]:
    day = moment.astimezone(calendar.zone).date() - dt.timedelta(days=1)  # an interval may cross midnight
    for offset in range(_MAX_DAYS):
        yield from working_intervals(calendar, day + dt.timedelta(days=offset))


def _require_aware(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("business time needs timezone-aware datetimes")
    return moment.astimezone(UTC)


def add_business_seconds(calendar: Calendar, start: dt.datetime, seconds: float) -> dt.datetime:
    """The moment `seconds` of working time after `start` (returned in UTC). Zero from outside working
    hours is `start` itself: nothing is owed yet, so nothing is late yet."""
    start = _require_aware(start)
    if seconds <= 0:
        return start
    remaining = dt.timedelta(seconds=seconds)
    for begin, end in _intervals_from(calendar, start):
        if end <= start:
            continue
        begin = max(begin, start)
        available = end - begin
        if remaining <= available:
            return begin + remaining
        remaining -= available
    raise ValueError(f"the calendar has no working time within {_MAX_DAYS} days")


def add_business_minutes(calendar: Calendar, start: dt.datetime, minutes: float) -> dt.datetime:
    return add_business_seconds(calendar, start, minutes * 60)


def business_seconds_between(calendar: Calendar, start: dt.datetime, end: dt.datetime) -> float:
    """Working time between two moments, in seconds (0 when `end` is not after `start`)."""
    start, end = _require_aware(start), _require_aware(end)
    if end <= start:
        return 0.0
    total = dt.timedelta()
    for begin, finish in _intervals_from(calendar, start):
        if begin >= end:
            break
        overlap = min(finish, end) - max(begin, start)
        if overlap > dt.timedelta():
            total += overlap
    return total.total_seconds()


def add_time(calendar: Calendar, start: dt.datetime, seconds: float, *, business: bool) -> dt.datetime:
    """`seconds` of business time, or of plain elapsed time, after `start`."""
    if business:
        return add_business_seconds(calendar, start, seconds)
    return _require_aware(start) + dt.timedelta(seconds=max(seconds, 0))


def elapsed(calendar: Calendar, start: dt.datetime, end: dt.datetime, *, business: bool) -> float:
    if business:
        return business_seconds_between(calendar, start, end)
    return max((_require_aware(end) - _require_aware(start)).total_seconds(), 0.0)


def parse_hours(raw: Mapping[str, list[list[str]]] | None) -> dict[int, tuple[Interval, ...]]:
    """{"0": [["09:00", "18:00"]], ...} as stored on the model -> the calendar's hours. Bad values raise
    ValueError so the service can refuse them with a code."""
    if not raw:
        return {}
    hours: dict[int, tuple[Interval, ...]] = {}
    for key, intervals in raw.items():
        weekday = int(key)
        if not 0 <= weekday <= 6:
            raise ValueError(f"weekday {key} is not 0 (Monday) to 6 (Sunday)")
        parsed = []
        for start, end in intervals:
            begin, finish = dt.time.fromisoformat(start), dt.time.fromisoformat(end)
            if finish != dt.time(0, 0) and finish <= begin:
                raise ValueError(f"{start}-{end} ends before it starts")
            parsed.append((begin, finish))
        hours[weekday] = tuple(sorted(parsed))
    return hours
