"""The people behind simulated numbers: behaviours, the demo's mix, and who is on the line."""

from __future__ import annotations

import io
import wave
from collections import Counter

import pytest

from alerts.models import PhoneType
from alerts.people.demo import MEMBERS
from alerts.people.phones import parse_phone
from core.app import create_app
from simulator import behaviour, store
from simulator.adapters.wiring import is_landline
from simulator.behaviour import KINDS, Behaviour, mixed_behaviour
from simulator.calls import GatherPrompt, RecordPrompt
from simulator.people import (
    AnsweringMachine,
    InteractivePerson,
    ScriptedPerson,
    person_for,
    spoken_audio,
)
from tests.support import app_config

GATHER = GatherPrompt(num_digits=1, timeout=5, finish_on_key="#")
RECORD = RecordPrompt(max_length=60, finish_on_key="#", play_beep=True)


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"kind": "sleepy"}, "kind"),
        ({"answer_after": -1}, "answer_after"),
        ({"answer_after": float("nan")}, "answer_after"),
        ({"reply_after": 4000}, "reply_after"),
        ({"keys": ("1", "A")}, "keys"),
        ({"keys": ("",)}, "keys"),
        ({"sms_reply": "  "}, "sms_reply"),
    ],
)
def test_an_impossible_behaviour_is_refused_naming_the_field(fields, problem):
    """A behaviour with a bad field raises ValueError naming it."""
    with pytest.raises(ValueError, match=problem):
        Behaviour(**fields)


def test_a_behaviour_survives_its_dict_form():
    """to_dict() then from_dict() gives the same behaviour back."""
    behaviour = Behaviour("interactive", answer_after=7.5, keys=("0", "1"), sms_reply="OK")
    assert Behaviour.from_dict(behaviour.to_dict()) == behaviour


def test_a_form_reads_as_a_behaviour():
    """from_dict() reads form strings: comma-separated keys, numbers, an empty reply."""
    behaviour = Behaviour.from_dict(
        {"kind": "answer", "keys": "0, 1", "answer_after": "3", "sms_reply": "", "x": "y"}
    )
    assert behaviour == Behaviour("answer", answer_after=3.0, keys=("0", "1"))
    with pytest.raises(ValueError, match="answer_after"):
        Behaviour.from_dict({"answer_after": "soon"})


def test_the_mix_is_the_same_on_every_run():
    """A number's drawn behaviour depends on the number only."""
    number = "+32470990105"
    assert mixed_behaviour(number, is_landline) == mixed_behaviour(number, is_landline)


def test_the_mix_shares_add_up_to_all_mobiles():
    """The mix's shares cover 100% of mobiles."""
    assert sum(share for share, *_ in behaviour._MOBILE_MIX) == 100


def test_the_mix_is_realistic_over_many_mobiles():
    """Over 2,000 mobiles most answer and press 1; every kind of the mix turns up."""
    kinds = Counter(mixed_behaviour(f"+32470{n:06d}", is_landline).kind for n in range(2000))
    assert kinds["answer"] > 1000
    assert set(kinds) == {kind for _share, kind, *_ in behaviour._MOBILE_MIX}
    assert "invalid" not in kinds  # demo numbers are all dialled
    ringing = [mixed_behaviour(f"+32470{n:06d}", is_landline).answer_after for n in range(200)]
    assert all(2 <= seconds <= 8 for seconds in ringing if seconds < 15)


def test_landlines_in_the_mix_cannot_receive_sms():
    """Every demo number the roster calls a landline is one in the mix: calls yes, SMS no."""
    phones = [parse_phone(phone) for _name, phone, *_ in MEMBERS]
    landlines = [phone.e164 for phone in phones if phone.kind == PhoneType.FIXED]
    assert landlines
    for number in landlines:
        drawn = mixed_behaviour(number, is_landline)
        assert drawn.kind == "landline"
        assert drawn.answers and not drawn.receives_sms


def test_scripted_person_presses_one_entry_per_gather_then_nothing():
    """Keys ("0", "1"): "0" at the first Gather, "1" at the second, then nothing."""
    person = ScriptedPerson(Behaviour("answer", keys=("0", "1")))
    assert [person.press(GATHER) for _ in range(3)] == ["0", "1", ""]


def test_silent_person_presses_nothing_and_records_silence():
    """A silent person never presses a key and says nothing into a recording."""
    person = ScriptedPerson(Behaviour("silent", keys=("1",)))
    assert person.press(GATHER) == ""
    assert person.record(RECORD) is None


def test_a_person_records_a_short_voice():
    """A scripted person speaks a few seconds into a <Record>, within its maxLength."""
    audio = ScriptedPerson(Behaviour("answer")).record(
        RecordPrompt(max_length=2, finish_on_key="#", play_beep=True)
    )
    with wave.open(io.BytesIO(audio)) as wav:
        assert wav.getnframes() / wav.getframerate() == pytest.approx(2.0)


def test_spoken_audio_is_a_wav_that_is_not_silent():
    """The recorded voice is a mono 16-bit WAV with sound in it."""
    with wave.open(io.BytesIO(spoken_audio(1.0))) as wav:
        assert (wav.getnchannels(), wav.getsampwidth()) == (1, 2)
        frames = wav.readframes(wav.getnframes())
    assert any(frames)


def test_who_is_on_the_line_follows_the_behaviour():
    """Voicemail is a machine, interactive waits for the page, the rest follow a script."""
    pop = lambda _sid, _timeout: "1"  # noqa: E731
    assert isinstance(person_for(Behaviour("voicemail"), "CA1", pop), AnsweringMachine)
    assert isinstance(person_for(Behaviour("interactive"), "CA1", pop), InteractivePerson)
    assert isinstance(person_for(Behaviour("answer"), "CA1", pop), ScriptedPerson)
    assert AnsweringMachine().press(GATHER) == ""


def test_interactive_person_waits_for_the_page_until_the_gather_timeout():
    """An interactive person asks for keys with the Gather's timeout; None presses nothing."""
    asked = []

    def pop_keys(sid: str, timeout: float) -> str | None:
        asked.append((sid, timeout))
        return None if len(asked) > 1 else "1"

    person = InteractivePerson("CA1", pop_keys)
    assert [person.press(GATHER), person.press(GATHER)] == ["1", ""]
    assert asked == [("CA1", 5.0), ("CA1", 5.0)]


def test_every_kind_is_a_valid_behaviour():
    """Each kind builds with the defaults."""
    assert {Behaviour(kind).kind for kind in KINDS} == KINDS


def test_behaviour_for_prefers_what_was_set(tmp_path, redis_url, redis_conn):
    """behaviour_for() returns the stored behaviour, else the mix's."""
    app = create_app(app_config(tmp_path, f"sqlite:///{tmp_path / 'test.db'}", redis_url))
    with app.app_context():
        assert store.behaviour_for("+32470555001") == mixed_behaviour("+32470555001", is_landline)
        store.set_behaviour("+32470555001", Behaviour("busy"))
        assert store.behaviour_for("+32470555001") == Behaviour("busy")
