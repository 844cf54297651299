"""The dev phone page at /simulator: watch every simulated phone, and act as any of them.

Registered by `create_app` only when the provider is the simulator: with Twilio,
/simulator does not exist. There is no login (a development and demo tool; the page
lists every roster phone and acts as any of them), so it answers only on this machine:
every route refuses a client that is not on loopback, and a Host header that is not a
loopback name (DNS rebinding: a foreign site whose name now points at 127.0.0.1). Every
action must come from the page itself: a POST whose Origin (or Referer) is not this
loopback site is refused, and actions take JSON, which a cross-site HTML form cannot send.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import re
from urllib.parse import urlsplit

from flask import Blueprint, current_app, jsonify, render_template, request, send_from_directory
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from alerts.models import Membership, Officer, Person
from core.extensions import db
from simulator import store
from simulator.behaviour import mixed_behaviour
from simulator.carrier import inbound_call, inbound_sms
from simulator.config import plp_number, recordings_dir, wiring

log = logging.getLogger(__name__)

bp = Blueprint(
    "simulator",
    __name__,
    url_prefix="/simulator",
    template_folder="templates",
    static_folder="static",
)

# behaviour.KINDS in the select's order: the common cases first.
BEHAVIOUR_KINDS = (
    "answer",
    "interactive",
    "silent",
    "no_answer",
    "busy",
    "voicemail",
    "landline",
    "failed",
    "invalid",
)
MAX_SMS_BODY = 1600  # Twilio refuses longer bodies (error 21617)
MAX_KEY_STEPS = 10
# What one poll returns per phone: enough for a demo, and a poll stays small.
MAX_CALLS_SHOWN = 20
MAX_MESSAGES_SHOWN = 100

_VERSION = re.compile(r"[0-9]{1,18}")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_CALL_SID = re.compile(r"CA[0-9a-f]{32}")
_DIGITS = re.compile(r"[0-9*#]{1,32}")
_RECORDING_FILE = re.compile(r"(RE[0-9a-f]{32})(\.wav)?")
# The Host header: a name or address, then an optional port.
_HOST = re.compile(r"(\[[0-9a-fA-F:.]+\]|[^:\[\]]+)(:[0-9]{1,5})?")


class Refused(Exception):  # noqa: N818 (reads as what happened: the action was refused)
    """An action the page cannot do; `message` says why, for the person at the page."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@bp.errorhandler(Refused)
def _refused(error: Refused):
    return jsonify(error=error.message), error.status


@bp.before_request
def _refuse_unless_local():
    """Refuse a client off this machine, a foreign Host and, on actions, a foreign Origin."""
    if not _is_loopback_address(request.remote_addr):
        log.warning(
            "simulator refused: remote client path=%s remote_addr=%r",
            request.path,
            request.remote_addr,
        )
        raise Refused(403, "The simulator page answers only on this machine (loopback).")
    if not _is_loopback_host(request.host):
        log.warning("simulator refused: foreign host path=%s host=%r", request.path, request.host)
        raise Refused(403, "The simulator page answers only at localhost, 127.0.0.1 or [::1].")
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    source = request.headers.get("Origin") or request.headers.get("Referer")
    # The Host was checked above, so this site's own origin is a loopback one.
    if not source or _origin(source) != _origin(request.host_url):
        log.warning(
            "simulator action refused: cross-origin path=%s origin=%r", request.path, source
        )
        raise Refused(
            403,
            "Cross-origin request refused: actions must come from the "
            "/simulator page of this site.",
        )


@bp.get("")
def page():
    """Show every simulated phone, its calls and its SMS thread."""
    state = page_state()
    return render_template(
        "simulator/page.html", state=state, kinds=BEHAVIOUR_KINDS, max_sms_body=MAX_SMS_BODY
    )


@bp.get("/state")
def state():
    """Return the page's state, or only `changed: false` when the version is `since`."""
    since = request.args.get("since")
    if since is not None:
        if not _VERSION.fullmatch(since):
            raise Refused(400, "since: expected the version number of the page's last state")
        version = store.version()
        if int(since) == version:
            return jsonify(changed=False, version=version)
    return jsonify(page_state())


