"""Speech engines, the audio cache (prompts/) and the pre-render job (ivr/prerender.py)."""

from __future__ import annotations

import base64
import io
import logging
import os
import shutil
import socket
import threading
import time
import wave
from datetime import timedelta
from pathlib import Path
from xml.etree import ElementTree

import pytest

from alerts.delivery.schedule import render_job_id
from alerts.lifecycle import release_alert
from alerts.models import (
    AlertState,
    Channel,
    Delivery,
    DeliveryStatus,
    Membership,
    Recording,
    RecordingStatus,
    Role,
    utcnow,
)
from alerts.recordings import recording_url
from core.extensions import db
from core.queue import get_queue
from core.settings import SettingsError, load_settings
from ivr import alert_call
from ivr.prerender import render_alert_audio
from ivr.spoken import alert_call_texts, alert_call_words
from ivr.voice import cached_audio_url
from prompts import LANGUAGES, audio_cache, engines, text
from prompts.audio import Audio
from prompts.audio_cache import cached_audio
from prompts.engines import EspeakEngine, GttsEngine, synthesize
from tests.support import silence_wav
from tests.twilio_payloads import call_sid, signed_post

ESPEAK = shutil.which("espeak-ng")
# CI installs espeak-ng (.ci/run): there it must really speak; elsewhere it may be missing.
needs_espeak = pytest.mark.skipif(
    ESPEAK is None and not os.environ.get("CI"), reason="espeak-ng is not installed"
)
OFFLINE = {"TTS_ENGINES": "espeak,say"}  # tests never ask Google unless they mean to
WORDS = {
    "fr": "Message urgent de la police pour le PLP Parc.",
    "nl": "Dringend bericht van de politie voor het BIN Park.",
    "de": "Dringende Nachricht der Polizei für die KPP Park.",
    "en": "Urgent message from the police for the PLP Park.",
}


def wav_seconds(content: bytes) -> float:
    """Return the length of a WAV file in seconds."""
    with wave.open(io.BytesIO(content), "rb") as audio:
        return audio.getnframes() / audio.getframerate()


class Blackhole:
    """A local port that accepts connections and never answers: an unreachable Google."""

    def __init__(self):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.accepted: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.accepted.append(connection)  # kept open, never answered

    def close(self):
        self.listener.close()
        for connection in self.accepted:
            connection.close()


@pytest.fixture
def blackhole(monkeypatch):
    """Route gTTS's HTTPS requests through a proxy that never answers."""
    hole = Blackhole()
    # gTTS passes urllib's getproxies() to requests: the environment's proxy.
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("https_proxy", hole.url)
    yield hole
    hole.close()


@pytest.fixture
def alert_to(make_alert, make_person, make_plp):
    """Factory: a released alert with one planned call per member language given."""

    def make(languages, **fields):
        plp = make_plp()
        alert = make_alert(plp=plp, **fields)
        for index, language in enumerate(languages):
            person = make_person(name=f"Member {index}", language=language)
            db.session.add(Membership(person=person, partnership=plp, role=Role.MEMBER))
            db.session.add(
                Delivery(
                    alert=alert,
                    person=person,
                    channel=Channel.CALL,
                    step=1,
                    to_address=person.phone,
                    due_at=utcnow(),
                    status=DeliveryStatus.PLANNED,
                )
            )
        db.session.commit()
        return alert

    return make


# --- Engines ---------------------------------------------------------------------------


@needs_espeak
@pytest.mark.parametrize("language", LANGUAGES)
def test_espeak_really_speaks_every_language(language):
    """espeak-ng makes a WAV file of real length with the language's voice."""
    audio = EspeakEngine().render(WORDS[language], language)
    assert audio.content_type == "audio/x-wav"
    assert audio.content[:4] == b"RIFF" and audio.content[8:12] == b"WAVE"
    # About 8 words at 140 words a minute: well over a second of sound.
    assert 1.5 < wav_seconds(audio.content) < 20


@needs_espeak
def test_espeak_speaks_slower_than_its_default():
    """The slower rate for clarity makes longer audio than espeak-ng's default 175 wpm."""
    slow = EspeakEngine().render(WORDS["fr"], "fr")
    default = EspeakEngine(rate=175).render(WORDS["fr"], "fr")
    assert wav_seconds(slow.content) > wav_seconds(default.content) * 1.1


@needs_espeak
def test_espeak_reads_a_text_that_looks_like_an_option():
    """Words starting with '-' are spoken, not taken as a command-line option."""
    audio = EspeakEngine().render("-v en --help", "en")
    assert wav_seconds(audio.content) > 0.3


