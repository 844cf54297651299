"""How the person at a simulated number behaves: answers, lets it ring, has voicemail...

A number's `Behaviour` is what was set for it (tests, the dev phone page, `flask
simulator behaviour`), or else one drawn from a realistic mix by a hash of the number,
so that the demo's 25 members behave the same on every run: most answer and press 1,
some let it ring, some are busy, some have voicemail, landlines cannot receive SMS.
`store.behaviour_for` gives a number's behaviour, set or drawn.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass

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


def mixed_behaviour(number: str, is_landline: Callable[[str], bool]) -> Behaviour:
    """Return the behaviour the demo's mix gives `number`, the same on every run.

    `is_landline` is the roster's reading of a number (the app lends it: `config.Wiring`).
    """
    draw = _hash_fraction(number, "kind") * 100
    answer_after = round(2 + 6 * _hash_fraction(number, "answer_after"), 1)  # rings 2-8 s
    reply_after = round(5 + 55 * _hash_fraction(number, "reply_after"), 1)
    if is_landline(number):
        # A landline picks up like anyone, but has no SMS: what the roster imports as a
        # landline is one here too.
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


def _is_keypad(digits: str) -> bool:
    return bool(digits) and all(char in "0123456789*#" for char in digits)
