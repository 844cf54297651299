"""The data model of the whole mission: zones, partnerships, people, alerts, deliveries.

The database is the source of truth: every planned delivery is a row before any job
runs, and every confirmation is one row per alert and person. Enums are stored as
strings (no native database enum) so that later states need no type migration.

Over 500 lines on purpose: the whole schema in one module, read top to bottom, is what a
newcomer and a migration author need; splitting tables across files would hide the
relationships between them.
"""

from __future__ import annotations

import enum
import re
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Enum,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.clock import UTCDateTime, utcnow
from core.extensions import db

LANGUAGES = ("fr", "nl", "de", "en")


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(
        cls,
        native_enum=False,
        create_constraint=False,
        length=24,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


class Role(enum.StrEnum):
    MEMBER = "member"
    COORDINATOR = "coordinator"
    STEERING = "steering"


class PhoneType(enum.StrEnum):
    MOBILE = "mobile"  # takes calls and SMS
    FIXED = "fixed"  # a landline: calls only


class Urgency(enum.StrEnum):
    URGENT = "urgent"  # "red": call, SMS, retries, second number, e-mail fallback
    NON_URGENT = "non_urgent"  # "green": e-mail (and optionally SMS) or the next bulletin
    GENERAL = "general"  # public bulletin, no personal data


class AlertOrigin(enum.StrEnum):
    SMS = "sms"
    PHONE = "phone"
    WEB = "web"
    API = "api"
    CLI = "cli"  # `flask alert raise`, by an operator on the server


class AlertState(enum.StrEnum):
    AWAITING_RELEASE = "awaiting_release"
    RELEASED = "released"
    REJECTED = "rejected"
    DELIVERING = "delivering"
    CLOSED = "closed"


class CloseReason(enum.StrEnum):
    ALL_CONFIRMED = "all_confirmed"
    EXHAUSTED = "exhausted"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class Channel(enum.StrEnum):
    CALL = "call"
    SMS = "sms"
    EMAIL = "email"


class AckChannel(enum.StrEnum):
    CALL = "call"  # pressed 1 during an alert call
    SMS = "sms"  # replied 1
    EMAIL = "email"  # clicked the link
    INBOUND_CALL = "inbound_call"  # called the PLP number and pressed 1
    WEB = "web"  # marked by a coordinator on the dashboard


class DeliveryStatus(enum.StrEnum):
    """Where one delivery stands; the order of `DELIVERY_PROGRESS` never goes backwards."""

    PLANNED = "planned"  # a row, not yet handed to the carrier
    QUEUED = "queued"  # accepted by the carrier
    SENT = "sent"  # SMS left the carrier / e-mail accepted by the relay
    RINGING = "ringing"
    IN_PROGRESS = "in_progress"  # call answered
    DELIVERED = "delivered"  # SMS delivered to the handset
    COMPLETED = "completed"  # call ended after being answered
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"
    UNDELIVERED = "undelivered"
    CANCELED = "canceled"  # the member confirmed elsewhere before this step ran
    SKIPPED = "skipped"  # opted out, no such channel, alert closed


# Rank in the life of a delivery: a status callback never lowers it (a late "ringing"
# after "completed" is ignored). Terminal statuses share the highest rank.
DELIVERY_PROGRESS = {
    DeliveryStatus.PLANNED: 0,
    DeliveryStatus.QUEUED: 1,
    DeliveryStatus.SENT: 2,
    DeliveryStatus.RINGING: 2,
    DeliveryStatus.IN_PROGRESS: 3,
    DeliveryStatus.DELIVERED: 4,
    DeliveryStatus.COMPLETED: 4,
    DeliveryStatus.BUSY: 4,
    DeliveryStatus.NO_ANSWER: 4,
    DeliveryStatus.FAILED: 4,
    DeliveryStatus.UNDELIVERED: 4,
    DeliveryStatus.CANCELED: 4,
    DeliveryStatus.SKIPPED: 4,
}


@dataclass(frozen=True)
class CascadeStep:
    """One step of a member's cascade: what to do, how long after the release."""

    after_minutes: int
    channel: str  # a Channel value
    phone: int = 1  # 1: first number, 2: second number (the first when there is none)


@dataclass(frozen=True)
class Charter:
    """A PLP's communication plan: stored as JSON on the partnership, defaults below."""

    urgent_steps: tuple[CascadeStep, ...] = (
        CascadeStep(0, "sms"),
        CascadeStep(0, "call", 1),
        CascadeStep(3, "call", 2),
        CascadeStep(8, "call", 1),
        CascadeStep(15, "email"),
    )
    non_urgent_channels: tuple[str, ...] = ("email",)  # add "sms" to text green news too
    non_urgent_at_bulletin: bool = False  # hold green news for the daily bulletin
    bulletin_time: str = "18:00"  # local time of the scheduled bulletin
    requires_release: bool = True  # police alerts wait for a coordinator's "yes"
    escalate_to_steering_after_minutes: int = 10
    auto_release_after_minutes: int | None = None  # off by default
    alert_expiry_minutes: int = 120
    quiet_hours: tuple[str, str] | None = ("22:00", "07:00")  # non-urgent news waits
    retention_days: int = 90  # recordings and per-member delivery detail

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Charter:
        """Build a charter from stored JSON; unknown keys are ignored, missing ones default."""
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if "urgent_steps" in values:
            values["urgent_steps"] = tuple(CascadeStep(**s) for s in values["urgent_steps"])
        for key in ("non_urgent_channels", "quiet_hours"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        """Return the charter as plain JSON-able data."""
        return asdict(self)


class Zone(db.Model):
    """A police zone (zone de police / politiezone)."""

    __tablename__ = "zone"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    partnerships: Mapped[list[Partnership]] = relationship(back_populates="zone")
    officers: Mapped[list[Officer]] = relationship(back_populates="zone")


class Partnership(db.Model):
    """A local prevention partnership (PLP / BIN) and its charter."""

    __tablename__ = "partnership"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    zone_id: Mapped[int] = mapped_column(ForeignKey("zone.id"), index=True)
    language: Mapped[str] = mapped_column(String(2), default="fr")
    charter_json: Mapped[dict] = mapped_column("charter", JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    zone: Mapped[Zone] = relationship(back_populates="partnerships")
    memberships: Mapped[list[Membership]] = relationship(
        back_populates="partnership", cascade="all, delete-orphan"
    )

    @property
    def charter(self) -> Charter:
        """The partnership's communication plan (defaults where not set)."""
        return Charter.from_json(self.charter_json)

    @charter.setter
    def charter(self, value: Charter) -> None:
        self.charter_json = value.to_json()

    @property
    def label(self) -> str:
        """The name as the prompts say it after their own "PLP" (fr) or "BIN" (nl).

        Many partnerships are named "PLP Quartier du Parc" or "BIN Parkwijk"; the prompts
        read "le PLP {name}", which would say "PLP PLP Quartier du Parc". A leading PLP,
        BIN or KPP word is left out; a name that is only that word is kept.
        """
        return _PLP_WORD.sub("", self.name).strip() or self.name


# A leading "PLP"/"BIN"/"KPP" word (the French, Dutch and German acronyms), then a space,
# a dash or a colon: "PLP Parc", "BIN - Parkwijk", "PLP: Centre".
_PLP_WORD = re.compile(r"^\s*(?:PLP|BIN|KPP)\b\s*[-–:]?\s*(?=\S)", re.IGNORECASE)


class Person(db.Model):
    """Anyone the system reaches or hears from: member, coordinator, officer.

    A person is identified by their first phone number (E.164): the same number in two
    PLPs' rosters is one person with two memberships.
    """

    __tablename__ = "person"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str] = mapped_column(String(20), unique=True)
    phone_type: Mapped[PhoneType] = mapped_column(_enum(PhoneType))
    phone2: Mapped[str | None] = mapped_column(String(20), index=True)
    phone2_type: Mapped[PhoneType | None] = mapped_column(_enum(PhoneType))
    email: Mapped[str | None] = mapped_column(String(254))
    language: Mapped[str] = mapped_column(String(2), default="fr")
    address: Mapped[str | None] = mapped_column(String(300))
    pin_hash: Mapped[str | None] = mapped_column(String(200))
    consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Opt-outs per channel: the time the person opted out, None while they receive it.
    sms_opt_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    call_opt_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    email_opt_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    memberships: Mapped[list[Membership]] = relationship(
        back_populates="person", cascade="all, delete-orphan"
    )
    officer: Mapped[Officer | None] = relationship(back_populates="person")

    @property
    def can_receive_sms(self) -> bool:
        """Tell whether SMS may be sent to this person's first number."""
        return self.phone_type == PhoneType.MOBILE and self.sms_opt_out_at is None


class Membership(db.Model):
    """A person's place in one partnership."""

    __tablename__ = "membership"
    __table_args__ = (UniqueConstraint("person_id", "partnership_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    partnership_id: Mapped[int] = mapped_column(
        ForeignKey("partnership.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[Role] = mapped_column(_enum(Role), default=Role.MEMBER)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    person: Mapped[Person] = relationship(back_populates="memberships")
    partnership: Mapped[Partnership] = relationship(back_populates="memberships")


class Officer(db.Model):
    """A police officer of a zone, allowed to raise alerts for the zone's PLPs."""

    __tablename__ = "officer"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), unique=True)
    zone_id: Mapped[int] = mapped_column(ForeignKey("zone.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    person: Mapped[Person] = relationship(back_populates="officer")
    zone: Mapped[Zone] = relationship(back_populates="officers")


class Alert(db.Model):
    """One message from the police or a coordinator to the members of one or more PLPs."""

    __tablename__ = "alert"

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(12), unique=True)
    origin: Mapped[AlertOrigin] = mapped_column(_enum(AlertOrigin))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"), index=True)
    urgency: Mapped[Urgency] = mapped_column(_enum(Urgency), default=Urgency.URGENT)
    state: Mapped[AlertState] = mapped_column(
        _enum(AlertState), default=AlertState.AWAITING_RELEASE, index=True
    )
    close_reason: Mapped[CloseReason | None] = mapped_column(_enum(CloseReason))
    text: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(2), default="fr")
    recording_id: Mapped[int | None] = mapped_column(ForeignKey("recording.id"))
    exercise: Mapped[bool] = mapped_column(Boolean, default=False)
    all_clear_text: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    released_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)

    author: Mapped[Person | None] = relationship(foreign_keys=[author_id])
    released_by: Mapped[Person | None] = relationship(foreign_keys=[released_by_id])
    recording: Mapped[Recording | None] = relationship(foreign_keys=[recording_id])
    targets: Mapped[list[AlertTarget]] = relationship(
        back_populates="alert", cascade="all, delete-orphan"
    )
    transitions: Mapped[list[AlertTransition]] = relationship(
        back_populates="alert", cascade="all, delete-orphan", order_by="AlertTransition.id"
    )


class AlertTarget(db.Model):
    """A partnership an alert is addressed to (a zone target expands to its PLPs)."""

    __tablename__ = "alert_target"
    __table_args__ = (UniqueConstraint("alert_id", "partnership_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alert.id", ondelete="CASCADE"))
    partnership_id: Mapped[int] = mapped_column(ForeignKey("partnership.id"), index=True)

    alert: Mapped[Alert] = relationship(back_populates="targets")
    partnership: Mapped[Partnership] = relationship()


class AlertTransition(db.Model):
    """A recorded change of an alert's state: who, when, from what to what."""

    __tablename__ = "alert_transition"

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alert.id", ondelete="CASCADE"), index=True)
    from_state: Mapped[AlertState | None] = mapped_column(_enum(AlertState))
    to_state: Mapped[AlertState] = mapped_column(_enum(AlertState))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    alert: Mapped[Alert] = relationship(back_populates="transitions")


class RecordingStatus(enum.StrEnum):
    PENDING = "pending"  # accepted; the download job has not stored it yet
    READY = "ready"  # stored under instance/recordings/, playable
    FAILED = "failed"  # empty, invalid, or the carrier would not give it: never sent
    DELETED = "deleted"  # past the charter's retention: the file is gone


class Recording(db.Model):
    """A voice message recorded by phone, stored under instance/recordings/."""

    __tablename__ = "recording"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)  # the unguessable URL part
    path: Mapped[str | None] = mapped_column(String(500))
    content_type: Mapped[str | None] = mapped_column(String(100))
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delete_after: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[RecordingStatus] = mapped_column(
        _enum(RecordingStatus),
        default=RecordingStatus.PENDING,
        server_default=RecordingStatus.PENDING.value,
    )
    provider_url: Mapped[str | None] = mapped_column(String(500))  # where the carrier keeps it
    error: Mapped[str | None] = mapped_column(String(200))  # why it failed, for the logs


class Delivery(db.Model):
    """One attempt to reach one person on one channel for one alert, at one cascade step."""

    __tablename__ = "delivery"
    __table_args__ = (
        # The idempotency key: a step is planned once, whatever runs twice.
        UniqueConstraint("alert_id", "person_id", "step", "attempt"),
        Index("ix_delivery_due", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alert.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    channel: Mapped[Channel] = mapped_column(_enum(Channel))
    step: Mapped[int] = mapped_column(Integer)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    to_address: Mapped[str | None] = mapped_column(String(254))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[DeliveryStatus] = mapped_column(
        _enum(DeliveryStatus), default=DeliveryStatus.PLANNED
    )
    provider_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    answered_by: Mapped[str | None] = mapped_column(String(32))
    error_code: Mapped[str | None] = mapped_column(String(16))
    error_message: Mapped[str | None] = mapped_column(String(500))
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    cost: Mapped[Decimal | None] = mapped_column(Numeric(10, 5))
    cost_unit: Mapped[str | None] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    alert: Mapped[Alert] = relationship()
    person: Mapped[Person] = relationship()


class Acknowledgement(db.Model):
    """A person's confirmation of an alert: one per alert and person, the first wins."""

    __tablename__ = "acknowledgement"
    __table_args__ = (UniqueConstraint("alert_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alert.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    channel: Mapped[AckChannel] = mapped_column(_enum(AckChannel))
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("delivery.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditEvent(db.Model):
    """Who did what to what, and when: kept for the steering committee and the police."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_event_subject", "subject_type", "subject_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(100))  # "person:12", "cli", "system", "+32..."
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    action: Mapped[str] = mapped_column(String(64), index=True)
    subject_type: Mapped[str | None] = mapped_column(String(32))
    subject_id: Mapped[int | None] = mapped_column(Integer)
    details: Mapped[dict] = mapped_column(JSON, default=dict)


class PinFailure(db.Model):
    """A wrong PIN from a phone number, by SMS or by call; counted for the lockout."""

    __tablename__ = "pin_failure"
    __table_args__ = (Index("ix_pin_failure_phone_at", "phone", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(8))  # "sms" or "call"
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def record_audit(
    action: str,
    *,
    actor: str,
    actor_id: int | None = None,
    subject: db.Model | None = None,
    **details: Any,
) -> AuditEvent:
    """Add an audit event to the session (committed with the caller's transaction)."""
    event = AuditEvent(
        action=action,
        actor=actor,
        actor_id=actor_id,
        subject_type=subject.__tablename__ if subject is not None else None,
        subject_id=subject.id if subject is not None else None,
        details=details,
    )
    db.session.add(event)
    return event
