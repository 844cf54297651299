"""The one language rule, and how an alert's PLPs and reference are named in what is said.

Every channel (call, SMS, e-mail, the pages of a link) asks `language_for`; nothing else
decides which language a person is addressed in.
"""

from __future__ import annotations

from collections.abc import Iterable

from alerts.models import Alert, Partnership, Person
from prompts import FALLBACK_LANGUAGE, LANGUAGES, text


def language_for(
    person: Person | None, alert: Alert | None = None, *, hint: str | None = None
) -> str:
    """Return the language to address `person` in: theirs, else the alert's, else `hint`.

    `hint` is what the request itself suggests (the language of an SMS keyword); French,
    the language of most PLPs, when nothing is known.
    """
    for language in (
        person.language if person is not None else None,
        alert.language if alert is not None else None,
        hint,
    ):
        if language in LANGUAGES:
            return language
    return FALLBACK_LANGUAGE


def partnership_names(partnerships: Iterable[Partnership]) -> str:
    """Return the distinct labels of `partnerships`, in their order, as prompts say them."""
    return ", ".join(dict.fromkeys(p.label for p in partnerships))


def plp_names(alert: Alert) -> str:
    """Return the names of the alert's PLPs, in the order of its targets."""
    return partnership_names(target.partnership for target in alert.targets)


def text_for(alert: Alert, key: str, language: str | None, **values: object) -> str:
    """Return the prompt `key` about `alert`, with its PLPs, reference and exercise marker."""
    exercise = text("sms.exercise_prefix", language) if alert.exercise else ""
    return text(
        key, language, exercise=exercise, plp=plp_names(alert), ref=alert.reference, **values
    )
