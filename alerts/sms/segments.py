"""SMS length: which encoding a text goes out in, and how many segments it is billed as.

A text is sent in the GSM 7-bit default alphabet when every character is in it, else in
UCS-2 (UTF-16 on the wire). One SMS carries 160 septets or 70 UTF-16 code units; a longer
text is split into segments of 153 septets or 67 units, the rest of each 140-byte
payload holding the concatenation header (UDH). A character is never split across two
segments: an extension-table character (an escape septet and its code) or an emoji (a
surrogate pair) that does not fit at the end of a segment starts the next one. The
carrier bills per segment, so this is what previews and cost estimates show.

An empty text counts as 0 segments: nothing is sent or billed (Twilio refuses an empty
body, error 21602), so a cost estimate must not charge for it. Twilio's own segment
calculator shows 1 for it; that is the first segment's capacity, which
`remaining_in_segment` gives here (160).

The count is for the text exactly as it will be sent: nothing is normalised. A decomposed
"é" (e + U+0301) or a typographic apostrophe (U+2019, which phones and word processors
insert for ') is outside GSM-7 and makes the whole text UCS-2. Twilio's "Smart Encoding",
when enabled on a messaging service, may replace such characters before sending; then
this count is an upper bound.

Why our own table rather than a library: `gsm0338` (PyPI, a well-kept MIT codec) has the
same table but only encodes; it does not count or segment, so we would still write the
part that matters and add a dependency for 138 characters that have not changed since
1995. `smsutil` does segment but has been unmaintained since 2020. Our table was checked
against gsm0338 1.1.0 over the whole Basic Multilingual Plane: the same characters, the
same widths, except U+001B, which gsm0338 encodes as the bare escape septet (it would
turn the next character into an extension code); here it makes the text UCS-2.
"""

from __future__ import annotations

from dataclasses import dataclass

GSM7 = "GSM-7"
UCS2 = "UCS-2"

# GSM 03.38 default alphabet (3GPP TS 23.038, section 6.2.1), in code order 0x00-0x7F.
# 0x1B is the escape to the extension table, not a character: the placeholder below
# (U+001B itself) is removed from the set. Letters that look alike are the ones the
# standard names: Greek capitals (Δ U+0394, Ω U+03A9), not the increment or ohm signs;
# 0x09 is the capital Ç; the lower-case ç is not in the alphabet.
GSM7_BASIC_TABLE = (
    "@£$¥èéùìòÇ\nØø\rÅå"  # 0x00-0x0F
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"  # 0x10-0x1F
    " !\"#¤%&'()*+,-./"  # 0x20-0x2F
    "0123456789:;<=>?"  # 0x30-0x3F
    "¡ABCDEFGHIJKLMNO"  # 0x40-0x4F
    "PQRSTUVWXYZÄÖÑÜ§"  # 0x50-0x5F
    "¿abcdefghijklmno"  # 0x60-0x6F
    "pqrstuvwxyzäöñüà"  # 0x70-0x7F
)
# The default alphabet extension table (3GPP TS 23.038, section 6.2.1.1): each of these
# is sent as the escape septet 0x1B followed by its code, so it counts two septets.
GSM7_EXTENSION_TABLE = "\f^{}\\[~]|€"

_GSM7_BASIC = frozenset(GSM7_BASIC_TABLE) - {"\x1b"}
_GSM7_EXTENSION = frozenset(GSM7_EXTENSION_TABLE)
_GSM7_ALL = _GSM7_BASIC | _GSM7_EXTENSION

# Units in a text sent as one SMS, and in each segment of a concatenated one.
_LIMITS = {GSM7: (160, 153), UCS2: (70, 67)}


@dataclass(frozen=True)
class SmsLength:
    """How a text goes out as SMS: encoding, size, segments billed, room left in the last."""

    encoding: str  # GSM7 or UCS2
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int
    remaining_in_segment: int  # units that still fit before another segment is needed


def is_gsm7(text: str) -> bool:
    """Tell whether every character of `text` is in the GSM 7-bit alphabet."""
    return all(char in _GSM7_ALL for char in text)


def sms_length(text: str) -> SmsLength:
    """Return the encoding, length and segment count of `text` sent as an SMS."""
    if is_gsm7(text):
        encoding = GSM7
        widths = [2 if char in _GSM7_EXTENSION else 1 for char in text]
    else:
        encoding = UCS2
        # Outside the Basic Multilingual Plane (emoji) is a surrogate pair: two units.
        widths = [2 if ord(char) > 0xFFFF else 1 for char in text]
    units = sum(widths)
    single, per_segment = _LIMITS[encoding]
    if units <= single:
        return SmsLength(encoding, units, 1 if units else 0, single - units)
    segments, used = 1, 0
    for width in widths:
        if used + width > per_segment:  # a character never straddles two segments
            segments, used = segments + 1, 0
        used += width
    return SmsLength(encoding, units, segments, per_segment - used)