def test_missing_espeak_is_unavailable():
    """Without the binary the engine raises EngineUnavailableError, never crashes."""
    engine = EspeakEngine()
    engine.binary = None  # as on a machine without the Debian package
    with pytest.raises(engines.EngineUnavailableError, match="not installed"):
        engine.render("Bonjour", "fr")


@needs_espeak
@pytest.mark.app_settings(TTS_ENGINES="gtts,espeak,say", TTS_TIMEOUT_SECONDS="0.5")
def test_unreachable_gtts_falls_back_to_espeak(app, blackhole, caplog):
    """gTTS, with Google unreachable, gives up after its timeout; espeak-ng speaks instead."""
    caplog.set_level(logging.WARNING, logger="prompts.engines")
    failed: dict[str, str] = {}
    started = time.monotonic()
    found = synthesize(WORDS["fr"], "fr", failed=failed, context="alert_id=7")
    elapsed = time.monotonic() - started
    assert found is not None and found.engine == "espeak"
    assert found.path.read_bytes()[:4] == b"RIFF"
    assert list(failed) == ["gtts"]
    assert len(blackhole.accepted) == 1  # gTTS really tried, and the request hung
    assert elapsed < 30  # bounded by the 0.5 s timeout; generous for a loaded machine
    [record] = [r for r in caplog.records if "engine=gtts" in r.getMessage()]
    assert "alert_id=7" in record.getMessage()


def test_gtts_answer_is_decoded_as_gtts_does():
    """The MP3 in Google's batchexecute answer is found and decoded; no audio is an error."""
    mp3 = b"ID3\x04\x00" + bytes(64)
    line = '[["wrb.fr","jQ1olc","[\\"' + base64.b64encode(mp3).decode() + '\\"]",null]]'
    assert engines.gtts_audio(")]}'\n\n" + line + "\n") == mp3
    for body in ("", '[["wrb.fr","jQ1olc","[]",null]]', "<html>429 Too Many Requests</html>"):
        with pytest.raises(engines.EngineUnavailableError, match="no audio"):
            engines.gtts_audio(body)


@pytest.mark.app_settings(TTS_TIMEOUT_SECONDS="2.5")
def test_gtts_gets_the_timeout_setting(app):
    """The gTTS engine is built with TTS_TIMEOUT_SECONDS and the language's Google domain."""
    [engine, *_] = engines.engines(["gtts"])
    assert isinstance(engine, GttsEngine)
    assert engine.timeout == 2.5
    assert engines.GTTS_VOICES["en"].tld == "co.uk"
    assert set(engines.GTTS_VOICES) == set(LANGUAGES) == set(engines.ESPEAK_VOICES)


@pytest.mark.app_settings(TTS_ENGINES="say,espeak")
def test_say_leaves_the_words_to_the_carrier(app):
    """With say first, nothing is rendered and no audio URL is offered."""
    assert synthesize(WORDS["fr"], "fr") is None
    assert cached_audio_url(WORDS["fr"], "fr") is None
    assert not (audio_cache.speech_dir() / "espeak").exists()


# --- The cache ---------------------------------------------------------------------------


@needs_espeak
@pytest.mark.app_settings(**OFFLINE)
def test_cache_hit_does_not_render_again(app, monkeypatch):
    """A text rendered once is served from disk: no engine runs the second time."""
    assert cached_audio_url(WORDS["nl"], "nl") is None
    first = synthesize(WORDS["nl"], "nl")
    calls = []
    monkeypatch.setattr(EspeakEngine, "render", lambda *args: calls.append(args))
    second = synthesize(WORDS["nl"], "nl")
    assert second == first
    assert calls == []
    assert first.path == (
        audio_cache.speech_dir() / "espeak" / "nl" / f"{audio_cache.audio_key(WORDS['nl'])}.wav"
    )


@needs_espeak
@pytest.mark.app_settings(**OFFLINE, PUBLIC_BASE_URL="https://plp.example.be")
def test_cached_audio_url_is_public_and_exact(app):
    """The URL is absolute under PUBLIC_BASE_URL, and only for exactly that text and language."""
    found = synthesize(WORDS["de"], "de")
    assert cached_audio_url(WORDS["de"], "de") == (
        f"https://plp.example.be/media/speech/espeak/de/{found.name}"
    )
    assert cached_audio_url(WORDS["de"] + " ", "de") is None
    assert cached_audio_url(WORDS["de"], "en") is None
    assert cached_audio_url("", "de") is None


