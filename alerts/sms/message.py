"""An SMS exchange with the PLP number: the message Twilio reports, the reply, its length.

`InboundSms` is what Twilio posted about a text sent to the number; `Context` is that
message being handled (who sent it, the language to answer in); `Reply` is what to text
back and what the audit log says happened; `fit` cuts a reply to the segments allowed.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from alerts.models import Person
from alerts.sms.segments import sms_length
from core.webhooks import MalformedWebhook
from prompts import text

MAX_SEGMENTS = 2  # a reply is at most this many SMS segments
MAX_BODY = 1600  # Twilio's own limit for one message's Body
_ELLIPSIS = "..."  # GSM-7: "…" would make the whole reply UCS-2 (70 characters a segment)


@dataclass(frozen=True)
class InboundSms:
    """Twilio's request about a message texted to the PLP number."""

    sid: str
    from_: str
    body: str
    opt_out_type: str | None  # STOP, START or HELP: what the carrier's opt-out handling did

    @classmethod
    def from_form(cls, form: Mapping[str, str]) -> InboundSms:
        """Read the form Twilio posted; raise `MalformedWebhook` without MessageSid or From."""
        sid = (form.get("MessageSid") or form.get("SmsSid") or "").strip()
        from_ = (form.get("From") or "").strip()
        if not sid or len(sid) > 64 or not sid.isprintable():
            raise MalformedWebhook("MessageSid is missing or not a message SID")
        if not from_ or len(from_) > 64 or not from_.isprintable():
            raise MalformedWebhook("From is missing or not a phone number")
        opt_out = (form.get("OptOutType") or "").strip().upper()[:16] or None
        # Control characters (NUL above all, which PostgreSQL cannot store) and lone
        # surrogates are nobody's words; line breaks and tabs are kept (read as spaces).
        body = "".join(
            char
            for char in (form.get("Body") or "")[:MAX_BODY]
            if unicodedata.category(char) not in ("Cc", "Cs") or char in "\n\r\t"
        )
        return cls(sid=sid, from_=from_, body=body, opt_out_type=opt_out)


@dataclass(frozen=True)
class Reply:
    """What to text back (None: nothing), and what the audit log says happened."""

    body: str | None
    outcome: str  # "ok", or the refusal's reason ("pin_wrong", "unknown_target"...)


@dataclass
class Context:
    """One inbound message being handled: who sent it, in which language to answer."""

    sms: InboundSms
    person: Person | None
    language: str

    def say(self, key: str, **values: object) -> str:
        return text(key, self.language, **values)

    def ok(self, key: str, **values: object) -> Reply:
        return Reply(self.say(key, **values), "ok")

    def refuse(self, reason: str, key: str, **values: object) -> Reply:
        return Reply(self.say(key, **values), reason)


def fit(body: str, segments: int = MAX_SEGMENTS) -> str:
    """Return `body` cut (with "...") to at most `segments` SMS segments."""
    if sms_length(body).segments <= segments:
        return body
    # Binary search for the longest cut that fits: a handful of counts for any reply.
    low, high = 0, len(body)
    while low < high:
        middle = (low + high + 1) // 2
        if sms_length(body[:middle].rstrip() + _ELLIPSIS).segments <= segments:
            low = middle
        else:
            high = middle - 1
    return body[:low].rstrip() + _ELLIPSIS
