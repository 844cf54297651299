"""Errors of the alert lifecycle: what a request about an alert cannot do, and why.

Each message is safe to show to the officer or coordinator who asked.
"""

from __future__ import annotations


class AlertError(ValueError):
    """A request about an alert that cannot be met; the message is safe to show its author."""


class IllegalTransition(AlertError):  # noqa: N818 (the design's name: reads as what it is)
    """The alert's state does not allow this move (already decided, already closed...)."""


class NotAllowed(AlertError):  # noqa: N818 (the design's name: reads as what it is)
    """The person may not do this to this alert."""
