"""The SMS keyword grammar: what a text to the PLP number asks for, read without the database.

`parse(body)` turns any text into one command (`Alert`, `Yes`, `No`, `Confirm`, `Status`,
`Stop`, `Start`, `Help`) or `Unknown`; it never raises. Case, accents and extra spaces
are ignored in keywords; the words come from one table, `SYNONYMS`, with the languages
each word belongs to, so that a reply to someone the directory does not know can still
be in the language they wrote in. What a command means for its sender (an officer's
`ALERTE` or a coordinator's, a coordinator's `OUI <ref>` or a member's) is decided by
`alerts.sms.handlers`, which knows the sender's role and the alert's state.

The grammar (the public contract in ARCHITECTURE.md, "SMS keywords"):

    ALERTE <pin> <target>[,<target>...] <message>   officer (ALERT, ALARM, WARNUNG)
    ALERTE <pin> <message>                          coordinator: their own PLP
    OUI <ref> / NON <ref>                           release / reject (JA/NEE, YES/NO, JA/NEIN)
    1, OK, OUI, JA, YES [<ref>]                     confirm the latest alert, or that one
    STATUT <ref>                                    counts (STATUS)
    STOP, ARRET, STOPALL...; START; AIDE, HELP...   opt-out, opt-in, usage

The opt-out words are Twilio's (https://www.twilio.com/docs/messaging/tutorials/
advanced-opt-out), plus the French ARRET; like Twilio, only a message that is the word
alone counts ("STOP please" does not opt anyone out). YES is not an opt-in word here,
though Twilio's default opt-in list has it: here it confirms or releases an alert.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass
from types import MappingProxyType


class Verb(enum.StrEnum):
    ALERT = "alert"
    YES = "yes"
    NO = "no"
    CONFIRM = "confirm"
    STATUS = "status"
    STOP = "stop"
    START = "start"
    HELP = "help"


# The one table of keywords: verb -> language -> words (upper case, without accents).
# A word may belong to several languages (JA is Dutch and German); "" is no language.
SYNONYMS: MappingProxyType[Verb, MappingProxyType[str, tuple[str, ...]]] = MappingProxyType(
    {
        verb: MappingProxyType(words)
        for verb, words in {
            Verb.ALERT: {
                "fr": ("ALERTE",),
                "nl": ("ALARM",),
                "de": ("ALARM", "WARNUNG"),
                "en": ("ALERT",),
            },
            Verb.YES: {"fr": ("OUI",), "nl": ("JA",), "de": ("JA",), "en": ("YES",)},
            Verb.NO: {"fr": ("NON",), "nl": ("NEE",), "de": ("NEIN",), "en": ("NO",)},
            Verb.CONFIRM: {"": ("1", "OK")},
            Verb.STATUS: {
                "fr": ("STATUT",),
                "nl": ("STATUS",),
                "de": ("STATUS",),
                "en": ("STATUS",),
            },
            Verb.STOP: {
                "fr": ("ARRET",),
                "": ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"),
            },
            Verb.START: {"": ("START", "UNSTOP")},
            Verb.HELP: {
                "fr": ("AIDE",),
                "nl": ("HULP",),
                "de": ("HILFE",),
                "en": ("HELP",),
                "": ("INFO",),
            },
        }.items()
    }
)


def _index() -> MappingProxyType[str, tuple[Verb, str | None]]:
    """Return word -> (verb, its language when the word has exactly one)."""
    languages: dict[str, tuple[Verb, set[str]]] = {}
    for verb, by_language in SYNONYMS.items():
        for language, words in by_language.items():
            for word in words:
                known = languages.setdefault(word, (verb, set()))
                if known[0] != verb:
                    raise ValueError(f"SMS keyword {word} has two meanings")
                if language:
                    known[1].add(language)
    return MappingProxyType(
        {
            word: (verb, next(iter(langs)) if len(langs) == 1 else None)
            for word, (verb, langs) in languages.items()
        }
    )


KEYWORDS = _index()

# What a PIN, an alert reference and a PLP or zone code look like once folded. Codes
# follow alerts.people.directory (2 to 20 letters, digits, - or _); references are the
# lifecycle's (4 letters and digits), up to the 12 the database keeps.
_PIN = re.compile(r"[0-9]{1,12}")
_REFERENCE = re.compile(r"#?([A-Z0-9]{3,12})")
_CODE = r"[A-Za-z0-9][A-Za-z0-9_-]{1,19}"
_TARGETS = re.compile(rf"({_CODE}(?:[ \t]*,[ \t]*{_CODE})*)(?:[ \t]+(.*)|$)", re.DOTALL)
# Punctuation people add after a keyword ("Oui.", "OK!", "STOP,"), ignored.
_TRAILING = ".,;:!?"


@dataclass(frozen=True)
class Alert:
    """ALERTE <pin> ...: the two readings of what follows the PIN.

    `targets` and `message` read it as an officer writes it (comma-separated PLP or zone
    codes, then the message): empty targets when the first word cannot be codes.
    `text` is all of it, as a coordinator writes it (no target). `pin` is "" when the
    word after the keyword is not a PIN.
    """

    pin: str
    targets: tuple[str, ...]
    message: str
    text: str
    language: str | None = None


@dataclass(frozen=True)
class Yes:
    """OUI <ref>: release the alert (a coordinator) or confirm it (a member)."""

    ref: str
    language: str | None = None


@dataclass(frozen=True)
class No:
    """NON <ref>: reject the alert. `ref` None: the reference is missing."""

    ref: str | None
    language: str | None = None


@dataclass(frozen=True)
class Confirm:
    """1, OK, or OUI alone [<ref>]: confirm the latest alert, or the one named."""

    ref: str | None
    language: str | None = None


@dataclass(frozen=True)
class Status:
    """STATUT <ref>: the alert's counts. `ref` None: the reference is missing."""

    ref: str | None
    language: str | None = None


