"""The API's JSON (orjson) must read exactly as Ninja's own encoder wrote it: same dates, numbers, keys."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.utils.translation import gettext_lazy
from ninja.responses import NinjaJSONEncoder

from aftersales.cases.models import Channel
from aftersales.core.renderers import dumps

SAMPLE = {
    "utc_with_micros": dt.datetime(2026, 11, 11, 0, 0, 1, 123456, tzinfo=dt.UTC),
    "shanghai_whole_second": dt.datetime(2026, 11, 11, 8, 30, tzinfo=ZoneInfo("Asia/Shanghai")),
    "date": dt.date(2026, 2, 17),
    "time_with_micros": dt.time(9, 15, 30, 250000),
    "amount": Decimal("199.90"),
    "tiny": Decimal("0.01"),
    "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "channel": Channel.WEB,
    "lazy": gettext_lazy("quantity"),
    "text": "七天无理由退货",
    "by_line": {101: 2, 102: 0},
    "nested": [{"refund": {"amount": Decimal("89.00")}, "at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)}],
    "none": None,
    "flag": True,
    "ratio": 0.25,
}


def test_answers_parse_equal_to_ninjas_own_encoding() -> None:
    ours = json.loads(dumps(SAMPLE))
    ninjas = json.loads(json.dumps(SAMPLE, cls=NinjaJSONEncoder))
    assert ours == ninjas


def test_dates_and_numbers_are_written_as_ninja_writes_them() -> None:
    ours = json.loads(dumps(SAMPLE))
    assert ours["utc_with_micros"] == "2026-11-11T00:00:01.123Z"
    assert ours["shanghai_whole_second"] == "2026-11-11T08:30:00+08:00"
    assert ours["date"] == "2026-02-17"
    assert ours["time_with_micros"] == "09:15:30.250"
    assert ours["amount"] == "199.90" and ours["tiny"] == "0.01"
    assert ours["id"] == "12345678-1234-5678-1234-567812345678"
    assert ours["channel"] == "web"
    assert ours["by_line"] == {"101": 2, "102": 0}


def test_text_is_utf8_not_escaped() -> None:
    assert "七天无理由退货".encode() in dumps(SAMPLE)
