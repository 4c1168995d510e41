"""Tracking numbers are checked against each carrier's format before anything is written."""

from __future__ import annotations

import pytest

from aftersales.core.errors import ValidationFailed
from aftersales.logistics.carriers import s10_check_digit_ok, validate_tracking_number


@pytest.mark.parametrize(("carrier", "number"), [
    ("SF", "SF1234567890123"), ("sf", " sf 1234567890123 "), ("JD", "JDVA12345678901"), ("YTO", "YT1234567890123"),
    ("ZTO", "731234567890"), ("STO", "773123456789012"), ("YUNDA", "4312345678901"), ("EMS", "1123456789012"),
    ("EMS", "EE123456785CN"),
])
def test_numbers_of_each_carrier_are_accepted_and_normalised(carrier, number):
    code, normalised = validate_tracking_number(carrier, number)
    assert (code, normalised) == (carrier.upper(), "".join(number.split()).upper())


@pytest.mark.parametrize(("carrier", "number"), [
    ("SF", "YT1234567890123"), ("SF", "SF123"), ("JD", "1234567890123"), ("YTO", "SF1234567890123"),
    ("ZTO", "13800138000"), ("EMS", "EE123456784CN"), ("YUNDA", "abc-123"),
])
def test_a_number_in_another_carriers_format_is_refused(carrier, number):
    with pytest.raises(ValidationFailed) as error:
        validate_tracking_number(carrier, number)
    assert (error.value.code, error.value.details) == ("invalid_tracking_number",
                                                       {"field": "tracking_number", "carrier": carrier})


def test_an_unknown_carrier_is_refused_with_the_known_ones():
    with pytest.raises(ValidationFailed) as error:
        validate_tracking_number("DHLX", "123")
    assert error.value.code == "unknown_carrier"
    assert error.value.details["allowed"] == ["EMS", "JD", "SF", "STO", "YTO", "YUNDA", "ZTO"]


def test_the_s10_check_digit_follows_the_upu_example():
    # The UPU S10 standard's worked example: serial 47312482 has check digit 9.
    assert s10_check_digit_ok("RR473124829GB")
    assert not s10_check_digit_ok("RR473124828GB")
