"""The simulator as phone provider: `PHONE_PROVIDER=simulator` (the default without Twilio).

It answers the app as Twilio's API would: a number that cannot be dialled is refused at
once (21211), an SMS to a landline (21614) or to a number that replied STOP (21610)
too, with the same domain errors and messages as the Twilio provider (`error_for`).
Anything accepted gets a Twilio-shaped SID and status "queued", and its life is handed
to the simulated network (`simulator.carrier`), which reports back through the app's
real status webhooks. Asked where a call or message stands, it answers from the store,
which the network updates before each callback (so a callback lost on the way does not
lose the status).
"""

from __future__ import annotations

import logging
import re
import time
from datetime import datetime
from urllib.parse import urlsplit

import phonenumbers
from flask import Flask

from alerts.delivery.provider import (
    CallRequest,
    CarrierStatus,
    ProviderError,
    RecordingAudio,
    Sent,
    SmsRequest,
    UnknownSidError,
)
from alerts.delivery.twilio_provider import (
    RECORDING_MISSING_MESSAGE,
    UNKNOWN_SID_MESSAGE,
    error_for,
    last_digits,
)
from simulator import carrier, config, store
from simulator.calls import new_sid
from simulator.network import Network

log = logging.getLogger(__name__)

INVALID_NUMBER = 21211  # https://www.twilio.com/docs/api/errors/21211
NOT_MOBILE = 21614  # https://www.twilio.com/docs/api/errors/21614
OPTED_OUT = 21610  # https://www.twilio.com/docs/api/errors/21610
RECORDINGS_PATH = "/simulator/recordings/"  # served by the dev page (simulator.adapters.views)
_RECORDING_NAME = re.compile(r"(RE[0-9a-f]{32})(?:\.wav)?")


