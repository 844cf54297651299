"""Who is on the line once a simulated call is answered.

A scripted person (`ScriptedPerson`) presses the keys of the number's `Behaviour`, an
answering machine presses nothing, and an interactive person (`InteractivePerson`) waits
for the keys a human presses on the dev phone page. Each is a `calls.Person`.
"""

from __future__ import annotations

import io
import math
import struct
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from simulator.behaviour import Behaviour

if TYPE_CHECKING:
    from simulator.calls import GatherPrompt, RecordPrompt

RECORDING_SECONDS = 3.0  # what a scripted person says into a <Record>
RECORDING_RATE = 8000  # Hz: telephone audio


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
