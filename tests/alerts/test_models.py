"""The data model: timestamps, charter, and the constraints idempotency relies on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.exc import IntegrityError, StatementError

from alerts.models import (
    DELIVERY_PROGRESS,
    AckChannel,
    Acknowledgement,
    Alert,
    AlertOrigin,
    AlertTarget,
    CascadeStep,
    Channel,
    Charter,
    Delivery,
    DeliveryStatus,
    Membership,
    Partnership,
    Role,
)
from alerts.wording import partnership_names
from core.extensions import db
from core.webhooks import InboundWebhook


@pytest.fixture
def alert(make_plp, make_person):
    """An urgent alert for one PLP, raised by its author."""
    plp = make_plp()
    author = make_person("Officer")
    item = Alert(
        reference="K7Q2",
        origin=AlertOrigin.SMS,
        author=author,
        text="Cambriolage",
        expires_at=datetime.now(UTC) + timedelta(hours=2),
    )
    item.targets.append(AlertTarget(partnership=plp))
    db.session.add(item)
    db.session.commit()
    return item


def test_timestamps_come_back_aware_in_utc(alert):
    """A time stored in Brussels time is read back as the same instant, aware, in UTC."""
    brussels = timezone(timedelta(hours=1))
    alert.released_at = datetime(2026, 11, 24, 3, 0, tzinfo=brussels)
    db.session.commit()
    db.session.expire_all()
    assert alert.released_at == datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
    assert alert.released_at.utcoffset() == timedelta(0)
    assert alert.created_at.tzinfo is not None


def test_naive_timestamps_are_refused(alert):
    """A naive datetime is refused rather than stored in an unknown zone."""
    alert.closed_at = datetime(2026, 11, 24, 3, 0)  # noqa: DTZ001 (the point of the test)
    with pytest.raises(StatementError, match="naive datetime"):
        db.session.commit()
    db.session.rollback()


def test_one_acknowledgement_per_alert_and_person(alert, make_person):
    """A second confirmation of the same alert by the same person violates the constraint."""
    member = make_person("Member")
    db.session.add(Acknowledgement(alert_id=alert.id, person_id=member.id, channel=AckChannel.SMS))
    db.session.commit()
    db.session.add(Acknowledgement(alert_id=alert.id, person_id=member.id, channel=AckChannel.CALL))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_one_delivery_per_step_and_attempt(alert, make_person):
    """The same cascade step and attempt cannot be planned twice for a member."""
    member = make_person("Member")
    due = datetime.now(UTC)
    db.session.add(
        Delivery(
            alert_id=alert.id,
            person_id=member.id,
            channel=Channel.CALL,
            step=1,
            attempt=1,
            due_at=due,
        )
    )
    db.session.commit()
    db.session.add(
        Delivery(
            alert_id=alert.id,
            person_id=member.id,
            channel=Channel.CALL,
            step=1,
            attempt=1,
            due_at=due,
        )
    )
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()
    delivery = db.session.query(Delivery).one()
    assert delivery.status == DeliveryStatus.PLANNED


def test_webhooks_are_unique_by_kind_and_sid(app):
    """A provider SID is recorded once per kind: a retried webhook is detectable."""
    db.session.add(InboundWebhook(kind="sms", sid="SM123"))
    db.session.add(InboundWebhook(kind="call", sid="SM123"))
    db.session.commit()
    db.session.add(InboundWebhook(kind="sms", sid="SM123"))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_one_membership_per_person_and_plp(make_plp, make_person):
    """A person joins a partnership once; a role change updates that membership."""
    plp, person = make_plp(), make_person()
    db.session.add(Membership(person=person, partnership=plp, role=Role.MEMBER))
    db.session.commit()
    db.session.add(Membership(person_id=person.id, partnership_id=plp.id, role=Role.STEERING))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_enum_values_are_validated(alert):
    """An unknown enum string is refused before it reaches the database."""
    db.session.add(
        Delivery(
            alert_id=alert.id,
            person_id=alert.author_id,
            channel="fax",
            step=0,
            due_at=datetime.now(UTC),
        )
    )
    with pytest.raises(StatementError, match="fax"):
        db.session.commit()
    db.session.rollback()
    assert db.session.query(Delivery).count() == 0


def test_charter_round_trips_through_json(make_plp):
    """A custom charter is stored as JSON and read back equal; unknown keys are ignored."""
    plp = make_plp()
    custom = Charter(
        urgent_steps=(CascadeStep(0, "call"), CascadeStep(5, "email")),
        auto_release_after_minutes=20,
        quiet_hours=None,
        retention_days=30,
    )
    plp.charter = custom
    db.session.commit()
    db.session.expire_all()
    assert plp.charter == custom
    plp.charter_json = {**plp.charter_json, "from_a_future_version": True}
    assert plp.charter == custom


def test_default_charter_is_the_urgent_cascade():
    """The default urgent cascade: SMS and call at once, calls at 3 and 8 minutes, e-mail at 15."""
    steps = Charter().urgent_steps
    assert [(s.after_minutes, s.channel, s.phone) for s in steps] == [
        (0, "sms", 1),
        (0, "call", 1),
        (3, "call", 2),
        (8, "call", 1),
        (15, "email", 1),
    ]
    assert Charter.from_json(None) == Charter()


def test_delivery_progress_ranks_every_status():
    """Every delivery status has a rank, and terminal statuses outrank in-flight ones."""
    assert set(DELIVERY_PROGRESS) == set(DeliveryStatus)
    assert DELIVERY_PROGRESS[DeliveryStatus.RINGING] < DELIVERY_PROGRESS[DeliveryStatus.COMPLETED]
    assert DELIVERY_PROGRESS[DeliveryStatus.PLANNED] < DELIVERY_PROGRESS[DeliveryStatus.QUEUED]


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("PLP Quartier du Parc", "Quartier du Parc"),
        ("BIN - Parkwijk", "Parkwijk"),
        ("plp: Centre", "Centre"),
        ("KPP Eupen-Nord", "Eupen-Nord"),
        ("PLP", "PLP"),  # only the word: kept, or the prompt would name nothing
        ("PLPARC", "PLPARC"),  # not the word PLP
        ("Démo – Quartier du Parc", "Démo – Quartier du Parc"),
    ],
)
def test_partnership_label_drops_a_leading_plp_word(name, label):
    """The prompts say "le PLP {label}": a name starting with PLP/BIN/KPP is not doubled."""
    assert Partnership(name=name).label == label


def test_partnership_names_are_distinct_labels_in_order():
    plps = [Partnership(name=n) for n in ("PLP Parc", "BIN Parkwijk", "Parc", "Gare")]
    assert partnership_names(plps) == "Parc, Parkwijk, Gare"
