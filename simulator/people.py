"""The people behind the simulated numbers: how each one answers calls and texts.

A number's `Behaviour` is what was set for it (tests, the dev phone page), or else one
drawn from a realistic mix by a hash of the number, so that the demo's 25 members behave
the same on every run: most answer and press 1, some let it ring, some are busy, some
have voicemail, landlines cannot receive SMS. Once a call is answered, a person
(`calls.Person`) is on the line: a scripted one presses the behaviour's keys, an
interactive one waits for the keys a human presses on the dev phone page.
"""

from __future__ import annotations

import hashlib
import io
import math
import struct
import wave
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from alerts.models import PhoneType
from alerts.people.phones import PhoneNumberError, parse_phone

if TYPE_CHECKING:
    from simulator.calls import GatherPrompt, RecordPrompt

KINDS = frozenset(
    {
        "answer",  # answers after `answer_after` and presses `keys`
        "silent",  # answers, says hello, presses nothing
        "no_answer",  # lets it ring until the caller gives up
        "busy",
        "voicemail",  # an answering machine picks up: detection says machine_end_beep
        "invalid",  # the number does not exist: refused when the call or SMS is placed
        "landline",  # answers calls like "answer"; cannot receive SMS
        "failed",  # the network cannot reach the phone (switched off, out of coverage)
        "interactive",  # answers; a human presses the keys on the dev phone page
    }
)
# Kinds whose phone picks up (a person or a machine is then on the line).
ANSWERING_KINDS = frozenset({"answer", "silent", "voicemail", "landline", "interactive"})
# Kinds whose handset receives SMS (and may reply).
SMS_KINDS = frozenset({"answer", "silent", "no_answer", "busy", "voicemail", "interactive"})

DEFAULT_ANSWER_AFTER = 4.0
DEFAULT_REPLY_AFTER = 8.0
RECORDING_SECONDS = 3.0  # what a scripted person says into a <Record>
RECORDING_RATE = 8000  # Hz: telephone audio


@dataclass(frozen=True)
class Behaviour:
    """How the person at one number behaves."""

    kind: str = "answer"
    answer_after: float = DEFAULT_ANSWER_AFTER  # seconds of ringing before picking up
    keys: tuple[str, ...] = ("1",)  # digits pressed at successive Gathers
    sms_reply: str | None = None  # what they text back after an SMS from the PLP
    reply_after: float = DEFAULT_REPLY_AFTER  # seconds between the SMS and the reply

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind: {self.kind!r} is not one of {', '.join(sorted(KINDS))}")
        for name in ("answer_after", "reply_after"):
            value = getattr(self, name)
            if not 0 <= value <= 3600:  # also refuses NaN
                raise ValueError(f"{name}: {value!r} is not between 0 and 3600 seconds")
        if any(not _is_keypad(digits) for digits in self.keys):
            raise ValueError(f"keys: {self.keys!r}: only 0-9, * and # can be pressed")
        if self.sms_reply is not None and not self.sms_reply.strip():
            raise ValueError("sms_reply: an empty reply cannot be sent")

    def to_dict(self) -> dict:
        """Return the behaviour as JSON-ready data."""
        data = asdict(self)
        data["keys"] = list(self.keys)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Behaviour:
        """Build a behaviour from `to_dict`'s data (or a form); raise ValueError if invalid."""
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        if "keys" in known:
            keys = known["keys"]
            known["keys"] = tuple(keys.split(",") if isinstance(keys, str) else keys)
            known["keys"] = tuple(k.strip() for k in known["keys"] if k.strip())
        for name in ("answer_after", "reply_after"):
            if name in known:
                try:
                    known[name] = float(known[name])
                except (TypeError, ValueError):
                    raise ValueError(f"{name}: {known[name]!r} is not a number") from None
        if known.get("sms_reply") == "":
            known["sms_reply"] = None
        return cls(**known)

    @property
    def answers(self) -> bool:
        """Tell whether the phone picks up when it rings long enough."""
        return self.kind in ANSWERING_KINDS

    @property
    def receives_sms(self) -> bool:
        """Tell whether the handset gets text messages delivered."""
        return self.kind in SMS_KINDS


def behaviour_for(number: str) -> Behaviour:
    """Return the behaviour set for `number`, else its share of the demo's realistic mix."""
    from simulator import store  # noqa: PLC0415 (store imports Behaviour from here)

    return store.get_behaviour(number) or mixed_behaviour(number)


# The demo's mix for mobiles, from what coordinators report of a night-time alert:
# (share in percent, kind, keys, replies by SMS); the shares add up to 100.
_MOBILE_MIX = (
    (52, "answer", ("1",), False),
    (8, "answer", ("1",), True),  # confirms by call, and also texts back
    (4, "answer", ("0", "1"), False),  # hears it twice, then confirms
    (8, "silent", (), False),
    (12, "no_answer", (), True),  # sees the SMS later and replies
    (4, "busy", (), False),
    (10, "voicemail", (), False),
    (2, "failed", (), False),
)


