"""Phone numbers: any Belgian or international notation to E.164, typed mobile or fixed."""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

from alerts.models import PhoneType

DEFAULT_REGION = "BE"

# What each libphonenumber type means for us. FIXED_LINE_OR_MOBILE (the US, Canada...)
# counts as mobile: an SMS to a landline fails with a carrier error and the call goes on.
_TYPES = {
    PhoneNumberType.MOBILE: PhoneType.MOBILE,
    PhoneNumberType.FIXED_LINE_OR_MOBILE: PhoneType.MOBILE,
    PhoneNumberType.FIXED_LINE: PhoneType.FIXED,
    PhoneNumberType.VOIP: PhoneType.FIXED,
    PhoneNumberType.PERSONAL_NUMBER: PhoneType.FIXED,
    PhoneNumberType.UAN: PhoneType.FIXED,
}
_REFUSED = {
    PhoneNumberType.TOLL_FREE: "a toll-free service number",
    PhoneNumberType.PREMIUM_RATE: "a premium-rate number",
    PhoneNumberType.SHARED_COST: "a shared-cost service number",
    PhoneNumberType.PAGER: "a pager number",
    PhoneNumberType.VOICEMAIL: "a voicemail access number",
}


class PhoneNumberError(ValueError):
    """A number that cannot be used; the message says why, for the person who typed it."""


@dataclass(frozen=True)
class Phone:
    """A normalised phone number."""

    e164: str
    kind: PhoneType

    @property
    def display(self) -> str:
        """The number as a person writes it (international format)."""
        return format_international(self.e164)


def parse_phone(text: str, region: str = DEFAULT_REGION) -> Phone:
    """Parse a number written in any notation; raise `PhoneNumberError` if unusable."""
    raw = (text or "").strip()
    if not raw:
        raise PhoneNumberError("empty")
    try:
        number = phonenumbers.parse(raw, region)
    except NumberParseException:
        raise PhoneNumberError(f"{raw!r} is not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise PhoneNumberError(f"{raw!r} is not a valid phone number{_hint(raw, region)}")
    if number.extension:
        # An automated call cannot dial an extension: the member would never be reached.
        raise PhoneNumberError(f"{raw!r} has an extension, which an automated call cannot dial")
    number_type = phonenumbers.number_type(number)
    if number_type in _REFUSED:
        raise PhoneNumberError(f"{raw!r} is {_REFUSED[number_type]}, not a person's phone")
    kind = _TYPES.get(number_type)
    if kind is None:
        raise PhoneNumberError(f"{raw!r} is not a mobile or fixed-line number")
    return Phone(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), kind)


def format_international(e164: str) -> str:
    """Format an E.164 number for people: +32 470 12 34 56."""
    number = phonenumbers.parse(e164, None)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def _hint(raw: str, region: str) -> str:
    """Suggest the likely intended number when a spreadsheet dropped the leading + or 0."""
    digits = "".join(ch for ch in raw if ch.isdigit())
    for candidate in (f"+{digits}", f"0{digits}"):
        try:
            number = phonenumbers.parse(candidate, region)
        except NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            shown = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
            return f" (did you mean {shown}?)"
    return ""
