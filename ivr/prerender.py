"""The speech pre-render: an alert's call rendered once per language, at release.

`enqueue_alert_audio` (called by the release) queues `render_alert_audio` (job
`speech-<alert_id>`, enqueued as `alerts.jobs.render_alert_audio`), which renders every
text of `ivr.spoken.alert_call_words` in each recipient's language through
`prompts.engines.synthesize`. The first calls of an alert do not wait for it: until the
audio is there, `ivr.voice` leaves the words to the carrier's <Say>.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from alerts.models import Alert, AlertState, Delivery, Person
from alerts.wording import language_for
from core.extensions import db
from ivr.spoken import alert_call_texts
from prompts.engines import synthesize

log = logging.getLogger(__name__)


def recipient_languages(alert: Alert) -> list[str]:
    """Return the languages the alert's recipients are spoken to in, sorted."""
    people = db.session.scalars(
        select(Person).where(
            Person.id.in_(select(Delivery.person_id).where(Delivery.alert_id == alert.id))
        )
    )
    # The IVR speaks to a person in language_for(person, alert): the same rule here.
    return sorted({language_for(person, alert) for person in people})


def render_alert_audio(alert_id: int) -> dict[str, dict[str, int]]:
    """Render every text of the alert's calls in each recipient's language; return counts.

    Counts are per language and engine (`say`: left to the carrier). An engine that fails
    is not tried again for this alert, and its failure is logged once.
    """
    alert = db.session.get(Alert, alert_id)
    if alert is None:
        log.warning("speech for a missing alert alert_id=%s", alert_id)
        return {}
    if alert.state not in (AlertState.RELEASED, AlertState.DELIVERING):
        log.info("speech not rendered alert_id=%s state=%s", alert_id, alert.state.value)
        db.session.rollback()
        return {}
    failed: dict[str, str] = {}
    counts: dict[str, dict[str, int]] = {}
    context = f"alert_id={alert_id}"
    for language in recipient_languages(alert):
        per_engine = counts.setdefault(language, {})
        for words in alert_call_texts(alert, language):
            found = synthesize(words, language, failed=failed, context=context)
            engine = found.engine if found else "say"
            per_engine[engine] = per_engine.get(engine, 0) + 1
    db.session.rollback()  # read only: end the transaction, hold no snapshot
    log.info(
        "speech rendered alert_id=%s counts=%s failed=%s",
        alert_id,
        counts,
        ",".join(sorted(failed)) or "-",
    )
    return counts