@needs_espeak
@pytest.mark.app_settings(**OFFLINE)
def test_unknown_language_is_spoken_in_french(app):
    """A language the engines do not know is rendered, and found, as French."""
    found = synthesize(WORDS["fr"], "xx")
    assert found.language == "fr"
    assert cached_audio(WORDS["fr"], None) == found


# --- The words of an alert call ---------------------------------------------------------


def test_alert_call_words_are_the_prompts(app, make_alert, make_plp):
    """The words are the voice prompts, filled as the IVR fills them (exercise, PLP names)."""
    alert = make_alert(plp=make_plp("PLP-EX"), exercise=True, text="Vol de vélos")
    words = alert_call_words(alert, "nl")
    names = {"exercise": text("voice.exercise_prefix", "nl"), "plp": "PLP-EX"}
    assert words.intro == text("voice.alert_intro", "nl", **names)
    assert words.message == "Vol de vélos"
    assert words.machine_message == text(
        "voice.machine_message", "nl", **names, message="Vol de vélos", ref=alert.reference
    )
    assert words.prompt == text("voice.alert_prompt", "nl")
    texts = alert_call_texts(alert, "nl")
    assert len(texts) == len(set(texts)) == 9
    assert text("voice.no_input", "nl") in texts


def post_call(client, path: str, form: dict[str, str]) -> ElementTree.Element:
    """POST a signed alert call webhook; return its parsed TwiML."""
    response = signed_post(client, path, {"CallSid": call_sid(), **form})
    assert response.status_code == 200, response.data
    return ElementTree.fromstring(response.data)


@pytest.mark.app_settings(**OFFLINE)
@pytest.mark.parametrize("recorded", [False, True])
def test_the_prerendered_call_plays_all_it_says(app, client, alert_to, monkeypatch, recorded):
    """After the pre-render, each branch of the alert call plays its words: no <Say> at all."""
    # A stand-in for espeak-ng (a real WAV for any text): the test needs no speech engine.
    wav = Audio(silence_wav(), "audio/x-wav")
    monkeypatch.setattr(EspeakEngine, "render", lambda _self, _words, _language: wav)
    alert = alert_to(["nl"])
    if recorded:  # a coordinator's recorded message, downloaded and playable
        recording = Recording(
            token="t" * 43,
            path="recordings/t.wav",
            content_type="audio/x-wav",
            status=RecordingStatus.READY,
            delete_after=utcnow() + timedelta(1),
        )
        (Path(app.instance_path) / "recordings").mkdir()
        (Path(app.instance_path) / recording.path).write_bytes(silence_wav())
        alert.recording = recording
        db.session.commit()
    texts = alert_call_texts(alert, "nl")
    assert render_alert_audio(alert.id) == {"nl": {"espeak": len(texts)}}
    words = alert_call_words(alert, "nl")
    url = {each: cached_audio_url(each, "nl") for each in texts}
    assert None not in url.values()
    if recorded:
        message = recording_url(alert.recording)
        person = [url[words.intro], message, url[words.prompt]]
        machine = [url[words.machine_intro], message, url[words.machine_how_to_confirm]]
    else:
        person = [url[words.intro], url[words.message], url[words.prompt]]
        machine = [url[words.machine_message]]

    delivery = db.session.query(Delivery).filter_by(alert_id=alert.id).one()
    path = f"/ivr/alert/{delivery.id}"
    gather = f"{path}/gather?replays="
    branches = [  # (path, form, what is played)
        (path, {"AnsweredBy": "human"}, person),
        (path, {"AnsweredBy": "machine_end_beep"}, machine),
        (f"{gather}0&silences=0", {"Digits": "0"}, person),  # replayed
        (f"{gather}0&silences=0", {}, [url[words.prompt]]),  # the question again
        (f"{gather}0&silences=1", {}, [url[words.no_input]]),
        (f"{gather}3&silences=0", {"Digits": "0"}, [url[words.goodbye]]),  # replays ran out
        (f"{gather}0&silences=0", {"Digits": "1"}, [url[words.ack_confirmed]]),
    ]

    def broken(*_args, **_kwargs):
        raise RuntimeError("boom")

    with monkeypatch.context() as failing:  # a failure inside the call: the apology
        failing.setattr(alert_call, "public_url", broken)
        documents = [(post_call(client, path, {"AnsweredBy": "human"}), [url[words.apology]])]
    documents += [(post_call(client, p, form), heard) for p, form, heard in branches]
    db.session.expire_all()
    alert.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    over = post_call(client, path, {"AnsweredBy": "human"})
    documents.append((over, [url[words.alert_over]]))

    for document, heard in documents:
        assert [say.text for say in document.iter("Say")] == [], ElementTree.tostring(document)
        assert [play.text for play in document.iter("Play")] == heard
    played = {play.text for document, _heard in documents for play in document.iter("Play")}
    if recorded:  # the recording replaces the alert's text: its text versions are fallbacks
        fallbacks = {url[words.message], url[words.machine_message]}
        assert played == (set(url.values()) - fallbacks) | {message}
    else:
        assert played == set(url.values())  # every text rendered is said, and nothing else


