"""Raising an alert: its targets resolved, its reference drawn, its text checked, then announced.

An officer's alert awaits a coordinator's release (the coordinators are notified after
the commit); a coordinator's own alert is released at once (`alerts.lifecycle`).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from alerts.models import (
    Alert,
    AlertOrigin,
    AlertState,
    AlertTarget,
    AlertTransition,
    Officer,
    Partnership,
    Person,
    Urgency,
    Zone,
    record_audit,
    utcnow,
)
from alerts.people.directory import DirectoryError, normalize_code
from core.extensions import db
from core.queue import enqueue_after_commit, savepoint
from prompts import LANGUAGES

if TYPE_CHECKING:
    pass

from alerts.errors import AlertError, NotAllowed
from alerts.lifecycle import MAX_TEXT_LENGTH, NOTICE_QUEUE, actor_label, decides_for, release_alert

log = logging.getLogger(__name__)

# Typed back in an SMS ("OUI K7RM"): no letters mistaken for digits or for each other
# (no B/8, G/6, I/1/L, O/0/Q, S/5, Z/2), upper case only. 22**4 = 234,256 references.
REFERENCE_ALPHABET = "ACDEFHJKMNPRTUVWXY3479"
REFERENCE_LENGTH = 4


def resolve_targets(codes: Sequence[str], *, officer: Officer | None) -> list[Partnership]:
    """Return the PLPs that PLP and zone codes designate (a zone: all its PLPs), once each.

    An officer may only target PLPs of their own zone (`NotAllowed`); an unknown code is
    an `AlertError`.
    """
    if not codes:
        raise AlertError("no target given: name a PLP or a zone")
    found: dict[int, Partnership] = {}
    for raw in codes:
        try:
            code = normalize_code(raw)
        except DirectoryError as err:
            raise AlertError(f"target {raw!r}: not a PLP or zone code ({err})") from None
        plp = db.session.scalar(select(Partnership).where(Partnership.code == code))
        if plp is not None:
            plps = [plp]
        else:
            zone = db.session.scalar(select(Zone).where(Zone.code == code))
            if zone is None:
                raise AlertError(f"target {code}: no PLP or zone has this code")
            plps = list(
                db.session.scalars(
                    select(Partnership)
                    .where(Partnership.zone_id == zone.id)
                    .order_by(Partnership.code)
                )
            )
            if not plps:
                raise AlertError(f"target {code}: the zone has no PLP")
        for plp in plps:
            found.setdefault(plp.id, plp)
    targets = list(found.values())
    if officer is not None:
        _check_officer_zone(officer, targets)
    return targets


def _check_officer_zone(officer: Officer, targets: Sequence[Partnership]) -> None:
    foreign = [p.code for p in targets if p.zone_id != officer.zone_id]
    if foreign:
        raise NotAllowed(
            f"an officer of zone {officer.zone.code} may only alert its PLPs, "
            f"not {', '.join(foreign)}"
        )


def raise_alert(
    *,
    author: Person,
    targets: Sequence[Partnership],
    text: str,
    origin: AlertOrigin,
    urgency: Urgency = Urgency.URGENT,
    exercise: bool = False,
    language: str | None = None,
    now: datetime | None = None,
) -> Alert:
    """Create an alert for `targets`: awaiting release when an officer raised it.

    A coordinator or steering member of every target releases it at once; an officer's
    alert waits for a coordinator (who is notified after the commit), unless no target's
    charter requires a release. Anyone else is refused (`NotAllowed`). Caller commits.
    """
    now = now or utcnow()
    message = " ".join((text or "").split())  # one paragraph: line breaks come from pasting
    if not message:
        raise AlertError("the alert has no text")
    if len(message) > MAX_TEXT_LENGTH:
        raise AlertError(f"the alert text has {len(message)} characters; at most {MAX_TEXT_LENGTH}")
    if urgency == Urgency.GENERAL:
        raise AlertError("general bulletins are not alerts: choose urgent or non-urgent")
    targets = list({p.id: p for p in targets}.values())
    if not targets:
        raise AlertError("no target given: name a PLP or a zone")
    if language is not None and language not in LANGUAGES:
        raise AlertError(f"language {language!r}: choose one of {', '.join(LANGUAGES)}")

    decider = all(decides_for(author, plp) for plp in targets)
    officer = author.officer if author.officer is not None and author.officer.active else None
    if not decider:
        if officer is None:
            raise NotAllowed(
                "only a police officer, or a coordinator of every targeted PLP, may raise an alert"
            )
        _check_officer_zone(officer, targets)

    charters = [plp.charter for plp in targets]
    alert = Alert(
        origin=origin,
        author_id=author.id,
        urgency=urgency,
        state=AlertState.AWAITING_RELEASE,
        text=message,
        language=language or targets[0].language,
        exercise=exercise,
        created_at=now,
        expires_at=now + timedelta(minutes=min(c.alert_expiry_minutes for c in charters)),
    )
    alert.targets = [AlertTarget(partnership=plp) for plp in targets]
    _insert_with_reference(alert)
    db.session.add(
        AlertTransition(
            alert_id=alert.id,
            from_state=None,
            to_state=AlertState.AWAITING_RELEASE,
            actor_id=author.id,
            at=now,
        )
    )
    record_audit(
        "alert.raise",
        actor=actor_label(author),
        actor_id=author.id,
        subject=alert,
        reference=alert.reference,
        targets=[p.code for p in targets],
        urgency=urgency.value,
        exercise=exercise,
        origin=origin.value,
    )
    log.info(
        "alert raised alert_id=%s ref=%s author_id=%s targets=%s urgency=%s exercise=%s",
        alert.id,
        alert.reference,
        author.id,
        ",".join(p.code for p in targets),
        urgency.value,
        exercise,
    )

    if decider:
        release_alert(alert, by=author, now=now)
    elif not any(c.requires_release for c in charters):
        # Every target's charter lets police alerts through without a coordinator's yes.
        release_alert(alert, by=None, now=now)
    else:
        enqueue_after_commit(
            NOTICE_QUEUE,
            "alerts.jobs.notify_coordinators",
            alert.id,
            job_id=f"notify-coordinators-{alert.id}",
        )
    return alert


def _insert_with_reference(alert: Alert, tries: int = 20) -> None:
    """Give `alert` an unused reference and insert it (a savepoint retries a collision)."""
    for _ in range(tries):
        reference = "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(REFERENCE_LENGTH))
        if db.session.scalar(select(Alert.id).where(Alert.reference == reference)) is not None:
            continue
        alert.reference = reference
        try:
            # Another request may take the same reference between the check and the insert.
            with savepoint():
                db.session.add(alert)
        except IntegrityError:
            continue
        return
    raise AlertError("no free alert reference could be found; try again")
