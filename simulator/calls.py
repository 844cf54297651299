"""The life of a simulated call, as every part of the simulator sees it.

A call's context (who calls whom, how it was answered), what the person on the line
does (`Person`), and what happened, as a transcript of events that the store keeps and
the dev phone page shows. Events are frozen dataclasses; `to_json()` gives a dict with a
`kind` key, the shape stored in Redis.
"""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from dataclasses import dataclass, field
from typing import ClassVar, Literal, Protocol

# A fixed account for everything the simulator does, shaped as Twilio's ("AC" + 32 hex).
SIMULATOR_ACCOUNT_SID = "AC" + hashlib.md5(b"plp-simulator", usedforsecurity=False).hexdigest()
API_VERSION = "2010-04-01"


def new_sid(prefix: str) -> str:
    """Return a new Twilio-shaped SID: `prefix` ("CA", "SM", "RE") and 32 hex digits."""
    return prefix + uuid.uuid4().hex


@dataclass(frozen=True)
class CallContext:
    """Who calls whom on a simulated call, and how answering-machine detection judged it."""

    sid: str
    account_sid: str
    from_: str
    to: str
    direction: Literal["outbound-api", "inbound"]
    answered_by: str | None = None  # "human", "machine_end_beep", ...; None: detection not asked

    def params(self, call_status: str) -> dict[str, str]:
        """Return the parameters Twilio sends with every request about this call."""
        params = {
            "CallSid": self.sid,
            "AccountSid": self.account_sid,
            "From": self.from_,
            "To": self.to,
            "Caller": self.from_,
            "Called": self.to,
            "CallStatus": call_status,
            "Direction": self.direction,
            "ApiVersion": API_VERSION,
        }
        if self.answered_by is not None:
            params["AnsweredBy"] = self.answered_by
        return params


class _Event:
    """What every transcript event shares: a kind, and a JSON form."""

    kind: ClassVar[str]

    def to_json(self) -> dict:
        """Return the event as a JSON-ready dict with its `kind`."""
        return {"kind": self.kind, **dataclasses.asdict(self)}


@dataclass(frozen=True)
class Said(_Event):
    """The call spoke `text` (a <Say>), `loop` times (0: until the person hung up)."""

    kind: ClassVar[str] = "said"
    text: str
    voice: str
    language: str
    loop: int


@dataclass(frozen=True)
class Played(_Event):
    """The call played the audio at `url` (a <Play>), or DTMF tones `digits` when set."""

    kind: ClassVar[str] = "played"
    url: str
    loop: int
    digits: str = ""


@dataclass(frozen=True)
class Pressed(_Event):
    """The person pressed `digits` during a <Gather> (the finishing key included)."""

    kind: ClassVar[str] = "pressed"
    digits: str


@dataclass(frozen=True)
class GatherTimedOut(_Event):
    """The person pressed nothing before a <Gather> timed out."""

    kind: ClassVar[str] = "gather_timed_out"


@dataclass(frozen=True)
class Recorded(_Event):
    """The person spoke into a <Record>; the recording is at `url`."""

    kind: ClassVar[str] = "recorded"
    url: str
    duration_seconds: float


@dataclass(frozen=True)
class RecordedSilence(_Event):
    """The person said nothing into a <Record>: Twilio drops it and goes on with the next verb."""

    kind: ClassVar[str] = "recorded_silence"
    seconds: float


@dataclass(frozen=True)
class Paused(_Event):
    """The call was silent for `seconds` (a <Pause>)."""

    kind: ClassVar[str] = "paused"
    seconds: float


@dataclass(frozen=True)
class Redirected(_Event):
    """The call's TwiML moved to `url` (a <Redirect>)."""

    kind: ClassVar[str] = "redirected"
    url: str


@dataclass(frozen=True)
class HungUp(_Event):
    """The call ended: a <Hangup> ("app"), the person, or the end of the TwiML ("carrier")."""

    kind: ClassVar[str] = "hung_up"
    by: Literal["app", "person", "carrier"]


@dataclass(frozen=True)
class Rejected(_Event):
    """An inbound call was refused unanswered (a <Reject>), as busy or as rejected."""

    kind: ClassVar[str] = "rejected"
    reason: Literal["rejected", "busy"]


@dataclass(frozen=True)
class Failed(_Event):
    """The call failed on something Twilio would refuse; `reason` says what and where."""

    kind: ClassVar[str] = "failed"
    reason: str


CallEvent = (
    Said
    | Played
    | Pressed
    | GatherTimedOut
    | Recorded
    | RecordedSilence
    | Paused
    | Redirected
    | HungUp
    | Rejected
    | Failed
)


@dataclass
class CallOutcome:
    """What happened on a call: its transcript, how long it lasted, why it failed (if it did).

    `warnings` lists what Twilio tolerates but reports in its debugger (an unknown
    attribute, a recording status callback that failed): the call goes on.
    """

    events: list[CallEvent]
    duration_seconds: float
    error: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """Tell whether the call failed on the app's response."""
        return self.error is not None


@dataclass(frozen=True)
class GatherPrompt:
    """What a person hears and is asked during a <Gather>."""

    num_digits: int | None  # None: no fixed count, the finishing key or the timeout ends it
    timeout: float
    finish_on_key: str  # "" when no key finishes the input
    heard: list[Said | Played] = field(default_factory=list)


@dataclass(frozen=True)
class RecordPrompt:
    """What a person is asked during a <Record>."""

    max_length: float
    finish_on_key: str
    play_beep: bool


class Person(Protocol):
    """Who is on the line once the call is answered."""

    def press(self, prompt: GatherPrompt) -> str:
        """Return the keys pressed during this <Gather> ("" = nothing)."""
        ...

    def record(self, prompt: RecordPrompt) -> bytes | None:
        """Return the audio spoken into this <Record> (None: silence)."""
        ...
