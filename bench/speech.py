"""Benchmark: rendering an alert call's speech, and how fast an unreachable gTTS gives up.

    python bench/speech.py [--timeout 5] [--languages fr,nl,de,en]

Renders the nine texts of an alert call in each language with espeak-ng (what the
render job does at release), timing each; then times gTTS failing against a local port
that accepts connections and never answers (an unreachable Google), with
`TTS_TIMEOUT_SECONDS` = `--timeout`. The first calls of an alert wait for neither: they
speak with <Say> until the audio is there; this shows how soon it is.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.app import create_app
from prompts import LANGUAGES, text
from prompts.engines import EngineUnavailableError, EspeakEngine, GttsEngine

TEXTS = (
    "voice.alert_prompt",
    "voice.ack_confirmed",
    "voice.no_input",
    "voice.goodbye",
    "voice.alert_over",
    "voice.apology",
)
MESSAGE = "Cambriolage en cours rue de la Station 12. Soyez vigilants. Appelez le 101."


def main() -> None:
    """Run the benchmark and print its results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--languages", default=",".join(LANGUAGES))
    args = parser.parse_args()
    languages = [lang.strip() for lang in args.languages.split(",") if lang.strip()]

    with tempfile.TemporaryDirectory() as folder:
        app = create_app(
            {
                "TESTING": True,
                "INSTANCE_PATH": Path(folder),
                "DATABASE_URL": f"sqlite:///{folder}/bench.db",
                "REDIS_URL": "redis://127.0.0.1:1/0",  # not used
                "SECRET_KEY": "bench-secret-key-0123456789",
            }
        )
        with app.app_context():
            print(f"{platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores")
            engine = EspeakEngine()
            times, seconds_of_audio = [], 0.0
            started = time.perf_counter()
            for language in languages:
                words = [MESSAGE, *(text(key, language) for key in TEXTS)]
                for each in words:
                    t0 = time.perf_counter()
                    audio = engine.render(each, language)
                    times.append(time.perf_counter() - t0)
                    seconds_of_audio += (len(audio.content) - 44) / (2 * 22050)
            total = time.perf_counter() - started
            print(
                f"espeak-ng: {len(times)} texts in {total:.2f} s "
                f"(median {statistics.median(times) * 1000:.0f} ms, "
                f"worst {max(times) * 1000:.0f} ms), {seconds_of_audio:.0f} s of speech"
            )

            with socket.socket() as listener:
                listener.bind(("127.0.0.1", 0))
                listener.listen(8)
                os.environ["https_proxy"] = f"http://127.0.0.1:{listener.getsockname()[1]}"
                t0 = time.perf_counter()
                try:
                    GttsEngine(args.timeout).render(MESSAGE, "fr")
                    outcome = "answered (?)"
                except EngineUnavailableError as err:
                    outcome = f"gave up: {err}"
                elapsed = time.perf_counter() - t0
            print(f"gTTS unreachable, timeout {args.timeout} s: {elapsed:.2f} s, {outcome}")


if __name__ == "__main__":
    main()
