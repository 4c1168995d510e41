"""Day counting in the store's time zone.

The law counts days, not hours: a 7-day window starts the day after signing and ends at 24:00 of
the 7th day (S3 Art 10; S6 Arts 201, 203(2)), whatever the hour of signing. Computing
``signed_at + 168h`` would cut off a buyer who signed at 23:50 almost a full day early, so every
window here is "last local day, closing at the next local midnight".
"""

from __future__ import annotations

import calendar as stdlib_calendar
import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

import chinese_calendar

ONE_DAY = dt.timedelta(days=1)

# chinese_calendar names holidays in English; buyers in China read them in Chinese.
HOLIDAY_NAMES_ZH = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "National Day": "国庆节",
    "Mid-autumn Festival": "中秋节",
    "Anti-Fascist 70th Day": "中国人民抗日战争暨世界反法西斯战争胜利70周年纪念日",
}


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_date(moment: dt.datetime, tz: ZoneInfo) -> dt.date:
    return moment.astimezone(tz).date()


def start_of_day(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=tz)


@dataclass(frozen=True, slots=True)
class Window:
    last_day: dt.date
    closes_at: dt.datetime
    extended_for: str | None = None

    def contains(self, moment: dt.datetime) -> bool:
        return moment < self.closes_at


def day_window(event_day: dt.date, days: int, tz: ZoneInfo, *, extend_on_cn_holiday: bool = False) -> Window:
    """The window of `days` days that starts the day after `event_day` (S3 Art 10(2); S6 Art 201)."""
    last_day = event_day + dt.timedelta(days=days)
    holiday = None
    if extend_on_cn_holiday:
        last_day, holiday = extend_past_cn_holiday(last_day)
    return Window(last_day, start_of_day(last_day + ONE_DAY, tz), holiday)


@lru_cache(maxsize=4096)
def extend_past_cn_holiday(last_day: dt.date) -> tuple[dt.date, str | None]:
    """S6 Art 203: a period whose last day is a statutory holiday ends on the day after the holiday.

    We move the last day only when it falls on a *named* statutory holiday (the National Day block,
    Spring Festival...) and move it to the first working day after, which `chinese_calendar` knows
    including 调休 make-up Saturdays. Years the package does not cover are left alone: guessing a
    holiday schedule would be worse than not extending.
    """
    try:
        on_holiday, name = chinese_calendar.get_holiday_detail(last_day)
    except NotImplementedError:
        return last_day, None
    if not (on_holiday and name):
        return last_day, None
    day = last_day + ONE_DAY
    try:
        while not chinese_calendar.is_workday(day):
            day += ONE_DAY
    except NotImplementedError:
        return last_day, None
    return day, name


def add_months(day: dt.date, months: int) -> dt.date:
    """Same day of the month `months` later, clamped to the month's end (31 Jan + 1 month = 28/29 Feb)."""
    years, month_index = divmod(day.month - 1 + months, 12)
    year = day.year + years
    month = month_index + 1
    return dt.date(year, month, min(day.day, stdlib_calendar.monthrange(year, month)[1]))
