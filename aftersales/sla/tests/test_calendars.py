"""Business time on real calendars: the 2026 Spring Festival with its 调休 Saturdays, weekends, a German
store across the change to summer time, public holidays and the store's own closures."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from aftersales.sla import calendars
from aftersales.sla.calendars import Calendar, add_business_minutes, business_seconds_between

SH = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
CN = Calendar()  # Monday to Friday, 09:00-18:00, Asia/Shanghai, statutory calendar
DE = Calendar(timezone="Europe/Berlin", country="DE",
              hours={d: ((dt.time(9), dt.time(17)),) for d in range(5)})


def sh(*args):
    return dt.datetime(*args).replace(tzinfo=SH)


def berlin(*args):
    return dt.datetime(*args).replace(tzinfo=BERLIN)


def test_friday_evening_before_spring_festival_runs_on_into_the_makeup_saturday():
    # 2026-02-14 is a Saturday worked in exchange for the holiday (调休): the clock runs on it.
    assert add_business_minutes(CN, sh(2026, 2, 13, 17, 0), 120) == sh(2026, 2, 14, 10, 0)


def test_the_spring_festival_week_is_skipped_entirely():
    # 60 minutes left on the make-up Saturday; 15-23 February is the holiday; work resumes Tuesday the 24th.
    assert add_business_minutes(CN, sh(2026, 2, 14, 17, 0), 120) == sh(2026, 2, 24, 10, 0)


def test_business_time_over_spring_festival_counts_three_working_days():
    # Friday the 13th, the make-up Saturday the 14th, Tuesday the 24th: 9 hours each.
    assert business_seconds_between(CN, sh(2026, 2, 13, 9, 0), sh(2026, 2, 25, 9, 0)) == 27 * 3600


def test_the_second_makeup_saturday_after_the_festival_is_a_working_day():
    assert add_business_minutes(CN, sh(2026, 2, 27, 18, 0), 30) == sh(2026, 2, 28, 9, 30)
    assert calendars.day_kind(CN, dt.date(2026, 2, 28)) == calendars.DayKind.MAKEUP_WORKDAY


def test_a_plain_weekend_is_skipped():
    assert add_business_minutes(CN, sh(2026, 11, 20, 17, 30), 60) == sh(2026, 11, 23, 9, 30)


def test_a_start_outside_working_hours_counts_from_the_next_opening():
    assert add_business_minutes(CN, sh(2026, 11, 23, 7, 0), 30) == sh(2026, 11, 23, 9, 30)
    assert business_seconds_between(CN, sh(2026, 11, 21, 10, 0), sh(2026, 11, 23, 10, 0)) == 3600


def test_years_chinesecalendar_does_not_know_fall_back_to_weekdays():
    # 2027-01-01 would be New Year's Day, but the package stops at 2026: a plain Friday then.
    assert calendars.chinese_day(dt.date(2027, 1, 1)) is None
    assert add_business_minutes(CN, sh(2027, 1, 1, 9, 0), 60) == sh(2027, 1, 1, 10, 0)


def test_dst_change_in_berlin_keeps_local_opening_hours():
    # Friday 16:00 CET (15:00 UTC) + 2 business hours: one hour on Friday, the second from 09:00 on
    # Monday, which after the change on Sunday 29 March is 07:00 UTC, not 08:00.
    due = add_business_minutes(DE, berlin(2026, 3, 27, 16, 0), 120)
    assert due == berlin(2026, 3, 30, 10, 0)
    assert due.astimezone(dt.UTC) == dt.datetime(2026, 3, 30, 8, 0, tzinfo=dt.UTC)


def test_a_round_the_clock_store_has_a_23_hour_day_when_the_clocks_go_forward():
    always = Calendar(timezone="Europe/Berlin", country="", hours={d: ((dt.time(0), dt.time(0)),) for d in range(7)})
    assert business_seconds_between(always, berlin(2026, 3, 28, 0, 0), berlin(2026, 3, 30, 0, 0)) == 47 * 3600
    assert add_business_minutes(always, berlin(2026, 3, 29, 1, 0), 120) == berlin(2026, 3, 29, 4, 0)


def test_german_public_holidays_come_from_the_holidays_package():
    # Good Friday 3 April and Easter Monday 6 April 2026.
    assert add_business_minutes(DE, berlin(2026, 4, 2, 16, 0), 120) == berlin(2026, 4, 7, 10, 0)


def test_the_stores_own_closures_are_not_working_days():
    closed = Calendar(closures=frozenset({dt.date(2026, 11, 24)}))
    assert add_business_minutes(closed, sh(2026, 11, 23, 17, 0), 120) == sh(2026, 11, 25, 10, 0)


def test_a_lunch_break_is_not_working_time():
    lunch = Calendar(hours={0: ((dt.time(9), dt.time(12)), (dt.time(13), dt.time(18)))})
    assert add_business_minutes(lunch, sh(2026, 11, 23, 11, 30), 60) == sh(2026, 11, 23, 13, 30)
    assert business_seconds_between(lunch, sh(2026, 11, 23, 11, 0), sh(2026, 11, 23, 14, 0)) == 2 * 3600


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        add_business_minutes(CN, dt.datetime(2026, 11, 23, 9, 0), 10)


def test_a_calendar_without_any_working_time_is_an_error_not_a_hang():
    with pytest.raises(ValueError, match="no working time"):
        add_business_minutes(Calendar(hours={}, country=""), sh(2026, 11, 23, 9, 0), 10)


@pytest.mark.parametrize("raw", [{"7": [["09:00", "18:00"]]}, {"0": [["18:00", "09:00"]]}, {"0": [["9h", "18h"]]}])
def test_bad_hours_are_refused(raw):
    with pytest.raises(ValueError):
        calendars.parse_hours(raw)
