"""The SMS keyword parser: a pure function from any text to one command, never raising."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.sms.commands import (
    KEYWORDS,
    SYNONYMS,
    Alert,
    Confirm,
    Help,
    No,
    Start,
    Status,
    Stop,
    Unknown,
    Verb,
    Yes,
    fold,
    parse,
)

COMMANDS = (Alert, Yes, No, Confirm, Status, Stop, Start, Help, Unknown)

# text -> the command it is
TABLE = [
    # Officer: PIN, comma-separated targets, message (the whole rest kept for a coordinator).
    (
        "ALERTE 4829 DEMO Cambriolage rue du Parc",
        Alert("4829", ("DEMO",), "Cambriolage rue du Parc", "DEMO Cambriolage rue du Parc", "fr"),
    ),
    (
        "alerte 4829 plp-a,plp-b Vol à l'arraché",
        Alert(
            "4829",
            ("PLP-A", "PLP-B"),
            "Vol à l'arraché",
            "plp-a,plp-b Vol à l'arraché",
            "fr",
        ),
    ),
    (
        "  Alert   4829  PLP-A ,  ZP5344   Suspect   seen  ",
        Alert("4829", ("PLP-A", "ZP5344"), "Suspect seen", "PLP-A , ZP5344 Suspect seen", "en"),
    ),
    ("WARNUNG 4829 KPP1 Einbruch", Alert("4829", ("KPP1",), "Einbruch", "KPP1 Einbruch", "de")),
    ("Alarm 4829 BIN-X inbraak", Alert("4829", ("BIN-X",), "inbraak", "BIN-X inbraak", None)),
    ("ÀLERTÉ 4829 DEMO x", Alert("4829", ("DEMO",), "x", "DEMO x", "fr")),
    ("ALERTE\n4829\nDEMO\nligne 2", Alert("4829", ("DEMO",), "ligne 2", "DEMO ligne 2", "fr")),
    # Target only, message empty; no target at all; the coordinator's form.
    ("ALERTE 4829 DEMO", Alert("4829", ("DEMO",), "", "DEMO", "fr")),
    ("ALERTE 4829", Alert("4829", (), "", "", "fr")),
    (
        "ALERTE 7351 Suspect: homme en veste rouge",
        Alert("7351", (), "Suspect: homme en veste rouge", "Suspect: homme en veste rouge", "fr"),
    ),
    # Words that look like codes are read as targets; the handler decides (a coordinator's
    # alert keeps the whole text when they are not their PLPs).
    (
        "ALERTE 7351 Cambriolage, rue X",
        Alert("7351", ("CAMBRIOLAGE", "RUE"), "X", "Cambriolage, rue X", "fr"),
    ),
    # No PIN: the handler answers with the format.
    ("ALERTE DEMO cambriolage", Alert("", (), "", "DEMO cambriolage", "fr")),
    ("ALERTE", Alert("", (), "", "", "fr")),
    # Release / reject / confirm.
    ("OUI K7RM", Yes("K7RM", "fr")),
    ("oui k7rm", Yes("K7RM", "fr")),
    ("Oui #K7RM.", Yes("K7RM", "fr")),
    ("JA K7RM", Yes("K7RM", None)),
    ("yes K7RM thanks", Yes("K7RM", "en")),
    ("NON K7RM", No("K7RM", "fr")),
    ("Nee k7rm", No("K7RM", "nl")),
    ("NEIN K7RM", No("K7RM", "de")),
    ("no K7RM", No("K7RM", "en")),
    ("NON", No(None, "fr")),
    ("1", Confirm(None, None)),
    (" 1 ", Confirm(None, None)),
    ("1.", Confirm(None, None)),
    ("1 K7RM", Confirm("K7RM", None)),
    ("ok", Confirm(None, None)),
    ("OK!", Confirm(None, None)),
    ("Ok t001", Confirm("T001", None)),
    ("OUI", Confirm(None, "fr")),
    ("Oui.", Confirm(None, "fr")),
    ("ja", Confirm(None, None)),
    ("YES", Confirm(None, "en")),
    ("Yes!", Confirm(None, "en")),
    ("ＯＫ", Confirm(None, None)),  # full-width letters, as some keyboards type them
    # Status.
    ("STATUT K7RM", Status("K7RM", "fr")),
    ("status k7rm", Status("K7RM", None)),
    ("STATUT", Status(None, "fr")),
    # Opt-out, opt-in, help: the word alone.
    ("STOP", Stop(None)),
    ("stop", Stop(None)),
    (" Stop. ", Stop(None)),
    ("ARRET", Stop("fr")),
    ("Arrêt", Stop("fr")),
    ("ARRÊT", Stop("fr")),
    ("STOPALL", Stop(None)),
    ("unsubscribe", Stop(None)),
    ("CANCEL", Stop(None)),
    ("END", Stop(None)),
    ("QUIT", Stop(None)),
    ("START", Start(None)),
    ("unstop", Start(None)),
    ("AIDE", Help("fr")),
    ("help", Help("en")),
    ("Hulp", Help("nl")),
    ("HILFE", Help("de")),
    ("INFO", Help(None)),
    ("STOP please", Unknown("STOP please", None)),
    ("aide moi", Unknown("aide moi", "fr")),
    # Garbage.
    ("", Unknown("")),
    ("   ", Unknown("")),
    ("\n\t", Unknown("")),
    ("Bonjour", Unknown("Bonjour")),
    ("2", Unknown("2")),
    ("11", Unknown("11")),
    ("ALERTES 4829 DEMO x", Unknown("ALERTES 4829 DEMO x")),
    ("🚨 ALERTE 4829 DEMO x", Unknown("🚨 ALERTE 4829 DEMO x")),
    ("...", Unknown("...")),
]


@pytest.mark.parametrize(("body", "expected"), TABLE, ids=[repr(b)[:40] for b, _ in TABLE])
def test_parse_reads_each_form_of_the_grammar(body, expected):
    """Each text is the command of the table: synonyms, accents, case, spaces, garbage."""
    assert parse(body) == expected


def test_yes_is_not_an_opt_in_word():
    """YES confirms (Twilio's default opt-in list has it, the grammar does not)."""
    assert isinstance(parse("YES"), Confirm)
    assert KEYWORDS["YES"][0] == Verb.YES


def test_every_word_of_the_table_is_parsed_to_its_verb():
    """Every synonym, in any case, gives a command of its verb."""
    expected = {
        Verb.ALERT: Alert,
        Verb.YES: Confirm,  # alone, an affirmative word confirms
        Verb.NO: No,
        Verb.CONFIRM: Confirm,
        Verb.STATUS: Status,
        Verb.STOP: Stop,
        Verb.START: Start,
        Verb.HELP: Help,
    }
    for verb, by_language in SYNONYMS.items():
        for words in by_language.values():
            for word in words:
                assert type(parse(word.lower())) is expected[verb], word
                assert type(parse(word.title())) is expected[verb], word


def test_the_language_of_a_word_in_one_language_is_given():
    """A word of one language tells it; a word of several (JA, ALARM) or none does not."""
    assert parse("HULP").language == "nl"
    assert parse("HILFE").language == "de"
    assert parse("AIDE").language == "fr"
    assert parse("JA").language is None
    assert parse("1").language is None


def test_fold_removes_accents_and_case():
    """Keywords are compared upper case without accents."""
    assert fold("arrêt") == "ARRET"
    assert fold("Ãlérte") == "ALERTE"


def test_parse_accepts_what_is_not_a_string():
    """A missing body (None) or bytes is Unknown, not an error."""
    assert parse(None) == Unknown("")
    assert parse(b"STOP") == Unknown("")


@settings(max_examples=300, database=None)
@given(st.text())
def test_parse_never_raises_on_any_text(body):
    """Any Unicode text gives one of the commands."""
    assert isinstance(parse(body), COMMANDS)


@settings(max_examples=100, database=None)
@given(
    st.sampled_from(["ALERTE", "alert", "OUI", "NON", "1", "STATUT", "STOP", "aide"]),
    st.text(),
)
def test_parse_never_raises_after_a_keyword(keyword, rest):
    """A keyword followed by anything gives one of the commands; the PIN is digits only."""
    command = parse(f"{keyword} {rest}")
    assert isinstance(command, COMMANDS)
    if isinstance(command, Alert) and command.pin:
        assert command.pin.isascii()
        assert command.pin.isdigit()


def test_parse_handles_a_huge_text():
    """A text of a megabyte is parsed (as Unknown or an alert), quickly enough for a webhook."""
    assert isinstance(parse("x" * 1_000_000), Unknown)
    huge = parse("ALERTE 4829 DEMO " + "a " * 500_000)
    assert isinstance(huge, Alert)
    assert huge.targets == ("DEMO",)