@bp.post("/behaviour")
def set_behaviour():
    """Set how a number behaves when it is called or texted."""
    data = _json_body()
    number = _number(data, "number")
    kind = data.get("kind")
    if kind not in BEHAVIOUR_KINDS:
        raise Refused(400, f"kind: expected one of {', '.join(BEHAVIOUR_KINDS)}")
    changes = {"kind": kind, "keys": _key_steps(data.get("keys", ""))}
    if "sms_reply" in data:
        reply = data["sms_reply"]
        if reply is not None and not isinstance(reply, str):
            raise Refused(400, "sms_reply: expected text or null")
        if reply and len(reply) > MAX_SMS_BODY:
            raise Refused(400, f"sms_reply: at most {MAX_SMS_BODY} characters")
        changes["sms_reply"] = reply or None
    # Start from what the number does now, so fields the page does not edit are kept.
    current = store.behaviour_for(number)
    try:
        behaviour = dataclasses.replace(current, **changes)
    except (TypeError, ValueError) as err:
        raise Refused(400, f"behaviour: {err}") from None
    store.set_behaviour(number, behaviour)
    log.info(
        "simulator behaviour set number=%s kind=%s keys=%s", number, kind, ",".join(behaviour.keys)
    )
    return jsonify(number=number, behaviour=behaviour.to_dict())


@bp.post("/keys")
def press_keys():
    """Press keys on a live call, as the person on the line."""
    data = _json_body()
    sid = data.get("call_sid")
    if not isinstance(sid, str) or not _CALL_SID.fullmatch(sid):
        raise Refused(400, "call_sid: expected CA followed by 32 lowercase hex digits")
    digits = data.get("digits")
    if not isinstance(digits, str) or not _DIGITS.fullmatch(digits):
        raise Refused(400, "digits: expected 1 to 32 of 0-9, * and #")
    call = store.get_call(sid)
    if call is None:
        raise Refused(404, f"no call {sid}")
    if not call["live"]:
        raise Refused(409, f"call {sid} is over ({call.get('status')}): no one hears the keys")
    store.push_keys(sid, digits)
    log.info("simulator keys pressed call_sid=%s digits=%s", sid, digits)
    return jsonify(call_sid=sid, digits=digits)


@bp.post("/sms")
def send_sms():
    """Text the PLP number as any number (a reply, an officer's alert, a member's 1)."""
    data = _json_body()
    from_ = _caller(data)
    body = data.get("body")
    if not isinstance(body, str) or not body.strip():
        raise Refused(400, "body: the message is empty")
    if len(body) > MAX_SMS_BODY:
        raise Refused(400, f"body: at most {MAX_SMS_BODY} characters")
    sid = inbound_sms(from_, body)  # carried in the background: the page shows its fate
    log.info("simulator sms sent to plp from=%s sid=%s", from_, sid)
    return jsonify({"sid": sid, "from": from_, "to": plp_number()}), 202


@bp.post("/call")
def call_plp():
    """Call the PLP number as any number; the page then plays the caller (keypad)."""
    data = _json_body()
    from_ = _caller(data)
    # No keys given: an interactive caller, who presses what the page's keypad sends.
    sid = inbound_call(from_, plp_number())
    log.info("simulator call to plp from=%s call_sid=%s", from_, sid)
    return jsonify({"call_sid": sid, "from": from_, "to": plp_number()}), 202


@bp.get("/recordings/<name>")
def recording(name: str):
    """Serve a recording made by a simulated caller, as Twilio serves RecordingUrl."""
    match = _RECORDING_FILE.fullmatch(name)
    if match is None:
        raise Refused(404, "no such recording")
    # Twilio serves a recording with and without the .wav extension; so does this.
    return send_from_directory(
        recordings_dir(), f"{match.group(1)}.wav", mimetype="audio/x-wav", max_age=0
    )


def page_state() -> dict:
    """Return everything the page shows: the PLP number and every phone, in a stable order."""
    snapshot = store.snapshot()
    settings = current_app.extensions["settings"]
    return {
        "changed": True,
        "version": snapshot["version"],
        "plp_number": plp_number(),
        "plp_number_configured": settings.twilio_from_number is not None,
        "phones": phone_cards(snapshot["numbers"], roster_phones()),
    }