class SimulatorProvider:
    """Places calls and sends SMS on the simulated network; fetches its recordings."""

    name = "simulator"

    def __init__(self, app: Flask):
        self.app = app
        self.settings = app.extensions["settings"]

    @property
    def network(self) -> Network:
        """Return the network carrying this process's lives (thread mode)."""
        return carrier.network(self.app)

    def place_call(self, request: CallRequest) -> Sent:
        """Accept a call for the network, or refuse it as Twilio would (21211)."""
        behaviour = store.behaviour_for(request.to)
        if behaviour.kind == "invalid" or not _dialable(request.to):
            raise self._refused("call", request.to, INVALID_NUMBER)
        sid = new_sid("CA")
        from_ = config.plp_number(self.app)
        store.save_call(
            {
                "sid": sid,
                "direction": "outbound-api",
                "from": from_,
                "to": request.to,
                "status": "queued",
                "answered_by": None,
                "started_at": store.now_iso(),
                "duration": None,
            }
        )
        carrier.dispatch(
            {
                "kind": "call",
                "sid": sid,
                "from": from_,
                "to": request.to,
                "answer_url": request.answer_url,
                "status_callback_url": request.status_callback_url,
                "machine_detection": request.machine_detection,
                "timeout_seconds": request.timeout_seconds,
                "accepted_at": time.time(),
            }
        )
        log.info("simulator call placed to=%s sid=%s", last_digits(request.to), sid)
        return Sent(sid=sid, status="queued")

    def send_sms(self, request: SmsRequest) -> Sent:
        """Accept an SMS for the network, or refuse it as Twilio would (21211, 21614, 21610)."""
        behaviour = store.behaviour_for(request.to)
        if behaviour.kind == "invalid" or not _dialable(request.to):
            raise self._refused("sms", request.to, INVALID_NUMBER)
        if behaviour.kind == "landline":
            raise self._refused("sms", request.to, NOT_MOBILE)
        if store.is_opted_out(request.to):
            raise self._refused("sms", request.to, OPTED_OUT)
        sid = new_sid("SM")
        from_ = config.plp_number(self.app)
        store.add_message(
            {
                "sid": sid,
                "from": from_,
                "to": request.to,
                "body": request.body,
                "direction": "outbound",
                "status": "queued",
            }
        )
        carrier.dispatch(
            {
                "kind": "sms",
                "sid": sid,
                "from": from_,
                "to": request.to,
                "body": request.body,
                "status_callback_url": request.status_callback_url,
                "accepted_at": time.time(),
            }
        )
        log.info("simulator sms sent to=%s sid=%s", last_digits(request.to), sid)
        return Sent(sid=sid, status="queued")

    def fetch_recording(self, recording_url: str) -> RecordingAudio:
        """Return the audio of a recording the simulator made (it keeps them as WAV files)."""
        prefix = self.settings.public_base_url + RECORDINGS_PATH
        match = _RECORDING_NAME.fullmatch(recording_url.removeprefix(prefix))
        if not recording_url.startswith(prefix) or match is None:
            raise ProviderError(
                "The recording address is not a simulator address.",
                detail=f"refused recording host={urlsplit(recording_url).netloc}",
            )
        path = config.recordings_dir(self.app) / f"{match.group(1)}.wav"
        if not path.is_file():
            raise ProviderError(RECORDING_MISSING_MESSAGE, detail=f"no file for {match.group(1)}")
        content = path.read_bytes()
        log.info("simulator recording fetched sid=%s bytes=%d", match.group(1), len(content))
        return RecordingAudio(content=content, content_type="audio/x-wav")

    def delete_recording(self, recording_sid: str) -> None:
        """Delete the simulator's copy of a recording (gone already: nothing to do)."""
        if _RECORDING_NAME.fullmatch(recording_sid) is None or "." in recording_sid:
            raise ProviderError(
                "The recording reference is not a simulator recording.",
                detail=f"refused recording sid={recording_sid[:40]!r}",
            )
        (config.recordings_dir(self.app) / f"{recording_sid}.wav").unlink(missing_ok=True)
        log.info("simulator recording deleted sid=%s", recording_sid)

    def find_recent(self, to: str, channel: str, since: datetime) -> list[str]:
        """Return the SIDs of the calls or SMS the app sent `to` since `since`, from the store."""
        info = store.snapshot()["numbers"].get(to, {"calls": [], "messages": []})
        if channel == "call":
            found = [
                (c["started_at"], c["sid"])
                for c in info["calls"]
                if c.get("direction") == "outbound-api" and c.get("started_at")
            ]
        else:  # the app's own API messages, not its TwiML replies ("by": "app")
            found = [
                (m["at"], m["sid"])
                for m in info["messages"]
                if m.get("direction") == "outbound" and "by" not in m and m.get("at")
            ]
        return [sid for at, sid in sorted(found) if datetime.fromisoformat(at) >= since]

    def fetch_call_status(self, sid: str) -> CarrierStatus:
        """Return the call's status as the store has it; `UnknownSidError` for an unknown SID."""
        call = store.get_call(sid)
        if call is None:
            raise UnknownSidError(UNKNOWN_SID_MESSAGE, detail=f"no simulated call {sid}")
        return CarrierStatus(
            status=call["status"],
            answered_by=call.get("answered_by"),
            duration_seconds=call.get("duration"),
        )

    def fetch_message_status(self, sid: str) -> CarrierStatus:
        """Return the message's status as the store has it; `UnknownSidError` if unknown."""
        message = store.get_message(sid)
        if message is None:
            raise UnknownSidError(UNKNOWN_SID_MESSAGE, detail=f"no simulated message {sid}")
        return CarrierStatus(status=message["status"], error_code=message.get("error_code"))

    def _refused(self, what: str, to: str, code: int) -> ProviderError:
        error = error_for(code, 400)
        log.warning(
            "simulator %s refused to=%s code=%s error=%s",
            what,
            last_digits(to),
            error.code,
            type(error).__name__,
        )
        return error


def _dialable(number: str) -> bool:
    """Tell whether Twilio would dial `number`: E.164 and a valid number of its country."""
    if not number.startswith("+"):
        return False
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(number, None))
    except phonenumbers.NumberParseException:
        return False