def mixed_behaviour(number: str) -> Behaviour:
    """Return the behaviour the demo's mix gives `number`, the same on every run."""
    draw = _hash_fraction(number, "kind") * 100
    answer_after = round(2 + 6 * _hash_fraction(number, "answer_after"), 1)  # rings 2-8 s
    reply_after = round(5 + 55 * _hash_fraction(number, "reply_after"), 1)
    if _is_fixed_line(number):
        # A landline picks up like anyone, but has no SMS (roster imports mark them).
        return Behaviour("landline", answer_after=answer_after, keys=("1",))
    kind, keys, replies = _draw_from_mix(draw)
    if kind == "voicemail":
        answer_after = round(15 + 8 * _hash_fraction(number, "answer_after"), 1)
    return Behaviour(
        kind,
        answer_after=answer_after,
        keys=keys,
        sms_reply="OK" if replies else None,
        reply_after=reply_after,
    )


class ScriptedPerson:
    """A person who presses the behaviour's keys, one entry per Gather, then nothing."""

    def __init__(self, behaviour: Behaviour):
        self.behaviour = behaviour
        self.gathers = 0  # how many Gathers they heard

    def press(self, prompt: GatherPrompt) -> str:
        """Return the digits for this Gather ("" once the script is exhausted)."""
        self.gathers += 1
        if self.behaviour.kind == "silent" or self.gathers > len(self.behaviour.keys):
            return ""
        return self.behaviour.keys[self.gathers - 1]

    def record(self, prompt: RecordPrompt) -> bytes | None:
        """Return a few seconds of voice-like audio (silence from a silent person)."""
        if self.behaviour.kind == "silent":
            return None
        return spoken_audio(min(RECORDING_SECONDS, prompt.max_length))


class AnsweringMachine:
    """A voicemail: it hears everything and presses nothing."""

    def press(self, prompt: GatherPrompt) -> str:
        """Press nothing: a machine has no fingers."""
        return ""

    def record(self, prompt: RecordPrompt) -> bytes | None:
        """Say nothing into a recording."""
        return None


@dataclass
class InteractivePerson:
    """A human on the dev phone page: presses what they key in during each Gather.

    `pop_keys(call_sid, timeout)` returns the digits pressed on the page within `timeout`
    seconds, or None (it is `store.pop_keys`; passed in so tests can script it).
    """

    call_sid: str
    pop_keys: Callable[[str, float], str | None]
    pressed: list[str] = field(default_factory=list)

    def press(self, prompt: GatherPrompt) -> str:
        """Wait for the keys pressed on the page until the Gather's timeout."""
        digits = self.pop_keys(self.call_sid, float(prompt.timeout)) or ""
        self.pressed.append(digits)
        return digits

    def record(self, prompt: RecordPrompt) -> bytes | None:
        """Return a few seconds of voice-like audio (the page cannot record a voice)."""
        return spoken_audio(min(RECORDING_SECONDS, prompt.max_length))


def person_for(behaviour: Behaviour, call_sid: str, pop_keys: Callable[[str, float], str | None]):
    """Return who is on the line once a call to a number with `behaviour` is answered."""
    if behaviour.kind == "voicemail":
        return AnsweringMachine()
    if behaviour.kind == "interactive":
        return InteractivePerson(call_sid, pop_keys)
    return ScriptedPerson(behaviour)


def spoken_audio(seconds: float, rate: int = RECORDING_RATE) -> bytes:
    """Return a mono 16-bit WAV that sounds like a voice: a warbling tone, not silence."""
    frames = bytearray()
    for i in range(int(seconds * rate)):
        t = i / rate
        # A 180-260 Hz warble with a syllable-like envelope, 4 per second.
        pitch = 220 + 40 * math.sin(2 * math.pi * 3 * t)
        envelope = abs(math.sin(2 * math.pi * 2 * t))
        sample = int(8000 * envelope * math.sin(2 * math.pi * pitch * t))
        frames += struct.pack("<h", sample)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(bytes(frames))
    return buffer.getvalue()


def _draw_from_mix(draw: float) -> tuple[str, tuple[str, ...], bool]:
    """Return the (kind, keys, replies) of the mix's entry that `draw` (0-100) falls in."""
    threshold = 0.0
    for share, kind, keys, replies in _MOBILE_MIX:
        threshold += share
        if draw < threshold:
            return kind, keys, replies
    return _MOBILE_MIX[-1][1:]


def _hash_fraction(number: str, purpose: str) -> float:
    digest = hashlib.sha256(f"{purpose}:{number}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _is_fixed_line(number: str) -> bool:
    # The roster's own reading of the number: what it imports as a landline gets no SMS.
    try:
        return parse_phone(number).kind == PhoneType.FIXED
    except PhoneNumberError:
        return False


def _is_keypad(digits: str) -> bool:
    return bool(digits) and all(char in "0123456789*#" for char in digits)
