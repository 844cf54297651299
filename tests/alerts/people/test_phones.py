"""Phone numbers: any notation to E.164, typed mobile or fixed; unusable numbers refused."""

from __future__ import annotations

import pytest

from alerts.models import PhoneType
from alerts.people.phones import Phone, PhoneNumberError, format_international, parse_phone


@pytest.mark.parametrize(
    "text",
    [
        "0470 12 34 56",
        "0470/12.34.56",
        "0470-12-34-56",
        "0470123456",
        "+32 470 12 34 56",
        "+32470123456",
        "0032 470 12 34 56",
        "+32 (0)470 12 34 56",
        "  0470 12 34 56  ",
    ],
)
def test_belgian_mobile_in_any_notation(text):
    """Every way people write a Belgian mobile gives the same E.164 number, typed mobile."""
    assert parse_phone(text) == Phone("+32470123456", PhoneType.MOBILE)


@pytest.mark.parametrize(
    ("text", "e164"),
    [
        ("02 511 22 33", "+3225112233"),  # Brussels
        ("09 233 01 04", "+3292330104"),  # Ghent
        ("087 55 01 05", "+3287550105"),  # Verviers
        ("+32 2 511 22 33", "+3225112233"),
        ("078 15 15 15", "+3278151515"),  # national-rate number: a fixed line for us
    ],
)
def test_belgian_landline_is_fixed(text, e164):
    """Belgian landlines are normalised and typed fixed (calls only, no SMS)."""
    assert parse_phone(text) == Phone(e164, PhoneType.FIXED)


@pytest.mark.parametrize(
    ("text", "e164", "kind"),
    [
        ("+33 6 12 34 56 78", "+33612345678", PhoneType.MOBILE),  # France
        ("0033 6 12 34 56 78", "+33612345678", PhoneType.MOBILE),
        ("+31 6 12345678", "+31612345678", PhoneType.MOBILE),  # the Netherlands
        ("+49 151 23456789", "+4915123456789", PhoneType.MOBILE),  # Germany
        ("+33 1 42 68 53 00", "+33142685300", PhoneType.FIXED),  # a Paris landline
    ],
)
def test_international_numbers_are_accepted(text, e164, kind):
    """Members living abroad keep their foreign number, typed by its own country's plan."""
    assert parse_phone(text) == Phone(e164, kind)


def test_region_decides_national_notation():
    """A national notation is read in the given region (BE unless told otherwise)."""
    assert parse_phone("06 12 34 56 78", region="FR") == Phone("+33612345678", PhoneType.MOBILE)
    with pytest.raises(PhoneNumberError, match="not a valid phone number"):
        parse_phone("06 12 34 56 78")  # 06 is no Belgian prefix


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("hello", "'hello' is not a phone number"),
        ("call me", "'call me' is not a phone number"),
        ("0470 12 34", "'0470 12 34' is not a valid phone number"),
        ("0470 12 34 56 78", "'0470 12 34 56 78' is not a valid phone number"),
        ("0800 12 345", "'0800 12 345' is a toll-free service number, not a person's phone"),
        ("+32 800 12 345", "'+32 800 12 345' is a toll-free service number, not a person's phone"),
        ("0900 12 345", "'0900 12 345' is a premium-rate number, not a person's phone"),
        ("0903 12 345", "'0903 12 345' is a premium-rate number, not a person's phone"),
        ("0905 12 345", "'0905 12 345' is a premium-rate number, not a person's phone"),
        ("0909 12 345", "'0909 12 345' is a premium-rate number, not a person's phone"),
        ("070 24 55 55", "'070 24 55 55' is a premium-rate number, not a person's phone"),
        (
            "+33 800 12 34 56",
            "'+33 800 12 34 56' is a toll-free service number, not a person's phone",
        ),
    ],
)
def test_unusable_numbers_are_refused_with_the_reason(text, message):
    """Empty, garbage, too short and service numbers are refused with a message for the user."""
    with pytest.raises(PhoneNumberError) as excinfo:
        parse_phone(text)
    assert str(excinfo.value) == message


@pytest.mark.parametrize(
    ("text", "e164", "kind"),
    [
        ("470123456", "+32470123456", PhoneType.MOBILE),  # the leading 0 dropped
        ("32470123456", "+32470123456", PhoneType.MOBILE),  # the leading + dropped
        ("3225112233", "+3225112233", PhoneType.FIXED),
    ],
)
def test_belgian_number_without_its_leading_zero_or_plus_is_understood(text, e164, kind):
    """A Belgian number whose leading 0 or + a spreadsheet dropped is still the right number."""
    assert parse_phone(text) == Phone(e164, kind)


@pytest.mark.parametrize(
    ("text", "suggestion"),
    [
        ("33612345678", "+33 6 12 34 56 78"),  # France, the + dropped
        ("31612345678", "+31 6 12345678"),  # the Netherlands
        ("4915123456789", "+49 1512 3456789"),  # Germany
        ("033612345678", "+33 6 12 34 56 78"),  # 0033... with one 0 dropped
        ("+470123456", "+32 470 12 34 56"),  # a + typed where the 0 belongs
    ],
)
def test_lost_or_misplaced_plus_gets_a_hint(text, suggestion):
    """A number whose + was dropped or misplaced is refused with a "did you mean" hint."""
    with pytest.raises(PhoneNumberError) as excinfo:
        parse_phone(text)
    assert str(excinfo.value) == (
        f"{text!r} is not a valid phone number (did you mean {suggestion}?)"
    )


def test_no_hint_when_nothing_likely_was_meant():
    """A number that is simply too short gets no guess."""
    with pytest.raises(PhoneNumberError) as excinfo:
        parse_phone("0470 12 34")
    assert "did you mean" not in str(excinfo.value)


@pytest.mark.parametrize(
    ("e164", "shown"),
    [
        ("+32470123456", "+32 470 12 34 56"),
        ("+3225112233", "+32 2 511 22 33"),
        ("+3287550105", "+32 87 55 01 05"),
        ("+33612345678", "+33 6 12 34 56 78"),
        ("+4915123456789", "+49 1512 3456789"),
    ],
)
def test_format_international(e164, shown):
    """E.164 numbers are shown grouped as people write them, with the country code."""
    assert format_international(e164) == shown


def test_display_round_trips():
    """A parsed number's display form parses back to the same number."""
    phone = parse_phone("0470/12.34.56")
    assert phone.display == "+32 470 12 34 56"
    assert parse_phone(phone.display) == phone


def test_extension_is_refused():
    """A number with an extension is refused: an automated call cannot dial it."""
    with pytest.raises(PhoneNumberError) as excinfo:
        parse_phone("0470 12 34 56 ext 12")
    assert str(excinfo.value) == (
        "'0470 12 34 56 ext 12' has an extension, which an automated call cannot dial"
    )