def roster_phones() -> dict[str, dict]:
    """Return every roster phone (first and second numbers) with whose it is, by name."""
    people = db.session.scalars(
        select(Person)
        .options(
            selectinload(Person.memberships).selectinload(Membership.partnership),
            selectinload(Person.officer).selectinload(Officer.zone),
        )
        .order_by(Person.name, Person.id)
    )
    phones: dict[str, dict] = {}
    for person in people:
        plps = sorted(
            ({"code": m.partnership.code, "role": str(m.role)} for m in person.memberships),
            key=lambda plp: plp["code"],
        )
        officer = person.officer.zone.code if person.officer else None
        for line, number, kind in (
            ("phone", person.phone, person.phone_type),
            ("phone2", person.phone2, person.phone2_type),
        ):
            # A second number shared with someone else's first stays theirs.
            if number and number not in phones:
                phones[number] = {
                    "name": person.name,
                    "line": line,
                    "phone_type": str(kind) if kind else None,
                    "plps": plps,
                    "officer": officer,
                }
    return phones


def phone_cards(numbers: dict[str, dict], roster: dict[str, dict]) -> list[dict]:
    """Merge the store's numbers with the roster: the PLP number, then people, then others."""
    own = plp_number()
    # The store files calls and messages under the simulated person's number, so the
    # PLP number has a card only when it was used as a person (a test, a loop).
    others = sorted(set(numbers) - set(roster) - {own})
    order = [*([own] if own in numbers else []), *roster, *others]
    return [_card(number, numbers.get(number, {}), roster.get(number), own) for number in order]


def _card(number: str, seen: dict, person: dict | None, own: str) -> dict:
    role = "plp" if number == own else "roster" if person else "unknown"
    behaviour = None
    if role != "plp":
        behaviour = seen.get("behaviour")
        explicit = behaviour is not None
        if behaviour is None:
            # Not behaviour_for(): the snapshot already says nothing is set for it.
            behaviour = mixed_behaviour(number, wiring().is_landline).to_dict()
        behaviour = {**behaviour, "explicit": explicit}
    return {
        "number": number,
        "role": role,
        "name": person["name"]
        if person
        else ("PLP number (this app)" if role == "plp" else "Unknown number"),
        "line": person["line"] if person else None,
        "phone_type": person["phone_type"] if person else None,
        "plps": person["plps"] if person else [],
        "officer": person["officer"] if person else None,
        "behaviour": behaviour,
        "opted_out": bool(seen.get("opted_out")),
        "calls": seen.get("calls", [])[:MAX_CALLS_SHOWN],
        "messages": seen.get("messages", [])[-MAX_MESSAGES_SHOWN:],
    }


def _json_body() -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise Refused(400, "Expected a JSON object (Content-Type: application/json).")
    return data


def _number(data: dict, key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not _E164.fullmatch(value.strip()):
        raise Refused(400, f"{key}: expected a number in E.164 form, such as +32470123456")
    return value.strip()


def _caller(data: dict) -> str:
    from_ = _number(data, "from")
    if from_ == plp_number():
        raise Refused(400, "from: that is the PLP number itself; choose another phone")
    return from_


def _key_steps(value) -> tuple[str, ...]:
    """Parse the keys pressed at successive prompts: "1", "1234 1" or ["1234", "1"]."""
    if value is None:
        return ()
    if isinstance(value, str):
        steps = [step for step in re.split(r"[\s,]+", value) if step]
    elif isinstance(value, list) and all(isinstance(step, str) for step in value):
        steps = value
    else:
        raise Refused(400, 'keys: expected digits per prompt, such as "1" or "1234 1"')
    if len(steps) > MAX_KEY_STEPS or not all(_DIGITS.fullmatch(step) for step in steps):
        raise Refused(
            400,
            f"keys: at most {MAX_KEY_STEPS} groups of 0-9, * and #, "
            'one group per prompt, such as "1234 1"',
        )
    return tuple(steps)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _is_loopback_address(address: str | None) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)  # ::ffff:127.0.0.1 from a dual-stack socket
    return (mapped or ip).is_loopback


def _is_loopback_host(host: str) -> bool:
    match = _HOST.fullmatch(host)
    if match is None:
        return False
    name = match.group(1).lower()
    if name == "localhost":
        return True
    if name.startswith("["):
        return name == "[::1]"
    # Only a literal address: a name (other than localhost) is exactly what rebinding uses.
    try:
        return ipaddress.IPv4Address(name).is_loopback
    except ValueError:
        return False