# --- The render job ----------------------------------------------------------------------


@needs_espeak
@pytest.mark.app_settings(**OFFLINE)
def test_render_job_renders_each_recipient_language(app, alert_to):
    """Every text of the call is rendered in each recipient's language, and no other."""
    alert = alert_to(["nl", "de", "nl", "it"])
    counts = render_alert_audio(alert.id)
    # "it" is not spoken: that member hears the alert's language (French).
    assert set(counts) == {"de", "fr", "nl"}
    assert counts["nl"] == {"espeak": 9}
    db.session.expire_all()
    for language in ("de", "fr", "nl"):
        assert all(cached_audio_url(t, language) for t in alert_call_texts(alert, language))
    assert not any(cached_audio_url(t, "en") for t in alert_call_texts(alert, "en"))


@needs_espeak
@pytest.mark.app_settings(TTS_ENGINES="gtts,espeak,say", TTS_TIMEOUT_SECONDS="0.3")
def test_engine_failure_is_logged_once_per_alert(app, blackhole, caplog, alert_to):
    """gTTS failing is logged once for the whole alert, and not tried again for it."""
    caplog.set_level(logging.WARNING, logger="prompts.engines")
    alert = alert_to(["fr", "nl"])
    counts = render_alert_audio(alert.id)
    assert counts == {"fr": {"espeak": 9}, "nl": {"espeak": 9}}
    failures = [r for r in caplog.records if "speech engine failed" in r.getMessage()]
    assert len(failures) == 1
    assert f"alert_id={alert.id}" in failures[0].getMessage()
    assert len(blackhole.accepted) == 1


@pytest.mark.app_settings(**OFFLINE)
def test_render_job_skips_an_alert_not_released(app, alert_to):
    """An alert still awaiting release (or gone) renders nothing."""
    alert = alert_to(["fr"], state=AlertState.AWAITING_RELEASE)
    assert render_alert_audio(alert.id) == {}
    assert render_alert_audio(alert.id + 1000) == {}
    assert not audio_cache.speech_dir().exists()


@pytest.mark.app_settings(**OFFLINE)
def test_release_enqueues_the_render_job(app, make_alert, make_person, make_plp):
    """Releasing an alert queues its render job, once, after the commit."""
    plp = make_plp()
    person = make_person(language="nl")
    db.session.add(Membership(person=person, partnership=plp, role=Role.MEMBER))
    alert = make_alert(
        plp=plp, state=AlertState.AWAITING_RELEASE, expires_at=utcnow() + timedelta(hours=1)
    )
    release_alert(alert, by=None)
    assert render_job_id(alert.id) not in get_queue("urgent").get_job_ids()  # not before
    db.session.commit()
    job_ids = get_queue("urgent").get_job_ids()
    assert job_ids.count(render_job_id(alert.id)) == 1
    job = get_queue("urgent").fetch_job(render_job_id(alert.id))
    assert job.func is render_alert_audio
    assert job.args == (alert.id,)


@pytest.mark.parametrize(("value", "expected"), [(None, 5.0), ("0.5", 0.5), ("60", 60.0)])
def test_tts_timeout_setting(tmp_path, value, expected):
    """TTS_TIMEOUT_SECONDS defaults to 5 seconds and takes decimals."""
    values = {"SECRET_KEY": "k" * 20} | ({"TTS_TIMEOUT_SECONDS": value} if value else {})
    assert load_settings(values, tmp_path, tmp_path).tts_timeout_seconds == expected


@pytest.mark.parametrize("value", ["0", "-1", "61", "soon"])
def test_bad_tts_timeout_is_named(tmp_path, value):
    """A timeout that is not a number of seconds in (0, 60] is refused, naming the setting."""
    with pytest.raises(SettingsError, match=r"^TTS_TIMEOUT_SECONDS: "):
        load_settings({"SECRET_KEY": "k" * 20, "TTS_TIMEOUT_SECONDS": value}, tmp_path, tmp_path)
