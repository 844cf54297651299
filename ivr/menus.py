"""The call trees' menus, as data: each a table from the key pressed to what it does.

`resolve(menu, digits)` is the one reading of a key: a digit of the table gives its
action, no key at all is `SILENCE`, anything else (another digit, `*`, several keys) is
`UNKNOWN`. What a view does with a silence or an unknown key is bounded by `MAX_RETRIES`:
the menu is said again that many times, then the call moves on or says goodbye.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

MAX_RETRIES = 3  # a repeat, a silence or a wrong key: the question is asked again at most 3 times


class Action(StrEnum):
    # Answers shared by several menus.
    SILENCE = "silence"
    UNKNOWN = "unknown"
    REPEAT = "repeat"
    # A decision about an alert awaiting release.
    RELEASE = "release"
    REJECT = "reject"
    # The coordinator's main menu.
    RECORD = "record"
    PENDING = "pending"
    COUNTS = "counts"
    # After a recording.
    SEND = "send"
    RECORD_AGAIN = "record_again"
    CANCEL = "cancel"
    # The urgency of a recorded message.
    URGENT = "urgent"
    NON_URGENT = "non_urgent"
    # A member hearing the running alerts.
    CONFIRM = "confirm"
    NEXT = "next"


Menu = Mapping[str, Action]

# A member's alert call: 1 confirms, 0 replays; any other key replays too (ivr.alert_call).
ALERT_MENU: Menu = MappingProxyType({"1": Action.CONFIRM, "0": Action.REPEAT})

# The coordinator's release call, and each alert awaiting release heard by phone.
RELEASE_MENU: Menu = MappingProxyType({"1": Action.RELEASE, "2": Action.REJECT, "0": Action.REPEAT})
# A coordinator or steering member who called the PLP number and gave their PIN.
COORDINATOR_MENU: Menu = MappingProxyType(
    {"1": Action.RECORD, "2": Action.PENDING, "3": Action.COUNTS}
)
# After the recording was played back.
REVIEW_MENU: Menu = MappingProxyType(
    {"1": Action.SEND, "2": Action.RECORD_AGAIN, "3": Action.CANCEL}
)
# Nothing usable was recorded (silence, or the download failed): no "send".
RETRY_MENU: Menu = MappingProxyType({"2": Action.RECORD_AGAIN, "3": Action.CANCEL})
URGENCY_MENU: Menu = MappingProxyType({"1": Action.URGENT, "2": Action.NON_URGENT})
# A member who called the PLP number, at each running alert (no key: the next alert).
MEMBER_ALERT_MENU: Menu = MappingProxyType({"1": Action.CONFIRM, "0": Action.REPEAT})


def resolve(menu: Menu, digits: str | None) -> Action:
    """Return what the keys pressed at `menu` ask for."""
    if not digits:
        return Action.SILENCE
    return menu.get(digits, Action.UNKNOWN)


def count(raw: str | None) -> int:
    """Read a small counter of our own action URL's query (anything else counts as 0)."""
    return int(raw) if raw and raw.isascii() and raw.isdigit() and len(raw) < 3 else 0


def ident(raw: str | None) -> int | None:
    """Read a row id of our own action URL's query (None when it is not one)."""
    if raw and raw.isascii() and raw.isdigit() and len(raw) < 12:
        return int(raw)
    return None
