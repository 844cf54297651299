"""What Twilio's messaging does with words and answers: opt-out keywords, TwiML replies.

Pure rules, no state: the network (`simulator.network`) applies them to each message.
"""

from __future__ import annotations

from xml.etree import ElementTree

from simulator.transport import TransportResponse

MAX_REPLY_BYTES = 64 * 1024  # https://www.twilio.com/docs/api/errors/11750
REPLY_TYPES = frozenset({"text/xml", "application/xml", "text/html"})

# Twilio's default opt-out keywords, matched against the whole trimmed message,
# case-insensitively: https://help.twilio.com/articles/223134027
OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "ARRET"})
OPT_IN_WORDS = frozenset({"START", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})
# What Twilio itself texts back when it handles STOP and START (default opt-out).
OPT_OUT_CONFIRMATION = (
    "You have successfully been unsubscribed. You will not receive any more messages "
    "from this number. Reply START to resubscribe."
)
OPT_IN_CONFIRMATION = (
    "You have successfully been re-subscribed to messages from this number. "
    "Reply HELP for help. Reply STOP to unsubscribe. Msg&Data Rates May Apply."
)
OPTED_OUT_CODE = "21610"  # https://www.twilio.com/docs/api/errors/21610
UNREACHABLE_HANDSET_CODE = "30003"  # https://www.twilio.com/docs/api/errors/30003
UNKNOWN_ERROR_CODE = "30008"  # https://www.twilio.com/docs/api/errors/30008


def opt_out_type(body: str) -> str | None:
    """Return Twilio's `OptOutType` for an inbound message: STOP, START, HELP or None."""
    word = body.strip().upper()
    if word in OPT_OUT_WORDS:
        return "STOP"
    if word in OPT_IN_WORDS:
        return "START"
    if word in HELP_WORDS:
        return "HELP"
    return None


def message_replies(response: TransportResponse) -> list[tuple[str | None, str]]:
    """Return the SMS (to or None for the sender, body) that a messaging TwiML answer sends.

    Raises ValueError saying what Twilio would refuse: a non-2xx answer, another content
    type, a document too large, not XML, another root, a verb other than <Message>.
    """
    if not 200 <= response.status < 300:
        raise ValueError(f"answered HTTP {response.status} (Twilio error 11200)")
    if not response.body.strip():
        return []  # an empty answer: nothing to send back, as on Twilio
    if response.mimetype not in REPLY_TYPES:
        raise ValueError(
            f"answered {response.content_type or 'no Content-Type'}, not TwiML (Twilio error 12300)"
        )
    if len(response.body) > MAX_REPLY_BYTES:
        raise ValueError("answered more than 64 kB (Twilio error 11750)")
    try:
        # The app's own answer, size-checked; expat expands no external entities.
        root = ElementTree.fromstring(response.body)  # noqa: S314
    except ElementTree.ParseError as err:
        raise ValueError(
            f"answered a document that is not XML: {err} (Twilio error 12100)"
        ) from None
    if root.tag != "Response":
        raise ValueError(f"the root is <{root.tag}>, not <Response> (Twilio error 12102)")
    replies = []
    for verb in root:
        if verb.tag != "Message":
            raise ValueError(f"<{verb.tag}> is not a messaging verb here (Twilio error 12200)")
        bodies = [body.text or "" for body in verb.iter("Body")]
        text = "".join(bodies) if bodies else (verb.text or "")
        replies.append((verb.get("to"), text.strip()))
    return replies
