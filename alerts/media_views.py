"""Audio for calls and e-mails: rendered speech and recorded messages.

Not signed like the webhooks: the carrier fetches `<Play>` URLs with a plain GET, and
members open recording links from their e-mail. What protects them is the name: a
recording's URL holds a 256-bit random token; a speech file's name is the SHA-256 of
its text, so finding it takes knowing the text already.

Both are sent with `send_file(conditional=True)`: an ETag, Last-Modified and byte
ranges, and 304 when the client has it. A speech file never changes (its name is its
text's hash): immutable for a year. A recording is cached at most until its retention
ends. Anything unknown, deleted or expired is a 404, never a 500.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, abort, send_file

from alerts.models import utcnow
from alerts.recordings import recording_file
from prompts import LANGUAGES
from prompts.audio import CONTENT_TYPES, EXTENSIONS
from prompts.audio_cache import AUDIO_NAME, audio_path

bp = Blueprint("media", __name__, url_prefix="/media")

SPEECH_MAX_AGE = int(timedelta(days=365).total_seconds())
RECORDING_MAX_AGE = int(timedelta(days=1).total_seconds())


@bp.get("/speech/<engine>/<language>/<name>")
def speech(engine: str, language: str, name: str):
    """Serve a rendered prompt from the speech cache."""
    match = AUDIO_NAME.fullmatch(name)
    if match is None or language not in LANGUAGES or EXTENSIONS.get(engine) != match.group(1):
        abort(404)
    path = audio_path(engine, language, name)
    if not path.is_file():
        abort(404)
    response = send_file(
        path, mimetype=CONTENT_TYPES[match.group(1)], conditional=True, max_age=SPEECH_MAX_AGE
    )
    response.cache_control.public = True
    response.cache_control.immutable = True
    return response


@bp.get("/recordings/<token>")
def recording(token: str):
    """Serve a recorded message by its unguessable token, while its retention lasts."""
    now = utcnow()
    found = recording_file(token, now)
    if found is None:
        abort(404)
    stored, path = found
    # Cached no longer than the file exists: after the retention, nobody may replay it.
    remaining = int((stored.delete_after - now).total_seconds()) if stored.delete_after else None
    max_age = (
        max(0, min(RECORDING_MAX_AGE, remaining)) if remaining is not None else RECORDING_MAX_AGE
    )
    response = send_file(path, mimetype=stored.content_type, conditional=True, max_age=max_age)
    # public: the carrier's media cache may keep it for the next calls; it can only be
    # asked for by whoever knows the token.
    response.cache_control.public = True
    response.headers["X-Robots-Tag"] = "noindex"
    return response