@dataclass(frozen=True)
class Stop:
    """An opt-out word alone: no more SMS (calls continue)."""

    language: str | None = None


@dataclass(frozen=True)
class Start:
    """An opt-in word alone: SMS again."""

    language: str | None = None


@dataclass(frozen=True)
class Help:
    """A help word: the usage."""

    language: str | None = None


@dataclass(frozen=True)
class Unknown:
    """Anything else: answered with the usage."""

    text: str
    language: str | None = None


Command = Alert | Yes | No | Confirm | Status | Stop | Start | Help | Unknown


def fold(word: str) -> str:
    """Return `word` as keywords are compared: upper case, accents removed (ARRÊT -> ARRET)."""
    decomposed = unicodedata.normalize("NFKD", word)
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    return bare.upper()


def parse(body: object) -> Command:
    """Return the command a text message asks for; `Unknown` for anything else. Never raises."""
    try:
        return _parse(body if isinstance(body, str) else "")
    except Exception:  # the promise: no text ever breaks the webhook
        return Unknown(str(body)[:160] if isinstance(body, str) else "")


def _parse(body: str) -> Command:  # noqa: PLR0911 (one return per verb)
    # Extra spaces (any Unicode white space, line breaks from phones) count as one.
    text = " ".join(body.split())
    if not text:
        return Unknown("")
    first, _, rest = text.partition(" ")
    keyword = fold(first).rstrip(_TRAILING) or fold(first)
    if keyword not in KEYWORDS:
        return Unknown(text)
    verb, language = KEYWORDS[keyword]
    words = rest.split()
    ref = _reference(words[0]) if words else None
    match verb:
        case Verb.ALERT:
            return _alert(rest, language)
        case Verb.YES:
            return Yes(ref, language) if ref else Confirm(None, language)
        case Verb.NO:
            return No(ref, language)
        case Verb.CONFIRM:
            return Confirm(ref, language)
        case Verb.STATUS:
            return Status(ref, language)
    # Opt-out, opt-in and help words count alone, as the carrier counts them.
    if words:
        return Unknown(text, language)
    if verb == Verb.STOP:
        return Stop(language)
    if verb == Verb.START:
        return Start(language)
    return Help(language)


def _reference(word: str) -> str | None:
    match = _REFERENCE.fullmatch(fold(word).rstrip(_TRAILING))
    return match.group(1) if match else None


def _alert(rest: str, language: str | None) -> Alert:
    pin_word, _, after = rest.partition(" ")
    if not _PIN.fullmatch(pin_word):
        # No PIN: the handler answers with the format, never checks anything.
        return Alert("", (), "", rest, language)
    targets: tuple[str, ...] = ()
    message = after
    matched = _TARGETS.fullmatch(after)
    if matched:
        targets = tuple(code.strip().upper() for code in matched.group(1).split(","))
        message = matched.group(2) or ""
    return Alert(pin_word, targets, message.strip(), after.strip(), language)
