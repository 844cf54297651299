"""SMS length: GSM-7 or UCS-2, units, segments and room left, for previews and costs."""

from __future__ import annotations

import dataclasses

import pytest

from alerts.sms.segments import (
    GSM7,
    GSM7_BASIC_TABLE,
    GSM7_EXTENSION_TABLE,
    UCS2,
    SmsLength,
    is_gsm7,
    sms_length,
)

EMOJI = "\N{GRINNING FACE}"  # outside the BMP: a surrogate pair, two UTF-16 units

BOUNDARIES = [
    # (text, encoding, units, segments, remaining in the last segment)
    ("", GSM7, 0, 0, 160),
    ("a", GSM7, 1, 1, 159),
    ("a" * 160, GSM7, 160, 1, 0),
    ("a" * 161, GSM7, 161, 2, 145),
    ("a" * 306, GSM7, 306, 2, 0),
    ("a" * 307, GSM7, 307, 3, 152),
    ("é" * 160, GSM7, 160, 1, 0),  # GSM-7 accents are one septet like any letter
    # Extension characters: two septets each, never split across segments.
    ("^{}\\[~]|€\f", GSM7, 20, 1, 140),
    ("€" * 80, GSM7, 160, 1, 0),
    ("a" * 159 + "€", GSM7, 161, 2, 145),
    ("a" * 152 + "€" + "a" * 151, GSM7, 305, 2, 0),
    ("a" * 152 + "€" + "a" * 152, GSM7, 306, 3, 152),  # 306 septets, yet 3 segments
    # UCS-2: one character outside GSM-7 switches the whole text.
    ("ç", UCS2, 1, 1, 69),
    ("ç" * 70, UCS2, 70, 1, 0),
    ("ç" * 71, UCS2, 71, 2, 63),
    ("ç" * 134, UCS2, 134, 2, 0),
    ("ç" * 135, UCS2, 135, 3, 66),
    ("a" * 69 + "ç", UCS2, 70, 1, 0),
    ("a" * 100 + "ç", UCS2, 101, 2, 33),
    # Emoji: two units, never split across segments.
    (EMOJI, UCS2, 2, 1, 68),
    ("a" * 68 + EMOJI, UCS2, 70, 1, 0),
    ("a" * 69 + EMOJI, UCS2, 71, 2, 63),
    ("a" * 66 + EMOJI + "a" * 65, UCS2, 133, 2, 0),
    ("a" * 66 + EMOJI + "a" * 66, UCS2, 134, 3, 66),  # 134 units, yet 3 segments
]


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments", "remaining"),
    BOUNDARIES,
    ids=lambda value: repr(value)[:24] if isinstance(value, str) else None,
)
def test_length_at_segment_boundaries(text, encoding, units, segments, remaining):
    """Segment limits are 160/153 septets and 70/67 units; no character is split."""
    assert sms_length(text) == SmsLength(encoding, units, segments, remaining)


ALERTS = [
    # (text, encoding, units, segments): realistic alert texts in fr, nl, de
    (
        "ALERTE PLP Parc : 2 cambriolages signalés rue de l'Église entre 18h et 20h. Soyez "
        "vigilants et appelez le 101 si vous voyez quelque chose. Répondez 1 pour confirmer.",
        GSM7,
        165,
        2,
    ),
    ("Ça y est : le suspect a été interpellé. Merci à tous.", GSM7, 53, 1),  # capital Ç
    ("Reçu : la police a arrêté le suspect.", UCS2, 37, 1),  # ç and ê
    ("Vol à l’arraché près de la gare : restez prudents.", UCS2, 50, 1),  # typographic ’
    ("Vol à l'arraché près de la gare : restez prudents.", GSM7, 50, 1),  # plain '
    (
        "BIN Molenwijk: inbraak gemeld in de Molenstraat. Sluit ramen en deuren en meld "
        "verdachte personen via 101. Antwoord 1 ter bevestiging.",
        GSM7,
        134,
        1,
    ),
    ("Verdachte persoon gezien bij café De Zwaan, Kerkplein.", GSM7, 54, 1),
    ("Politie: verdachte wagen gezien bij de tuinen. Ideeën? Bel 101.", UCS2, 63, 1),  # ë
    (
        "Einbruch in der Schulstraße! Bitte Türen und Fenster schließen. Hinweise an die "
        "Polizei: 101.",
        GSM7,
        93,
        1,
    ),
    ("Achtung: Trickbetrüger verlangen 500 € an der Haustür.", GSM7, 55, 1),  # € is two
    ("Warnung vor dem «Enkeltrick»: legen Sie auf und rufen Sie 101 an.", UCS2, 65, 1),
]


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    ALERTS,
    ids=lambda value: value[:20] if isinstance(value, str) else None,
)
def test_length_of_realistic_alerts(text, encoding, units, segments):
    """Alert texts keep GSM-7 with the accents it has and switch to UCS-2 on the others."""
    length = sms_length(text)
    assert (length.encoding, length.units, length.segments) == (encoding, units, segments)


def test_one_character_outside_gsm7_can_double_the_cost():
    """A 100-character French alert is one SMS, and two once it contains a single ç."""
    text = (
        "ALERTE : cambriolage rue de la Station. Fermez portes et volets, appelez le "
        "101. Répondez 1 SVP."
    )
    assert len(text) == 96
    assert sms_length(text).segments == 1
    assert sms_length(text.replace("SVP", "reçu")).segments == 2


@pytest.mark.parametrize("char", list("éèàùìòÇØøÅåÄäÖöÑñÜüßÉÆæ"))
def test_accents_in_the_gsm7_alphabet(char):
    """These accented letters are in the GSM 03.38 default alphabet: one septet each."""
    assert is_gsm7(char)
    assert sms_length(char) == SmsLength(GSM7, 1, 1, 159)


@pytest.mark.parametrize("char", [*"çêîôûëïœâáíóú", "’", "«", "\x1b", "\u2126", "e\u0301"])
def test_characters_outside_gsm7(char):
    """These are outside GSM-7 (incl. ESC, the ohm sign and a decomposed é): UCS-2."""
    assert not is_gsm7(char)
    assert sms_length(char).encoding == UCS2


def test_tables_follow_gsm_03_38():
    """The basic table has 128 codes in the standard's order; the extension table 10."""
    assert len(GSM7_BASIC_TABLE) == 128
    assert len(set(GSM7_BASIC_TABLE)) == 128
    spot_checks = {
        0x00: "@",
        0x09: "Ç",
        0x0A: "\n",
        0x10: "Δ",
        0x15: "Ω",
        0x1B: "\x1b",
        0x24: "¤",
        0x40: "¡",
        0x5F: "§",
        0x60: "¿",
        0x7F: "à",
    }
    assert {code: GSM7_BASIC_TABLE[code] for code in spot_checks} == spot_checks
    assert sorted(GSM7_EXTENSION_TABLE) == sorted("\f^{}\\[~]|€")


def test_every_basic_character_is_one_septet_and_every_extension_two():
    """All 127 basic characters count 1 septet; all 10 extension characters count 2."""
    basic = GSM7_BASIC_TABLE.replace("\x1b", "")
    assert sms_length(basic) == SmsLength(GSM7, 127, 1, 33)
    assert sms_length(GSM7_EXTENSION_TABLE) == SmsLength(GSM7, 20, 1, 140)


def test_length_is_frozen():
    """An SmsLength cannot be changed after it is computed."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        sms_length("OK").segments = 5
